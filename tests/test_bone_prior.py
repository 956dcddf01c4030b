"""pose3dlib.evaluation.bone_prior: the test-time prior of the training skeletons' bone proportions."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pose3dlib import decode
from pose3dlib.config import EvalConfig
from pose3dlib.evaluation import bone_prior
from pose3dlib.skeleton import DEPTH_ROOT, MPII16

THORAX = MPII16.joint_names.index("thorax")
DEFAULTS = {"scale_penalty": EvalConfig().bone_prior_scale_penalty, "blend": EvalConfig().bone_prior_blend}


def _skeletons(n: int, seed: int) -> np.ndarray:
    """(n, 16, 3) root-relative skeletons of one body (fixed bone lengths) with its bones in random directions,
    built by walking MPII16.edges from the root (written out here, not with the module's own order)."""
    rng = np.random.default_rng(seed)
    lengths = rng.uniform(150, 450, len(MPII16.edges))
    out = np.zeros((n, 16, 3))
    placed = {MPII16.root}
    while len(placed) < MPII16.num_joints - 1:  # every joint but the thorax, which no edge reaches
        for e, (a, b) in enumerate(MPII16.edges):
            for p, j in ((a, b), (b, a)):
                if p in placed and j not in placed:
                    v = rng.normal(size=(n, 3))
                    out[:, j] = out[:, p] + lengths[e] * v / np.linalg.norm(v, axis=1, keepdims=True)
                    placed.add(j)
    out[:, THORAX] = (out[:, 6] + out[:, 8]) / 2
    return out - out[:, DEPTH_ROOT:DEPTH_ROOT + 1]


def _bones(xy: np.ndarray, depth: np.ndarray) -> np.ndarray:
    return decode.bone_lengths(np.concatenate([xy, depth[..., None]], -1))  # (N, 14)


def test_tree_order_reaches_every_joint_but_the_root_and_thorax_parents_first() -> None:
    order = bone_prior.TREE_ORDER
    joints = [j for j, _, _ in order]
    assert sorted(joints) == sorted(set(range(MPII16.num_joints)) - {MPII16.root, THORAX})
    seen = {MPII16.root}
    for j, p, e in order:
        assert p in seen and set(MPII16.edges[e]) == {j, p}
        seen.add(j)


def test_mean_bone_lengths_averages_each_edge() -> None:
    skel = _skeletons(5, 0)
    a, b = MPII16.edges[3]
    np.testing.assert_allclose(bone_prior.mean_bone_lengths(skel)[3],
                               np.linalg.norm(skel[:, a] - skel[:, b], axis=1).mean())
    np.testing.assert_allclose(bone_prior.mean_bone_lengths(skel), bone_prior.mean_bone_lengths(skel[:1]), rtol=1e-9)
    with pytest.raises(ValueError, match="no samples"):
        bone_prior.mean_bone_lengths(np.zeros((0, 16, 3)))


def test_the_scale_search_gives_flattened_depth_back_its_proportions() -> None:
    """Depth squashed by one of the searched scales: restored exactly (and a full blend keeps it so);
    squashed by a scale between two searched ones: restored to within a grid step."""
    skel = _skeletons(40, 1)
    lengths = bone_prior.mean_bone_lengths(skel)
    k = 2e-3  # mm -> normalised units
    xy, depth = skel[..., :2] * k, skel[..., 2] * k
    truth = decode.reconstruct_3d(xy, depth, 4000.0)
    err = lambda d: np.linalg.norm(decode.reconstruct_3d(xy, d, 4000.0) - truth, axis=-1).mean()  # noqa: E731
    on_grid = depth / bone_prior.PRIOR_SCALES[71]  # about a third
    assert err(on_grid) > 50  # mm: the squashed skeleton is far off
    assert err(bone_prior.bone_prior_depth(xy, on_grid, lengths, scale_penalty=0.0, blend=0.0)) < 1e-6
    assert err(bone_prior.bone_prior_depth(xy, on_grid, lengths, scale_penalty=0.0, blend=1.0)) < 1e-6
    off_grid = depth / (bone_prior.PRIOR_SCALES[71] * bone_prior.PRIOR_SCALES[72]) ** 0.5
    assert err(bone_prior.bone_prior_depth(xy, off_grid, lengths, scale_penalty=0.0, blend=0.0)) < 0.05 * err(off_grid)


def test_the_blend_moves_each_bone_to_its_prior_length_keeping_its_sign() -> None:
    """Every bone's depth step scaled by its own factor (no one scale can fix that): a full blend gives every
    bone its prior fraction of the skeleton's size where its 2D allows, with the predicted sign; half a
    blend lands half way; a flipped input gives a flipped output."""
    skel = _skeletons(30, 3)
    lengths = bone_prior.mean_bone_lengths(skel)
    xy = skel[..., :2] * 1e-3
    rng = np.random.default_rng(4)
    depth = np.zeros((30, 16))
    for j, p, _ in bone_prior.TREE_ORDER:  # each bone's true depth step times a random factor
        depth[:, j] = depth[:, p] + (skel[:, j, 2] - skel[:, p, 2]) * 1e-3 * rng.uniform(0.3, 1.7, 30)
    penalty = 1e9  # keeps step 1's scale at 1, so step 2 alone acts
    none = bone_prior.bone_prior_depth(xy, depth, lengths, scale_penalty=penalty, blend=0.0)
    full = bone_prior.bone_prior_depth(xy, depth, lengths, scale_penalty=penalty, blend=1.0)
    half = bone_prior.bone_prior_depth(xy, depth, lengths, scale_penalty=penalty, blend=0.5)
    np.testing.assert_allclose(none, depth, atol=1e-12)
    size = _bones(xy, depth).sum(1, keepdims=True)  # the skeleton's size after step 1
    target = lengths / lengths.sum() * size  # (N, 14)
    reachable = target > decode.bone_lengths(xy)  # the 2D length leaves room for the prior's
    assert reachable.mean() > 0.5
    np.testing.assert_allclose(_bones(xy, full)[reachable], target[reachable], rtol=1e-9)
    steps = lambda d: np.stack([d[:, j] - d[:, p] for j, p, _ in bone_prior.TREE_ORDER], 1)  # noqa: E731
    assert np.all(np.sign(steps(full)) * np.sign(steps(depth)) >= 0)  # no bone turned around
    np.testing.assert_allclose(steps(half), (steps(none) + steps(full)) / 2, atol=1e-12)
    np.testing.assert_allclose(bone_prior.bone_prior_depth(xy, -depth, lengths, scale_penalty=penalty, blend=1.0),
                               -full, atol=1e-12)


def test_no_blend_and_a_strong_penalty_keep_the_depth_and_torch_gives_the_same_numbers() -> None:
    skel = _skeletons(8, 2)
    xy, depth = skel[..., :2] * 1e-3, skel[..., 2] * 1e-3 + 0.7  # not root-relative: the root is subtracted
    lengths = bone_prior.mean_bone_lengths(skel)
    out = bone_prior.bone_prior_depth(xy, depth / 2, lengths, scale_penalty=1e6, blend=0.0)
    np.testing.assert_allclose(out, (depth - depth[:, DEPTH_ROOT:DEPTH_ROOT + 1]) / 2, atol=1e-12)
    ref = bone_prior.bone_prior_depth(xy, depth, lengths, **DEFAULTS)  # numpy in: float64 numpy out
    assert isinstance(ref, np.ndarray) and ref.dtype == np.float64
    t = bone_prior.bone_prior_depth(torch.from_numpy(xy).float(), torch.from_numpy(depth).float(), torch.from_numpy(lengths),
                                    **DEFAULTS)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.shape == (8, 16)
    np.testing.assert_allclose(t.numpy(), ref, atol=1e-5)
    whole = bone_prior.bone_prior_depth(torch.from_numpy(xy), torch.from_numpy(np.round(depth * 1e3)).long(), lengths,
                                        **DEFAULTS)
    assert whole.dtype == torch.float32  # an integer depth comes back as floats, not truncated


def test_bone_prior_errors() -> None:
    xy, d, lengths = np.zeros((2, 16, 2)), np.zeros((2, 16)), np.ones(14)
    with pytest.raises(ValueError, match=r"lengths must have shape \(14,\)"):
        bone_prior.bone_prior_depth(xy, d, np.ones(13), **DEFAULTS)
    with pytest.raises(ValueError, match="finite and positive"):
        bone_prior.bone_prior_depth(xy, d, [1.0] * 13 + [0.0], **DEFAULTS)
    with pytest.raises(ValueError, match=r"blend in \[0, 1\]"):
        bone_prior.bone_prior_depth(xy, d, lengths, scale_penalty=0.05, blend=1.5)
    with pytest.raises(ValueError, match=r"depth_norm must have shape"):
        bone_prior.bone_prior_depth(xy, np.zeros((3, 16)), lengths, **DEFAULTS)
    with pytest.raises(ValueError, match=r"joints_2d_norm must have shape"):
        bone_prior.bone_prior_depth(np.zeros((2, 16, 3)), d, lengths, **DEFAULTS)


def test_the_scale_search_in_chunks_equals_one_pass(monkeypatch) -> None:
    skel = _skeletons(50, 6)
    xy, depth = skel[..., :2] * 1e-3, skel[..., 2] * 1e-3 * np.random.default_rng(7).uniform(0.2, 3.0, (50, 1))
    lengths = bone_prior.mean_bone_lengths(skel)
    whole = bone_prior.bone_prior_depth(xy, depth, lengths, **DEFAULTS)
    monkeypatch.setattr(bone_prior, "CHUNK", 7)
    np.testing.assert_array_equal(bone_prior.bone_prior_depth(xy, depth, lengths, **DEFAULTS), whole)
    assert bone_prior.bone_prior_depth(xy[:0], depth[:0], lengths, **DEFAULTS).shape == (0, 16)

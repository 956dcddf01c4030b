"""pose3dlib.metrics: hand-computed cases, invariances, and independent re-implementations."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from pose3dlib import metrics
from pose3dlib.skeleton import MPII16

REL_TOL = 1e-6


def close(a: float, b: float, rel: float = REL_TOL) -> bool:
    return abs(a - b) <= rel * abs(b)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random proper rotation (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


@pytest.fixture
def poses() -> tuple[np.ndarray, np.ndarray]:
    """64 random (16, 3) ground truths (mm) and noisy, rotated, scaled, shifted predictions."""
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(64, 16, 3)) * 250.0
    pred = np.empty_like(gt)
    for i in range(len(gt)):
        pred[i] = rng.uniform(0.5, 2.0) * gt[i] @ random_rotation(rng).T + rng.normal(size=3) * 100
    pred += rng.normal(size=gt.shape) * 40.0
    pred[:8] = rng.normal(size=(8, 16, 3)) * 250.0  # unrelated predictions: some need a reflection
    pred[8, :, 0] = -gt[8, :, 0]  # an exact mirror image: the best orthogonal map is a reflection
    return pred, gt


# ----------------------------------------------------------------------------- independent references

def ref_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    errs = [math.dist(p, g) for ps, gs in zip(pred, gt) for p, g in zip(ps, gs)]
    return sum(errs) / len(errs)


def horn_rotation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Horn (1987) unit-quaternion solution: the rotation R minimising sum |R x_j - y_j|^2."""
    s = x.T @ y  # s[a, b] = sum_j x_ja y_jb
    (sxx, sxy, sxz), (syx, syy, syz), (szx, szy, szz) = s
    n = np.array([
        [sxx + syy + szz, syz - szy, szx - sxz, sxy - syx],
        [syz - szy, sxx - syy - szz, sxy + syx, szx + sxz],
        [szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy],
        [sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz],
    ])
    w, v = np.linalg.eigh(n)
    q0, qx, qy, qz = v[:, np.argmax(w)]
    return np.array([
        [q0 * q0 + qx * qx - qy * qy - qz * qz, 2 * (qx * qy - q0 * qz), 2 * (qx * qz + q0 * qy)],
        [2 * (qy * qx + q0 * qz), q0 * q0 - qx * qx + qy * qy - qz * qz, 2 * (qy * qz - q0 * qx)],
        [2 * (qz * qx - q0 * qy), 2 * (qz * qy + q0 * qx), q0 * q0 - qx * qx - qy * qy + qz * qz],
    ])


def ref_pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    aligned = []
    for p, g in zip(pred, gt):
        x, y = p - p.mean(0), g - g.mean(0)
        r = horn_rotation(x, y)
        rx = x @ r.T
        s = (rx * y).sum() / (x * x).sum()
        aligned.append(s * rx + g.mean(0))
    return ref_mpjpe(np.array(aligned), gt)


def ref_n_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    scaled = []
    for p, g in zip(pred, gt):
        s = np.linalg.lstsq(p.reshape(-1, 1), g.reshape(-1), rcond=None)[0][0]
        scaled.append(s * p)
    return ref_mpjpe(np.array(scaled), gt)


def ref_paper(pred: np.ndarray, gt: np.ndarray, bone_sum_mm: float) -> float:
    root, spine, (a, b) = 6, 7, (6, 8)
    out = []
    for p, g in zip(pred, gt):
        total = sum(math.dist(p[i], p[j]) for i, j in MPII16.edges)
        q = [(p[k] - p[root]) * (bone_sum_mm / total) + g[root] for k in range(16)]
        q[spine] = (q[a] + q[b]) / 2
        out.append(q)
    return ref_mpjpe(np.array(out), gt)


def ref_pck3d(pred: np.ndarray, gt: np.ndarray, threshold: float) -> float:
    hits = [math.dist(p, g) < threshold for ps, gs in zip(pred, gt) for p, g in zip(ps, gs)]
    return sum(hits) / len(hits)


# ----------------------------------------------------------------------------- hand-computed cases

def test_mpjpe_hand_computed() -> None:
    gt = np.zeros((2, 2, 3))
    pred = np.array([[[0, 0, 0], [3, 4, 0]], [[0, 0, 12], [1, 2, 2]]], dtype=float)
    # errors: 0, 5 | 12, 3 -> per sample 2.5, 7.5 -> mean 5.0
    np.testing.assert_allclose(metrics.mpjpe_per_sample(pred, gt), [2.5, 7.5])
    assert metrics.mpjpe(pred, gt) == pytest.approx(5.0)
    assert isinstance(metrics.mpjpe(pred, gt), float)


def test_pa_mpjpe_hand_computed_planar() -> None:
    # A unit square, and its copy rotated 90 deg about z, doubled and shifted: aligns exactly.
    gt = np.array([[[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]], dtype=float)
    rot = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=float)
    pred = 2 * gt @ rot.T + np.array([5.0, -3.0, 7.0])
    assert metrics.pa_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-9)
    # Only the translation of the centroid differs from the raw error.
    assert metrics.mpjpe(pred, gt) > 1.0


def test_n_mpjpe_hand_computed() -> None:
    gt = np.array([[[1.0, 0, 0], [0, 1.0, 0]]])
    pred = np.array([[[2.0, 0, 0], [0, 0, 2.0]]])
    # s = <p, g> / <p, p> = 2 / 8 = 0.25; s p = (0.5,0,0), (0,0,0.5); errors 0.5 and sqrt(1.25)
    expected = (0.5 + math.sqrt(1.25)) / 2
    assert metrics.n_mpjpe(pred, gt) == pytest.approx(expected, rel=1e-12)


def test_paper_protocol_hand_computed() -> None:
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(1, 16, 3)) * 200
    bone_sum = float(sum(np.linalg.norm(gt[0, a] - gt[0, b]) for a, b in MPII16.edges))
    pred = 3.0 * (gt - gt[:, 6:7]) + 1000.0  # bigger, elsewhere: same shape
    gt0, pred0 = gt.copy(), pred.copy()

    def inputs_unchanged() -> None:
        np.testing.assert_array_equal(gt, gt0)
        np.testing.assert_array_equal(pred, pred0)

    # Rescaled and moved to the gt root, pred equals gt except joint 7, the midpoint of 6 and 8.
    spine_err = np.linalg.norm((gt0[0, 6] + gt0[0, 8]) / 2 - gt0[0, 7])
    got = metrics.paper_protocol_mpjpe(pred, gt, bone_sum_mm=bone_sum)
    assert got == pytest.approx(spine_err / 16, rel=1e-9)
    inputs_unchanged()
    assert metrics.paper_protocol_mpjpe(pred, gt, bone_sum, spine_midpoint="none") == pytest.approx(0, abs=1e-9)
    inputs_unchanged()
    assert metrics.paper_protocol_mpjpe(pred, gt, bone_sum, spine_midpoint="both") == pytest.approx(0, abs=1e-9)
    inputs_unchanged()
    _, g_al = metrics.paper_protocol_align(pred, gt, bone_sum)
    inputs_unchanged()
    np.testing.assert_array_equal(g_al, gt0)  # the ground truth is compared as given by default
    _, g_both = metrics.paper_protocol_align(pred, gt, bone_sum, spine_midpoint="both")
    inputs_unchanged()  # "both" replaces joint 7 in a copy, never in the caller's array
    np.testing.assert_allclose(g_both[:, 7], (gt0[:, 6] + gt0[:, 8]) / 2)
    np.testing.assert_array_equal(np.delete(g_both, 7, axis=1), np.delete(gt0, 7, axis=1))
    with pytest.raises(ValueError, match="spine_midpoint"):
        metrics.paper_protocol_mpjpe(pred, gt, spine_midpoint="gt")


def test_paper_protocol_default_bone_sum() -> None:
    rng = np.random.default_rng(2)
    pred, gt = rng.normal(size=(3, 16, 3)), rng.normal(size=(3, 16, 3)) * 300
    p_al, _ = metrics.paper_protocol_align(pred, gt)
    total = sum(np.linalg.norm(p_al[:, a] - p_al[:, b], axis=-1) for a, b in MPII16.edges)
    np.testing.assert_allclose(total, 4296.99, rtol=1e-12)
    np.testing.assert_allclose(p_al[:, 6], gt[:, 6], atol=1e-9)  # on the ground-truth root


# ----------------------------------------------------------------------------- invariances

def test_pa_mpjpe_invariant_to_similarity_of_prediction(poses) -> None:
    pred, gt = poses
    rng = np.random.default_rng(3)
    base = metrics.pa_mpjpe_per_sample(pred, gt)
    moved = np.stack([rng.uniform(0.1, 10) * p @ random_rotation(rng).T + rng.normal(size=3) * 1e3 for p in pred])
    np.testing.assert_allclose(metrics.pa_mpjpe_per_sample(moved, gt), base, rtol=1e-8)
    exact = np.stack([0.7 * g @ random_rotation(rng).T + 50.0 for g in gt])
    assert metrics.pa_mpjpe(exact, gt) == pytest.approx(0.0, abs=1e-8)


def test_pa_mpjpe_excludes_reflections(poses) -> None:
    _, gt = poses
    mirrored = gt.copy()
    mirrored[..., 0] *= -1
    # A proper similarity cannot undo a mirror of a non-planar skeleton.
    assert metrics.pa_mpjpe(mirrored, gt) > 10.0


def test_n_mpjpe_invariant_to_scale(poses) -> None:
    pred, gt = poses
    base = metrics.n_mpjpe(pred, gt)
    assert metrics.n_mpjpe(pred * 3.7, gt) == pytest.approx(base, rel=1e-10)
    assert metrics.n_mpjpe(gt * 0.2, gt) == pytest.approx(0.0, abs=1e-9)
    assert metrics.n_mpjpe(pred, gt) <= metrics.mpjpe(pred, gt) * 1.5  # sanity: same order


# ----------------------------------------------------------------------------- vs independent implementations

def test_against_references_on_random_inputs(poses) -> None:
    pred, gt = poses
    assert close(metrics.mpjpe(pred, gt), ref_mpjpe(pred, gt))
    assert close(metrics.pa_mpjpe(pred, gt), ref_pa_mpjpe(pred, gt))
    assert close(metrics.n_mpjpe(pred, gt), ref_n_mpjpe(pred, gt))
    assert close(metrics.paper_protocol_mpjpe(pred, gt), ref_paper(pred, gt, 4296.99))
    assert close(metrics.paper_protocol_mpjpe(pred, gt, bone_sum_mm=3000.0), ref_paper(pred, gt, 3000.0))
    for t in (50.0, 150.0, 400.0):
        assert close(metrics.pck3d(pred, gt, threshold_mm=t), ref_pck3d(pred, gt, t))
    ref_auc = sum(ref_pck3d(pred, gt, t) for t in range(0, 151, 5)) / 31
    assert close(metrics.auc3d(pred, gt), ref_auc)
    # per-sample forms average to the mean forms
    assert close(float(metrics.pa_mpjpe_per_sample(pred, gt).mean()), metrics.pa_mpjpe(pred, gt))


def test_pa_mpjpe_per_sample_matches_horn(poses) -> None:
    pred, gt = poses
    got = metrics.pa_mpjpe_per_sample(pred, gt)
    ref = np.array([ref_pa_mpjpe(p[None], g[None]) for p, g in zip(pred, gt)])
    np.testing.assert_allclose(got, ref, rtol=REL_TOL)


def test_per_sample_keyword_matches_per_sample_functions(poses) -> None:
    pred, gt = poses
    pairs = [
        (metrics.mpjpe, metrics.mpjpe_per_sample),
        (metrics.pa_mpjpe, metrics.pa_mpjpe_per_sample),
        (metrics.n_mpjpe, metrics.n_mpjpe_per_sample),
        (metrics.paper_protocol_mpjpe, metrics.paper_protocol_mpjpe_per_sample),
        (metrics.pck3d, metrics.pck3d_per_sample),
        (metrics.auc3d, metrics.auc3d_per_sample),
    ]
    for mean_fn, per_sample_fn in pairs:
        errs = mean_fn(pred, gt, per_sample=True)
        assert isinstance(errs, np.ndarray) and errs.shape == (len(pred),)
        np.testing.assert_array_equal(errs, per_sample_fn(pred, gt))
        assert mean_fn(pred, gt) == pytest.approx(float(errs.mean()), rel=1e-12)
    # per-sample values against the independent references, sample by sample
    ref = [ref_paper(p[None], g[None], 2500.0) for p, g in zip(pred[:10], gt[:10])]
    np.testing.assert_allclose(metrics.paper_protocol_mpjpe(pred[:10], gt[:10], 2500.0, per_sample=True), ref, rtol=REL_TOL)


def test_torch_inputs_match_numpy(poses) -> None:
    pred, gt = poses
    tp, tg = torch.from_numpy(pred), torch.from_numpy(gt)
    for fn in (metrics.mpjpe, metrics.pa_mpjpe, metrics.n_mpjpe, metrics.paper_protocol_mpjpe, metrics.pck3d, metrics.auc3d):
        assert fn(tp, tg) == pytest.approx(fn(pred, gt), rel=1e-12)
    assert metrics.mpjpe(tp.float().requires_grad_(), tg.float()) == pytest.approx(metrics.mpjpe(pred, gt), rel=1e-5)


# ----------------------------------------------------------------------------- PCKh

def test_pckh_with_masks() -> None:
    gt = np.zeros((2, 3, 2))
    pred = np.array([
        [[3, 4], [6, 8], [0, 1]],  # errors 5, 10, 1; head 10 -> 0.5 (on the boundary: correct), 1.0, 0.1
        [[30, 40], [0, 0], [12, 16]],  # errors 50, 0, 20; head 20 -> 2.5, 0, 1.0
    ], dtype=float)
    head = np.array([10.0, 20.0])
    valid = np.array([[True, True, False], [True, False, True]])
    # valid: (0,0) hit, (0,1) miss, (1,0) miss, (1,2) miss -> 1/4
    assert metrics.pckh(pred, gt, head, valid) == pytest.approx(0.25)
    all_valid = np.ones((2, 3), bool)
    # hits: (0,0), (0,2), (1,1) -> 3/6
    assert metrics.pckh(pred, gt, head, all_valid) == pytest.approx(0.5)
    assert metrics.pckh(pred, gt, head, all_valid, threshold=1.0) == pytest.approx(5 / 6)
    np.testing.assert_allclose(metrics.pckh_per_joint(pred, gt, head, valid), [0.5, 0.0, 0.0])
    per_joint = metrics.pckh_per_joint(pred, gt, head, np.array([[True, False, True], [True, False, True]]))
    assert np.isnan(per_joint[1]) and per_joint[2] == pytest.approx(0.5)


def test_pckh_against_loop() -> None:
    rng = np.random.default_rng(4)
    gt = rng.uniform(0, 500, size=(40, 16, 2))
    pred = gt + rng.normal(size=gt.shape) * 15
    head = rng.uniform(30, 80, size=40)
    valid = rng.random((40, 16)) > 0.2
    hits = total = 0
    for n in range(40):
        for j in range(16):
            if valid[n, j]:
                total += 1
                hits += math.dist(pred[n, j], gt[n, j]) <= 0.5 * head[n]
    assert close(metrics.pckh(pred, gt, head, valid), hits / total)
    assert close(metrics.pckh(torch.from_numpy(pred), torch.from_numpy(gt), torch.from_numpy(head), torch.from_numpy(valid)), hits / total)


def test_pckh_of_chosen_joints_pools_only_their_columns() -> None:
    from pose3dlib.skeleton import MPII16, PCKH_BENCHMARK_JOINTS

    # the MPII benchmark's mean: every joint but the pelvis and the thorax
    assert [MPII16.joint_names[j] for j in range(16) if j not in PCKH_BENCHMARK_JOINTS] == ["pelvis", "thorax"]
    assert len(PCKH_BENCHMARK_JOINTS) == 14
    gt = np.zeros((2, 3, 2))
    pred = np.array([[[3, 4], [6, 8], [0, 1]], [[30, 40], [0, 0], [12, 16]]], dtype=float)
    head = np.array([10.0, 20.0])
    all_valid = np.ones((2, 3), bool)
    # hits (0,0), (0,2), (1,1): joints 0 and 2 hold two of four, joint 1 one of two
    assert metrics.pckh(pred, gt, head, all_valid, joints=[0, 2]) == pytest.approx(2 / 4)
    assert metrics.pckh(pred, gt, head, all_valid, joints=(1,)) == pytest.approx(1 / 2)
    assert metrics.pckh(pred, gt, head, all_valid, joints=[0, 1, 2]) == metrics.pckh(pred, gt, head, all_valid)
    # invalid entries of the chosen joints still do not count
    valid = np.array([[True, True, False], [True, False, True]])
    assert metrics.pckh(pred, gt, head, valid, joints=[0, 2]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match=r"joints must be indices in 0\.\.2"):
        metrics.pckh(pred, gt, head, valid, joints=[3])
    for negative in ([-1], [0, -3]):  # numpy would read -1 as the last joint: refused, not scored as joint 2
        with pytest.raises(ValueError, match=r"joints must be indices in 0\.\.2"):
            metrics.pckh(pred, gt, head, valid, joints=negative)
    with pytest.raises(ValueError, match="joints must be indices"):
        metrics.pckh(pred, gt, head, valid, joints=[])
    with pytest.raises(ValueError, match="no valid joint"):
        metrics.pckh(pred, gt, head, np.array([[True, False, True], [True, False, True]]), joints=[1])


def test_pckh_errors() -> None:
    gt = np.zeros((2, 3, 2))
    with pytest.raises(ValueError, match="no valid joint"):
        metrics.pckh(gt, gt, np.ones(2), np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match=r"head_size must have shape \(N,\)"):
        metrics.pckh(gt, gt, np.ones(3), np.ones((2, 3), bool))
    with pytest.raises(ValueError, match=r"valid must have shape \(N, J\)"):
        metrics.pckh(gt, gt, np.ones(2), np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="positive"):
        metrics.pckh(gt, gt, np.array([1.0, 0.0]), np.ones((2, 3), bool))
    with pytest.raises(ValueError, match=r"\(N, J, 2\)"):
        metrics.pckh(np.zeros((2, 3, 3)), np.zeros((2, 3, 3)), np.ones(2), np.ones((2, 3), bool))



def test_pckh_accepts_a_zero_head_size_where_no_joint_is_valid() -> None:
    """A sample without a valid joint is not scored, so its head size may be 0 (or NaN, as MPII leaves it);
    a head size of 0 on a sample with a valid joint is refused."""
    gt = np.zeros((3, 2, 2))
    pred = np.array([[[3, 4], [0, 0]], [[9, 9], [9, 9]], [[0, 30], [0, 1]]], dtype=float)  # errors 5, 0 | - | 30, 1
    head = np.array([10.0, 0.0, 20.0])
    valid = np.array([[True, True], [False, False], [True, True]])
    # sample 0: 5 <= 0.5 * 10 hit, 0 hit; sample 2: 30 > 10 miss, 1 hit -> 3 of 4; sample 1 not counted
    assert metrics.pckh(pred, gt, head, valid) == pytest.approx(3 / 4)
    np.testing.assert_allclose(metrics.pckh_per_joint(pred, gt, head, valid), [1 / 2, 1.0])
    assert metrics.pckh(pred, gt, np.array([10.0, np.nan, 20.0]), valid) == pytest.approx(3 / 4)
    with pytest.raises(ValueError, match="head_size must be finite and positive for every sample with a valid "
                                         "joint; sample 1 has"):
        metrics.pckh(pred, gt, head, np.array([[True, True], [True, False], [True, True]]))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_pckh_refuses_a_head_size_that_is_not_finite_where_a_joint_is_valid(bad) -> None:
    """Before: nan counted every joint of the sample a miss (PCKh 0.0 here) and inf every joint a hit (0.5)."""
    gt = np.zeros((2, 2, 2))
    pred = np.full((2, 2, 2), 100.0)
    with pytest.raises(ValueError, match=rf"finite and positive .*sample 0 has {bad}$"):
        metrics.pckh(pred, gt, np.array([bad, 10.0]), np.ones((2, 2), bool))


@pytest.mark.parametrize("shape", [(0, 16, 2), (2, 0, 2)])
def test_pckh_refuses_no_samples_or_no_joints(shape) -> None:
    """Empty N or J has nothing to score: the pair check names the shape instead of returning NaN."""
    with pytest.raises(ValueError, match=re.escape(f"pred must have shape (N, J, 2) with N, J >= 1, got {shape}")):
        metrics.pckh(np.zeros(shape), np.zeros(shape), np.ones(shape[0]), np.ones(shape[:2], bool))


# ----------------------------------------------------------------------------- 3DPCK / AUC edge cases

def test_pck3d_auc_edge_cases() -> None:
    gt = np.zeros((1, 4, 3))
    assert metrics.pck3d(gt, gt) == 1.0
    assert metrics.auc3d(gt, gt) == pytest.approx(30 / 31)  # PCK at 0 mm is 0 (strict <)
    far = gt + np.array([1000.0, 0, 0])
    assert metrics.pck3d(far, gt) == 0.0 and metrics.auc3d(far, gt) == 0.0
    at_150 = gt + np.array([0, 150.0, 0])
    assert metrics.pck3d(at_150, gt) == 0.0  # exactly on the threshold: not correct
    at_100 = gt + np.array([0, 0, 100.0])
    assert metrics.pck3d(at_100, gt) == 1.0
    assert metrics.auc3d(at_100, gt) == pytest.approx(10 / 31)  # thresholds 105..150
    mixed = np.concatenate([gt[:, :2], gt[:, 2:] + np.array([0, 0, 2.0])], axis=1)
    assert metrics.auc3d(mixed, gt) == pytest.approx((30 / 31 + 30 / 31) / 2)
    assert len(metrics.auc_thresholds_mm()) == 31
    assert metrics.auc3d(at_100, gt, max_mm=100.0) == 0.0
    with pytest.raises(ValueError, match="multiple"):
        metrics.auc3d(gt, gt, max_mm=152.0)


# ----------------------------------------------------------------------------- shape checks

@pytest.mark.parametrize("fn", [metrics.mpjpe, metrics.pa_mpjpe, metrics.n_mpjpe, metrics.pck3d, metrics.auc3d])
def test_shape_errors_name_expected_shape(fn) -> None:
    with pytest.raises(ValueError, match=r"\(N, J, 3\)"):
        fn(np.zeros((2, 16, 2)), np.zeros((2, 16, 2)))
    with pytest.raises(ValueError, match="same shape"):
        fn(np.ones((2, 16, 3)), np.ones((3, 16, 3)))



@pytest.mark.parametrize("fn", [metrics.mpjpe, metrics.pa_mpjpe, metrics.n_mpjpe, metrics.pck3d, metrics.auc3d])
def test_empty_inputs_are_refused_naming_the_shape(fn) -> None:
    """No sample (N = 0) or no joint (J = 0): a mean over nothing is refused, naming the array and its shape."""
    for shape in ((0, 16, 3), (2, 0, 3)):
        with pytest.raises(ValueError, match=re.escape(f"pred must have shape (N, J, 3) with N, J >= 1, got {shape}")):
            fn(np.zeros(shape), np.zeros(shape))
    with pytest.raises(ValueError, match=re.escape("gt must have shape (N, J, 3) with N, J >= 1, got (0, 16, 3)")):
        fn(np.ones((1, 16, 3)), np.zeros((0, 16, 3)))

def test_paper_protocol_needs_16_joints() -> None:
    with pytest.raises(ValueError, match=r"\(N, 16, 3\)"):
        metrics.paper_protocol_mpjpe(np.ones((2, 17, 3)), np.ones((2, 17, 3)))


def test_degenerate_predictions_raise() -> None:
    gt = np.random.default_rng(5).normal(size=(2, 16, 3))
    with pytest.raises(ValueError, match="one point"):
        metrics.pa_mpjpe(np.ones((2, 16, 3)), gt)
    with pytest.raises(ValueError, match="all zeros"):
        metrics.n_mpjpe(np.zeros((2, 16, 3)), gt)
    with pytest.raises(ValueError, match="zero total bone length"):
        metrics.paper_protocol_mpjpe(np.ones((2, 16, 3)), gt)


def test_left_right_swap_fraction_against_a_loop_and_by_hand():
    from pose3dlib.metrics import left_right_swap_fraction
    from pose3dlib.skeleton import MPII16

    rng = np.random.default_rng(3)
    gt = rng.uniform(0, 64, (40, 16, 2))
    swapped = gt.copy()
    for a, b in MPII16.flip_pairs:
        swapped[:, [a, b]] = gt[:, [b, a]]
    pred = gt + rng.normal(0, 6, gt.shape)
    pred[:7] = swapped[:7] + rng.normal(0, 1, (7, 16, 2))  # some samples mirrored
    count = total = 0
    for n in range(len(gt)):
        for a, b in MPII16.flip_pairs:
            for j, k in ((a, b), (b, a)):
                total += 1
                count += np.linalg.norm(pred[n, j] - gt[n, k]) + 2.0 < np.linalg.norm(pred[n, j] - gt[n, j])
    assert left_right_swap_fraction(pred, gt, MPII16.flip_pairs, margin=2.0) == pytest.approx(count / total)
    # by hand: every pair swapped exactly -> 1; exact prediction -> 0
    assert left_right_swap_fraction(swapped, gt, MPII16.flip_pairs) == 1.0
    assert left_right_swap_fraction(gt, gt, MPII16.flip_pairs) == 0.0
    with pytest.raises(ValueError, match="no flip pairs"):
        left_right_swap_fraction(gt, gt, [])


def test_left_right_order_oracle_undoes_a_swap_and_keeps_the_rest():
    from pose3dlib.metrics import left_right_order_oracle

    rng = np.random.default_rng(3)
    gt = rng.normal(size=(4, 16, 2)) * 50
    pred = gt + rng.normal(size=gt.shape)  # near misses: keep the order
    a, b = MPII16.flip_pairs[0]
    pred[2, [a, b]] = gt[2, [b, a]]  # sample 2: one pair swapped
    order = left_right_order_oracle(pred, gt, MPII16.flip_pairs)
    expected = np.tile(np.arange(16), (4, 1))
    expected[2, [a, b]] = [b, a]
    np.testing.assert_array_equal(order, expected)
    fixed = pred[np.arange(4)[:, None], order]
    np.testing.assert_allclose(fixed[2, [a, b]], gt[2, [a, b]])



def test_left_right_order_oracle_swaps_a_pair_only_where_that_lowers_its_summed_error():
    """Both predictions of a pair near one side (a collapsed pair): one of them is nearer the other
    joint's truth than its own, yet swapping the two would raise the pair's summed error."""
    from pose3dlib.metrics import left_right_order_oracle

    rng = np.random.default_rng(11)
    gt = rng.uniform(0, 64, (30, 16, 2))
    pred = gt + rng.normal(0, 3, gt.shape)
    for n in range(10):  # both predictions of every pair near the right-side joint
        for a, b in MPII16.flip_pairs:
            pred[n, b] = gt[n, b] + rng.normal(0, 0.5, 2)
            pred[n, a] = gt[n, b] + 0.25 * (gt[n, a] - gt[n, b])
    for n in range(10, 15):  # every pair swapped
        for a, b in MPII16.flip_pairs:
            pred[n, [a, b]] = gt[n, [b, a]] + rng.normal(0, 0.5, (2, 2))
    order = left_right_order_oracle(pred, gt, MPII16.flip_pairs)
    expected = np.tile(np.arange(16), (len(gt), 1))
    for n in range(len(gt)):
        for a, b in MPII16.flip_pairs:
            keep = np.linalg.norm(pred[n, a] - gt[n, a]) + np.linalg.norm(pred[n, b] - gt[n, b])
            swap = np.linalg.norm(pred[n, a] - gt[n, b]) + np.linalg.norm(pred[n, b] - gt[n, a])
            if swap < keep:
                expected[n, [a, b]] = [b, a]
    assert (expected[:10] == np.arange(16)).all() and (expected[10:15] != np.arange(16)).any(1).all()
    np.testing.assert_array_equal(order, expected)
    # the oracle is an upper bound: its order never raises a sample's summed error
    fixed = pred[np.arange(len(gt))[:, None], order]
    assert (np.linalg.norm(fixed - gt, axis=-1).sum(1) <= np.linalg.norm(pred - gt, axis=-1).sum(1) + 1e-9).all()

def test_bone_depth_sign_agreement_by_hand_and_against_a_loop():
    from pose3dlib.metrics import bone_depth_sign_agreement

    edges = [(0, 1), (1, 2)]
    true = np.array([[0.0, 10.0, 11.0],    # bone (0,1): -10, bone (1,2): -1
                     [0.0, -5.0, -25.0]])  # bone (0,1): +5,  bone (1,2): +20
    # the prediction gets bone (1,2) of sample 1 (|20|) and bone (0,1) of sample 0 (|10|) right,
    # bone (0,1) of sample 1 (|5|) and bone (1,2) of sample 0 (|1|) wrong
    pred = np.array([[0.0, 3.0, 2.0],
                     [0.0, 1.0, -4.0]])
    assert bone_depth_sign_agreement(pred, true, edges, fraction=0.5) == 1.0  # the two largest: |20|, |10|
    assert bone_depth_sign_agreement(pred, true, edges, fraction=0.75) == pytest.approx(2 / 3)
    assert bone_depth_sign_agreement(pred, true, edges, fraction=1.0) == 0.5
    assert bone_depth_sign_agreement(-true, true, edges, fraction=1.0) == 0.0  # mirrored depth
    assert bone_depth_sign_agreement(np.zeros_like(true), true, edges, fraction=1.0) == 0.0  # flat: ties are wrong
    # against a loop, random data, a skeleton's edges
    rng = np.random.default_rng(5)
    t = rng.normal(size=(30, 16))
    p = t + rng.normal(scale=0.8, size=t.shape)
    pairs = [(n, a, b) for n in range(30) for a, b in MPII16.edges]
    pairs.sort(key=lambda x: -abs(t[x[0], x[1]] - t[x[0], x[2]]))
    top = pairs[:round(0.3 * len(pairs))]
    expected = np.mean([(p[n, a] - p[n, b]) * (t[n, a] - t[n, b]) > 0 for n, a, b in top])
    assert bone_depth_sign_agreement(p, t, MPII16.edges, fraction=0.3) == pytest.approx(expected)
    with pytest.raises(ValueError, match="both be"):
        bone_depth_sign_agreement(p, t[:, :15], MPII16.edges)
    with pytest.raises(ValueError, match="no edges"):
        bone_depth_sign_agreement(p, t, [])
    with pytest.raises(ValueError, match="fraction"):
        bone_depth_sign_agreement(p, t, MPII16.edges, fraction=0.0)
    with pytest.raises(ValueError, match="no samples"):
        bone_depth_sign_agreement(p[:0], t[:0], MPII16.edges)
    with pytest.raises(ValueError, match="finite"):
        bone_depth_sign_agreement(np.full_like(p, np.nan), t, MPII16.edges)
    with pytest.raises(ValueError, match="joints 0..15"):
        bone_depth_sign_agreement(p, t, [(0, 16)])
    with pytest.raises(ValueError, match="joints 0..15"):
        bone_depth_sign_agreement(p, t, [(-1, 3)])


def test_pa_mpjpe_of_a_sample_with_nan_is_nan_and_the_others_unchanged(poses) -> None:
    """A diverged network's NaN made the batched SVD fail for the whole batch ("SVD did not converge");
    MPJPE gives such a sample NaN, and so does Protocol #2 now, leaving the other samples as they were."""
    pred, gt = poses
    bad = pred.copy()
    bad[3, 5, 1] = np.nan
    bad[10, 0, 0] = np.inf
    errs = metrics.pa_mpjpe(bad, gt, per_sample=True)
    clean = metrics.pa_mpjpe(pred, gt, per_sample=True)
    assert np.isnan(errs[[3, 10]]).all() and np.isnan(metrics.mpjpe(bad, gt, per_sample=True)[3])
    keep = np.setdiff1d(np.arange(len(gt)), [3, 10])
    np.testing.assert_array_equal(errs[keep], clean[keep])
    assert np.isnan(metrics.pa_mpjpe(bad[[3]], gt[[3]]))  # no finite sample at all

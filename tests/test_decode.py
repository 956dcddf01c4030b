"""pose3dlib.decode: sub-pixel argmax, normalisation, flip testing, crop inversion, 3D reconstruction."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from pose3dlib import decode
from pose3dlib.skeleton import DEPTH_ROOT, MPII16, flip_joints


def gaussian_heatmaps(centres_xy: np.ndarray, h: int, w: int, sigma: float = 1.0) -> np.ndarray:
    """(B, J, 2) sub-pixel centres -> (B, J, H, W) Gaussians, x along columns, y along rows."""
    ys, xs = np.mgrid[0:h, 0:w]
    cx = centres_xy[..., 0][..., None, None]
    cy = centres_xy[..., 1][..., None, None]
    return np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2)).astype(np.float32)


# ----------------------------------------------------------------------------- quarter-pixel refinement

@pytest.mark.parametrize(
    "centre, expected",
    [
        ((4.3, 3.0), (4.25, 3.0)),  # right neighbour higher, rows symmetric: x moves right only
        ((3.7, 3.0), (3.75, 3.0)),  # left neighbour higher
        ((4.0, 3.3), (4.0, 3.25)),  # lower row higher, columns symmetric: y moves down only
        ((4.0, 2.7), (4.0, 2.75)),  # upper row higher
        ((4.3, 2.7), (4.25, 2.75)),  # both, in opposite directions (catches an x/y swap)
        ((6.8, 1.2), (6.75, 1.25)),
    ],
)
def test_quarter_pixel_direction(centre, expected) -> None:
    # A non-square grid (H=6, W=9) also catches row/column confusion in the flat argmax.
    hm = gaussian_heatmaps(np.array([[centre]]), h=6, w=9)
    joints, maxvals = decode.heatmaps_to_joints(hm)
    assert joints.shape == (1, 1, 2) and maxvals.shape == (1, 1)
    np.testing.assert_allclose(joints[0, 0], expected)
    assert maxvals[0, 0] == pytest.approx(hm.max())


def test_asymmetric_single_neighbours() -> None:
    hm = np.zeros((1, 2, 5, 7), np.float32)
    hm[0, 0, 2, 3], hm[0, 0, 2, 4] = 1.0, 0.2  # x: right neighbour only
    hm[0, 1, 3, 1], hm[0, 1, 2, 1] = 1.0, 0.2  # y: upper neighbour only
    joints, _ = decode.heatmaps_to_joints(hm)
    np.testing.assert_allclose(joints[0], [[3.25, 2.0], [1.0, 2.75]])


def test_no_refinement_on_border() -> None:
    hm = np.zeros((1, 2, 4, 5), np.float32)
    hm[0, 0, 0, 0], hm[0, 0, 1, 0], hm[0, 0, 0, 1] = 1.0, 0.5, 0.5  # corner: neighbours only inward
    hm[0, 1, 3, 4], hm[0, 1, 2, 4], hm[0, 1, 3, 3] = 1.0, 0.5, 0.5
    joints, _ = decode.heatmaps_to_joints(hm)
    np.testing.assert_allclose(joints[0], [[0.0, 0.0], [4.0, 3.0]])


@pytest.mark.parametrize("subpixel", ["quarter", "log_parabola"])
def test_edge_peaks_refine_along_the_edge_only(subpixel) -> None:
    """A peak on the left or right edge (an inner row) still moves in y, and one on the top or bottom
    edge (an inner column) in x: each axis has its own border rule (catches one axis's rule used for both)."""
    hm = np.full((1, 4, 5, 7), 1e-3, np.float32)  # H=5, W=7; small positive floor for the log-parabola
    hm[0, 0, 2, 0], hm[0, 0, 3, 0], hm[0, 0, 2, 1] = 1.0, 0.5, 0.5  # left edge, row 2: lower row higher
    hm[0, 1, 2, 6], hm[0, 1, 1, 6], hm[0, 1, 2, 5] = 1.0, 0.5, 0.5  # right edge, row 2: upper row higher
    hm[0, 2, 0, 3], hm[0, 2, 0, 4], hm[0, 2, 1, 3] = 1.0, 0.5, 0.5  # top edge, column 3: right column higher
    hm[0, 3, 4, 3], hm[0, 3, 4, 2], hm[0, 3, 3, 3] = 1.0, 0.5, 0.5  # bottom edge, column 3: left column higher
    joints, _ = decode.heatmaps_to_joints(hm, subpixel)
    x, y = joints[0, :, 0], joints[0, :, 1]
    np.testing.assert_allclose(x[:2], [0.0, 6.0])  # no move across the left and right edges
    np.testing.assert_allclose(y[2:], [0.0, 4.0])  # nor across the top and bottom ones
    assert y[0] > 2.0 and y[1] < 2.0  # but along them
    assert x[2] > 3.0 and x[3] < 3.0
    if subpixel == "quarter":
        np.testing.assert_allclose([y[0], y[1], x[2], x[3]], [2.25, 1.75, 3.25, 2.75])


# ----------------------------------------------------------------------------- log-parabola refinement

@pytest.mark.parametrize("sigma", [0.8, 1.0, 1.75, 3.0])
def test_log_parabola_recovers_gaussian_centres(sigma) -> None:
    # The log of a Gaussian is a parabola, so the vertex is exact for any sigma and offset
    # inside the peak pixel; the quarter-pixel rule is off by up to 0.25 px.
    rng = np.random.default_rng(1)
    centres = np.stack([rng.uniform(2.5, 12.5, (4, 16)), rng.uniform(2.5, 9.5, (4, 16))], -1)  # (4, 16, 2)
    hm = gaussian_heatmaps(centres, h=12, w=15, sigma=sigma).astype(np.float64)
    joints, _ = decode.heatmaps_to_joints(hm, "log_parabola")
    np.testing.assert_allclose(joints, centres, atol=1e-6)
    quarter, _ = decode.heatmaps_to_joints(hm, "quarter")
    assert np.abs(quarter - centres).max() > 0.05  # the test can tell the two methods apart


def test_log_parabola_is_safe_on_flat_and_border_peaks() -> None:
    hm = np.zeros((1, 3, 5, 6), np.float32)  # joint 0: all zero (flat: no move)
    hm[0, 1, 0, 0], hm[0, 1, 1, 0], hm[0, 1, 0, 1] = 1.0, 0.9, 0.9  # corner peak: no move on the border
    hm[0, 2, 2, 2], hm[0, 2, 2, 3] = 1.0, 1.0 - 1e-9  # a near-plateau: the vertex is (almost) half a pixel over, no further
    joints, _ = decode.heatmaps_to_joints(hm, "log_parabola")
    np.testing.assert_allclose(joints[0, 0], [0.0, 0.0])
    np.testing.assert_allclose(joints[0, 1], [0.0, 0.0])
    assert 2.0 < joints[0, 2, 0] <= 2.5 and joints[0, 2, 1] == 2.0
    assert np.all(np.isfinite(joints))


def test_unknown_subpixel_method() -> None:
    with pytest.raises(ValueError, match="subpixel"):
        decode.heatmaps_to_joints(np.zeros((1, 1, 4, 4)), "centroid")


def test_torch_matches_numpy_and_keeps_type() -> None:
    rng = np.random.default_rng(0)
    hm = rng.random((3, 16, 8, 10)).astype(np.float32)
    j_np, _ = decode.heatmaps_to_joints(hm)
    j_t, v_t = decode.heatmaps_to_joints(torch.from_numpy(hm))
    assert isinstance(j_np, np.ndarray) and isinstance(j_t, torch.Tensor)
    np.testing.assert_allclose(j_t.numpy(), j_np)
    np.testing.assert_allclose(v_t.numpy(), hm.reshape(3, 16, -1).max(-1))


def test_heatmaps_shape_error() -> None:
    with pytest.raises(ValueError, match=r"\(B, J, H, W\)"):
        decode.heatmaps_to_joints(np.zeros((16, 8, 8)))



@pytest.mark.parametrize("shape", [(1, 16, 0, 8), (2, 16, 8, 0)])
def test_heatmaps_with_an_empty_grid_are_refused(shape) -> None:
    """A heatmap of no pixels has no argmax: a ValueError naming the empty grid and the shape, numpy or torch."""
    for hm in (np.zeros(shape), torch.zeros(shape)):
        with pytest.raises(ValueError, match=re.escape(f"non-empty H x W grid, got shape {shape}")):
            decode.heatmaps_to_joints(hm)


# ----------------------------------------------------------------------------- normalised units

def test_normalized_round_trip() -> None:
    h = 64
    u = np.array([[0.0, 32.0], [64.0, 16.0]])
    n = decode.heatmap_to_normalized(u, h)
    np.testing.assert_allclose(n, [[-1.0, 0.0], [1.0, -0.5]])
    np.testing.assert_allclose(decode.normalized_to_heatmap(n, h), u)
    t = torch.tensor(u)
    assert torch.allclose(decode.normalized_to_heatmap(decode.heatmap_to_normalized(t, 16), 16), t)


# ----------------------------------------------------------------------------- flip testing

def test_flip_back_is_an_involution_and_mirrors() -> None:
    rng = np.random.default_rng(1)
    hm = rng.random((2, 16, 6, 9)).astype(np.float32)
    np.testing.assert_array_equal(decode.flip_back(decode.flip_back(hm)), hm)
    perm = MPII16.flip_permutation
    out = decode.flip_back(hm)
    for j in range(16):
        np.testing.assert_array_equal(out[:, perm[j], :, ::-1], hm[:, j])
    t = torch.from_numpy(hm)
    assert torch.equal(decode.flip_back(t), torch.from_numpy(out))
    assert torch.equal(decode.flip_back(decode.flip_back(t)), t)


def test_flip_back_agrees_with_flip_joints() -> None:
    # Decoding the flipped-back heatmaps equals mirroring the decoded joints (width W grid).
    rng = np.random.default_rng(2)
    h, w = 7, 11
    hm = gaussian_heatmaps(rng.uniform(1, 6, size=(3, 16, 2)) * [w / 7, 1], h, w)
    joints, _ = decode.heatmaps_to_joints(hm)
    flipped, _ = decode.heatmaps_to_joints(decode.flip_back(hm))
    np.testing.assert_allclose(flipped, flip_joints(joints, width=w))


def test_flip_back_depth() -> None:
    depth = np.arange(32, dtype=np.float32).reshape(2, 16)
    out = decode.flip_back_depth(depth)
    np.testing.assert_array_equal(out, depth[:, MPII16.flip_permutation])
    np.testing.assert_array_equal(decode.flip_back_depth(out), depth)
    assert out[0, 0] == depth[0, 5] and out[0, 6] == depth[0, 6]  # r_ankle <- l_ankle; pelvis stays
    t = torch.from_numpy(depth)
    assert torch.equal(decode.flip_back_depth(t), torch.from_numpy(out))
    with pytest.raises(ValueError, match=r"\(B, 16\)"):
        decode.flip_back_depth(np.zeros((2, 17)))


# ----------------------------------------------------------------------------- crop -> image

def test_joints_to_image_inverts_affine() -> None:
    rng = np.random.default_rng(3)
    n = 4
    crop = np.zeros((n, 2, 3))
    for i in range(n):
        angle, scale = rng.uniform(-1, 1), rng.uniform(0.3, 3)
        c, s = math.cos(angle), math.sin(angle)
        crop[i, :, :2] = scale * np.array([[c, -s], [s, c]])
        crop[i, :, 2] = rng.uniform(-200, 200, size=2)
    image_px = rng.uniform(0, 1000, size=(n, 16, 2))
    crop_px = np.einsum("nij,nkj->nki", crop[:, :, :2], image_px) + crop[:, None, :, 2]
    np.testing.assert_allclose(decode.joints_to_image(crop_px, crop), image_px, rtol=1e-10)
    got_t = decode.joints_to_image(torch.from_numpy(crop_px).float(), torch.from_numpy(crop).float())
    assert isinstance(got_t, torch.Tensor)
    np.testing.assert_allclose(got_t.numpy(), image_px, rtol=1e-4, atol=1e-2)


def test_joints_to_image_errors() -> None:
    with pytest.raises(ValueError, match=r"\(N, 2, 3\)"):
        decode.joints_to_image(np.zeros((2, 16, 2)), np.zeros((3, 2, 3)))
    with pytest.raises(ValueError, match="singular"):
        decode.joints_to_image(np.zeros((1, 16, 2)), np.zeros((1, 2, 3)))


# ----------------------------------------------------------------------------- 2D + depth -> 3D

def chain_skeleton(rng: np.random.Generator, edge_mm: float) -> np.ndarray:
    """A (16, 3) skeleton whose 14 edges all have length edge_mm, random directions."""
    joints = np.zeros((16, 3))
    joints[MPII16.root] = rng.normal(size=3) * 1000
    order = [MPII16.root]
    parents = MPII16.parents
    while order:
        j = order.pop()
        for child in range(16):
            if parents[child] == j:
                d = rng.normal(size=3)
                joints[child] = joints[j] + edge_mm * d / np.linalg.norm(d)
                order.append(child)
    joints[7] = rng.normal(size=3) * 1000  # in no edge: must not affect bone sums
    return joints


def test_bone_sums() -> None:
    rng = np.random.default_rng(4)
    skel = np.stack([chain_skeleton(rng, 10.0), chain_skeleton(rng, 20.0)])
    np.testing.assert_allclose(decode.bone_length_sum(skel), [140.0, 280.0])
    assert decode.mean_bone_sum_mm(skel) == pytest.approx(210.0)
    assert decode.mean_bone_sum_mm(torch.from_numpy(skel)) == pytest.approx(210.0)
    with pytest.raises(ValueError, match=r"\(N, 16, 3\)"):
        decode.mean_bone_sum_mm(np.zeros((2, 17, 3)))



def test_mean_bone_sum_of_no_samples_is_refused() -> None:
    """A mean over no skeletons (an empty training split) is an error naming the input, not NaN."""
    for empty in (np.zeros((0, 16, 3)), torch.zeros(0, 16, 3)):
        with pytest.raises(ValueError, match="joints_3d_mm has no samples"):
            decode.mean_bone_sum_mm(empty)

def test_reconstruct_3d_recovers_known_skeleton() -> None:
    rng = np.random.default_rng(5)
    skel_mm = rng.normal(size=(6, 16, 3)) * 300  # camera frame
    k = rng.uniform(1e-3, 4e-3, size=(6, 1, 1))  # mm -> normalised units, per sample
    xy = skel_mm[..., :2] * k + rng.uniform(-0.3, 0.3, size=(6, 1, 2))  # crop placement
    depth = skel_mm[..., 2] * k[..., 0] + 5.0  # not root-relative: the root is subtracted
    expected = skel_mm - skel_mm[:, DEPTH_ROOT : DEPTH_ROOT + 1]
    bone_sum = decode.bone_length_sum(skel_mm)  # (N,)
    np.testing.assert_allclose(decode.reconstruct_3d(xy, depth, bone_sum), expected, rtol=1e-9, atol=1e-9)
    # One bone sum for all samples: right shape, exact sum, root at the origin.
    out = decode.reconstruct_3d(torch.from_numpy(xy), torch.from_numpy(depth), 4000.0)
    assert isinstance(out, torch.Tensor) and out.shape == (6, 16, 3)
    np.testing.assert_allclose(decode.bone_length_sum(out).numpy(), 4000.0)
    assert torch.all(out[:, DEPTH_ROOT] == 0)
    # ... and the shape up to scale: proportional to the true skeleton.
    ratio = out.numpy() / np.where(expected == 0, 1, expected)
    np.testing.assert_allclose(ratio[0][expected[0] != 0], 4000.0 / bone_sum[0], rtol=1e-9)


def test_reconstruct_3d_errors() -> None:
    with pytest.raises(ValueError, match=r"\(N, 16\)"):
        decode.reconstruct_3d(np.zeros((2, 16, 2)), np.zeros((3, 16)), 1.0)
    with pytest.raises(ValueError, match="one point"):
        decode.reconstruct_3d(np.zeros((2, 16, 2)), np.zeros((2, 16)), 1.0)
    with pytest.raises(ValueError, match=r"bone_sum_mm must be"):
        decode.reconstruct_3d(np.ones((2, 16, 2)), np.arange(32.0).reshape(2, 16), np.ones(3))


@pytest.mark.parametrize("flip_test", [False, True])
def test_a_release_model_s_targets_decode_where_its_joints_were_on_average(flip_test):
    """docs/migrating-from-hg3d.md: the original release drew each target at the integer heatmap pixel
    k = floor(u), u the joint's position in heatmap units from the crop's corner, so a peak at k stands for
    the joints inside that pixel; pose3d reads heatmap pixel k as the mean of the crop pixels it covers,
    so such targets decode where their joints were on average, with and without the flip test (whose
    mirrored targets, mirrored back, land on the same pixel); the release's own demo reading, 4k, was
    1.5 crop px up and left."""
    from pose3dlib.camera import normalized_to_crop_px

    size, hm = 256, 64
    rng = np.random.default_rng(0)
    cells = rng.integers(8, 56, size=(16, 2)).astype(float)  # one heatmap pixel per joint
    fractions = (np.arange(8) + 0.5) / 8  # joints spread over their pixel, one sample per fraction
    u = cells[None] + fractions[:, None, None]  # (8, 16, 2) heatmap units from the crop's corner
    joints = u * size / hm - 0.5  # the same positions in crop pixels (pixel centres at integers)
    heatmaps = torch.from_numpy(gaussian_heatmaps(np.floor(u), hm, hm, sigma=1.75))
    if flip_test:  # the mirrored crop: u -> hm - u, the targets drawn the release's way, mapped back
        mirrored = (hm - u)[:, MPII16.flip_permutation]
        mirrored[..., 1] = u[:, MPII16.flip_permutation, 1]
        back = decode.flip_back(torch.from_numpy(gaussian_heatmaps(np.floor(mirrored), hm, hm, sigma=1.75)))
        torch.testing.assert_close(back, heatmaps)  # the same pixel: the average is the same heatmap
        heatmaps = 0.5 * (heatmaps + back)
    joints_hm, _ = decode.heatmaps_to_joints(heatmaps, "log_parabola")
    decoded = normalized_to_crop_px(decode.heatmap_to_normalized(joints_hm, hm).numpy(), size, hm)
    bias = (decoded - joints).mean(axis=0)  # (16, 2): the mean over each pixel's joints
    np.testing.assert_allclose(bias, 0.0, atol=0.1)
    release_demo = joints_hm.numpy() * size / hm  # the original demo's reading of the same peaks
    np.testing.assert_allclose((release_demo - joints).mean(axis=0), -1.5, atol=0.1)


@pytest.mark.parametrize("scale", [0.0, -4000.0, float("nan"), float("inf")])
def test_reconstruct_3d_refuses_a_scale_that_is_not_positive_and_finite(scale):
    """load_model's config carries train.bone_sum_mm = 0 (measured at training), and 0 gave a skeleton of
    zeros without a word, a negative scale a mirrored one."""
    rng = np.random.default_rng(0)
    joints, depth = rng.normal(size=(2, 16, 2)), rng.normal(size=(2, 16))
    with pytest.raises(ValueError, match="bone_sum_mm must be finite and > 0"):
        decode.reconstruct_3d(joints, depth, scale)
    with pytest.raises(ValueError, match="bone_sum_mm must be finite and > 0"):
        decode.reconstruct_3d(joints, depth, np.array([4000.0, scale]))
    assert np.isfinite(decode.reconstruct_3d(joints, depth, 4000.0)).all()

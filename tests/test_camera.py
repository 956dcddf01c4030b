"""Pinhole projection, camera frames and crop transforms: round trips against independent computations."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from pose3dlib import camera


def test_project_matches_pinhole_formula_and_unprojects():
    rng = np.random.default_rng(0)
    pts = rng.uniform([-500, -500, 2000], [500, 500, 6000], size=(5, 16, 3))
    k = np.array([1145.0, 1144.0, 512.0, 515.0])
    uv = camera.project(pts, k)
    assert np.allclose(uv[..., 0], 1145.0 * pts[..., 0] / pts[..., 2] + 512.0)
    assert np.allclose(uv[..., 1], 1144.0 * pts[..., 1] / pts[..., 2] + 515.0)
    assert np.allclose(camera.unproject(uv, pts[..., 2], k), pts)


def test_world_camera_round_trip_and_look_at():
    eye = np.array([3000.0, -2000.0, 1500.0])
    target = np.array([0.0, 0.0, 1000.0])
    rot = camera.look_at(eye, target, roll_deg=17.0)
    assert np.allclose(rot @ rot.T, np.eye(3)) and math.isclose(np.linalg.det(rot), 1.0)
    cam = camera.world_to_camera(target, rot, eye)
    assert np.allclose(cam[:2], 0.0, atol=1e-9) and cam[2] > 0  # target on the optical axis
    up = camera.world_to_camera(target + [0, 0, 100.0], rot, eye)
    rot0 = camera.look_at(eye, target)
    up0 = camera.world_to_camera(target + [0, 0, 100.0], rot0, eye)
    assert up0[1] < 0 and abs(up0[0]) < 1e-6  # world up is image up without roll
    pts = np.random.default_rng(1).normal(size=(7, 3)) * 1000
    assert np.allclose(camera.camera_to_world(camera.world_to_camera(pts, rot, eye), rot, eye), pts)
    assert up[0] != pytest.approx(0.0)  # roll tilts the vertical


def test_crop_affine_maps_box_and_inverts():
    centre, box, size = np.array([300.0, 200.0]), 150.0, 64
    a = camera.crop_affine(centre, box, 0.0, size)
    assert np.allclose(camera.apply_affine(centre, a), [(size - 1) / 2] * 2)
    corner = camera.apply_affine(centre + [box / 2, 0], a)
    assert math.isclose(corner[0] - (size - 1) / 2, size / 2)  # half a box -> half the crop
    for rot, flip in ((25.0, False), (-40.0, True)):
        a = camera.crop_affine(centre, box, rot, size, flip=flip)
        pts = np.random.default_rng(2).uniform(0, 400, (10, 2))
        back = camera.apply_affine(camera.apply_affine(pts, a), camera.invert_affine(a))
        assert np.allclose(back, pts)
        # distances scale by size / box, whatever the rotation or mirror
        d0 = np.linalg.norm(pts[0] - pts[1])
        d1 = np.linalg.norm(camera.apply_affine(pts[0], a) - camera.apply_affine(pts[1], a))
        assert math.isclose(d1, d0 * size / box)


def test_rotation_direction_matches_cv2():
    import cv2
    a = camera.crop_affine(np.array([50.0, 50.0]), 101.0, 30.0, 101)
    m = cv2.getRotationMatrix2D((50.0, 50.0), 30.0, 1.0)
    assert np.allclose(a, m, atol=1e-9)


def test_warp_image_moves_a_bright_pixel_like_points():
    img = np.zeros((120, 160, 3), np.uint8)
    img[40, 100] = 255
    a = camera.crop_affine(np.array([90.0, 50.0]), 60.0, 20.0, 60, flip=True)
    out = camera.warp_image(img, a, 60)
    v, u = np.unravel_index(out[..., 0].argmax(), out.shape[:2])
    assert np.allclose([u, v], camera.apply_affine(np.array([100.0, 40.0]), a), atol=1.0)


def test_crop_intrinsics_equal_projecting_then_cropping():
    pts = np.array([[100.0, -200.0, 4000.0], [-300.0, 400.0, 5000.0]])
    k = np.array([1000.0, 1000.0, 500.0, 500.0])
    box_xy, side, size = np.array([300.0, 350.0]), 400.0, 128
    direct = camera.project(pts, camera.crop_intrinsics(k, box_xy, side, size))
    via = (camera.project(pts, k) - box_xy) * size / side
    assert np.allclose(direct, via)


def test_normalised_units_round_trip_and_centre():
    p = np.array([[0.0, 63.0], [31.5, 10.0]])
    n = camera.crop_px_to_normalized(p, 64, 16)
    assert np.allclose(camera.normalized_to_crop_px(n, 64, 16), p)
    # heatmap pixel u has normalised coordinate 2u/H - 1 (architecture.md)
    u = camera.crop_px_to_heatmap_px(p, 64, 16)
    assert np.allclose(n, 2 * u / 16 - 1)


def test_crop_to_heatmap_by_hand_from_the_pixel_centre_convention():
    """Integer coordinates are pixel centres (camera.py), so a 64 px crop spans [-0.5, 63.5] and a
    16 px heatmap [-0.5, 15.5]; the grids cover the same square, so edge maps to edge and centre to centre."""
    crop = np.array([[-0.5, 63.5], [31.5, 1.5], [33.5, 63.5]])
    # -0.5, 63.5: the edges; 31.5: the centre (7.5); 1.5: the centre of the first 4 x 4 block (heatmap pixel 0);
    # 33.5: heatmap pixel 8
    heat = np.array([[-0.5, 15.5], [7.5, 0.0], [8.0, 15.5]])
    np.testing.assert_allclose(camera.crop_px_to_heatmap_px(crop, 64, 16), heat, atol=1e-12)
    # normalised 2 u / 16 - 1: pixel 0 is -1, pixel 8 is 0; the crop's centre is -1/16, not 0, so a
    # mirror about it maps x -> -x - 2/16 (as the flip test in test_data_loaders.py expects)
    norm = np.array([[-1.0625, 0.9375], [-0.0625, -1.0], [0.0, 0.9375]])
    np.testing.assert_allclose(camera.crop_px_to_normalized(crop, 64, 16), norm, atol=1e-12)
    np.testing.assert_allclose(camera.normalized_to_crop_px(norm, 64, 16), crop, atol=1e-12)


def test_box_around_frames_points_with_a_margin():
    pts = np.array([[[10.0, 20.0], [30.0, 60.0], [20.0, 40.0]],
                    [[0.0, 0.0], [8.0, 2.0], [4.0, 1.0]]])  # (2, 3, 2)
    centres, sides = camera.box_around(pts, 1.25)
    np.testing.assert_allclose(centres, [[20.0, 40.0], [4.0, 1.0]])
    np.testing.assert_allclose(sides, [50.0, 10.0])  # the larger extent (40, 8) x 1.25
    c1, s1 = camera.box_around(pts[0], 2.0)  # a single point set
    np.testing.assert_allclose(c1, [20.0, 40.0])
    assert s1 == pytest.approx(80.0)
    _, tiny = camera.box_around(np.zeros((1, 4, 2)), 1.25)  # coincident points: at least one pixel
    assert tiny[0] == 1.0
    with pytest.raises(ValueError, match="margin"):
        camera.box_around(pts, 0.0)
    with pytest.raises(ValueError, match=r"\(\.\.\., J, 2\)"):
        camera.box_around(np.zeros((3, 3)), 1.25)


def _blob(h: int, w: int, centre: tuple[float, float], sigma: float) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    g = np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * sigma ** 2))
    return np.repeat((255 * g).astype(np.uint8)[..., None], 3, axis=2)


def _peak(crop: np.ndarray) -> np.ndarray:
    """Intensity-weighted centre (x, y) of a crop's bright blob."""
    g = crop[..., 0].astype(np.float64)
    g = np.clip(g - 0.2 * g.max(), 0, None)
    y, x = np.mgrid[0:g.shape[0], 0:g.shape[1]]
    return np.array([(g * x).sum(), (g * y).sum()]) / g.sum()


def test_a_crop_that_shrinks_little_reads_the_picture_itself():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    pyramid = camera.ImagePyramid(image)
    for side in (64.0, 100.0, 128.0):  # 64 px crops of windows up to 2 x their size
        a = camera.crop_affine(np.array([180.0, 140.0]), side, 0.0, 64)
        np.testing.assert_array_equal(pyramid.warp(a, 64), camera.warp_image(image, a, 64))
    assert len(pyramid.levels) == 1  # no halving made


def test_a_crop_that_shrinks_a_lot_is_smooth_and_in_place():
    """A 1024 px window cut to 64 px: from a halving, fine stripes average to their grey and pixel noise
    to a smooth picture (bilinear alone reads the stripes' white only, and keeps most of the noise), and
    a blob lands where the affine puts it."""
    stripes = np.zeros((1200, 1200, 3), np.uint8)
    stripes[:, ::2] = 255  # the finest pattern a picture holds
    a = camera.crop_affine(np.array([600.0, 600.0]), 1024.0, 0.0, 64)
    direct, smooth = camera.warp_image(stripes, a, 64), camera.ImagePyramid(stripes).warp(a, 64)
    assert direct.mean() == 255  # aliased: every sample falls on a white stripe
    assert smooth.std() < 3 and abs(float(smooth.mean()) - 127.5) < 3
    noise = np.random.default_rng(1).integers(0, 256, (1200, 1200, 3), dtype=np.uint8)
    assert camera.warp_image(noise, a, 64).std() > 30 and camera.ImagePyramid(noise).warp(a, 64).std() < 6
    blob = _blob(1201, 1599, (700.3, 515.7), sigma=60.0)  # odd sides: the halvings' pixel centres shift
    for centre, side in [((700.0, 520.0), 1024.0), ((650.0, 480.0), 700.0), ((760.0, 560.0), 300.0)]:
        a = camera.crop_affine(np.array(centre), side, 0.0, 64)
        expected = camera.apply_affine(np.array([700.3, 515.7]), a)
        np.testing.assert_allclose(_peak(camera.ImagePyramid(blob).warp(a, 64)), expected, atol=0.15)
        np.testing.assert_allclose(_peak(camera.warp_image(blob, a, 64)), expected, atol=0.15)  # the same place



@pytest.mark.parametrize("shrink, level", [(2.5, 1), (3.5, 1), (5.0, 2), (7.0, 2), (12.0, 3)])
def test_a_crop_reads_the_finest_halving_at_which_it_shrinks_by_at_most_2x(shrink, level):
    """The halvings are made up to the one read, and no further: a crop that shrinks the picture 2.5 x reads
    the half-size picture (which it shrinks 1.25 x), not the quarter-size one (which it would enlarge)."""
    noise = np.random.default_rng(2).integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
    a = camera.crop_affine(np.array([512.0, 500.0]), 64 * shrink, 0.0, 64)
    pyramid = camera.ImagePyramid(noise)
    crop = pyramid.warp(a, 64)
    assert len(pyramid.levels) == level + 1 and pyramid.levels[level].shape == (1024 >> level, 1024 >> level, 3)
    if level == 1:  # the half-size picture, as 2 x 2 block means, read through px -> 2 px + 0.5
        half = noise.reshape(512, 2, 512, 2, 3).mean((1, 3))
        half = np.floor(half + 0.5).astype(np.uint8)
        to_picture = np.array([[2.0, 0.0, 0.5], [0.0, 2.0, 0.5]])
        expected = camera.warp_image(half, camera.compose_affine(a, to_picture), 64)
        assert np.abs(crop.astype(int) - expected.astype(int)).max() <= 1

def test_a_pyramid_of_a_small_picture_stops_halving():
    tiny = np.full((6, 5, 3), 200, np.uint8)
    pyramid = camera.ImagePyramid(tiny)
    a = camera.crop_affine(np.array([2.0, 3.0]), 600.0, 0.0, 64)  # shrinks ~9 x: would want level 3
    crop = pyramid.warp(a, 64)
    assert crop.shape == (64, 64, 3) and len(pyramid.levels) == 2 and pyramid.levels[1].shape == (3, 3, 3)
    inside = camera.apply_affine(np.array([[0.0, 0.0], [4.0, 5.0]]), a)  # the picture's corners in the crop
    lo, hi = np.floor(inside.min(0)).astype(int) + 2, np.ceil(inside.max(0)).astype(int) - 2
    assert (crop[lo[1]:hi[1], lo[0]:hi[0]] == 200).all() and crop[0, 0].tolist() == [0, 0, 0]  # picture, then border


def test_project_refuses_points_on_or_behind_the_camera():
    """z <= 0 has no pinhole image (division by zero or a mirrored point): an error saying z > 0 is required."""
    k = np.array([1000.0, 1000.0, 320.0, 240.0])
    for z in (0.0, -500.0):
        pts = np.array([[[10.0, 20.0, 3000.0], [5.0, 5.0, z]]])  # one joint of two off
        with pytest.raises(ValueError, match=re.escape("in front of the camera (z > 0)")):
            camera.project(pts, k)


def test_look_at_refuses_a_view_along_up():
    """Looking straight down (or along a given `up`) leaves the camera's right axis undefined: an error naming `up`."""
    with pytest.raises(ValueError, match="viewing direction is parallel to `up`"):
        camera.look_at(np.array([0.0, 0.0, 5000.0]), np.array([0.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="viewing direction is parallel to `up`"):
        camera.look_at(np.array([0.0, -3000.0, 0.0]), np.zeros(3), up=(0.0, 1.0, 0.0))


@pytest.mark.parametrize("side", [0.0, -20.0, float("nan"), float("inf")])
def test_crop_affine_refuses_a_side_that_is_not_positive_and_finite(side):
    """A box side <= 0, NaN or infinite gives no crop: an error naming the box side and its value."""
    with pytest.raises(ValueError, match=re.escape(f"box side must be positive, got {side}")):
        camera.crop_affine(np.array([50.0, 50.0]), side, 0.0, 64)


@pytest.mark.parametrize("shape", [(8, 8), (2, 8, 8, 3)])
def test_warp_and_pyramid_refuse_an_image_that_is_not_h_w_c(shape):
    """A grey (H, W) array or a batch is not an (H, W, C) image: a DataError naming the expected layout and the shape."""
    from pose3dlib.engine.errors import DataError

    image = np.zeros(shape, np.uint8)
    expected = re.escape(f"expected an (H, W, C) image, got shape {shape}")
    with pytest.raises(DataError, match=f"warp_image: {expected}"):
        camera.warp_image(image, np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), 4)
    with pytest.raises(DataError, match=f"ImagePyramid: {expected}"):
        camera.ImagePyramid(image)

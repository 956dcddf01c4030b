"""Pinhole cameras, camera/world frames and crop transforms (pure functions).

Conventions:
- Camera frame (OpenCV): x right, y down, z forward along the optical axis, millimetres.
- World frame: right-handed, z up (as in Human3.6M), millimetres. A camera is a rotation
  R (3, 3) whose rows are the camera axes in world coordinates, and its centre `eye` (3,):
  X_cam = R (X_world - eye).
- Intrinsics: (..., 4) = fx, fy, cx, cy in pixels; u = fx x / z + cx, v = fy y / z + cy.
- Pixels: integer coordinates are pixel centres, so an image of width W spans x in
  [-0.5, W - 0.5] and a horizontal mirror maps x -> W - 1 - x.
- Crops are 2x3 affines A from source pixels to crop pixels: p' = A[:, :2] p + A[:, 2].
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from .engine.errors import DataError

# ----------------------------------------------------------------------------- pinhole

def project(points_cam: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Pinhole projection of camera-frame points.

    Args:
        points_cam: (..., J, 3) camera-frame points, z > 0 (mm).
        intrinsics: (..., 4) fx, fy, cx, cy (px), broadcast over the joint axis.
    Returns:
        (..., J, 2) pixel coordinates.
    """
    points_cam = np.asarray(points_cam, dtype=np.float64)
    k = np.asarray(intrinsics, dtype=np.float64)[..., None, :]  # (..., 1, 4)
    z = points_cam[..., 2]
    if np.any(z <= 0):
        raise ValueError("project: points must lie in front of the camera (z > 0)")
    u = k[..., 0] * points_cam[..., 0] / z + k[..., 2]
    v = k[..., 1] * points_cam[..., 1] / z + k[..., 3]
    return np.stack([u, v], axis=-1)


def unproject(points_px: np.ndarray, depth_mm: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Inverse of `project`: pixels (..., J, 2) at depths z (..., J) -> camera points (..., J, 3)."""
    points_px = np.asarray(points_px, dtype=np.float64)
    z = np.asarray(depth_mm, dtype=np.float64)
    k = np.asarray(intrinsics, dtype=np.float64)[..., None, :]
    x = (points_px[..., 0] - k[..., 2]) / k[..., 0] * z
    y = (points_px[..., 1] - k[..., 3]) / k[..., 1] * z
    return np.stack([x, y, z], axis=-1)


def world_to_camera(points_world: np.ndarray, rotation: np.ndarray, eye: np.ndarray) -> np.ndarray:
    """World points (..., 3) -> camera frame: R (X - eye). rotation (3, 3), eye (3,) mm."""
    return (np.asarray(points_world, dtype=np.float64) - eye) @ np.asarray(rotation).T


def camera_to_world(points_cam: np.ndarray, rotation: np.ndarray, eye: np.ndarray) -> np.ndarray:
    """Inverse of `world_to_camera`: R^T X + eye."""
    return np.asarray(points_cam, dtype=np.float64) @ np.asarray(rotation) + eye


def look_at(eye: np.ndarray, target: np.ndarray, roll_deg: float = 0.0,
            up: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> np.ndarray:
    """Rotation (3, 3) of a camera at `eye` looking at `target` (world z up), rolled about its axis.

    Rows are the camera's x (right), y (down) and z (forward) axes in world coordinates.
    """
    forward = np.asarray(target, dtype=np.float64) - np.asarray(eye, dtype=np.float64)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, dtype=np.float64))
    norm = np.linalg.norm(right)
    if norm < 1e-8:
        raise ValueError("look_at: viewing direction is parallel to `up`")
    right /= norm
    down = np.cross(forward, right)
    c, s = math.cos(math.radians(roll_deg)), math.sin(math.radians(roll_deg))
    right, down = c * right + s * down, -s * right + c * down
    return np.stack([right, down, forward])


def crop_intrinsics(intrinsics: np.ndarray, box_xy: np.ndarray, box_side_px: float, out_size: int) -> np.ndarray:
    """Intrinsics of an axis-aligned square crop resized to `out_size` px.

    The crop's top-left corner `box_xy` (2,) and side are in source pixels; crop pixel
    u' = (u - box_x) * out_size / box_side.
    """
    k = np.asarray(intrinsics, dtype=np.float64).copy()
    s = out_size / box_side_px
    k[..., 0] *= s
    k[..., 1] *= s
    k[..., 2] = (k[..., 2] - box_xy[0]) * s
    k[..., 3] = (k[..., 3] - box_xy[1]) * s
    return k


# ----------------------------------------------------------------------------- crops

def crop_affine(center: np.ndarray, box_px: float, rotation_deg: float, out_size: int,
                flip: bool = False) -> np.ndarray:
    """Affine (2, 3) taking the square box of side `box_px` around `center` to an `out_size` crop.

    The crop's content turns by `rotation_deg` counter-clockwise (as cv2's getRotationMatrix2D),
    so the box sampled from the source turns clockwise about its centre; with `flip` the crop is then mirrored horizontally (x' -> out_size - 1 - x').
    The box spans [-0.5, out_size - 0.5] in the crop, so `center` lands on (out_size-1)/2.
    """
    if box_px <= 0 or not np.isfinite(box_px):
        raise ValueError(f"crop_affine: box side must be positive, got {box_px}")
    scale = out_size / box_px
    theta = math.radians(rotation_deg)
    c, s = math.cos(theta), math.sin(theta)
    # Image y points down, so a counter-clockwise rotation on screen is [[c, s], [-s, c]].
    lin = scale * np.array([[c, s], [-s, c]])  # (2, 2)
    half = (out_size - 1) / 2.0
    shift = np.array([half, half]) - lin @ np.asarray(center, dtype=np.float64)
    affine = np.concatenate([lin, shift[:, None]], axis=1)  # (2, 3)
    if flip:
        mirror = np.array([[-1.0, 0.0, out_size - 1.0], [0.0, 1.0, 0.0]])
        affine = compose_affine(mirror, affine)
    return affine


def box_around(points_px: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Square boxes framing point sets: centred on their bounding box, side = margin x its larger extent.

    Args:
        points_px: (..., J, 2) image pixels (e.g. a person's joints).
        margin: box side / the points' larger extent (the training crops use 1.25).
    Returns:
        centres (..., 2) px and sides (...,) px, at least 1 px.
    """
    pts = np.asarray(points_px, dtype=np.float64)
    if pts.ndim < 2 or pts.shape[-1] != 2 or pts.shape[-2] < 1:
        raise ValueError(f"box_around: points must have shape (..., J, 2) with J >= 1, got {pts.shape}")
    if not margin > 0:
        raise ValueError(f"box_around: margin must be positive, got {margin}")
    lo, hi = pts.min(-2), pts.max(-2)
    return (lo + hi) / 2, np.maximum((hi - lo).max(-1) * margin, 1.0)


def compose_affine(second: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The affine (2, 3) applying `first` then `second`."""
    a = np.vstack([second, [0.0, 0.0, 1.0]]) @ np.vstack([first, [0.0, 0.0, 1.0]])
    return a[:2]


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """Inverse (2, 3) of an invertible 2x3 affine."""
    lin = np.asarray(affine, dtype=np.float64)[:, :2]
    inv = np.linalg.inv(lin)
    return np.concatenate([inv, -(inv @ affine[:, 2])[:, None]], axis=1)


def apply_affine(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Map (..., 2) points through a (2, 3) affine."""
    points = np.asarray(points, dtype=np.float64)
    return points @ affine[:, :2].T + affine[:, 2]


def affine_rotation(affine: np.ndarray) -> np.ndarray:
    """The unit-scale linear part (2, 2) of a similarity affine (a rotation, or a reflection if mirrored)."""
    lin = np.asarray(affine, dtype=np.float64)[:, :2]
    return lin / math.sqrt(abs(np.linalg.det(lin)))


def warp_image(image: np.ndarray, affine: np.ndarray, out_size: int, border_value: int = 0) -> np.ndarray:
    """Crop (H, W, C) uint8 `image` through `affine` into an (out_size, out_size, C) image (bilinear)."""
    if image.ndim != 3:
        raise DataError(f"warp_image: expected an (H, W, C) image, got shape {image.shape}")
    return cv2.warpAffine(
        image, np.asarray(affine, dtype=np.float64), (out_size, out_size), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=(border_value,) * image.shape[2],
    )


class ImagePyramid:
    """An (H, W, C) uint8 image and its successive halvings (cv2.INTER_AREA, made when first needed),
    for crops that shrink the picture a lot.

    `warp_image` samples four source pixels per crop pixel (bilinear): a crop that shrinks the
    picture more than 2 x aliases, as when a phone photo's person is cut to a 64 px input (20-50 x),
    unlike the training crops, which shrink their pictures by less. `warp` reads the halving at
    which the crop shrinks by at most 2 x; a crop that shrinks the picture by at most 2 x reads the
    picture itself, exactly as `warp_image` does.
    """

    def __init__(self, image: np.ndarray):
        if image.ndim != 3:
            raise DataError(f"ImagePyramid: expected an (H, W, C) image, got shape {image.shape}")
        self.levels = [image]
        self.to_image = [np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])]  # level px -> picture px, per level

    def level(self, k: int) -> int:
        """The level nearest to `k` that exists (made up to `k` while the last level's shorter side is >= 4 px)."""
        while len(self.levels) <= k:
            prev = self.levels[-1]
            h, w = prev.shape[:2]
            if min(h, w) < 4:
                break
            small = cv2.resize(prev, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
            small = small.reshape(*small.shape[:2], prev.shape[2])  # OpenCV drops a single channel's axis
            sx, sy = w / small.shape[1], h / small.shape[0]  # OpenCV's resize: x = (u + 0.5) * sx - 0.5
            self.to_image.append(compose_affine(self.to_image[-1], np.array([[sx, 0.0, 0.5 * sx - 0.5],
                                                                             [0.0, sy, 0.5 * sy - 0.5]])))
            self.levels.append(small)
        return min(k, len(self.levels) - 1)

    def warp(self, affine: np.ndarray, out_size: int, border_value: int = 0) -> np.ndarray:
        """`warp_image(picture, affine, out_size)` read from the level at which it shrinks by at most 2 x."""
        affine = np.asarray(affine, dtype=np.float64)
        scale = math.sqrt(abs(np.linalg.det(affine[:, :2])))  # crop px per picture px
        k = self.level(int(math.floor(math.log2(1.0 / scale)))) if 0 < scale < 0.5 else 0
        return warp_image(self.levels[k], compose_affine(affine, self.to_image[k]), out_size, border_value)


# ----------------------------------------------------------------------------- crop <-> heatmap units

def crop_px_to_normalized(points_px: np.ndarray, input_size: int, heatmap_size: int) -> np.ndarray:
    """Crop pixels (..., 2) -> normalised units 2 u / H - 1, u the heatmap pixel (centre-aligned grids)."""
    u = (np.asarray(points_px, dtype=np.float64) + 0.5) * (heatmap_size / input_size) - 0.5
    return 2.0 * u / heatmap_size - 1.0


def normalized_to_crop_px(points_norm: np.ndarray, input_size: int, heatmap_size: int) -> np.ndarray:
    """Inverse of `crop_px_to_normalized`."""
    u = (np.asarray(points_norm, dtype=np.float64) + 1.0) * heatmap_size / 2.0
    return (u + 0.5) * (input_size / heatmap_size) - 0.5


def crop_px_to_heatmap_px(points_px: np.ndarray, input_size: int, heatmap_size: int) -> np.ndarray:
    """Crop pixels -> heatmap pixels (pixel centres of both grids aligned)."""
    return (np.asarray(points_px, dtype=np.float64) + 0.5) * (heatmap_size / input_size) - 0.5


# ----------------------------------------------------------------------------- Human3.6M lens model

def project_h36m(points_cam: np.ndarray, focal: np.ndarray, centre: np.ndarray, radial_k: np.ndarray,
                 tangential_p: np.ndarray) -> np.ndarray:
    """Project (..., 3) camera-frame points to pixels with Human3.6M's own distortion model (not OpenCV's).

    focal (fx, fy), centre (cx, cy) px; radial_k (k1, k2, k3); tangential_p (p1, p2), where
    metadata.xml's w0 stores them as (p_a, p_b) = (p2, p1). With xn = (X/Z, Y/Z), r2 = |xn|^2:
    x_d = xn (1 + k1 r2 + k2 r2^2 + k3 r2^3 + p1 xn_x + p2 xn_y) + (p1, p2) r2; pixel = f x_d + c.
    """
    pts = np.asarray(points_cam, dtype=np.float64)
    xn = pts[..., :2] / pts[..., 2:3]  # (..., 2)
    r2 = (xn ** 2).sum(-1, keepdims=True)  # (..., 1)
    k1, k2, k3 = np.asarray(radial_k, dtype=np.float64)
    p = np.asarray(tangential_p, dtype=np.float64)
    radial = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    tan = (xn * p).sum(-1, keepdims=True)
    distorted = xn * (radial + tan) + p * r2
    return distorted * np.asarray(focal, dtype=np.float64) + np.asarray(centre, dtype=np.float64)

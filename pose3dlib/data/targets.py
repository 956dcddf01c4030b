"""Training targets: Gaussian heatmaps, depth targets, validity masks."""
from __future__ import annotations

import numpy as np

from ..skeleton import DEPTH_ROOT, MPII16

EDGES = np.asarray(MPII16.edges)  # (14, 2)


def gaussian_heatmaps(joints_hm: np.ndarray, valid: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """One Gaussian per joint, centred at its sub-pixel heatmap position.

    Args:
        joints_hm: (J, 2) joint positions in heatmap pixels (integer = pixel centre).
        valid: (J,) bool; invalid joints get an all-zero map.
        size: heatmap side H (px); sigma: standard deviation (px). sigma 1.75 gives the
            original's 7x7 kernel value 0.8494 at a neighbouring pixel.
    Returns:
        (J, H, H) float32, peak exp(-d^2 / 2 sigma^2) <= 1, exactly symmetric about the joint.
        Each map holds one joint, so overlapping joints never add up (the "max-combine"
        of a shared map is not needed with per-joint channels).
    """
    grid = np.arange(size, dtype=np.float32)
    dx = grid[None, :] - joints_hm[:, 0:1].astype(np.float32)  # (J, H)
    dy = grid[None, :] - joints_hm[:, 1:2].astype(np.float32)  # (J, H)
    gx = np.exp(-dx * dx / np.float32(2 * sigma * sigma))
    gy = np.exp(-dy * dy / np.float32(2 * sigma * sigma))
    maps = gy[:, :, None] * gx[:, None, :]  # (J, H, H), separable Gaussian
    return (maps * np.asarray(valid, dtype=np.float32)[:, None, None]).astype(np.float32)


def depth_scale(joints_2d: np.ndarray, joints_3d: np.ndarray) -> float:
    """Ratio of the summed 2D edge lengths (joints_2d (J, 2)) to the summed xy-projected 3D edge lengths (J, 3)."""
    len_2d = np.linalg.norm(joints_2d[EDGES[:, 0]] - joints_2d[EDGES[:, 1]], axis=-1).sum()
    len_3d = np.linalg.norm(joints_3d[EDGES[:, 0], :2] - joints_3d[EDGES[:, 1], :2], axis=-1).sum()
    if len_3d <= 0:
        raise ValueError("depth_scale: the 3D skeleton has zero projected length")
    return float(len_2d / len_3d)


def depth_target(joints_2d_norm: np.ndarray, joints_3d_mm: np.ndarray, root: int = DEPTH_ROOT) -> np.ndarray:
    """Root-relative depth in the 2D coordinates' units (docs/paper.md, "Depth target").

    depth_j = (z_j - z_root) * s with s = sum of 2D edge lengths / sum of 3D edge lengths
    projected on xy. joints_2d_norm (16, 2) normalised units, joints_3d_mm (16, 3) camera
    frame. Returns (16,) float32.
    """
    s = depth_scale(joints_2d_norm, joints_3d_mm)
    return ((joints_3d_mm[:, 2] - joints_3d_mm[root, 2]) * s).astype(np.float32)


def inside_crop(joints_px: np.ndarray, size: int) -> np.ndarray:
    """(J,) bool: the joint lies inside an S x S crop (pixel centres 0..S-1, edges at -0.5 and S-0.5)."""
    return np.all((joints_px >= -0.5) & (joints_px < size - 0.5), axis=-1)

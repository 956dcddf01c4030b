"""Decoding network outputs: heatmaps -> sub-pixel 2D joints, 2D + depth -> 3D millimetres.

Every function takes numpy arrays or torch tensors and returns the same kind (torch
results stay on the input's device). Conventions (docs/architecture.md):
  - a heatmap pixel u (column x or row y) has normalised coordinate 2 u / H - 1, H the
    heatmap side; crop pixels convert through the heatmap grid with pixel centres aligned
    (`camera.crop_px_to_normalized`: u = (p + 0.5) H / S - 0.5 for an S-pixel crop), not
    with 2 p / S - 1, which would be (S / H - 1) / 2 crop pixels off;
  - depth is root-relative (`skeleton.DEPTH_ROOT`) in the same normalised units as x, y.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .skeleton import DEPTH_ROOT, MPII16

REFINE_STEP_PX = 0.25  # quarter-pixel shift toward the higher neighbour (2D hourglass practice)

_EDGE_A = [a for a, _ in MPII16.edges]
_EDGE_B = [b for _, b in MPII16.edges]


def _to_torch(x: Any) -> tuple[torch.Tensor, bool]:
    """(tensor, was_numpy): numpy arrays are wrapped without copying."""
    if isinstance(x, torch.Tensor):
        return x, False
    return torch.from_numpy(np.asarray(x, order="C")), True


def _back(t: torch.Tensor, was_numpy: bool) -> Any:
    return t.numpy() if was_numpy else t


def _check_shape(x: Any, name: str, expected: tuple, pattern: str) -> None:
    """Raise ValueError unless x.shape matches `expected` (None = any size)."""
    shape = tuple(x.shape)
    if len(shape) != len(expected) or any(e is not None and e != s for e, s in zip(expected, shape)):
        raise ValueError(f"{name} must have shape {pattern}, got {shape}")


# ----------------------------------------------------------------------------- heatmaps -> 2D

SUBPIXEL_METHODS = ("quarter", "log_parabola")


def heatmaps_to_joints(heatmaps: Any, subpixel: str = "quarter") -> tuple[Any, Any]:
    """Argmax of each heatmap with sub-pixel refinement.

    subpixel="quarter" (the 2D hourglass practice): the integer argmax (x = column,
    y = row) moves REFINE_STEP_PX toward the higher of its two column neighbours (x) and
    of its two row neighbours (y); no move on the border or when the neighbours are equal.
    The original release's version differs in two corner cases: it moved +REFINE_STEP_PX
    on a tie, and refined only peaks away from the border on both axes.

    subpixel="log_parabola": a parabola through the logarithms of the maximum and its two
    neighbours on each axis; its vertex is the offset. For a Gaussian peak
    a exp(-(u - u0)^2 / 2 s^2) this recovers u0 exactly, whatever s, since the log of a
    Gaussian is a parabola. Values are clamped to a small positive floor before the log;
    the offset is clipped to [-0.5, 0.5] px and is 0 on the border or where the three
    values are not peaked (non-negative curvature).

    Coordinates are returned wherever the maximum is, even for an all-zero heatmap: use
    `maxvals` to judge confidence.

    Args:
        heatmaps: (B, J, H, W).
        subpixel: one of SUBPIXEL_METHODS.
    Returns:
        joints: (B, J, 2) float, (x, y) in heatmap pixels.
        maxvals: (B, J), the heatmap maxima.
    """
    if subpixel not in SUBPIXEL_METHODS:
        raise ValueError(f"subpixel must be one of {SUBPIXEL_METHODS}, got {subpixel!r}")
    _check_shape(heatmaps, "heatmaps", (None, None, None, None), "(B, J, H, W)")
    hm, was_numpy = _to_torch(heatmaps)
    b, j, h, w = hm.shape
    if h == 0 or w == 0:
        raise ValueError(f"heatmaps must have a non-empty H x W grid, got shape {tuple(hm.shape)}")
    flat = hm.reshape(b, j, h * w)  # (B, J, H*W)
    maxvals, idx = flat.max(dim=-1)  # (B, J) each
    y, x = idx // w, idx % w  # (B, J) int64

    def at(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        return flat.gather(-1, (yy * w + xx).unsqueeze(-1)).squeeze(-1)  # (B, J)

    inner_x = (x > 0) & (x < w - 1)
    inner_y = (y > 0) & (y < h - 1)
    dtype = hm.dtype if hm.is_floating_point() else torch.float32
    right, left = at(y, (x + 1).clamp(max=w - 1)), at(y, (x - 1).clamp(min=0))
    down, up = at((y + 1).clamp(max=h - 1), x), at((y - 1).clamp(min=0), x)
    if subpixel == "quarter":
        dx = REFINE_STEP_PX * torch.sign(right - left).to(dtype) * inner_x
        dy = REFINE_STEP_PX * torch.sign(down - up).to(dtype) * inner_y
    else:
        dx = _log_parabola_offset(left, maxvals, right, dtype) * inner_x
        dy = _log_parabola_offset(up, maxvals, down, dtype) * inner_y
    joints = torch.stack((x.to(dtype) + dx, y.to(dtype) + dy), -1)
    return _back(joints, was_numpy), _back(maxvals, was_numpy)  # (B, J, 2), (B, J)


LOG_FLOOR = 1e-6  # floor of heatmap values before the log in the log-parabola refinement


def _log_parabola_offset(before: torch.Tensor, centre: torch.Tensor, after: torch.Tensor,
                         dtype: torch.dtype) -> torch.Tensor:
    """Vertex offset in (-0.5, 0.5) of the parabola through log values at -1, 0, +1 (0 if not peaked)."""
    lb, lc, la = (torch.log(v.to(torch.float64).clamp(min=LOG_FLOOR)) for v in (before, centre, after))
    curvature = lb - 2 * lc + la  # < 0 at a peak
    peaked = curvature < 0
    offset = torch.where(peaked, 0.5 * (lb - la) / torch.where(peaked, curvature, -torch.ones_like(curvature)),
                         torch.zeros_like(curvature))
    # At a peak (the centre is the argmax, so lc >= lb, la) the vertex is within half a pixel already; the
    # clamp only guards against rounding.
    return offset.clamp(-0.5, 0.5).to(dtype)


def heatmap_to_normalized(joints_hm: Any, heatmap_size: int) -> Any:
    """Heatmap pixels -> normalised units: u -> 2 u / heatmap_size - 1. Any shape (..., 2)."""
    return joints_hm * (2.0 / heatmap_size) - 1.0


def normalized_to_heatmap(joints_norm: Any, heatmap_size: int) -> Any:
    """Normalised units -> heatmap pixels: n -> (n + 1) heatmap_size / 2 (inverse of heatmap_to_normalized)."""
    return (joints_norm + 1.0) * (heatmap_size / 2.0)


# ----------------------------------------------------------------------------- flip testing

def flip_back(heatmaps: Any) -> Any:
    """Heatmaps predicted on a mirrored image -> the original image's frame.

    Mirrors the width axis and swaps left/right joints (`MPII16.flip_permutation`); an
    involution. The heatmap grid is mirrored exactly (column c -> W - 1 - c).

    Args:
        heatmaps: (B, 16, H, W).
    Returns:
        (B, 16, H, W), same kind as the input.
    """
    _check_shape(heatmaps, "heatmaps", (None, MPII16.num_joints, None, None), "(B, 16, H, W)")
    perm = MPII16.flip_permutation
    if isinstance(heatmaps, torch.Tensor):
        return heatmaps[:, torch.as_tensor(perm, device=heatmaps.device)].flip(-1)
    return np.ascontiguousarray(np.asarray(heatmaps)[:, perm, :, ::-1])


def flip_back_depth(depth: Any) -> Any:
    """Depths predicted on a mirrored image -> the original joint order, (B, 16) -> (B, 16).

    A horizontal mirror leaves depth unchanged, so only left/right joints swap.
    """
    _check_shape(depth, "depth", (None, MPII16.num_joints), "(B, 16)")
    perm = MPII16.flip_permutation
    if isinstance(depth, torch.Tensor):
        return depth[:, torch.as_tensor(perm, device=depth.device)]
    return np.asarray(depth)[:, perm].copy()


# ----------------------------------------------------------------------------- crop -> image

def joints_to_image(joints_crop_px: Any, crop: Any) -> Any:
    """Crop pixels -> original-image pixels by inverting each sample's 2x3 affine.

    Args:
        joints_crop_px: (N, J, 2) crop (network input) pixels.
        crop: (N, 2, 3) affine A|b mapping original-image px p to crop px A p + b (the
            sample dict's `crop`).
    Returns:
        (N, J, 2) original-image pixels, p = A^-1 (q - b).
    """
    _check_shape(joints_crop_px, "joints_crop_px", (None, None, 2), "(N, J, 2)")
    n = joints_crop_px.shape[0]
    _check_shape(crop, "crop", (n, 2, 3), f"(N, 2, 3) = ({n}, 2, 3)")
    q, was_numpy = _to_torch(joints_crop_px)
    m, _ = _to_torch(crop)
    dtype = torch.promote_types(q.dtype, m.dtype)
    if not dtype.is_floating_point:
        dtype = torch.float64
    q, m = q.to(dtype), m.to(device=q.device, dtype=dtype)
    a, b = m[:, :, :2], m[:, :, 2]  # (N, 2, 2), (N, 2)
    det = torch.linalg.det(a)  # (N,)
    if torch.any(det == 0):
        bad = torch.nonzero(det == 0).flatten()[:5].tolist()
        raise ValueError(f"crop affines {bad} are singular: cannot invert")
    p = torch.linalg.solve(a.unsqueeze(1), (q - b.unsqueeze(1)).unsqueeze(-1)).squeeze(-1)  # (N, J, 2)
    return _back(p, was_numpy)


# ----------------------------------------------------------------------------- 2D + depth -> 3D

def bone_lengths(joints: Any) -> Any:
    """The 14 MPII16 edge lengths, in `MPII16.edges` order, (..., 16, D) -> (..., 14); numpy or torch."""
    _check_shape(joints, "joints", tuple([None] * (joints.ndim - 2)) + (MPII16.num_joints, None), "(..., 16, D)")
    d = joints[..., _EDGE_A, :] - joints[..., _EDGE_B, :]  # (..., 14, D)
    return ((d**2).sum(-1)) ** 0.5


def bone_length_sum(joints: Any) -> Any:
    """Sum of the 14 MPII16 edge lengths, (..., 16, D) -> (...); numpy or torch."""
    return bone_lengths(joints).sum(-1)


def mean_bone_sum_mm(joints_3d_mm: Any) -> float:
    """Mean over samples of the summed 14 edge lengths (mm) of (N, 16, 3) skeletons.

    The `bone_sum_mm` that `reconstruct_3d` uses, computed from the training subjects.
    """
    _check_shape(joints_3d_mm, "joints_3d_mm", (None, MPII16.num_joints, 3), "(N, 16, 3)")
    if joints_3d_mm.shape[0] == 0:
        raise ValueError("joints_3d_mm has no samples")
    return float(bone_length_sum(joints_3d_mm).sum()) / joints_3d_mm.shape[0]


def reconstruct_3d(joints_2d_norm: Any, depth_norm: Any, bone_sum_mm: Any) -> Any:
    """2D joints + depth (normalised units) -> root-relative 3D skeleton in millimetres.

    Weak perspective: x, y (image axes, right and down) and depth (away from the camera)
    are in the same normalised units, so (x, y, depth) is the skeleton up to one scale.
    The skeleton is made root-relative (`skeleton.DEPTH_ROOT`) and scaled so its 14 edge
    lengths sum to `bone_sum_mm` (e.g. `mean_bone_sum_mm` of the training subjects).

    Args:
        joints_2d_norm: (N, 16, 2) normalised crop coordinates.
        depth_norm: (N, 16) depth, normalised units (root-relative or not: the root is subtracted).
        bone_sum_mm: float, or (N,) per sample.
    Returns:
        (N, 16, 3) mm, camera axes, root at the origin.
    """
    _check_shape(joints_2d_norm, "joints_2d_norm", (None, MPII16.num_joints, 2), "(N, 16, 2)")
    n = joints_2d_norm.shape[0]
    _check_shape(depth_norm, "depth_norm", (n, MPII16.num_joints), f"(N, 16) = ({n}, 16)")
    xy, was_numpy = _to_torch(joints_2d_norm)
    d, _ = _to_torch(depth_norm)
    dtype = torch.promote_types(xy.dtype, d.dtype)
    if not dtype.is_floating_point:
        dtype = torch.float32
    p = torch.cat((xy.to(dtype), d.to(device=xy.device, dtype=dtype).unsqueeze(-1)), -1)  # (N, 16, 3)
    p = p - p[:, DEPTH_ROOT : DEPTH_ROOT + 1]
    target, _ = _to_torch(bone_sum_mm)
    target = target.to(device=p.device, dtype=dtype)
    if target.ndim not in (0, 1) or (target.ndim == 1 and target.shape[0] != n):
        raise ValueError(f"bone_sum_mm must be a float or have shape (N,) = ({n},), got {tuple(target.shape)}")
    valid = torch.isfinite(target) & (target > 0)  # 0 gave a skeleton of zeros, < 0 a mirrored one
    if not bool(valid.all()):
        bad = target.reshape(-1)[~valid.reshape(-1)][:5].tolist()
        raise ValueError(f"bone_sum_mm must be finite and > 0, got {bad} (a checkpoint's own scale: "
                         "engine.checkpoint.bone_sum_mm, or the config load_demo_model returns)")
    sums = bone_length_sum(p)  # (N,)
    if torch.any(sums == 0):
        bad = torch.nonzero(sums == 0).flatten()[:5].tolist()
        raise ValueError(f"samples {bad} have all joints at one point: cannot scale to bone_sum_mm")
    return _back(p * (target / sums)[:, None, None], was_numpy)

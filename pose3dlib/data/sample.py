"""Assembling one sample dict (docs/architecture.md, "A sample") from an image and its labels."""
from __future__ import annotations

from pathlib import Path

import cv2
import h5py
import numpy as np

from .. import camera
from ..config import DataConfig
from ..engine.errors import DataError
from ..skeleton import DEPTH_ROOT, MPII16
from . import targets
from .image_file import read_image_file
from .transforms import Augmentation, color_jitter

NUM_JOINTS = MPII16.num_joints


def read_image(path: Path, index: int) -> np.ndarray:
    """Read a JPEG as (H, W, 3) uint8 RGB; a missing or unreadable file raises DataError naming it and the row."""
    try:
        image = read_image_file(path, cv2.IMREAD_COLOR)
    except DataError as e:
        raise DataError(f"image of sample {index} is missing or unreadable: {e}") from None
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def make_sample(image: np.ndarray, joints_px: np.ndarray, annotated: np.ndarray, joints_3d_cam: np.ndarray | None,
                centre: np.ndarray, box_px: float, aug: Augmentation, cfg: DataConfig, *, subject: int, action: int,
                index: int, frames_person: bool = True) -> dict[str, np.ndarray]:
    """Crop, augment and build targets for one person.

    Args:
        image: (H, W, 3) uint8 RGB source image.
        joints_px: (16, 2) joints in source pixels; annotated: (16,) bool (False: no label).
        joints_3d_cam: (16, 3) camera-frame mm, or None for 2D-only samples.
        centre (2,), box_px: the un-augmented crop box in source pixels.
        aug: the augmentation (IDENTITY for none).
        frames_person: False for a 2D-only crop that does not frame a whole person
            (`transforms.crop_without_person`): every heatmap target is zero and
            supervised (`heatmap_valid`), no joint is `valid`, `joints_2d` is zero.
    Returns the sample dict; `crop` includes the augmentation (and the mirror, if flipped:
    labels are then swapped left/right, so the crop maps original pixels to crop pixels of
    the swapped joints).
    """
    size, hm = cfg.input_size, cfg.heatmap_size
    affine = camera.crop_affine(centre, box_px * aug.scale, aug.rotation_deg, size, flip=aug.flip)  # (2, 3)
    crop = color_jitter(camera.warp_image(image, affine, size), aug.color_scale)  # (S, S, 3)
    j2 = camera.apply_affine(joints_px, affine)  # (16, 2) crop px
    annotated = np.asarray(annotated, dtype=bool).copy()
    has_depth = joints_3d_cam is not None
    rel = np.zeros((NUM_JOINTS, 3))
    if has_depth:
        rel = joints_3d_cam - joints_3d_cam[DEPTH_ROOT]  # (16, 3) root-relative
        rel[:, :2] = rel[:, :2] @ camera.affine_rotation(affine).T  # image rotation/mirror acts on camera x, y
    if aug.flip:
        perm = MPII16.flip_permutation
        j2, annotated, rel = j2[perm], annotated[perm], rel[perm]
    valid = annotated & targets.inside_crop(j2, size)
    norm = camera.crop_px_to_normalized(j2, size, hm)  # (16, 2)
    norm[~annotated] = 0.0  # unannotated joints carry no coordinates; `valid` masks them
    if not frames_person:  # no joint to locate: every heatmap target zero (and supervised, below)
        if has_depth:
            raise DataError(f"sample {index}: a crop without a whole person must be 2D-only (it has 3D labels)")
        valid = np.zeros(NUM_JOINTS, dtype=bool)
        norm[:] = 0.0
    heatmaps = targets.gaussian_heatmaps(camera.crop_px_to_heatmap_px(j2, size, hm), valid, hm, cfg.sigma)
    depth = targets.depth_target(norm, rel) if has_depth else np.zeros(NUM_JOINTS, np.float32)
    return {
        "image": np.ascontiguousarray(crop.transpose(2, 0, 1)),  # (3, S, S) uint8 RGB
        "heatmaps": heatmaps,  # (16, H, H)
        "valid": valid,
        "heatmap_valid": valid | (not frames_person),
        "joints_2d": norm.astype(np.float32),
        "has_depth": np.bool_(has_depth),
        "depth": depth,
        "joints_3d_mm": rel.astype(np.float32),
        "subject": np.int64(subject),
        "action": np.int64(action),
        "index": np.int64(index),
        "crop": affine.astype(np.float32),
    }


def check_finite(path: Path, arrays: dict[str, np.ndarray], keys: tuple[str, ...]) -> None:
    """Raise DataError naming the file, key and first bad row if any of `keys` holds NaN or inf."""
    for k in keys:
        if k not in arrays:
            continue
        if not (np.issubdtype(arrays[k].dtype, np.number) or arrays[k].dtype == bool) or np.ndim(arrays[k]) == 0:
            raise DataError(f"{path}: {k!r} is {arrays[k].dtype} of shape {np.shape(arrays[k])}; "
                            "expected numbers, one row per sample")
        a = np.asarray(arrays[k], dtype=np.float64)
        bad = ~np.isfinite(a).all(axis=tuple(range(1, a.ndim)))  # (N,) rows with any NaN/inf
        if bad.any():
            raise DataError(f"{path}: {k!r} has NaN or infinite values in {int(bad.sum())} rows "
                            f"(first: row {int(np.flatnonzero(bad)[0])})")


def check_whole_numbers(path: Path, arrays: dict[str, np.ndarray], keys: tuple[str, ...]) -> None:
    """Raise DataError naming the file, key and first bad row if any of `keys` (ids and indices that
    may be stored as floats) holds NaN, inf or a fraction: cast to int64, a NaN would become a
    nonsense index that fails much later ("image not found") without naming its key."""
    check_finite(path, arrays, keys)
    for k in keys:
        if k in arrays and np.issubdtype(arrays[k].dtype, np.floating):
            a = np.asarray(arrays[k], dtype=np.float64)
            bad = (a != np.round(a)).any(axis=tuple(range(1, a.ndim)))
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise DataError(f"{path}: {k!r} holds fractions in {int(bad.sum())} rows (first: row {row}, "
                                f"{a[row].ravel()[:3].tolist()}); expected whole numbers")


def read_hdf5_datasets(path: Path) -> dict[str, np.ndarray]:
    """Every top-level dataset of an HDF5 file as a numpy array.

    Raises DataError naming the file when it is not HDF5, truncated or unreadable (h5py
    reports these as OSError and friends).
    """
    try:
        with h5py.File(path, "r") as f:
            return {k: f[k][()] for k in f if isinstance(f[k], h5py.Dataset)}
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as e:
        raise DataError(f"{path}: not a readable HDF5 file (truncated or corrupt?): "
                        f"{' '.join(str(e).split())[:200]}") from None


def check_schema(path: Path, arrays: dict[str, np.ndarray], schema: dict[str, tuple],
                 text_keys: tuple[str, ...] = (), optional: dict[str, tuple] | None = None) -> int:
    """Check keys, shapes and numeric dtypes against `schema` (key -> shape after the row axis).

    Keys in `text_keys` hold strings; every other schema key must be numeric. Keys of `optional`
    are checked the same way where the file has them. Returns the row count.
    """
    schema = {**schema, **{k: shape for k, shape in (optional or {}).items() if k in arrays}}
    missing = [k for k in schema if k not in arrays]
    if missing:
        raise DataError(f"{path}: missing datasets {missing}; expected {sorted(schema)}")
    scalars = [k for k in schema if np.ndim(arrays[k]) == 0]
    if scalars:
        raise DataError(f"{path}: datasets {scalars} are scalars; expected one row per sample")
    not_numeric = [f"{k} ({arrays[k].dtype})" for k in schema if k not in text_keys
                   and not (np.issubdtype(arrays[k].dtype, np.number) or arrays[k].dtype == bool)]
    if not_numeric:
        raise DataError(f"{path}: non-numeric datasets {not_numeric}; expected numbers")
    n = len(arrays[next(iter(schema))])
    if n == 0:
        raise DataError(f"{path}: no rows (an empty annotation file)")
    wrong = [f"{k} {tuple(arrays[k].shape)} (expected {(n, *shape)})" for k, shape in schema.items()
             if tuple(arrays[k].shape) != (n, *shape)]
    if wrong:
        raise DataError(f"{path}: wrong shapes: {'; '.join(wrong)}")
    return n

"""MPII-format dataset (real or synthetic): train.h5 / val.h5 plus an image folder.

Schema (docs/data.md): imgname (N,) bytes, part (N, 16, 2) px with unannotated joints at
(0, 0), center (N, 2) px, scale (N,) = person size / 200 px, visible (N, 16), and when
present normalize (N,) head size px (the PCKh normaliser). Extras are ignored.
Unannotated joints become `annotated == False` at load time and are never used as zeros.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from .. import camera
from ..config import DataConfig
from ..errors import DataError
from ..paths import resolve
from .sample import check_finite, check_schema, make_sample, read_hdf5_datasets, read_image
from .transforms import IDENTITY, sample_augmentation, sample_rng

SCHEMA: dict[str, tuple] = {"imgname": (), "part": (16, 2), "center": (2,), "scale": (), "visible": (16,)}
OPTIONAL_SCHEMA: dict[str, tuple] = {"normalize": ()}
SPLITS = ("train", "val")
SCALE_PX = 200.0  # MPII scale unit: person size / 200 px


def read_annotations(path: str | Path) -> dict[str, np.ndarray]:
    """All datasets of an MPII annotation file; `imgname` decoded to str; schema- and NaN-checked.

    Returns at least imgname, part, center, scale, visible, and normalize when the file has it.
    """
    path = resolve(path)
    if not path.is_file():
        raise DataError(f"MPII annotation file not found: {path}")
    arrays = read_hdf5_datasets(path)
    n = check_schema(path, arrays, SCHEMA, text_keys=("imgname",))
    for k, shape in OPTIONAL_SCHEMA.items():
        if k in arrays and tuple(arrays[k].shape) != (n, *shape):
            raise DataError(f"{path}: wrong shape: {k} {tuple(arrays[k].shape)} (expected {(n, *shape)})")
    check_finite(path, arrays, ("part", "center", "scale", "visible", "normalize"))
    if np.any(arrays["scale"] <= 0):
        raise DataError(f"{path}: 'scale' must be positive (row {int(np.flatnonzero(arrays['scale'] <= 0)[0])})")
    names = arrays["imgname"]
    arrays["imgname"] = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in names], dtype=object)
    return arrays


class MPIIDataset(Dataset):
    """One split ("train" -> train.h5, "val" -> val.h5) of an MPII-format root.

    Arrays for evaluation (original-image pixels): part (N, 16, 2), annotated (N, 16) bool,
    visible (N, 16), normalize (N,) head size or None, centre (N, 2), box_px (N,) and
    crops (N, 2, 3) un-augmented affines to crop pixels.
    """

    def __init__(self, root: str | Path, split: str, data_cfg: DataConfig, augment: bool = False, seed: int = 0):
        if split not in SPLITS:
            raise DataError(f"MPIIDataset split must be one of {list(SPLITS)}, got {split!r}")
        self.root = resolve(root)
        self.annotation_path = self.root / f"{split}.h5"
        self.image_root = self.root / data_cfg.image_dir
        self.cfg, self.split, self.augment, self.seed, self.epoch = data_cfg, split, augment, int(seed), 0
        a = read_annotations(self.annotation_path)
        self.imgname = a["imgname"]
        self.part = a["part"].astype(np.float64)
        self.annotated = ~np.all(self.part == 0.0, axis=-1)  # (N, 16): (0, 0) marks "no label"
        self.visible = a["visible"].astype(np.float64) * self.annotated
        self.normalize = a["normalize"].astype(np.float64) if "normalize" in a else None
        self.scale = a["scale"].astype(np.float64)
        shift = np.stack([np.zeros_like(self.scale), data_cfg.mpii_center_shift * self.scale], axis=1)
        self.centre = a["center"].astype(np.float64) + shift  # (N, 2) crop centre
        self.box_px = SCALE_PX * data_cfg.mpii_box_factor * self.scale  # (N,) crop side
        self.actions = np.zeros(len(self.part), np.int64)  # MPII has no action labels here

    def __len__(self) -> int:
        return len(self.part)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream of `epoch` (call before iterating each epoch)."""
        self.epoch = int(epoch)

    def image_path(self, i: int) -> Path:
        return self.image_root / self.imgname[i]

    @property
    def crops(self) -> np.ndarray:
        """(N, 2, 3) un-augmented crop affines from image pixels to crop pixels."""
        return np.stack([camera.crop_affine(c, b, 0.0, self.cfg.input_size)
                         for c, b in zip(self.centre, self.box_px)]).astype(np.float32)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        i = int(i)
        image = read_image(self.image_path(i), i)
        aug = sample_augmentation(sample_rng(self.seed, self.epoch, i), self.cfg) if self.augment else IDENTITY
        return make_sample(image, self.part[i], self.annotated[i], None, self.centre[i], float(self.box_px[i]), aug,
                           self.cfg, subject=0, action=0, index=i)

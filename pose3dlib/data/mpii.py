"""MPII-format dataset (real or synthetic): train.h5 / val.h5 plus an image folder.

Schema (docs/data.md): imgname (N,) bytes, part (N, 16, 2) px with unannotated joints at
(0, 0), center (N, 2) px, scale (N,) = person size / 200 px, visible (N, 16), and when
present normalize (N,) head size px (the PCKh normaliser; in val.h5 > 0 on every row with
an annotated joint). Extras are ignored.
Unannotated joints become `annotated == False` at load time and are never used as zeros.

Crop convention (Newell's 2D stacked-hourglass `train.h5` / `valid.h5`): `center` and
`scale` already hold the adjusted crop (objpos moved down by 15 x raw scale px, scale =
raw scale x 1.25), so a row is cropped as stored: a square of 200 x scale px around
`center` (`crop_boxes`). The adjustment is applied once, by `convert-mpii` from the .mat.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from .. import camera
from ..config import DataConfig
from ..engine.errors import DataError
from ..engine.paths import resolve
from .image_cache import ImageCache, read_with
from .sample import check_finite, check_schema, make_sample, read_hdf5_datasets, read_image
from .transforms import IDENTITY, crop_without_person, loose_framing, sample_augmentation, sample_rng

SCHEMA: dict[str, tuple] = {"imgname": (), "part": (16, 2), "center": (2,), "scale": (), "visible": (16,)}
OPTIONAL_SCHEMA: dict[str, tuple] = {"normalize": ()}
SPLITS = ("train", "val")
SCALE_PX = 200.0  # MPII scale unit: person size / 200 px
# The usual crop of a raw MPII annotation (objpos, scale), as stored in Newell's h5 files:
CENTER_SHIFT_PER_SCALE = 15.0  # centre = objpos moved down by 15 x raw scale px
BOX_FACTOR = 1.25  # stored scale = raw scale x 1.25


def adjust_raw_crop(objpos_px: np.ndarray, raw_scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw MPII (objpos (N, 2) px, scale (N,)) -> the stored crop (center (N, 2) px, scale (N,)).

    Apply exactly once, when converting raw annotations (the .mat); Newell's h5 files
    already hold the result. Example (image 005808361.jpg): (966, 340), 4.718488 ->
    (966, 410.777), 5.898110.
    """
    objpos_px = np.asarray(objpos_px, dtype=np.float64)
    raw_scale = np.asarray(raw_scale, dtype=np.float64)
    shift = np.stack([np.zeros_like(raw_scale), CENTER_SHIFT_PER_SCALE * raw_scale], axis=-1)
    return objpos_px + shift, raw_scale * BOX_FACTOR


def read_annotations(path: str | Path) -> dict[str, np.ndarray]:
    """All datasets of an MPII annotation file; `imgname` decoded to str; schema- and NaN-checked.

    Returns at least imgname, part, center, scale, visible, and normalize when the file has it.
    """
    path = resolve(path)
    if not path.is_file():
        raise DataError(f"MPII annotation file not found: {path}")
    arrays = read_hdf5_datasets(path)
    check_schema(path, arrays, SCHEMA, text_keys=("imgname",), optional=OPTIONAL_SCHEMA)
    check_finite(path, arrays, ("part", "center", "scale", "visible", "normalize"))
    if np.any(arrays["scale"] <= 0):
        raise DataError(f"{path}: 'scale' must be positive (row {int(np.flatnonzero(arrays['scale'] <= 0)[0])})")
    names = arrays["imgname"]
    arrays["imgname"] = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in names], dtype=object)
    return arrays


def check_head_sizes(path: Path, normalize: np.ndarray, scored: np.ndarray) -> None:
    """DataError naming the file, key and first bad row unless `normalize` (the PCKh head size, (N,) px)
    is positive and finite on every `scored` row ((N,) bool: the rows with an annotated joint, which
    PCKh divides by it)."""
    bad = scored & ~(np.isfinite(normalize) & (normalize > 0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{path}: 'normalize' (the PCKh head size) is {normalize[row]:g} in row {row} "
                        f"({int(bad.sum())} of {len(normalize)} rows); expected a head size in px, > 0 and finite")


def crop_boxes(annotations: dict[str, np.ndarray], data_cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """The crop of every row in original-image pixels, Newell's convention (as stored).

    Args:
        annotations: the dict `read_annotations` returns (uses `center` (N, 2) and `scale` (N,)).
        data_cfg: the data section; the convention has no settings, so nothing in it changes the box.
    Returns:
        centers (N, 2) px and sides (N,) px = 200 x scale.
    """
    del data_cfg  # cropped as stored; the .mat converter applied the usual adjustment once
    centers = np.asarray(annotations["center"], dtype=np.float64)
    sides = SCALE_PX * np.asarray(annotations["scale"], dtype=np.float64)
    return centers, sides


class MPIIDataset(Dataset):
    """One split ("train" -> train.h5, "val" -> val.h5) of an MPII-format root.

    Arrays for evaluation (original-image pixels): part (N, 16, 2), annotated (N, 16) bool,
    visible (N, 16), normalize (N,) head size or None, centre (N, 2), box_px (N,) and
    crops (N, 2, 3) un-augmented affines to crop pixels. With `augment`, `loose_crop_prob` of
    the samples are framed loosely and off-centre (`transforms.loose_framing`).
    """

    def __init__(self, root: str | Path, split: str, data_cfg: DataConfig, augment: bool = False, seed: int = 0,
                 loose_crop_prob: float = 0.0):
        if split not in SPLITS:
            raise DataError(f"MPIIDataset split must be one of {list(SPLITS)}, got {split!r}")
        self.root = resolve(root)
        self.annotation_path = self.root / f"{split}.h5"
        self.image_root = self.root / data_cfg.image_dir
        self.cfg, self.split, self.augment, self.seed, self.epoch = data_cfg, split, augment, int(seed), 0
        self.loose_crop_prob = float(loose_crop_prob)  # with augment: transforms.loose_framing
        a = read_annotations(self.annotation_path)
        self.imgname = a["imgname"]
        self.part = a["part"].astype(np.float64)
        self.annotated = ~np.all(self.part == 0.0, axis=-1)  # (N, 16): (0, 0) marks "no label"
        self.visible = a["visible"].astype(np.float64) * self.annotated
        self.normalize = a["normalize"].astype(np.float64) if "normalize" in a else None
        if split == "val":  # only validation scores PCKh (training never reads the head sizes)
            if self.normalize is None:
                raise DataError(f"{self.annotation_path}: no 'normalize' (the PCKh head size per row, (N,) px); "
                                "the validation split needs it to score PCKh")
            check_head_sizes(self.annotation_path, self.normalize, self.annotated.any(axis=1))
        self.scale = a["scale"].astype(np.float64)
        self.centre, self.box_px = crop_boxes(a, data_cfg)  # (N, 2) crop centre, (N,) crop side
        self.actions = np.zeros(len(self.part), np.int64)  # MPII has no action labels here
        self.image_cache: ImageCache | None = None  # decoded pictures kept between epochs (training only)

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
        image = read_with(self.image_cache, self.image_path(i), i)
        centre, aug, elsewhere = self.centre[i], IDENTITY, None
        if self.augment:
            rng = sample_rng(self.seed, self.epoch, i)
            aug = sample_augmentation(rng, self.cfg)
            elsewhere = crop_without_person(rng, self.cfg, aug, centre, float(self.box_px[i]), self.part[i],
                                            self.annotated[i])
            loose = None if elsewhere else loose_framing(rng, self.loose_crop_prob, aug, centre,
                                                         float(self.box_px[i]), BOX_FACTOR)
            centre, aug = elsewhere or loose or (centre, aug)
        return self._sample(i, image, centre, float(self.box_px[i]), aug, frames_person=elsewhere is None)

    def sample_at(self, i: int, centre: np.ndarray, box_px: float) -> dict[str, np.ndarray]:
        """Sample i cropped at another square box (image px), without augmentation (a second pass's input)."""
        i = int(i)
        return self._sample(i, read_image(self.image_path(i), i), centre, float(box_px), IDENTITY)

    def _sample(self, i: int, image: np.ndarray, centre: np.ndarray, box_px: float, aug,
                frames_person: bool = True) -> dict[str, np.ndarray]:
        return make_sample(image, self.part[i], self.annotated[i], None, centre, box_px, aug, self.cfg,
                           subject=0, action=0, index=i, frames_person=frames_person)

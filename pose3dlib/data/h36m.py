"""Human3.6M-format dataset (real or synthetic): one annotation HDF5 file plus JPEG crops.

Schema (docs/data.md): id, joint_2d (N, 16, 2)
pixels in the image, joint_3d_mono (N, 16, 3) camera-frame mm, bbox (N, 4), subject,
action, subaction, camera, istrain (N,); the extras `intrinsics` (N, 4) and `sequence` (N,) are
checked where present (OPTIONAL_SCHEMA), other extra datasets are ignored. Images:
`<root>/<image_dir>/s_SS_act_AA_subact_BB_ca_CC/s_SS_act_AA_subact_BB_ca_CC_<id:06d>.jpg`.
The crop is the whole (pre-cropped) image, as in the original release.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from .. import camera
from ..config import DataConfig
from ..engine.errors import DataError
from ..engine.paths import resolve
from ..skeleton import DEPTH_ROOT
from .actions import dataset_action_name
from .convert.common import check_person_units
from .image_cache import ImageCache, read_with
from .sample import check_finite, check_schema, check_whole_numbers, make_sample, read_hdf5_datasets, read_image
from .transforms import IDENTITY, sample_augmentation, sample_rng

SCHEMA: dict[str, tuple] = {
    "id": (), "joint_2d": (16, 2), "joint_3d_mono": (16, 3), "bbox": (4,), "subject": (), "action": (),
    "subaction": (), "camera": (), "istrain": (),
}
# Extra datasets, checked where a file has them: `intrinsics`, each synthetic crop's fx, fy, cx, cy,
# and `sequence`, the test sequence (1..6) of each row of a converted MPI-INF-3DHP test set.
OPTIONAL_SCHEMA: dict[str, tuple] = {"intrinsics": (4,), "sequence": ()}
MPI3DHP_TEST_SEQUENCES = (1, 2, 3, 4, 5, 6)
SPLITS = {"train": 1, "test": 0}
UNITS_SAMPLE_ROWS = 10_000  # rows (evenly spaced) whose 3D person extent tells millimetres from metres


def read_annotations(path: str | Path) -> dict[str, np.ndarray]:
    """All datasets of a Human3.6M annotation file as numpy arrays, schema- and NaN-checked.

    Also refused: `istrain` other than 0 / 1, and `joint_3d_mono` whose people span under
    100 "mm" (metres; `convert.common.check_person_units`, on at most UNITS_SAMPLE_ROWS rows).
    """
    path = resolve(path)
    if not path.is_file():
        raise DataError(f"Human3.6M annotation file not found: {path}")
    arrays = read_hdf5_datasets(path)
    check_schema(path, arrays, SCHEMA, optional=OPTIONAL_SCHEMA)
    check_finite(path, arrays, ("joint_2d", "joint_3d_mono", "bbox", "intrinsics"))
    check_whole_numbers(path, arrays, ("subject", "action", "subaction", "camera", "id", "sequence"))
    check_istrain(path, arrays["istrain"])
    if "sequence" in arrays and len(bad := np.setdiff1d(arrays["sequence"], MPI3DHP_TEST_SEQUENCES)):
        raise DataError(f"{path}: 'sequence' holds {bad[:5].tolist()}; an MPI-INF-3DHP test sequence is "
                        f"{min(MPI3DHP_TEST_SEQUENCES)}..{max(MPI3DHP_TEST_SEQUENCES)}")
    joints_3d = arrays["joint_3d_mono"]
    step = max(1, len(joints_3d) // UNITS_SAMPLE_ROWS)  # a strided view: cheap for any file size
    check_person_units(joints_3d[::step], "mm", f"{path}: 'joint_3d_mono'")  # the converters' rule
    return arrays


def check_istrain(path: Path, istrain: np.ndarray) -> None:
    """DataError naming the file unless every `istrain` value is 0 (test) or 1 (train)."""
    bad = np.unique(istrain[~np.isin(istrain, tuple(SPLITS.values()))])
    if len(bad):
        shown = ", ".join(f"{v:g}" for v in bad[:5].astype(np.float64)) + (", ..." if len(bad) > 5 else "")
        raise DataError(f"{path}: 'istrain' holds {{{shown}}}; expected 0 or 1")


def sequence_folder(subject: int, action: int, subaction: int, cam: int) -> str:
    """The release's folder name of one sequence's crops: s_SS_act_AA_subact_BB_ca_CC."""
    return f"s_{subject:02d}_act_{action:02d}_subact_{subaction:02d}_ca_{cam:02d}"


def image_name(folder: str, frame_id: int) -> str:
    """The release's file name of one crop in its sequence folder: <folder>_<id:06d>.jpg."""
    return f"{folder}_{frame_id:06d}.jpg"


def image_path(image_root: Path, subject: int, action: int, subaction: int, cam: int, frame_id: int) -> Path:
    """The release's image path of one row."""
    folder = sequence_folder(subject, action, subaction, cam)
    return image_root / folder / image_name(folder, frame_id)


class H36MDataset(Dataset):
    """Rows of one split ("train": istrain 1, "test": istrain 0) of a Human3.6M-format root.

    Arrays for evaluation without decoding images (rows of this split):
    joints_3d_mm (N, 16, 3) root-relative camera-frame mm, joints_2d_px (N, 16, 2),
    subjects, actions, subactions, cameras, ids, rows (annotation-file row of each sample).
    """

    def __init__(self, root: str | Path, split: str, data_cfg: DataConfig, augment: bool = False, seed: int = 0):
        if split not in SPLITS:
            raise DataError(f"H36MDataset split must be one of {sorted(SPLITS)}, got {split!r}")
        self.root = resolve(root)
        self.annotation_path = self.root / data_cfg.h36m_annotation_file
        self.image_root = self.root / data_cfg.image_dir
        self.cfg, self.split, self.seed, self.epoch = data_cfg, split, int(seed), 0
        self.augment = bool(augment and data_cfg.augment_3d)
        arrays = read_annotations(self.annotation_path)
        self.rows = np.flatnonzero(arrays["istrain"].astype(np.int64) == SPLITS[split])
        if len(self.rows) == 0:
            hint = ("; training and evaluation's mean-pose baseline read Human3.6M's training subjects S1, S5, S6, "
                    "S7 and S8: convert a download that holds them too, not only the test subjects (S9, S11)"
                    if split == "train" else "")
            raise DataError(f"{self.annotation_path}: no rows with istrain == {SPLITS[split]} (split {split!r}){hint}")
        r = self.rows
        self.joints_2d_px = arrays["joint_2d"][r].astype(np.float64)  # (N, 16, 2)
        self.joints_3d_cam = arrays["joint_3d_mono"][r].astype(np.float64)  # (N, 16, 3)
        self.joints_3d_mm = (self.joints_3d_cam - self.joints_3d_cam[:, DEPTH_ROOT:DEPTH_ROOT + 1]).astype(np.float32)
        self.subjects = arrays["subject"][r].astype(np.int64)
        self.actions = arrays["action"][r].astype(np.int64)
        self.subactions = arrays["subaction"][r].astype(np.int64)
        self.cameras = arrays["camera"][r].astype(np.int64)
        self.ids = arrays["id"][r].astype(np.int64)
        self.intrinsics = arrays["intrinsics"][r] if "intrinsics" in arrays else None  # synthetic extra
        # converted MPI-INF-3DHP test set: test sequence 1..6 of each row (its scene)
        self.sequences = arrays["sequence"][r].astype(np.int64) if "sequence" in arrays else None
        self._image_size: tuple[int, int] | None = None
        self.image_cache: ImageCache | None = None  # decoded pictures kept between epochs (training only)

    def __len__(self) -> int:
        return len(self.rows)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream of `epoch` (call before iterating each epoch)."""
        self.epoch = int(epoch)

    @property
    def action_names(self) -> dict[int, str]:
        """Name of every action id present in this split (3DHP activities for a converted 3DHP set)."""
        return {int(a): dataset_action_name(self, a) for a in np.unique(self.actions)}

    def image_path(self, i: int) -> Path:
        return image_path(self.image_root, self.subjects[i], self.actions[i], self.subactions[i], self.cameras[i],
                          self.ids[i])

    def _crop_box(self, height: int, width: int) -> tuple[np.ndarray, float]:
        return np.array([(width - 1) / 2.0, (height - 1) / 2.0]), float(max(height, width))

    @property
    def crops(self) -> np.ndarray:
        """(N, 2, 3) un-augmented crop affines (all rows share the first image's size)."""
        if self._image_size is None:
            self._image_size = read_image(self.image_path(0), int(self.rows[0])).shape[:2]
        centre, box = self._crop_box(*self._image_size)
        a = camera.crop_affine(centre, box, 0.0, self.cfg.input_size)
        return np.broadcast_to(a, (len(self), 2, 3)).astype(np.float32)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        row = int(self.rows[i])
        image = read_with(self.image_cache, self.image_path(i), row)
        centre, box = self._crop_box(*image.shape[:2])
        aug = sample_augmentation(sample_rng(self.seed, self.epoch, row), self.cfg) if self.augment else IDENTITY
        return self._sample(i, image, centre, box, aug)

    def sample_at(self, i: int, centre: np.ndarray, box_px: float) -> dict[str, np.ndarray]:
        """Sample i cropped at another square box (image px), without augmentation (a second pass's input)."""
        return self._sample(i, read_image(self.image_path(i), int(self.rows[i])), centre, box_px, IDENTITY)

    def _sample(self, i: int, image: np.ndarray, centre: np.ndarray, box_px: float, aug) -> dict[str, np.ndarray]:
        return make_sample(image, self.joints_2d_px[i], np.ones(16, bool), self.joints_3d_cam[i], centre, box_px, aug,
                           self.cfg, subject=int(self.subjects[i]), action=int(self.actions[i]), index=int(self.rows[i]))

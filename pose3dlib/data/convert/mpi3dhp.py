"""MPI-INF-3DHP test set (`TS1..TS6/annot_data.mat` + `imageSequence/`) -> the release format.

    python -m pose3dlib convert-3dhp TESTSET OUT

Valid frames only. Rows: joint_3d_mono = `univ_annot3` (mm, rescaled to the universal
Human3.6M skeleton: the official protocol's ground truth), joint_2d = `annot2` in crop
pixels, 16 joints in the network order (`skeleton.MPI3DHP17_TO_MPII16`); subject = the
sequence number, action = the activity (1..7), subaction 1, camera 1, id = the 1-based
frame number, istrain 0, plus `sequence` (N,) 1..6, so `data.wild_test_dir` can point at
OUT and evaluation adds the official 3DPCK/AUC per scene, activity and sequence (`eval_3dhp`).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import h5py
import numpy as np

from ... import camera
from ...engine.errors import DataError
from ...engine.paths import CommandLinePath, resolve
from ...engine.progress import progress_bar
from ...skeleton import MPI3DHP17_NUM_JOINTS, mpi3dhp17_to_mpii16
from ..actions import MPI3DHP_ACTIVITIES
from ..h36m import MPI3DHP_TEST_SEQUENCES, image_path
from ..image_file import read_image_file
from . import common

ANNOTATION_FILE = "annot_data.mat"
IMAGE_FOLDER = "imageSequence"


def _frames_array(f: h5py.File, path: Path, key: str, dims: int | None) -> np.ndarray:
    """A per-frame MATLAB array read through h5py (which shows it transposed) as (n,) or (n, 17, dims)."""
    if key not in f:
        raise DataError(f"{path}: no variable {key!r}; expected annot2, univ_annot3, valid_frame, activity_annotation")
    a = np.asarray(f[key][()], dtype=np.float64)
    if dims is None:
        return a.ravel()
    per_frame = MPI3DHP17_NUM_JOINTS * dims
    if a.size % per_frame:
        raise DataError(f"{path}: {key!r} has shape {a.shape}, expected n x 17 x {dims} values")
    n = a.size // per_frame
    if a.shape[0] != n and a.shape[-1] == n:  # stored frame-last: undo the transposition
        a = a.transpose(tuple(range(a.ndim))[::-1])
    return a.reshape(n, MPI3DHP17_NUM_JOINTS, dims)


def read_sequence(path: Path) -> dict[str, np.ndarray]:
    """annot2 (n, 17, 2) px, univ_annot3 (n, 17, 3) mm, valid_frame (n,), activity (n,) of one annot_data.mat."""
    try:
        with h5py.File(path, "r") as f:
            arrays = {"annot2": _frames_array(f, path, "annot2", 2),
                      "univ_annot3": _frames_array(f, path, "univ_annot3", 3),
                      "valid_frame": _frames_array(f, path, "valid_frame", None),
                      "activity": _frames_array(f, path, "activity_annotation", None)}
    except DataError:
        raise
    except common.DAMAGED_FILE_ERRORS as e:
        raise DataError(f"{path}: not a readable MATLAB v7.3 (HDF5) file ({type(e).__name__}: {e})") from None
    n = {k: len(v) for k, v in arrays.items()}
    if len(set(n.values())) != 1:
        raise DataError(f"{path}: per-frame variables differ in length: {n}")
    valid = arrays["valid_frame"] > 0  # only these frames are converted: the others may hold anything
    bad = ~(np.isfinite(arrays["annot2"][valid]).all(axis=(1, 2)) & np.isfinite(arrays["univ_annot3"][valid]).all(axis=(1, 2)))
    if bad.any():
        raise DataError(f"{path}: annot2 or univ_annot3 holds NaN or infinite values in {int(bad.sum())} valid frames "
                        f"(first: frame {int(np.flatnonzero(valid)[np.argmax(bad)]) + 1})")
    known = np.isin(arrays["activity"], tuple(MPI3DHP_ACTIVITIES))
    if (valid & ~known).any():
        unknown = np.unique(arrays["activity"][valid & ~known])
        raise DataError(f"{path}: 'activity_annotation' of valid frames holds {unknown[:5].tolist()} (first: frame "
                        f"{int(np.argmax(valid & ~known)) + 1}); an MPI-INF-3DHP activity is "
                        f"{min(MPI3DHP_ACTIVITIES)}..{max(MPI3DHP_ACTIVITIES)}")
    common.check_person_units(arrays["univ_annot3"][valid], "mm", f"{path}: 'univ_annot3'")
    common.check_person_units(arrays["annot2"][valid], "px", f"{path}: 'annot2'")
    return arrays


def _convert_sequence(seq_dir: Path, seq: int, images: Path, report: dict,
                      progress: bool = True) -> tuple[dict[str, np.ndarray], int]:
    """(rows of the valid frames whose images could be read, how many valid frames' images could not).

    With `progress`, a bar over the valid frames: a sequence of the real test set takes a minute or
    more (hundreds of 2048 px frames decoded and cropped), longer than the bar over the six sequences
    should stand still."""
    ann = read_sequence(seq_dir / ANNOTATION_FILE)
    frames = np.flatnonzero(ann["valid_frame"] > 0)
    rows: dict[str, list] = {k: [] for k in ("id", "joint_2d", "joint_3d_mono", "bbox", "action")}
    missing = 0
    for i in progress_bar(frames, desc=f"convert-3dhp: TS{seq}", unit="frame", leave=False, disable=not progress):
        src = seq_dir / IMAGE_FOLDER / f"img_{i + 1:06d}.jpg"
        try:  # not cv2.imread: it decodes a JPEG cut short (an interrupted download) with grey rows, no error
            image = read_image_file(src, cv2.IMREAD_COLOR)
        except DataError:
            image = None
        if image is None:
            missing += 1
            continue
        joints_2d = mpi3dhp17_to_mpii16(ann["annot2"][i])
        centre, side = common.person_crop(joints_2d)
        action = int(ann["activity"][i])
        affine = common.write_crop(image, centre, side, image_path(images, seq, action, 1, 1, i + 1))
        rows["id"].append(i + 1)
        rows["joint_2d"].append(camera.apply_affine(joints_2d, affine))
        rows["joint_3d_mono"].append(mpi3dhp17_to_mpii16(ann["univ_annot3"][i]))
        rows["bbox"].append(np.r_[centre - side / 2, centre + side / 2])
        rows["action"].append(action)
    if missing:
        report["missing"].append(f"TS{seq}/{IMAGE_FOLDER}: {missing} of {len(frames)} valid frames' images")
        common.warn(f"{seq_dir / IMAGE_FOLDER}: {missing} images of valid frames missing or unreadable, skipped")
    n = len(rows["id"])
    out = {"id": np.asarray(rows["id"], np.int64), "joint_2d": np.asarray(rows["joint_2d"]).reshape(n, 16, 2),
           "joint_3d_mono": np.asarray(rows["joint_3d_mono"]).reshape(n, 16, 3),
           "bbox": np.asarray(rows["bbox"]).reshape(n, 4), "subject": np.full(n, seq, np.int64),
           "action": np.asarray(rows["action"], np.int64), "subaction": np.ones(n, np.int64),
           "camera": np.ones(n, np.int64), "istrain": np.zeros(n, np.int64), "sequence": np.full(n, seq, np.int64)}
    return out, missing


def convert_3dhp(testset: str | Path, out: str | Path, *, progress: bool = True) -> dict:
    """Convert the sequences present under `testset` (TS1..TS6); return the report (also OUT/conversion.json)."""
    testset = resolve(testset)
    if not testset.is_dir():
        raise DataError(f"MPI-INF-3DHP test set folder not found: {testset}")
    out = common.prepare_output(testset, resolve(out))
    report: dict = {"dataset": "3dhp", "raw": str(testset), "sequences_missing": [], "missing": [], "rows": 0,
                    "frames": {}}
    present = []
    for seq in MPI3DHP_TEST_SEQUENCES:
        d = testset / f"TS{seq}"
        if (d / ANNOTATION_FILE).is_file():
            present.append(seq)
        else:
            report["sequences_missing"].append(f"TS{seq}/{ANNOTATION_FILE}")
    if not present:  # the folder above the test set, or one sequence's folder: name the one to pass
        if (testset / ANNOTATION_FILE).is_file():
            raise DataError(f"{testset} is one sequence's folder; pass the folder holding TS1..TS6, {testset.parent}")
        below = sorted({p.parent.parent for p in testset.glob(f"*/TS*/{ANNOTATION_FILE}")}
                       | {p.parent.parent for p in testset.glob(f"*/*/TS*/{ANNOTATION_FILE}")})
        if below:
            raise DataError(f"no TS1..TS6/{ANNOTATION_FILE} in {testset}; {below[0]} has them: pass that folder")
        if not any((testset / f"TS{seq}").is_dir() for seq in MPI3DHP_TEST_SEQUENCES):  # another dataset's folder
            raise DataError(f"no MPI-INF-3DHP test sequence folder (TS1/ ... TS6/, each with {ANNOTATION_FILE} and "
                            f"imageSequence/) in {testset}")
    parts = []
    settings = {"crop_px": common.CROP_PX, "margin": common.CROP_MARGIN, "resampling": common.CROP_RESAMPLING}
    for seq in progress_bar(present, desc="convert-3dhp", unit="seq", disable=not progress):
        seq_dir = testset / f"TS{seq}"
        part = {**settings, "files": common.files_fingerprint(seq_dir / ANNOTATION_FILE, seq_dir / IMAGE_FOLDER,
                                                                 root=testset)}
        rows = common.load_part(out, f"TS{seq}", part, out / "images", legacy=common.absolute_path_settings(
            settings, seq_dir / ANNOTATION_FILE, seq_dir / IMAGE_FOLDER))
        if rows is None:
            rows, missing = _convert_sequence(seq_dir, seq, out / "images", report, progress)
            if not missing:  # an incomplete sequence is converted (and reported) again by the next run
                common.save_part(out, f"TS{seq}", part, rows)
        report["frames"][f"TS{seq}"] = len(rows["id"])
        parts.append(rows)
    return common.finish(out, parts, report)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("testset", action=CommandLinePath, help="the mpi_inf_3dhp_test_set folder holding TS1..TS6 (never written)")
    parser.add_argument("out", action=CommandLinePath, help="output folder for annot.h5 and images/")


def run(args: argparse.Namespace) -> int:
    return common.print_report(convert_3dhp(args.testset, args.out), args.out)

"""Human3.6M official download -> the release format (`annot.h5` + person crops).

    python -m pose3dlib convert-h36m RAW OUT [--subjects 9 11] [--every 5] [--every-test 200] [--drop-damaged]

--every / --every-test default to the original release's subsampling (every 5th training and
every 200th test frame); `--every 1 --every-test 1` keeps every frame (hundreds of GB of crops
for the full download).

Reads, under RAW (never written): `metadata.xml` (the official code bundle's; anywhere
under RAW), and per subject `S*/MyPoseFeatures/D3_Positions_mono/<file>.<camera id>.cdf`
(camera-frame mm), `D2_Positions` (pixels; projected from the 3D with Human3.6M's lens
model when absent) and `S*/Videos/<file>.<camera id>.mp4`; the h36m-fetch layout
(`extracted/S*/Poses_D3_Positions_mono/...`) too. File names come from metadata.xml's
`<mapping>`, never from guessing. Output (docs/data.md): `OUT/annot.h5` and
`OUT/images/s_SS_act_AA_subact_BB_ca_CC/..._<id:06d>.jpg`, 16 joints in the network order,
`id` = 1-based frame number, plus the extra `damaged` (N,) 0/1 for S9's damaged sequences.
A rerun skips finished sequences (`OUT/.parts/`) whose source files are unchanged; a rerun
with fewer subjects than OUT/annot.h5 holds is refused (it would drop them).
"""
from __future__ import annotations

import argparse
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ... import camera
from ...engine.errors import DataError
from ...engine.paths import CommandLinePath, resolve
from ...engine.progress import progress_bar
from ...skeleton import h36m32_to_mpii16
from ..h36m import image_path, sequence_folder
from ..image_file import opencv_path
from . import common

SUBJECTS = (1, 5, 6, 7, 8, 9, 11)
TRAIN_SUBJECTS = (1, 5, 6, 7, 8)
TEST_SUBJECTS = tuple(s for s in SUBJECTS if s not in TRAIN_SUBJECTS)  # 9, 11
NUM_SUBJECT_COLUMNS = 11  # metadata.xml's <mapping> has a column for S1..S11
FIRST_ACTION = 2  # action 1 (Miscellaneous) has no sequences; 2..16 are the 15 actions
# Sequences whose ground truth is damaged in parts (subject, file name as in the mapping).
DAMAGED = {(9, "Greeting"), (9, "SittingDown 1"), (9, "Waiting 1")}
W0_LENGTH = 300
INTRINSICS_OFFSET = 264  # w0: 6 extrinsics x 4 cameras x 11 subjects come first
POSE_MODALITIES = ("D3_Positions_mono", "D2_Positions")
# The original release kept every 5th training frame and every 200th test (S9, S11) frame:
# the converter's defaults, and what `REAL_DATA=True` (convert.real) uses.
RELEASE_EVERY, RELEASE_EVERY_TEST = 5, 200


@dataclass(frozen=True)
class Metadata:
    """What the converter needs from metadata.xml."""

    files: dict[tuple[int, int, int], str]  # (subject, action, subaction) -> file name prefix
    camera_ids: tuple[str, ...]  # camera 1..4 -> its id in file names
    lens: tuple[dict[str, np.ndarray], ...]  # per camera: focal, centre, radial_k, tangential_p


def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", text)]


def read_metadata(path: Path) -> Metadata:
    """Parse metadata.xml (root <a>: <mapping>, <w0>, <dbcameras><index2id>); DataError naming the file and element."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        raise DataError(f"{path}: not a readable metadata.xml ({e})") from None

    def element(name: str) -> ET.Element:
        el = root.find(f".//{name}")
        if el is None:
            raise DataError(f"{path}: no <{name}> element; is this Human3.6M's metadata.xml?")
        return el

    rows = [[(td.text or "").strip() for td in tr] for tr in element("mapping").findall("tr")]
    if len(rows) < 33:
        raise DataError(f"{path}: <mapping> has {len(rows)} <tr> rows, expected 35 (header, 32 sequences, 2 more)")
    files = {}
    for r, cells in enumerate(rows[1:33], start=1):
        if len(cells) < 2 + NUM_SUBJECT_COLUMNS:
            raise DataError(f"{path}: <mapping> row {r} has {len(cells)} cells, expected {2 + NUM_SUBJECT_COLUMNS}")
        try:
            action, subaction = int(float(cells[0])), int(float(cells[1]))
        except ValueError:
            raise DataError(f"{path}: <mapping> row {r} starts with {cells[:2]}, expected action and subaction numbers") from None
        for s in range(1, NUM_SUBJECT_COLUMNS + 1):
            name = cells[1 + s]
            if action >= FIRST_ACTION and name and "_ALL" not in name:
                files[(s, action, subaction)] = name
    ids = [str(int(x)) for x in _numbers(" ".join(element("dbcameras").find("index2id").itertext()))] \
        if element("dbcameras").find("index2id") is not None else []
    if len(ids) != 4:
        raise DataError(f"{path}: <dbcameras><index2id> holds {len(ids)} camera ids, expected 4")
    w0 = _numbers(" ".join(element("w0").itertext()))
    if len(w0) != W0_LENGTH:
        raise DataError(f"{path}: <w0> holds {len(w0)} numbers, expected {W0_LENGTH}")
    lens = []
    for cam in range(4):
        fx, fy, cx, cy, k1, k2, k3, p_a, p_b = w0[INTRINSICS_OFFSET + 9 * cam: INTRINSICS_OFFSET + 9 * cam + 9]
        lens.append({"focal": np.array([fx, fy]), "centre": np.array([cx, cy]), "radial_k": np.array([k1, k2, k3]),
                     "tangential_p": np.array([p_b, p_a])})  # w0 stores (p2, p1)
    return Metadata(files, tuple(ids), tuple(lens))


def find_metadata(raw: Path) -> Path:
    direct = raw / "metadata.xml"
    if direct.is_file():
        return direct
    found = sorted(raw.rglob("metadata.xml"))
    if not found:
        raise DataError(f"metadata.xml not found under {raw}: it ships with Human3.6M's official code bundle; "
                        "copy it into the download folder")
    return found[0]


def find_subject_dirs(raw: Path) -> dict[int, Path]:
    """Subject folders of the official (`S1/`) or h36m-fetch (`extracted/S1/`) layout."""
    found = {}
    for s in SUBJECTS:
        for cand in (raw / f"S{s}", raw / "extracted" / f"S{s}"):
            if cand.is_dir():
                found[s] = cand
                break
    return found


def no_subjects(raw: Path) -> str:
    return f"no Human3.6M subject folder ({', '.join(f'S{s}/' for s in SUBJECTS)}) in {raw}"


def subjects_elsewhere(raw: Path, depth: int = 2) -> str:
    """Where the subject folders are when `raw` is one of them or lies above them (up to `depth`
    levels); '' when neither (the caller names what the layout should be)."""
    if raw.name in {f"S{s}" for s in SUBJECTS}:
        return f": it is a subject folder itself; pass the folder holding the subjects, {raw.parent}"
    found, level = [], [raw]
    for _ in range(depth):
        level = sorted(d for folder in level for d in _subfolders(folder))
        found += [d for d in level if find_subject_dirs(d) and not any(f in d.parents for f in found)]
    if not found:
        return ""
    return f"; {' and '.join(str(d) for d in found[:3])} {'has' if len(found) == 1 else 'have'} them: pass that folder"


def _subfolders(folder: Path) -> list[Path]:
    try:
        return [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]
    except OSError:
        return []


def _index_files(subject_dir: Path, modality: str, suffix: str) -> dict[str, Path]:
    """File name -> path of one modality (`MyPoseFeatures/<m>`, h36m-fetch's `Poses_<m>`, or `Videos`)."""
    roots = [subject_dir / "MyPoseFeatures" / modality, subject_dir / f"Poses_{modality}", subject_dir / modality]
    index: dict[str, Path] = {}
    for root in roots:
        if root.is_dir():
            for p in sorted(root.rglob(f"*{suffix}")):
                index.setdefault(p.name, p)
    return index


class UnreadableCDF(DataError):
    """A pose file (`path`) that cannot be read at all (damaged, cut short): its sequence is skipped
    and listed, as an unreadable video's is; other pose errors (shapes, units) stop the conversion."""

    def __init__(self, path: Path, message: str):
        super().__init__(message)
        self.path = path


def _variable_names(cdf) -> list[str]:
    """The variable names of an open cdflib CDF: `cdf_info()` returns an object from cdflib 1.0 on, a dict before."""
    info = cdf.cdf_info()
    names: list[str] = []
    for kind in ("zVariables", "rVariables"):
        names += list((info.get(kind) if isinstance(info, dict) else getattr(info, kind, None)) or [])
    return names


def _variable_list_intact(cdf, names: list[str]) -> bool:
    """Whether a CDF's variable list reads whole: at least one name, each printable, each variable's
    description readable. A file cut short inside its header still opens, with no names or cut-off ones."""
    if not names or any(not n or not n.isprintable() for n in names):
        return False
    try:
        for name in names:
            cdf.varinq(name)
    except common.DAMAGED_FILE_ERRORS:
        return False
    return True


def read_pose_cdf(path: Path, dims: int) -> np.ndarray:
    """The `Pose` variable of a Human3.6M CDF file as (N, 32, dims) float64; DataError naming the file
    (UnreadableCDF for a file cdflib cannot read, one cut short inside its variable list, or one whose
    `Pose` holds no frames; a plain DataError for a whole CDF without a `Pose` variable or with `Pose` of another shape: another file, not a
    damaged one)."""
    import cdflib

    expected = f"(1, N, {32 * dims})"
    try:
        cdf = cdflib.CDF(str(path))
        names = _variable_names(cdf)
    except common.DAMAGED_FILE_ERRORS as e:  # cdflib's errors for damaged files
        raise UnreadableCDF(path, f"{path}: not a readable Human3.6M CDF file ({type(e).__name__}: {e})") from None
    found = [n for n in names if n.lower() == "pose"]  # cdflib's varget matches names case-insensitively too
    if not found:
        shown = ", ".join(repr(n) for n in names[:8]) or "none"
        if not _variable_list_intact(cdf, names):  # cut short inside its header: damaged, not another file
            raise UnreadableCDF(path, f"{path}: not a readable Human3.6M CDF file (its variable list is cut "
                                      f"short or damaged: {shown})")
        raise DataError(f"{path}: no variable 'Pose' (the file holds {shown}); expected a Human3.6M pose file "
                        f"with 'Pose' of shape {expected}")
    try:
        data = np.asarray(cdf.varget(found[0]), dtype=np.float64)
    except common.DAMAGED_FILE_ERRORS as e:
        raise UnreadableCDF(path, f"{path}: not a readable Human3.6M CDF file with a 'Pose' variable "
                                  f"({type(e).__name__}: {e})") from None
    stored = data.shape
    data = np.squeeze(data, axis=0) if data.ndim == 3 and data.shape[0] == 1 else data
    if data.ndim != 2 or data.shape[1] != 32 * dims:
        raise DataError(f"{path}: 'Pose' has shape {stored}, expected {expected}")
    if len(data) == 0:  # skipped and listed as a cut-short file is: its sequence has nothing to convert
        raise UnreadableCDF(path, f"{path}: 'Pose' holds no frames")
    if not np.isfinite(data).all():
        raise DataError(f"{path}: 'Pose' holds NaN or infinite values")
    return data.reshape(len(data), 32, dims)


def _sequence_rows(video: Path, pose_3d: np.ndarray, pose_2d: np.ndarray, keys: dict, step: int,
                   images: Path) -> tuple[dict[str, np.ndarray] | None, int]:
    """Stream one video, keep every `step`-th frame that has poses, write its crops.

    Returns (rows, frames read); rows None when the video is unreadable. Fewer frames read than
    there are poses means the video ended early (shorter, or broken part-way)."""
    cap = cv2.VideoCapture(opencv_path(video))
    if not cap.isOpened():
        return None, 0
    rows: dict[str, list] = {k: [] for k in ("id", "joint_2d", "joint_3d_mono", "bbox")}
    frame = 0
    try:
        while frame < len(pose_3d):  # frames beyond the poses are ignored (trim to the shorter)
            if frame % step:
                if not cap.grab():
                    break
                frame += 1
                continue
            ok, image = cap.read()
            if not ok:
                break
            joints_2d = h36m32_to_mpii16(pose_2d[frame])  # (16, 2) px
            centre, side = common.person_crop(joints_2d)
            path = image_path(images, keys["subject"], keys["action"], keys["subaction"], keys["camera"], frame + 1)
            affine = common.write_crop(image, centre, side, path)
            rows["id"].append(frame + 1)
            rows["joint_2d"].append(camera.apply_affine(joints_2d, affine))
            rows["joint_3d_mono"].append(h36m32_to_mpii16(pose_3d[frame]))
            rows["bbox"].append(np.r_[centre - side / 2, centre + side / 2])
            frame += 1
    finally:
        cap.release()
    if frame == 0:
        return None, 0
    n = len(rows["id"])
    out = {"id": np.asarray(rows["id"], np.int64),
           "joint_2d": np.asarray(rows["joint_2d"], np.float64).reshape(n, 16, 2),
           "joint_3d_mono": np.asarray(rows["joint_3d_mono"], np.float64).reshape(n, 16, 3),
           "bbox": np.asarray(rows["bbox"], np.float64).reshape(n, 4)}
    for k in ("subject", "action", "subaction", "camera", "istrain", "damaged"):
        out[k] = np.full(n, keys[k], np.int64)
    return out, frame


def _converted_subjects(out: Path) -> set[int]:
    """Subjects in an earlier conversion's OUT/annot.h5 (empty when there is none or it is unreadable)."""
    import h5py

    path = out / "annot.h5"
    if not path.is_file():
        return set()
    try:
        with h5py.File(path, "r") as f:
            return {int(x) for x in np.unique(f["subject"][()])}
    except common.DAMAGED_FILE_ERRORS:
        return set()  # rewritten by this conversion


def _wanted_subjects(raw: Path, out: Path, present: dict[int, Path],
                     subjects: tuple[int, ...] | None) -> tuple[int, ...]:
    """The subjects to convert (`subjects`, or every one `present`, which is not empty: `convert_h36m` checked);
    DataError for a request that cannot be met."""
    wanted = tuple(sorted(subjects)) if subjects else tuple(sorted(present))
    unknown = [s for s in wanted if s not in SUBJECTS]
    if unknown:
        raise DataError(f"unknown Human3.6M subjects {unknown}; subjects are {list(SUBJECTS)}")
    absent = [s for s in wanted if s not in present]
    if absent:  # asked for by --subjects: converting the others would leave it out without an error
        folders = ", ".join(f"S{s}/" for s in absent)
        raise DataError(f"--subjects {' '.join(str(s) for s in subjects or wanted)}: no {folders} in {raw} (nor in its extracted/, "
                        f"h36m-fetch's layout); the download holds {', '.join(f'S{s}' for s in sorted(present))}: "
                        f"extract {'that subject' if len(absent) == 1 else 'those subjects'} there, or leave "
                        f"{'it' if len(absent) == 1 else 'them'} out of --subjects")
    dropped = sorted(_converted_subjects(out) - set(wanted))
    gone = [s for s in dropped if s not in present]  # their folders left the download: --subjects cannot keep them
    if gone:
        raise DataError(f"{out / 'annot.h5'} holds subjects {dropped}, and {', '.join(f'S{s}/' for s in gone)} "
                        f"{'is' if len(gone) == 1 else 'are'} no longer in the download {raw}: a conversion now would "
                        f"leave them out of it; put the folder back, or delete {out} (or choose another output folder) to "
                        "convert the download as it is now")
    if dropped:
        raise DataError(f"{out / 'annot.h5'} holds subjects {dropped} that this conversion (subjects {list(wanted)}) "
                        f"would leave out of it: pass --subjects {' '.join(str(x) for x in sorted(set(wanted) | set(dropped)))} "
                        "to keep them (their finished sequences are reused), or choose another output folder")
    return wanted


def _sequence_jobs(present: dict[int, Path], wanted: tuple[int, ...], meta: Metadata, drop_damaged: bool,
                   report: dict) -> list[tuple]:
    """(subject, action, subaction, camera, name, 3D CDF, 2D CDF or None, video) of every sequence to convert.

    Sequences whose 3D poses or video are missing go to report["missing"]; S9's
    damaged ones to report["damaged_dropped"] with `drop_damaged`."""
    jobs = []
    for s in wanted:  # each present (`_wanted_subjects`)
        index = {m: _index_files(present[s], m, ".cdf") for m in POSE_MODALITIES}
        videos = _index_files(present[s], "Videos", ".mp4")
        for (subj, action, subaction), name in sorted(meta.files.items()):
            if subj != s:
                continue
            if (s, name) in DAMAGED and drop_damaged:  # named where the download holds it
                if any(f"{name}.{cam_id}.cdf" in index["D3_Positions_mono"] for cam_id in meta.camera_ids):
                    report["damaged_dropped"].append(f"S{s}/{name}")
                continue
            for cam, cam_id in enumerate(meta.camera_ids, start=1):
                file = f"{name}.{cam_id}"
                if f"{file}.cdf" not in index["D3_Positions_mono"]:
                    report["missing"].append(f"S{s}/MyPoseFeatures/D3_Positions_mono/{file}.cdf")
                    continue
                if f"{file}.mp4" not in videos:
                    report["missing"].append(f"S{s}/Videos/{file}.mp4")
                    continue
                jobs.append((s, action, subaction, cam, name, index["D3_Positions_mono"][f"{file}.cdf"],
                             index["D2_Positions"].get(f"{file}.cdf"), videos[f"{file}.mp4"]))
    return jobs


def _sequence_poses(f3d: Path, f2d: Path | None, lens: dict) -> tuple[np.ndarray, np.ndarray]:
    """(N, 32, 3) mm and (N, 32, 2) px poses of one sequence and camera; the 2D ones are projected
    through the camera's `lens` (focal, centre, distortion) when the download has no D2_Positions file."""
    pose_3d = read_pose_cdf(f3d, 3)
    common.check_person_units(pose_3d, "mm", f"{f3d}: 'Pose'")
    if f2d is None:
        return pose_3d, camera.project_h36m(pose_3d, lens["focal"], lens["centre"], lens["radial_k"],
                                            lens["tangential_p"])
    pose_2d = read_pose_cdf(f2d, 2)
    common.check_person_units(pose_2d, "px", f"{f2d}: 'Pose'")
    if len(pose_2d) != len(pose_3d):  # the two files of one camera's sequence hold the same frames
        raise DataError(f"{f2d} holds {len(pose_2d)} frames, {f3d} {len(pose_3d)}: the 2D and 3D poses "
                        "of one sequence and camera must have the same frames; is one of them another "
                        "sequence's or truncated?")
    return pose_3d, pose_2d


def convert_h36m(raw: str | Path, out: str | Path, *, subjects: tuple[int, ...] | None = None,
                 every: int = RELEASE_EVERY, every_test: int | None = RELEASE_EVERY_TEST, drop_damaged: bool = False,
                 progress: bool = True) -> dict:
    """Convert whatever part of a Human3.6M download is present; return the report (also OUT/conversion.json).

    Args:
        raw: the download folder (read only). out: the output folder (outside raw).
        subjects: subjects to convert (default: every subject present); each must be in the download.
        every: keep every Nth frame of each sequence; every_test: the same for S9/S11 (None: every).
            The defaults are the release's (RELEASE_EVERY, RELEASE_EVERY_TEST); 1 and 1 keep every frame.
        drop_damaged: leave out S9's sequences with damaged ground truth (else kept, `damaged` = 1).
    """
    raw = resolve(raw)
    if not raw.is_dir():
        raise DataError(f"Human3.6M download folder not found: {raw}")
    if every < 1 or (every_test is not None and every_test < 1):
        raise DataError(f"--every and --every-test must be >= 1, got {every} and {every_test}")
    out = common.prepare_output(raw, resolve(out))
    present = find_subject_dirs(raw)
    if not present:  # before metadata.xml, whose absence a folder without subjects (another dataset's) also has
        layout = " (the official layout has S1/, S5/, ... with MyPoseFeatures/ and Videos/ in each, and metadata.xml)"
        raise DataError(no_subjects(raw) + (subjects_elsewhere(raw) or layout))  # or a folder above or inside it
    meta = read_metadata(find_metadata(raw))
    wanted = _wanted_subjects(raw, out, present, subjects)
    report: dict = {"dataset": "h36m", "raw": str(raw), "subjects_missing": [s for s in SUBJECTS if s not in present],
                    "missing": [], "skipped": [], "damaged_dropped": [], "sequences": 0, "rows": 0,
                    "every": every, "every_test": every_test or every}
    for role, group in (("training", TRAIN_SUBJECTS), ("test", TEST_SUBJECTS)):
        absent = [s for s in group if s not in present]
        if absent and len(absent) < len(group):  # none of a group at all is said where it matters (training, scoring)
            common.warn(f"{raw}: {role} subjects missing: {', '.join(f'S{s}' for s in absent)}; the download holds "
                        f"only {', '.join(f'S{s}' for s in group if s in present)} of them")
    jobs = _sequence_jobs(present, wanted, meta, drop_damaged, report)
    for item in report["missing"]:
        if item.endswith(".mp4"):
            common.warn(f"video missing, sequence skipped: {item}")
    parts = []
    images = out / "images"
    for s, action, subaction, cam, name, f3d, f2d, video in progress_bar(jobs, desc="convert-h36m", unit="seq",
                                                                   disable=not progress):
        step = every if s in TRAIN_SUBJECTS else (every_test or every)
        folder = sequence_folder(s, action, subaction, cam)
        settings = {"step": step, "crop_px": common.CROP_PX, "margin": common.CROP_MARGIN, "source": name,
                    "resampling": common.CROP_RESAMPLING,
                    "files": common.files_fingerprint(f3d, f2d, video, root=raw)}
        rows = common.load_part(out, folder, settings, images,
                                legacy=common.absolute_path_settings(settings, f3d, f2d, video))
        if rows is None:
            try:
                pose_3d, pose_2d = _sequence_poses(f3d, f2d, meta.lens[cam - 1])
            except UnreadableCDF as e:  # a pose file cut short (an interrupted extraction): like an unreadable video
                common.warn(f"{e}; sequence skipped")
                report["skipped"].append(str(e.path.relative_to(raw)))
                continue
            n = len(pose_3d)
            keys = {"subject": s, "action": action, "subaction": subaction, "camera": cam,
                    "istrain": int(s in TRAIN_SUBJECTS), "damaged": int((s, name) in DAMAGED)}
            rows, frames = _sequence_rows(video, pose_3d, pose_2d, keys, step, images)
            if rows is None:
                common.warn(f"{video}: unreadable video, sequence skipped")
                report["skipped"].append(str(video.relative_to(raw)))
                continue
            if frames < n:  # kept, but not marked finished: a rerun converts it again and reports it again
                common.warn(f"{video}: the video ends after {frames} of the {n} frames with poses; "
                            f"the frames after it are missing")
                report["missing"].append(f"{video.relative_to(raw)}: frames {frames + 1}-{n} (video ends early)")
            else:
                common.save_part(out, folder, settings, rows)
        parts.append(rows)
        report["sequences"] += 1
    return common.finish(out, parts, report)


# ----------------------------------------------------------------------------- CLI

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("raw", action=CommandLinePath, help="the Human3.6M download folder (S1/, S5/, ..., metadata.xml); never written")
    parser.add_argument("out", action=CommandLinePath, help="output folder for annot.h5 and images/ (outside the download)")
    parser.add_argument("--subjects", type=int, nargs="+", default=None, help="subjects (default: every one present); a subject named here must be in the download")
    parser.add_argument("--every", type=int, default=RELEASE_EVERY,
                        help=f"keep every Nth frame of the training subjects (default: {RELEASE_EVERY}, the release's; "
                             "1 keeps every frame)")
    parser.add_argument("--every-test", type=int, default=RELEASE_EVERY_TEST,
                        help=f"keep every Mth frame of the test subjects S9/S11 (default: {RELEASE_EVERY_TEST}, "
                             "the release's; 1 keeps every frame)")
    parser.add_argument("--drop-damaged", action="store_true",
                        help="leave out S9's sequences with damaged ground truth (Greeting, SittingDown 1, Waiting 1)")


def run(args: argparse.Namespace) -> int:
    report = convert_h36m(args.raw, args.out, subjects=tuple(args.subjects) if args.subjects else None,
                          every=args.every, every_test=args.every_test, drop_damaged=args.drop_damaged)
    return common.print_report(report, args.out)

"""Converters end to end: synthetic people written in the official layouts, converted, compared with their source."""
from __future__ import annotations

import json
import re
import shutil

import cv2
import h5py
import numpy as np
import pytest

from pose3dlib import camera
from pose3dlib.config import DataConfig
from pose3dlib.data.actions import ACTION_NAMES, MPI3DHP_ACTIVITIES, action_names_for
from pose3dlib.data.convert import common
from pose3dlib.data.convert.h36m import UnreadableCDF, convert_h36m, read_pose_cdf
from pose3dlib.data.convert.mpi3dhp import convert_3dhp
from pose3dlib.data.convert.mpii import convert_mpii
from pose3dlib.data.h36m import H36MDataset
from pose3dlib.data.mpii import MPIIDataset, read_annotations
from pose3dlib.engine.errors import DataError
from pose3dlib.evaluation.eval_3dhp import mpi3dhp_rows
from pose3dlib.evaluation.evaluate import per_action_rows
from pose3dlib.synthetic import official as so
from pose3dlib.tools.cli import main

CFG = DataConfig(input_size=64, heatmap_size=16, sigma=1.0)
LABEL_TOLERANCE_PX = 3  # mp4/JPEG compression and Human3.6M's lens model move the person's edge a little

pytestmark = pytest.mark.filterwarnings("ignore::pose3dlib.data.convert.common.ConversionWarning")


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return so.generate_official(tmp_path_factory.mktemp("official") / "raw", seed=2)


@pytest.fixture(scope="module")
def converted(raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted")
    reports = {"h36m": convert_h36m(raw / "h36m", out / "h36m", every=1, every_test=1, progress=False),
               "mpii": convert_mpii(raw / "mpii" / "mpii_human_pose_v1_u12_1.mat", raw / "mpii" / "images",
                                    out / "mpii", val_from=raw / "mpii" / "valid.h5", progress=False),
               "3dhp": convert_3dhp(raw / "mpi_inf_3dhp_test_set", out / "3dhp", progress=False)}
    return out, reports


def _truth(raw, name):
    with np.load(raw / "_truth" / f"{name}.npz") as z:
        return {k: z[k] for k in z.files}


def _labels_on_person(annot, truth_masks, root):
    """Every converted 2D label, mapped back to the source frame, lies on (or within a few px of) the person."""
    kernel = np.ones((2 * LABEL_TOLERANCE_PX + 1,) * 2, np.uint8)
    for r, mask in enumerate(truth_masks):
        centre = (annot["bbox"][r, :2] + annot["bbox"][r, 2:]) / 2
        side = annot["bbox"][r, 2] - annot["bbox"][r, 0]
        affine = camera.crop_affine(centre, side, 0.0, common.CROP_PX)
        src = camera.apply_affine(annot["joint_2d"][r], camera.invert_affine(affine))  # (16, 2) frame px
        grown = cv2.dilate(mask.astype(np.uint8), kernel) > 0
        u, v = np.round(src).astype(int).T
        inside = (u >= 0) & (u < mask.shape[1]) & (v >= 0) & (v < mask.shape[0])
        assert inside.all(), r
        assert grown[v, u].all(), (r, np.flatnonzero(~grown[v, u]))


def test_h36m_round_trip(raw, converted):
    out, reports = converted
    truth = _truth(raw, "h36m")
    with h5py.File(out / "h36m" / "annot.h5", "r") as f:
        annot = {k: f[k][()] for k in f}
    keys = np.stack([annot[k] for k in ("subject", "action", "subaction", "camera", "id")], axis=1)
    lookup = {tuple(k): i for i, k in enumerate(truth["key"])}
    rows = np.array([lookup[tuple(k)] for k in keys])
    # converted joint_3d_mono equals the source poses (camera frame, mm, 16 joints)
    assert np.allclose(annot["joint_3d_mono"], truth["joints_mm"][rows], atol=1e-9)
    # every sequence with a video round-trips with all its frames (videos longer than poses are trimmed)
    expected = {tuple(k) for k in truth["key"] if (k[0], k[1], k[3]) != so.MISSING_VIDEO}
    assert {tuple(k) for k in keys} == expected and len(keys) == len(expected)
    assert set(annot["istrain"][annot["subject"] == 9]) == {0} and set(annot["istrain"][annot["subject"] == 1]) == {1}
    damaged = annot["damaged"] == 1
    assert damaged.any() and set(annot["subject"][damaged]) == {9} and set(annot["action"][damaged]) == {5}
    assert any("S11/Videos/Directions" in m for m in reports["h36m"]["missing"])
    assert reports["h36m"]["subjects_missing"] == [6, 7, 8]
    _labels_on_person(annot, truth["mask"][rows], out)
    ds = H36MDataset(out / "h36m", "test", CFG)  # the loader reads the converted set
    sample = ds[0]
    assert sample["image"].shape == (3, 64, 64) and bool(sample["has_depth"])
    assert json.loads((out / "h36m" / "conversion.json").read_text())["rows"] == len(keys)


def test_h36m_every_subjects_resume_and_projection(raw, tmp_path):
    """--every / --every-test / --subjects, a rerun that skips finished sequences, 2D projected when D2 is absent."""
    part = tmp_path / "raw"
    shutil.copytree(raw / "h36m", part)
    shutil.rmtree(part / "S1")
    for d2 in (part / "S9" / "MyPoseFeatures" / "D2_Positions").glob("*.cdf"):
        d2.unlink()
    report = convert_h36m(part, tmp_path / "out", every=2, every_test=3, drop_damaged=True, progress=False)
    assert 1 in report["subjects_missing"] and "S9/Greeting" in report["damaged_dropped"]
    with h5py.File(tmp_path / "out" / "annot.h5", "r") as f:
        subject, ids, action, j2 = f["subject"][()], f["id"][()], f["action"][()], f["joint_2d"][()]
        bbox, subaction = f["bbox"][()], f["subaction"][()]
    assert set(ids[subject == 5]) == {1, 3} and set(ids[subject == 9]) == {1} and 1 not in set(subject)
    assert not ((subject == 9) & (action == 5) & (subaction == 1)).any()  # S9 "Greeting" dropped
    assert ((subject == 9) & (action == 5) & (subaction == 2)).any()  # "Greeting 1" kept
    # S9's 2D came from Human3.6M's lens model: equal to the D2 file of the full download
    s9 = np.flatnonzero(subject == 9)
    ref = convert_h36m(raw / "h36m", tmp_path / "ref", subjects=(9,), every=3, every_test=None, drop_damaged=True,
                       progress=False)  # every_test=None: the same as every
    assert ref["rows"] == len(s9)
    with h5py.File(tmp_path / "ref" / "annot.h5", "r") as f:
        assert np.allclose(f["joint_2d"][()], j2[s9], atol=1e-6) and np.allclose(f["bbox"][()], bbox[s9], atol=1e-6)
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "out" / "images").rglob("*.jpg")}
    again = convert_h36m(part, tmp_path / "out", every=2, every_test=3, drop_damaged=True, progress=False)
    assert again["rows"] == report["rows"]
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "out" / "images").rglob("*.jpg")} == before


def test_convert_h36m_defaults_to_the_release_subsampling(raw, tmp_path, capsys):
    """The command (and the function) keep every 5th training and every 200th test frame, as the release and
    REAL_DATA=True do (one constant); --every / --every-test override it."""
    from pose3dlib.data.convert import h36m, real
    from pose3dlib.tools.cli import build_parser

    assert (real.RELEASE_EVERY, real.RELEASE_EVERY_TEST) == (h36m.RELEASE_EVERY, h36m.RELEASE_EVERY_TEST) == (5, 200)
    args = build_parser("convert-h36m").parse_args(["convert-h36m", "raw", "out"])
    assert (args.every, args.every_test) == (5, 200)
    with pytest.raises(SystemExit):
        build_parser("convert-h36m").parse_args(["convert-h36m", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "default: 5, the release's" in shown and "default: 200, the release's" in shown

    def ids(out, *argv):
        assert main(["convert-h36m", str(raw / "h36m"), str(out), "--subjects", "5", "9", *argv]) == 0
        with h5py.File(out / "annot.h5", "r") as f:
            return set(f["id"][f["subject"][()] == 5]), set(f["id"][f["subject"][()] == 9])

    assert so.H36M_FRAMES > 2
    assert ids(tmp_path / "default") == ({1}, {1})  # frames 1, 6, ... of sequences of H36M_FRAMES frames
    report = json.loads((tmp_path / "default" / "conversion.json").read_text())
    assert (report["every"], report["every_test"]) == (5, 200)
    assert ids(tmp_path / "every2", "--every", "2") == ({1, 3}, {1})  # --every-test keeps its default
    assert ids(tmp_path / "all", "--every", "1", "--every-test", "1") == ({1, 2, 3}, {1, 2, 3})


def test_conversion_warnings_are_one_line_and_still_warnings(raw, tmp_path):
    """A skipped file is a ConversionWarning (pytest.warns, filters) shown as `warning: <message>` on stderr,
    without Python's `file.py:241: ConversionWarning:` prefix and source line; other warnings keep their format."""
    import subprocess
    import sys
    import warnings

    with pytest.warns(common.ConversionWarning, match=r"video missing, sequence skipped: S11/Videos/Directions"):
        convert_h36m(raw / "h36m", tmp_path / "out", subjects=(11,), progress=False)
    code = ("import warnings; from pose3dlib.data.convert import common; "
            "common.warn('video missing, sequence skipped: S11/Videos/x.mp4'); warnings.warn('other')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    lines = r.stderr.splitlines()
    assert lines[0] == "warning: video missing, sequence skipped: S11/Videos/x.mp4"
    assert "common.py" not in r.stderr and "common.warn(" not in r.stderr and "ConversionWarning" not in r.stderr
    assert lines[1].endswith("UserWarning: other")  # the override is limited to conversion warnings
    assert warnings.formatwarning is not common._one_line


def test_a_conversion_warning_starts_its_own_line_below_a_progress_bar():
    """On a terminal the warning was written right after the bar's text, on the bar's line
    (`... 1/8 [00:00<00:05, 1.20seq/s]warning: ...`); the bar is cleared first and drawn again after it."""
    import subprocess
    import sys

    code = ("import sys; from tqdm import tqdm; from pose3dlib.data.convert import common; "
            "bar = tqdm(total=3, file=sys.stderr, mininterval=0, desc='convert-h36m', unit='seq'); bar.update(1); "
            "common.warn('the video ends early'); bar.update(1); bar.close()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=120)
    before, after = r.stderr.decode().split("warning: the video ends early\n")  # bytes: the \r kept
    assert "seq/s]" in before and before.endswith("\r") and before.rstrip("\r").split("\r")[-1].strip() == ""
    assert "convert-h36m:  67%" in after  # the bar goes on below the warning


def test_the_printed_report_names_missing_subjects_by_their_folders(capsys):
    """`subjects missing: 6, 7, 8` beside warnings and lists saying S6, S7, S8."""
    assert common.print_report({"raw": "dl", "rows": 4, "subjects_missing": [6, 7, 8], "missing": []}, "out") == 0
    assert capsys.readouterr().out.splitlines() == ["subjects missing: S6, S7, S8", "wrote 4 rows to out"]


def test_h36m_errors_name_the_file(raw, tmp_path):
    with pytest.raises(DataError, match="overlaps the raw download"):
        convert_h36m(raw / "h36m", raw / "h36m" / "converted", progress=False)
    bad = tmp_path / "bad.cdf"
    bad.write_bytes(b"not a cdf")
    with pytest.raises(DataError, match="bad.cdf"):
        read_pose_cdf(bad, 3)
    real = next((raw / "h36m").rglob("D3_Positions_mono/*.cdf")).read_bytes()
    for size in (7, 200, len(real) // 2, 2200):  # cut off: one DataError, never a traceback (7: MemoryError before)
        bad.write_bytes(real[:size])
        with pytest.raises(DataError, match=r"bad\.cdf: "):
            read_pose_cdf(bad, 3)
    (tmp_path / "raw" / "S1").mkdir(parents=True)  # a subject folder: the metadata is read next
    (tmp_path / "raw" / "metadata.xml").write_text("<a><mapping></mapping></a>")
    with pytest.raises(DataError, match=r"metadata.xml.*<mapping> has 0"):
        convert_h36m(tmp_path / "raw", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()  # an input error leaves no empty output folder
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(raw / "h36m" / "metadata.xml", empty)
    assert main(["convert-h36m", str(empty), str(tmp_path / "out2")]) == 2  # nothing converted: non-zero
    # the folder above the download, or one subject's folder: the error names the folder to pass
    with pytest.raises(DataError, match=rf"no Human3.6M subject folder \(S1/, .*S11/\) in {re.escape(str(raw))}; "
                                        rf"{re.escape(str(raw / 'h36m'))} has them: pass that folder"):
        convert_h36m(raw, tmp_path / "out3", progress=False)
    with pytest.raises(DataError, match=rf"it is a subject folder itself; pass the folder holding the subjects, "
                                        rf"{re.escape(str(raw / 'h36m'))}$"):
        convert_h36m(raw / "h36m" / "S1", tmp_path / "out3", progress=False)
    assert not (tmp_path / "out3").exists()


def _one_sequence_download(raw, tmp_path):
    """S9 alone, with the (D3_Positions_mono, D2_Positions) files of its first sequence and camera."""
    part = tmp_path / "raw"
    shutil.copytree(raw / "h36m", part, ignore=shutil.ignore_patterns("S1", "S5", "S6", "S7", "S8", "S11"))
    f3d = sorted((part / "S9").rglob("D3_Positions_mono/*.cdf"))[0]
    return part, f3d, f3d.parent.parent / "D2_Positions" / f3d.name


def test_h36m_frames_two_rows_taller_than_wide_convert_as_the_square_ones(raw, tmp_path):
    """Some cameras' videos are 1000 x 1002 px (two rows more than wide): the frames of one sequence padded
    with two black rows at the bottom give the same labels and, but for the codec, the same crops."""
    part, f3d, _ = _one_sequence_download(raw, tmp_path)
    square = convert_h36m(part, tmp_path / "square", every=1, every_test=1, progress=False)
    video = part / "S9" / "Videos" / f"{f3d.stem}.mp4"
    cap = cv2.VideoCapture(str(video))
    frames = []
    while (frame := cap.read())[0]:
        frames.append(np.pad(frame[1], ((0, 2), (0, 0), (0, 0))))
    cap.release()
    assert frames and frames[0].shape[:2] == (so.FRAME_PX + 2, so.FRAME_PX)
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 50.0, (so.FRAME_PX, so.FRAME_PX + 2))
    for frame in frames:
        writer.write(frame)
    writer.release()
    assert cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_HEIGHT) == so.FRAME_PX + 2
    tall = convert_h36m(part, tmp_path / "tall", every=1, every_test=1, progress=False)
    assert tall["rows"] == square["rows"] and tall["skipped"] == square["skipped"] == []
    with h5py.File(tmp_path / "square" / "annot.h5", "r") as a, h5py.File(tmp_path / "tall" / "annot.h5", "r") as b:
        for key in ("id", "subject", "action", "camera", "joint_2d", "joint_3d_mono", "bbox"):
            assert np.array_equal(a[key][()], b[key][()]), key
    names = {c.relative_to(tmp_path / "tall") for c in (tmp_path / "tall" / "images").rglob("*.jpg")}
    assert names == {c.relative_to(tmp_path / "square") for c in (tmp_path / "square" / "images").rglob("*.jpg")}

    def crop(folder: str, name) -> np.ndarray:
        return cv2.imread(str(tmp_path / folder / name)).astype(float)

    diffs = {n: np.abs(crop("tall", n) - crop("square", n)).mean() for n in names}
    redone = [n for n in names if diffs[n] > 0]  # the crops of the re-encoded video
    assert len(redone) == so.H36M_FRAMES and max(diffs.values()) < 4.0, diffs  # grey levels: the codec only
    others = [n for n in names if n.parent == redone[0].parent and n != redone[0]]  # its other frames' crops
    assert min(np.abs(crop("tall", redone[0]) - crop("square", n)).mean() for n in others) > 6.0


def test_h36m_all_sequences_are_left_out_in_the_mapping_and_on_disk(raw, tmp_path):
    """Human3.6M's `_ALL` sequences (files on disk, and names in metadata.xml's mapping) are converted by
    nobody: a mapping cell naming one, with its files present, adds no rows and is not listed as missing."""
    import xml.etree.ElementTree as ET

    part = tmp_path / "raw"
    shutil.copytree(raw / "h36m", part, ignore=shutil.ignore_patterns("S1", "S5", "S6", "S7", "S8", "S11"))
    plain = convert_h36m(part, tmp_path / "plain", every=1, every_test=1, progress=False)
    tree = ET.parse(part / "metadata.xml")
    discussion = tree.getroot().find("mapping").findall("tr")[2 * (3 - 1) + 1]  # action 3, subaction 1
    assert [td.text for td in discussion][:2] == ["3", "1"]
    discussion[1 + 9].text = "_ALL"  # S9's column
    tree.write(part / "metadata.xml")
    for folder, suffix in (("MyPoseFeatures/D3_Positions_mono", ".cdf"), ("MyPoseFeatures/D2_Positions", ".cdf"),
                           ("Videos", ".mp4")):
        for f in sorted((part / "S9" / folder).glob(f"Directions.*{suffix}")):
            shutil.copy(f, f.with_name(f.name.replace("Directions", "_ALL", 1)))
            shutil.copy(f, f.with_name(f.name.replace("Directions", "_ALL 1", 1)))
    report = convert_h36m(part, tmp_path / "out", every=1, every_test=1, progress=False)
    assert report["rows"] == plain["rows"] and report["sequences"] == plain["sequences"]
    assert not any("_ALL" in m for m in report["missing"] + report["skipped"])
    with h5py.File(tmp_path / "out" / "annot.h5", "r") as f:
        assert 3 not in set(f["action"][()])


@pytest.mark.parametrize("case", ["3d in metres", "2d normalised", "2d fewer frames"])
def test_h36m_poses_in_the_wrong_units_or_lengths_are_refused(raw, tmp_path, case):
    part, f3d, f2d = _one_sequence_download(raw, tmp_path)
    pose_3d, pose_2d = read_pose_cdf(f3d, 3), read_pose_cdf(f2d, 2)
    f3d.unlink()
    f2d.unlink()
    so._write_cdf(f3d, pose_3d)
    so._write_cdf(f2d, pose_2d)
    if case == "3d in metres":
        f3d.unlink()
        so._write_cdf(f3d, pose_3d / 1000.0)
        bad, match = f3d, r"span [\d.]+ units .* expected mm .*metres instead of millimetres"
    elif case == "2d normalised":
        f2d.unlink()
        so._write_cdf(f2d, pose_2d / so.FRAME_PX - 0.5)
        bad, match = f2d, "expected px .*normalised or crop coordinates"
    else:
        f2d.unlink()
        so._write_cdf(f2d, pose_2d[:-1])
        bad, match = f2d, f"holds {so.H36M_FRAMES - 1} frames, .* {so.H36M_FRAMES}: the 2D and 3D poses"
    with pytest.raises(DataError, match=re.escape(str(bad)) + ".*" + match):
        convert_h36m(part, tmp_path / "out", every=1, every_test=1, progress=False)


def _write_cdf_variable(path, name: str, data: np.ndarray) -> None:
    """A CDF file holding one variable `name` (as the official files hold `Pose`)."""
    from cdflib.cdfwrite import CDF

    path.unlink(missing_ok=True)
    cdf = CDF(str(path), cdf_spec={"Majority": "row_major"})
    cdf.write_var({"Variable": name, "Data_Type": CDF.CDF_DOUBLE, "Num_Elements": 1, "Rec_Vary": True,
                   "Dim_Sizes": list(data.shape[1:])}, var_data=data)
    cdf.close()


def test_a_pose_file_without_pose_or_of_another_shape_stops_the_conversion(raw, tmp_path, monkeypatch):
    """A readable CDF without `Pose` was taken for a cut-short file: its sequence skipped with a warning and
    the conversion finished with exit status 0. It is another file, not a damaged one: an error naming the
    file, the variables it holds and the shape expected; a wrong shape names the shape as stored."""
    import cdflib

    part, f3d, _ = _one_sequence_download(raw, tmp_path)
    pose = read_pose_cdf(f3d, 3).reshape(1, -1, 96)
    _write_cdf_variable(f3d, "Positions", pose)
    expected = re.escape(f"{f3d}: no variable 'Pose' (the file holds 'Positions'); expected a Human3.6M pose file "
                         "with 'Pose' of shape (1, N, 96)")
    with pytest.raises(DataError, match=f"^{expected}$"):
        convert_h36m(part, tmp_path / "out", progress=False)
    assert main(["convert-h36m", str(part), str(tmp_path / "out")]) == 2
    real_info = cdflib.CDF.cdf_info  # cdflib before 1.0 returned a dict: read the same way
    monkeypatch.setattr(cdflib.CDF, "cdf_info", lambda self: dict(vars(real_info(self))))
    assert isinstance(cdflib.CDF(str(f3d)).cdf_info(), dict)
    with pytest.raises(DataError, match=f"^{expected}$"):
        read_pose_cdf(f3d, 3)
    monkeypatch.undo()
    _write_cdf_variable(f3d, "Pose", pose[:, :, :93])  # 31 joints
    with pytest.raises(DataError, match="^" + re.escape(f"{f3d}: 'Pose' has shape (1, {pose.shape[1]}, 93), "
                                                        "expected (1, N, 96)") + "$"):
        convert_h36m(part, tmp_path / "out", progress=False)
    _write_cdf_variable(f3d, "pose", pose)  # cdflib finds a name in another case, as its varget does
    assert convert_h36m(part, tmp_path / "out", progress=False)["skipped"] == []


def test_a_pose_file_cut_short_anywhere_is_unreadable_not_another_file(raw, tmp_path):
    """A file cut short (an interrupted extraction) is skipped as damaged wherever the cut falls; cut inside
    its header it still opens, listing no variables or cut-off names, and was taken for a whole file
    without `Pose`, stopping the conversion."""
    _, f3d, _ = _one_sequence_download(raw, tmp_path)
    pose = read_pose_cdf(f3d, 3)[:2].reshape(1, 2, 96)
    whole = tmp_path / "whole.cdf"
    _write_cdf_variable(whole, "Pose", pose)
    data = whole.read_bytes()
    cut, outcomes = tmp_path / "cut.cdf", set()
    for size in range(8, len(data), 3):
        cut.write_bytes(data[:size])
        try:
            got = read_pose_cdf(cut, 3)
        except UnreadableCDF:
            outcomes.add("unreadable")
            continue
        # no DataError but UnreadableCDF (pytest reports the cut that raised it); a read that succeeds
        # despite the cut (only unused trailing bytes lost) returns the whole poses
        assert np.array_equal(got.reshape(1, 2, 96), pose), size
        outcomes.add("whole")
    assert "unreadable" in outcomes


def test_subjects_asked_for_but_not_in_the_download_are_refused(raw, tmp_path, capsys):
    """`--subjects 1 6` with no S6/ converted S1 alone, exit status 0, S6 one line among the missing files."""
    assert main(["convert-h36m", str(raw / "h36m"), str(tmp_path / "out"), "--subjects", "1", "6", "7"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"error: --subjects 1 6 7: no S6/, S7/ in {raw / 'h36m'} (nor in its extracted/, h36m-fetch's "
                       "layout); the download holds S1, S5, S9, S11: extract those subjects there, or leave them out "
                       "of --subjects")
    assert not (tmp_path / "out").exists()
    with pytest.raises(DataError, match=r"^--subjects 6: no S6/ in .*extract that subject there, or leave it out"):
        convert_h36m(raw / "h36m", tmp_path / "out", subjects=(6,), progress=False)
    assert convert_h36m(raw / "h36m", tmp_path / "out", subjects=(1,), progress=False)["rows"] > 0


def test_3dhp_poses_in_metres_are_refused(raw, tmp_path):
    part = tmp_path / "raw" / "TS5"
    shutil.copytree(raw / "mpi_inf_3dhp_test_set" / "TS5", part)
    with h5py.File(part / "annot_data.mat", "r") as f:
        arrays = {k: f[k][()] for k in f.keys()}
    arrays["univ_annot3"] = arrays["univ_annot3"] / 1000.0
    (part / "annot_data.mat").unlink()
    so._write_mat73(part / "annot_data.mat", arrays)
    with pytest.raises(DataError, match=r"TS5/annot_data.mat: 'univ_annot3': a person's joints span .* expected mm"):
        convert_3dhp(part.parent, tmp_path / "out", progress=False)


def test_3dhp_checks_the_valid_frames_only_and_their_activities(raw, tmp_path):
    """NaN in a frame the annotation marks invalid (never converted) is no reason to refuse a sequence; NaN
    or an unknown activity in a valid frame is, naming the file and frame."""
    part = tmp_path / "raw" / "TS5"
    shutil.copytree(raw / "mpi_inf_3dhp_test_set" / "TS5", part)
    with h5py.File(part / "annot_data.mat", "r") as f:
        original = {k: f[k][()] for k in f.keys()}
    valid = original["valid_frame"].ravel() > 0
    n = valid.size
    assert not valid.all() and valid.any()

    def with_frame(key: str, frame: int, value) -> None:
        arrays = {k: v.copy() for k, v in original.items()}
        a = arrays[key].astype(np.float64)
        axis = a.shape.index(n)  # frame-first or frame-last, as MATLAB stored it
        index = [slice(None)] * a.ndim
        index[axis] = frame
        a[tuple(index)] = value
        arrays[key] = a
        (part / "annot_data.mat").unlink()
        so._write_mat73(part / "annot_data.mat", arrays)

    invalid_frame, valid_frame = int(np.flatnonzero(~valid)[0]), int(np.flatnonzero(valid)[0])
    with_frame("annot2", invalid_frame, np.nan)
    assert convert_3dhp(part.parent, tmp_path / "out", progress=False)["frames"] == {"TS5": int(valid.sum())}
    with_frame("univ_annot3", valid_frame, np.nan)
    with pytest.raises(DataError, match=rf"annot_data.mat: annot2 or univ_annot3 holds NaN or infinite values in 1 "
                                        rf"valid frames \(first: frame {valid_frame + 1}\)"):
        convert_3dhp(part.parent, tmp_path / "out2", progress=False)
    with_frame("activity_annotation", valid_frame, 8)
    with pytest.raises(DataError, match=rf"'activity_annotation' of valid frames holds \[8\.0\] \(first: frame "
                                        rf"{valid_frame + 1}\); an MPI-INF-3DHP activity is 1\.\.7"):
        convert_3dhp(part.parent, tmp_path / "out3", progress=False)


def _edited_mpii(raw, tmp_path, edit) -> tuple:
    """A copy of the MPII .mat whose first annotated training person `edit(rect, point)` changes."""
    from scipy.io import loadmat, savemat

    release = loadmat(str(raw / "mpii" / "mpii_human_pose_v1_u12_1.mat"), struct_as_record=False,
                      squeeze_me=True)["RELEASE"]
    for anno in np.ravel(release.annolist):
        rects = anno.annorect
        for rect in (np.ravel(rects) if isinstance(rects, np.ndarray) else [rects]):
            points = getattr(getattr(rect, "annopoints", None), "point", None)
            if points is not None and not isinstance(rect.scale, np.ndarray):
                edit(rect, np.ravel(points)[0] if isinstance(points, np.ndarray) else points)
                mat = tmp_path / "mat" / "edited.mat"
                mat.parent.mkdir()
                savemat(str(mat), {"RELEASE": release})
                return mat, raw / "mpii" / "images"
    raise AssertionError("no annotated person")


@pytest.mark.parametrize("edit, match", [
    (lambda rect, pt: setattr(pt, "is_visible", "yes"), r"annolist\(\d+\)\.annorect\(\d+\) joint \d+ has is_visible 'yes'"),
    (lambda rect, pt: setattr(rect, "scale", -1.25), r"annolist\(\d+\)\.annorect\(\d+\)\.scale is -1.25, expected > 0"),
    (lambda rect, pt: setattr(pt, "x", "left"), r"annolist\(\d+\)\.annorect\(\d+\) joint \d+ x is 'left', expected a number"),
])
def test_mpii_bad_annotation_values_name_the_entry(raw, tmp_path, edit, match):
    mat, images = _edited_mpii(raw, tmp_path, edit)
    with pytest.raises(DataError, match="edited.mat: " + match):
        convert_mpii(mat, images, tmp_path / "out", progress=False)


def test_a_short_text_file_saved_as_the_mpii_mat_is_named(raw, tmp_path):
    """A login page saved instead of the download (under about 128 bytes) escaped as scipy's IndexError."""
    mat = tmp_path / "dl" / "mpii_human_pose_v1_u12_1.mat"
    mat.parent.mkdir()
    mat.write_text("<html>login required</html>")
    with pytest.raises(DataError, match=rf"^{re.escape(str(mat))}: not a readable MATLAB v5 file"):
        convert_mpii(mat, raw / "mpii" / "images", tmp_path / "out", progress=False)


def test_a_matlab_v73_mpii_mat_is_named_as_such(raw, tmp_path):
    """A .mat re-saved as MATLAB v7.3 (HDF5) escaped as scipy's NotImplementedError, a traceback."""
    mat = tmp_path / "dl" / "mpii_human_pose_v1_u12_1.mat"
    mat.parent.mkdir()
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116, b" ") + b"\x00" * 8
    mat.write_bytes(header + b"\x00\x02IM" + b"\x00" * 512)  # version 0x0200, little-endian: what v7.3 writes
    with pytest.raises(DataError, match=rf"^{re.escape(str(mat))}: a MATLAB v7.3 \(HDF5\) file; the official download "
                                        r"is MATLAB v5"):
        convert_mpii(mat, raw / "mpii" / "images", tmp_path / "out", progress=False)


def test_a_download_short_of_some_training_subjects_says_which(raw, tmp_path):
    """The fake download holds S1, S5, S9 and S11: training on S1 and S5 alone was said nowhere on the console."""
    with pytest.warns(common.ConversionWarning, match=r"training subjects missing: S6, S7, S8; the download "
                                                      r"holds only S1, S5 of them"):
        convert_h36m(raw / "h36m", tmp_path / "out", subjects=(11,), progress=False)


def test_mpii_val_from_that_matches_nobody_is_an_error(raw, tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["index"], f["person"] = np.arange(5) + 10_000.0, np.zeros(5)
    with pytest.raises(DataError, match=r"none of the 5 validation people in --val-from .*other.h5 .*0-based"):
        convert_mpii(raw / "mpii" / "mpii_human_pose_v1_u12_1.mat", raw / "mpii" / "images", tmp_path / "out",
                     val_from=tmp_path / "other.h5", progress=False)


def test_mpii_round_trip(raw, converted):
    out, reports = converted
    truth = _truth(raw, "mpii")
    train, val = read_annotations(out / "mpii" / "train.h5"), read_annotations(out / "mpii" / "val.h5")
    # --val-from: images 1 and 4 are validation; their images are left out of training
    assert sorted(val["index"].astype(int)) == [i for i, _ in so.MPII_VAL_FROM]
    assert not set(train["index"].astype(int)) & {i for i, _ in so.MPII_VAL_FROM}
    # quirks: image 3's person without scale and image 5's empty annorect give no rows; test images none
    assert set(train["index"].astype(int)) == set(range(so.MPII_TRAIN_IMAGES)) - {1, 4, 5}
    # image 3's second person (no scale) and image 4's (no joints) are counted, not written
    assert reports["mpii"]["skipped_people"] == {"no_joints": 1, "no_scale_or_objpos": 1}
    assert reports["mpii"]["train_rows"] == len(train["index"])
    for ann in (train, val):
        for r, i in enumerate(ann["index"].astype(int)):
            annotated = np.any(ann["part"][r] != 0, axis=-1)
            src = truth["joint_2d"][i]
            assert np.allclose(ann["part"][r][annotated], src[annotated])
            if i == 2:
                assert annotated.sum() == 1  # the single-struct point list
            else:
                assert np.array_equal(annotated, truth["annotated"][i])
            # the adjustment is applied once: the crop is the joints' midpoint, 1.25 x their extent
            lo, hi = src.min(0), src.max(0)
            assert np.allclose(ann["center"][r], (lo + hi) / 2) and np.isclose(ann["scale"][r] * 200, 1.25 * (hi - lo).max())
    ds = MPIIDataset(out / "mpii", "train", CFG)  # through the images link
    s = ds[0]
    assert s["image"].shape == (3, 64, 64) and s["valid"].sum() >= 1


def test_mpii_with_the_wrong_images_folder_says_so(raw, tmp_path):
    mat = raw / "mpii" / "mpii_human_pose_v1_u12_1.mat"
    with pytest.raises(DataError, match=r"no image of mpii_human_pose_v1_u12_1\.mat found in .*mpii \(e\.g\. .+\.jpg\)"):
        convert_mpii(mat, raw / "mpii", tmp_path / "out", progress=False)  # the download folder, not its images/
    assert not (tmp_path / "out" / "images").exists()


def test_mpii_default_split_and_missing_images(raw, tmp_path):
    images = tmp_path / "images"
    shutil.copytree(raw / "mpii" / "images", images)
    (images / "900000001.jpg").unlink()
    report = convert_mpii(raw / "mpii" / "mpii_human_pose_v1_u12_1.mat", images, tmp_path / "out", progress=False)
    assert report["missing_images"] == ["900000001.jpg"] and report["val_rows"] >= 1
    assert report["damaged_images"] == []


def test_mpii_leaves_out_truncated_and_empty_images(raw, tmp_path, capsys):
    """A download cut short: a person whose JPEG lacks its end marker, or is empty, is left out and named."""
    mat = raw / "mpii" / "mpii_human_pose_v1_u12_1.mat"
    images = tmp_path / "images"
    shutil.copytree(raw / "mpii" / "images", images)
    whole = convert_mpii(mat, images, tmp_path / "whole", progress=False)
    names = sorted(p.name for p in images.glob("*.jpg"))
    data = (images / names[0]).read_bytes()
    (images / names[0]).write_bytes(data[: len(data) // 2])
    (images / names[1]).write_bytes(b"")
    report = convert_mpii(mat, images, tmp_path / "out", progress=False)
    assert report["damaged_images"] == sorted([f"{names[0]} (truncated JPEG (no end marker))",
                                               f"{names[1]} (empty file)"])
    assert report["missing_images"] == [] and report["rows"] < whole["rows"]
    kept = {n.decode() if isinstance(n, bytes) else str(n) for split in ("train", "val")
            if (tmp_path / "out" / f"{split}.h5").exists()
            for n in read_annotations(tmp_path / "out" / f"{split}.h5")["imgname"]}
    assert names[0] not in kept and names[1] not in kept and kept
    common.print_report(report, "out")
    printed = capsys.readouterr().out
    assert f"damaged images: {names[0]} (truncated JPEG" in printed
    assert "people without a row: 1 no joints, 1 no scale or objpos" in printed
    val = read_annotations(tmp_path / "out" / "val.h5")
    train = read_annotations(tmp_path / "out" / "train.h5")
    assert not set(val["index"].astype(int)) & set(train["index"].astype(int))
    with pytest.raises(DataError, match="no datasets.*index"):
        with h5py.File(tmp_path / "v.h5", "w") as f:
            f["person"] = np.zeros(2)
        convert_mpii(raw / "mpii" / "mpii_human_pose_v1_u12_1.mat", images, tmp_path / "o2", val_from=tmp_path / "v.h5")


def test_3dhp_round_trip_and_protocol(raw, converted):
    out = converted[0]
    truth = _truth(raw, "3dhp")
    with h5py.File(out / "3dhp" / "annot.h5", "r") as f:
        annot = {k: f[k][()] for k in f}
    assert np.array_equal(annot["sequence"], truth["sequence"]) and np.array_equal(annot["id"], truth["frame"])
    assert so.TS_INVALID_FRAME not in set(annot["id"])  # valid frames only
    assert np.array_equal(annot["subject"], annot["sequence"]) and set(annot["camera"]) == {1}
    assert np.allclose(annot["joint_3d_mono"], truth["joints_mm"], atol=1e-9)  # univ_annot3, the universal skeleton
    with h5py.File(raw / "mpi_inf_3dhp_test_set" / "TS1" / "annot_data.mat", "r") as f:  # which differs from annot3
        assert not np.allclose(f["univ_annot3"][()], f["annot3"][()], atol=1.0)
    _labels_on_person(annot, truth["mask"], out)
    ds = H36MDataset(out / "3dhp", "test", CFG)
    assert np.array_equal(ds.sequences, annot["sequence"])
    rows = mpi3dhp_rows("gt", "3dhp", ds.joints_3d_mm, ds.joints_3d_mm, ds.sequences, activity=ds.actions)
    scenes_and_sequences = {"green_screen", "no_green_screen", "outdoor", "all"} | {f"TS{s}" for s in set(ds.sequences)}
    activities = {MPI3DHP_ACTIVITIES[a] for a in set(ds.actions)}
    assert {r["action"] for r in rows} == scenes_and_sequences | activities
    assert all(r["value"] == 1.0 for r in rows if r["protocol"] == "3dhp_pck")
    # per-action tables name 3DHP activities, not the Human3.6M actions with the same ids
    per_action = per_action_rows("gt", "wild_test", {"p1_mpjpe": np.zeros(len(ds))}, ds.actions, action_names_for(ds))
    named = {r["action"] for r in per_action} - {"all"}
    assert named and named <= set(MPI3DHP_ACTIVITIES.values())
    assert action_names_for(H36MDataset(out / "h36m", "test", CFG)) is ACTION_NAMES


def test_3dhp_shows_its_progress_frame_by_frame(raw, tmp_path, monkeypatch):
    """The only bar counted the six sequences, each a minute or more of the real test set's frames."""
    from pose3dlib.data.convert import mpi3dhp

    bars = []

    def recording_bar(iterable=None, **kwargs):
        items = list(iterable)
        bars.append((kwargs.get("desc"), kwargs.get("unit"), len(items), kwargs.get("disable")))
        return iter(items)

    monkeypatch.setattr(mpi3dhp, "progress_bar", recording_bar)
    convert_3dhp(raw / "mpi_inf_3dhp_test_set", tmp_path / "out", progress=True)
    valid = so.TS_FRAMES - 1  # frame TS_INVALID_FRAME is not valid
    assert bars == [("convert-3dhp", "seq", 6, False)] + [(f"convert-3dhp: TS{s}", "frame", valid, False)
                                                          for s in range(1, 7)]
    bars.clear()
    convert_3dhp(raw / "mpi_inf_3dhp_test_set", tmp_path / "quiet", progress=False)
    assert {disable for *_, disable in bars} == {True}


def test_3dhp_partial_download(raw, tmp_path):
    part = tmp_path / "raw"
    shutil.copytree(raw / "mpi_inf_3dhp_test_set" / "TS5", part / "TS5")
    image = part / "TS5" / "imageSequence" / "img_000001.jpg"
    kept = image.read_bytes()
    image.unlink()
    report = convert_3dhp(part, tmp_path / "out", progress=False)
    assert report["frames"] == {"TS5": so.TS_FRAMES - 2} and len(report["sequences_missing"]) == 5
    assert any("TS5/imageSequence" in m for m in report["missing"])
    # a rerun with the image still missing says so again (the incomplete sequence is not kept as finished)
    again = convert_3dhp(part, tmp_path / "out", progress=False)
    assert again["frames"] == report["frames"] and any("TS5/imageSequence" in m for m in again["missing"])
    image.write_bytes(kept)  # the user restores it: the sequence is converted in full
    fixed = convert_3dhp(part, tmp_path / "out", progress=False)
    assert fixed["frames"] == {"TS5": so.TS_FRAMES - 1} and fixed["missing"] == []
    assert json.loads((tmp_path / "out" / "conversion.json").read_text())["missing"] == []
    image.write_bytes(kept[: len(kept) // 2])  # cut short: OpenCV alone would fill its lower half with grey
    cut = convert_3dhp(part, tmp_path / "out", progress=False)
    assert cut["frames"] == {"TS5": so.TS_FRAMES - 2} and any("TS5/imageSequence: 1 of" in m for m in cut["missing"])


def test_h36m_video_shorter_than_its_poses_is_reported_and_redone_when_replaced(raw, tmp_path):
    part = tmp_path / "raw"
    shutil.copytree(raw / "h36m", part, ignore=shutil.ignore_patterns("S1", "S5", "S6", "S7", "S8", "S11"))
    full = convert_h36m(part, tmp_path / "full", every=1, every_test=1, progress=False)
    video = sorted((part / "S9" / "Videos").glob("*.mp4"))[0]
    original = video.read_bytes()
    cap = cv2.VideoCapture(str(video))
    ok, first = cap.read()
    cap.release()
    assert ok
    video.unlink()
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 50.0, (first.shape[1], first.shape[0]))
    writer.write(first)  # one frame where the poses have H36M_FRAMES
    writer.release()
    with pytest.warns(common.ConversionWarning, match=f"ends after 1 of the {so.H36M_FRAMES} frames"):
        short = convert_h36m(part, tmp_path / "out", every=1, every_test=1, progress=False)
    assert short["rows"] == full["rows"] - (so.H36M_FRAMES - 1)
    assert [m for m in short["missing"] if "video ends early" in m] == [
        f"S9/Videos/{video.name}: frames 2-{so.H36M_FRAMES} (video ends early)"]
    video.write_bytes(original)  # the whole video again: converted anew, nothing missing
    fixed = convert_h36m(part, tmp_path / "out", every=1, every_test=1, progress=False)
    assert fixed["rows"] == full["rows"] and not [m for m in fixed["missing"] if "video ends early" in m]


def test_h36m_a_cut_short_pose_file_skips_its_sequence_as_an_unreadable_video_does(raw, tmp_path):
    part = tmp_path / "raw"
    shutil.copytree(raw / "h36m", part, ignore=shutil.ignore_patterns("S1", "S5", "S6", "S7", "S8", "S11"))
    full = convert_h36m(part, tmp_path / "full", progress=False)
    f3d = sorted((part / "S9").rglob("D3_Positions_mono/*.cdf"))[0]
    kept = f3d.read_bytes()
    f3d.write_bytes(kept[: len(kept) // 3])  # an interrupted extraction
    with pytest.warns(common.ConversionWarning, match=rf"{re.escape(f3d.name)}: not a readable Human3.6M CDF file.*; "
                                                       "sequence skipped"):
        cut = convert_h36m(part, tmp_path / "out", progress=False)
    assert cut["skipped"] == [str(f3d.relative_to(part))] and 0 < cut["rows"] < full["rows"]
    assert cut["sequences"] == full["sequences"] - 1
    f3d.write_bytes(kept)  # restored: the sequence is converted again, nothing skipped
    fixed = convert_h36m(part, tmp_path / "out", progress=False)
    assert fixed["skipped"] == [] and fixed["rows"] == full["rows"]


def test_a_rerun_converts_again_what_lost_its_crops(raw, tmp_path):
    """A finished sequence's record is not trusted when its crops are gone (a deleted images/ folder)."""
    part = tmp_path / "raw"
    shutil.copytree(raw / "h36m", part, ignore=shutil.ignore_patterns("S1", "S5", "S6", "S7", "S8", "S11"))
    first = convert_h36m(part, tmp_path / "h36m", progress=False)
    crops = sorted((tmp_path / "h36m" / "images").rglob("*.jpg"))
    crops[len(crops) // 2].unlink()
    again = convert_h36m(part, tmp_path / "h36m", progress=False)
    assert again["rows"] == first["rows"] and crops[len(crops) // 2].is_file()
    convert_3dhp(raw / "mpi_inf_3dhp_test_set", tmp_path / "3dhp", progress=False)
    shutil.rmtree(tmp_path / "3dhp" / "images")
    report = convert_3dhp(raw / "mpi_inf_3dhp_test_set", tmp_path / "3dhp", progress=False)
    assert len(list((tmp_path / "3dhp" / "images").rglob("*.jpg"))) == report["rows"] > 0


def test_crops_present_lists_each_sequence_folder_once_and_misses_nothing(tmp_path, monkeypatch):
    from pose3dlib.data.convert import common
    from pose3dlib.data.h36m import image_path

    rows = np.array([(9, 2, 1, 1, i) for i in (1, 6, 11)] + [(11, 3, 2, 4, i) for i in (1, 2)])
    cols = list(rows.T)
    for row in rows:
        path = image_path(tmp_path, *map(int, row))
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"jpg")
    listed = []
    real_present_names = common._present_names
    monkeypatch.setattr(common, "_present_names", lambda folder: listed.append(folder) or real_present_names(folder))
    assert common.crops_present(tmp_path, *cols)
    assert sorted(f.name for f in listed) == ["s_09_act_02_subact_01_ca_01", "s_11_act_03_subact_02_ca_04"]
    last = image_path(tmp_path, *map(int, rows[-1]))
    last.unlink()  # one crop gone, in the second folder
    assert not common.crops_present(tmp_path, *cols)
    target = tmp_path / "elsewhere.jpg"
    last.symlink_to(target)  # a dangling link is no crop ...
    assert not common.crops_present(tmp_path, *cols)
    target.write_bytes(b"jpg")  # ... a link to one is
    assert common.crops_present(tmp_path, *cols)
    shutil.rmtree(last.parent)  # a whole folder gone
    assert not common.crops_present(tmp_path, *cols)
    assert common.crops_present(tmp_path, *(c[:3] for c in cols))  # the rows of the other folder alone


def test_a_damaged_part_marker_means_convert_again(tmp_path):
    rows = {k: np.arange(3) + 1 for k in ("subject", "action", "subaction", "camera", "id")}
    settings = {"step": 1}
    common.save_part(tmp_path, "seq", settings, rows)
    marker = common.part_path(tmp_path, "seq")
    whole = marker.read_bytes()
    assert common.load_part(tmp_path, "seq", settings) is not None
    for damaged in (b"", whole[: len(whole) // 2], b"not a zip archive at all"):
        marker.write_bytes(damaged)
        assert common.load_part(tmp_path, "seq", settings) is None
    common.save_part(tmp_path, "seq", settings, {**rows, "id": np.arange(5)})  # rows of two lengths
    assert common.load_part(tmp_path, "seq", settings, tmp_path / "images") is None


def test_h36m_subjects_in_batches_are_not_dropped(raw, tmp_path):
    out = tmp_path / "out"
    nine = convert_h36m(raw / "h36m", out, subjects=(9,), progress=False)
    with pytest.raises(DataError, match=r"annot.h5 holds subjects \[9\] that this conversion \(subjects \[11\]\) would "
                                        r"leave out of it: pass --subjects 9 11"):
        convert_h36m(raw / "h36m", out, subjects=(11,), progress=False)
    both = convert_h36m(raw / "h36m", out, subjects=(9, 11), progress=False)
    moved = tmp_path / "moved"  # S9's folder leaves the download: --subjects could not keep it, so that is not said
    shutil.copytree(raw / "h36m", moved, ignore=shutil.ignore_patterns("S9"))
    with pytest.raises(DataError, match=r"holds subjects \[9\], and S9/ is no longer in the download .*moved: a "
                                        r"conversion now would leave them out of it; put the folder back"):
        convert_h36m(moved, out, progress=False)
    eleven = convert_h36m(raw / "h36m", tmp_path / "eleven", subjects=(11,), progress=False)
    assert both["rows"] == nine["rows"] + eleven["rows"]
    with h5py.File(out / "annot.h5", "r") as f:
        assert set(f["subject"][()]) == {9, 11}


def test_a_replaced_source_file_is_converted_again(raw, tmp_path):
    """A finished sequence is reused only while its source files are the same (name, size, time)."""
    part = tmp_path / "raw"
    shutil.copytree(raw / "mpi_inf_3dhp_test_set" / "TS5", part / "TS5")
    convert_3dhp(part, tmp_path / "out", progress=False)
    crop = next((tmp_path / "out" / "images").rglob("*.jpg"))
    before = crop.stat().st_mtime_ns
    assert convert_3dhp(part, tmp_path / "out", progress=False)["rows"] and crop.stat().st_mtime_ns == before
    image = part / "TS5" / "imageSequence" / "img_000001.jpg"
    image.write_bytes(image.read_bytes())  # the same bytes, a newer file: it may differ, so convert again
    convert_3dhp(part, tmp_path / "out", progress=False)
    assert crop.stat().st_mtime_ns != before


def _no_sequence_converted_again(monkeypatch):
    """Make decoding and cropping a sequence again an error: what follows must reuse the finished parts."""
    from pose3dlib.data.convert import h36m as h36m_converter
    from pose3dlib.data.convert import mpi3dhp as mpi3dhp_converter

    def converted_again(*args, **kwargs):
        raise AssertionError("a finished sequence was decoded and cropped again")

    monkeypatch.setattr(h36m_converter, "_sequence_rows", converted_again)
    monkeypatch.setattr(mpi3dhp_converter, "_convert_sequence", converted_again)


def _small_downloads(raw, folder):
    """Human3.6M's S9 and MPI-INF-3DHP's TS5, copied with their files' times into `folder`."""
    h36m, ts = folder / "h36m_raw", folder / "3dhp_raw"
    shutil.copytree(raw / "h36m", h36m, ignore=shutil.ignore_patterns("S1", "S5", "S6", "S7", "S8", "S11"))
    shutil.copytree(raw / "mpi_inf_3dhp_test_set" / "TS5", ts / "TS5")
    return h36m, ts


def test_a_moved_download_reuses_its_finished_sequences(raw, tmp_path, monkeypatch):
    """The sequence fingerprints name files relative to the download: a download moved or renamed as a
    whole (times kept) is not decoded and cropped again."""
    h36m, ts = _small_downloads(raw, tmp_path)
    first = {"h36m": convert_h36m(h36m, tmp_path / "h36m", progress=False),
             "3dhp": convert_3dhp(ts, tmp_path / "3dhp", progress=False)}
    (tmp_path / "moved").mkdir()
    h36m, ts = h36m.rename(tmp_path / "moved" / "h36m"), ts.rename(tmp_path / "moved" / "3dhp")
    _no_sequence_converted_again(monkeypatch)
    again = {"h36m": convert_h36m(h36m, tmp_path / "h36m", progress=False),
             "3dhp": convert_3dhp(ts, tmp_path / "3dhp", progress=False)}
    for name in first:
        assert again[name]["rows"] == first[name]["rows"] > 0
        assert again[name]["raw"] != first[name]["raw"]  # the report names the download where it is now


def test_parts_recorded_with_absolute_path_fingerprints_are_kept_and_recorded_again(raw, tmp_path, monkeypatch):
    """Parts an older converter recorded (its fingerprint named the files by absolute path) are reused
    once, not decoded again, and recorded with the fingerprint inside the download."""
    h36m, ts = _small_downloads(raw, tmp_path)
    fingerprint = common.files_fingerprint
    with monkeypatch.context() as older:  # the older converter: no `root`, absolute paths
        older.setattr(common, "files_fingerprint", lambda *paths, root=None: fingerprint(*paths))
        convert_h36m(h36m, tmp_path / "h36m", progress=False)
        convert_3dhp(ts, tmp_path / "3dhp", progress=False)
    markers = [*(tmp_path / "h36m" / common.PARTS_DIR).glob("*.npz"), *(tmp_path / "3dhp" / common.PARTS_DIR).glob("*.npz")]

    def recorded() -> dict:
        out = {}
        for marker in markers:
            with np.load(marker, allow_pickle=False) as z:
                out[marker] = json.loads(str(z["settings"]))["files"]
        return out

    before = recorded()
    assert len(markers) > 1 and all(before.values())
    _no_sequence_converted_again(monkeypatch)
    assert convert_h36m(h36m, tmp_path / "h36m", progress=False)["rows"] > 0
    assert convert_3dhp(ts, tmp_path / "3dhp", progress=False)["rows"] > 0
    after = recorded()
    assert all(after[m] != before[m] for m in markers)  # recorded again, the new way ...
    (tmp_path / "moved").mkdir()
    h36m, ts = h36m.rename(tmp_path / "moved" / "h36m"), ts.rename(tmp_path / "moved" / "3dhp")
    assert convert_h36m(h36m, tmp_path / "h36m", progress=False)["rows"] > 0  # ... so a move now keeps them too
    assert convert_3dhp(ts, tmp_path / "3dhp", progress=False)["rows"] > 0
    assert recorded() == after


def test_prepare_real_data_converts_once(raw, tmp_path):
    from pose3dlib.data.convert.real import prepare_real_data, summary_rows

    cfg = DataConfig(raw_h36m_dir=str(raw / "h36m"), raw_mpii_dir=str(raw / "mpii"),
                     raw_3dhp_dir=str(raw / "mpi_inf_3dhp_test_set"), h36m_dir=str(tmp_path / "h36m"),
                     mpii_dir=str(tmp_path / "mpii"), wild_test_dir=str(tmp_path / "3dhp"))
    first = prepare_real_data(cfg, progress=False)
    assert set(first) == {"h36m", "mpii", "3dhp"} and first["h36m"]["every_test"] == 200
    assert first["mpii"]["val_rule"].endswith("valid.h5")
    stamp = (tmp_path / "h36m" / "annot.h5").stat().st_mtime_ns
    assert prepare_real_data(cfg, progress=False) == json.loads(json.dumps(first))  # the stored reports, nothing redone
    assert (tmp_path / "h36m" / "annot.h5").stat().st_mtime_ns == stamp
    assert [r["rows"] for r in summary_rows(first)] == [first[k]["rows"] for k in ("h36m", "mpii", "3dhp")]
    (tmp_path / "syn").mkdir()
    (tmp_path / "syn" / "manifest.json").write_text("{}")
    with pytest.raises(DataError, match="synthetic data"):
        prepare_real_data(DataConfig(raw_3dhp_dir=str(raw / "mpi_inf_3dhp_test_set"),
                                     wild_test_dir=str(tmp_path / "syn" / "wild_test")), progress=False)
    with pytest.raises(DataError, match="no official download"):
        prepare_real_data(DataConfig(), progress=False)
    (tmp_path / "empty_3dhp" / "TS1").mkdir(parents=True)  # a download folder without any sequence's annotations
    with pytest.raises(DataError, match=r"3dhp: nothing was converted from data.raw_3dhp_dir = .*empty_3dhp \(missing: "):
        prepare_real_data(DataConfig(raw_3dhp_dir=str(tmp_path / "empty_3dhp"), wild_test_dir=str(tmp_path / "e3")),
                          progress=False)
    # a converter's own error names the setting: here the folder above the Human3.6M download
    with pytest.raises(DataError, match=rf"^data.raw_h36m_dir = {re.escape(str(raw))}: no Human3.6M subject folder .*"
                                        rf"{re.escape(str(raw / 'h36m'))} has them"):
        prepare_real_data(DataConfig(raw_h36m_dir=str(raw), h36m_dir=str(tmp_path / "h2")), progress=False)


def test_a_download_that_changed_since_its_conversion_is_converted_again(raw, tmp_path):
    """Subjects added to the download (or another download named) are not hidden by the earlier conversion."""
    from pose3dlib.config import load_config
    from pose3dlib.data.convert.real import DOWNLOAD_STAMP, prepare_real_data
    from pose3dlib.engine import runs

    part = tmp_path / "h36m_raw"
    shutil.copytree(raw / "h36m", part, ignore=shutil.ignore_patterns("S9"))
    cfg = DataConfig(raw_h36m_dir=str(part), h36m_dir=str(tmp_path / "h36m"))
    without_s9 = prepare_real_data(cfg, progress=False)["h36m"]
    assert json.loads((tmp_path / "h36m" / DOWNLOAD_STAMP).read_text())["raw"] == str(part)
    # a stage trained on this conversion records the download's state (what its checkpoint holds)
    training = load_config("configs/smoke.yaml", [f"data.raw_h36m_dir={part}", f"data.h36m_dir={tmp_path / 'h36m'}"])
    trained_on = {"extra": {"data": runs.data_identities(training)}}
    assert trained_on["extra"]["data"]["h36m_dir"] == {
        "download": json.loads((tmp_path / "h36m" / DOWNLOAD_STAMP).read_text())["fingerprint"]}
    assert runs.data_changes(trained_on, training) == []
    shutil.copytree(raw / "h36m" / "S9", part / "S9")  # the rest of the download arrives
    with_s9 = prepare_real_data(cfg, progress=False)["h36m"]
    assert with_s9["rows"] > without_s9["rows"]
    # ... so that stage no longer counts as trained on what the folder holds: make reproduce trains it again
    assert runs.data_changes(trained_on, training) == [
        f"data.h36m_dir = {tmp_path / 'h36m'} was converted again since it was trained on it: its download "
        f"data.raw_h36m_dir = {part} changed (files added, removed or replaced, or their modification times) or the "
        "conversion's settings did (data.h36m_drop_damaged, how the crops are cut)"]
    stamp = (tmp_path / "h36m" / "annot.h5").stat().st_mtime_ns
    assert with_s9 == prepare_real_data(cfg, progress=False)["h36m"]  # unchanged now: reused, not redone
    assert (tmp_path / "h36m" / "annot.h5").stat().st_mtime_ns == stamp
    # converted by hand since, with other settings: REAL_DATA converts it again with the release's
    by_hand = convert_h36m(part, tmp_path / "h36m", every=1, every_test=1, progress=False)
    assert by_hand["rows"] > with_s9["rows"] and not (tmp_path / "h36m" / DOWNLOAD_STAMP).exists()
    assert runs.data_identities(training)["h36m_dir"] is None  # a set converted by hand records no download ...
    assert runs.data_changes(trained_on, training) == [  # ... so it is not the conversion the stage was trained on
        f"data.h36m_dir = {tmp_path / 'h36m'} holds no record of its download (no download.json: converted by hand "
        f"since?) where it was trained on a conversion of data.raw_h36m_dir = {part}"]
    assert prepare_real_data(cfg, progress=False)["h36m"]["rows"] == with_s9["rows"]


def test_the_download_fingerprint_covers_what_the_converter_reads_and_nothing_else(raw, tmp_path):
    """h36m-fetch keeps extracted frames in processed/ beside extracted/S*/: not walked, not counted;
    a subject's file replaced or metadata.xml touched changes it; each dataset has its own."""
    import os

    from pose3dlib.data.convert.real import download_fingerprint

    fetch = tmp_path / "fetch"
    shutil.copytree(raw / "h36m", fetch / "extracted")
    (fetch / "extracted" / "metadata.xml").rename(fetch / "metadata.xml")
    before = download_fingerprint(fetch, "h36m")
    (fetch / "processed" / "S1").mkdir(parents=True)
    (fetch / "processed" / "S1" / "img_000001.jpg").write_bytes(b"frame")
    (fetch / "h36m.zip").write_bytes(b"archive")
    assert download_fingerprint(fetch, "h36m") == before
    assert download_fingerprint(fetch) != before  # the whole-folder fingerprint does see them
    cdf = sorted((fetch / "extracted" / "S1").rglob("*.cdf"))[0]
    st = cdf.stat()
    os.utime(cdf, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # replaced by another copy of it
    assert download_fingerprint(fetch, "h36m") != before
    changed = download_fingerprint(fetch, "h36m")
    (fetch / "metadata.xml").write_text((fetch / "metadata.xml").read_text() + " ")
    assert download_fingerprint(fetch, "h36m") != changed
    copy = tmp_path / "3dhp"
    shutil.copytree(raw / "mpi_inf_3dhp_test_set", copy)
    whole = download_fingerprint(copy, "3dhp")
    (copy / "README.txt").write_text("notes beside the sequences")  # not read by the converter
    assert download_fingerprint(copy, "3dhp") == whole
    shutil.rmtree(copy / "TS6")
    assert download_fingerprint(copy, "3dhp") != whole  # a sequence missing


def test_only_a_download_stamp_is_dropped(tmp_path):
    from pose3dlib.data.convert.common import DOWNLOAD_STAMP, drop_download_stamp

    (tmp_path / DOWNLOAD_STAMP).write_text('{"raw": "/data/raw/h36m", "fingerprint": "ab"}')
    drop_download_stamp(tmp_path)
    assert not (tmp_path / DOWNLOAD_STAMP).exists()
    (tmp_path / DOWNLOAD_STAMP).write_text('{"something": "of yours"}')  # a file of that name that is not one
    drop_download_stamp(tmp_path)
    assert (tmp_path / DOWNLOAD_STAMP).read_text() == '{"something": "of yours"}'
    drop_download_stamp(tmp_path / "nowhere")  # no folder, no stamp: nothing to do


def test_a_sweep_on_real_data_needs_the_downloads_converted_as_they_are_now(raw, tmp_path):
    """check_converted (what `sweep --real-data` runs first): a download not converted yet, or changed since
    its conversion, is named with its converted folder and the hint; converted as it is, it passes."""
    from pose3dlib.data.convert.real import check_converted, prepare_real_data

    part = tmp_path / "h36m_raw"
    shutil.copytree(raw / "h36m", part, ignore=shutil.ignore_patterns("S9"))
    cfg = DataConfig(raw_h36m_dir=str(part), h36m_dir=str(tmp_path / "h36m"))
    with pytest.raises(DataError, match=rf"^data.h36m_dir = {re.escape(str(tmp_path / 'h36m'))} is not converted yet "
                                        rf"\(data.raw_h36m_dir = {re.escape(str(part))}\): convert it$"):
        check_converted(cfg, "convert it")
    prepare_real_data(cfg, progress=False)
    check_converted(cfg, "convert it")
    shutil.copytree(raw / "h36m" / "S9", part / "S9")  # changed since
    with pytest.raises(DataError, match=r"h36m was not converted from it as it is now \(data.raw_h36m_dir = "):
        check_converted(cfg, "convert it")
    prepare_real_data(cfg, progress=False)
    check_converted(cfg, "convert it")


def test_the_download_state_file_moves_only_when_a_download_changed(raw, tmp_path, capsys, make_n):
    """`real-data-overrides --state-file`: make's stamp before notebook 01 under REAL_DATA=True. Written when
    absent or when a download changed (or another one is named), left alone (its time kept) otherwise, so
    make reruns the conversion and the stages after it only then."""
    import os

    from pose3dlib.data.convert.real import download_fingerprint

    part = tmp_path / "h36m_raw"
    shutil.copytree(raw / "h36m", part, ignore=shutil.ignore_patterns("S9"))
    state = tmp_path / "stamps" / "downloads"

    def write(*downloads: str) -> dict:
        assert main(["real-data-overrides", "--config", "configs/smoke.yaml", "--state-file", str(state),
                     *(a for o in downloads for a in ("--set", o))]) == 0
        capsys.readouterr()
        return json.loads(state.read_text())

    assert write(f"data.raw_h36m_dir={part}") == {"h36m": download_fingerprint(part, "h36m")}
    # a download folder that is not there (a typo) is named (a warning: the overrides may be printed before the
    # download is in place), not fingerprinted as absent files without a word
    assert main(["real-data-overrides", "--config", "configs/smoke.yaml", "--state-file", str(tmp_path / "other"),
                 "--set", f"data.raw_h36m_dir={tmp_path / 'nope'}"]) == 0
    assert f"configs/smoke.yaml: data.raw_h36m_dir = {tmp_path / 'nope'}: download folder not found" in (
        capsys.readouterr().err)
    os.utime(state, (1_000_000, 1_000_000))
    write(f"data.raw_h36m_dir={part}")
    assert state.stat().st_mtime == 1_000_000  # nothing changed: make sees the stamp as it was
    shutil.copytree(raw / "h36m" / "S9", part / "S9")  # the rest of the download arrives
    assert write(f"data.raw_h36m_dir={part}")["h36m"] == download_fingerprint(part, "h36m")
    assert state.stat().st_mtime > 1_000_000
    os.utime(state, (1_000_000, 1_000_000))
    assert set(write(f"data.raw_h36m_dir={part}", f"data.raw_3dhp_dir={raw / 'mpi_inf_3dhp_test_set'}")) == {"h36m", "3dhp"}
    assert state.stat().st_mtime > 1_000_000
    # make: notebook 01 of a real-data run depends on that stamp, which is checked at every make reproduce
    real = make_n("reproduce", "PROFILE=smoke", "REAL_DATA=True").stdout
    assert "--state-file runs/smoke-real/.stamps/downloads" in real
    assert real.index("--state-file") < real.index("run-notebook 01_data_prep")
    assert "--state-file" not in make_n("reproduce", "PROFILE=smoke").stdout


def test_make_reruns_the_real_data_steps_only_after_a_download_changed(raw, tmp_path):
    """The Makefile under REAL_DATA=True, run for real (not `make -n`, which lists every step): `python` is a
    stand-in that logs each command and hands `real-data-overrides` to the real one, with a config naming a
    copy of the Human3.6M download, and writes the (empty) checkpoints make looks for. Notebooks 01-06 run
    once, not again while the download is unchanged,
    and all again (01 converting it anew) once a subject was added to it: make re-reads the downloads stamp's
    time after `--state-file` left it alone or rewrote it."""
    import os
    import stat
    import subprocess
    import sys

    from pose3dlib.data.convert.real import download_fingerprint
    from pose3dlib.engine.paths import PROJECT_ROOT

    if shutil.which("make") is None or not (PROJECT_ROOT / ".venv" / ".installed").is_file():
        pytest.skip("needs make and a set-up .venv (make setup)")
    part = tmp_path / "h36m_raw"
    shutil.copytree(raw / "h36m", part, ignore=shutil.ignore_patterns("S9"))
    config = tmp_path / "real.yaml"
    config.write_text((PROJECT_ROOT / "configs" / "smoke.yaml").read_text()
                      .replace("data:\n", f"data:\n  raw_h36m_dir: {part}\n", 1))
    log, stub, run = tmp_path / "commands.log", tmp_path / "python", tmp_path / "run"
    stub.write_text(f"""#!{sys.executable}
import os, subprocess, sys
args = sys.argv[1:]
with open({str(log)!r}, "a") as f:
    f.write(" ".join(args) + "\\n")
if "real-data-overrides" in args:
    args[args.index("--config") + 1] = {str(config)!r}
    sys.exit(subprocess.run([{sys.executable!r}, *args], check=False).returncode)
stage = {{"02_train_2d": 1, "03_train_depth": 2, "04_train_geometry": 3}}.get(args[3] if len(args) > 3 else "")
if "run-notebook" in args and stage:  # the stage's checkpoint, which make looks for
    os.makedirs(os.path.join({str(run)!r}, f"stage{{stage}}"), exist_ok=True)
    open(os.path.join({str(run)!r}, f"stage{{stage}}", "last.pt"), "w").close()
""")
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)

    def make() -> list[str]:
        log.write_text("")
        done = subprocess.run(["make", "--no-print-directory", f"{run}/.stamps/06_eval_mpjpe", "PROFILE=smoke",
                               "REAL_DATA=True", f"PY={stub}", f"RUN_DIR={run}", f"FIG_DIR={tmp_path / 'figures'}"],
                              cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, check=False,
                              env={**os.environ, "POSE3D_ALLOCATOR": "system"})
        assert done.returncode == 0, done.stdout + done.stderr
        return [line.split()[3] for line in log.read_text().splitlines() if line.startswith("-m pose3dlib run-notebook")]

    notebooks = ["01_data_prep", "02_train_2d", "03_train_depth", "04_train_geometry", "05_demo", "06_eval_mpjpe"]
    assert make() == notebooks
    assert json.loads((run / ".stamps" / "downloads").read_text()) == {"h36m": download_fingerprint(part, "h36m")}
    assert make() == []  # unchanged: the stamp was checked, and left as it was
    assert "--state-file" in log.read_text()
    shutil.copytree(raw / "h36m" / "S9", part / "S9")  # the rest of the download arrives
    assert make() == notebooks
    assert make() == []


def test_three_download_keys_are_enough_for_real_data(tmp_path, capsys):
    import yaml

    from pose3dlib.config import load_config
    from pose3dlib.data.convert.real import real_data_overrides

    raw = ["data.raw_h36m_dir=data/raw/h36m", "data.raw_mpii_dir=data/raw/mpii", "data.raw_3dhp_dir=data/raw/3dhp"]
    cfg = load_config("configs/cpu.yaml", raw)  # data.*_dir still name the synthetic sets
    overrides = real_data_overrides(cfg.data, cfg.profile)
    real = load_config("configs/cpu.yaml", raw + overrides).data
    assert (real.h36m_dir, real.mpii_dir, real.wild_test_dir) == (
        "data/converted/cpu/h36m", "data/converted/cpu/mpii", "data/converted/cpu/3dhp")
    assert real.lab_val_dir == real.wild_val_dir == ""  # the synthetic validation splits go with their domains
    # only the configured downloads move; a data folder the user chose is kept
    only = load_config("configs/cpu.yaml", [raw[1], f"data.mpii_dir={tmp_path / 'mine'}", raw[2]])
    assert real_data_overrides(only.data, "cpu") == ["data.wild_test_dir=data/converted/cpu/3dhp",
                                                     'data.wild_val_dir=""']
    # the command prints them as the YAML list the Makefile hands every notebook
    assert main(["real-data-overrides", "--config", "configs/cpu.yaml", *(a for o in raw for a in ("--set", o))]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == overrides
    # or as options for another command, word-split the way $(...) splits them, giving the same config
    assert main(["real-data-overrides", "--config", "configs/cpu.yaml", "--as-args",
                 *(a for o in raw for a in ("--set", o))]) == 0
    words = capsys.readouterr().out.split()
    assert words[0::2] == ["--set"] * len(overrides) and load_config("configs/cpu.yaml", raw + words[1::2]).data == real
    spaced = [*raw, "profile=my run"]  # the converted sets' folder would hold a space
    assert main(["real-data-overrides", "--config", "configs/cpu.yaml", "--as-args",
                 *(a for o in spaced for a in ("--set", o))]) == 2
    assert "holds a space, which $(...) would split" in capsys.readouterr().err
    assert main(["real-data-overrides", "--config", "configs/cpu.yaml"]) == 2
    assert "no official download configured" in capsys.readouterr().err


def test_notebook_01_names_each_splits_actions_with_its_own_table(converted, capsys):
    """With use_real_data, wild_test is a converted MPI-INF-3DHP set: notebook 01 lists its activities
    (Standing/Walking, ...), not Human3.6M action names ('Action1, Directions, ...')."""
    import dataclasses

    from pose3dlib.engine.paths import NOTEBOOKS_DIR

    nb = json.loads((NOTEBOOKS_DIR / "01_data_prep.ipynb").read_text())
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    imports = "\n".join(ln for src in code for ln in src.splitlines() if ln.startswith(("from pose3dlib", "import ")))
    listing = next(src for src in code if "rows   actions:" in src)
    out, _ = converted
    data_cfg = dataclasses.replace(CFG, h36m_dir=str(out / "h36m"), mpii_dir=str(out / "mpii"),
                                   wild_test_dir=str(out / "3dhp"))
    capsys.readouterr()
    exec(compile(imports + "\n" + listing, "01_data_prep.ipynb", "exec"), {"data_cfg": data_cfg})
    lines = {ln.split()[0] + (" " + ln.split()[1] if ln.split()[1].isalpha() else ""): ln.split("actions: ")[1]
             for ln in capsys.readouterr().out.splitlines()}
    wild = lines["wild_test"].removesuffix(" ...").split(", ")
    assert wild and set(wild) <= set(MPI3DHP_ACTIVITIES.values()), lines["wild_test"]
    assert set(lines["h36m test"].removesuffix(" ...").split(", ")) <= set(ACTION_NAMES.values())
    # the figure's titles use the same naming: no bare Human3.6M lookup is left in the notebook
    assert not any("action_name(int(s['action']))" in src or "action_name(a) for" in src for src in code)


def test_h36m_lens_model_against_loop():
    rng = np.random.default_rng(1)
    pts = np.c_[rng.uniform(-1500, 1500, (20, 2)), rng.uniform(2000, 7000, 20)]
    f, c, k = np.array([1145.049, 1143.781]), np.array([512.542, 515.451]), (-0.20710, 0.24778, -0.00308)
    p1, p2 = -0.000976, -0.001424  # w0 of camera 54138969 stores (p_a, p_b) = (p2, p1)
    got = camera.project_h36m(pts, f, c, k, (p1, p2))
    for (x, y, z), uv in zip(pts, got):
        u, v = x / z, y / z
        r2 = u * u + v * v
        radial = 1 + k[0] * r2 + k[1] * r2 ** 2 + k[2] * r2 ** 3
        tan = p1 * u + p2 * v
        assert np.allclose(uv, [f[0] * (u * (radial + tan) + p1 * r2) + c[0],
                                f[1] * (v * (radial + tan) + p2 * r2) + c[1]], atol=1e-9)
    pinhole = camera.project(pts, np.r_[f, c])
    assert np.allclose(camera.project_h36m(pts, f, c, (0, 0, 0), (0, 0)), pinhole)


def test_h36m_fetch_layout(raw, converted, tmp_path):
    """h36m-fetch's `extracted/S5/Poses_D3_Positions_mono/...` layout converts to the same rows."""
    src, fetch = raw / "h36m" / "S5", tmp_path / "raw" / "extracted" / "S5"
    for m in ("D3_Positions_mono", "D2_Positions"):
        shutil.copytree(src / "MyPoseFeatures" / m, fetch / f"Poses_{m}" / "S5" / "MyPoseFeatures" / m)
    shutil.copytree(src / "Videos", fetch / "Videos")
    (tmp_path / "raw" / "code").mkdir()
    shutil.copy(raw / "h36m" / "metadata.xml", tmp_path / "raw" / "code")
    report = convert_h36m(tmp_path / "raw", tmp_path / "out", every=1, every_test=1, progress=False)
    assert report["subjects_missing"] == [1, 6, 7, 8, 9, 11]
    with h5py.File(tmp_path / "out" / "annot.h5", "r") as a, h5py.File(converted[0] / "h36m" / "annot.h5", "r") as b:
        s5 = b["subject"][()] == 5
        assert np.array_equal(a["id"][()], b["id"][()][s5])
        assert np.allclose(a["joint_3d_mono"][()], b["joint_3d_mono"][()][s5])


def test_malformed_mpii_and_3dhp_files_are_named(tmp_path):
    (tmp_path / "raw" / "images").mkdir(parents=True)
    bad = tmp_path / "raw" / "mpii_human_pose_v1_u12_1.mat"
    bad.write_bytes(b"not a mat file")
    with pytest.raises(DataError, match="mpii_human_pose_v1_u12_1.mat.*not a readable MATLAB"):
        convert_mpii(bad, tmp_path / "raw" / "images", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    from scipy.io import savemat

    savemat(tmp_path / "raw" / "other.mat", {"X": np.zeros(2)})
    with pytest.raises(DataError, match="other.mat.*RELEASE"):
        convert_mpii(tmp_path / "raw" / "other.mat", tmp_path / "raw" / "images", tmp_path / "out", progress=False)
    ts = tmp_path / "3dhp" / "TS1"
    ts.mkdir(parents=True)
    with h5py.File(ts / "annot_data.mat", "w") as f:
        f["annot2"] = np.zeros((3, 1, 17, 2))
        f["valid_frame"] = np.ones((3, 1))
        f["activity_annotation"] = np.ones((3, 1))
    with pytest.raises(DataError, match=r"TS1/annot_data.mat.*'univ_annot3'"):
        convert_3dhp(tmp_path / "3dhp", tmp_path / "o3", progress=False)
    with h5py.File(ts / "annot_data.mat", "a") as f:
        f["univ_annot3"] = np.zeros((3, 1, 16, 3))
    with pytest.raises(DataError, match=r"annot_data.mat.*univ_annot3.*17 x 3"):
        convert_3dhp(tmp_path / "3dhp", tmp_path / "o3", progress=False)
    assert not (tmp_path / "o3").exists()


def test_mpii_images_link_relative_inside_the_project_replaced_when_converted_again(raw, tmp_path, monkeypatch):
    import os

    from pose3dlib.data.convert import mpii as convert_mpii_module

    project = tmp_path / "project"
    images = project / "data" / "raw" / "mpii" / "images"
    shutil.copytree(raw / "mpii" / "images", images)
    mat = raw / "mpii" / "mpii_human_pose_v1_u12_1.mat"
    out = project / "data" / "converted" / "mpii"
    monkeypatch.setattr(convert_mpii_module, "PROJECT_ROOT", project)
    convert_mpii(mat, images, out, val_from=raw / "mpii" / "valid.h5", progress=False)
    assert os.readlink(out / "images") == os.path.join("..", "..", "raw", "mpii", "images")  # survives a moved project
    assert (out / "val.h5").is_file()
    moved = tmp_path / "moved"
    project.rename(moved)
    assert MPIIDataset(moved / "data" / "converted" / "mpii", "train", CFG)[0]["image"].shape == (3, 64, 64)

    # converted again from images elsewhere: the link follows (absolute: outside the project), and the
    # earlier val.h5 goes when this conversion has no validation rows (an empty val file: no validation split)
    elsewhere = tmp_path / "elsewhere" / "images"
    shutil.copytree(raw / "mpii" / "images", elsewhere)
    out = moved / "data" / "converted" / "mpii"
    monkeypatch.setattr(convert_mpii_module, "PROJECT_ROOT", moved)
    with h5py.File(tmp_path / "none.h5", "w") as f:
        f["index"], f["person"] = np.zeros(0), np.zeros(0)
    report = convert_mpii(mat, elsewhere, out, val_from=tmp_path / "none.h5", progress=False)
    assert os.readlink(out / "images") == str(elsewhere) and report["val_rows"] == 0
    assert not (out / "val.h5").exists() and (out / "train.h5").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary link left

    # a converted folder reached through a link to another disk: an absolute link (a relative one would not resolve)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (moved / "data" / "elsewhere_converted").symlink_to(scratch, target_is_directory=True)
    images_inside = moved / "data" / "raw" / "mpii" / "images"
    convert_mpii(mat, images_inside, moved / "data" / "elsewhere_converted" / "mpii", progress=False)
    assert os.readlink(scratch / "mpii" / "images") == str(images_inside.resolve())
    assert (scratch / "mpii" / "images").is_dir()

    # a real folder where the link goes is never replaced
    (out / "images").unlink()
    (out / "images").mkdir()
    with pytest.raises(DataError, match=r"images exists and is not a link to the MPII images"):
        convert_mpii(mat, elsewhere, out, progress=False)


def test_datasets_without_a_download_stay_synthetic():
    """REAL_DATA=True with some downloads: notebook 01 generates the other datasets' synthetic sets."""
    from pose3dlib.config import load_config
    from pose3dlib.data.convert.real import real_data_overrides, summary_rows, synthetic_sets_root
    from pose3dlib.engine.errors import ConfigError
    from pose3dlib.engine.paths import SYNTHETIC_DIR

    def real(downloads: list[str]):
        cfg = load_config("configs/smoke.yaml", downloads)
        return load_config("configs/smoke.yaml", downloads + real_data_overrides(cfg.data, cfg.profile)).data

    only_3dhp = real(["data.raw_3dhp_dir=data/raw/3dhp"])
    assert only_3dhp.wild_test_dir == "data/converted/smoke/3dhp" and only_3dhp.wild_val_dir == ""
    assert synthetic_sets_root(only_3dhp) == SYNTHETIC_DIR / "smoke"  # Human3.6M, MPII and lab_val stay synthetic
    every = real(["data.raw_h36m_dir=data/raw/h36m", "data.raw_mpii_dir=data/raw/mpii", "data.raw_3dhp_dir=data/raw/3dhp"])
    assert synthetic_sets_root(every) is None  # nothing left to generate
    split = load_config("configs/smoke.yaml", ["data.mpii_dir=data/synthetic/cpu/mpii"]).data
    with pytest.raises(ConfigError, match="share one folder.*data.mpii_dir = .*cpu/mpii"):
        synthetic_sets_root(split)
    report = {"raw": "dl", "rows": 5, "sequences_missing": [f"TS{i}/annot_data.mat" for i in range(1, 7)]}
    row = summary_rows({"3dhp": report})[0]
    assert row["missing"] == 6
    assert row["first missing"] == "TS1/annot_data.mat, TS2/annot_data.mat, TS3/annot_data.mat, TS4/annot_data.mat, " \
                                   "... (6 in all)"
    h36m = {"raw": "dl", "rows": 5, "subjects_missing": [6, 7, 8], "missing": ["S1/MyPoseFeatures/x.cdf"]}
    assert summary_rows({"h36m": h36m})[0]["first missing"] == "S6, S7, S8, S1/MyPoseFeatures/x.cdf"  # not bare 6, 7, 8


def test_wrong_3dhp_and_mpii_folders_name_the_right_one(raw, tmp_path):
    from pose3dlib.data.convert.real import prepare_real_data

    testset = raw / "mpi_inf_3dhp_test_set"
    with pytest.raises(DataError, match=rf"no TS1..TS6/annot_data.mat in {re.escape(str(raw))}; "
                                        rf"{re.escape(str(testset))} has them: pass that folder"):
        convert_3dhp(raw, tmp_path / "o1", progress=False)
    with pytest.raises(DataError, match=rf"is one sequence's folder; pass the folder holding TS1..TS6, {re.escape(str(testset))}"):
        convert_3dhp(testset / "TS5", tmp_path / "o2", progress=False)
    download = tmp_path / "mpii_download"  # the annotations unpacked into a folder of their own
    (download / "annotations").mkdir(parents=True)
    shutil.copy(raw / "mpii" / "mpii_human_pose_v1_u12_1.mat", download / "annotations")
    (download / "images").symlink_to(raw / "mpii" / "images")
    with pytest.raises(DataError, match=r"data.raw_mpii_dir = .*no mpii_human_pose_v1_u12_1.mat in .*mpii_download; "
                                        r"it lies in .*mpii_download/annotations: move it into"):
        prepare_real_data(DataConfig(raw_mpii_dir=str(download), mpii_dir=str(tmp_path / "o3")), progress=False)


def test_real_data_overrides_without_downloads_names_the_config(capsys):
    assert main(["real-data-overrides", "--config", "configs/smoke.yaml"]) == 2
    assert re.search(r"error: \S*configs/smoke.yaml: no official download configured: set data.raw_h36m_dir",
                     capsys.readouterr().err)


def test_convert_mpii_given_a_folder_for_the_mat_says_so(raw, tmp_path, capsys):
    folder = tmp_path / "annotations"
    folder.mkdir()
    assert main(["convert-mpii", str(folder), str(raw / "mpii" / "images"), str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == (f"error: {folder} is a folder; expected the annotation file "
                                               "mpii_human_pose_v1_u12_1.mat")
    download = raw / "mpii"  # the download's folder, which holds the file: the error names it
    with pytest.raises(DataError, match=rf"^{re.escape(str(download))} is a folder; expected the annotation file "
                                        rf"mpii_human_pose_v1_u12_1.mat: pass {re.escape(str(download))}/"):
        convert_mpii(download, download / "images", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_converters_write_nothing_when_nothing_converts(raw, tmp_path, capsys):
    empty = tmp_path / "empty_3dhp"
    (empty / "TS1").mkdir(parents=True)  # a sequence folder without its annotations
    assert main(["convert-3dhp", str(empty), str(tmp_path / "o3")]) == 2
    shown = capsys.readouterr()
    assert "sequences missing: TS1/annot_data.mat" in shown.out and f"error: nothing was converted from {empty}" in shown.err
    assert not (tmp_path / "o3").exists()  # no conversion.json, as convert-h36m and convert-mpii
    # no sequence folder at all (another dataset's folder, an empty one): named so, not as six missing files
    for folder in (raw / "mpii", tmp_path / "bare"):
        folder.mkdir(exist_ok=True)
        assert main(["convert-3dhp", str(folder), str(tmp_path / "o4")]) == 2
        assert "error: no MPI-INF-3DHP test sequence folder (TS1/ ... TS6/" in capsys.readouterr().err
        assert not (tmp_path / "o4").exists()
    no_sequences = tmp_path / "h36m"  # a subject folder without any sequence: nothing converts either
    (no_sequences / "S9").mkdir(parents=True)
    shutil.copy(raw / "h36m" / "metadata.xml", no_sequences)
    report = convert_h36m(no_sequences, tmp_path / "oh", progress=False)
    assert report["rows"] == 0 and report["missing"] and not (tmp_path / "oh").exists()


def test_converter_crops_are_cut_from_a_halving_and_do_not_alias(tmp_path):
    """A 2048 px frame of one-pixel stripes cut to a 256 px crop of a 1234 px box (4.8 x): one bilinear step
    reads two of every 4.8 source columns and leaves a moire of nearly full contrast (aliasing); cut from
    the frame's halving, as `write_crop` does, the crop is the stripes' mean grey."""
    frame = np.zeros((2048, 2048, 3), np.uint8)
    frame[:, ::2] = 255  # columns alternate black / white
    centre, side = np.array([1024.0, 1024.0]), 1234.0
    affine = common.write_crop(frame, centre, side, tmp_path / "crop.jpg")
    crop = cv2.imread(str(tmp_path / "crop.jpg"))
    np.testing.assert_allclose(affine, camera.crop_affine(centre, side, 0.0, common.CROP_PX))
    one_step = camera.warp_image(frame, affine, common.CROP_PX)
    assert one_step.std() > 60  # what the single step gave: stripes
    inner = crop[8:-8, 8:-8].astype(float)
    assert abs(inner.mean() - 127.5) < 3 and inner.std() < 6


def test_crops_cut_another_way_change_the_crop_sets_download_fingerprint_not_mpii_s(raw, tmp_path, monkeypatch):
    """A set of converted crops records how they were cut (`common.CROP_RESAMPLING`), in each part's settings
    and in its download's fingerprint, so crops cut otherwise (single-step bilinear before) are cut again;
    MPII's pictures are not cropped by the converter, so its fingerprint does not depend on it."""
    from pose3dlib.data.convert import real

    mpii, h36m = real.download_fingerprint(raw / "mpii", "mpii"), real.download_fingerprint(raw / "h36m", "h36m")
    tdhp = real.download_fingerprint(raw / "mpi_inf_3dhp_test_set", "3dhp")
    monkeypatch.setattr(real, "CROP_RESAMPLING", "single-step-bilinear")
    assert real.download_fingerprint(raw / "mpii", "mpii") == mpii
    assert real.download_fingerprint(raw / "h36m", "h36m") != h36m
    assert real.download_fingerprint(raw / "mpi_inf_3dhp_test_set", "3dhp") != tdhp
    monkeypatch.undo()
    out = tmp_path / "h36m"
    convert_h36m(raw / "h36m", out, subjects=(9,), progress=False)
    part = next(out.rglob("*.npz"))
    assert json.loads(str(np.load(part)["settings"]))["resampling"] == common.CROP_RESAMPLING


def test_s9_s_damaged_sequences_are_left_out_of_a_real_data_conversion_on_request(raw, tmp_path):
    """`data.h36m_drop_damaged` (REAL_DATA's `convert-h36m --drop-damaged`): off, the damaged sequences are kept
    and marked; switched on, the set is converted again without them (its other parts reused), and a stage
    trained on the set as it was is told the conversion changed."""
    from pose3dlib.config import load_config
    from pose3dlib.data.convert.real import DOWNLOAD_STAMP, prepare_real_data
    from pose3dlib.engine import runs

    out = tmp_path / "h36m"
    kept = prepare_real_data(DataConfig(raw_h36m_dir=str(raw / "h36m"), h36m_dir=str(out)), progress=False)["h36m"]
    with h5py.File(out / "annot.h5") as f:
        damaged_rows = int(np.asarray(f["damaged"]).sum())
    assert damaged_rows > 0 and kept["damaged_dropped"] == []
    overrides = [f"data.raw_h36m_dir={raw / 'h36m'}", f"data.h36m_dir={out}"]
    trained_on = {"extra": {"data": runs.data_identities(load_config("configs/smoke.yaml", overrides))}}
    dropping = load_config("configs/smoke.yaml", [*overrides, "data.h36m_drop_damaged=true"])
    dropped = prepare_real_data(dropping.data, progress=False)["h36m"]
    assert dropped["rows"] == kept["rows"] - damaged_rows
    assert sorted(dropped["damaged_dropped"]) and all(s.startswith("S9/") for s in dropped["damaged_dropped"])
    from pose3dlib.data.convert.real import missing_items
    assert not set(dropped["damaged_dropped"]) & set(missing_items(dropped))  # left out on request, not missing
    for name in dropped["damaged_dropped"]:  # each sequence named is in the download (not every damaged one is)
        subject, sequence = name.split("/")
        assert list((raw / "h36m" / subject).rglob(f"D3_Positions_mono/{sequence}.*.cdf")), name
    with h5py.File(out / "annot.h5") as f:
        assert int(np.asarray(f["damaged"]).sum()) == 0
    assert json.loads((out / DOWNLOAD_STAMP).read_text())["fingerprint"] != trained_on["extra"]["data"]["h36m_dir"]["download"]
    assert len(runs.data_changes(trained_on, dropping)) == 1
    assert prepare_real_data(dropping.data, progress=False)["h36m"] == json.loads(json.dumps(dropped))  # reused now


def test_a_folder_without_subject_folders_is_named_so_before_metadata_is_looked_for(raw, tmp_path):
    """raw_h36m_dir pointed at the MPII download, or an empty folder: before, 'metadata.xml not found ... copy it
    into the download folder', which sent the user after the wrong file."""
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder in (raw / "mpii", empty):
        with pytest.raises(DataError, match=rf"^no Human3.6M subject folder \(S1/.*\) in {re.escape(str(folder))} "
                                            r"\(the official layout"):
            convert_h36m(folder, tmp_path / f"out_{folder.name}", progress=False)

"""Synthetic people in the three official download layouts (`prepare-synthetic --raw-format official`).

    generate_official(out_dir, seed)   # out_dir/h36m, out_dir/mpii, out_dir/mpi_inf_3dhp_test_set, out_dir/_truth

Writes tiny downloads (a few frames per sequence, small square frames) that the converters
read exactly as they read the real ones, with the quirks listed in docs/data.md:
- `h36m/`: `metadata.xml` (root <a>: <mapping> 35 rows with irregular file names,
  <w0> 300 numbers, <dbcameras><index2id>, <actionnames>), per subject
  `S*/MyPoseFeatures/D3_Positions_mono|D2_Positions/<name>.<camera id>.cdf` (`Pose`
  (1, N, 96) mm / (1, N, 64) px, 32 joints; 2D through Human3.6M's lens model) and
  `S*/Videos/<name>.<camera id>.mp4`; camera 2's videos hold 2 frames more than the poses,
  S11's Directions video of camera 54138969 is missing, S9's Greeting is a damaged sequence.
- `mpii/`: `mpii_human_pose_v1_u12_1.mat` (MATLAB v5, RELEASE with raw objpos / scale; a
  single-struct point list, empty and string is_visible, a person without scale, one without
  joints, an image with an empty annorect, test images without joints), `images/`, and a Newell-style
  `valid.h5` with 0-based `index` / `person` for `--val-from`.
- `mpi_inf_3dhp_test_set/TS1..TS6/`: `annot_data.mat` (MATLAB v7.3 = HDF5, arrays stored
  frame-first as h5py shows MATLAB's), `imageSequence/img_%06d.jpg`, frame 2 invalid; its
  `univ_annot3` is `annot3` scaled about the pelvis (by 0.9 + 0.02 x the sequence number), as the
  real one is rescaled to the universal skeleton, so a converter reading `annot3` is caught.
- `_truth/*.npz` (not part of any download): the source poses and person masks the
  end-to-end tests compare the converted files with.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import h5py
import numpy as np

from .. import camera
from ..data.h36m import MPI3DHP_TEST_SEQUENCES
from ..data.image_file import opencv_path
from ..engine.atomic_io import building_folder
from ..engine.errors import DataError
from ..engine.paths import resolve
from ..skeleton import (
    H36M32_NUM_JOINTS,
    H36M32_TO_H36M17,
    MPI3DHP17_HEAD,
    MPI3DHP17_NUM_JOINTS,
    MPI3DHP17_TO_MPII16,
    MPII16_FROM_H36M17,
)
from . import bodies, render
from . import generator as synthetic

FRAME_PX = 128  # square frames (the real ones: 1000 px Human3.6M, 2048 / 1920 x 1080 px 3DHP)
H36M_FRAMES = 3  # poses per sequence
H36M_SUBJECTS = (1, 5, 9, 11)
H36M_ACTIONS = (2, 5, 12)  # Directions, Greeting (S9: damaged), TakingPhoto / Photo (S1's naming)
CAMERA_IDS = ("54138969", "55011271", "58860488", "60457274")
EXTRA_VIDEO_FRAMES = {2: 2}  # camera -> frames the video holds beyond the poses
MISSING_VIDEO = (11, 2, 1)  # (subject, action, camera): S11 Directions, camera 54138969
ACTION_NAMES = ("Miscellaneous", "Directions", "Discussion", "Eating", "Greeting", "Phoning", "Posing", "Purchases",
                "Sitting", "SittingDown", "Smoking", "TakingPhoto", "Waiting", "Walking", "WalkingDog",
                "WalkingTogether")
# Irregular subaction names of the real mapping: (subject, action) -> (subaction 1, subaction 2).
NAME_QUIRKS = {(5, 2): ("Directions 1", "Directions 2"), (5, 3): ("Discussion 2", "Discussion 3"),
               (11, 6): ("Phoning 3", "Phoning 2"), (11, 5): ("Greeting 2", "Greeting"), (1, 4): ("Eating 2", "Eating")}
# Human3.6M's lens coefficients (k1, k2, k3) per camera and (p_a, p_b) as w0 stores them.
RADIAL_K = ((-0.20710, 0.24778, -0.00308), (-0.19421, 0.24041, 0.00682), (-0.20834, 0.25549, -0.00246),
            (-0.19838, 0.21832, -0.00895))
W0_TANGENTIAL = (-0.001424, -0.000976)
MPII_TRAIN_IMAGES, MPII_TEST_IMAGES = 14, 3
MPII_VAL_FROM = ((1, 0), (4, 0))  # (image index, person index) of valid.h5, 0-based
TS_FRAMES = 4  # frames per 3DHP test sequence; frame 2 is not valid
TS_INVALID_FRAME = 2


# ----------------------------------------------------------------------------- poses and frames

def _to_h36m32(joints16: np.ndarray) -> np.ndarray:
    """(n, 16, D) network-order joints -> (n, 32, D) recorded Human3.6M joints (unused rows: the pelvis)."""
    out = np.repeat(joints16[:, bodies.PELVIS, None], H36M32_NUM_JOINTS, axis=1)
    nose = (joints16[:, bodies.NECK] + joints16[:, bodies.HEAD_TOP]) / 2
    for i17, i32 in enumerate(H36M32_TO_H36M17):
        src = MPII16_FROM_H36M17[i17]
        out[:, i32] = joints16[:, src] if src >= 0 else nose
    return out


def _to_3dhp17(joints16: np.ndarray) -> np.ndarray:
    """(n, 16, D) -> (n, 17, D) MPI-INF-3DHP order (its `head` joint: between upper neck and head top)."""
    out = np.zeros((len(joints16), MPI3DHP17_NUM_JOINTS, joints16.shape[-1]))
    for k, j in enumerate(MPI3DHP17_TO_MPII16):
        out[:, j] = joints16[:, k]
    out[:, MPI3DHP17_HEAD] = (joints16[:, bodies.NECK] + joints16[:, bodies.HEAD_TOP]) / 2
    return out


def _people(rng: np.random.Generator, domain: str, n: int, seed: int, subject: int = 0) -> dict[str, np.ndarray]:
    actions = rng.choice(bodies.LAB_ACTIONS if domain == "lab" else bodies.WILD_FAMILY_ACTIONS, n)
    task = synthetic._Chunk(domain, 0, 0, seed, FRAME_PX, ("",) * n, actions, np.full(n, subject), np.zeros(n, int))
    return synthetic._posed_people(rng, task)


def _render(rng, people: dict, i: int, rot, eye, k, offset, background: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw person i into a copy of `background`; return (BGR frame, person mask, camera-frame joints (16, 3))."""
    cam_pts = camera.world_to_camera(people["joints"][i] + offset, rot, eye)
    canvas, labels = background.copy(), np.zeros(background.shape[:2], np.uint8)
    render.render_person(canvas, labels, cam_pts, rot @ people["face"][i], rot @ people["forward"][i],
                         rot @ people["up"][i], k, render.sample_appearance(rng))
    return cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR), labels != render.BACKGROUND_ID, cam_pts


# ----------------------------------------------------------------------------- Human3.6M

def h36m_file_name(subject: int, action: int, subaction: int) -> str:
    """The file name prefix the synthetic mapping gives a sequence (irregular, like the real one)."""
    if (subject, action) in NAME_QUIRKS:
        return NAME_QUIRKS[(subject, action)][subaction - 1]
    base = ACTION_NAMES[action - 1]
    if subject != 1:
        base = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog", "WalkingTogether": "WalkTogether"}.get(base, base)
    return base if subaction == 1 else f"{base} 1"


def _w0(lab_k: np.ndarray) -> list[float]:
    w0 = []
    for cam in range(4):
        for _ in range(11):
            _, eye, _ = synthetic._lab_camera(cam + 1)
            w0 += [0.0, 0.0, 0.0, *eye]  # extrinsics: not read by the converter (it uses D3_Positions_mono)
    for cam in range(4):
        w0 += [*lab_k[cam], *RADIAL_K[cam], *W0_TANGENTIAL]
    return w0


def _metadata_xml(path: Path, lab_k: np.ndarray) -> None:
    root = ET.Element("a")
    mapping = ET.SubElement(root, "mapping")
    rows = [["Action", "subaction"] + [f"S{s}" for s in range(1, 12)]]
    rows += [[str(a), str(b)] + [h36m_file_name(s, a, b) if a > 1 else "" for s in range(1, 12)]
             for a in range(1, 17) for b in (1, 2)]
    rows += [["", ""] + [f"actor{s}" for s in range(1, 12)], ["", ""] + [f"{FRAME_PX}x{FRAME_PX}"] * 11]
    for cells in rows:
        tr = ET.SubElement(mapping, "tr")
        for c in cells:
            ET.SubElement(tr, "td").text = c
    ET.SubElement(root, "frames").text = str(H36M_FRAMES)
    ET.SubElement(root, "w0").text = "[" + " ".join(f"{v:.9g}" for v in _w0(lab_k)) + "]"
    ET.SubElement(ET.SubElement(root, "dbcameras"), "index2id").text = " ".join(CAMERA_IDS)
    names = ET.SubElement(root, "actionnames")
    for name in ACTION_NAMES:
        ET.SubElement(names, "item").text = name
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _write_cdf(path: Path, pose: np.ndarray) -> None:
    """`Pose` as one record (1, N, 32 x D), float64, row major, as the official files read back."""
    from cdflib.cdfwrite import CDF

    path.parent.mkdir(parents=True, exist_ok=True)
    data = pose.reshape(1, len(pose), -1)
    cdf = CDF(str(path), cdf_spec={"Majority": "row_major"})
    cdf.write_var({"Variable": "Pose", "Data_Type": CDF.CDF_DOUBLE, "Num_Elements": 1, "Rec_Vary": True,
                   "Dim_Sizes": list(data.shape[1:])}, var_data=data)
    cdf.close()


def _write_video(path: Path, frames: list[np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(opencv_path(path), cv2.VideoWriter_fourcc(*"mp4v"), 50.0, (FRAME_PX, FRAME_PX))
    if not writer.isOpened():
        raise DataError(f"OpenCV cannot write mp4 video {path}")
    for f in frames:
        writer.write(f)
    writer.release()


def write_h36m(root: Path, seed: int) -> dict[str, np.ndarray]:
    """The Human3.6M download layout under `root`; returns the truth (keys, joints_mm, masks)."""
    scale = FRAME_PX / 1000.0  # the lab cameras' intrinsics are for a 1000 px sensor
    lab = [synthetic._lab_camera(c) for c in (1, 2, 3, 4)]
    lab_k = np.array([k * scale for _, _, k in lab])
    root.mkdir(parents=True)
    _metadata_xml(root / "metadata.xml", lab_k)
    truth: dict[str, list] = {"key": [], "joints_mm": [], "mask": []}
    for s in H36M_SUBJECTS:
        for a in H36M_ACTIONS:
            for b in (1, 2):
                name = h36m_file_name(s, a, b)
                rng = np.random.default_rng([seed, 20, s, a, b])
                people = _people(rng, "lab", H36M_FRAMES, seed, s)
                for cam in (1, 2, 3, 4):
                    rot, eye, _ = lab[cam - 1]
                    horizon = FRAME_PX * 0.45
                    frames, cams = [], []
                    for i in range(H36M_FRAMES):
                        bg = render.lab_background(rng, FRAME_PX, synthetic.LAB_WALLS[cam - 1],
                                                   synthetic.LAB_FLOORS[cam - 1], horizon)
                        offset = np.r_[rng.uniform(-300, 300, 2), 0.0]
                        frame, mask, cam_pts = _render(rng, people, i, rot, eye, lab_k[cam - 1], offset, bg)
                        frames.append(frame)
                        cams.append(cam_pts)
                        truth["key"].append((s, a, b, cam, i + 1))
                        truth["joints_mm"].append(cam_pts)
                        truth["mask"].append(mask)
                    pose3d = _to_h36m32(np.asarray(cams))  # (n, 32, 3)
                    k = lab_k[cam - 1]
                    pose2d = camera.project_h36m(pose3d, k[:2], k[2:], RADIAL_K[cam - 1], W0_TANGENTIAL[::-1])
                    file = f"{name}.{CAMERA_IDS[cam - 1]}"
                    _write_cdf(root / f"S{s}" / "MyPoseFeatures" / "D3_Positions_mono" / f"{file}.cdf", pose3d)
                    _write_cdf(root / f"S{s}" / "MyPoseFeatures" / "D2_Positions" / f"{file}.cdf", pose2d)
                    if (s, a, cam) != MISSING_VIDEO:
                        extra = [frames[-1]] * EXTRA_VIDEO_FRAMES.get(cam, 0)
                        _write_video(root / f"S{s}" / "Videos" / f"{file}.mp4", frames + extra)
    return {"key": np.asarray(truth["key"], np.int64), "joints_mm": np.asarray(truth["joints_mm"]),
            "mask": np.asarray(truth["mask"])}


# ----------------------------------------------------------------------------- MPII

def _mat_struct_array(records: list[dict], fields: tuple[str, ...]) -> np.ndarray:
    """A (1, n) MATLAB struct array for scipy.io.savemat."""
    arr = np.empty((1, len(records)), dtype=[(f, object) for f in fields])
    for i, r in enumerate(records):
        for f in fields:
            arr[0, i][f] = r.get(f, np.zeros((0, 0)))
    return arr


def write_mpii(root: Path, seed: int) -> dict[str, np.ndarray]:
    """The MPII download (the .mat, images/, a Newell-style valid.h5); returns the truth."""
    from scipy.io import savemat

    n_img = MPII_TRAIN_IMAGES + MPII_TEST_IMAGES
    (root / "images").mkdir(parents=True)
    names = [f"{900000001 + i:09d}.jpg" for i in range(n_img)]
    rng = np.random.default_rng([seed, 21])
    actions = rng.choice(bodies.WILD_FAMILY_ACTIONS, n_img)
    task = synthetic._Chunk("wild", 30, 0, seed, FRAME_PX, tuple(str(root / "images" / n) for n in names), actions,
                            np.zeros(n_img, int), np.zeros(n_img, int))
    ann = synthetic._render_chunk(task)
    annolist, img_train = [], []
    point_fields = ("id", "x", "y", "is_visible")
    rect_fields = ("x1", "y1", "x2", "y2", "scale", "objpos", "annopoints")
    for i in range(n_img):
        j2, annotated, visible = ann["joint_2d"][i], ann["annotated"][i], ann["visible"][i]
        lo, hi = j2.min(0), j2.max(0)
        raw_scale = float((hi - lo).max() / 200.0)
        objpos = (lo + hi) / 2 - np.array([0.0, 15.0 * raw_scale])
        head_mid = (j2[8] + j2[9]) / 2
        half = ann["head_px"][i] / 2  # a square head box whose 0.6 x diagonal is the synthetic head size
        points = []
        for j in np.flatnonzero(annotated):
            vis: object = int(visible[j])
            if j % 5 == 1:
                vis = np.zeros((0, 0))  # quirk: is_visible empty
            elif j % 5 == 2:
                vis = str(int(visible[j]))  # quirk: '0' / '1' strings
            points.append({"id": int(j), "x": float(j2[j, 0]), "y": float(j2[j, 1]), "is_visible": vis})
        train = i < MPII_TRAIN_IMAGES
        rect = {"x1": float(head_mid[0] - half), "y1": float(head_mid[1] - half), "x2": float(head_mid[0] + half),
                "y2": float(head_mid[1] + half), "scale": raw_scale,
                "objpos": {"x": float(objpos[0]), "y": float(objpos[1])}}
        if train:
            point = _mat_struct_array(points, point_fields)
            if i == 2:
                point = _mat_struct_array(points[:1], point_fields)  # quirk: a single struct, not a list
            rect["annopoints"] = {"point": point}
        rects = [rect]
        if i == 3:
            rects.append({"x1": 1.0, "y1": 1.0, "x2": 5.0, "y2": 5.0, "objpos": {"x": 50.0, "y": 50.0},
                          "annopoints": {"point": _mat_struct_array(points, point_fields)}})  # quirk: no scale
        if i == 4:
            rects.append({"x1": 1.0, "y1": 1.0, "x2": 5.0, "y2": 5.0, "scale": raw_scale,
                          "objpos": {"x": 50.0, "y": 50.0}})  # quirk: a marked person without joints
        annorect = _mat_struct_array(rects, rect_fields)
        if i == 5:
            annorect = np.zeros((0, 0))  # quirk: an empty annorect
        annolist.append({"image": {"name": names[i]}, "annorect": annorect})
        img_train.append(int(train))
    release = {"annolist": _mat_struct_array(annolist, ("image", "annorect")),
               "img_train": np.asarray(img_train, np.uint8)[None], "single_person": np.ones((n_img, 1)),
               "act": _mat_struct_array([{"act_id": int(a)} for a in actions], ("act_id",))}
    savemat(root / "mpii_human_pose_v1_u12_1.mat", {"RELEASE": release}, do_compression=False)
    with h5py.File(root / "valid.h5", "w") as f:
        f["index"] = np.array([i for i, _ in MPII_VAL_FROM], np.float64)
        f["person"] = np.array([p for _, p in MPII_VAL_FROM], np.float64)
    return {"imgname": np.array(names), "joint_2d": ann["joint_2d"], "annotated": ann["annotated"]}


# ----------------------------------------------------------------------------- MPI-INF-3DHP

def _write_mat73(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A MATLAB v7.3 file: HDF5 behind a 512-byte MATLAB header."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for k, v in arrays.items():
            f[k] = v
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by: pose3dlib synthetic. HDF5 schema 1.00 ."
    with open(path, "r+b") as f:
        f.write(header.ljust(128, b" "))


def write_3dhp(root: Path, seed: int) -> dict[str, np.ndarray]:
    """TS1..TS6 of the test set; returns the truth (sequence, frame, joints_mm, mask) of the valid frames."""
    truth: dict[str, list] = {"sequence": [], "frame": [], "joints_mm": [], "mask": []}
    for seq in MPI3DHP_TEST_SEQUENCES:
        d = root / f"TS{seq}"
        (d / "imageSequence").mkdir(parents=True)
        rng = np.random.default_rng([seed, 22, seq])
        people = _people(rng, "wild", TS_FRAMES, seed)
        joints, pix, univ = [], [], []
        size = 0.9 + 0.02 * seq  # the universal skeleton's scale of this sequence's person
        for i in range(TS_FRAMES):
            rot, eye, k = synthetic._wild_camera(rng, people["joints"][i, bodies.PELVIS])
            k = k * FRAME_PX / 1000.0
            frame, mask, cam_pts = _render(rng, people, i, rot, eye, k, np.zeros(3), render.wild_background(rng, FRAME_PX))
            if not cv2.imwrite(opencv_path(d / "imageSequence" / f"img_{i + 1:06d}.jpg"), frame):
                raise DataError(f"could not write {d / 'imageSequence'}")
            joints.append(cam_pts)
            pix.append(camera.project(cam_pts, k))
            pelvis = cam_pts[bodies.PELVIS]
            univ.append(pelvis + size * (cam_pts - pelvis))
            if i + 1 != TS_INVALID_FRAME:
                truth["sequence"].append(seq)
                truth["frame"].append(i + 1)
                truth["joints_mm"].append(univ[-1])  # what the converter reads: univ_annot3
                truth["mask"].append(mask)
        j3, j2, u3 = _to_3dhp17(np.asarray(joints)), _to_3dhp17(np.asarray(pix)), _to_3dhp17(np.asarray(univ))
        valid = np.ones(TS_FRAMES)
        valid[TS_INVALID_FRAME - 1] = 0
        _write_mat73(d / "annot_data.mat", {
            "annot2": j2[:, None], "annot3": j3[:, None], "univ_annot3": u3[:, None],  # (n, 1, 17, D) as h5py shows
            "valid_frame": valid[:, None], "activity_annotation": rng.integers(1, 8, (TS_FRAMES, 1)).astype(np.float64)})
    return {k: np.asarray(v) for k, v in truth.items()}


# ----------------------------------------------------------------------------- generate

def generate_official(out_dir: str | Path, seed: int = 0) -> Path:
    """Write the three official-layout downloads and `_truth/` under `out_dir` (replaced atomically)."""
    out = resolve(out_dir)
    if out.exists() and any(out.iterdir()) and not (out / "_truth").is_dir():
        raise DataError(f"{out} exists and was not written by prepare-synthetic --raw-format official; "
                        "choose another --out or remove it")
    out.parent.mkdir(parents=True, exist_ok=True)
    with building_folder(out) as tmp:
        (tmp / "_truth").mkdir()
        np.savez_compressed(tmp / "_truth" / "h36m.npz", **write_h36m(tmp / "h36m", seed))
        np.savez_compressed(tmp / "_truth" / "mpii.npz", **write_mpii(tmp / "mpii", seed))
        np.savez_compressed(tmp / "_truth" / "3dhp.npz", **write_3dhp(tmp / "mpi_inf_3dhp_test_set", seed))
    return out

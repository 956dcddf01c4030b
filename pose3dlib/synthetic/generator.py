"""Synthetic people written in the real Human3.6M and MPII formats (`prepare-synthetic`).

    python -m pose3dlib prepare-synthetic --out data/synthetic/cpu --profile cpu [--seed 0]
    generate(out_dir, cfg.synthetic, seed)   # from Python; skips work when already complete

Writes three splits, five with the validation ones (formats: docs/data.md):
- `h36m/`: the lab domain. `annot.h5` with id, joint_2d, joint_3d_mono, bbox, subject,
  action, subaction, camera, istrain (+ extra `intrinsics` (N, 4) of each crop) and JPEG
  crops `images/s_SS_act_AA_subact_BB_ca_CC/s_SS_act_AA_subact_BB_ca_CC_<id:06d>.jpg`.
  Subjects 1,5,6,7,8 train; 9,11 test, then 12, 13, ... when `synthetic.h36m_test_subjects` > 2
  (the training rows do not change with it); four fixed studio cameras; the 15 H36M actions.
- `mpii/`: the wild domain with 2D labels only: `train.h5`, `val.h5` (imgname, part,
  center, scale, visible, normalize, index, person, torsoangle) and `images/<9 digits>.jpg`.
- `wild_test/`: wild images with 3D ground truth in the h36m format (istrain 0, subject 0,
  camera 0), never trained on; extra `visible` (N, 16) (wild_val's too).
- `wild_val/`, `lab_val/` (when `synthetic.wild_val` / `synthetic.lab_val` > 0): validation
  splits in the same h36m format, from their own random streams (wild_val: new wild
  people; lab_val: new frames of the training subjects), all rows istrain 0. Recipes
  are tuned on these and on MPII val; lab test and wild_test are only for reporting.

Every row's randomness is a pure function of (seed, split, chunk), so the output does not
depend on the number of worker processes. The output is built in a hidden sibling folder
and renamed into place after `manifest.json` is written, so an interrupted run is never
mistaken for a complete one.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import cv2
import h5py
import numpy as np

from .. import camera
from ..config import Config, DataConfig, SyntheticConfig, config_from_dict, config_to_dict, load_config
from ..data import h36m, mpii
from ..data.image_file import opencv_path
from ..data.transforms import LOOSE_CROP_MARGIN, LOOSE_CROP_SHIFT
from ..engine.atomic_io import building_folder, remove_stale_temporaries
from ..engine.device import opencv_threads
from ..engine.errors import ConfigError, DataError
from ..engine.paths import SYNTHETIC_DIR, CommandLinePath, project_relative, resolve
from ..engine.progress import progress_bar
from ..engine.runs import RUN_ONLY_KEYS, TEST_ONLY_KEYS
from ..skeleton import MPII16
from . import bodies, render

GENERATOR_VERSION = 6  # bump when the output for a given (config, seed) changes
# 6: synthetic.h36m_test_subjects; a cpu-profile folder of version 5 holds two lab test people where
#    configs/cpu.yaml now asks for twelve, and `evaluate` must not score it silently (check_not_stale).
MANIFEST = "manifest.json"
CHUNK_ROWS = 48  # rows per task; fixed so output is independent of the worker count
JPEG_QUALITY = 92
H36M_TRAIN_SUBJECTS = (1, 5, 6, 7, 8)
H36M_TEST_SUBJECTS = (9, 11)
FIRST_EXTRA_TEST_SUBJECT = 12  # synthetic lab test people beyond Human3.6M's two are numbered from here
H36M_FRAME_STEP = {1: 5, 0: 200}  # release kept every 5th training and every 200th test frame
ANKLE_HEIGHT_MM = 80.0
H36M_ANNOTATION_FILE = "annot.h5"
IMAGE_DIR = "images"

# Four studio cameras around the capture area at chest height, Human3.6M-like intrinsics
# on a 1000 x 1000 px sensor: (azimuth deg, distance mm, height mm, fx, fy, cx, cy).
LAB_CAMERAS = (
    (45.0, 4900.0, 1450.0, 1145.0, 1143.8, 512.5, 515.5),
    (135.0, 5100.0, 1400.0, 1149.7, 1147.6, 508.8, 508.1),
    (225.0, 4800.0, 1500.0, 1149.1, 1148.8, 519.8, 501.4),
    (315.0, 5000.0, 1420.0, 1145.5, 1144.8, 514.9, 501.9),
)
LAB_TARGET_MM = np.array([0.0, 0.0, 1000.0])  # cameras look at this point (world, z up)
LAB_AREA_MM = 800.0  # people stand anywhere in this +- square around the target
LAB_WALLS = np.array([[196, 196, 190], [176, 182, 186], [205, 198, 184], [168, 168, 172]], dtype=np.float64)
LAB_FLOORS = np.array([[110, 104, 98], [96, 100, 104], [120, 112, 100], [92, 92, 96]], dtype=np.float64)
LAB_BOX_MARGIN = (1.15, 1.3)  # crop side / larger extent of the 2D joints
WILD_DISTANCE_MM = (3500.0, 9000.0)
WILD_ELEVATION_DEG = (-15.0, 55.0)
WILD_ROLL_SIGMA_DEG = 10.0
WILD_ROLL_CLIP_DEG = 30.0
WILD_FOCAL_PX = (700.0, 1600.0)  # fx on a 1000 px sensor
WILD_BOX_MARGIN = LOOSE_CROP_MARGIN  # picture side / the person's extent: a whole snapshot's framing
WILD_TRUNCATE_PROB = 0.1  # shift the person partly out of the image, as in real photos
OCCLUDER_PROB = 0.35
UNANNOTATED_PROB = 0.03  # per joint, on top of joints outside the image (MPII: part = (0, 0))
HEAD_BOX_FACTOR = 0.6 * np.sqrt(2.0)  # MPII head size: 0.6 x the head box diagonal
VAL_STREAM = 50  # offset of the validation splits' random streams (new people, never in train or test)
VAL_SPLITS = ("lab_val", "wild_val")  # h36m-format validation splits, written when their size is > 0


@dataclass(frozen=True)
class _Chunk:
    """One task for a worker: render `paths` rows of one split."""

    domain: str  # "lab" or "wild"
    split_code: int
    chunk_index: int
    seed: int
    image_size: int
    paths: tuple[str, ...]  # absolute image paths
    actions: np.ndarray  # (n,) pose families
    subjects: np.ndarray  # (n,) lab subjects (0 in the wild)
    cameras: np.ndarray  # (n,) lab cameras 1..4 (0 in the wild)


# ----------------------------------------------------------------------------- geometry

def _lab_camera(cam: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotation (3, 3), eye (3,) and full-sensor intrinsics (4,) of lab camera 1..4."""
    az, dist, height, fx, fy, cx, cy = LAB_CAMERAS[cam - 1]
    a = np.radians(az)
    eye = np.array([dist * np.cos(a), dist * np.sin(a), height])
    return camera.look_at(eye, LAB_TARGET_MM), eye, np.array([fx, fy, cx, cy])


def _posed_people(rng: np.random.Generator, task: _Chunk) -> dict[str, np.ndarray]:
    """World-frame joints (n, 16, 3) with feet on the floor, plus face/forward/up unit vectors (n, 3)."""
    n = len(task.actions)
    if task.domain == "lab":  # bone lengths fixed per subject
        per_subject = {int(s): bodies.sample_bone_scales(np.random.default_rng([task.seed, 7, int(s)]), 1)
                       for s in np.unique(task.subjects)}
        bones = {k: np.array([per_subject[int(s)][k][0] for s in task.subjects]) for k in bodies.BONE_MM}
        widen = 1.0
    else:
        bones = bodies.sample_bone_scales(rng, n)
        widen = bodies.WILD_RANGE_WIDEN
    angles = bodies.sample_angles(rng, task.actions, widen)
    joints_body, face_body = bodies.forward_kinematics(angles, bones)
    to_world = bodies.body_to_world(rng.uniform(0, 360, n))  # (n, 3, 3)
    joints = np.einsum("nij,nkj->nki", to_world, joints_body)
    joints[..., 2] -= joints[:, [bodies.R_ANKLE, bodies.L_ANKLE], 2].min(axis=1)[:, None] - ANKLE_HEIGHT_MM
    return {"joints": joints, "face": np.einsum("nij,nj->ni", to_world, face_body),
            "forward": to_world[:, :, 2], "up": to_world[:, :, 1]}


def _wild_camera(rng: np.random.Generator, pelvis: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random camera (rotation, eye, full-sensor intrinsics) looking at a person at `pelvis` (3,)."""
    dist = rng.uniform(*WILD_DISTANCE_MM)
    el = np.radians(rng.uniform(*WILD_ELEVATION_DEG))
    az = rng.uniform(0, 2 * np.pi)
    target = pelvis + rng.normal(0, 150, 3)
    eye = target + dist * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    roll = float(np.clip(rng.normal(0, WILD_ROLL_SIGMA_DEG), -WILD_ROLL_CLIP_DEG, WILD_ROLL_CLIP_DEG))
    f = rng.uniform(*WILD_FOCAL_PX)
    k = np.array([f, f * rng.uniform(0.99, 1.01), 500 + rng.normal(0, 10), 500 + rng.normal(0, 10)])
    return camera.look_at(eye, target, roll_deg=roll), eye, k


def _render_chunk(task: _Chunk) -> dict[str, np.ndarray]:
    """Render and write the chunk's images; return its annotation arrays (first axis: rows).

    OpenCV runs single-threaded meanwhile (one worker per core) and gets its thread count back after,
    for a chunk rendered in the caller's process (one worker, or the official-layout writer)."""
    with opencv_threads(1):
        return _render_chunk_rows(task)


def _render_chunk_rows(task: _Chunk) -> dict[str, np.ndarray]:
    """`_render_chunk`'s work, with OpenCV's threads already set."""
    rng = np.random.default_rng([task.seed, 0 if task.domain == "lab" else 1, task.split_code, task.chunk_index])
    n, size = len(task.actions), task.image_size
    people = _posed_people(rng, task)
    out = {k: [] for k in ("joint_2d", "joint_3d_mono", "bbox", "intrinsics", "visible", "annotated", "head_px")}
    for i in range(n):
        if task.domain == "lab":
            cam = int(task.cameras[i])
            rot, eye, k_full = _lab_camera(cam)
            offset = np.r_[rng.uniform(-LAB_AREA_MM, LAB_AREA_MM, 2), 0.0]
        else:
            rot, eye, k_full = _wild_camera(rng, people["joints"][i, bodies.PELVIS])
            offset = np.zeros(3)
        world = people["joints"][i] + offset
        cam_pts = camera.world_to_camera(world, rot, eye)  # (16, 3)
        uv = camera.project(cam_pts, k_full)  # (16, 2) full sensor
        lo, hi = uv.min(0), uv.max(0)
        extent = float(max(hi - lo))
        centre = (lo + hi) / 2
        if task.domain == "lab":
            side = extent * rng.uniform(*LAB_BOX_MARGIN)
            centre = centre + rng.normal(0, 0.02, 2) * side
        else:
            side = extent * rng.uniform(*WILD_BOX_MARGIN)
            slack = (side - extent) / 2
            centre = centre + rng.uniform(-LOOSE_CROP_SHIFT, LOOSE_CROP_SHIFT, 2) * slack
            if rng.random() < WILD_TRUNCATE_PROB:
                centre = centre + rng.uniform(-0.35, 0.35, 2) * extent
        box_xy = centre - side / 2
        k_crop = camera.crop_intrinsics(k_full, box_xy, side, size)
        joints_2d = camera.project(cam_pts, k_crop)
        face = rot @ people["face"][i]  # world directions -> camera frame
        fwd, up = rot @ people["forward"][i], rot @ people["up"][i]
        labels = np.zeros((size, size), np.uint8)
        if task.domain == "lab":
            far = np.r_[LAB_TARGET_MM[:2] + 6000.0 * (LAB_TARGET_MM[:2] - eye[:2]) / np.linalg.norm(
                LAB_TARGET_MM[:2] - eye[:2]), 0.0]
            horizon_v = float(camera.project(camera.world_to_camera(far, rot, eye)[None], k_crop)[0, 1])
            canvas = render.lab_background(rng, size, LAB_WALLS[cam - 1], LAB_FLOORS[cam - 1], horizon_v)
        else:
            canvas = render.wild_background(rng, size)
        look = _appearance(task, i, rng)
        render.render_person(canvas, labels, cam_pts, face, fwd, up, k_crop, look)
        if task.domain == "wild" and rng.random() < OCCLUDER_PROB:
            j = int(rng.integers(0, MPII16.num_joints))
            render.draw_occluder(rng, canvas, labels, joints_2d[j], extent * size / side)
        visible = render.joint_visibility(labels, joints_2d)
        inside = np.all((joints_2d >= -0.5) & (joints_2d < size - 0.5), axis=1)
        annotated = inside & (rng.random(MPII16.num_joints) >= UNANNOTATED_PROB)
        head_len = np.linalg.norm(cam_pts[bodies.HEAD_TOP] - cam_pts[bodies.NECK])
        head_z = (cam_pts[bodies.HEAD_TOP, 2] + cam_pts[bodies.NECK, 2]) / 2
        if not cv2.imwrite(opencv_path(task.paths[i]), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise DataError(f"could not write image {task.paths[i]}")
        for key, value in (("joint_2d", joints_2d), ("joint_3d_mono", cam_pts),
                           ("bbox", np.r_[box_xy, box_xy + side]), ("intrinsics", k_crop), ("visible", visible),
                           ("annotated", annotated), ("head_px", head_len * k_crop[0] / head_z)):
            out[key].append(value)
    return {k: np.asarray(v) for k, v in out.items()}


def _appearance(task: _Chunk, i: int, rng: np.random.Generator) -> render.Appearance:
    """Lab subjects keep their clothes (seeded per subject); wild people are all different."""
    if task.domain == "lab":
        return render.sample_appearance(np.random.default_rng([task.seed, 8, int(task.subjects[i])]))
    return render.sample_appearance(rng)


# ----------------------------------------------------------------------------- splits

def lab_test_subjects(n: int) -> tuple[int, ...]:
    """The `n` lab test people: Human3.6M's S9 and S11 first, then S12, S13, ..."""
    if n < 1:
        raise ConfigError(f"synthetic.h36m_test_subjects must be >= 1, got {n}")
    extra = tuple(range(FIRST_EXTRA_TEST_SUBJECT, FIRST_EXTRA_TEST_SUBJECT + max(0, n - len(H36M_TEST_SUBJECTS))))
    return (H36M_TEST_SUBJECTS + extra)[:n]


def _h36m_meta(seed: int, n_train: int, n_test: int, wild: bool, val: bool,
               test_subjects: int) -> dict[str, np.ndarray]:
    """Per-row subject, action, subaction, camera, id and istrain of an h36m-format split.

    `val`: a validation split (wild_val, lab_val) with its own random stream; a lab
    validation split holds new frames of the training subjects, marked istrain 0.
    `test_subjects`: how many people the test rows cycle through (`lab_test_subjects`); the
    random draws do not depend on it, so neither do the training rows.
    """
    rng = np.random.default_rng([seed, 2 if wild else 3] + ([VAL_STREAM] if val else []))
    if wild:
        n = n_train + n_test
        meta = {"subject": np.zeros(n, np.int64), "camera": np.zeros(n, np.int64),
                "subaction": np.ones(n, np.int64), "istrain": np.zeros(n, np.int64),
                "action": rng.choice(bodies.WILD_FAMILY_ACTIONS, n).astype(np.int64)}
    else:
        people = H36M_TRAIN_SUBJECTS if val else lab_test_subjects(test_subjects)
        subj = np.r_[np.resize(H36M_TRAIN_SUBJECTS, n_train), np.resize(people, n_test)]
        n = len(subj)
        meta = {"subject": subj.astype(np.int64), "camera": rng.integers(1, 5, n).astype(np.int64),
                "subaction": rng.integers(1, 3, n).astype(np.int64),
                "istrain": np.r_[np.ones(n_train, np.int64), np.zeros(n_test, np.int64)],
                "action": rng.choice(bodies.LAB_ACTIONS, n).astype(np.int64)}
    counters: dict[tuple, int] = {}
    ids = np.zeros(n, np.int64)
    for r in range(n):
        key = (meta["subject"][r], meta["action"][r], meta["subaction"][r], meta["camera"][r])
        k = counters.get(key, 0)
        counters[key] = k + 1
        ids[r] = 1 + k * H36M_FRAME_STEP[int(meta["istrain"][r])]
    meta["id"] = ids
    return meta


def _worker_context():
    """Where the render workers come from: a fork server that has imported this module, or spawn.

    Not a plain fork of the caller: a process that has run OpenCV's parallel functions (an
    evaluation's crops, a benchmark) and then forks can leave the child waiting forever on the
    first OpenCV call (the parent's thread pool is half-copied; seen as a `pthread_cond_destroy`
    hang). The fork server is started once per process, so its import cost is paid once.
    """
    if "forkserver" in get_all_start_methods():
        ctx = get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        return ctx
    return get_context("spawn")


def _run_chunks(tasks: list[_Chunk], workers: int, desc: str) -> dict[str, np.ndarray]:
    """Render tasks (in `workers` processes when > 1) with a progress bar; concatenate in task order."""
    results: list[dict[str, np.ndarray]] = [None] * len(tasks)  # type: ignore[list-item]
    total = sum(len(t.paths) for t in tasks)
    with progress_bar(total=total, desc=desc, unit="img", leave=False) as bar:
        if workers <= 1 or len(tasks) <= 1:
            for i, t in enumerate(tasks):
                results[i] = _render_chunk(t)
                bar.update(len(t.paths))
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context()) as pool:
                futures = {pool.submit(_render_chunk, t): i for i, t in enumerate(tasks)}
                for fut in as_completed(futures):
                    results[futures[fut]] = fut.result()
                    bar.update(len(tasks[futures[fut]].paths))
    return {k: np.concatenate([r[k] for r in results]) for k in results[0]}


def _chunks(domain: str, split_code: int, seed: int, size: int, paths: list[Path], actions: np.ndarray,
            subjects: np.ndarray, cameras: np.ndarray) -> list[_Chunk]:
    return [_Chunk(domain, split_code, c // CHUNK_ROWS, seed, size, tuple(str(p) for p in paths[c:c + CHUNK_ROWS]),
                   actions[c:c + CHUNK_ROWS], subjects[c:c + CHUNK_ROWS], cameras[c:c + CHUNK_ROWS])
            for c in range(0, len(paths), CHUNK_ROWS)]


def _write_h36m_split(root: Path, cfg: SyntheticConfig, seed: int, n_train: int, n_test: int, wild: bool,
                      val: bool = False) -> int:
    """Render an h36m-format split into `root` (annot.h5 + images/); returns its row count.

    `val` writes a validation split (all rows istrain 0) from its own random streams.
    """
    meta = _h36m_meta(seed, n_train, n_test, wild, val, cfg.h36m_test_subjects)
    img_root = root / IMAGE_DIR
    paths = [h36m.image_path(img_root, *(int(meta[k][r]) for k in ("subject", "action", "subaction", "camera", "id")))
             for r in range(len(meta["id"]))]
    for folder in {p.parent for p in paths}:
        folder.mkdir(parents=True, exist_ok=True)
    domain = "wild" if wild else "lab"
    code = (2 if wild else 0) + (VAL_STREAM if val else 0)
    tasks = _chunks(domain, code, seed, cfg.image_size, paths, meta["action"], meta["subject"], meta["camera"])
    ann = _run_chunks(tasks, cfg.workers, root.name)
    with h5py.File(root / H36M_ANNOTATION_FILE, "w") as f:
        f["id"] = meta["id"]
        f["joint_2d"] = ann["joint_2d"].astype(np.float64)
        f["joint_3d_mono"] = ann["joint_3d_mono"].astype(np.float64)
        f["bbox"] = ann["bbox"].astype(np.float64)
        for k in ("subject", "action", "subaction", "camera", "istrain"):
            f[k] = meta[k]
        f["intrinsics"] = ann["intrinsics"].astype(np.float64)  # extra: fx, fy, cx, cy of each crop
        if wild:
            f["visible"] = ann["visible"].astype(np.float64)  # extra: joint not covered in the image
    return len(paths)


def _write_mpii_split(root: Path, name: str, cfg: SyntheticConfig, seed: int, n: int, split_code: int) -> int:
    """Render an MPII-format split `name` ('train' or 'val') into `root`; returns its row count."""
    rng = np.random.default_rng([seed, 4, split_code])
    actions = rng.choice(bodies.WILD_FAMILY_ACTIONS, n).astype(np.int64)
    first = 1 + split_code * 100_000_000
    names = [f"{first + r:09d}.jpg" for r in range(n)]
    (root / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    paths = [root / IMAGE_DIR / nm for nm in names]
    zeros = np.zeros(n, np.int64)
    ann = _run_chunks(_chunks("wild", 10 + split_code, seed, cfg.image_size, paths, actions, zeros, zeros),
                      cfg.workers, f"mpii {name}")
    annotated = ann["annotated"]
    part = np.where(annotated[..., None], ann["joint_2d"], 0.0)  # MPII: unannotated joints are (0, 0)
    lo = ann["joint_2d"].min(1)
    hi = ann["joint_2d"].max(1)
    # Raw MPII annotation of the person: scale = joint extent / 200 px, objpos 15 x scale px
    # above the joints' midpoint. Stored in Newell's convention (adjusted once), so the crop
    # (mpii.crop_boxes) is the joints' midpoint and a box of 1.25 x their extent.
    raw_scale = (hi - lo).max(1) / mpii.SCALE_PX
    objpos = (lo + hi) / 2 - np.stack([np.zeros(n), mpii.CENTER_SHIFT_PER_SCALE * raw_scale], axis=1)
    centre, scale = mpii.adjust_raw_crop(objpos, raw_scale)
    with h5py.File(root / f"{name}.h5", "w") as f:
        f["imgname"] = np.array([nm.encode() for nm in names], dtype="S")
        f["part"] = part.astype(np.float64)
        f["center"] = centre.astype(np.float64)
        f["scale"] = scale.astype(np.float64)
        f["visible"] = (ann["visible"] & annotated).astype(np.float64)
        f["normalize"] = (HEAD_BOX_FACTOR * ann["head_px"]).astype(np.float64)
        f["index"] = np.arange(n, dtype=np.float64)
        # 1, not Newell's 0-based annorect index (0 for a picture's only person): bookkeeping nothing reads,
        # kept because changing it changes every synthetic set's bytes (a GENERATOR_VERSION bump); do not
        # give such a file to convert-mpii --val-from, which reads 'person' as 0-based
        f["person"] = np.ones(n, dtype=np.float64)
        f["torsoangle"] = np.zeros(n, dtype=np.float64)
        f["intrinsics"] = ann["intrinsics"].astype(np.float64)  # extra
    return n


# ----------------------------------------------------------------------------- generate

# The generator's name in every manifest it writes: its module path before the library was laid
# out by role. A name, not an import path; kept so that data generated before still counts as complete.
MANIFEST_GENERATOR = "pose3dlib.data.synthetic"


def _manifest(cfg: SyntheticConfig, seed: int) -> dict:
    return {"generator": MANIFEST_GENERATOR, "version": GENERATOR_VERSION, "seed": int(seed),
            "synthetic": config_to_dict(cfg)}


def _replacing_note(out: Path, cfg: SyntheticConfig, seed: int) -> str | None:
    """A note when `out` holds a finished set of another seed or other sizes, which this generation
    replaces: runs trained on it are stale then (their stages train again; `runs.data_changes`)."""
    try:
        stored = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or "counts" not in stored:  # no finished generation there
        return None
    sizes_then, sizes_now = _written(stored.get("synthetic") or {}), _written(config_to_dict(cfg))
    changed = {"seed": (stored.get("seed"), seed),  # key -> (then, now); the training rows depend on the first two
               **{f"synthetic.{k}": (sizes_then.get(k), sizes_now.get(k)) for k in dict.fromkeys([*sizes_then, *sizes_now])},
               "generator version": (stored.get("version"), GENERATOR_VERSION)}
    changed = {k: v for k, v in changed.items() if v[0] != v[1]}
    if not changed:
        return None
    trained_on = {f"synthetic.{k}" for split in ("h36m", "mpii") for k in SPLIT_SIZES[split]} - set(TEST_ONLY_KEYS)
    stale = any(not k.startswith("synthetic.") or k in trained_on for k in changed)
    was = ", ".join(f"{k} {then} -> {now}" for k, (then, now) in changed.items())
    return (f"note: replacing the synthetic set in {project_relative(out)} ({was}); " + (
        "stages trained on the set it replaces are stale for it (notebooks 02-04 train them again, train --resume "
        "refuses them)" if stale else "its training splits stay the same, so do the stages trained on it"))


def set_manifest(data_dir: str | Path) -> Path | None:
    """The manifest of the synthetic set a data folder belongs to (in the folder or the one above
    it, where `generate` writes it), or None for data this generator did not write."""
    path = resolve(data_dir)
    return next((p / MANIFEST for p in (path, path.parent) if (p / MANIFEST).is_file()), None)


def _written(synthetic: dict) -> dict:
    """A manifest's or config's `synthetic` section without the settings of how the generation ran
    (`engine.runs.RUN_ONLY_KEYS`: the worker count), which do not change what it writes."""
    return {k: v for k, v in synthetic.items() if f"synthetic.{k}" not in RUN_ONLY_KEYS}


# The synthetic.* sizes each split's folder depends on: every split is drawn from its own random
# streams (seed, split, chunk), so the other splits' sizes do not change its rows.
SPLIT_SIZES = {"h36m": ("image_size", "h36m_train", "h36m_test", "h36m_test_subjects"),
               "mpii": ("image_size", "mpii_train", "mpii_val"), "wild_test": ("image_size", "wild_test"),
               "lab_val": ("image_size", "lab_val"), "wild_val": ("image_size", "wild_val")}


def _read_manifest(data_dir: str | Path | None) -> tuple[Path, dict] | None:
    """(path, contents) of the manifest of the synthetic set a data folder belongs to; None for data
    this generator did not write or an unreadable manifest."""
    path = set_manifest(data_dir) if data_dir else None
    if path is None:
        return None
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return (path, stored) if isinstance(stored, dict) and stored.get("generator") == MANIFEST_GENERATOR else None


def _split_sizes(data_dir: str | Path, synthetic: dict, leave_out: tuple[str, ...] = ()) -> dict:
    """The SPLIT_SIZES of the split in `data_dir` (all sizes for a folder of another name) from a
    `synthetic` section, without the `leave_out` keys ('synthetic.<key>')."""
    keys = SPLIT_SIZES.get(Path(data_dir).name, tuple(synthetic))
    return {k: synthetic.get(k) for k in keys if f"synthetic.{k}" not in leave_out + RUN_ONLY_KEYS}


def data_identity(data_dir: str | Path | None) -> dict | None:
    """What identifies the training rows of the synthetic split in a data folder: its manifest's
    generator, version and seed and the sizes the split depends on (`SPLIT_SIZES`, without the
    test-only ones, `engine.runs.TEST_ONLY_KEYS`); None for data this generator did not write (real
    data, converted downloads). A checkpoint records it for its training folders, so a stage trained
    on other data counts as stale (`engine.runs.data_changes`)."""
    read = _read_manifest(data_dir)
    if read is None or not isinstance(read[1].get("synthetic"), dict):
        return None
    stored = read[1]
    return {"generator": stored["generator"], "version": stored.get("version"), "seed": stored.get("seed"),
            "synthetic": _split_sizes(data_dir, stored["synthetic"], TEST_ONLY_KEYS)}


def synthetic_overrides(synthetic_cfg: SyntheticConfig) -> list[str]:
    """The `synthetic.*` config overrides (as for `--set`) that describe a set generated with
    `synthetic_cfg`: what a command reading that set needs besides its data.*_dir."""
    return [f"synthetic.{k}={v}" for k, v in _written(config_to_dict(synthetic_cfg)).items()]


def _check_sizes(data_dir: str | Path, path: Path, stored: dict, wanted: dict, ignore: tuple[str, ...]) -> None:
    """DataError when the split in `data_dir`, whose manifest `path` holds `stored`, was generated with
    other `synthetic.*` sizes than `wanted` (the config's section) on the sizes it depends on
    (`SPLIT_SIZES`, without the `ignore` keys), naming them and the --set that reads it as it is."""
    if not isinstance(stored.get("synthetic"), dict):
        return
    have = _split_sizes(data_dir, stored["synthetic"], ignore)
    keys = [k for k, v in have.items() if wanted.get(k) != v]
    if keys:
        differ = [f"synthetic.{k}: {have[k]} in the data, {wanted.get(k)} in the config" for k in keys]
        as_they_are = " ".join(f"--set synthetic.{k}={have[k]}" for k in keys)
        raise DataError(f"{path}: the synthetic {Path(data_dir).name} split in {path.parent} was generated with "
                        f"other sizes than the config gives ({'; '.join(differ)}); regenerate it (make data, or "
                        "python -m pose3dlib prepare-synthetic --config <config> --force), or read it as it is "
                        f"with {as_they_are}")


def check_not_stale(*data_dirs: str | Path | None, synthetic: SyntheticConfig | None = None,
                    ignore: tuple[str, ...] = ()) -> None:
    """Raise DataError if a data folder lies in synthetic data that an older generator version wrote,
    or, given the config's `synthetic` section, that was generated with other sizes than it gives (a
    config edited after its data were made), naming the keys. Each folder is compared on the sizes its
    split depends on (`SPLIT_SIZES`), so a split of another set (`--set data.wild_test_dir=...`) needs
    only its own sizes given; `ignore`: keys ('synthetic.<key>') that do not matter to the caller
    (training ignores the test-only ones).

    Such data loads without complaint but differs from what this code generates for the same
    config and seed, so every number computed on it would silently belong to other data. Folders
    without this generator's manifest beside them (real data, converted downloads) pass unchecked.
    """
    manifests = []  # (folder, manifest path, contents), each read once
    for d in data_dirs:
        read = _read_manifest(d)
        if read is None:
            continue
        path, stored = read
        manifests.append((d, path, stored))
        if stored.get("version") != GENERATOR_VERSION:
            raise DataError(
                f"{path}: synthetic data written by generator version {stored.get('version')}, but this code "
                f"writes version {GENERATOR_VERSION}, so {resolve(d)} is not the data the config describes; "
                f"regenerate it (python -m pose3dlib prepare-synthetic --profile <profile> --force, or make data)")
    if synthetic is not None:  # after the version: data of an older generator are refused as such
        wanted = config_to_dict(synthetic)
        for d, path, stored in manifests:
            _check_sizes(d, path, stored, wanted, ignore)


def is_complete(out_dir: str | Path, cfg: SyntheticConfig, seed: int) -> bool:
    """True when `out_dir` holds a finished generation for exactly this config, seed and generator version."""
    out = resolve(out_dir)
    try:
        stored = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    expected = _manifest(cfg, seed)

    def same(k: str, v) -> bool:  # the worker count does not change what is written
        if k != "synthetic" or not isinstance(stored.get(k), dict):
            return stored.get(k) == v
        return _written(stored[k]) == _written(v)

    return all(same(k, v) for k, v in expected.items()) and all(
        (out / p).is_file() for p in ("h36m/annot.h5", "mpii/train.h5", "mpii/val.h5", "wild_test/annot.h5",
                                      *(f"{v}/annot.h5" for v in VAL_SPLITS if getattr(cfg, v) > 0)))


# The data.* keys of the folders one generation writes (the last two may be "": off)
DATA_KEYS = ("h36m_dir", "mpii_dir", "wild_test_dir", "lab_val_dir", "wild_val_dir")


def data_folders(data_cfg: DataConfig) -> dict[str, Path]:
    """{key: folder} of the DATA_KEYS the config sets (an optional validation split may be "": off), absolute,
    with '..' folded (a/x/../b is a/b; links kept)."""
    return {key: Path(os.path.normpath(resolve(getattr(data_cfg, key)))) for key in DATA_KEYS if getattr(data_cfg, key)}


def synthetic_root(data_cfg: DataConfig) -> Path:
    """The one folder holding the synthetic sets the config's data.*_dir name (their common parent);
    a ConfigError naming the keys when they do not share one, or when a folder is not named after its
    key (the generator writes h36m/, mpii/, wild_test/, lab_val/ and wild_val/ there)."""
    folders = data_folders(data_cfg)
    misnamed = [f"data.{k}={p} (generated as {p.parent / k.removesuffix('_dir')})" for k, p in folders.items()
                if p.name != k.removesuffix("_dir")]
    if misnamed:
        raise ConfigError("synthetic data is generated into folders named after their keys (h36m, mpii, wild_test, "
                          f"lab_val, wild_val), but {', '.join(misnamed)}; rename the folders in the config")
    roots = {p.parent for p in folders.values()}
    if len(roots) != 1:
        shown = ", ".join(f"data.{k}={p}" for k, p in folders.items())
        raise ConfigError(f"synthetic data is generated into one folder, but {shown} have {len(roots)} parents")
    return roots.pop()


def ensure_synthetic_data(cfg: Config, only_missing: bool = True) -> Path | None:
    """Generate the synthetic sets the config names, with the config's own seed (`generate`, which
    reuses a complete generation of the same config and seed).

    `only_missing`: only when one of the folders (DATA_KEYS that are set) is missing, so a run
    whose data.*_dir name converted real data never generates; returns None when nothing was
    missing. False: always (notebook 01, which also refreshes a generation of another config).
    """
    if only_missing and all(p.is_dir() for p in data_folders(cfg.data).values()):
        return None
    return generate(synthetic_root(cfg.data), cfg.synthetic, cfg.seed)


def generate(out_dir: str | Path, synthetic_cfg: SyntheticConfig, seed: int = 0, force: bool = False) -> Path:
    """Write the h36m/, mpii/ and wild_test/ splits under `out_dir`; return its absolute path.

    Skips all work when `out_dir` already holds a complete generation for this config and
    seed (see `is_complete`), unless `force`. Refuses to replace a folder it did not write.
    """
    out = resolve(out_dir)
    cfg = config_from_dict({"synthetic": config_to_dict(synthetic_cfg)}).synthetic  # a config file's checks, for one built in code
    if seed < 0:
        raise ConfigError(f"synthetic data seed must be >= 0, got {seed}")
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} exists and is not a folder; choose another --out")
    if not force and is_complete(out, cfg, seed):
        return out
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise DataError(f"{out} exists and was not written by prepare-synthetic (no {MANIFEST}); "
                        "choose another --out or remove it")
    if (note := _replacing_note(out, cfg, seed)) is not None:
        print(note, file=sys.stderr, flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)  # leftovers of interrupted runs
    with building_folder(out) as tmp:
        counts = {
            "h36m": _write_h36m_split(tmp / "h36m", cfg, seed, cfg.h36m_train, cfg.h36m_test, wild=False),
            "mpii_train": _write_mpii_split(tmp / "mpii", "train", cfg, seed, cfg.mpii_train, 0),
            "mpii_val": _write_mpii_split(tmp / "mpii", "val", cfg, seed, cfg.mpii_val, 1),
            "wild_test": _write_h36m_split(tmp / "wild_test", cfg, seed, 0, cfg.wild_test, wild=True),
        }
        for name in VAL_SPLITS:  # tuning happens on these; the test splits are for reporting
            if getattr(cfg, name) > 0:
                counts[name] = _write_h36m_split(tmp / name, cfg, seed, 0, getattr(cfg, name),
                                                 wild=name == "wild_val", val=True)
        (tmp / MANIFEST).write_text(json.dumps({**_manifest(cfg, seed), "counts": counts}, indent=2))
    return out


# ----------------------------------------------------------------------------- CLI

def add_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--profile", choices=("smoke", "cpu", "paper"), default=None,
                       help="sizes from configs/<profile>.yaml `synthetic:` (default: cpu)")
    which.add_argument("--config", action=CommandLinePath, default=None,
                       help="any YAML config (your own): sizes from its `synthetic:` section, written by default "
                            "into the folder its data.*_dir name")
    parser.add_argument("--out", action=CommandLinePath, default=None,
                        help="output folder (default: data/synthetic/<profile>, or with --config the folder its "
                             "data.*_dir name)")
    parser.add_argument("--seed", type=int, default=None, help="generator seed (default: the config's seed)")
    parser.add_argument("--force", action="store_true", help="regenerate even if the output is complete")
    parser.add_argument("--raw-format", choices=("release", "official"), default="release",
                        help="release: the converted formats the loaders read (default); official: tiny "
                             "downloads in the official Human3.6M / MPII / MPI-INF-3DHP layouts, for the converters "
                             "(default --out: data/synthetic/official)")


def run(args: argparse.Namespace) -> int:
    profile = args.profile or "cpu"
    cfg = load_config(args.config or f"configs/{profile}.yaml")
    seed = cfg.seed if args.seed is None else args.seed
    if args.raw_format == "official":
        from .official import generate_official

        out = generate_official(resolve(args.out) if args.out else SYNTHETIC_DIR / "official", seed)
        print(f"wrote: {out} (h36m/, mpii/, mpi_inf_3dhp_test_set/ in the official layouts; _truth/)")
        return 0
    out = resolve(args.out) if args.out else synthetic_root(cfg.data)  # a profile's: data/synthetic/<profile>
    skipped = not args.force and is_complete(out, cfg.synthetic, seed)
    out = generate(out, cfg.synthetic, seed, force=args.force)
    counts = json.loads((out / MANIFEST).read_text()).get("counts", {})
    print(f"{'up to date' if skipped else 'wrote'}: {out} ({', '.join(f'{k} {v}' for k, v in counts.items())})")
    return 0

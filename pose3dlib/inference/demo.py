"""The in-the-wild demo: 2D and 3D pose of the people in your images, folders and videos.

    python -m pose3dlib demo photo.jpg shots/ clip.mp4 [--checkpoint CKPT] [--bbox x,y,w,h]
                             [--all-people] [--whole-image] [--bvh] --out DIR

Without --bbox the person is found by a search over the whole picture driven by the
network's own heatmap confidence (`pose3dlib.inference.detect`). Per image it writes
`<stem>.json` (schema: docs/demo-output.md), `<stem>_2d.png` (overlay), `<stem>_3d.html`
(interactive 3D) and `<stem>_3d.png` (static 3D). A folder (searched recursively) also gets an
NPY/CSV bundle `<folder>/keypoints/` (`keypoints_2/` where the folder has a subfolder named keypoints);
a video gets one JSON with a `frames` list,
`<stem>_overlay.mp4`, an animated `<stem>_3d.html` and a bundle `<stem>_keypoints/`.
All HTML pages of a run share one `DIR/plotly.min.js`.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from .. import camera, decode
from ..config import Config
from ..data.image_file import read_image_file, write_image_file
from ..data.mpii import BOX_FACTOR
from ..engine import runs
from ..engine.atomic_io import (
    atomic_write_text,
    describe_os_error,
    probe_writable,
    remove_stale_temporaries,
    temporary_sibling,
)
from ..engine.checkpoint import bone_sum_mm as checkpoint_bone_sum_mm
from ..engine.checkpoint import checkpoint_caveats, load_checkpoint
from ..engine.device import resolve_device
from ..engine.errors import CheckpointError, DataError, Pose3DError
from ..engine.paths import CommandLinePath, from_current_folder, resolve
from ..engine.progress import progress_bar
from ..evaluation.evaluate import predict
from ..model import load_model
from ..skeleton import DEPTH_ROOT, MPII16
from . import detect, export, media

read_image_rgb = media.read_image_rgb  # the demo's image reader (any mode -> RGB)

# Training crops show the person's box enlarged by this factor (the 2D hourglass convention,
# docs/paper.md "Training recipe"), so a tight --bbox is enlarged the same way.
BOX_MARGIN = BOX_FACTOR
SCHEMA = "pose3d-demo/1"
MIN_PERSON_PX = 32  # a box side below this is upsampled more than 2x for a 64 px network: too small to see
MAX_BBOX_SIDES = 10  # a --bbox side above this many times the picture's longer side is refused: no person is that large
BATCH = 16  # crops per forward pass for folders and videos
ASSUMED_FPS = 25.0  # for a video whose container states no frame rate (said in its warnings)
EXPECTATIONS = (
    "A model trained only on this project's synthetic people finds the body axis on some real "
    "photographs and the limbs on few. For real photographs use the original authors' weights, "
    "converted with `python -m pose3dlib convert-hg3d hgreg-3d.pth hg3d.pt` (docs/migrating-from-hg3d.md), "
    "or a model trained on the real datasets (Human3.6M + MPII)."
)
CONVERTED_EXPECTATIONS = (
    "Weights of the original hg3d release, converted with `convert-hg3d` (docs/migrating-from-hg3d.md): "
    "they run with the original's input convention (bgr256), and their 3D is scaled to the paper evaluator's "
    "Human3.6M skeleton (the original release stores no scale)."
)


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """'x,y,w,h' (pixels, top-left corner and size) -> floats, or None."""
    if text is None:
        return None
    try:
        x, y, w, h = (float(v) for v in text.split(","))
    except ValueError:
        raise Pose3DError(f"--bbox {text!r}: expected four numbers x,y,w,h (pixels)") from None
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise Pose3DError(f"--bbox {text!r}: expected four finite numbers x,y,w,h (pixels)")
    if w <= 0 or h <= 0:
        raise Pose3DError(f"--bbox {text!r}: width and height must be positive")
    return x, y, w, h


def check_rgb_image(image_rgb, what: str = "image_rgb") -> None:
    """Pose3DError naming what was given unless `image_rgb` is a non-empty (H, W, 3) uint8 numpy array
    (`media.read_image_rgb` reads a file so; the network's crops are made from such arrays)."""
    if not isinstance(image_rgb, np.ndarray):
        raise Pose3DError(f"{what}: expected an (H, W, 3) uint8 RGB numpy array, got {type(image_rgb).__name__} "
                          "(a torch tensor: .numpy(); a file: media.read_image_rgb)")
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or 0 in image_rgb.shape or image_rgb.dtype != np.uint8:
        hint = (" (channels first? .transpose(1, 2, 0))" if image_rgb.ndim == 3 and image_rgb.shape[0] == 3
                and image_rgb.shape[2] != 3 else " (float 0..1: (x * 255).round().astype(np.uint8))"
                if image_rgb.dtype.kind == "f" else "")
        raise Pose3DError(f"{what}: expected an (H, W, 3) uint8 RGB array, got shape {image_rgb.shape} "
                          f"{image_rgb.dtype}{hint}")


def check_bbox_overlaps(bbox: tuple[float, float, float, float] | None, image_hw: tuple[int, int], path: str | Path) -> None:
    """Raise Pose3DError naming the image when the --bbox box does not overlap it, or is more than
    MAX_BBOX_SIDES times its longer side (a mistyped size: its crop would show the picture as a dot)."""
    if bbox is None:
        return
    h, w = image_hw
    x, y, bw, bh = bbox
    if x >= w or y >= h or x + bw <= 0 or y + bh <= 0:
        raise Pose3DError(f"--bbox {x:g},{y:g},{bw:g},{bh:g} lies outside {path} ({w}x{h} px)")
    if max(bw, bh) > MAX_BBOX_SIDES * max(h, w):
        raise Pose3DError(f"--bbox {x:g},{y:g},{bw:g},{bh:g} is {max(bw, bh) / max(h, w):.3g} x the longer side of "
                          f"{path} ({w}x{h} px), more than {MAX_BBOX_SIDES} x; the box is the person's, in the picture's pixels")


def person_box(image_hw: tuple[int, int], bbox: tuple[float, float, float, float] | None) -> tuple[np.ndarray, float]:
    """(centre (2,), square side px) of the crop: the enlarged box, or the whole image centred."""
    h, w = image_hw
    if bbox is None:
        return np.array([(w - 1) / 2.0, (h - 1) / 2.0]), float(max(h, w))
    x, y, bw, bh = bbox
    return np.array([x + bw / 2.0 - 0.5, y + bh / 2.0 - 0.5]), float(max(bw, bh) * BOX_MARGIN)


def load_demo_model(ckpt: str | Path, device: torch.device | str = "auto") -> tuple[torch.nn.Module, Config]:
    """(model in eval mode on `device`, config) of a checkpoint, the config's `train.bone_sum_mm`
    set to the millimetre scale stored in the checkpoint (the one rule evaluation uses too).
    `ckpt`: a relative path is read from the current folder, as `open` reads it.
    `device`: a torch device or a name for `engine.device.resolve_device` ("auto": CUDA, then CPU)."""
    if isinstance(device, str):
        device = resolve_device(device, key="device")
    path = from_current_folder(os.fspath(ckpt))
    if not Path(path).exists():
        raise CheckpointError(f"checkpoint not found: {ckpt}; train the run first (`make reproduce`, or notebooks "
                              "02-04 for a run folder of your own) or name a trained Stage 2 or 3 checkpoint")
    checkpoint = load_checkpoint(path, map_location=device)  # read once; errors name the file (a folder too)
    model, cfg = load_model(checkpoint, map_location=device, source=str(ckpt))
    for caveat in checkpoint_caveats(checkpoint, str(ckpt)):
        _warn(caveat)
    scale = checkpoint_bone_sum_mm(checkpoint, str(ckpt))
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, bone_sum_mm=scale))
    return model.to(device).eval(), cfg


def bone_sum_mm(cfg: Config) -> tuple[float, str]:
    """The millimetre scale of the 3D output (`load_demo_model` sets it from the checkpoint) and its source."""
    if not cfg.train.bone_sum_mm > 0:
        raise Pose3DError("the config carries no millimetre scale (train.bone_sum_mm is 0): load the checkpoint "
                          "with pose3dlib.inference.demo.load_demo_model, which reads the scale the checkpoint stores")
    if is_converted(cfg):
        return cfg.train.bone_sum_mm, ("the checkpoint's bone_sum_mm, set by convert-hg3d to the paper evaluator's "
                                       "Human3.6M skeleton (eval.paper_bone_sum_mm), as the original release stores "
                                       "none; evaluation uses the same")
    return cfg.train.bone_sum_mm, "the checkpoint's bone_sum_mm, fixed when it was trained, as in evaluation"


def is_converted(cfg: Config) -> bool:
    """True for a checkpoint written by `convert-hg3d` (its config records the profile CONVERTED_PROFILE)."""
    from ..original.compat import CONVERTED_PROFILE

    return cfg.profile == CONVERTED_PROFILE


def expectations(cfg: Config) -> str:
    """What to expect of this checkpoint on real photographs (EXPECTATIONS, or CONVERTED_EXPECTATIONS)."""
    return CONVERTED_EXPECTATIONS if is_converted(cfg) else EXPECTATIONS


def checkpoint_warnings(checkpoint: str | Path | None) -> list[str]:
    """What every result of this checkpoint must carry (`checkpoint_caveats`: a Stage 1 checkpoint's
    meaningless 3D, an unfinished stage); [] for None."""
    if checkpoint is None:
        return []
    path = Path(from_current_folder(os.fspath(checkpoint)))  # a script's own path, else the project's name
    return checkpoint_caveats(load_checkpoint(path if path.is_file() else resolve(checkpoint)), str(checkpoint))


def output_header(cfg: Config, checkpoint: str | Path | None) -> dict:
    """The fields every demo JSON starts with: what the numbers mean and where they came from.
    `checkpoint_warnings` (`checkpoint_warnings`) also open each result's `warnings`."""
    scale_mm, scale_source = bone_sum_mm(cfg)
    return {
        "schema": SCHEMA,
        "units": {"2d": "px", "3d": "mm"},
        "root": MPII16.joint_names[DEPTH_ROOT],
        "root_relative": True,
        "axes_3d": "camera frame: x right, y down, z away from the camera",
        "joint_names": list(MPII16.joint_names),
        "edges": [list(e) for e in MPII16.edges],
        "scale_convention": f"3D is root-relative ({MPII16.joint_names[DEPTH_ROOT]}) and scaled so the 14 bones "
                            f"sum to {scale_mm:.2f} mm ({scale_source})",
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "checkpoint_warnings": checkpoint_warnings(checkpoint),
        "expectations": expectations(cfg),
    }


# ----------------------------------------------------------------------------- finding and estimating

def boxes_for(model: torch.nn.Module, cfg: Config, image_rgb: np.ndarray, bbox=None, *, whole_image: bool = False,
              all_people: bool = False, device: torch.device | None = None) -> list[detect.Box]:
    """The person boxes of one image: from --bbox, the whole image, or the heatmap search (best first).
    Pose3DError for an image that is not an (H, W, 3) uint8 RGB array or a box off the image."""
    check_rgb_image(image_rgb)
    check_bbox_overlaps(bbox, image_rgb.shape[:2], "image")
    if bbox is not None:
        centre, side = person_box(image_rgb.shape[:2], bbox)
        return [detect.Box(centre, side, float("nan"), f"--bbox enlarged by {BOX_MARGIN}")]
    if whole_image:
        centre, side = person_box(image_rgb.shape[:2], None)
        return [detect.Box(centre, side, float("nan"), "whole image (--whole-image)")]
    return detect.find_people(model, cfg, image_rgb, max_people=8 if all_people else 1, device=device)


@torch.no_grad()
def estimate_poses(model: torch.nn.Module, cfg: Config, images: list[np.ndarray], boxes: list[detect.Box], *,
                   flip_test: bool = True, device: torch.device | None = None, batch: int = BATCH,
                   progress: str | None = None) -> list[dict]:
    """2D (image px) and 3D (root-relative mm) joints for each (image, box) pair, in batches.

    Returns one record per pair: box, joints_2d_px (16, 2), joints_3d_mm (16, 3),
    confidence (16,) heatmap maxima, score (their mean). `progress`: the description of a
    progress bar over the pairs (None: no bar). A box that the crop shrinks by more than 2 x is
    read from a halving of the picture (`camera.ImagePyramid`), not sampled with aliasing.
    """
    device = device or next(model.parameters()).device
    size, hm = cfg.data.input_size, cfg.data.heatmap_size
    scale_mm, _ = bone_sum_mm(cfg)
    records = []
    pyramids: dict[int, camera.ImagePyramid] = {}  # one per picture: people of one photo share its halvings

    def crop(image: np.ndarray, affine: np.ndarray) -> np.ndarray:
        if id(image) not in pyramids:
            pyramids[id(image)] = camera.ImagePyramid(image)
        return pyramids[id(image)].warp(affine, size)

    bar = progress_bar(total=len(images), desc=progress, unit="frame", leave=False, disable=progress is None)
    for i in range(0, len(images), batch):
        affines = [camera.crop_affine(b.center_px, b.side_px, 0.0, size) for b in boxes[i:i + batch]]
        crops = np.stack([crop(im, a) for im, a in zip(images[i:i + batch], affines)])
        x = torch.from_numpy(crops).permute(0, 3, 1, 2).contiguous().to(device)  # (B, 3, S, S) uint8
        out = predict(model, x, cfg.model.input_format, flip_test=flip_test, subpixel=cfg.eval.subpixel)
        joints_norm = out["joints_2d"].float().cpu().numpy()  # (B, 16, 2)
        joints_3d = decode.reconstruct_3d(joints_norm, out["depth"].float().cpu().numpy(), scale_mm)  # (B, 16, 3)
        conf = out["maxvals"].float().cpu().numpy()  # (B, 16)
        for k, (a, box) in enumerate(zip(affines, boxes[i:i + batch])):
            crop_px = camera.normalized_to_crop_px(joints_norm[k], size, hm)
            records.append({
                "box": box.as_json(),
                # float64 before rounding: a rounded float32 prints as 315.1000061035156 in the JSON
                "joints_2d_px": np.round(camera.apply_affine(crop_px, camera.invert_affine(a)).astype(np.float64), 2).tolist(),
                "joints_3d_mm": np.round(joints_3d[k].astype(np.float64), 1).tolist(),
                "confidence": np.round(conf[k].astype(np.float64), 4).tolist(),
                "score": round(float(conf[k].mean()), 4),
            })
        bar.update(len(affines))
    bar.close()
    return records


def warnings_for(record: dict, image_hw: tuple[int, int]) -> list[str]:
    """Per-person warnings: a box too small to see, a box larger than the picture can hold a person
    in, or a person the network barely sees."""
    out = []
    side = record["box"]["side_px"]
    if side < MIN_PERSON_PX:
        out.append(f"person too small: box side {side:.0f} px < {MIN_PERSON_PX} px")
    if side > detect.max_side(image_hw):
        why = ("the --bbox given" if record["box"].get("source", "").startswith("--bbox")
               else "no clear person was found")
        out.append(f"box larger than the picture: side {side:.0f} px = {side / max(image_hw):.1f} x its longer side "
                   f"({why}; 2D and 3D are unreliable)")
    if record["score"] < detect.MIN_SCORE:
        out.append(f"no confident person: mean joint confidence {record['score']:.3f} < {detect.MIN_SCORE}")
    return out


def frame_warnings(records: list[dict], image_hw: tuple[int, int]) -> list[str]:
    """`warnings_for` over a video's frames, one line per kind: how many frames, the first and its numbers."""
    kinds: dict[str, list[tuple[int, str]]] = {}
    for i, r in enumerate(records):
        for w in warnings_for(r, image_hw):
            kind, _, detail = w.partition(": ")
            kinds.setdefault(kind, []).append((i, detail))
    return [f"{kind} in {len(hits)} of {len(records)} frames (first: frame {hits[0][0]}, {hits[0][1]})"
            for kind, hits in kinds.items()]


def image_result(records: list[dict], image_rgb: np.ndarray, all_people: bool) -> dict:
    """The per-image part of the JSON: the best person's fields at the top, `people` with --all-people
    (whose warnings name the person they are about: `person 2: ...`, counting from 1 in `people`'s order)."""
    hw = image_rgb.shape[:2]
    warnings = ([f"person {k}: {w}" for k, r in enumerate(records, start=1) for w in warnings_for(r, hw)]
                if all_people and len(records) > 1 else warnings_for(records[0], hw))
    result = {"image_size_px": list(image_rgb.shape[1::-1]), **records[0], "warnings": warnings}
    if all_people:
        result["people"] = records
    return result


def estimate_pose(model: torch.nn.Module, cfg: Config, image_rgb: np.ndarray, bbox=None, *, flip_test: bool = True,
                  device: torch.device | None = None, whole_image: bool = False, all_people: bool = False) -> dict:
    """2D (original-image px) and 3D (root-relative mm) joints of the person (or people) in one image.

    Returns the JSON record of `docs/demo-output.md` (header fields included, checkpoint None).
    """
    boxes = boxes_for(model, cfg, image_rgb, bbox, whole_image=whole_image, all_people=all_people, device=device)
    records = estimate_poses(model, cfg, [image_rgb] * len(boxes), boxes, flip_test=flip_test, device=device)
    return {**output_header(cfg, None), **image_result(records, image_rgb, all_people)}


def default_checkpoint() -> Path:
    """The newest finished stage-3 checkpoint of a `make reproduce` run (smoke runs excluded;
    pose3dlib.engine.runs owns the run-folder layout); a warning for each run checkpoint passed
    over because it cannot be read."""
    unreadable: list[str] = []
    path = runs.newest_finished_checkpoint(stage=3, unreadable=unreadable)
    for message in unreadable:
        _warn(f"passed over: {message}")
    return path


# ----------------------------------------------------------------------------- writing

def write_json(path: Path, data: dict) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=1) + "\n")


def write_outputs(result: dict, image_rgb: np.ndarray, out_dir: Path, stem: str,
                  plotlyjs: Path | None = None, bvh: bool = False) -> dict[str, Path]:
    """Write <stem>_2d.png, <stem>_3d.html, <stem>_3d.png (and <stem>.bvh), then <stem>.json; returns their paths.

    The JSON comes last, so an interrupted run never leaves a JSON without its pictures; a
    <stem>.bvh of an earlier run is removed when `bvh` is off (it would describe another result).
    `plotlyjs`: a shared plotly.min.js the HTML links to (None: embed plotly.js).
    """
    from ..plots.viz import draw_skeleton_2d, skeleton_figure_3d_png, skeleton_figure_plotly, write_html

    paths = {"json": out_dir / f"{stem}.json", "png": out_dir / f"{stem}_2d.png",
             "html": out_dir / f"{stem}_3d.html", "png_3d": out_dir / f"{stem}_3d.png"}
    paths["json"].parent.mkdir(parents=True, exist_ok=True)
    earlier = start_item(paths["json"], [*paths.values(), out_dir / f"{stem}.bvh"])
    overlay, zoom = overlay_canvas(image_rgb)
    for person in result.get("people", [result]):
        overlay = draw_skeleton_2d(overlay, (np.array(person["joints_2d_px"]) + 0.5) * zoom - 0.5)
    media.write_image_rgb(paths["png"], overlay)
    title = Path(stem).name
    write_html(skeleton_figure_plotly(np.array(result["joints_3d_mm"]), title=title), paths["html"], plotlyjs)
    skeleton_figure_3d_png(np.array(result["joints_3d_mm"]), paths["png_3d"], title=title)
    write_or_remove_bvh(paths, out_dir / f"{stem}.bvh", np.array([result["joints_3d_mm"]]), 30.0, bvh, earlier)
    finish_item(paths["json"], result)
    return paths


MIN_OVERLAY_PX = 256  # a smaller picture's overlay is drawn on a whole-number enlargement of it


def overlay_canvas(image_rgb: np.ndarray) -> tuple[np.ndarray, int]:
    """(picture to draw the 2D overlay on, its zoom): a picture whose longer side is under MIN_OVERLAY_PX
    is enlarged by the smallest whole number that reaches it (nearest neighbour, pixels stay square), so
    the skeleton does not cover a 40 px person; the JSON keeps the original picture's pixels."""
    zoom = max(1, math.ceil(MIN_OVERLAY_PX / max(image_rgb.shape[:2])))
    if zoom == 1:
        return image_rgb, 1
    return np.repeat(np.repeat(image_rgb, zoom, axis=0), zoom, axis=1), zoom


def start_item(json_path: Path, others: Iterable[Path] = ()) -> bool:
    """Remove an item's JSON of an earlier run before its other files are replaced, so a JSON always
    describes the files beside it (an interrupted item is one without a JSON); True when an earlier run
    wrote this item, whole (its JSON) or in part (its in-progress record, left by an interrupted run).
    A hidden record (`partial_record`) says, until `finish_item`, that the item's files are being written,
    so a run interrupted in a folder of the user's leaves them recognisable as the demo's.

    Pose3DError, before anything is replaced, when the item would replace a file the demo did not write:
    a `<stem>.json` without the demo's schema, or, outside a folder marked as demo output
    (`media.OUTPUT_MARKER`, in the folder or one above it) and without that record, any of `others` (the
    item's other files) without the demo's JSON beside it: in a folder of the user's those are the user's
    own files (a `<stem>.bvh` among them even without --bvh: beside the demo's JSON, a later run without
    --bvh would take it for its own and remove it)."""
    earlier = json_path.is_file()
    if earlier and not _is_demo_json(json_path):
        raise Pose3DError(f"{json_path}: exists and was not written by the demo (no \"schema\": \"{SCHEMA}\"); "
                          "move it or choose another --out")
    partial = partial_record(json_path)
    interrupted = partial.is_file()
    ours = earlier or interrupted or media.marked_folder(json_path.parent) is not None
    if not ours and (foreign := [p for p in others if p.exists()]):
        raise Pose3DError(f"{foreign[0]}: exists and was not written by the demo (no {json_path.name} of the demo's "
                          "beside it); move it or choose another --out")
    partial.touch()
    json_path.unlink(missing_ok=True)
    return earlier or interrupted


PARTIAL_SUFFIX = ".json.partial"  # .<stem>.json.partial: an item whose files are being written


def partial_record(json_path: Path) -> Path:
    """The hidden file that marks an item whose files are being written (`start_item` to `finish_item`)."""
    return json_path.with_name(f".{json_path.stem}{PARTIAL_SUFFIX}")


def finish_item(json_path: Path, result: dict) -> None:
    """Write the item's JSON, last, and drop its in-progress record."""
    write_json(json_path, result)
    partial_record(json_path).unlink(missing_ok=True)


def _is_demo_json(path: Path) -> bool:
    """Whether `path` is a demo result (a JSON object with the demo's `schema`)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and data.get("schema") == SCHEMA


def write_or_remove_bvh(paths: dict[str, Path], path: Path, joints_3d_mm: np.ndarray, fps: float, bvh: bool,
                        earlier: bool) -> None:
    """`export.write_bvh` into `paths["bvh"]` when asked; otherwise remove the BVH an earlier run wrote
    for this item (`earlier`: that run's JSON or in-progress record was there), which would describe another
    result."""
    if bvh:
        paths["bvh"] = export.write_bvh(path, joints_3d_mm, fps)
    elif earlier:
        path.unlink(missing_ok=True)


def write_people_bundle(folder: Path, names: list[str], records: list[dict]) -> Path:
    """The NPY/CSV bundle of the best person of each item (`export.write_bundle`)."""
    return export.write_bundle(
        folder, names,
        np.array([r["joints_2d_px"] for r in records]).reshape(-1, 16, 2),
        np.array([r["joints_3d_mm"] for r in records]).reshape(-1, 16, 3),
        np.array([r["confidence"] for r in records]).reshape(-1, 16),
        np.array([[*r["box"]["center_px"], r["box"]["side_px"]] for r in records]).reshape(-1, 3))


def folder_labels(items: list[media.Item]) -> dict[Path, str]:
    """The output folder name of each input folder: its own name, with _2, _3, ... for a second or
    third folder of the same name (A/shots and B/shots: shots/ and shots_2/), compared without case
    (A/Shots and B/shots are one folder on macOS and Windows: Shots/ and shots_2/)."""
    labels: dict[Path, str] = {}
    taken: set[str] = set()
    for folder in dict.fromkeys(i.folder for i in items if i.folder is not None):
        name, label, n = folder.resolve().name, folder.resolve().name, 1
        while label.casefold() in taken:
            n += 1
            label = f"{name}_{n}"
        labels[folder] = label
        taken.add(label.casefold())
    return labels


def bundle_names(items: list[media.Item]) -> dict[Path, str]:
    """The keypoint bundle's folder name of each input folder: `keypoints`, or `keypoints_2`, ... when
    the input folder has a subfolder of that name (its pictures' results go to a folder of that name)."""
    names: dict[Path, str] = {}
    for folder in dict.fromkeys(i.folder for i in items if i.folder is not None):
        taken = {i.path.relative_to(folder).parts[0].casefold() for i in items
                 if i.folder == folder and len(i.path.relative_to(folder).parts) > 1}
        name, n = "keypoints", 1
        while name in taken:
            n += 1
            name = f"keypoints_{n}"
        names[folder] = name
    return names


def output_stem(item: media.Item, used: set[str], labels: dict[Path, str] | None = None) -> str:
    """Output name of an item relative to --out: `<folder label>/<relative path without suffix>` or `<stem>`."""
    rel = item.path.relative_to(item.folder).with_suffix("") if item.folder else Path(item.path.stem)
    label = (labels or {}).get(item.folder) or (item.folder.resolve().name if item.folder else None)
    stem = (Path(label) / rel).as_posix() if item.folder else rel.as_posix()
    def taken(name: str) -> bool:  # compared without case: Photo and photo are one file on macOS and Windows
        return name.casefold() in used

    if taken(stem):  # same stem, other suffix (photo.jpg and photo.png)
        stem = f"{stem}_{item.path.suffix.lstrip('.').lower()}"
    base, n = stem, 1
    while taken(stem):  # still taken: the same name given again, or from another folder (A/p.jpg, B/p.jpg)
        n += 1
        stem = f"{base}_{n}"
    used.add(stem.casefold())
    return stem


def video_bundles(items: list[media.Item], stems: list[str], labels: dict[Path, str],
                  bundle_dirs: dict[Path, str]) -> dict[int, str]:
    """The bundle folder of each video (by its index in `items`): `<stem>_keypoints`, or `_keypoints_2`, ...
    where that folder holds other results (a folder of pictures named so beside the video: photos/clip.mp4
    and photos/clip_keypoints/a.jpg, or `demo clip.mp4 clip_keypoints/`), compared without case."""
    folders = {parent.as_posix().casefold() for stem in stems for parent in Path(stem).parents if parent != Path(".")}
    folders |= {f"{labels[f]}/{bundle_dirs[f]}".casefold() for f in labels}
    names = {}
    for index, (item, stem) in enumerate(zip(items, stems)):
        if item.kind != "video":
            continue
        name, n = f"{stem}_keypoints", 1
        while name.casefold() in folders:
            n += 1
            name = f"{stem}_keypoints_{n}"
        folders.add(name.casefold())
        names[index] = name
    return names


def prepare_out(out_dir: Path) -> list[Path]:
    """Make `out_dir` and check that files can be written there, before any work; returns the folders
    made (the caller removes them if nothing succeeds). Pose3DError naming --out when it cannot be
    written. A folder made here or found empty (hidden files aside) is marked as demo output
    (media.OUTPUT_MARKER), so no later folder search reads it; a folder that already holds files of the
    user's is not, and a warning says so unless a folder above it is marked."""
    if out_dir.exists() and not out_dir.is_dir():
        raise Pose3DError(f"--out {out_dir}: exists and is not a folder")
    made = [d for d in (out_dir, *out_dir.parents) if not d.exists()]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if all(name.startswith(".") for name in os.listdir(out_dir)):  # empty but for hidden files (.DS_Store), which no search reads
            atomic_write_text(out_dir / media.OUTPUT_MARKER, "written by `python -m pose3dlib demo`; "
                              "a demo folder search skips this folder\n")
        else:  # the user's own folder: only check that a file can be written
            probe_writable(out_dir)
    except OSError as e:
        remove_empty(made)
        # the marker or the write check in --out itself: the reason alone (their names are no file of the user's)
        own = e.filename is not None and e.strerror and Path(os.fsdecode(e.filename)).parent == out_dir
        raise Pose3DError(f"--out {out_dir}: cannot write there ({e.strerror if own else describe_os_error(e)})") from None
    if media.marked_folder(out_dir) is None:  # inside a marked one: skipped too
        _warn(f"--out {out_dir}: holds files of yours, so it is not marked as demo output ({media.OUTPUT_MARKER}); "
              "a later demo run over a folder that holds it will read these results as photos (a new or empty --out "
              "is marked)")
    return made


def remove_empty(folders: list[Path]) -> None:
    """Remove `folders` (deepest first) while they hold nothing but the output marker."""
    for d in folders:
        try:
            names = set(os.listdir(d)) - {media.OUTPUT_MARKER}
            records = {n for n in names if n.startswith(".") and n.endswith(PARTIAL_SUFFIX)}  # items that wrote nothing
            if names - records:
                return  # something was written there: the folder and its marker stay
            for name in records:
                (d / name).unlink(missing_ok=True)
            (d / media.OUTPUT_MARKER).unlink(missing_ok=True)
            d.rmdir()
        except OSError:
            return


# ----------------------------------------------------------------------------- images

def _locating(bbox, whole_image: bool) -> str:
    """An input's first step in its progress bar: cropping a given box, or searching for the person."""
    return "cropping" if bbox is not None or whole_image else "finding the person"


def run_image(model: torch.nn.Module, cfg: Config, path: Path, out_dir: Path, stem: str, *, header: dict,
              bbox=None, whole_image: bool = False, all_people: bool = False, bvh: bool = False, flip_test: bool = True,
              plotlyjs: Path | None = None, device: torch.device | None = None,
              show_steps: bool = False) -> tuple[dict[str, Path], dict]:
    """Pose of the person (or, with `all_people`, every person) in one image; writes its outputs
    (`write_outputs`) and returns (their paths, the JSON's content). `show_steps`: a three-step
    progress bar (finding, estimating, writing). Raises Pose3DError when --bbox misses the image."""
    image = media.read_image_rgb(path)
    check_bbox_overlaps(bbox, image.shape[:2], path)
    with progress_bar(total=3, desc=f"{path.name}: {_locating(bbox, whole_image)}", unit="step", leave=False, disable=not show_steps) as steps:
        boxes = boxes_for(model, cfg, image, bbox, whole_image=whole_image, all_people=all_people, device=device)
        steps.update()  # the count first: the description names the step under way
        steps.set_description(f"{path.name}: estimating the pose")
        records = estimate_poses(model, cfg, [image] * len(boxes), boxes, flip_test=flip_test, device=device)
        result = {**header, "input": str(path), **image_result(records, image, all_people)}
        result["warnings"] = header.get("checkpoint_warnings", []) + result["warnings"]
        steps.update()
        steps.set_description(f"{path.name}: writing")
        paths = write_outputs(result, image, out_dir, stem, plotlyjs, bvh=bvh)
        steps.update()
    return paths, result


# ----------------------------------------------------------------------------- videos

def _estimate_frames(model: torch.nn.Module, cfg: Config, frames: Iterable[np.ndarray], overlay: media.VideoWriter, *,
                     bbox, whole_image: bool, flip_test: bool, device: torch.device | None, research_every: int,
                     desc: str, total: int | None) -> list[dict]:
    """Follow the person through `frames`, estimate their poses BATCH frames at a time and draw each
    frame's skeleton into `overlay`; one record per frame (`estimate_poses`)."""
    from ..plots.viz import draw_skeleton_2d

    records: list[dict] = []
    pending: list[tuple[np.ndarray, detect.Box]] = []  # frames followed, not yet estimated

    def estimate_pending() -> None:
        done = estimate_poses(model, cfg, [f for f, _ in pending], [b for _, b in pending],
                              flip_test=flip_test, device=device)
        for (frame, _), r in zip(pending, done):
            overlay.write(draw_skeleton_2d(frame, np.array(r["joints_2d_px"])))
        records.extend(done)
        pending.clear()

    box = None
    for i, frame in enumerate(progress_bar(frames, desc=desc, total=total, unit="frame", leave=False)):
        if box is None or bbox is not None or whole_image:
            box = boxes_for(model, cfg, frame, bbox, whole_image=whole_image, device=device)[0]
        else:  # follow the person, with a whole-frame search when lost and every research_every frames
            box = detect.follow(model, cfg, frame, box, search=i % research_every == 0, device=device)
        pending.append((frame, box))
        if len(pending) == BATCH:  # the batches estimate_poses would form from all frames at once
            estimate_pending()
    if pending:
        estimate_pending()
    return records


def run_video(model: torch.nn.Module, cfg: Config, path: Path, out_dir: Path, stem: str, *, header: dict,
              bbox=None, whole_image: bool = False, flip_test: bool = True, bvh: bool = False,
              plotlyjs: Path | None = None, device: torch.device | None = None,
              warn=None, bundle: str | None = None) -> dict[str, Path]:
    """Pose of the main person in every frame of a video; writes the overlay video, animated 3D,
    bundle (and BVH), then the JSON.
    `bundle`: the bundle folder's name relative to `out_dir` (default `<stem>_keypoints`; `video_bundles`
    picks another where an input's results use that folder).

    Frames are read, followed, estimated and drawn into the overlay BATCH at a time, so memory
    does not grow with the video's length. An earlier JSON of the item goes first, the overlay is
    written under a temporary name and renamed at the end, and the JSON comes last: an interrupted
    item has no JSON (and no half-written overlay).
    `warn`: called with each warning of the JSON's `warnings` (a short read, people too small or
    not seen, summed over the frames). Raises Pose3DError when --bbox misses the frame.
    """
    from ..plots.viz import animated_skeleton_figure, skeleton_figure_3d_png, write_html

    fps, claimed = media.video_info(path)
    stated_fps = fps > 0
    fps = fps if stated_fps else ASSUMED_FPS
    research_every = max(1, round(fps * detect.RESEARCH_EVERY_S))  # frames between whole-frame searches
    times_ms: list[float] = []
    reader = media.read_video_frames(path, times_ms)
    first = next(reader, None)
    if first is None:
        raise DataError(f"{path}: no readable frames (empty or damaged video)")
    check_bbox_overlaps(bbox, first.shape[:2], path)  # before any bar or work: the image path's check, naming the video
    paths = {"json": out_dir / f"{stem}.json", "overlay": out_dir / f"{stem}_overlay.mp4",
             "html": out_dir / f"{stem}_3d.html", "png_3d": out_dir / f"{stem}_3d.png",
             "bundle": out_dir / (bundle or f"{stem}_keypoints")}
    export.check_bundle_folder(paths["bundle"])  # before the frames are estimated, not after
    overlay_tmp = temporary_sibling(paths["overlay"], suffix=".mp4")
    paths["json"].parent.mkdir(parents=True, exist_ok=True)
    earlier = start_item(paths["json"], [paths["overlay"], paths["html"], paths["png_3d"], out_dir / f"{stem}.bvh"])
    remove_stale_temporaries(paths["overlay"])  # a killed run's half-written overlay (gigabytes for a long video)
    desc = f"{path.name}: {_locating(bbox, whole_image)} and estimating"
    try:
        with media.VideoWriter(overlay_tmp, fps, tuple(first.shape[1::-1])) as overlay:
            records = _estimate_frames(model, cfg, itertools.chain([first], reader), overlay, bbox=bbox,
                                       whole_image=whole_image, flip_test=flip_test, device=device,
                                       research_every=research_every, desc=desc, total=claimed or None)
        warnings = []
        if claimed > len(records):
            warnings.append(f"only the first {len(records)} of {claimed} frames could be read")
        if not stated_fps:
            warnings.append(f"the video states no frame rate: the overlay video and BVH play at {ASSUMED_FPS:g} fps")
        times, timing = media.frame_times(times_ms[:len(records)], fps)
        warnings += [timing] if timing else []
        warnings += frame_warnings(records, first.shape[:2])
        if warn is not None:
            for w in warnings:
                warn(w)
        for i, r in enumerate(records):
            r["index"], r["time_s"] = i, round(float(times[i]), 4)
        result = {**header, "video": str(path), "fps": fps, "image_size_px": list(first.shape[1::-1]),
                  "num_frames": len(records), "frames": records,
                  "warnings": header.get("checkpoint_warnings", []) + warnings}
        joints_3d = np.array([r["joints_3d_mm"] for r in records])  # (T, 16, 3)
        write_html(animated_skeleton_figure(joints_3d, times, title=Path(stem).name), paths["html"], plotlyjs)
        skeleton_figure_3d_png(joints_3d[0], paths["png_3d"], title=f"{Path(stem).name}, frame 0")
        write_people_bundle(paths["bundle"], [str(i) for i in range(len(records))], records)
        write_or_remove_bvh(paths, out_dir / f"{stem}.bvh", joints_3d, fps, bvh, earlier)
        overlay_tmp.replace(paths["overlay"])
    finally:
        overlay_tmp.unlink(missing_ok=True)
    finish_item(paths["json"], result)
    return paths


# ----------------------------------------------------------------------------- command line

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "2D and 3D pose of the people in images (JPEG/PNG/...; RGB, RGBA, grey), folders of them "
        "(searched recursively) and videos (mp4, m4v, avi, mov, mkv, webm). Without --bbox the person is found by a search "
        "driven by the network's heatmap confidence. " + EXPECTATIONS
    )
    # read from the current folder as typed (not made absolute): the JSON's `input` shows them as given
    parser.add_argument("inputs", nargs="+", metavar="INPUT", type=_input_path, help="image files, folders and video files")
    parser.add_argument("--checkpoint", action=CommandLinePath, default=None,
                        help="pose3d checkpoint (default: the newest finished runs/*/stage3/last.pt of a "
                             "`make reproduce` run; smoke runs excluded)")
    parser.add_argument("--bbox", default=None, metavar="x,y,w,h",
                        help="person box in pixels (top-left x, y, width, height); applies to every image and frame; "
                             "write --bbox=x,y,w,h when x is negative")
    parser.add_argument("--whole-image", action="store_true",
                        help="the person fills the picture (pre-cropped input): no search")
    parser.add_argument("--all-people", action="store_true",
                        help="images: report every person found, as a `people` list (with --whole-image, "
                             "the one person as a one-entry list)")
    parser.add_argument("--bvh", action="store_true", help="also write BVH motion files (each video and each image)")
    parser.add_argument("--out", action=CommandLinePath, required=True, help="output folder")
    parser.add_argument("--no-flip", action="store_true", help="disable flip testing")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then CPU), cpu, cuda, ...")


def _input_path(text: str) -> str:
    """An INPUT as typed; '' (an unset shell variable, `demo "$PHOTO"`) is an error, not the current folder."""
    if text == "":
        raise argparse.ArgumentTypeError("empty path")
    return text


def _warn(message: str) -> None:
    """One line on stderr; through tqdm.write so an active progress bar is cleared first, not appended to."""
    tqdm.write(f"warning: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every input succeeded, 1 when some did and others were skipped (their outputs are
    written; a script can tell), 2 when none did (one line per failed input)."""
    bbox = parse_bbox(args.bbox)
    for flag, on in (("--whole-image", args.whole_image), ("--all-people", args.all_people)):
        if bbox is not None and on:
            raise Pose3DError(f"--bbox and {flag} both say where the person is: give one of them")
    skipped: list[Path] = []
    left_out: list[Path] = []
    repeated: list[Path] = []
    linked: list[Path] = []
    items = media.collect_inputs(args.inputs, skip=resolve(args.out), skipped=skipped,  # not a previous run's outputs
                                 left_out=left_out, repeated=repeated, linked=linked)
    if repeated:
        _warn(media.describe_repeated(repeated))
    for folder in skipped:
        _warn(f"{folder}: skipped, it holds the outputs of an earlier demo run ({media.OUTPUT_MARKER})")
    if left_out:
        _warn(media.describe_left_out(left_out))
    if linked:
        _warn(media.describe_linked(linked))
    videos = [i.path for i in items if i.kind == "video"]
    if args.all_people and videos:
        _warn(f"--all-people applies to images; a video follows one person: {', '.join(map(str, videos[:3]))}"
              + (f" and {len(videos) - 3} more" if len(videos) > 3 else ""))
    ckpt = resolve(args.checkpoint) if args.checkpoint else default_checkpoint()
    device = resolve_device(args.device, key="--device")
    model, cfg = load_demo_model(ckpt, device)
    print(f"checkpoint {ckpt}: {expectations(cfg)}")
    written = run_inputs(model, cfg, ckpt, items, resolve(args.out), bbox=bbox, whole_image=args.whole_image,
                         all_people=args.all_people, bvh=args.bvh, flip_test=not args.no_flip, device=device)
    return 0 if len(written) == len(items) else 1


def run_inputs(model: torch.nn.Module, cfg: Config, ckpt: str | Path | None, items: list[media.Item], out_dir: Path, *,
               bbox=None, whole_image: bool = False, all_people: bool = False, bvh: bool = False,
               flip_test: bool = True, device: torch.device | None = None,
               quiet: bool = False) -> dict[Path, dict[str, Path]]:
    """Run the demo on images and videos (`media.collect_inputs`), writing everything under `out_dir`.

    `ckpt` is the checkpoint's name as each JSON records it (None: none); a relative one is read from
    the current folder, or, where no such file is there, from the project folder (the notebooks name
    it project-relative, `engine.paths.project_relative`, and run in `notebooks/`).

    A single input's error is raised; with several, a failing one is reported as a warning
    and skipped, and Pose3DError is raised only when none succeeded. Returns the written
    paths per input (printed too, with each input's warnings on stderr, unless `quiet`; the
    warnings are in each JSON either way). A relative `out_dir` is a folder of the current folder,
    as for `open` (the command line's --out is too).
    """
    out_dir = Path(from_current_folder(os.fspath(out_dir)))  # every file below goes to one place
    labels, bundle_dirs = folder_labels(items), bundle_names(items)
    inputs = {folder.resolve(): folder for folder in labels}
    for folder, label in labels.items():  # `demo photos --out .` would write photos/*.json beside the photos
        if (into := inputs.get((resolve(out_dir) / label).resolve())) is not None:
            raise Pose3DError(f"--out {out_dir}: the results of the input folder {folder} would go into the input "
                              f"folder {into} ({Path(out_dir) / label}), and a later run would read them as photos; "
                              "choose another --out")
    for folder in sorted({item.folder for item in items if item.kind == "image" and item.folder is not None}):
        export.check_bundle_folder(out_dir / labels[folder] / bundle_dirs[folder])  # before any work, not after it all
    made = prepare_out(out_dir)
    header = output_header(cfg, ckpt)
    plotlyjs = resolve(out_dir) / "plotly.min.js"  # the pages link to it; written once an input succeeded
    single = len(items) == 1
    used: set[str] = set()
    stems = [output_stem(item, used, labels) for item in items]
    video_bundle = video_bundles(items, stems, labels, bundle_dirs)
    bundles: dict[Path, tuple[list[str], list[dict]]] = {}
    written: dict[Path, dict[str, Path]] = {}
    for index, item in enumerate(progress_bar(items, desc="demo", unit="input", disable=len(items) == 1)):
        stem = stems[index]
        try:
            if item.kind == "video":
                paths = run_video(model, cfg, item.path, out_dir, stem, header=header, bbox=bbox,
                                  whole_image=whole_image, flip_test=flip_test, bvh=bvh, plotlyjs=plotlyjs, device=device,
                                  warn=None if quiet else lambda w, path=item.path: _warn(f"{path}: {w}"),
                                  bundle=video_bundle[index])
            else:
                # a single input has no "demo" bar: its steps show that a large image is being worked on
                paths, result = run_image(model, cfg, item.path, out_dir, stem, header=header, bbox=bbox,
                                          whole_image=whole_image, all_people=all_people, bvh=bvh, flip_test=flip_test,
                                          plotlyjs=plotlyjs, device=device, show_steps=single)
                for w in [] if quiet else result["warnings"][len(header["checkpoint_warnings"]):]:
                    _warn(f"{item.path}: {w}")  # the checkpoint's own warnings were printed once, when it loaded
                if item.folder is not None:
                    names, records = bundles.setdefault(item.folder, ([], []))
                    names.append(item.path.relative_to(item.folder).as_posix())
                    records.append(result)
        except (Pose3DError, OSError) as e:
            if single:
                if not written:
                    remove_empty(made)
                raise
            message = " ".join((describe_os_error(e) if isinstance(e, OSError) else str(e)).split())
            _warn(f"{message if str(item.path) in message else f'{item.path}: {message}'} (skipped)")
            continue
        if not written:
            _shared_plotlyjs(out_dir)  # only now: a run where every input fails leaves no --out behind
        written[item.path] = paths
        if not quiet:
            tqdm.write(f"{item.path}: {', '.join(str(p) for p in paths.values())}")
    for folder, (names, records) in bundles.items():
        bundle = write_people_bundle(out_dir / labels[folder] / bundle_dirs[folder], names, records)
        if not quiet:
            print(f"{folder}: keypoints of {len(names)} image{'s' if len(names) != 1 else ''} in {bundle}")
    if not written:
        remove_empty(made)
        raise Pose3DError(f"none of the {len(items)} inputs could be processed (warnings above)")
    if len(written) < len(items) and not quiet:
        _warn(f"{len(written)} of {len(items)} inputs done, {len(items) - len(written)} skipped (warnings above)")
    return written


def _shared_plotlyjs(out_dir: Path) -> Path:
    from ..plots.viz import write_plotlyjs

    return write_plotlyjs(out_dir)


def notebook_inputs(images: list[str | Path], examples_from: str | Path, examples_dir: str | Path) -> list[media.Item]:
    """Notebook 05's inputs: exactly the listed image paths (FileNotFoundError naming a missing one; the
    rest of their folders is not read; a listed folder is searched), or, when none are listed, example
    images cut from the JPEGs under `examples_from` into `examples_dir` (`make_example_images`), run as
    one folder.

    The notebook shows still pictures and names each result by its file's stem, so a video among the
    inputs, or two pictures with one stem (photo.jpg and photo.png, or a/photo.jpg and b/photo.jpg), is a
    Pose3DError naming the files, before any of them is run."""
    if not isinstance(images, (list, tuple)):  # papermill's -p passes one text, which would be read letter by letter
        raise Pose3DError(f"images: {images!r} is not a list of image paths (with papermill, give a list as YAML: "
                          "-y 'images: [photo.jpg]'; -p passes a string)")
    if images:
        if any(str(p) == "" for p in images):  # as the command line's INPUT: not the project's root folder
            raise Pose3DError(f"images: {images!r} holds an empty path; list image files or folders")
        repeated: list[Path] = []
        items = media.collect_inputs([resolve(p) for p in images], repeated=repeated)
        if repeated:
            _warn(f"images: {media.describe_repeated(repeated)}")
        videos = [str(i.path) for i in items if i.kind == "video"]
        if videos:
            raise Pose3DError(f"images: {', '.join(videos[:3])}{' ...' if len(videos) > 3 else ''} "
                              f"{'is a video' if len(videos) == 1 else 'are videos'}; notebook 05 shows still "
                              "pictures (its own synthetic clip is its video example): run "
                              "`python -m pose3dlib demo VIDEO --checkpoint ...` for a video's poses and 3D animation")
        by_stem: dict[str, list[Path]] = {}
        for i in items:
            by_stem.setdefault(i.path.stem, []).append(i.path)
        shared = [paths for paths in by_stem.values() if len(paths) > 1]
        if shared:
            raise Pose3DError("images: " + "; ".join(" and ".join(map(str, paths)) for paths in shared)
                              + f" share {'a name' if len(shared) == 1 else 'names'} without the suffix; notebook 05 "
                              "names each result by its file's stem, so one would hide the other: rename one "
                              "(or run `python -m pose3dlib demo`, which keeps both)")
        return items
    make_example_images(examples_from, examples_dir)
    return media.collect_inputs([resolve(examples_dir)])


def make_example_images(source_dir: str | Path, out_dir: str | Path, count: int = 3) -> list[Path]:
    """Write demo inputs of varied size and mode from the first JPEGs under `source_dir`.

    Image k is saved as: k % 3 == 0 an RGB JPEG upscaled 1.5x, 1 a grey PNG padded to a
    wide non-square canvas, 2 an RGBA PNG. Returns the written paths (existing ones are
    rewritten identically, so the call is idempotent).
    """
    sources = sorted(resolve(source_dir).rglob("*.jpg"))[:count]
    if not sources:
        raise DataError(f"no .jpg images under {resolve(source_dir)} to make demo inputs from")
    out = resolve(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for k, src in enumerate(sources):
        img = read_image_file(src, cv2.IMREAD_COLOR)  # DataError naming an unreadable file
        if k % 3 == 0:
            path = out / f"example{k}_rgb_large.jpg"
            write_image_file(path, cv2.resize(img, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC))
        elif k % 3 == 1:
            grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            pad = grey.shape[1] // 2
            path = out / f"example{k}_grey_wide.png"
            write_image_file(path, cv2.copyMakeBorder(grey, 0, 0, pad, pad, cv2.BORDER_REPLICATE))
        else:
            rgba = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
            path = out / f"example{k}_rgba.png"
            write_image_file(path, rgba)
        written.append(path)
    return written

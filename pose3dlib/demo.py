"""The in-the-wild demo: 2D and 3D pose of the person in any image.

    python -m pose3dlib demo photo.jpg other.png [--checkpoint CKPT] [--bbox x,y,w,h] --out DIR

For each image it writes `DIR/<stem>.json` (2D joints in original-image pixels, 3D joints
in mm, joint names), `DIR/<stem>_2d.png` (the 2D skeleton drawn over the image) and
`DIR/<stem>_3d.html` (a self-contained interactive plotly skeleton that opens offline).
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import cv2
import numpy as np
import torch

from . import camera, decode, runs
from .checkpoint import bone_sum_mm, load_checkpoint
from .config import Config
from .data.image_file import read_image_file
from .device import resolve_device
from .errors import DataError, Pose3DError
from .evaluate import predict
from .model import load_model
from .paths import resolve
from .skeleton import MPII16

# Training crops show the person's box enlarged by this factor (the 2D hourglass convention:
# the person box is enlarged by 1.25), so a tight --bbox is enlarged the same way.
BOX_MARGIN = 1.25


def read_image_rgb(path: str | Path) -> np.ndarray:
    """Read any JPEG/PNG (RGB, RGBA, grey, 16-bit) as (H, W, 3) uint8 RGB; alpha is dropped."""
    path = Path(path)
    img = read_image_file(path, cv2.IMREAD_UNCHANGED)  # DataError naming the file when missing or damaged
    if img.dtype == np.uint16:
        img = (img / 257.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        raise DataError(f"{path}: unsupported pixel type {img.dtype} (8- or 16-bit images expected)")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    elif img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    else:
        raise DataError(f"{path}: {img.shape[2]} channels; expected grey, RGB or RGBA")
    return np.ascontiguousarray(img)


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


def check_bbox_overlaps(bbox: tuple[float, float, float, float] | None, image_hw: tuple[int, int], path: str | Path) -> None:
    """Raise Pose3DError naming the image when the --bbox box does not overlap it."""
    if bbox is None:
        return
    h, w = image_hw
    x, y, bw, bh = bbox
    if x >= w or y >= h or x + bw <= 0 or y + bh <= 0:
        raise Pose3DError(f"--bbox {x:g},{y:g},{bw:g},{bh:g} lies outside {path} ({w}x{h} px)")


def person_box(image_hw: tuple[int, int], bbox: tuple[float, float, float, float] | None) -> tuple[np.ndarray, float]:
    """(centre (2,), square side px) of the crop: the enlarged box, or the whole image centred."""
    h, w = image_hw
    if bbox is None:
        return np.array([(w - 1) / 2.0, (h - 1) / 2.0]), float(max(h, w))
    x, y, bw, bh = bbox
    return np.array([x + bw / 2.0 - 0.5, y + bh / 2.0 - 0.5]), float(max(bw, bh) * BOX_MARGIN)


@torch.no_grad()
def estimate_pose(model: torch.nn.Module, cfg: Config, image_rgb: np.ndarray, bbox=None, *, scale_mm: float,
                  flip_test: bool = True, device: torch.device | None = None) -> dict:
    """2D (original-image px) and 3D (root-relative mm) joints of the person in one image.

    `scale_mm` is the checkpoint's millimetre scale (pose3dlib.checkpoint.bone_sum_mm), the
    same that evaluation uses.
    """
    device = device or next(model.parameters()).device
    size = cfg.data.input_size
    center, side = person_box(image_rgb.shape[:2], bbox)
    affine = camera.crop_affine(center, side, 0.0, size)
    crop = camera.warp_image(image_rgb, affine, size)
    x = torch.from_numpy(crop).permute(2, 0, 1)[None].contiguous().to(device)  # (1,3,S,S) uint8
    out = predict(model, x, cfg.model.input_format, flip_test=flip_test)
    joints_norm = out["joints_2d"][0].cpu().numpy()  # (16,2)
    crop_px = camera.normalized_to_crop_px(joints_norm, size, cfg.data.heatmap_size)
    joints_img = camera.apply_affine(crop_px, camera.invert_affine(affine))  # (16,2)
    joints_3d = decode.reconstruct_3d(joints_norm[None], out["depth"][0].cpu().numpy()[None], scale_mm)[0]
    return {
        "joint_names": list(MPII16.joint_names),
        "joints_2d_px": np.asarray(joints_img).round(2).tolist(),
        "joints_3d_mm": np.asarray(joints_3d).round(1).tolist(),
        "confidence": out["maxvals"][0].cpu().numpy().round(4).tolist(),
        "box": {"center_px": center.round(2).tolist(), "side_px": round(side, 2),
                "source": "--bbox enlarged by 1.25" if bbox is not None else "whole image, person assumed centred"},
        "scale_convention": f"3D is root-relative (pelvis) and scaled so the 14 bones sum to {scale_mm:.2f} mm (the checkpoint's bone_sum_mm)",
        "image_size_px": list(image_rgb.shape[1::-1]),
    }


def default_checkpoint() -> Path:
    """The newest finished stage-3 checkpoint under runs/ (smoke-profile test runs excluded)."""
    return runs.newest_finished_checkpoint(stage=3)


def write_outputs(result: dict, image_rgb: np.ndarray, out_dir: Path, stem: str) -> dict[str, Path]:
    """Write <stem>.json, <stem>_2d.png and <stem>_3d.html; returns their paths."""
    from .viz import draw_skeleton_2d, skeleton_figure_plotly, write_html

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{stem}.json", "png": out_dir / f"{stem}_2d.png", "html": out_dir / f"{stem}_3d.html"}
    paths["json"].write_text(json.dumps(result, indent=1))
    overlay = draw_skeleton_2d(image_rgb, np.array(result["joints_2d_px"]))
    cv2.imwrite(str(paths["png"]), cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
    write_html(skeleton_figure_plotly(np.array(result["joints_3d_mm"]), title=stem), paths["html"])
    return paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "2D and 3D pose of one person per image, any size and mode (JPEG/PNG; RGB, RGBA, grey). "
        "With --bbox the person is cropped from that box (enlarged by 1.25 as in training); "
        "without it the person is taken as centred in the whole image."
    )
    parser.add_argument("images", nargs="+", help="image files (JPEG or PNG)")
    parser.add_argument("--checkpoint", default=None,
                        help="pose3d checkpoint (default: the newest finished runs/*/stage3/last.pt, smoke runs excluded)")
    parser.add_argument("--bbox", default=None, metavar="x,y,w,h",
                        help="person box in pixels (top-left x, y, width, height); applies to every image")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--no-flip", action="store_true", help="disable flip testing")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then CPU), cpu, cuda, ...")


def run(args: argparse.Namespace) -> int:
    bbox = parse_bbox(args.bbox)
    ckpt = resolve(args.checkpoint) if args.checkpoint else default_checkpoint()
    device = resolve_device(args.device, key="--device")
    checkpoint = load_checkpoint(ckpt, map_location=device)
    model, cfg = load_model(checkpoint, map_location=device)
    scale_mm = bone_sum_mm(checkpoint, str(ckpt))
    model.to(device).eval()
    out_dir = resolve(args.out)
    for image_path in args.images:
        image = read_image_rgb(image_path)
        check_bbox_overlaps(bbox, image.shape[:2], image_path)
        result = estimate_pose(model, cfg, image, bbox, scale_mm=scale_mm, flip_test=not args.no_flip, device=device)
        result["checkpoint"] = str(ckpt)
        paths = write_outputs(result, image, out_dir, Path(image_path).stem)
        print(f"{image_path}: {', '.join(str(p) for p in paths.values())}")
    return 0


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
        img = cv2.imread(str(src), cv2.IMREAD_COLOR)
        if img is None:
            raise DataError(f"{src}: not a readable image")
        if k % 3 == 0:
            path = out / f"example{k}_rgb_large.jpg"
            cv2.imwrite(str(path), cv2.resize(img, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC))
        elif k % 3 == 1:
            grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            pad = grey.shape[1] // 2
            path = out / f"example{k}_grey_wide.png"
            cv2.imwrite(str(path), cv2.copyMakeBorder(grey, 0, 0, pad, pad, cv2.BORDER_REPLICATE))
        else:
            rgba = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
            path = out / f"example{k}_rgba.png"
            cv2.imwrite(str(path), rgba)
        written.append(path)
    return written

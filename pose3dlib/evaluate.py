"""Inference and evaluation: `predict`, per-split/per-action tables under every protocol.

    model, cfg = load_model("runs/cpu/stage3/last.pt")
    out = predict(model, images_uint8, cfg.model.input_format, flip_test=True)

`evaluate_run` scores every stage's checkpoint on every test split (lab test S9/S11 and
wild_test) under every protocol (the paper's evaluator, Protocol #1, Protocol #2,
N-MPJPE), per action and averaged, plus 2D PCKh@0.5 on the MPII-format validation split
and a mean-pose baseline, and writes them in long form
(`stage,split,protocol,action,value`) to a CSV.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from . import decode, metrics
from .config import Config
from .errors import Pose3DError
from .model import load_model, preprocess
from .paths import resolve
from .skeleton import MPII16

PROTOCOLS_3D = ("paper", "p1_mpjpe", "p2_pa_mpjpe", "n_mpjpe")
CSV_COLUMNS = ("stage", "split", "protocol", "action", "value")


def pick_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; any other name is passed to torch.device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor, input_format: str, flip_test: bool = True) -> dict:
    """Run the network on a uint8 RGB batch (B,3,S,S) and decode its outputs.

    Returns a dict of tensors on the images' device:
      heatmaps (B,16,H,H) last stack (flip-averaged with flip_test), joints_hm (B,16,2)
      sub-pixel heatmap px, joints_2d (B,16,2) normalised units, maxvals (B,16),
      depth (B,16) normalised units (flip-averaged with flip_test).
    """
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"predict expects a uint8 (B,3,S,S) RGB batch, got {tuple(images.shape)} {images.dtype}")
    x = preprocess(images, input_format)
    out = model(x)
    heatmaps, depth = out["heatmaps"][-1].float(), out["depth"].float()
    if flip_test:
        out_f = model(torch.flip(x, dims=[3]))
        heatmaps = 0.5 * (heatmaps + decode.flip_back(out_f["heatmaps"][-1].float()))
        depth = 0.5 * (depth + decode.flip_depth(out_f["depth"].float()))
    joints_hm, maxvals = decode.heatmaps_to_joints(heatmaps)
    joints_2d = decode.heatmap_to_normalized(joints_hm, heatmaps.shape[-1])
    return {"heatmaps": heatmaps, "joints_hm": joints_hm, "joints_2d": joints_2d, "maxvals": maxvals, "depth": depth}


@dataclass
class Predictions:
    """Network predictions and ground truth for a whole split (numpy, in sample order)."""

    joints_2d: np.ndarray  # (N,16,2) predicted, normalised crop units
    depth: np.ndarray  # (N,16) predicted, normalised units
    gt_joints_2d: np.ndarray  # (N,16,2) normalised crop units
    gt_joints_3d_mm: np.ndarray  # (N,16,3) root-relative camera frame (zeros without depth)
    valid: np.ndarray  # (N,16) bool
    has_depth: np.ndarray  # (N,) bool
    action: np.ndarray  # (N,) int
    subject: np.ndarray  # (N,) int
    index: np.ndarray  # (N,) int
    crop: np.ndarray  # (N,2,3) image px -> crop px


@torch.no_grad()
def predict_dataset(model: torch.nn.Module, dataset, input_format: str, *, batch_size: int = 32,
                    flip_test: bool = True, device: torch.device | None = None, num_workers: int = 0,
                    limit: int = 0, progress: bool = True, desc: str = "predict") -> Predictions:
    """Predict every sample of `dataset` (first `limit` when > 0) and gather ground truth."""
    device = device or next(model.parameters()).device
    n = len(dataset) if limit <= 0 else min(limit, len(dataset))
    subset = dataset if n == len(dataset) else torch.utils.data.Subset(dataset, range(n))
    loader = DataLoader(subset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    keys = ("joints_2d", "depth", "gt_joints_2d", "gt_joints_3d_mm", "valid", "has_depth", "action", "subject", "index", "crop")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    model.eval()
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
        out = predict(model, batch["image"].to(device), input_format, flip_test=flip_test)
        parts["joints_2d"].append(out["joints_2d"].cpu().numpy())
        parts["depth"].append(out["depth"].cpu().numpy())
        parts["gt_joints_2d"].append(batch["joints_2d"].numpy())
        parts["gt_joints_3d_mm"].append(batch["joints_3d_mm"].numpy())
        for k in ("valid", "has_depth", "action", "subject", "index", "crop"):
            parts[k].append(batch[k].numpy())
    return Predictions(**{k: np.concatenate(v) for k, v in parts.items()})


def scores_3d(pred_mm: np.ndarray, gt_mm: np.ndarray, paper_bone_sum_mm: float) -> dict[str, np.ndarray]:
    """Per-sample errors (mm) under each 3D protocol, keyed by PROTOCOLS_3D.

    pred_mm, gt_mm: (N,16,3) root-relative mm. The paper's evaluator rescales the
    prediction itself (to `paper_bone_sum_mm`), so its input scale does not matter.
    """
    return {
        "paper": metrics.paper_protocol_mpjpe(pred_mm, gt_mm, bone_sum_mm=paper_bone_sum_mm, per_sample=True),
        "p1_mpjpe": metrics.mpjpe(pred_mm, gt_mm, per_sample=True),
        "p2_pa_mpjpe": metrics.pa_mpjpe(pred_mm, gt_mm, per_sample=True),
        "n_mpjpe": metrics.n_mpjpe(pred_mm, gt_mm, per_sample=True),
    }


def per_action_rows(stage: str, split: str, per_sample: dict[str, np.ndarray], action: np.ndarray,
                    action_names: dict[int, str]) -> list[dict]:
    """Long-form rows: each protocol's mean per action, then the average over actions ('all').

    'all' is the mean of the per-action means (the Human3.6M convention: every action
    weighs the same), not the mean over samples.
    """
    rows = []
    actions = sorted(set(int(a) for a in action))
    for protocol, errors in per_sample.items():
        means = []
        for a in actions:
            m = float(np.mean(errors[action == a]))
            means.append(m)
            rows.append(dict(stage=stage, split=split, protocol=protocol, action=action_names.get(a, str(a)), value=m))
        rows.append(dict(stage=stage, split=split, protocol=protocol, action="all", value=float(np.mean(means))))
    return rows


def write_metrics_csv(rows: Iterable[dict], path: str | Path) -> Path:
    """Write long-form metric rows (CSV_COLUMNS) atomically; values rounded to 4 decimals."""
    path = resolve(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        for r in rows:
            v = r["value"]
            w.writerow({**r, "value": "nan" if not math.isfinite(v) else f"{v:.4f}"})
    tmp.replace(path)
    return path


def read_metrics_csv(path: str | Path) -> list[dict]:
    """Read a long-form metrics CSV (values as floats); names the file and column on error."""
    path = resolve(path)
    if not path.is_file():
        raise Pose3DError(f"metrics file not found: {path}")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
            raise Pose3DError(f"{path}: expected columns {','.join(CSV_COLUMNS)}, got {reader.fieldnames}")
        return [{**r, "value": float(r["value"])} for r in reader]


def crop_px_from_normalized(joints_2d_norm: np.ndarray, input_size: int) -> np.ndarray:
    """Normalised crop units (2u/H - 1) -> crop pixels of an `input_size` crop."""
    return (np.asarray(joints_2d_norm) + 1.0) * 0.5 * input_size


def pckh_on_mpii(model, dataset, cfg: Config, device, *, limit: int = 0, progress: bool = True) -> float:
    """PCKh@cfg.eval.pckh_threshold on an MPII-format split, in original-image pixels."""
    pred = predict_dataset(model, dataset, cfg.model.input_format, batch_size=cfg.eval.batch_size,
                           flip_test=cfg.eval.flip_test, device=device, limit=limit, progress=progress,
                           desc="PCKh")
    joints_img = decode.joints_to_image(crop_px_from_normalized(pred.joints_2d, cfg.data.input_size), pred.crop)
    rows = pred.index
    gt_img = dataset.part[rows]  # (N,16,2) original px
    annotated = dataset.annotated[rows]  # (N,16) bool
    head = dataset.normalize[rows]  # (N,)
    return metrics.pckh(joints_img, gt_img, head, annotated, threshold=cfg.eval.pckh_threshold)


def evaluate_3d_split(model, dataset, cfg: Config, device, bone_sum_mm: float, *, stage: str, split: str,
                      action_names: dict[int, str], limit: int = 0, progress: bool = True) -> list[dict]:
    """Long-form rows for one checkpoint on one 3D split under every 3D protocol."""
    pred = predict_dataset(model, dataset, cfg.model.input_format, batch_size=cfg.eval.batch_size,
                           flip_test=cfg.eval.flip_test, device=device, limit=limit, progress=progress,
                           desc=f"{stage}/{split}")
    pred_mm = decode.reconstruct_3d(pred.joints_2d, pred.depth, bone_sum_mm)
    per_sample = scores_3d(pred_mm, pred.gt_joints_3d_mm, cfg.eval.paper_bone_sum_mm)
    return per_action_rows(stage, split, per_sample, pred.action, action_names)


def mean_pose_rows(train_joints_3d_mm: np.ndarray, dataset, cfg: Config, *, split: str,
                   action_names: dict[int, str], limit: int = 0) -> list[dict]:
    """The mean-pose baseline: predict the mean root-relative training pose for every sample."""
    n = len(dataset) if limit <= 0 else min(limit, len(dataset))
    gt = dataset.joints_3d_mm[:n]
    mean_pose = train_joints_3d_mm.mean(axis=0, keepdims=True).repeat(n, axis=0)
    per_sample = scores_3d(mean_pose, gt, cfg.eval.paper_bone_sum_mm)
    return per_action_rows("mean_pose", split, per_sample, dataset.action[:n], action_names)

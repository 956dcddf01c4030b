"""Inference and evaluation: `predict`, per-split/per-action tables under every protocol.

    model, cfg = load_model("runs/cpu/stage3/last.pt")
    out = predict(model, images_uint8, cfg.model.input_format, flip_test=True)

`evaluate_run` scores every stage's checkpoint on every test split (lab test: S9, S11 and any
further synthetic test people; wild_test) under every protocol (the paper's evaluator, Protocol #1, Protocol #2,
N-MPJPE), per action and averaged, plus 2D PCKh@0.5 on the MPII-format validation split
and a mean-pose baseline (on a converted MPI-INF-3DHP set, also the official 3DPCK/AUC per
scene: `eval_3dhp`, for the baseline too), and writes them in long form
(`stage,split,protocol,action,value`) to a CSV: errors in mm, PCKh, 3DPCK and AUC as fractions
in [0, 1] (`is_fraction`; tables and figures show those in percent).

What comes from where: the network and its input geometry (data.input_size,
data.heatmap_size, model.input_format) and the millimetre scale (`bone_sum_mm`) come from
each checkpoint; the evaluation options (`eval.*`) and the data locations (`data.*_dir`)
come from the evaluation's own config and overrides, so one checkpoint can be scored with
other options or on another dataset. With `eval.bone_prior` (off by default; not in the paper)
every 3D reconstruction's depth is first corrected toward the bone proportions of the training
skeletons of the evaluation's `data.h36m_dir` (`reconstruct`, `bone_prior.bone_prior_depth`).
PROTOCOLS lists every protocol the evaluator writes, in table order, with its label; the README
table (pose3dlib.evaluation.report) is built from it.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from .. import camera, decode, metrics
from ..config import Config, DataConfig, EvalConfig, comma_items, config_from_dict, override_keys
from ..engine import runs
from ..engine.atomic_io import atomic_write, describe_os_error, probe_writable
from ..engine.checkpoint import bone_sum_mm as checkpoint_bone_sum_mm
from ..engine.checkpoint import is_finished, load_checkpoint, unfinished_note
from ..engine.device import resolve_device
from ..engine.errors import CheckpointError, Pose3DError
from ..engine.paths import CommandLinePath, refuse_overwriting_an_input, resolve
from ..engine.progress import progress_bar
from ..model import is_channels_last, load_model, preprocess
from ..skeleton import PCKH_BENCHMARK_JOINTS
from . import bone_prior
from .eval_3dhp import LABELS as LABELS_3DHP
from .eval_3dhp import PROTOCOLS as PROTOCOLS_3DHP
from .eval_3dhp import mpi3dhp_rows, mpi3dhp_tables

PROTOCOLS_3D = ("paper", "p1_mpjpe", "p2_pa_mpjpe", "n_mpjpe")
GT2D_PROTOCOL = "p1_mpjpe_gt2d"  # Protocol #1 of ground-truth 2D + predicted depth
MEAN_POSE = "mean_pose"  # the stage label of the mean-pose baseline's rows (no network, so no GT2D_PROTOCOL)
# the 3D test splits and the data config key of each one's folder (its "test" split is scored)
TEST_SPLIT_DIRS = {"lab_test": "h36m_dir", "wild_test": "wild_test_dir"}
# The data.* keys an evaluation reads (where the scored sets and their files are): what an
# evaluation-only sweep may change.
EVALUATION_DATA_KEYS = (*TEST_SPLIT_DIRS.values(), "mpii_dir", "h36m_annotation_file", "image_dir")
PCKH_PREFIX = "pckh@"  # PCKh rows are labelled pckh@<threshold>, e.g. pckh@0.5
# Every protocol the evaluator writes, in the order of the README table, with its column label.
PROTOCOLS: dict[str, str] = {
    "paper": "paper evaluator (mm)",
    "p1_mpjpe": "Protocol #1 MPJPE (mm)",
    "p2_pa_mpjpe": "Protocol #2 PA-MPJPE (mm)",
    "n_mpjpe": "N-MPJPE (mm)",
    GT2D_PROTOCOL: "Protocol #1 with GT 2D (mm)",
    PCKH_PREFIX: "PCKh@{threshold} (MPII val)",
    **LABELS_3DHP,  # a converted MPI-INF-3DHP wild_test adds the official protocol (fractions, shown in percent)
}
CSV_COLUMNS = ("stage", "split", "protocol", "action", "value")
OTHER_CSV_NAME = "metrics_other.csv"  # the default CSV of any scoring but the run's full one (`default_csv`)


def pckh_protocol(threshold: float) -> str:
    """The protocol label of a PCKh row: 'pckh@0.5' for threshold 0.5 (the value's own threshold)."""
    return f"{PCKH_PREFIX}{threshold:g}"


def protocol_key(protocol: str) -> str:
    """The PROTOCOLS entry a row's protocol belongs to ('pckh@0.5' -> 'pckh@'); Pose3DError if none."""
    key = PCKH_PREFIX if protocol.startswith(PCKH_PREFIX) else protocol
    if key not in PROTOCOLS:
        raise Pose3DError(f"protocol {protocol!r} is not one of the evaluator's ({', '.join(PROTOCOLS)})")
    return key


def protocol_label(protocol: str) -> str:
    """Column label of a protocol ('pckh@0.2' -> 'PCKh@0.2 (MPII val)')."""
    key = protocol_key(protocol)
    return PROTOCOLS[key].format(threshold=protocol[len(PCKH_PREFIX):]) if key == PCKH_PREFIX else PROTOCOLS[key]


def is_fraction(protocol: str) -> bool:
    """True for protocols whose value is a fraction in [0, 1] (PCKh, MPI-INF-3DHP's 3DPCK and AUC),
    False for errors in mm."""
    return protocol_key(protocol) == PCKH_PREFIX or protocol in LABELS_3DHP


# Layers that compute otherwise in training mode (a network without them predicts the same in either)
TRAIN_MODE_LAYERS = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.modules.dropout._DropoutNd)


@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor, input_format: str, flip_test: bool = True,
            subpixel: str = "quarter") -> dict:
    """Run the network on a uint8 RGB batch (B,3,S,S) and decode its outputs.

    Returns a dict of tensors on the images' device:
      heatmaps (B,16,H,H) last stack (flip-averaged with flip_test), joints_hm (B,16,2)
      sub-pixel heatmap px (decode.heatmaps_to_joints with `subpixel`), joints_2d (B,16,2) normalised units, maxvals (B,16),
      depth (B,16) normalised units (flip-averaged with flip_test).
    """
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"predict expects a uint8 (B,3,S,S) RGB batch, got {tuple(images.shape)} {images.dtype}")
    if any(m.training for m in model.modules() if isinstance(m, TRAIN_MODE_LAYERS)):
        raise ValueError("predict needs the network in eval mode (model.eval()); it is in training mode, where "
                         "BatchNorm would use each batch's statistics and update its running ones")
    fmt = torch.channels_last if is_channels_last(model) else torch.contiguous_format  # as the weights
    x = preprocess(images, input_format)
    out = model(x.contiguous(memory_format=fmt))
    heatmaps, depth = out["heatmaps"][-1].float(), out["depth"].float()
    if flip_test:
        out_f = model(torch.flip(x, dims=[3]).contiguous(memory_format=fmt))
        heatmaps = 0.5 * (heatmaps + decode.flip_back(out_f["heatmaps"][-1].float()))
        depth = 0.5 * (depth + decode.flip_back_depth(out_f["depth"].float()))
    joints_hm, maxvals = decode.heatmaps_to_joints(heatmaps, subpixel)
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
                    flip_test: bool = True, subpixel: str = "quarter", device: torch.device | None = None,
                    num_workers: int = 0, recrop_margin: float = 0.0, recrop_max_fill: float = 0.0,
                    limit: int = 0, progress: bool = True, desc: str = "predict") -> Predictions:
    """Predict every sample of `dataset` (first `limit` when > 0) and gather ground truth.

    `recrop_margin` > 0 adds a second pass: a sample is cropped again from its image
    around the joints the first pass found (`camera.box_around` with that margin, the
    dataset's `sample_at`), and the second pass's predictions, crop and 2D ground truth
    replace the first's. The first pass sees the split's own crop (a whole picture in the
    wild). With `recrop_max_fill` > 0 only the samples whose found joints span at most
    that fraction of the first crop's side (`crop_fill`) get the second pass.
    """
    if recrop_margin > 0 and not hasattr(dataset, "sample_at"):
        raise Pose3DError(f"eval.recrop_margin > 0 needs a dataset with sample_at(i, centre, box_px); "
                          f"{type(dataset).__name__} has none")
    device = device or next(model.parameters()).device
    n = len(dataset) if limit <= 0 else min(limit, len(dataset))
    subset = dataset if n == len(dataset) else torch.utils.data.Subset(dataset, range(n))
    pred = _predict_loader(model, DataLoader(subset, batch_size=batch_size, shuffle=False, num_workers=num_workers),
                           input_format, flip_test, subpixel, device, progress, desc)
    if recrop_margin > 0:
        found = joints_in_image(pred, dataset.cfg)
        chosen = np.arange(n)
        if recrop_max_fill > 0:
            chosen = np.flatnonzero(crop_fill(found, pred.crop, dataset.cfg.input_size) <= recrop_max_fill)
        if len(chosen):
            centres, sides = camera.box_around(found[chosen], recrop_margin)
            second = _predict_loader(model, DataLoader(_Recropped(dataset, chosen, centres, sides), batch_size=batch_size,
                                                       shuffle=False, num_workers=num_workers),
                                     input_format, flip_test, subpixel, device, progress, f"{desc} (second pass)")
            for f in dataclasses.fields(Predictions):
                getattr(pred, f.name)[chosen] = getattr(second, f.name)
    return pred


def crop_fill(joints_px: np.ndarray, crop: np.ndarray, input_size: int) -> np.ndarray:
    """How much of its crop a person fills: the joints' larger extent / the crop's side, (N,).

    joints_px: (N, J, 2) image pixels; crop: (N, 2, 3) image px -> crop px affines of square
    `input_size` crops (no rotation at evaluation). 1 means the joints span the whole crop.
    """
    crop = np.asarray(crop, np.float64)
    _, extent_px = camera.box_around(joints_px, 1.0)  # the side of a margin-1 box is the larger extent
    crop_px_per_image_px = np.sqrt(np.abs(np.linalg.det(crop[:, :, :2])))
    return extent_px * crop_px_per_image_px / input_size


class _Recropped(torch.utils.data.Dataset):
    """Samples `rows` of a dataset cropped at the given square boxes (image px), in that order."""

    def __init__(self, dataset, rows: np.ndarray, centres: np.ndarray, sides: np.ndarray):
        self.dataset, self.rows, self.centres, self.sides = dataset, rows, centres, sides

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, k: int) -> dict:
        return self.dataset.sample_at(int(self.rows[k]), self.centres[k], float(self.sides[k]))


def joints_in_image(pred: Predictions, data_cfg: DataConfig) -> np.ndarray:
    """The predicted 2D joints (N, 16, 2) in original-image pixels (through each sample's crop)."""
    crop_px = camera.normalized_to_crop_px(pred.joints_2d, data_cfg.input_size, data_cfg.heatmap_size)
    return decode.joints_to_image(crop_px, pred.crop)


def _predict_loader(model, loader, input_format: str, flip_test: bool, subpixel: str, device, progress: bool,
                    desc: str) -> Predictions:
    """One pass of `predict` over a loader of samples, gathered with their ground truth in sample order."""
    keys = ("joints_2d", "depth", "gt_joints_2d", "gt_joints_3d_mm", "valid", "has_depth", "action", "subject", "index", "crop")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    model.eval()
    for batch in progress_bar(loader, desc=desc, disable=not progress, leave=False):
        out = predict(model, batch["image"].to(device), input_format, flip_test=flip_test, subpixel=subpixel)
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
        "paper": metrics.paper_protocol_mpjpe_per_sample(pred_mm, gt_mm, bone_sum_mm=paper_bone_sum_mm),
        "p1_mpjpe": metrics.mpjpe_per_sample(pred_mm, gt_mm),
        "p2_pa_mpjpe": metrics.pa_mpjpe_per_sample(pred_mm, gt_mm),
        "n_mpjpe": metrics.n_mpjpe_per_sample(pred_mm, gt_mm),
    }


def per_action_rows(stage: str, split: str, per_sample: dict[str, np.ndarray], action: np.ndarray,
                    action_names: dict[int, str]) -> list[dict]:
    """Long-form rows: each protocol's mean per action, then the average over actions ('all').

    'all' is the mean of the per-action means (the Human3.6M convention: every action
    weighs the same), not the mean over samples.
    """
    rows = []
    actions = sorted({int(a) for a in action})
    for protocol, errors in per_sample.items():
        means = []
        for a in actions:
            m = float(np.mean(errors[action == a]))
            means.append(m)
            rows.append({"stage": stage, "split": split, "protocol": protocol, "action": action_names.get(a, str(a)), "value": m})
        rows.append({"stage": stage, "split": split, "protocol": protocol, "action": "all", "value": float(np.mean(means))})
    return rows


def write_metrics_csv(rows: Iterable[dict], path: str | Path) -> Path:
    """Write long-form metric rows (CSV_COLUMNS) atomically; values rounded to 4 decimals."""
    def write(f) -> None:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        for r in rows:
            v = r["value"]
            w.writerow({**r, "value": "nan" if not math.isfinite(v) else f"{v:.4f}"})

    return atomic_write(resolve(path), write)


def read_metrics_csv(path: str | Path) -> list[dict]:
    """Read a long-form metrics CSV (values as floats); names the file and column on error."""
    path = resolve(path)
    if not path.is_file():
        raise Pose3DError(f"metrics file not found: {path}")
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
                raise Pose3DError(f"{path}: expected columns {','.join(CSV_COLUMNS)}, got {reader.fieldnames}")
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as e:
        raise Pose3DError(f"{path}: not a readable CSV text file ({e})") from None
    if not rows:
        raise Pose3DError(f"{path}: holds the header but no rows; evaluate the run to write it")
    for line, r in enumerate(rows, start=2):
        try:
            r["value"] = float(r["value"])
        except (TypeError, ValueError):
            raise Pose3DError(f"{path}: line {line}: column 'value' is {r['value']!r}, expected a number") from None
        if math.isinf(r["value"]) or r["value"] < 0:  # errors, PCKh and AUC are >= 0; evaluate writes no inf
            raise Pose3DError(f"{path}: line {line}: column 'value' is {r['value']:g}, expected a number >= 0 "
                              "(or nan, which evaluate writes for a non-finite score)")
        if r["protocol"] in PROTOCOLS_3DHP and r["value"] > 1:  # is_fraction's other protocols: PCKh, always [0, 1]
            raise Pose3DError(f"{path}: line {line}: {r['protocol']} is {r['value']:g}, expected a fraction in [0, 1] "
                              "(a file written in percent by an older pose3d: evaluate the run again)")
    return rows


def predict_split(model, dataset, eval_cfg: EvalConfig, input_format: str, device, *, limit: int = 0,
                  progress: bool = True, desc: str = "predict") -> Predictions:
    """`predict_dataset` with every prediction setting taken from `eval_cfg` (the one place they are read)."""
    return predict_dataset(model, dataset, input_format, batch_size=eval_cfg.batch_size,
                           flip_test=eval_cfg.flip_test, subpixel=eval_cfg.subpixel, device=device, limit=limit,
                           recrop_margin=eval_cfg.recrop_margin, recrop_max_fill=eval_cfg.recrop_max_fill,
                           progress=progress, desc=desc)


def mpii_predictions(model, dataset, eval_cfg: EvalConfig, input_format: str, device, *, limit: int = 0,
                     progress: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(predicted joints (N,16,2), ground truth (N,16,2), head sizes (N,), annotated (N,16)) on an
    MPII-format split, in original-image pixels: the arguments of `metrics.pckh`."""
    pred = predict_split(model, dataset, eval_cfg, input_format, device, limit=limit, progress=progress, desc="PCKh")
    rows = pred.index
    return joints_in_image(pred, dataset.cfg), dataset.part[rows], dataset.normalize[rows], dataset.annotated[rows]


@dataclass(frozen=True)
class JointPCKh:
    """One checkpoint's PCKh on the MPII-format validation split, per joint and pooled two ways."""

    per_joint: np.ndarray  # (16,) fractions, MPII16 order; NaN for a joint never annotated
    all_joints: float  # pooled over all 16 joints: the pckh@<threshold> value of metrics.csv
    benchmark: float  # pooled over skeleton.PCKH_BENCHMARK_JOINTS (no pelvis, no thorax): the MPII benchmark's mean


def pckh_on_mpii(model, dataset, eval_cfg: EvalConfig, input_format: str, device, *, limit: int = 0,
                 progress: bool = True) -> JointPCKh:
    """PCKh@eval_cfg.pckh_threshold on an MPII-format split, in original-image pixels: per joint, over
    all 16 joints, and over the MPII benchmark's 14 (no pelvis, no thorax)."""
    args = mpii_predictions(model, dataset, eval_cfg, input_format, device, limit=limit, progress=progress)
    t = eval_cfg.pckh_threshold
    return JointPCKh(per_joint=metrics.pckh_per_joint(*args, threshold=t), all_joints=metrics.pckh(*args, threshold=t),
                     benchmark=metrics.pckh(*args, threshold=t, joints=PCKH_BENCHMARK_JOINTS))


def reconstruct(joints_2d: np.ndarray, depth: np.ndarray, bone_sum_mm: float, eval_cfg: EvalConfig,
                bone_lengths: np.ndarray | None = None) -> np.ndarray:
    """2D + depth -> (N, 16, 3) mm as evaluation scores it: `decode.reconstruct_3d`, the depth first
    corrected by `bone_prior.bone_prior_depth` when `eval_cfg.bone_prior` is on (`bone_lengths`: the prior's
    (14,) edge lengths, `bone_prior.mean_bone_lengths` of the training skeletons; required then)."""
    if eval_cfg.bone_prior:
        if bone_lengths is None:
            raise Pose3DError("eval.bone_prior is on but no bone lengths were given for its prior "
                              "(bone_prior.mean_bone_lengths of the Human3.6M-format training skeletons)")
        depth = bone_prior.bone_prior_depth(joints_2d, depth, bone_lengths, scale_penalty=eval_cfg.bone_prior_scale_penalty,
                                            blend=eval_cfg.bone_prior_blend)
    return decode.reconstruct_3d(joints_2d, depth, bone_sum_mm)


def evaluate_3d_split(model, dataset, eval_cfg: EvalConfig, input_format: str, device, bone_sum_mm: float, *,
                      stage: str, split: str, action_names: dict[int, str], limit: int = 0,
                      progress: bool = True, bone_lengths: np.ndarray | None = None) -> list[dict]:
    """Long-form rows for one checkpoint on one 3D split under every 3D protocol.

    Besides PROTOCOLS_3D on the full prediction (predicted 2D + predicted depth), it adds
    `p1_mpjpe_gt2d`: Protocol #1 of ground-truth 2D + predicted depth, which isolates the
    depth branch from 2D errors. Training validation's `mpjpe_mm` is related but lower: it scales each
    sample to its own true bone sum (engine.validation), this one to the checkpoint's. `bone_sum_mm`
    is the checkpoint's millimetre scale (pose3dlib.engine.checkpoint.bone_sum_mm). With
    `eval_cfg.bone_prior` the depth is corrected with `reconstruct`'s prior, `bone_lengths` (14,).
    """
    pred = predict_split(model, dataset, eval_cfg, input_format, device, limit=limit, progress=progress,
                         desc=f"{stage}/{split}")
    pred_mm = reconstruct(pred.joints_2d, pred.depth, bone_sum_mm, eval_cfg, bone_lengths)
    per_sample = scores_3d(pred_mm, pred.gt_joints_3d_mm, eval_cfg.paper_bone_sum_mm)
    gt2d_mm = reconstruct(pred.gt_joints_2d, pred.depth, bone_sum_mm, eval_cfg, bone_lengths)
    per_sample[GT2D_PROTOCOL] = metrics.mpjpe_per_sample(gt2d_mm, pred.gt_joints_3d_mm)
    rows = per_action_rows(stage, split, per_sample, pred.action, action_names)
    if getattr(dataset, "sequences", None) is not None:  # a converted MPI-INF-3DHP test set
        rows += mpi3dhp_rows(stage, split, pred_mm, pred.gt_joints_3d_mm, dataset.sequences[:len(pred_mm)],
                             activity=pred.action)
    return rows


def mean_pose_prediction(train_joints_3d_mm: np.ndarray, n: int) -> np.ndarray:
    """The mean-pose baseline's prediction for n samples: the mean root-relative training pose, (n, 16, 3) mm."""
    return train_joints_3d_mm.mean(axis=0, keepdims=True).repeat(n, axis=0)


def mean_pose_rows(train_joints_3d_mm: np.ndarray, dataset, eval_cfg: EvalConfig, *, split: str,
                   action_names: dict[int, str], limit: int = 0) -> list[dict]:
    """The mean-pose baseline: predict the mean root-relative training pose for every sample; on a
    converted MPI-INF-3DHP test set (a dataset with `sequences`) also its official 3DPCK/AUC rows."""
    n = len(dataset) if limit <= 0 else min(limit, len(dataset))
    gt = dataset.joints_3d_mm[:n]
    pred = mean_pose_prediction(train_joints_3d_mm, n)
    per_sample = scores_3d(pred, gt, eval_cfg.paper_bone_sum_mm)
    rows = per_action_rows(MEAN_POSE, split, per_sample, dataset.actions[:n], action_names)
    if getattr(dataset, "sequences", None) is not None:
        rows += mpi3dhp_rows(MEAN_POSE, split, pred, gt, dataset.sequences[:n], activity=dataset.actions[:n])
    return rows


def load_stage(run_dir: str | Path, stage: int, device: torch.device) -> tuple[torch.nn.Module, Config, float]:
    """(network in eval mode on `device`, the config it was trained with, its mm scale) of a run's stage checkpoint."""
    path = runs.checkpoint_path(run_dir, stage)
    ckpt = load_checkpoint(path, map_location=device)
    if ckpt.get("stage") in runs.STAGES and ckpt["stage"] != stage:  # stage 0: a converted release model
        raise CheckpointError(f"{path}: holds a Stage {ckpt['stage']} checkpoint, not Stage {stage} (copied or "
                              f"renamed?); each stage is scored from its own folder, stage{stage}/")
    model, trained = load_model(ckpt, map_location=device)
    scale_mm = checkpoint_bone_sum_mm(ckpt, str(path))
    return model.to(device).eval(), trained, scale_mm


GEOMETRY_KEYS = ("input_size", "heatmap_size")  # the data.* keys each checkpoint brings (its input geometry)


def checkpoint_geometry(data_cfg: DataConfig, trained: Config) -> DataConfig:
    """The evaluation's data config (its locations) with the input geometry the checkpoint was trained at."""
    return dataclasses.replace(data_cfg, **{k: getattr(trained.data, k) for k in GEOMETRY_KEYS})


def check_stage_checkpoints(run_dir: str | Path, stages: list[int]) -> None:
    """CheckpointError before any test set is read when a stage to score has no checkpoint in `run_dir`, naming it
    and the stages the folder does hold (a converted release model is one stage 3: `--stages 3`)."""
    missing = [s for s in stages if not runs.checkpoint_path(run_dir, s).is_file()]
    if not missing:
        return
    present = [s for s in runs.STAGES if runs.checkpoint_path(run_dir, s).is_file()]
    held = ",".join(map(str, present))
    hint = (f"; it holds stage{'s' if len(present) > 1 else ''} {held}: score those with --stages {held} "
            f"(notebook 06: stages=[{held}])" if present else "; train it first (make reproduce, or train --stage N)")
    raise CheckpointError(f"checkpoint not found: {runs.checkpoint_path(run_dir, missing[0])}{hint}")


def evaluate_run(cfg: Config, run_dir: str | Path, *, stages: Iterable[int] = runs.STAGES, limit: int = 0,
                 device: str | None = None, progress: bool = True,
                 by_joint: dict[str, JointPCKh] | None = None) -> list[dict]:
    """Score every stage checkpoint of a run on lab test, wild_test and MPII val.

    Returns long-form rows (CSV_COLUMNS): 3D protocols per action and 'all' for each
    stage and the mean-pose baseline on both 3D splits, and PCKh ('pckh@<threshold>', a
    fraction, action 'all') on the MPII-format validation split. `cfg` supplies `eval.*`
    and the data locations; each checkpoint its network, input geometry and mm scale
    (see the module docstring). `limit` > 0 scores only the first `limit` samples of
    each split (smoke runs). A `by_joint` dict is filled with each stage's PCKh per joint and
    over the MPII benchmark's joints (key: stage name), from the same predictions as its row.
    """
    from ..data.actions import action_names_for
    from ..data.h36m import H36MDataset
    from ..data.locations import require_sets
    from ..data.mpii import MPIIDataset
    from ..synthetic.generator import check_not_stale

    check_limit(limit, "limit")  # notebook 06's `limit` comes here without the command line's check
    runs.check_run_dir_profile(cfg.profile, run_dir)
    stages = stages if isinstance(stages, (str, int, float)) else list(stages)  # a range, a generator: their stages
    check_stages(stages)  # and its `stages` without parse_stages
    require_sets(cfg.data, (*TEST_SPLIT_DIRS.values(), "mpii_dir"), mpii_splits=("val",))
    check_not_stale(cfg.data.h36m_dir, cfg.data.wild_test_dir, cfg.data.mpii_dir, synthetic=cfg.synthetic)
    check_stage_checkpoints(run_dir, stages)  # after the data's checks (which name the key to set), before any is read
    dev = resolve_device(device or cfg.train.device)
    train_3d = H36MDataset(cfg.data.h36m_dir, "train", cfg.data)
    bone_lengths = bone_prior.mean_bone_lengths(train_3d.joints_3d_mm) if cfg.eval.bone_prior else None
    rows: list[dict] = []
    noted = False
    for split, key in TEST_SPLIT_DIRS.items():
        test = H36MDataset(getattr(cfg.data, key), "test", cfg.data)
        rows += mean_pose_rows(train_3d.joints_3d_mm, test, cfg.eval, split=split,
                               action_names=action_names_for(test), limit=limit)
    for stage in stages:
        model, trained, scale_mm = load_stage(run_dir, stage, dev)
        if trained.profile != cfg.profile and not noted:
            noted = True  # once per run
            path = runs.checkpoint_path(run_dir, stage)
            print(f"note: {path} was trained with the {trained.profile!r} profile, the config is {cfg.profile!r}: "
                  "the network and input size come from the checkpoint, the data and eval.* settings from the "
                  "config", file=sys.stderr)
        data = checkpoint_geometry(cfg.data, trained)
        fmt = trained.model.input_format
        for split, key in TEST_SPLIT_DIRS.items():
            test = H36MDataset(getattr(data, key), "test", data)
            rows += evaluate_3d_split(model, test, cfg.eval, fmt, dev, scale_mm, stage=runs.stage_name(stage),
                                      split=split, action_names=action_names_for(test), limit=limit,
                                      progress=progress, bone_lengths=bone_lengths)
        p = pckh_on_mpii(model, MPIIDataset(data.mpii_dir, "val", data), cfg.eval, fmt, dev, limit=limit,
                         progress=progress)
        if by_joint is not None:
            by_joint[runs.stage_name(stage)] = p
        rows.append({"stage": runs.stage_name(stage), "split": "mpii_val", "protocol": pckh_protocol(cfg.eval.pckh_threshold),
                         "action": "all", "value": p.all_joints})
    return rows


def add_arguments(parser) -> None:
    parser.add_argument("--config", action=CommandLinePath, required=True, help="YAML config (e.g. configs/cpu.yaml)")
    parser.add_argument("--run-dir", action=CommandLinePath, required=True, help="run folder holding stage1/ stage2/ stage3/")
    parser.add_argument("--stages", default="1,2,3", help="comma-separated stages to evaluate (default: 1,2,3, every stage)")
    parser.add_argument("--out", action=CommandLinePath, default=None,
                        help=f"metrics CSV (default <run-dir>/metrics.csv for the run's full scoring; with --stages short "
                             f"of 1,2,3, --limit, other data than the run was trained with or an unfinished stage: "
                             f"<run-dir>/{OTHER_CSV_NAME}, "
                             "so it never replaces the full one)")
    parser.add_argument("--limit", type=int, default=0,
                        help="score only the first N samples of each split (default 0: every sample)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. eval.flip_test=false (repeatable)")


def parse_stages(text: str) -> list[int]:
    """'1,2,3' -> [1, 2, 3]; Pose3DError naming --stages unless each item is 1, 2 or 3, each at most once
    (`check_stages`)."""
    items = [s.strip() for s in comma_items(text, "--stages", "1,2,3")]
    if not items or any(s not in ("1", "2", "3") for s in items):
        raise Pose3DError(f"--stages {text!r}: expected a comma-separated list of 1, 2, 3")
    stages = [int(s) for s in items]
    check_stages(stages, f"--stages {text!r}")
    return stages


def check_stages(stages: list[int], given: str = "stages") -> None:
    """Pose3DError unless each stage is 1, 2 or 3 and named at most once (a repeated stage would be scored
    twice and its rows written twice, which no table reads); `given` names the setting in the message. A value
    that is not a list of whole numbers (papermill's `-p stages "[3]"` passes the string) is refused, saying how."""
    if not isinstance(stages, (list, tuple)) or not all(isinstance(s, int) and not isinstance(s, bool) for s in stages):
        raise Pose3DError(f"{given}: {stages!r} is not a list of stages such as [1, 2, 3] (with papermill, give a list "
                          "as YAML: -y 'stages: [3]'; -p passes a string or a number)")
    if unknown := [s for s in stages if s not in runs.STAGES]:
        raise Pose3DError(f"{given}: stage {', '.join(map(str, unknown))} is not 1, 2 or 3")
    if repeated := sorted({s for s in stages if stages.count(s) > 1}):
        raise Pose3DError(f"{given}: stage {', '.join(map(str, repeated))} given more than once; "
                          "name each stage at most once")


def check_limit(limit: int, given: str = "--limit") -> None:
    """Pose3DError for a --limit (notebook 06: `limit`) that is negative or not a whole number (0 scores every sample)."""
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise Pose3DError(f"{given} {limit!r}: expected 0 (every sample) or a positive whole number")


# Keys each checkpoint decides for itself (module docstring): an `evaluate --set` of one would be ignored.
# train.device is the evaluation's own: where it runs.
CHECKPOINT_KEYS = ("model.", "train.", *(f"data.{k}" for k in GEOMETRY_KEYS))
EVALUATION_KEYS = ("train.device",)


def check_overrides(overrides: list[str]) -> None:
    """Pose3DError naming an --set override of a key the checkpoints decide (CHECKPOINT_KEYS), which
    evaluate would otherwise ignore without a word."""
    for item in overrides:
        for key in override_keys(item):  # a section's mapping (--set 'model={num_features: 32}') key by key
            if key.startswith(CHECKPOINT_KEYS) and key not in EVALUATION_KEYS:
                raise Pose3DError(f"--set {item}: each checkpoint decides {key} (the network, its training and its "
                                  "input geometry come from the checkpoint); evaluate takes eval.* options, data "
                                  "locations (data.*_dir) and train.device")


def other_data(cfg: Config, run_dir, stage3: dict | None = None) -> list[str]:
    """The data folders (`data.*_dir`) of `cfg` that differ from those the run's Stage 3 was trained
    with (its checkpoint's config), as 'data.key=folder' texts, and the run's own folders that hold other
    data now than it was trained on (regenerated with another seed or sizes, a download converted
    again: `runs.data_changes`, whose sets' test splits are other people too); [] when they are the run's own.
    `stage3`: that checkpoint where the caller has read it already."""
    from ..synthetic.generator import DATA_KEYS, data_folders

    ckpt = stage3 if stage3 is not None else load_checkpoint(runs.checkpoint_path(run_dir, 3))
    mine, trained = data_folders(cfg.data), data_folders(config_from_dict(ckpt["config"]).data)
    moved = [f"data.{k}={getattr(cfg.data, k)}" for k in DATA_KEYS if mine.get(k) != trained.get(k)]
    return moved or runs.data_changes(ckpt, cfg)


def unfinished_stages(checkpoints: dict[int, dict]) -> list[str]:
    """'stage N unfinished: ...' for each {stage: checkpoint} that stopped before its last epoch (an
    interrupted or crashed training): a partly trained network is not the run's result."""
    return [f"stage {stage} unfinished: it {unfinished_note(ckpt)} (finish it with train --resume)"
            for stage, ckpt in checkpoints.items() if not is_finished(ckpt)]


def other_scoring(stages: list[int], limit: int, cfg: Config | None = None, run_dir=None) -> list[str]:
    """Why a scoring is not the run's full one, in words ([] when it is): fewer stages, a limit, given
    `run_dir` a stage whose checkpoint is unfinished (`unfinished_stages`), or, given `cfg` too, other
    data than the run was trained with (`other_data`). Evaluation options (`eval.*`) and the device are
    the evaluation's own choice and keep it the run's scoring.
    Notebook 06 asks this first: its `stages` and `limit` are checked here (`check_stages`, `check_limit`)."""
    check_stages(stages)
    check_limit(limit, "limit")
    reasons = [f"stages {','.join(map(str, stages))}"] if sorted(set(stages)) != [1, 2, 3] else []
    if limit > 0:
        reasons.append(f"the first {limit} samples of each split")
    checkpoints = {}  # each read once, for both questions
    if run_dir is not None:
        checkpoints = {s: load_checkpoint(path) for s in stages if (path := runs.checkpoint_path(run_dir, s)).is_file()}
        reasons += unfinished_stages(checkpoints)
    # other_data reads Stage 3's config: without a Stage 3 the question waits for evaluate_run, whose
    # check_stage_checkpoints names the stages the folder holds (notebook 06 asks here first)
    stage3_there = run_dir is None or runs.checkpoint_path(run_dir, 3).is_file()
    if not reasons and cfg is not None and stage3_there and (changed := other_data(cfg, run_dir, checkpoints.get(3))):
        reasons.append("other data than the run's (" + ", ".join(changed) + ")")
    return reasons


def default_csv(run_dir, stages: list[int], limit: int, cfg: Config | None = None) -> Path:
    """Where an evaluation writes without an explicit file: `<run-dir>/metrics.csv` for the run's full
    scoring (every stage and sample, on the data its Stage 3 was trained with when `cfg` is given),
    else `<run-dir>/metrics_other.csv`, so a quick look or a check on other data never replaces the
    table that `report` and `unseen-check` read."""
    return _csv_for(run_dir, other_scoring(stages, limit, cfg, run_dir))


OTHER_FIGURES = "other"  # the subfolder of the figures folder where the figures of any other scoring go


def figures_for(run_dir, figures_dir, out_csv) -> str:
    """Where notebook 06 draws a scoring written to `out_csv`: the figures folder (`runs.figures_path`)
    for the run's own metrics.csv, its `other/` subfolder for any other file (a quick look with a
    limit, fewer stages, other data, a CSV of one's own), so that, like metrics.csv, the run's figures
    are never replaced by those of a partial scoring."""
    folder = runs.figures_path(run_dir, figures_dir)
    own = Path(resolve(out_csv)).resolve() == runs.eval_csv_path(run_dir).resolve()
    return folder if own else os.path.join(folder, OTHER_FIGURES)


def _csv_for(run_dir, other: list[str]) -> Path:
    """metrics.csv for the run's full scoring (`other` empty), metrics_other.csv for any other."""
    return resolve(run_dir) / OTHER_CSV_NAME if other else runs.eval_csv_path(run_dir)


def eval_option_note(overrides: list[str], out: Path, run_dir) -> str | None:
    """A note when `--set eval.*` options (the evaluation's own choice) go into the run's own
    metrics.csv, which `report`, `make reproduce`'s table and `unseen-check` read as the run's scoring."""
    options = [o for o in overrides if any(k.split(".")[0] == "eval" for k in override_keys(o))]
    if not options or Path(out).resolve() != runs.eval_csv_path(run_dir).resolve():
        return None
    return (f"note: {out} now holds the scoring with {', '.join(options)}, not the config's evaluation options; "
            "report and unseen-check read it as the run's (score again without them, or pass --out, to keep the "
            "config's)")


def run(args) -> int:
    from ..config import load_config
    from .report import results_table

    check_overrides(args.overrides)
    cfg = load_config(args.config, args.overrides)
    runs.check_run_dir_profile(cfg.profile, args.run_dir)  # before anything is read or written there
    stages = parse_stages(args.stages)
    check_limit(args.limit)
    if args.out is not None and Path(args.out).is_dir():
        raise Pose3DError(f"--out {args.out}: is a folder; give the CSV file's name (e.g. {Path(args.out) / 'metrics.csv'})")
    if args.out is not None:
        refuse_overwriting_an_input(args.out, "--out", {"config": args.config, **{
            f"stage {s} checkpoint": runs.checkpoint_path(args.run_dir, s) for s in stages}})
    own_table = args.out is not None and Path(args.out).resolve() == runs.eval_csv_path(args.run_dir).resolve()
    other = other_scoring(stages, args.limit, cfg, args.run_dir) if own_table else None  # before minutes of scoring
    if other:
        raise Pose3DError(f"--out {args.out}: the run's own table, which report, make reproduce's results table and "
                          f"unseen-check read as its full scoring; this one is not ({'; '.join(other)}): leave out "
                          f"--out (it goes to {OTHER_CSV_NAME}) or name another file")
    folder, named = ((Path(args.out).parent, f"--out {args.out}") if args.out is not None
                     else (resolve(args.run_dir), f"--run-dir {args.run_dir}"))
    if folder.is_dir():  # a read-only run folder failed only after every stage was scored
        try:
            probe_writable(folder)
        except OSError as e:
            raise Pose3DError(f"{named}: cannot write the metrics there ({describe_os_error(e)}); give --out a file "
                              "in a folder you can write") from None
    rows = evaluate_run(cfg, args.run_dir, stages=stages, limit=args.limit)  # its own checks come first otherwise
    if other is None:
        other = other_scoring(stages, args.limit, cfg, args.run_dir)
    table = results_table(rows)  # checks the rows before any file is replaced
    out = write_metrics_csv(rows, args.out or _csv_for(args.run_dir, other))  # the checkpoint read once
    print(table)
    print(f"\nwrote {len(rows)} rows to {out}" + (f" (not the run's full scoring: {'; '.join(other)})" if other else ""))
    if (note := eval_option_note(args.overrides, out, args.run_dir)) is not None:
        print(note, file=sys.stderr)
    for split, table in mpi3dhp_tables(rows).items():  # a converted MPI-INF-3DHP test set: the paper's layout
        print(f"\n{split}: MPI-INF-3DHP official protocol (3DPCK@150mm and AUC in %)\n{table}")
    return 0

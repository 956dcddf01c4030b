"""Training-time validation on the validation splits: 2D PCK and PCKh on the MPII-format
val split, 3D MPJPE on the lab (and, when given, wild) validation split.

These are quick numbers to watch learning, not the paper's evaluation (that is
`pose3dlib.evaluation.evaluate`): 2D joints come from the last stack's heatmaps without flip
testing, decoded with `decode.heatmaps_to_joints` (argmax + quarter-pixel refinement, whatever
`eval.subpixel` says), in the training's precision (bf16 autocast where the stage trains in bf16;
evaluation runs in float32).
`mpjpe_mm` combines ground-truth 2D with the predicted depth, scaled to millimetres by
the ground-truth skeleton's total bone length (so it measures depth alone); the
`p1_*_mm` numbers use the predicted 2D as well (Protocol #1 as the evaluation computes
it, scaled to `bone_sum_mm`).
"""
from __future__ import annotations

import math

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ..decode import bone_length_sum, heatmap_to_normalized, heatmaps_to_joints, reconstruct_3d
from ..metrics import mpjpe_per_sample
from ..skeleton import DEPTH_ROOT, MPII16

# PCK threshold: a fraction of the crop side. The crop spans 2 normalised units (from -1 - 1/H to
# 1 - 1/H on an H-pixel heatmap, pixel centres aligned), so 0.1 of the crop is 0.2 normalised units.
PCK_FRACTION_OF_CROP = 0.1
CROP_SIDE_NORMALISED = 2.0


def evenly_spaced_subset(dataset: Dataset, max_samples: int) -> Dataset:
    """At most `max_samples` evenly spaced samples of `dataset` (all of it if max_samples is 0)."""
    n = len(dataset)
    if max_samples <= 0 or max_samples >= n:
        return dataset
    stride = n / max_samples
    return Subset(dataset, [int(i * stride) for i in range(max_samples)])


def pck_hits(pred_2d: torch.Tensor, gt_2d: torch.Tensor, valid: torch.Tensor,
             fraction: float = PCK_FRACTION_OF_CROP) -> tuple[int, int]:
    """(correct, counted) valid joints whose (B, J, 2) normalised error is below `fraction` of the crop."""
    dist = torch.linalg.norm(pred_2d - gt_2d, dim=-1)  # (B, J)
    ok = (dist < fraction * CROP_SIDE_NORMALISED) & valid
    return int(ok.sum()), int(valid.sum())


def depth_mpjpe_mm(joints_2d: torch.Tensor, depth: torch.Tensor, joints_3d_mm: torch.Tensor) -> torch.Tensor:
    """Per-sample MPJPE (B,) of GT 2D + `depth`, scaled to the GT skeleton's bone length (mm).

    joints_2d (B, 16, 2) and depth (B, 16) are in normalised units; joints_3d_mm (B, 16, 3)
    camera-frame mm. Both skeletons are made relative to the depth root; the prediction is
    scaled (decode.reconstruct_3d) so its 14 edge lengths sum to the GT's.
    """
    gt = joints_3d_mm - joints_3d_mm[:, DEPTH_ROOT : DEPTH_ROOT + 1]  # (B, 16, 3)
    pred = reconstruct_3d(joints_2d, depth, bone_length_sum(gt))  # (B, 16, 3) mm
    return torch.from_numpy(mpjpe_per_sample(pred, gt))  # (B,) float64


@torch.no_grad()
def mean_depth(dataset_3d: Dataset, max_samples: int, batch_size: int) -> torch.Tensor:
    """Mean depth target (16,) over an evenly spaced subset of a 3D training split."""
    loader = DataLoader(evenly_spaced_subset(dataset_3d, max_samples), batch_size=batch_size, shuffle=False)
    total, count = torch.zeros(MPII16.num_joints, dtype=torch.float64), 0
    for batch in loader:
        has = batch["has_depth"].bool()
        total += batch["depth"][has].double().sum(dim=0)
        count += int(has.sum())
    if count == 0:
        raise ValueError("the 3D training split has no sample with has_depth")
    return (total / count).float()


def pckh_hits(pred_2d: torch.Tensor, gt_2d: torch.Tensor, valid: torch.Tensor, head_crop_px: torch.Tensor,
              input_size: int, threshold: float = 0.5) -> tuple[int, int]:
    """(correct, counted) valid joints within `threshold` x the head size (<=, as `metrics.pckh`), in crop pixels.

    pred_2d, gt_2d: (B, J, 2) normalised units (the crop spans 2 units, so a normalised
    distance times input_size / 2 is crop pixels); head_crop_px: (B,) head size in crop
    pixels. Counts the `valid` joints only (annotated and inside the crop, `data.sample`), so it
    equals `metrics.pckh` in original-image pixels only for unaugmented (similarity) crops holding
    every annotated joint; `evaluate` counts every annotated joint, a joint outside the crop a miss.
    """
    dist_px = torch.linalg.norm(pred_2d - gt_2d, dim=-1) * (input_size / 2.0)  # (B, J)
    ok = (dist_px <= threshold * head_crop_px[:, None]) & valid
    return int(ok.sum()), int(valid.sum())


def head_size_in_crop(head_px: torch.Tensor, crop: torch.Tensor) -> torch.Tensor:
    """(B,) head sizes in original pixels -> crop pixels, by the scale of each (B, 2, 3) crop affine."""
    return head_px * torch.linalg.det(crop[:, :, :2].double()).abs().sqrt().to(head_px.dtype)


# The keys of `validate`'s result given in percent (evaluation's metrics.csv stores PCKh as a fraction)
PERCENT_KEYS = ("pck", "pckh")


def shown_metrics(metrics: dict[str, float]) -> str:
    """'val_pck=75.43%, val_mpjpe_mm=406.2, ...': a stage's final metrics for a terminal, the
    percentages marked as such."""
    percent = {f"val_{k}" for k in PERCENT_KEYS}
    return ", ".join(f"{k}={v:.4g}{'%' if k in percent else ''}" for k, v in metrics.items())


@torch.no_grad()
def validate(model: torch.nn.Module, preprocess, *, loader_2d: DataLoader, loader_3d: DataLoader,
             mean_depth_16: torch.Tensor, device: torch.device, input_format: str,
             channels_last: bool = False, bf16: bool = False, head_px_2d: torch.Tensor | None = None,
             loader_3d_wild: DataLoader | None = None, bone_sum_mm: float | None = None) -> dict[str, float]:
    """2D PCK@0.1 (fraction of the crop) and PCKh@0.5 on loader_2d; 3D errors on loader_3d (lab).

    Returns {"pck": %, "mpjpe_mm": mm, "mpjpe_mean_pose_mm": mm}; the baseline replaces the
    predicted depth by `mean_depth_16` (the mean training depth vector). With `head_px_2d`
    (the MPII head size of every row of loader_2d's dataset, indexed by the sample's
    `index`) also "pckh" (%); with `bone_sum_mm` also "p1_lab_mm" (predicted 2D and depth,
    Protocol #1) and, with `loader_3d_wild`, "p1_wild_mm" and "mpjpe_wild_mm" (GT 2D).
    """
    was_training = model.training
    model.eval()

    def forward(images: torch.Tensor) -> dict:
        x = preprocess(images.to(device), input_format)  # (B, 3, S, S) float
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            return model(x)

    def joints(out: dict) -> torch.Tensor:
        heatmaps = out["heatmaps"][-1].float().cpu()  # (B, 16, H, H)
        return heatmap_to_normalized(heatmaps_to_joints(heatmaps)[0], heatmaps.shape[-1])  # (B, 16, 2)

    hits, counted, hits_h, counted_h = 0, 0, 0, 0
    for batch in loader_2d:
        out = forward(batch["image"])
        pred, valid = joints(out), batch["valid"].bool()
        h, c = pck_hits(pred, batch["joints_2d"], valid)
        hits, counted = hits + h, counted + c
        if head_px_2d is not None:
            head = head_size_in_crop(head_px_2d[batch["index"]], batch["crop"])
            h, c = pckh_hits(pred, batch["joints_2d"], valid, head, batch["image"].shape[-1])
            hits_h, counted_h = hits_h + h, counted_h + c

    def errors_3d(loader: DataLoader) -> dict[str, float]:
        sums = {"gt2d": 0.0, "base": 0.0, "p1": 0.0}
        n3 = 0
        for batch in loader:
            has = batch["has_depth"].bool()
            if not has.any():
                continue
            out = forward(batch["image"])
            depth = out["depth"].float().cpu()[has]  # (b, 16)
            j2d, j3d = batch["joints_2d"][has], batch["joints_3d_mm"][has]
            sums["gt2d"] += float(depth_mpjpe_mm(j2d, depth, j3d).double().sum())
            sums["base"] += float(depth_mpjpe_mm(j2d, mean_depth_16.expand_as(depth), j3d).double().sum())
            if bone_sum_mm is not None:
                gt = j3d - j3d[:, DEPTH_ROOT : DEPTH_ROOT + 1]
                pred_mm = reconstruct_3d(joints(out)[has], depth, bone_sum_mm)
                sums["p1"] += float(mpjpe_per_sample(pred_mm, gt).sum())
            n3 += int(has.sum())
        return {k: v / n3 if n3 else math.nan for k, v in sums.items()}

    lab = errors_3d(loader_3d)
    result = {
        "pck": 100.0 * hits / counted if counted else math.nan,
        "mpjpe_mm": lab["gt2d"],
        "mpjpe_mean_pose_mm": lab["base"],
    }
    if head_px_2d is not None:
        result["pckh"] = 100.0 * hits_h / counted_h if counted_h else math.nan
    if bone_sum_mm is not None:
        result["p1_lab_mm"] = lab["p1"]
    if loader_3d_wild is not None:
        wild = errors_3d(loader_3d_wild)
        result["mpjpe_wild_mm"] = wild["gt2d"]
        if bone_sum_mm is not None:
            result["p1_wild_mm"] = wild["p1"]
    model.train(was_training)
    return result

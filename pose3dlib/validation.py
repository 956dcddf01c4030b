"""Training-time validation: 2D PCK on the wild (MPII-format) split, 3D MPJPE on the lab test split.

These are quick numbers to watch learning, not the paper's evaluation (that is
`pose3dlib.evaluate`): 2D joints come from the last stack's heatmaps, and the 3D
MPJPE combines ground-truth 2D with the predicted depth, scaled to millimetres by the
ground-truth skeleton's total bone length (so it measures depth alone); 2D joints are
decoded with `decode.heatmaps_to_joints` (argmax + quarter-pixel refinement).
"""
from __future__ import annotations

import math

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from .decode import bone_length_sum, heatmap_to_normalized, heatmaps_to_joints, reconstruct_3d
from .metrics import mpjpe_per_sample
from .skeleton import DEPTH_ROOT, MPII16

# PCK threshold: a fraction of the crop side. The crop spans 2 normalised units
# (coordinates run from -1 to 1), so 0.1 of the crop is 0.2 normalised units.
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


@torch.no_grad()
def validate(model: torch.nn.Module, preprocess, *, loader_2d: DataLoader, loader_3d: DataLoader,
             mean_depth_16: torch.Tensor, device: torch.device, input_format: str,
             channels_last: bool = False, bf16: bool = False) -> dict[str, float]:
    """2D PCK@0.1 (fraction of the crop) on loader_2d; depth MPJPE and the mean-pose baseline on loader_3d.

    Returns {"pck": %, "mpjpe_mm": mm, "mpjpe_mean_pose_mm": mm}; the baseline replaces the
    predicted depth by `mean_depth_16` (the mean training depth vector).
    """
    was_training = model.training
    model.eval()

    def forward(images: torch.Tensor) -> dict:
        x = preprocess(images.to(device), input_format)  # (B, 3, S, S) float
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            return model(x)

    hits, counted = 0, 0
    for batch in loader_2d:
        out = forward(batch["image"])
        heatmaps = out["heatmaps"][-1].float().cpu()  # (B, 16, H, H)
        pred = heatmap_to_normalized(heatmaps_to_joints(heatmaps)[0], heatmaps.shape[-1])  # (B, 16, 2)
        h, c = pck_hits(pred, batch["joints_2d"], batch["valid"].bool())
        hits, counted = hits + h, counted + c
    err_sum, base_sum, n3 = 0.0, 0.0, 0
    for batch in loader_3d:
        has = batch["has_depth"].bool()
        if not has.any():
            continue
        out = forward(batch["image"])
        depth = out["depth"].float().cpu()[has]  # (b, 16)
        j2d, j3d = batch["joints_2d"][has], batch["joints_3d_mm"][has]
        err_sum += float(depth_mpjpe_mm(j2d, depth, j3d).double().sum())
        base = mean_depth_16.expand_as(depth)
        base_sum += float(depth_mpjpe_mm(j2d, base, j3d).double().sum())
        n3 += int(has.sum())
    model.train(was_training)
    return {
        "pck": 100.0 * hits / counted if counted else math.nan,
        "mpjpe_mm": err_sum / n3 if n3 else math.nan,
        "mpjpe_mean_pose_mm": base_sum / n3 if n3 else math.nan,
    }

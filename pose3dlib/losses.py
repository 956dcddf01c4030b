"""Training losses: heatmap MSE, depth L2 and the geometric (bone-length ratio) loss.

Plain differentiable functions over whole batches (no Python loops over samples);
gradients come from autograd. Every loss is computed in float32, whatever the dtype of
the predictions (e.g. bf16 under autocast).

The `valid` masks are the samples' (`data.sample`): a joint that is annotated and lies inside
the crop (every joint of a crop made without the whole person). An annotated joint that
scale or rotation pushed out of the crop is left out of every term (docs/paper.md, "Where this
code departs from the release").

Normalisation, shared by the three terms so that they mix in fixed proportions whatever
the 3D/2D split of a batch:
- heatmap: mean over the pixels of the batch's `valid` joints, summed over stacks;
- depth and geometric: a per-sample value, summed over the samples the term applies to
  and divided by the batch size B (all samples). For the geometric term this is the
  original release's normalisation (docs/paper.md, "Geometric loss": weight * sum over 2D samples / B).
"""
from __future__ import annotations

from functools import lru_cache

import torch

from .engine.errors import DataError
from .skeleton import BONE_GROUPS

# Bones of all groups, flattened: joint indices, ratio weights and a (bones, groups) one-hot.
_BONE_A = [a for group in BONE_GROUPS.values() for a, _, _ in group]
_BONE_B = [b for group in BONE_GROUPS.values() for _, b, _ in group]
_BONE_W = [w for group in BONE_GROUPS.values() for _, _, w in group]
_BONE_GROUP = [g for g, group in enumerate(BONE_GROUPS.values()) for _ in group]


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise DataError(message)


@lru_cache(maxsize=8)
def _bone_tables(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(joint a (E,), joint b (E,), ratio weight (E,), bone-to-group one-hot (E, G)) on `device`."""
    groups = torch.nn.functional.one_hot(torch.tensor(_BONE_GROUP), len(BONE_GROUPS)).to(torch.float32)
    return (torch.tensor(_BONE_A, device=device), torch.tensor(_BONE_B, device=device),
            torch.tensor(_BONE_W, dtype=torch.float32, device=device), groups.to(device))


def heatmap_loss(pred_heatmaps: list[torch.Tensor], target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Heatmap MSE over the valid joints, summed over stacks.

    Args:
        pred_heatmaps: one (B, J, H, W) tensor per stack.
        target: (B, J, H, W) Gaussian targets.
        valid: (B, J) bool, joint annotated and inside the crop.
    Returns:
        scalar: sum over stacks of sum_{b,j valid} sum_{h,w} (pred - target)^2 / (n_valid H W),
        i.e. the mean squared error over the pixels of the valid joints; 0 (with a graph)
        when no joint is valid. The original averaged over all joints, the others included
        (their target was an all-zero map); with every joint valid the two agree.
    """
    _check(target.dim() == 4 and valid.shape == target.shape[:2],
           f"heatmap_loss: target (B, J, H, W) and valid (B, J) expected, got {tuple(target.shape)}, {tuple(valid.shape)}")
    mask = valid.to(torch.float32)  # (B, J)
    denom = mask.sum().clamp(min=1.0) * target.shape[2] * target.shape[3]
    target = target.float()
    total = target.new_zeros(())
    for pred in pred_heatmaps:  # loop over stacks (2), never over the batch
        _check(pred.shape == target.shape,
               f"heatmap_loss: a stack's heatmaps have shape {tuple(pred.shape)}, target {tuple(target.shape)}")
        per_joint = (pred.float() - target).square().sum(dim=(2, 3))  # (B, J)
        total = total + (per_joint * mask).sum() / denom
    return total


def depth_loss(pred: torch.Tensor, target: torch.Tensor, has_depth: torch.Tensor) -> torch.Tensor:
    """L2 depth loss on the samples with 3D labels.

    Args:
        pred: (B, J) predicted depth, normalised units.
        target: (B, J) depth target, same units (ignored where has_depth is False).
        has_depth: (B,) bool.
    Returns:
        scalar: sum over samples with depth of mean_j (pred - target)^2, divided by B;
        0 with a graph when no sample has depth.
    """
    _check(pred.dim() == 2 and target.shape == pred.shape and has_depth.shape == pred.shape[:1],
           f"depth_loss: pred (B, J), target (B, J), has_depth (B,) expected, got "
           f"{tuple(pred.shape)}, {tuple(target.shape)}, {tuple(has_depth.shape)}")
    per_sample = (pred.float() - target.float()).square().mean(dim=1)  # (B,)
    return (per_sample * has_depth.to(torch.float32)).sum() / pred.shape[0]


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt(x) for x >= 0 with gradient 0 (not inf or NaN) at x == 0; values are exact."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x))


def geometric_loss(depth: torch.Tensor, joints_2d: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-sample bone-length-ratio loss (docs/paper.md, "Geometric loss"), groups from skeleton.BONE_GROUPS.

    For each group g and its bones e = (a, b, w) whose two joints are valid (annotated and inside
    the crop; the paper's rule is "annotated", docs/paper.md):
    l_e = w * sqrt(dx^2 + dy^2 + dd^2), L_g = mean_e l_e, loss_g = sum_e (l_e - L_g)^2 / n_g;
    a group without usable bones contributes 0. Zero-length bones have gradient 0.

    Args:
        depth: (B, 16) predicted depth, normalised units.
        joints_2d: (B, 16, 2) ground-truth 2D joints, same normalised units.
        valid: (B, 16) bool, joint annotated and inside the crop.
    Returns:
        (B,) sum over the four groups of loss_g.
    """
    _check(depth.dim() == 2 and joints_2d.shape == (*depth.shape, 2) and valid.shape == depth.shape,
           f"geometric_loss: depth (B, 16), joints_2d (B, 16, 2), valid (B, 16) expected, got "
           f"{tuple(depth.shape)}, {tuple(joints_2d.shape)}, {tuple(valid.shape)}")
    a, b, w, groups = _bone_tables(depth.device)  # (E,), (E,), (E,), (E, G)

    points = torch.cat([joints_2d.float(), depth.float().unsqueeze(-1)], dim=-1)  # (B, 16, 3)
    diff = points[:, a] - points[:, b]  # (B, E, 3)
    length = w * _safe_sqrt(diff.square().sum(-1))  # (B, E)
    usable = (valid[:, a] & valid[:, b]).to(torch.float32)  # (B, E)
    count = (usable @ groups).clamp(min=1.0)  # (B, G); empty groups: sums below are 0
    mean = ((length * usable) @ groups) / count  # (B, G)
    spread = usable * (length - mean @ groups.T).square()  # (B, E)
    return ((spread @ groups) / count).sum(dim=1)  # (B,)


def total_loss(outputs: dict, batch: dict, *, heatmap_weight: float, depth_weight: float,
               geometric_weight: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum of the three terms for one batch.

    loss = heatmap_weight * heatmap_loss(all stacks, supervised joints: `heatmap_valid`)
         + depth_weight * sum_{b: has_depth} mean_j (depth_b - target_b)^2 / B
         + geometric_weight * sum_{b: not has_depth} geometric_loss_b / B
    The depth and geometric terms are per-sample values summed over the samples they
    apply to and divided by the whole batch size B, as the original normalised its
    geometric term (varWeight * sum over 2D samples / batch size); with
    geometric_weight = varWeight the geometric term equals the original's value. Every
    term is always computed (weight 0 included), so the logs show all three, and every
    parameter whose output reaches a term is in the graph (DDP needs that; a depth output
    computed without autograd, `train.depth_head_trains`, adds nothing to the graph).

    Args:
        outputs: HourglassNet3D output, {"heatmaps": [(B, J, H, W)], "depth": (B, J)}.
        batch: sample dict batch with "heatmaps", "heatmap_valid" (the heatmap term's mask),
            "valid" (the geometric term's joints), "joints_2d", "has_depth", "depth".
    Returns:
        (scalar loss, {"heatmap", "depth", "geometric", "total"}: detached 0-dim tensors of
        the unweighted terms and the weighted total; call .item() when logging).
    """
    has_depth = batch["has_depth"].to(torch.bool)  # (B,)
    hm = heatmap_loss(outputs["heatmaps"], batch["heatmaps"], batch["heatmap_valid"])
    dl = depth_loss(outputs["depth"], batch["depth"], has_depth)
    per_sample = geometric_loss(outputs["depth"], batch["joints_2d"], batch["valid"])  # (B,)
    geo = (per_sample * (~has_depth).to(torch.float32)).sum() / per_sample.shape[0]
    loss = heatmap_weight * hm + depth_weight * dl + geometric_weight * geo
    terms = {"heatmap": hm.detach(), "depth": dl.detach(), "geometric": geo.detach(), "total": loss.detach()}
    return loss, terms

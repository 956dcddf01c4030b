"""The geometric loss written as a per-sample Python loop, as the original release computed it.

The one reference implementation of the geometric loss: the baseline of
`geometric_loss_speedup` and the independent check of pose3dlib.losses.geometric_loss
(tests/test_losses.py, tests/test_bench.py). It follows the paper's formula (as stated in the docstring of
pose3dlib.losses.geometric_loss) line by line, one sample, one group and one bone at a time, with
autograd (not the original's hand-written backward, which had a bug). Do not train with it.
"""
from __future__ import annotations

import torch

from ...skeleton import BONE_GROUPS


def geometric_loss_loop(depth: torch.Tensor, joints_2d: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-sample bone-length-ratio loss, computed sample by sample in Python.

    For each sample and group: l_e = w_e * sqrt(dx^2 + dy^2 + dd^2) over the bones whose two
    joints are annotated, L = mean(l_e), loss_g = sum_e (l_e - L)^2 / n_g; a group without
    usable bones adds 0. A zero-length bone has length 0 and no gradient.

    Args:
        depth: (B, 16) predicted depth, normalised units.
        joints_2d: (B, 16, 2) ground-truth 2D joints, same units.
        valid: (B, 16) bool, joint annotated.
    Returns:
        (B,) float32, sum over the groups of loss_g.
    """
    per_sample = []
    for b in range(depth.shape[0]):
        sample_loss = depth.new_zeros((), dtype=torch.float32)
        for group in BONE_GROUPS.values():
            lengths = []
            for joint_a, joint_b, weight in group:
                if not (bool(valid[b, joint_a]) and bool(valid[b, joint_b])):
                    continue
                dx = joints_2d[b, joint_a, 0].float() - joints_2d[b, joint_b, 0].float()
                dy = joints_2d[b, joint_a, 1].float() - joints_2d[b, joint_b, 1].float()
                dd = depth[b, joint_a].float() - depth[b, joint_b].float()
                sq = dx * dx + dy * dy + dd * dd
                lengths.append(weight * torch.sqrt(sq) if bool(sq > 0) else sq.new_zeros(()))
            if not lengths:
                continue
            mean = sum(lengths) / len(lengths)
            sample_loss = sample_loss + sum((length - mean) ** 2 for length in lengths) / len(lengths)
        per_sample.append(sample_loss)
    return torch.stack(per_sample)  # (B,)

"""A test-time prior on the predicted depth: the bone proportions of the training skeletons.

Not part of the paper's method (which uses bone-length ratios only as a training loss, `losses.geometric_loss`)
and off by default (`eval.bone_prior`). The network's depth is often too flat on pictures unlike its 3D
training data (the wild ones); `bone_prior_depth` corrects it per sample toward the proportions of the 14
MPII16 bones of the training skeletons, keeping the predicted 2D and the predicted sign of every bone's
depth step. `evaluate.reconstruct` applies it before `decode.reconstruct_3d`; measured in
docs/cpu-recipe.md ("The training skeleton's bone proportions at test time").
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..decode import bone_length_sum, bone_lengths
from ..skeleton import DEPTH_ROOT, MPII16, descent

PRIOR_SCALES = 2.0 ** (np.arange(-40, 41) / 20)  # depth scales searched: 1/4 to 4 in steps of 2^(1/20), 1 among them
CHUNK = 4096  # samples per scale search (its (chunk, 81, 14) float64 intermediates: about 37 MB each)


_EDGE_INDEX = {frozenset(e): k for k, e in enumerate(MPII16.edges)}
# (joint, parent, edge index) of every joint an edge reaches but the root, parents before children
TREE_ORDER = tuple((j, p, _EDGE_INDEX[frozenset((p, j))]) for p, j in descent(MPII16.parents, MPII16.root))


def mean_bone_lengths(joints_3d: Any) -> np.ndarray:
    """Mean length of each of the 14 MPII16 edges over (N, 16, 3) skeletons (numpy or torch), (14,) float64.

    The prior of `bone_prior_depth` (e.g. the Human3.6M-format training skeletons, in mm).
    """
    j = np.asarray(joints_3d, np.float64)
    if j.ndim != 3 or j.shape[1:] != (MPII16.num_joints, 3):
        raise ValueError(f"joints_3d must have shape (N, 16, 3), got {tuple(j.shape)}")
    if j.shape[0] == 0:
        raise ValueError("joints_3d has no samples")
    return bone_lengths(j).mean(0)


def bone_prior_depth(joints_2d_norm: Any, depth_norm: Any, lengths: Any, *, scale_penalty: float,
                     blend: float) -> Any:
    """Predicted depth corrected toward a skeleton's bone proportions, per sample.

    Two steps, with the 2D joints as they are:
    1. one depth scale s (searched over `PRIOR_SCALES`, 1/4 to 4) minimising
       mean_e (log q_e(s) - log p_e)^2 + scale_penalty (log s)^2, where q(s) are the 14 bone lengths of
       (x, y, s depth) as fractions of their sum and p those of `lengths`;
    2. each bone's depth step, from the root outward (`TREE_ORDER`), moved `blend` of the way to the step
       that gives the bone its prior fraction of the skeleton's size after step 1: sqrt(L^2 - 2D length^2)
       with the predicted step's sign (0 where the 2D bone is already that long, or the predicted step is
       exactly 0).
    The thorax, which no edge reaches, keeps its depth from step 1. With blend 0 only step 1 acts; a large
    scale_penalty keeps s = 1.

    Args:
        joints_2d_norm: (N, 16, 2) normalised units; depth_norm: (N, 16) the same units.
        lengths: (14,) lengths of the MPII16 edges (any unit: only their proportions matter),
            e.g. `mean_bone_lengths` of the training skeletons.
        scale_penalty: >= 0, the weight of (log s)^2; blend: in [0, 1] (`eval.bone_prior_scale_penalty` and
            `eval.bone_prior_blend` where `evaluate` calls it).
    Returns:
        (N, 16) root-relative depth in the same units: a numpy float64 array for numpy input, a tensor
        of the input's floating dtype (float32 for an integer one) on its device for a tensor.
    """
    xy_shape, d_shape = tuple(joints_2d_norm.shape), tuple(depth_norm.shape)
    if len(xy_shape) != 3 or xy_shape[1:] != (MPII16.num_joints, 2):
        raise ValueError(f"joints_2d_norm must have shape (N, 16, 2), got {xy_shape}")
    if d_shape != xy_shape[:2]:
        raise ValueError(f"depth_norm must have shape (N, 16) = ({xy_shape[0]}, 16), got {d_shape}")
    lengths = np.asarray(lengths.detach().cpu() if isinstance(lengths, torch.Tensor) else lengths, np.float64)
    if lengths.shape != (len(MPII16.edges),):
        raise ValueError(f"lengths must have shape ({len(MPII16.edges)},), got {lengths.shape}")
    if not np.all(np.isfinite(lengths) & (lengths > 0)):
        raise ValueError(f"lengths must be finite and positive, got {lengths.tolist()}")
    if not (scale_penalty >= 0 and 0 <= blend <= 1):
        raise ValueError(f"scale_penalty must be >= 0 and blend in [0, 1], got {scale_penalty} and {blend}")
    is_tensor = isinstance(depth_norm, torch.Tensor)
    d = depth_norm if is_tensor else torch.from_numpy(np.asarray(depth_norm, np.float64))
    xy = torch.as_tensor(joints_2d_norm).to(device=d.device, dtype=torch.float64)
    z = d.to(torch.float64)
    z = z - z[:, DEPTH_ROOT:DEPTH_ROOT + 1]
    prior = torch.as_tensor(lengths / lengths.sum(), device=d.device)  # (14,)
    scales = torch.as_tensor(PRIOR_SCALES, device=d.device)  # (K,)
    a, b = (list(ends) for ends in zip(*MPII16.edges))
    dxy2 = (xy[:, a] - xy[:, b]).square().sum(-1)  # (N, 14) squared 2D lengths
    dz = z[:, a] - z[:, b]  # (N, 14) depth steps
    best = []
    for i in range(0, len(z), CHUNK):  # step 1, in chunks: (chunk, K, 14) at a time
        bones = (dxy2[i:i + CHUNK, None] + (scales[None, :, None] * dz[i:i + CHUNK, None]).square()).sqrt()
        frac = (bones / bones.sum(-1, keepdim=True).clamp_min(1e-12)).clamp_min(1e-6)
        cost = (frac.log() - prior.log()).square().mean(-1) + scale_penalty * scales.log().square()  # (chunk, K)
        best.append(scales[cost.argmin(-1)])
    z = z * torch.cat(best)[:, None] if best else z  # step 1
    if blend > 0:  # step 2
        size = bone_length_sum(torch.cat((xy, z.unsqueeze(-1)), -1))  # (N,)
        new = z.clone()
        for j, p, e in TREE_ORDER:
            step = z[:, j] - z[:, p]
            prior_step = torch.sign(step) * ((prior[e] * size).square() - dxy2[:, e]).clamp_min(0).sqrt()
            new[:, j] = new[:, p] + blend * prior_step + (1 - blend) * step
        z = new
    if not is_tensor:
        return z.numpy()
    return z.to(d.dtype if d.dtype.is_floating_point else torch.float32)

"""Process-group setup and deterministic data sharding for single- and multi-process training.

The same training command runs alone or under `torchrun --nproc_per_node N`: torchrun sets
RANK / WORLD_SIZE / LOCAL_RANK, and `init_distributed` joins the process group (NCCL on
CUDA, gloo on CPU). Sharding is a pure function of (seed, stage, epoch, rank, world size),
so a resumed run sees the same samples in the same order.
"""
from __future__ import annotations

import gc
import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

# Shuffling seeds are mixed from (seed, stage, epoch) with these odd constants so that
# neighbouring epochs/stages get unrelated permutations.
_SEED_STAGE_MIX = 1_000_003
_SEED_EPOCH_MIX = 7_919


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the (possibly trivial) process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


LAUNCH_VARIABLES = ("RANK", "MASTER_ADDR", "MASTER_PORT")  # what torchrun sets beside WORLD_SIZE


def world_size_from_environment() -> int:
    """WORLD_SIZE as torchrun sets it (1 when unset); ConfigError naming the variable when it is not a
    whole number >= 1, or when it asks for several processes without the variables torchrun sets
    beside it (a WORLD_SIZE left in the shell, not a launch)."""
    from .errors import ConfigError

    text = os.environ.get("WORLD_SIZE", "1").strip() or "1"
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"WORLD_SIZE={text!r}: expected a whole number >= 1 (torchrun sets it; unset it to "
                          "train in one process)")
    world = int(text)
    missing = [v for v in LAUNCH_VARIABLES if world > 1 and not os.environ.get(v)]
    if missing:
        raise ConfigError(f"WORLD_SIZE={world} is set but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                          "not: launch several processes with torchrun (docs/multi-gpu.md), or unset WORLD_SIZE to "
                          "train in one")
    return world


def init_distributed(device: torch.device) -> DistInfo:
    """Join the torchrun process group if WORLD_SIZE > 1 (NCCL on CUDA, gloo on CPU)."""
    world = world_size_from_environment()
    if world <= 1:
        return DistInfo()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        # torch.distributed.nn.functional (imported by DDP) binds `group.WORLD` into default
        # arguments at import: imported after the group exists, it would hold the group for
        # good, so destroy_process_group could not stop its threads (see shutdown_distributed)
        import torch.distributed.nn.functional  # noqa: F401

        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank)


def shutdown_distributed(info: DistInfo) -> None:
    """Leave the process group and stop its worker threads (no-op when not distributed).

    `destroy_process_group` only drops torch's own references to the group; while anything
    else holds it (a DDP wrapper, default arguments bound at import, see `init_distributed`),
    gloo's worker threads keep running. Threads still running at interpreter shutdown abort
    the process now and then ("terminate called without an active exception") after a
    finished run, when one of them releases a collective's tensors. Callers drop their
    wrappers first; objects in reference cycles are collected here before leaving.
    """
    if info.enabled and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op when not distributed)."""
    if info.enabled:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a tensor over ranks in place and return it (identity when not distributed)."""
    if info.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_objects(obj: object, info: DistInfo) -> list:
    """Every rank's `obj`, in rank order ([obj] when not distributed)."""
    if not info.enabled:
        return [obj]
    out: list = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def epoch_seed(seed: int, stage: int, epoch: int) -> int:
    """The shuffling seed of one epoch of one stage."""
    return seed * _SEED_STAGE_MIX + stage * _SEED_EPOCH_MIX * 131 + epoch


def shard_indices(num_samples: int, *, seed: int, stage: int, epoch: int, rank: int, world_size: int) -> list[int]:
    """This rank's dataset indices for one epoch: a seeded permutation, padded, strided.

    The permutation depends only on (seed, stage, epoch); it is padded by wrapping around
    to a multiple of `world_size` so every rank gets the same number of samples, then rank
    r takes positions r, r + world_size, ... (as torch's DistributedSampler does).
    """
    if num_samples <= 0:
        raise ValueError(f"cannot shard an empty dataset (num_samples={num_samples})")
    g = torch.Generator().manual_seed(epoch_seed(seed, stage, epoch))
    perm = torch.randperm(num_samples, generator=g).tolist()
    padded = -(-num_samples // world_size) * world_size
    while len(perm) < padded:  # wrap around (more than once only if world_size > num_samples)
        perm += perm[: padded - len(perm)]
    return perm[rank::world_size]


class ListSampler(Sampler[int]):
    """Yields a fixed list of dataset indices in order (the rank's shard, minus batches done)."""

    def __init__(self, indices: list[int]) -> None:
        self.indices = list(indices)

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def state_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of a state dict (order-independent)."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def broadcast_buffers(module: torch.nn.Module, info: DistInfo) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    DDP broadcasts buffers at the start of each forward, so after the last forward of an
    epoch each rank holds its own running statistics; this makes the saved state, and
    the ranks, identical again.
    """
    if info.enabled:
        for buf in module.buffers():
            dist.broadcast(buf, src=0)

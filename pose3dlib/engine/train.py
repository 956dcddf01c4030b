"""The three training stages: `fit()`, its `train_step`, and the `python -m pose3dlib train` command.

    python -m pose3dlib train --config configs/cpu.yaml --stage 1 --run-dir runs/cpu
    python -m pose3dlib train --config configs/cpu.yaml --stage 2 --run-dir runs/cpu   # inits from stage 1
    torchrun --nproc_per_node 2 -m pose3dlib train ...                                 # same command, DDP

Each stage writes `<run_dir>/stage{N}/` (layout: pose3dlib.engine.runs), holding the folder's
lock while it does, so a second process on the same stage stops with an error at once.
Stage N > 1 starts from the weights of `<run_dir>/stage{N-1}/last.pt` unless `--init`
names another checkpoint. `--resume` continues `last.pt` exactly: the shuffling and
every sample's augmentation are pure functions of (seed, stage, epoch, index), mid-epoch
checkpoints record how many batches of the epoch are done and the resumed run skips
them, and on CPU (train.deterministic) the result is bitwise equal to an uninterrupted
run with the same seed, thread count and number of processes.

The loop is small: `Trainer.fit` runs epochs of `train_step` (the one training step,
which `make bench` times too); logging, the progress bar, fault injection and periodic
checkpoints are callbacks on the events "on_batch_end" and "on_epoch_end" (as in minGPT).
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from ..config import (
    Config,
    StageConfig,
    TrainConfig,
    check_fused_adam,
    config_differences,
    config_to_dict,
    dump_config,
    load_config,
)
from . import allocator
from .atomic_io import remove_stale_temporaries
from .averaging import WeightAverage
from .checkpoint import is_finished, load_checkpoint, make_checkpoint, save_checkpoint, unfinished_note
from .device import resolve_device, training_bf16, training_precision
from .distributed import (
    DistInfo,
    ListSampler,
    all_gather_objects,
    all_reduce_sum,
    barrier,
    broadcast_buffers,
    init_distributed,
    shard_indices,
    shutdown_distributed,
    state_digest,
)
from .errors import CheckpointError, ConfigError, Pose3DError
from .paths import CommandLinePath, resolve
from .progress import progress_bar
from .runlog import MetricsLog, append_line, drop_torn_line
from .runs import (
    CHECKPOINT_NAME,
    CONFIG_NAME,
    METRICS_NAME,
    SEED_KEYS,
    TEST_ONLY_KEYS,
    TIMING_NAME,
    WALLCLOCK_NAME,
    check_run_dir_profile,
    checkpoint_path,
    data_identities,
    default_init,
    default_run_dir,
    file_digest,
    precision_change,
    recipe_differences,
    stage_dir,
    stage_lock,
    stage_status,
    started_from,
)

# Fault injection for the reliability tests: SIGKILL this process right after the given
# global step (counted within the stage) has been taken, before any checkpoint of it.
KILL_AT_STEP_ENV = "POSE3D_FAULT_KILL_AT_STEP"
INTERRUPT_AT_STEP_ENV = "POSE3D_FAULT_INTERRUPT_AT_STEP"  # tests: SIGINT to itself right after that step
PREVIOUS_NAME = "previous.pt"  # a stage's last.pt from before a fresh start (--overwrite, a stale stage)
# Per-stage seeds (weight initialisation, sample augmentation, 3D draws): cfg.seed + stage * this.
_STAGE_SEED_MIX = 1000


class NonFiniteLossError(Pose3DError):
    """A loss term became NaN or infinite; training stopped without saving that step."""


@dataclass(frozen=True)
class SpeedSwitches:
    """Speed switches of a training (or inference) step; `make bench` times the same switches."""

    channels_last: bool = False  # NHWC activations and weights
    bf16: bool = False  # bf16 autocast (losses stay float32)
    compile: bool = False  # torch.compile the model

    @classmethod
    def for_training(cls, tcfg: TrainConfig, device: torch.device) -> SpeedSwitches:
        """What `fit` applies on `device`: channels_last and compile as configured, bf16 autocast
        on CUDA when train.bf16, on CPU only when train.bf16_on_cpu says so as well (true, or
        "auto" on a CPU with native bf16: `engine.device.cpu_bf16`).

        channels_last is on by default on every device (1.2-1.3 x faster fp32 training on this
        project's reference CPU, docs/benchmarks.md); bf16 on CPU is opt-in because it changes
        the numerics and is slower than float32 on CPUs without native bf16.
        """
        return cls(channels_last=tcfg.channels_last, bf16=training_bf16(tcfg, device), compile=tcfg.compile)


# ----------------------------------------------------------------------------- small pieces

def configure_torch(train_cfg: TrainConfig, device: torch.device, *, checked_unfilled: bool = False) -> None:
    """Threads and determinism settings (see TrainConfig.deterministic).

    `checked_unfilled`: the run is of the kind tested to read no unwritten memory (one CPU
    process, no torch.compile); deterministic mode then skips its NaN fill of new tensors.
    """
    if train_cfg.num_threads > 0:
        torch.set_num_threads(train_cfg.num_threads)
    if train_cfg.deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
        # Deterministic mode also fills every new tensor (torch.empty, resize_) with NaN by
        # default, in case an operation reads memory before writing it. In one CPU process
        # without compile none of this network's operations do (fill on and off train
        # bitwise-equal weights, a test checks it), and without the fills a cpu-profile step
        # takes 6-9 % less time (docs/benchmarks.md). Elsewhere (CUDA, DDP, compile) the
        # fill stays, as torch sets it.
        torch.utils.deterministic.fill_uninitialized_memory = not (checked_unfilled and device.type == "cpu")
    else:  # also where an earlier run in this process turned it on
        torch.use_deterministic_algorithms(False)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True


@contextlib.contextmanager
def torch_settings_kept() -> Iterator[None]:
    """The process-wide torch settings `configure_torch` changes (threads, deterministic algorithms and
    their NaN fill, cuDNN autotuning) given back after a stage, so that what a notebook does after
    training, or a second stage in one process, runs as it would have without this one."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    benchmark = torch.backends.cudnn.benchmark
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.utils.deterministic.fill_uninitialized_memory = fill
        torch.backends.cudnn.benchmark = benchmark


def lr_at_epoch(stage_cfg: StageConfig, epoch: int) -> float:
    """Learning rate of 0-based `epoch`: lr * factor ** (number of drop epochs <= epoch)."""
    drops = sum(1 for e in stage_cfg.lr_drop_epochs if epoch >= e)
    return stage_cfg.lr * stage_cfg.lr_drop_factor ** drops


def unused_lr_drops(stage_cfg: StageConfig, stage: int) -> str | None:
    """A note naming the stage's learning-rate drops that come at or after its last epoch (and so never
    happen: a drop at e applies from 0-based epoch e on), or None when every drop happens. Such a
    schedule is legal (a shortened run of a longer recipe), but the shorter run then trains at the
    full rate throughout, which a reader of its config would not guess."""
    late = [e for e in stage_cfg.lr_drop_epochs if e >= stage_cfg.epochs]
    if not late:
        return None
    return (f"stage {stage}: train.stage{stage}.lr_drop_epochs {list(stage_cfg.lr_drop_epochs)}: "
            f"{'the drop' if len(late) == 1 else 'the drops'} at epoch {', '.join(map(str, late))} never "
            f"{'comes' if len(late) == 1 else 'come'} in a stage of {stage_cfg.epochs} epoch"
            f"{'' if stage_cfg.epochs == 1 else 's'} (a drop at e applies from epoch e + 1 of 1..{stage_cfg.epochs}); "
            "set them below the epochs, or [] for a constant rate")


def lr_at_step(stage_cfg: StageConfig, epoch: int, step: int, steps_per_epoch: int | None = None) -> float:
    """Learning rate of the stage's next optimiser step, in 0-based `epoch`, when `step` steps of
    the whole stage (not of the epoch) are taken, times the linear warm-up factor
    min(1, (step + 1) / warmup_steps). With `lr_schedule` "step" the rate is `lr_at_epoch`'s; with
    "cosine" it is lr_min + (lr - lr_min) (1 + cos(pi step / total)) / 2 over the stage's
    total = epochs x steps_per_epoch steps (lr_min = lr x lr_min_factor), which needs `steps_per_epoch`."""
    if stage_cfg.lr_schedule == "cosine":
        if not steps_per_epoch or steps_per_epoch < 1:
            raise ValueError(f"lr_at_step: a cosine schedule needs the steps per epoch, got {steps_per_epoch!r}")
        total = stage_cfg.epochs * steps_per_epoch
        low = stage_cfg.lr * stage_cfg.lr_min_factor
        lr = low + (stage_cfg.lr - low) * (1.0 + math.cos(math.pi * min(step, total) / total)) / 2.0
    else:
        lr = lr_at_epoch(stage_cfg, epoch)
    if step < stage_cfg.warmup_steps:
        lr *= (step + 1) / stage_cfg.warmup_steps
    return lr


def build_optimizer(params, train_cfg: TrainConfig, lr: float) -> torch.optim.Optimizer:
    """RMSprop (the paper's) or Adam (fused when train.fused_adam), from the train config."""
    check_fused_adam(train_cfg)  # configs loaded from files were checked already; a TrainConfig built in code was not
    if train_cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=train_cfg.rmsprop_alpha, eps=train_cfg.eps,
                                   momentum=train_cfg.momentum, weight_decay=train_cfg.weight_decay)
    if train_cfg.optimizer == "adam":
        # fused=None, not False, without train.fused_adam: torch then keeps its own default
        # (the multi-tensor update on CUDA, the per-tensor loop on CPU)
        return torch.optim.Adam(params, lr=lr, eps=train_cfg.eps, weight_decay=train_cfg.weight_decay,
                                fused=train_cfg.fused_adam or None)
    raise ConfigError(f"config key 'train.optimizer': expected 'rmsprop' or 'adam', got {train_cfg.optimizer!r}")


def _load_init_weights(path: Path, cfg: Config) -> dict[str, torch.Tensor]:
    """Model weights of an init checkpoint, checked against cfg.model and finished-ness."""
    ckpt = load_checkpoint(path)
    diffs = config_differences(ckpt["config"].get("model", {}), config_to_dict(cfg.model))
    if diffs:
        raise CheckpointError(f"{path}: its model config differs from this run's ({'; '.join(diffs)})")
    if not is_finished(ckpt):
        stage = ckpt.get("stage")
        run = path.parent.parent if path.name == "last.pt" and path.parent.name == f"stage{stage}" else "<its run folder>"
        raise CheckpointError(
            f"{path}: stage {stage} is unfinished: it {unfinished_note(ckpt)}; "
            f"finish it first with `python -m pose3dlib train --config <its config> --stage {stage} --run-dir "
            f"{run} --resume` (with the --set it was trained with)"
        )
    return ckpt["model"]


def _init_path_for(stage: int, run_dir: str | os.PathLike, init_from: str | os.PathLike | None) -> Path | None:
    """The checkpoint a fresh stage starts from: --init, else the run's previous stage (None for Stage 1)."""
    if init_from is not None:
        path = resolve(init_from)
        if not path.is_file():
            raise CheckpointError(f"--init {path}: checkpoint not found"
                                  + (" (a folder, not a checkpoint file)" if path.is_dir() else "")
                                  + ("; notebook 04 takes it as init_from" if stage == 3 else ""))
        return path
    path = default_init(run_dir, stage)
    if path is not None and not path.is_file():
        raise CheckpointError(
            f"stage {stage} starts from stage {stage - 1}'s checkpoint, but {path} does not exist; make it with "
            f"`python -m pose3dlib train --config <config> --stage {stage - 1} --run-dir {run_dir}` or pass --init CKPT"
            + (" (notebook 04: -p init_from CKPT)" if stage == 3 else "")
        )
    return path


def previous_stage_note(path: Path, cfg: Config, stage: int, run_dir) -> str | None:
    """A note when the run's own previous stage (`path`, what stage `stage` starts from without --init)
    was not trained as `cfg` would train it (`runs.recipe_differences`: its settings and training data,
    the seed left out, SEED_KEYS), else None. A note, not an error: training one stage at a time with
    per-stage `--set` is a way of working (docs/multi-gpu.md), and the stage's checkpoint records the
    file it started from; the note says what differs in case it was not meant."""
    diffs = recipe_differences(load_checkpoint(path), cfg, stage - 1, ignored=SEED_KEYS)
    if not diffs:
        return None
    # another network (model.*) cannot start this one, with --init or without: no such advice then
    init = "" if any(d.startswith("model.") for d in diffs) else f"; --init {path} starts from it without this note"
    return (f"stage {stage}: note: it starts from {path}, which was trained with other settings or data than this "
            f"config gives stage {stage - 1} ({'; '.join(diffs)}). If that was not meant, train stage {stage - 1} "
            f"again (`python -m pose3dlib train --config <config> --stage {stage - 1} --run-dir {run_dir} --overwrite`, "
            f"with the same --set as here){init}")


# ----------------------------------------------------------------------------- status for notebooks

def train_or_load(cfg: Config, stage: int, run_dir: str | os.PathLike, init_from: str | os.PathLike | None = None) -> dict:
    """Metrics of a stage: read from a finished, up-to-date last.pt, else trained (or resumed) now.

    Makes `make reproduce` idempotent: a second call with the same config does no training.
    A stale stage folder (other config or init) is trained again from the start.
    """
    status = stage_status(cfg, stage, run_dir, init_from)
    if status == "finished":
        return dict(load_checkpoint(checkpoint_path(run_dir, stage))["metrics"])
    return fit(cfg, stage, run_dir, resume=status == "partial", init_from=init_from, overwrite=status == "stale")


# ----------------------------------------------------------------------------- data

def stage_seed(seed: int, stage: int) -> int:
    """Seed of one stage's weight initialisation and training samples (stages see fresh augmentations)."""
    return seed + stage * _STAGE_SEED_MIX


def build_datasets(cfg: Config, stage: int, stage_cfg: StageConfig):
    """(train dataset with set_epoch, 2D val dataset, lab 3D val dataset, 3D train dataset without
    augmentation, wild 3D val dataset or None when data.wild_val_dir is empty)."""
    from ..data.fusion import FusionDataset
    from ..data.h36m import H36MDataset
    from ..data.image_cache import ImageCache
    from ..data.locations import require_sets
    from ..data.mpii import MPIIDataset
    from ..synthetic.generator import check_not_stale

    d, seed = cfg.data, stage_seed(cfg.seed, stage)
    require_sets(d, ("mpii_dir", "h36m_dir", "lab_val_dir", "wild_val_dir"), mpii_splits=("train", "val"))
    check_not_stale(d.mpii_dir, d.h36m_dir, d.lab_val_dir, d.wild_val_dir, synthetic=cfg.synthetic, ignore=TEST_ONLY_KEYS)
    mpii_train = MPIIDataset(resolve(d.mpii_dir), "train", d, augment=True, seed=seed,
                             loose_crop_prob=stage_cfg.loose_crop_prob)
    h36m_train = H36MDataset(resolve(d.h36m_dir), "train", d, augment=d.augment_3d, seed=seed)
    # One limit for both sets (their paths differ). A stage of one epoch reads a picture twice only when it
    # draws more samples than a set holds, so it keeps none.
    if d.image_cache_mb > 0 and stage_cfg.epochs > 1:
        mpii_train.image_cache = h36m_train.image_cache = ImageCache(d.image_cache_mb)
    train = FusionDataset(mpii_train, h36m_train, stage_cfg.ratio_3d, samples_2d=stage_cfg.samples_2d_per_epoch, seed=seed,
                          mix_2d=stage_cfg.mix_2d)
    val_2d = MPIIDataset(resolve(d.mpii_dir), "val", d, augment=False, seed=cfg.seed)
    val_wild = H36MDataset(resolve(d.wild_val_dir), "test", d, augment=False, seed=cfg.seed) if d.wild_val_dir else None
    # Lab validation: data.lab_val_dir when set (tuning must not look at the test split).
    val_3d = H36MDataset(resolve(d.lab_val_dir or d.h36m_dir), "test", d, augment=False, seed=cfg.seed)
    h36m_plain = H36MDataset(resolve(d.h36m_dir), "train", d, augment=False, seed=cfg.seed)
    return train, val_2d, val_3d, h36m_plain, val_wild


# ----------------------------------------------------------------------------- the step

def depth_head_trains(weights: dict[str, float], optimizer: torch.optim.Optimizer, info: DistInfo,
                      switches: SpeedSwitches) -> bool:
    """Whether a step must backpropagate through the depth head.

    Not when no loss reads the depth (depth and geometric weights 0, as in Stage 1), in one
    process, without torch.compile, with no weight decay and eps > 0: the head's parameters, and
    the last stack's two 1 x 1 convolutions that only feed it, would then get all-zero gradients,
    which Adam and RMSprop turn into no change at all, and the zeros passed back would add nothing
    to the stacks' gradients; so the weights and BatchNorm statistics are bitwise those of a step
    through the head (the optimiser then keeps no state for those parameters), for less work (a
    cpu-profile Stage 1 step 1.07-1.11 x faster, docs/benchmarks.md). Weight decay would move
    those weights even with zero gradients, eps 0 would turn them into 0/0, DDP needs every
    parameter to receive a gradient, and a compiled step is not covered by the test that compares
    the two, so each of these keeps the head in the backward pass.
    """
    reads_depth = weights["depth"] != 0 or weights["geometric"] != 0
    moves_without_gradient = any(group.get("weight_decay", 0) != 0 or group.get("eps", 1) == 0
                                 for group in optimizer.param_groups)
    return reads_depth or moves_without_gradient or info.world_size > 1 or switches.compile


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, sample: dict[str, torch.Tensor], *,
               input_format: str, switches: SpeedSwitches, weights: dict[str, float],
               info: DistInfo | None = None) -> dict[str, float]:
    """One optimiser step on a batch already on the model's device; returns the losses.

    preprocess -> forward (bf16 autocast when switches.bf16; the depth head without autograd
    where `depth_head_trains` says it may, so there `model` must take HourglassNet3D's
    `depth_grad` keyword) -> losses.total_loss with
    `weights` ({"heatmap", "depth", "geometric"}) -> backward -> optimizer.step. The
    returned {"loss": total, <term>: value} are averaged over the processes (DDP). Raises
    NonFiniteLossError naming the term, before the update, when any of them is not finite.
    """
    from ..losses import total_loss
    from ..model import preprocess

    info = info or DistInfo()
    images = preprocess(sample["image"], input_format)  # (B, 3, S, S)
    if switches.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    trains_head = depth_head_trains(weights, optimizer, info, switches)
    with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=switches.bf16):
        out = model(images) if trains_head else model(images, depth_grad=False)
    out = {"heatmaps": [h.float() for h in out["heatmaps"]], "depth": out["depth"].float()}
    loss, terms = total_loss(out, sample, heatmap_weight=weights["heatmap"], depth_weight=weights["depth"],
                             geometric_weight=weights["geometric"])
    terms = {k: v for k, v in terms.items() if k != "total"}  # "loss" below is the total
    names = ["loss", *terms]
    values = torch.stack([loss.detach().float(), *[terms[k].detach().float().reshape(()) for k in terms]])
    values = (all_reduce_sum(values, info) / info.world_size).cpu().tolist()
    bad = [n for n, v in zip(names, values) if not math.isfinite(v)]
    if bad:
        term = next((n for n in bad if n != "loss"), "loss")
        raise NonFiniteLossError(f"loss term {term!r} is {values[names.index(term)]}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return dict(zip(names, values))


# ----------------------------------------------------------------------------- fit

def fit(cfg: Config, stage: int, run_dir: str | os.PathLike, resume: bool = False,
        init_from: str | os.PathLike | None = None, overwrite: bool = False) -> dict:
    """Train one stage; return its final metrics (train losses of the last epoch and validation).

    Args:
        cfg: the full config; `cfg.train.stage{stage}` holds the stage's schedule and weights.
        stage: 1 (2D heatmaps), 2 (+ depth on 3D samples) or 3 (+ geometric loss on 2D samples).
        run_dir: run folder (project-relative or absolute); this stage writes `<run_dir>/stage{N}/`.
        resume: continue `<run_dir>/stage{N}/last.pt` (which must have this config); starts
            from scratch, saying so, when there is none.
        init_from: checkpoint whose weights start the stage (default: stage N-1's last.pt).
        overwrite: allow starting afresh over an existing last.pt.
    Raises:
        NonFiniteLossError naming the step and loss term (last.pt keeps the last good state);
        CheckpointError / ConfigError for missing or incompatible checkpoints and configs;
        Pose3DError when another process is writing the same stage folder.
    """
    stage_cfg = cfg.train.stage(stage)  # checks 1..3
    check_run_dir_profile(cfg.profile, run_dir)
    device = resolve_device(cfg.train.device)
    owns_group = not (torch.distributed.is_available() and torch.distributed.is_initialized())
    info = init_distributed(device)
    if device.type == "cuda" and info.enabled:
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    trainer = None
    try:
        sdir = stage_dir(run_dir, stage)
        created = _missing_folders(sdir) if info.is_main else []
        with stage_lock(sdir) if info.is_main else contextlib.nullcontext() as lock, torch_settings_kept():
            try:
                trainer = Trainer(cfg, stage, stage_cfg, run_dir, device, info)
                return trainer.fit(resume=resume, init_from=init_from, overwrite=overwrite)
            except BaseException:
                _remove_if_only_lock(created, lock)  # a run that wrote nothing leaves no folder holding just .lock
                raise
    finally:
        if trainer is not None:
            trainer.release_wrappers()  # the DDP wrapper holds the process group: let it go first
        if owns_group:
            shutdown_distributed(info)


def _missing_folders(sdir: Path) -> list[Path]:
    """`sdir` and its ancestors that do not exist yet (the ones this run creates), innermost first."""
    missing, p = [], Path(sdir).absolute()
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    return missing


def _remove_if_only_lock(created: list[Path], lock: Path | None) -> None:
    """After a failure, while the lock is still held: remove the folders this run created when the
    stage folder holds nothing but its lock file (rmdir never removes a folder with anything in it)."""
    if not created or lock is None or created[0] != lock.parent:
        return
    sdir = lock.parent
    try:
        if [p.name for p in sdir.iterdir()] != [lock.name]:
            return
        lock.unlink()  # a writer that opened the lock file just before this fails on the missing folder, harmlessly
        for folder in created:
            folder.rmdir()
    except OSError:
        pass  # something else appeared in it (another writer): keep what is there


def _restore(cfg: Config, stage: int, run_dir, resume: bool, init_from, overwrite: bool,
             info: DistInfo) -> tuple[dict | None, Any, str | None]:
    """Where a stage starts: (its own checkpoint to continue or None, init checkpoint path, its digest)."""
    last = checkpoint_path(run_dir, stage)
    ckpt = None
    if last.is_file():
        if resume:
            ckpt = load_checkpoint(last)
            diffs = recipe_differences(ckpt, cfg, stage)
            if diffs:
                raise ConfigError(f"--resume: {last} was made with another config ({'; '.join(diffs)}); "
                                  "use the same config or another --run-dir")
            if not is_finished(ckpt) and ckpt["extra"].get("world_size", 1) != info.world_size:
                raise ConfigError(f"--resume: {last} was made by {ckpt['extra'].get('world_size', 1)} process(es), "
                                  f"this run has {info.world_size}; resume with the same number")
            _check_resumed_start(ckpt, last, stage, run_dir, init_from)
            if info.is_main and not is_finished(ckpt):
                per_epoch = ckpt["extra"].get("steps_per_epoch") or 1
                print(f"stage {stage}: resuming {last} at step {ckpt['step']} (epoch {ckpt['epoch'] + 1} of "
                      f"{cfg.train.stage(stage).epochs}, step {ckpt['step'] - ckpt['epoch'] * per_epoch} of "
                      f"{per_epoch})", file=sys.stderr)
        elif not overwrite:
            raise Pose3DError(f"{last} exists; pass --resume to continue it, --overwrite to start the stage again, "
                              "or choose another --run-dir")
    elif resume and info.is_main:
        print(f"stage {stage}: no checkpoint at {last}; starting the stage from the beginning", file=sys.stderr)
    if ckpt is not None:
        return ckpt, ckpt["extra"].get("init_from"), ckpt["extra"].get("init_digest")
    init_path = _init_path_for(stage, run_dir, init_from)
    if init_from is None and init_path is not None and info.is_main and (
            note := previous_stage_note(init_path, cfg, stage, run_dir)):
        print(note, file=sys.stderr)
    return None, init_path, file_digest(init_path) if init_path is not None else None


def _check_resumed_start(ckpt: dict, last: Path, stage: int, run_dir, init_from) -> None:
    """ConfigError when the checkpoint a stage would start from now (--init, or the previous stage's)
    is not the one the resumed last.pt started from (`runs.started_from`; a last.pt that started
    from nothing and an --init given now count as different): continuing would mix two starts,
    and the stage would count as stale afterwards. A previous stage's checkpoint that is gone is
    not compared (the resumed run does not read it); an --init that is gone is an error, as always."""
    start = _init_path_for(stage, run_dir, init_from) if init_from is not None else default_init(run_dir, stage)
    if start is None or not start.is_file():
        return
    if not started_from(ckpt, start):
        raise ConfigError(f"--resume: {last} was started from {ckpt['extra'].get('init_from')}, not from {start} as it "
                          "is now; resume with --init set to the checkpoint it started from, or train the stage "
                          "again (--overwrite)")


class InterruptGuard:
    """Ctrl-C (SIGINT) during training, caught at the next step boundary: `requested` turns True, the
    trainer saves last.pt there and then raises KeyboardInterrupt, so an interrupt loses no finished
    step (without it, everything since the last periodic checkpoint was lost: up to an epoch). A
    second Ctrl-C interrupts at once. Only in the main thread of a single process: DDP ranks would
    stop at different steps, so there Ctrl-C interrupts at once, as before."""

    def __init__(self, active: bool) -> None:
        self.active, self.requested, self._previous = active, False, None

    def _handler(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)  # a second Ctrl-C: the previous handler's immediate stop

    def __enter__(self) -> InterruptGuard:
        import threading

        # not where SIGINT is ignored (a background job) or handled outside Python (getsignal None)
        self.active = (self.active and threading.current_thread() is threading.main_thread()
                       and signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, None))
        if self.active:
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self.active:
            signal.signal(signal.SIGINT, self._previous)


class Trainer:
    """The state of one stage's training and its loop; callbacks see the trainer.

    Events: "on_batch_end" (after every optimiser step; `values` holds its losses) and
    "on_epoch_end" (after an epoch's means are in `metrics`, before validation and saving).
    """

    def __init__(self, cfg: Config, stage: int, stage_cfg: StageConfig, run_dir, device: torch.device,
                 info: DistInfo) -> None:
        self.cfg, self.stage, self.stage_cfg, self.run_dir = cfg, stage, stage_cfg, run_dir
        self.device, self.info = device, info
        self.sdir, self.last = stage_dir(run_dir, stage), checkpoint_path(run_dir, stage)
        self.switches = SpeedSwitches.for_training(cfg.train, device)
        # on_stop: an epoch ends early (Ctrl-C, a non-finite loss), before its message is printed
        self.callbacks: dict[str, list[Callable[[Trainer], None]]] = {"on_batch_end": [], "on_epoch_end": [],
                                                                       "on_stop": []}
        self.step = self.epoch = 0  # optimiser steps taken, epochs completed
        self.lr = stage_cfg.lr
        self.values: dict[str, float] = {}  # losses of the last step
        self.sums: dict[str, float] = {}  # loss sums of the current epoch (+ "count")
        self.metrics: dict[str, float] = {}
        self.raw_model: torch.nn.Module | None = None  # set by fit(); see _build
        self.average: WeightAverage | None = None  # the weights' moving average when the stage sets ema_decay
        self.model: Callable | None = None
        self.interrupt = InterruptGuard(active=False)  # fit() makes it live

    def add_callback(self, event: str, fn: Callable[[Trainer], None]) -> None:
        self.callbacks[event].append(fn)

    def trigger(self, event: str) -> None:
        for fn in self.callbacks[event]:
            fn(self)

    # ---- setup
    def _build(self, ckpt: dict | None, init_path) -> None:
        """Model (seeded, restored or initialised), optimiser, and the DDP / compile wrappers."""
        from ..model import build_model

        torch.manual_seed(stage_seed(self.cfg.seed, self.stage))
        model = build_model(self.cfg.model)
        averaging = self.stage_cfg.ema_decay > 0
        if ckpt is not None:
            if averaging and "train_model" not in ckpt:
                raise CheckpointError(f"--resume: {self.last} holds no 'train_model' (the trained weights beside "
                                      "their average), which a stage with ema_decay > 0 saves; train the stage "
                                      "again (--overwrite)")
            model.load_state_dict(ckpt["train_model"] if averaging else ckpt["model"])
        elif init_path is not None:
            try:
                model.load_state_dict(_load_init_weights(Path(init_path), self.cfg))
            except RuntimeError as e:
                raise CheckpointError(f"{init_path}: weights do not fit this model ({str(e).splitlines()[0]})") from None
        model.to(self.device)
        if self.switches.channels_last:
            model.to(memory_format=torch.channels_last)
        self.raw_model = model  # the trained weights (no DDP / compile wrappers)
        self.average = WeightAverage(model, self.stage_cfg.ema_decay) if averaging else None
        if self.average is not None and ckpt is not None:
            self.average.average_model.load_state_dict(ckpt["model"])
        self.optimizer = build_optimizer(model.parameters(), self.cfg.train, self.stage_cfg.lr)
        if ckpt is not None and ckpt.get("optimizer") is not None:
            self.optimizer.load_state_dict(ckpt["optimizer"])
            rng = ckpt["extra"].get("rng", {})
            if "torch" in rng:
                torch.set_rng_state(rng["torch"])
        if self.info.enabled:
            model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.model = torch.compile(model) if self.switches.compile else model

    @property
    def output_model(self) -> torch.nn.Module:
        """The stage's output: the weights' moving average when the stage keeps one, else the trained weights."""
        return self.average.average_model if self.average is not None else self.raw_model

    def release_wrappers(self) -> None:
        """Drop the DDP / compile wrappers (training is over or failed; `raw_model` keeps the weights).

        A DDP wrapper keeps the process group, and with it gloo's worker threads, alive after
        `destroy_process_group`; threads that outlive the interpreter abort the process at exit.
        """
        self.model = self.raw_model

    def _build_data(self, ckpt: dict | None) -> None:
        """Training set, steps per epoch, validation loaders and the millimetre scale."""
        from .. import decode
        from .validation import evenly_spaced_subset, mean_depth

        tcfg = self.cfg.train
        self.train_ds, val_2d, val_3d, h36m_plain, val_wild = build_datasets(self.cfg, self.stage, self.stage_cfg)
        self.train_ds.set_epoch(0)
        per_rank = -(-len(self.train_ds) // self.info.world_size)
        self.steps_per_epoch = per_rank // tcfg.batch_size
        if self.steps_per_epoch == 0:
            raise ConfigError(f"train.batch_size={tcfg.batch_size} is larger than the {per_rank} samples per process "
                              f"of an epoch of stage {self.stage}; lower it or use more data")
        if ckpt is not None and ckpt["extra"].get("steps_per_epoch") != self.steps_per_epoch:
            raise CheckpointError(f"--resume: {self.last} has {ckpt['extra'].get('steps_per_epoch')} steps per epoch, "
                                  f"the data now give {self.steps_per_epoch}; was the dataset regenerated?")
        # the one millimetre-scale rule (TrainConfig.bone_sum_mm), fixed here and stored in every checkpoint
        self.bone_sum_mm = tcfg.bone_sum_mm or decode.mean_bone_sum_mm(h36m_plain.joints_3d_mm)
        self.data_identities = data_identities(self.cfg)
        self.val_kwargs: dict[str, Any] = {}
        if self.info.is_main:
            eval_bs = self.cfg.eval.batch_size
            self.val_kwargs = {
                "loader_2d": DataLoader(evenly_spaced_subset(val_2d, tcfg.val_samples), batch_size=eval_bs),
                "loader_3d": DataLoader(evenly_spaced_subset(val_3d, tcfg.val_samples), batch_size=eval_bs),
                "mean_depth_16": mean_depth(h36m_plain, tcfg.val_samples, eval_bs), "device": self.device,
                "input_format": self.cfg.model.input_format, "channels_last": self.switches.channels_last,
                "bf16": self.switches.bf16,
                "head_px_2d": torch.from_numpy(val_2d.normalize) if val_2d.normalize is not None else None,
                "loader_3d_wild": (DataLoader(evenly_spaced_subset(val_wild, tcfg.val_samples), batch_size=eval_bs)
                                   if val_wild is not None else None),
                "bone_sum_mm": self.bone_sum_mm,
            }

    # ---- pieces of the loop
    def validate(self) -> None:
        """Validate on the main process; record val_* metrics, a 'val' log record and the wall clock."""
        from ..model import preprocess
        from .validation import validate

        if not self.info.is_main:
            return
        val = validate(self.output_model, preprocess, **self.val_kwargs)
        self.metrics.update({f"val_{k}": v for k, v in val.items()})
        self.log.write("val", stage=self.stage, epoch=self.epoch, step=self.step, **val)
        _write_jsonl(self.sdir / WALLCLOCK_NAME, stage=self.stage, epoch=self.epoch, step=self.step,
                     train_seconds=self.clock.seconds())

    def save(self, finished: bool) -> None:
        """Write last.pt (main process) with everything --resume needs; NonFiniteLossError, writing
        nothing, when the weights or the optimiser's state hold a NaN or an infinity (`_check_finite`)."""
        broadcast_buffers(self.raw_model, self.info)
        if self.average is not None:  # each DDP process averaged its own batch-norm statistics: rank 0's are saved
            broadcast_buffers(self.average.average_model, self.info)
        model_state, optimizer_state = self.output_model.state_dict(), self.optimizer.state_dict()
        train_state = self.raw_model.state_dict() if self.average is not None else None
        self._check_finite(model_state, optimizer_state, train_state)
        self.metrics.update({"steps": float(self.step), "epochs": float(self.epoch)})
        if self.info.is_main:
            extra = {
                "finished": finished, "steps_per_epoch": self.steps_per_epoch, "world_size": self.info.world_size,
                "epoch_sums": dict(self.sums), "rng": {"torch": torch.get_rng_state()},
                "train_seconds": self.clock.seconds(),
                "init_from": str(self.init_path) if self.init_path is not None else None,
                "init_digest": self.init_digest,
                "data": self.data_identities,  # the synthetic sets or converted downloads trained on (runs.data_changes)
                "precision": self.precision,  # what --resume must continue with (runs.precision_change)
            }
            save_checkpoint(self.last, make_checkpoint(
                model_state=model_state, config=config_to_dict(self.cfg), stage=self.stage,
                epoch=self.epoch, step=self.step, optimizer_state=optimizer_state, metrics=self.metrics,
                extra=extra, bone_sum_mm=self.bone_sum_mm, train_model_state=train_state))
        barrier(self.info)

    def _check_finite(self, model_state: dict, optimizer_state: dict, train_state: dict | None = None) -> None:
        """NonFiniteLossError naming the first non-finite tensors of the weights or the optimiser's state.

        `train_step` stops before an update whose loss is not finite, but a finite loss can still give
        a non-finite gradient (an overflow in the backward pass), which the update writes into the
        weights; the next step's loss would stop the run, after a periodic checkpoint between the two
        had saved them. Checked here, at every save (a pass over the tensors, not per step), so last.pt
        keeps the last good state. Every DDP process holds the same tensors and raises alike."""
        tensors = {f"weight {k}": v for k, v in model_state.items()}
        tensors.update({f"trained weight {k}": v for k, v in (train_state or {}).items()})
        for pid, state in optimizer_state["state"].items():
            tensors.update({f"optimiser state {k} of parameter {pid}": v for k, v in state.items()})
        bad = [name for name, v in tensors.items()
               if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all())]
        if not bad:
            return
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise self._stopped(self.step, max(self.step - 1, 0) // self.steps_per_epoch + 1,
                            f"non-finite values in {shown} after finite losses (a non-finite gradient)",
                            "training stopped without saving them")

    def _stopped(self, step: int, epoch: int, what: str, stopped: str) -> NonFiniteLossError:
        """The error that stops a stage at `step` of `epoch` (both 1-based) for `what`, saying what last.pt
        keeps; the progress bar ends first, so the error prints below it."""
        self.trigger("on_stop")
        kept = f"{self.last} keeps step {_saved_step(self.last)}" if self.last.is_file() else \
            "no checkpoint was written yet"
        return NonFiniteLossError(f"stage {self.stage}, step {step} (epoch {epoch}): {what}; {stopped}, {kept}")

    def _set_lr(self) -> None:
        """The schedule's learning rate for the next step (`lr_at_step`), into the optimiser and self.lr."""
        self.lr = lr_at_step(self.stage_cfg, self.epoch, self.step, self.steps_per_epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    def run_epoch(self) -> None:
        """The remaining steps of the current epoch (all of them unless resuming mid-epoch)."""
        batch = self.cfg.train.batch_size
        self.train_ds.set_epoch(self.epoch)
        order = shard_indices(len(self.train_ds), seed=self.cfg.seed, stage=self.stage, epoch=self.epoch,
                              rank=self.info.rank, world_size=self.info.world_size)
        self.done_in_epoch = self.step - self.epoch * self.steps_per_epoch
        if self.done_in_epoch < self.steps_per_epoch:
            self._set_lr()
        else:  # resumed after the epoch's last step: the rate stays that step's, as the optimiser kept it
            self.lr = self.optimizer.param_groups[0]["lr"]
        loader = epoch_loader(self.train_ds, batch, order[self.done_in_epoch * batch : self.steps_per_epoch * batch],
                              self.cfg.data.num_workers, pin_memory=self.device.type == "cuda")
        weights = self.stage_cfg.loss_weights()
        self.clock.start()
        spent = dict.fromkeys(("data_seconds", "step_seconds", "callback_seconds"), 0.0)
        first_step_seconds = None  # inside step_seconds: warm-up (cuDNN autotuning, first allocations) shows here
        steps_before, t_data = self.step, time.perf_counter()
        for sample in loader:
            sample = {k: v.to(self.device, non_blocking=True) for k, v in sample.items()}
            t_step = time.perf_counter()
            spent["data_seconds"] += t_step - t_data  # the loader (its workers' start too); the copy on the CPU
            self._set_lr()
            try:
                self.values = train_step(self.model, self.optimizer, sample, input_format=self.cfg.model.input_format,
                                         switches=self.switches, weights=weights, info=self.info)
            except NonFiniteLossError as e:
                raise self._stopped(self.step + 1, self.epoch + 1, str(e), "training stopped") from None
            t_callbacks = time.perf_counter()
            spent["step_seconds"] += t_callbacks - t_step  # train_step ends with the losses on the host
            if first_step_seconds is None:
                first_step_seconds = t_callbacks - t_step
            self.step += 1
            if self.average is not None:
                self.average.update(self.raw_model)
            for n, v in self.values.items():
                self.sums[n] = self.sums.get(n, 0.0) + v
            self.sums["count"] = self.sums.get("count", 0.0) + 1.0
            self.trigger("on_batch_end")
            t_data = time.perf_counter()
            spent["callback_seconds"] += t_data - t_callbacks
            if self.interrupt.requested:
                self._stop_interrupted(save=True)
        self.clock.stop()
        if self.info.is_main:
            _write_jsonl(self.sdir / TIMING_NAME, stage=self.stage, epoch=self.epoch + 1, first_step=steps_before + 1,
                         steps=self.step - steps_before, resumed=self.done_in_epoch > 0,
                         **{k: round(v, 3) for k, v in spent.items()},
                         first_step_seconds=None if first_step_seconds is None else round(first_step_seconds, 3),
                         allocator=allocator.loaded())
        self.epoch += 1
        count = max(self.sums.pop("count", 1.0), 1.0)
        self.epoch_means = {f"train_{k}": v / count for k, v in self.sums.items()}
        self.sums = {}
        self.metrics.update(self.epoch_means)
        self.trigger("on_epoch_end")

    def fit(self, *, resume: bool, init_from, overwrite: bool) -> dict:
        """Restore or initialise, then run the remaining epochs; returns the final metrics."""
        one_plain_process = not self.info.enabled and not self.switches.compile
        configure_torch(self.cfg.train, self.device, checked_unfilled=one_plain_process)
        ckpt, self.init_path, self.init_digest = _restore(self.cfg, self.stage, self.run_dir, resume, init_from,
                                                          overwrite, self.info)
        if ckpt is not None and is_finished(ckpt):
            if self.info.is_main:
                print(f"stage {self.stage}: {self.last} has already finished all {self.stage_cfg.epochs} epochs",
                      file=sys.stderr)
            return dict(ckpt["metrics"])
        self.precision = training_precision(self.cfg.train, self.device)
        changed = precision_change(ckpt, self.precision) if ckpt is not None else []
        if changed:
            raise ConfigError(f"--resume: {self.last}: {changed[0]}; resume it on the same kind of machine (or set "
                              "train.bf16_on_cpu to match), or train the stage again (--overwrite)")
        self._build(ckpt, self.init_path)
        self._build_data(ckpt)
        if self.info.is_main and (note := unused_lr_drops(self.stage_cfg, self.stage)):
            print(note, file=sys.stderr)
        if self.info.is_main:
            self.sdir.mkdir(parents=True, exist_ok=True)
            for name in (CHECKPOINT_NAME, CONFIG_NAME, METRICS_NAME, WALLCLOCK_NAME, TIMING_NAME):
                remove_stale_temporaries(self.sdir / name)  # what killed writes left (a checkpoint's is large)
            if ckpt is None and self.last.is_file():  # its weights move aside first: the folder never holds
                self.last.replace(self.sdir / PREVIOUS_NAME)  # this run's config and logs beside another's last.pt
                print(f"stage {self.stage}: starting again; the earlier {self.last.name} is kept as "
                      f"{self.sdir / PREVIOUS_NAME} until the next fresh start", file=sys.stderr)
            dump_config(self.cfg, self.sdir / CONFIG_NAME)
            for name in (WALLCLOCK_NAME, TIMING_NAME):
                if ckpt is None:  # a fresh start (--overwrite, a stale stage): forget the older run's times and epochs
                    (self.sdir / name).unlink(missing_ok=True)
                else:  # resumed: a record half-written by the killed process must not swallow the next one
                    drop_torn_line(self.sdir / name)
        self.log = MetricsLog(self.sdir / METRICS_NAME, enabled=self.info.is_main,
                              resume_step=ckpt["step"] if ckpt else None, tensorboard_dir=self.sdir / "tb")
        # Wall-clock seconds spent in training steps (validation excluded), carried over a resume;
        # kept in wallclock.jsonl and the checkpoint's extra, never in `metrics` or metrics.jsonl
        # (which stay bitwise reproducible).
        self.clock = _StepClock(float(ckpt["extra"].get("train_seconds", 0.0)) if ckpt else 0.0)
        if ckpt is not None:
            self.step, self.epoch = ckpt["step"], ckpt["epoch"]
            self.sums = dict(ckpt["extra"].get("epoch_sums", {}))
            self.metrics = dict(ckpt["metrics"])
        for event, fn in default_callbacks(self):
            self.add_callback(event, fn)
        try:
            with InterruptGuard(active=self.info.world_size == 1) as self.interrupt:
                if ckpt is None:
                    self.validate()  # the starting point of the curves
                while self.epoch < self.stage_cfg.epochs:
                    self.run_epoch()
                    if self.epoch % self.cfg.train.val_every == 0 or self.epoch == self.stage_cfg.epochs:
                        self.validate()
                    self.save(finished=self.epoch == self.stage_cfg.epochs)
                    if self.interrupt.requested:
                        self._stop_interrupted(save=False)  # during validation or the save: saved just now
            self._check_replicas()
        finally:
            self.log.close()
        return self.metrics

    def _stop_interrupted(self, save: bool) -> None:
        """After a Ctrl-C: save last.pt at this step boundary (unless just saved), say what it holds, and
        raise KeyboardInterrupt."""
        self.trigger("on_stop")  # the progress bar ends first: the message gets a line of its own
        if save:
            self.save(finished=False)
        if self.epoch == self.stage_cfg.epochs:  # during the last validation or save: the stage is complete
            print(f"stage {self.stage}: interrupted after its last epoch; {self.last} holds the finished stage",
                  file=sys.stderr)
            raise KeyboardInterrupt
        in_epoch = self.step - self.epoch * self.steps_per_epoch
        print(f"stage {self.stage}: interrupted; {self.last} holds step {self.step} (epoch {self.epoch + 1} of "
              f"{self.stage_cfg.epochs}, step {in_epoch} of {self.steps_per_epoch}); `train --resume` continues "
              "from there", file=sys.stderr)
        raise KeyboardInterrupt

    def _check_replicas(self) -> None:
        """DDP: every process must end with the same weights."""
        digests = all_gather_objects(state_digest(self.raw_model.state_dict()), self.info)
        if len(set(digests)) != 1:
            raise Pose3DError(f"stage {self.stage}: the {self.info.world_size} processes ended with different weights "
                              f"(digests {[d[:12] for d in digests]})")
        if self.info.enabled:
            self.log.write("ddp_check", stage=self.stage, epoch=self.epoch, step=self.step,
                           world_size=self.info.world_size, digests=digests)


# ----------------------------------------------------------------------------- callbacks

class ProgressCallback:
    """A progress bar per epoch on the main process (pose3dlib.engine.progress refresh rules)."""

    def __init__(self) -> None:
        self.bar = None

    def on_batch_end(self, t: Trainer) -> None:
        if self.bar is None:
            self.bar = progress_bar(total=t.steps_per_epoch, initial=t.done_in_epoch, disable=not t.info.is_main,
                                    desc=f"stage {t.stage} epoch {t.epoch + 1}/{t.stage_cfg.epochs}")
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{t.values['loss']:.4g}", refresh=False)

    def on_epoch_end(self, t: Trainer) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def log_step(t: Trainer) -> None:
    """Every train.log_every_steps steps: a 'train' record with the step's losses and the
    learning rate the optimiser used for it."""
    if t.step % t.cfg.train.log_every_steps == 0:
        t.log.write("train", stage=t.stage, epoch=t.epoch + 1, step=t.step, lr=t.optimizer.param_groups[0]["lr"],
                    **t.values)


def log_epoch(t: Trainer) -> None:
    """An 'epoch' record with the epoch's mean losses."""
    t.log.write("epoch", stage=t.stage, epoch=t.epoch, step=t.step, lr=t.lr,
                **{k[len("train_"):]: v for k, v in t.epoch_means.items()})


def _fault_step(t: Trainer, env: str) -> bool:
    """Reliability tests: True right after the step the environment variable `env` names (0/unset: never)."""
    at = int(os.environ.get(env, "0") or 0)
    return bool(at) and t.step == at


def fault_kill(t: Trainer) -> None:
    """Reliability tests: SIGKILL right after step POSE3D_FAULT_KILL_AT_STEP, before any checkpoint of it."""
    if _fault_step(t, KILL_AT_STEP_ENV):
        os.kill(os.getpid(), signal.SIGKILL)


def fault_interrupt(t: Trainer) -> None:
    """Reliability tests: SIGINT to this process right after step POSE3D_FAULT_INTERRUPT_AT_STEP (a Ctrl-C)."""
    if _fault_step(t, INTERRUPT_AT_STEP_ENV):
        os.kill(os.getpid(), signal.SIGINT)


def periodic_checkpoint(t: Trainer) -> None:
    """Every train.checkpoint_every_steps steps (except at an epoch's end, which saves anyway)."""
    every = t.cfg.train.checkpoint_every_steps
    end_of_epoch = t.step == (t.epoch + 1) * t.steps_per_epoch
    if every and t.step % every == 0 and not end_of_epoch:
        t.save(finished=False)


def default_callbacks(t: Trainer) -> list[tuple[str, Callable[[Trainer], None]]]:
    """fit's callbacks, in order: log, progress, fault injection, then the periodic checkpoint."""
    bar = ProgressCallback()
    return [("on_batch_end", log_step), ("on_batch_end", bar.on_batch_end), ("on_batch_end", fault_kill),
            ("on_batch_end", fault_interrupt), ("on_batch_end", periodic_checkpoint), ("on_epoch_end", bar.on_epoch_end),
            ("on_epoch_end", log_epoch), ("on_stop", bar.on_epoch_end)]


def epoch_loader(dataset, batch: int, indices, num_workers: int, pin_memory: bool) -> DataLoader:
    """The training DataLoader of (the rest of) an epoch: `indices` in order, whole batches, workers
    that leave Ctrl-C to the training process (`ignore_interrupt`)."""
    return DataLoader(dataset, batch_size=batch, drop_last=True, sampler=ListSampler(indices),
                      num_workers=num_workers, pin_memory=pin_memory, worker_init_fn=ignore_interrupt)


def ignore_interrupt(worker_id: int) -> None:
    """A DataLoader worker's start: Ctrl-C (which a terminal sends to every process of the job) is
    left to the training process, which saves at the next step boundary; a worker that exited on it
    would end the run with "worker exited unexpectedly" instead, losing the steps since the last
    checkpoint. The workers stop with the training process either way."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _write_jsonl(path: Path, **record: Any) -> None:
    """Append one JSON line to a stage folder's wallclock.jsonl or timing.jsonl (never reproducible)."""
    import json

    append_line(path, json.dumps(record))


class _StepClock:
    """Accumulates wall-clock seconds between start() and stop() calls."""

    def __init__(self, seconds: float = 0.0) -> None:
        self._total, self._since = seconds, None

    def start(self) -> None:
        self._since = time.perf_counter()

    def stop(self) -> None:
        if self._since is not None:
            self._total += time.perf_counter() - self._since
            self._since = None

    def seconds(self) -> float:
        running = time.perf_counter() - self._since if self._since is not None else 0.0
        return round(self._total + running, 3)


def _saved_step(path: Path) -> str:
    try:
        return str(load_checkpoint(path)["step"])
    except CheckpointError:
        return "?"


# ----------------------------------------------------------------------------- CLI

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", action=CommandLinePath, default="configs/cpu.yaml", help="YAML config (default: configs/cpu.yaml)")
    parser.add_argument("--stage", type=int, choices=(1, 2, 3), required=True, help="training stage")
    parser.add_argument("--run-dir", action=CommandLinePath, default=None, help="run folder (default: runs/<profile>); writes <run-dir>/stage<N>/")
    start = parser.add_mutually_exclusive_group()  # continue the checkpoint, or replace it: not both
    start.add_argument("--resume", action="store_true", help="continue <run-dir>/stage<N>/last.pt exactly")
    start.add_argument("--overwrite", action="store_true", help="start the stage again over an existing last.pt")
    parser.add_argument("--init", action=CommandLinePath, default=None, metavar="CKPT",
                        help="start from these weights (default for stage N>1: <run-dir>/stage<N-1>/last.pt)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.stage1.epochs=3 (repeatable)")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides)
    run_dir = args.run_dir or default_run_dir(cfg.profile)
    metrics = fit(cfg, args.stage, run_dir, resume=args.resume, init_from=args.init, overwrite=args.overwrite)
    if int(os.environ.get("RANK", "0")) == 0:
        from .validation import shown_metrics

        print(f"stage {args.stage} done: {checkpoint_path(run_dir, args.stage)} ({shown_metrics(metrics)})")
    return 0

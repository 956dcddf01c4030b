"""The three training stages: `fit()` and the `python -m pose3dlib train` command.

    python -m pose3dlib train --config configs/cpu.yaml --stage 1 --run-dir runs/cpu
    python -m pose3dlib train --config configs/cpu.yaml --stage 2 --run-dir runs/cpu   # inits from stage 1
    torchrun --nproc_per_node 2 -m pose3dlib train ...                                 # same command, DDP

Run-folder layout (one folder per stage):

    <run_dir>/stage{N}/config.yaml    the full config of the run
    <run_dir>/stage{N}/last.pt        latest checkpoint (end of each epoch, and every
                                      train.checkpoint_every_steps steps); extra.finished
                                      is True once the stage has run all its epochs
    <run_dir>/stage{N}/metrics.jsonl  train / epoch / val records (pose3dlib.runlog)
    <run_dir>/stage{N}/tb/            TensorBoard scalars, when tensorboard is installed

Stage N > 1 starts from the weights of `<run_dir>/stage{N-1}/last.pt` unless `--init`
names another checkpoint. `--resume` continues `last.pt` exactly: the shuffling and
every sample's augmentation are pure functions of (seed, stage, epoch, index), mid-epoch
checkpoints record how many batches of the epoch are done and the resumed run skips
them, and on CPU (train.deterministic) the result is bitwise equal to an uninterrupted
run with the same seed, thread count and number of processes.
"""
from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from .checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from .config import Config, StageConfig, TrainConfig, config_to_dict, dump_config, load_config
from .distributed import (
    DistInfo, ListSampler, all_gather_objects, all_reduce_sum, barrier, broadcast_buffers, init_distributed,
    shard_indices, shutdown_distributed, state_digest,
)
from .device import resolve_device
from .errors import CheckpointError, ConfigError, Pose3DError
from .paths import resolve
from .runlog import MetricsLog

CHECKPOINT_NAME = "last.pt"
METRICS_NAME = "metrics.jsonl"
CONFIG_NAME = "config.yaml"
WALLCLOCK_NAME = "wallclock.jsonl"  # training seconds at each validation (not reproducible, so apart)
# Fault injection for the reliability tests: SIGKILL this process right after the given
# global step (counted within the stage) has been taken, before any checkpoint of it.
KILL_AT_STEP_ENV = "POSE3D_FAULT_KILL_AT_STEP"
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
        on CUDA when train.bf16, on CPU only when train.bf16_on_cpu as well.

        channels_last is on by default on every device (1.2-1.3 x faster fp32 training on this
        project's reference CPU, docs/benchmarks.md); bf16 on CPU is opt-in because it changes
        the numerics and is slow on CPUs without native bf16.
        """
        bf16 = tcfg.bf16 and (device.type == "cuda" or (device.type == "cpu" and tcfg.bf16_on_cpu))
        return cls(channels_last=tcfg.channels_last, bf16=bf16, compile=tcfg.compile)


# ----------------------------------------------------------------------------- small pieces

def stage_dir(run_dir: str | os.PathLike, stage: int) -> Path:
    """`<run_dir>/stage{N}` (run_dir resolved against the project root)."""
    return resolve(run_dir) / f"stage{stage}"


def checkpoint_path(run_dir: str | os.PathLike, stage: int) -> Path:
    """`<run_dir>/stage{N}/last.pt`."""
    return stage_dir(run_dir, stage) / CHECKPOINT_NAME


def configure_torch(train_cfg: TrainConfig, device: torch.device) -> None:
    """Threads and determinism settings (see TrainConfig.deterministic)."""
    if train_cfg.num_threads > 0:
        torch.set_num_threads(train_cfg.num_threads)
    if train_cfg.deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def lr_at_epoch(stage_cfg: StageConfig, epoch: int) -> float:
    """Learning rate of 0-based `epoch`: lr * factor ** (number of drop epochs <= epoch)."""
    drops = sum(1 for e in stage_cfg.lr_drop_epochs if epoch >= e)
    return stage_cfg.lr * stage_cfg.lr_drop_factor ** drops


def build_optimizer(params, train_cfg: TrainConfig, lr: float) -> torch.optim.Optimizer:
    """RMSprop (the paper's) or Adam, from the train config."""
    if train_cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=train_cfg.rmsprop_alpha, eps=train_cfg.eps,
                                   momentum=train_cfg.momentum, weight_decay=train_cfg.weight_decay)
    if train_cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, eps=train_cfg.eps, weight_decay=train_cfg.weight_decay)
    raise ConfigError(f"config key 'train.optimizer': expected 'rmsprop' or 'adam', got {train_cfg.optimizer!r}")


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def config_differences(a: dict, b: dict) -> list[str]:
    """Dotted keys whose values differ between two config dicts, as 'key: a -> b'."""
    fa, fb = _flatten(a), _flatten(b)
    return [f"{k}: {fa.get(k)!r} -> {fb.get(k)!r}" for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (identifies the checkpoint a stage started from)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def default_init(run_dir: str | os.PathLike, stage: int) -> Path | None:
    """The checkpoint stage N starts from by default: stage N-1's last.pt (None for stage 1)."""
    return checkpoint_path(run_dir, stage - 1) if stage > 1 else None


def _load_init_weights(path: Path, cfg: Config) -> dict[str, torch.Tensor]:
    """Model weights of an init checkpoint, checked against cfg.model and finished-ness."""
    ckpt = load_checkpoint(path)
    diffs = config_differences(ckpt["config"].get("model", {}), config_to_dict(cfg.model))
    if diffs:
        raise CheckpointError(f"{path}: its model config differs from this run's ({'; '.join(diffs)})")
    extra = ckpt.get("extra", {})
    if not extra.get("finished", False):
        raise CheckpointError(
            f"{path}: stage {ckpt.get('stage')} stopped after epoch {ckpt.get('epoch')}, before its end; "
            f"finish it first with `python -m pose3dlib train ... --stage {ckpt.get('stage')} --resume`"
        )
    return ckpt["model"]


def _init_path_for(cfg: Config, stage: int, run_dir: str | os.PathLike, init_from: str | os.PathLike | None) -> Path | None:
    if init_from is not None:
        return resolve(init_from)
    path = default_init(run_dir, stage)
    if path is not None and not path.is_file():
        raise CheckpointError(
            f"stage {stage} starts from stage {stage - 1}'s checkpoint, but {path} does not exist; make it with "
            f"`python -m pose3dlib train --config <config> --stage {stage - 1} --run-dir {run_dir}` or pass --init CKPT"
        )
    return path


# ----------------------------------------------------------------------------- status for notebooks

def stage_status(cfg: Config, stage: int, run_dir: str | os.PathLike, init_from: str | os.PathLike | None = None) -> str:
    """State of a stage's run folder for this config.

    "finished": last.pt ran all epochs with this config and from the current init checkpoint;
    "partial": an unfinished last.pt with this config (continue it with resume=True);
    "stale": a last.pt made with another config or init; "absent": no last.pt.
    """
    path = checkpoint_path(run_dir, stage)
    if not path.is_file():
        return "absent"
    ckpt = load_checkpoint(path)
    if config_differences(ckpt["config"], config_to_dict(cfg)):
        return "stale"
    extra = ckpt.get("extra", {})
    init = resolve(init_from) if init_from is not None else default_init(run_dir, stage)
    if init is not None and (not init.is_file() or extra.get("init_digest") != file_digest(init)):
        return "stale"
    return "finished" if extra.get("finished", False) else "partial"


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
    from .data.fusion import FusionDataset
    from .data.h36m import H36MDataset
    from .data.mpii import MPIIDataset

    d, seed = cfg.data, stage_seed(cfg.seed, stage)
    mpii_train = MPIIDataset(resolve(d.mpii_dir), "train", d, augment=True, seed=seed)
    h36m_train = H36MDataset(resolve(d.h36m_dir), "train", d, augment=d.augment_3d, seed=seed)
    train = FusionDataset(mpii_train, h36m_train, stage_cfg.ratio_3d, samples_2d=stage_cfg.samples_2d_per_epoch, seed=seed,
                          mix_2d=stage_cfg.mix_2d)
    val_2d = MPIIDataset(resolve(d.mpii_dir), "val", d, augment=False, seed=cfg.seed)
    val_wild = H36MDataset(resolve(d.wild_val_dir), "test", d, augment=False, seed=cfg.seed) if d.wild_val_dir else None
    # Lab validation: data.lab_val_dir when set (tuning must not look at the test split).
    val_3d = H36MDataset(resolve(d.lab_val_dir or d.h36m_dir), "test", d, augment=False, seed=cfg.seed)
    h36m_plain = H36MDataset(resolve(d.h36m_dir), "train", d, augment=False, seed=cfg.seed)
    return train, val_2d, val_3d, h36m_plain, val_wild


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
        CheckpointError / ConfigError for missing or incompatible checkpoints and configs.
    """
    stage_cfg = cfg.train.stage(stage)  # checks 1..3
    device = resolve_device(cfg.train.device)
    owns_group = not (torch.distributed.is_available() and torch.distributed.is_initialized())
    info = init_distributed(device)
    if device.type == "cuda" and info.enabled:
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    try:
        return _fit(cfg, stage, stage_cfg, run_dir, resume, init_from, overwrite, device, info)
    finally:
        if owns_group:
            shutdown_distributed(info)


def _fit(cfg: Config, stage: int, stage_cfg: StageConfig, run_dir, resume: bool, init_from, overwrite: bool,
         device: torch.device, info: DistInfo) -> dict:
    from tqdm import tqdm

    from .losses import total_loss
    from .model import build_model, preprocess

    tcfg = cfg.train
    configure_torch(tcfg, device)
    sdir = stage_dir(run_dir, stage)
    last = sdir / CHECKPOINT_NAME
    cfg_dict = config_to_dict(cfg)

    # ---- where we start: a checkpoint of this stage, an init checkpoint, or random weights
    ckpt = None
    if last.is_file():
        if resume:
            ckpt = load_checkpoint(last)
            diffs = config_differences(ckpt["config"], cfg_dict)
            if diffs:
                raise ConfigError(f"--resume: {last} was made with another config ({'; '.join(diffs)}); "
                                  "use the same config or another --run-dir")
            if ckpt["extra"].get("world_size", 1) != info.world_size:
                raise ConfigError(f"--resume: {last} was made by {ckpt['extra'].get('world_size', 1)} process(es), "
                                  f"this run has {info.world_size}; resume with the same number")
            if ckpt["extra"].get("finished", False):
                if info.is_main:
                    print(f"stage {stage}: {last} has already finished all {stage_cfg.epochs} epochs", file=sys.stderr)
                return dict(ckpt["metrics"])
        elif not overwrite:
            raise Pose3DError(f"{last} exists; pass --resume to continue it, --overwrite to start the stage again, "
                              "or choose another --run-dir")
    elif resume and info.is_main:
        print(f"stage {stage}: no checkpoint at {last}; starting the stage from the beginning", file=sys.stderr)

    init_path = init_digest = None
    if ckpt is None:
        init_path = _init_path_for(cfg, stage, run_dir, init_from)
        init_digest = file_digest(init_path) if init_path is not None else None
    else:
        init_path = ckpt["extra"].get("init_from")
        init_digest = ckpt["extra"].get("init_digest")

    torch.manual_seed(stage_seed(cfg.seed, stage))
    model = build_model(cfg.model)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
    elif init_path is not None:
        try:
            model.load_state_dict(_load_init_weights(Path(init_path), cfg))
        except RuntimeError as e:
            raise CheckpointError(f"{init_path}: weights do not fit this model ({str(e).splitlines()[0]})") from None
    switches = SpeedSwitches.for_training(tcfg, device)
    model.to(device)
    if switches.channels_last:
        model.to(memory_format=torch.channels_last)
    raw_model = model  # what checkpoints save (no DDP / compile wrappers)

    optimizer = build_optimizer(model.parameters(), tcfg, stage_cfg.lr)
    if ckpt is not None and ckpt.get("optimizer") is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
        rng = ckpt["extra"].get("rng", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
    if info.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if switches.compile:
        model = torch.compile(model)

    # ---- data
    train_ds, val_2d, val_3d, h36m_plain, val_wild = build_datasets(cfg, stage, stage_cfg)
    batch = tcfg.batch_size  # per process
    train_ds.set_epoch(0)
    per_rank = -(-len(train_ds) // info.world_size)
    steps_per_epoch = per_rank // batch
    if steps_per_epoch == 0:
        raise ConfigError(f"train.batch_size={batch} is larger than the {per_rank} samples per process of an epoch "
                          f"of stage {stage}; lower it or use more data")
    if ckpt is not None and ckpt["extra"].get("steps_per_epoch") != steps_per_epoch:
        raise CheckpointError(f"--resume: {last} has {ckpt['extra'].get('steps_per_epoch')} steps per epoch, "
                              f"the data now give {steps_per_epoch}; was the dataset regenerated?")

    from .decode import mean_bone_sum_mm
    from .validation import evenly_spaced_subset, mean_depth, validate

    val_kwargs: dict[str, Any] = {}
    if info.is_main:
        eval_bs = cfg.eval.batch_size
        val_kwargs = dict(
            loader_2d=DataLoader(evenly_spaced_subset(val_2d, tcfg.val_samples), batch_size=eval_bs),
            loader_3d=DataLoader(evenly_spaced_subset(val_3d, tcfg.val_samples), batch_size=eval_bs),
            mean_depth_16=mean_depth(h36m_plain, tcfg.val_samples, eval_bs),
            device=device, input_format=cfg.model.input_format, channels_last=switches.channels_last, bf16=switches.bf16,
            head_px_2d=torch.from_numpy(val_2d.normalize) if val_2d.normalize is not None else None,
            loader_3d_wild=(DataLoader(evenly_spaced_subset(val_wild, tcfg.val_samples), batch_size=eval_bs)
                            if val_wild is not None else None),
            bone_sum_mm=mean_bone_sum_mm(h36m_plain.joints_3d_mm),
        )

    # ---- bookkeeping
    if info.is_main:
        sdir.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, sdir / CONFIG_NAME)
    log = MetricsLog(sdir / METRICS_NAME, enabled=info.is_main, resume_step=ckpt["step"] if ckpt else None,
                     tensorboard_dir=sdir / "tb")
    step = ckpt["step"] if ckpt else 0
    epoch = ckpt["epoch"] if ckpt else 0  # completed epochs
    extra0 = ckpt["extra"] if ckpt else {}
    sums: dict[str, float] = dict(extra0.get("epoch_sums", {}))  # loss-term sums of the current epoch
    metrics: dict[str, float] = dict(ckpt["metrics"]) if ckpt else {}
    kill_at = int(os.environ.get(KILL_AT_STEP_ENV, "0") or 0)
    # Wall-clock seconds spent in training steps (validation excluded), carried over a resume;
    # kept in WALLCLOCK_NAME and the checkpoint's extra, never in `metrics` or metrics.jsonl
    # (which stay bitwise reproducible).
    clock = _StepClock(float(extra0.get("train_seconds", 0.0)))

    def save(finished: bool) -> None:
        broadcast_buffers(raw_model, info)
        metrics.update({"steps": float(step), "epochs": float(epoch)})
        if info.is_main:
            extra = {
                "finished": finished, "steps_per_epoch": steps_per_epoch, "world_size": info.world_size,
                "epoch_sums": dict(sums), "rng": {"torch": torch.get_rng_state()},
                "train_seconds": clock.seconds(),
                "init_from": str(init_path) if init_path is not None else None, "init_digest": init_digest,
            }
            save_checkpoint(last, make_checkpoint(
                model_state=raw_model.state_dict(), config=cfg_dict, stage=stage, epoch=epoch, step=step,
                optimizer_state=optimizer.state_dict(), metrics=metrics, extra=extra))
        barrier(info)

    if ckpt is None and info.is_main:  # the starting point of the curves
        val = validate(raw_model, preprocess, **val_kwargs)
        metrics.update({f"val_{k}": v for k, v in val.items()})
        log.write("val", stage=stage, epoch=0, step=0, **val)
        (sdir / WALLCLOCK_NAME).unlink(missing_ok=True)  # a fresh start: forget an older run's times
        _write_wallclock(sdir, stage=stage, epoch=0, step=0, train_seconds=0.0)

    try:
        while epoch < stage_cfg.epochs:
            lr = lr_at_epoch(stage_cfg, epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            train_ds.set_epoch(epoch)
            order = shard_indices(len(train_ds), seed=cfg.seed, stage=stage, epoch=epoch,
                                  rank=info.rank, world_size=info.world_size)
            done_in_epoch = step - epoch * steps_per_epoch
            loader = DataLoader(
                train_ds, batch_size=batch, drop_last=True,
                sampler=ListSampler(order[done_in_epoch * batch : steps_per_epoch * batch]),
                num_workers=cfg.data.num_workers, pin_memory=device.type == "cuda",
            )
            bar = tqdm(loader, total=steps_per_epoch, initial=done_in_epoch, file=sys.stderr, mininterval=1.0,
                       disable=not info.is_main, desc=f"stage {stage} epoch {epoch + 1}/{stage_cfg.epochs}")
            clock.start()
            for sample in bar:
                sample = {k: v.to(device, non_blocking=True) for k, v in sample.items()}
                images = preprocess(sample["image"], cfg.model.input_format)  # (B, 3, S, S)
                if switches.channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=switches.bf16):
                    out = model(images)
                out = {"heatmaps": [h.float() for h in out["heatmaps"]], "depth": out["depth"].float()}
                loss, terms = total_loss(out, sample, heatmap_weight=cfg.loss.heatmap_weight,
                                         depth_weight=stage_cfg.depth_weight,
                                         geometric_weight=stage_cfg.geometric_weight)
                terms = {k: v for k, v in terms.items() if k != "total"}  # "loss" below is the total
                names = ["loss", *terms]
                values = torch.stack([loss.detach().float(), *[terms[k].detach().float().reshape(()) for k in terms]])
                values = (all_reduce_sum(values, info) / info.world_size).cpu().tolist()
                bad = [n for n, v in zip(names, values) if not math.isfinite(v)]
                if bad:
                    term = next((n for n in bad if n != "loss"), "loss")
                    raise NonFiniteLossError(
                        f"stage {stage}, step {step + 1} (epoch {epoch + 1}): loss term {term!r} is "
                        f"{values[names.index(term)]}; training stopped, "
                        + (f"{last} keeps step {_saved_step(last)}" if last.is_file() else "no checkpoint was written yet")
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                for n, v in zip(names, values):
                    sums[n] = sums.get(n, 0.0) + v
                sums["count"] = sums.get("count", 0.0) + 1.0
                if step % tcfg.log_every_steps == 0:
                    log.write("train", stage=stage, epoch=epoch + 1, step=step, lr=lr, **dict(zip(names, values)))
                bar.set_postfix(loss=f"{values[0]:.4g}", refresh=False)
                if kill_at and step == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
                end_of_epoch = step == (epoch + 1) * steps_per_epoch
                if tcfg.checkpoint_every_steps and step % tcfg.checkpoint_every_steps == 0 and not end_of_epoch:
                    save(finished=False)
            clock.stop()
            bar.close()
            epoch += 1
            count = max(sums.pop("count", 1.0), 1.0)
            means = {f"train_{k}": v / count for k, v in sums.items()}
            sums = {}
            metrics.update(means)
            log.write("epoch", stage=stage, epoch=epoch, step=step, lr=lr, **{k[6:]: v for k, v in means.items()})
            if info.is_main and (epoch % tcfg.val_every == 0 or epoch == stage_cfg.epochs):
                val = validate(raw_model, preprocess, **val_kwargs)
                metrics.update({f"val_{k}": v for k, v in val.items()})
                log.write("val", stage=stage, epoch=epoch, step=step, **val)
                _write_wallclock(sdir, stage=stage, epoch=epoch, step=step, train_seconds=clock.seconds())
            save(finished=epoch == stage_cfg.epochs)
        digests = all_gather_objects(state_digest(raw_model.state_dict()), info)
        if len(set(digests)) != 1:
            raise Pose3DError(f"stage {stage}: the {info.world_size} processes ended with different weights "
                              f"(digests {[d[:12] for d in digests]})")
        if info.enabled:
            log.write("ddp_check", stage=stage, epoch=epoch, step=step, world_size=info.world_size, digests=digests)
    finally:
        log.close()
    return metrics


def _write_wallclock(sdir: Path, **record: Any) -> None:
    """Append one JSON line to `<stage dir>/wallclock.jsonl` (time-to-accuracy curves)."""
    import json

    with open(sdir / WALLCLOCK_NAME, "a") as f:
        f.write(json.dumps(record) + "\n")


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
    parser.add_argument("--config", default="configs/cpu.yaml", help="YAML config (default: configs/cpu.yaml)")
    parser.add_argument("--stage", type=int, choices=(1, 2, 3), required=True, help="training stage")
    parser.add_argument("--run-dir", default=None, help="run folder (default: runs/<profile>); writes <run-dir>/stage<N>/")
    parser.add_argument("--resume", action="store_true", help="continue <run-dir>/stage<N>/last.pt exactly")
    parser.add_argument("--overwrite", action="store_true", help="start the stage again over an existing last.pt")
    parser.add_argument("--init", default=None, metavar="CKPT",
                        help="start from these weights (default for stage N>1: <run-dir>/stage<N-1>/last.pt)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.stage1.epochs=3 (repeatable)")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides)
    run_dir = args.run_dir or f"runs/{cfg.profile}"
    metrics = fit(cfg, args.stage, run_dir, resume=args.resume, init_from=args.init, overwrite=args.overwrite)
    if int(os.environ.get("RANK", "0")) == 0:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        print(f"stage {args.stage} done: {checkpoint_path(run_dir, args.stage)} ({shown})")
    return 0

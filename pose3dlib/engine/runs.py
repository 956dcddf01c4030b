"""The run-folder layout and stage status: the one owner of `<run>/stage{N}/last.pt`.

    <run_dir>/stage{N}/config.yaml    the full config of the stage
    <run_dir>/stage{N}/last.pt        latest checkpoint; extra.finished is True once the
                                      stage has run all its epochs
    <run_dir>/stage{N}/metrics.jsonl  train / epoch / val records (pose3dlib.engine.runlog)
    <run_dir>/stage{N}/wallclock.jsonl training seconds at each validation (time to accuracy)
    <run_dir>/stage{N}/timing.jsonl   one line per epoch that a training process ran (the
                                      main one under DDP): seconds waiting for the loader, in
                                      optimiser steps and in the per-step callbacks (mid-epoch
                                      checkpoints, logging); the epoch's end (validation, its
                                      checkpoint) is in none. On CUDA the asynchronous copy to
                                      the GPU lands in the steps. `resumed`: the process began
                                      the epoch part-way, at `first_step`; a process killed
                                      after writing an epoch's line and before its checkpoint
                                      leaves that epoch twice (same `first_step`)
    <run_dir>/stage{N}/tb/            TensorBoard scalars, when tensorboard is installed
    <run_dir>/stage{N}/.lock          held (flock) by the process writing the stage
    <run_dir>/metrics.csv             evaluation of every stage (pose3dlib.evaluation.evaluate)
    <run_dir>/evaluated.json          what a sweep's or ablation's evaluation scored (checkpoint
                                      and config digests), so a re-run skips it when unchanged

Training, evaluation, sweeps, the demo and the notebooks all find files through here.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import CheckpointError, Pose3DError
from .paths import RUNS_DIR, resolve

STAGES = (1, 2, 3)
CHECKPOINT_NAME = "last.pt"
METRICS_NAME = "metrics.jsonl"
WALLCLOCK_NAME = "wallclock.jsonl"  # training seconds at each validation (not reproducible, so apart)
TIMING_NAME = "timing.jsonl"  # where an epoch's seconds went, per epoch and process launch (not reproducible)
CONFIG_NAME = "config.yaml"
LOCK_NAME = ".lock"
EVAL_CSV_NAME = "metrics.csv"
# Run folders of this profile are the notebook tests' (make test), never a default for the demo.
TEST_PROFILE = "smoke"
EVAL_PREFIX = "eval."  # config keys that only evaluation reads (training_differences leaves them out)
# Keys that change only test rows, never what a stage trains on (training_differences leaves them out):
# the synthetic lab test people (the generator's training rows do not depend on their number).
TEST_ONLY_KEYS = ("synthetic.h36m_test_subjects",)
# Settings of how a stage runs, not of what it trains: its weights come out bitwise the same with
# any value (data worker processes: each sample's augmentation is seeded by its index,
# docs/benchmarks.md; how often losses are logged), so changing one neither blocks --resume nor
# makes a finished stage stale.
RUN_ONLY_KEYS = ("data.num_workers", "train.log_every_steps")


def default_run_dir(profile: str) -> Path:
    """`runs/<profile>`: where a profile's stages go unless told otherwise."""
    return RUNS_DIR / profile


def stage_name(stage: int) -> str:
    """'stage{N}': the stage's folder name and its label in metrics.csv."""
    if stage not in STAGES:
        raise Pose3DError(f"stage must be 1, 2 or 3, got {stage!r}")
    return f"stage{stage}"


def stage_dir(run_dir: str | os.PathLike, stage: int) -> Path:
    """`<run_dir>/stage{N}` (run_dir resolved against the project root)."""
    return resolve(run_dir) / stage_name(stage)


def checkpoint_path(run_dir: str | os.PathLike, stage: int) -> Path:
    """`<run_dir>/stage{N}/last.pt`."""
    return stage_dir(run_dir, stage) / CHECKPOINT_NAME


def metrics_log_path(run_dir: str | os.PathLike, stage: int) -> Path:
    """`<run_dir>/stage{N}/metrics.jsonl`."""
    return stage_dir(run_dir, stage) / METRICS_NAME


def eval_csv_path(run_dir: str | os.PathLike) -> Path:
    """`<run_dir>/metrics.csv`, the evaluation of every stage."""
    return resolve(run_dir) / EVAL_CSV_NAME


def figures_path(run_dir: str | os.PathLike, figures_dir: str | os.PathLike = "") -> str:
    """Where a notebook's figures go: `figures_dir` when given, else `<run_dir>/figures`.

    So a notebook run on its own run folder never writes over another run's figures; the
    Makefile names `figures/` for the committed cpu run.
    """
    return os.fspath(figures_dir) if os.fspath(figures_dir) else os.path.join(os.fspath(run_dir), "figures")


def default_init(run_dir: str | os.PathLike, stage: int) -> Path | None:
    """The checkpoint stage N starts from by default: stage N-1's last.pt (None for stage 1)."""
    return checkpoint_path(run_dir, stage - 1) if stage > 1 else None


def sweep_dir(root: str | os.PathLike, profile: str, key: str) -> Path:
    """Output folder of a multi-run command: `<root>/<profile>/<key>` (one per profile and swept key)."""
    for name, value in (("profile", profile), ("key", key)):
        if not value or "/" in value or value.startswith("."):
            raise Pose3DError(f"sweep {name} {value!r}: expected a plain name (no '/', not empty)")
    return resolve(root) / profile / key


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (identifies the checkpoint a stage started from)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


EVALUATED_NAME = "evaluated.json"  # beside metrics.csv: what that evaluation scored (evaluation_key)
LIBRARY_DIR = Path(__file__).resolve().parents[1]  # pose3dlib/


def library_digest(root: Path = LIBRARY_DIR) -> str:
    """SHA-256 over the names and bytes of every .py file of the library (the Makefile's LIB_SOURCES):
    an evaluation recorded with other library code is not reused (a fixed metric scores again)."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + file_digest(path).encode())
    return h.hexdigest()


def evaluation_key(run_dir: str | os.PathLike, stages, cfg) -> dict:
    """What an evaluation of `stages` in `run_dir` scored: each stage checkpoint's bytes, the whole
    config, the library code that scored them (`library_digest`), and the metrics.csv it wrote (so a
    metrics.csv rewritten since, by a manual `evaluate` with other settings, no longer counts as
    this evaluation)."""
    import json

    from ..config import config_to_dict

    checkpoints = {}
    for stage in stages:
        path = checkpoint_path(run_dir, stage)
        checkpoints[stage_name(stage)] = file_digest(path) if path.is_file() else None
    config = hashlib.sha256(json.dumps(config_to_dict(cfg), sort_keys=True).encode()).hexdigest()
    csv = eval_csv_path(run_dir)
    return {"checkpoints_sha256": checkpoints, "config_sha256": config, "library_sha256": library_digest(),
            "metrics_csv_sha256": file_digest(csv) if csv.is_file() else None}


def record_evaluation(run_dir: str | os.PathLike, stages, cfg) -> Path:
    """Write `<run_dir>/evaluated.json` after an evaluation of `stages` wrote metrics.csv."""
    import json

    from .atomic_io import atomic_write_text

    return atomic_write_text(resolve(run_dir) / EVALUATED_NAME, json.dumps(evaluation_key(run_dir, stages, cfg)) + "\n")


def is_evaluated(run_dir: str | os.PathLike, stages, cfg) -> bool:
    """True when metrics.csv holds an evaluation of `stages` with `cfg` of the checkpoints there now."""
    import json

    record = resolve(run_dir) / EVALUATED_NAME
    if not eval_csv_path(run_dir).is_file() or not record.is_file():
        return False
    try:
        return json.loads(record.read_text()) == evaluation_key(run_dir, stages, cfg)
    except ValueError:
        return False


def training_differences(stored_config: dict, cfg, stage: int | None = None) -> list[str]:
    """Config differences ('key: a -> b') that change what a stage trains.

    Left out: the `eval.*` keys, which only evaluation reads, the TEST_ONLY_KEYS and RUN_ONLY_KEYS, and, given `stage`, the
    settings of the later stages (`train.stage{m}.*`, m > stage), which it never reads; a
    change to an earlier stage reaches it through its init checkpoint (`stage_status`).
    """
    from ..config import config_differences, config_to_dict

    ignored = (EVAL_PREFIX, *(f"{k}:" for k in TEST_ONLY_KEYS + RUN_ONLY_KEYS)) + tuple(
        f"train.stage{m}." for m in STAGES if stage is not None and m > stage)
    return [d for d in config_differences(stored_config, config_to_dict(cfg)) if not d.startswith(ignored)]


def stage_status(cfg, stage: int, run_dir: str | os.PathLike, init_from: str | os.PathLike | None = None) -> str:
    """State of a stage's run folder for this config.

    "finished": last.pt ran all epochs with this config and from the current init checkpoint;
    "partial": an unfinished last.pt with this config (continue it with resume=True);
    "stale": a last.pt made with another config or init; "absent": no last.pt.
    The evaluation options (`eval.*`), later stages' settings, TEST_ONLY_KEYS and RUN_ONLY_KEYS do
    not change what a stage trains, so they are not compared (`training_differences`); the start
    checkpoint is (`stale_reasons`).
    """
    from .checkpoint import load_checkpoint

    path = checkpoint_path(run_dir, stage)
    if not path.is_file():
        return "absent"
    ckpt = load_checkpoint(path)
    if stale_reasons(cfg, stage, run_dir, init_from, ckpt):
        return "stale"
    return "finished" if ckpt.get("extra", {}).get("finished", False) else "partial"


def stale_reasons(cfg, stage: int, run_dir: str | os.PathLike, init_from: str | os.PathLike | None = None,
                  ckpt: dict | None = None) -> list[str]:
    """Why a stage's last.pt is "stale" for this config ([] when it is not, or there is none): the
    config differences that change what it trains ('key: a -> b', `training_differences`) and a
    start checkpoint other than the one it was trained from."""
    from .checkpoint import load_checkpoint

    path = checkpoint_path(run_dir, stage)
    if ckpt is None:
        if not path.is_file():
            return []
        ckpt = load_checkpoint(path)
    reasons = training_differences(ckpt["config"], cfg, stage)
    init = resolve(init_from) if init_from is not None else default_init(run_dir, stage)
    if init is not None and not started_from(ckpt, init):
        reasons.append(f"its start checkpoint {init} is not the one it was trained from"
                       + ("" if init.is_file() else " (missing)"))
    return reasons


def started_from(ckpt: dict, init: Path) -> bool:
    """Whether the stage checkpoint `ckpt` was trained from the checkpoint file `init` as it is now
    (its recorded `init_digest`); False for a missing `init` or a checkpoint that started from nothing."""
    started = ckpt.get("extra", {}).get("init_digest")
    return started is not None and init.is_file() and file_digest(init) == started


def is_finished(path: Path) -> bool:
    """True when the checkpoint at `path` exists and its stage ran all its epochs."""
    from .checkpoint import load_checkpoint

    return path.is_file() and bool(load_checkpoint(path).get("extra", {}).get("finished", False))


def newest_finished_checkpoint(stage: int = 3, root: str | os.PathLike | None = None,
                               unreadable: list[str] | None = None) -> Path:
    """The most recently written finished `<root>/<run>/stage{N}/last.pt` (root: runs/), smoke runs excluded.

    A candidate that cannot be read (damaged, or stored by an incompatible pose3dlib) is passed
    over, with its error appended to `unreadable` when given; the Pose3DError raised when no
    candidate is left names them.
    """
    from .checkpoint import load_checkpoint

    root = RUNS_DIR if root is None else root
    found, passed_over = [], []
    for path in sorted(resolve(root).glob(f"*/{stage_name(stage)}/{CHECKPOINT_NAME}")):
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError as e:
            passed_over.append(str(e))
            continue
        if ckpt.get("extra", {}).get("finished", False) and ckpt["config"].get("profile") != TEST_PROFILE:
            found.append(path)
    if unreadable is not None:
        unreadable += passed_over
    if not found:
        raise Pose3DError(
            f"no finished stage-{stage} checkpoint under {resolve(root)} (smoke-profile runs do not count"
            + (f"; unreadable: {'; '.join(passed_over)}" if passed_over else "") + "); "
            "make one with `make reproduce` or pass --checkpoint CKPT (e.g. a converted original model "
            "from `python -m pose3dlib convert-hg3d`)")
    return max(found, key=lambda p: p.stat().st_mtime)


@contextlib.contextmanager
def stage_lock(sdir: Path) -> Iterator[Path]:
    """Hold `<sdir>/.lock` while writing a stage folder; a second writer gets Pose3DError at once.

    The lock is an flock on the file, which the kernel releases when its process ends
    however it ends, so a lock left by a killed run never blocks the next one. The file
    holds the writer's PID for the message.
    """
    sdir.mkdir(parents=True, exist_ok=True)
    path = sdir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise Pose3DError(f"{sdir} is being written by another process (PID {holder}); "
                              "wait for it to finish or use another --run-dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the flock

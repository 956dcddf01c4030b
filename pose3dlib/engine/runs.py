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
                                      leaves that epoch twice (same `first_step`); `allocator`:
                                      the process's memory allocator (engine/allocator.py)
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
from .paths import CONFIG_DIR, RUNS_DIR, project_relative, resolve

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
EVAL_PREFIX = "eval."  # evaluation options: training reads only eval.batch_size, for validation, which changes no weight (training_differences leaves them out)
# Keys that change only test rows, never what a stage trains on (training_differences leaves them out):
# the synthetic lab test people (the generator's training rows do not depend on their number), the
# size of the wild test split and its folder (which training never reads). An evaluation record
# compares the whole config, so a change to one of them still scores the stages again.
TEST_ONLY_KEYS = ("synthetic.h36m_test_subjects", "synthetic.wild_test", "data.wild_test_dir")
# Settings of how a stage runs, not of what it trains: its weights come out bitwise the same with
# any value (data worker processes: each sample's augmentation is seeded by its index,
# docs/benchmarks.md; how often losses are logged, the network validated and a checkpoint written
# between epochs; decoded pictures kept in memory), so changing one neither blocks --resume nor makes
# a finished stage stale.
RUN_ONLY_KEYS = ("data.num_workers", "train.log_every_steps", "synthetic.workers", "data.image_cache_mb",
                 "train.val_every", "train.checkpoint_every_steps")
# Where the official downloads lie, and the training folder each one's conversion fills (None: the
# MPI-INF-3DHP test set, which no stage trains on). Only the converters read them. A difference in
# one is left out where that training folder holds synthetic data (a synthetic run is not stale
# because the downloads were named), and kept where it holds a converted set: there another download
# means other training data (a set converted by hand records no download, `data_identities`).
DOWNLOAD_KEYS = {"data.raw_h36m_dir": "h36m_dir", "data.raw_mpii_dir": "mpii_dir", "data.raw_3dhp_dir": None}
# Settings of a download's conversion, and the training folder it fills: like DOWNLOAD_KEYS, left out where
# that folder holds synthetic data (a converted set's download fingerprint records them, `data_identities`).
CONVERSION_KEYS = {"data.h36m_drop_damaged": "h36m_dir"}
FILLED_BY = {**DOWNLOAD_KEYS, **CONVERSION_KEYS}  # both: key -> the training folder its conversion fills
# What, besides the files, a converted set's fingerprint records, by training folder (`_download_change`)
CONVERSION_SETTINGS = {"h36m_dir": "data.h36m_drop_damaged, how the crops are cut", "wild_test_dir": "how the crops are cut"}
# Keys a stage may differ in from the stage it starts from: each stage draws its own randomness from
# the seed (train.stage_seed), so a start trained with another seed is still the recipe's (seed sweeps
# share one Stage 1 this way).
SEED_KEYS = ("seed",)
# The data folders a stage's weights are trained on: a checkpoint records which synthetic set, or which
# state of which download, each held (`data_identities`), so a stage trained on other data (regenerated
# by a newer generator or with another seed; a download changed in place and converted again) is stale
# even where the config did not change.
TRAINING_DATA_KEYS = ("h36m_dir", "mpii_dir")


# A profile's run on the converted real downloads (make reproduce REAL_DATA=True) keeps its own
# folder beside the synthetic one: runs/<profile>-real (the Makefile's RUN_DIR spells it too).
REAL_DATA_SUFFIX = "-real"


def run_name(profile: str, real_data: bool = False) -> str:
    """A profile's run name: `<profile>`, or `<profile>-real` on the converted real downloads (its
    run folder under runs/, and its folder under a sweep's root)."""
    return profile + (REAL_DATA_SUFFIX if real_data else "")


def default_run_dir(profile: str, real_data: bool = False) -> Path:
    """`runs/<run_name>`: where a profile's stages go unless told otherwise."""
    return RUNS_DIR / run_name(profile, real_data)


def run_dir_profile(run_dir: str | os.PathLike) -> str | None:
    """The profile whose own run folder `run_dir` is: `runs/<name>` or `runs/<name>-real` for a config of the
    project's (`configs/<name>.yaml`); None for any other folder (a sweep's, the ablation's, one of yours)."""
    path = resolve(run_dir).resolve()  # links followed on both sides: runs/ may be a link to another disk
    if path.parent != RUNS_DIR.resolve():
        return None
    name = path.name.removesuffix(REAL_DATA_SUFFIX)
    return name if (CONFIG_DIR / f"{name}.yaml").is_file() else None


def check_run_dir_profile(profile: str, run_dir: str | os.PathLike) -> None:
    """Pose3DError when `run_dir` is another profile's own run folder (`run_dir_profile`): a smoke network
    trained or scored into runs/cpu would replace the cpu run's stages or the metrics.csv the README reads."""
    owner = run_dir_profile(run_dir)
    if owner is not None and owner != profile:
        raise Pose3DError(f"run folder {run_dir} is the {owner!r} profile's (configs/{owner}.yaml), but the config is "
                          f"profile {profile!r}: its networks and tables would replace that run's; use the run folder "
                          f"{project_relative(default_run_dir(profile))} (or one of your own), or the config "
                          f"configs/{owner}.yaml")


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


def sweep_dir(root: str | os.PathLike, name: str, key: str) -> Path:
    """Output folder of a multi-run command: `<root>/<name>/<key>` (one per run name, `run_name`: the
    profile, or `<profile>-real` on the real downloads, and swept key)."""
    for what, value in (("name", name), ("key", key)):
        if not value or "/" in value or value.startswith("."):
            raise Pose3DError(f"sweep {what} {value!r}: expected a plain name (no '/', not empty)")
    return resolve(root) / name / key


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
    config, the identity of each test split's data (`folder_identity`: a set regenerated or converted
    again under the same config is scored again), the library code that scored them (`library_digest`),
    and the metrics.csv it wrote (so a metrics.csv rewritten since, by a manual `evaluate` with other
    settings, no longer counts as this evaluation)."""
    import json

    from ..config import config_to_dict
    from ..evaluation.evaluate import TEST_SPLIT_DIRS

    checkpoints = {}
    for stage in stages:
        path = checkpoint_path(run_dir, stage)
        checkpoints[stage_name(stage)] = file_digest(path) if path.is_file() else None
    config = hashlib.sha256(json.dumps(config_to_dict(cfg), sort_keys=True).encode()).hexdigest()
    csv = eval_csv_path(run_dir)
    return {"checkpoints_sha256": checkpoints, "config_sha256": config,
            "test_data": {key: folder_identity(getattr(cfg.data, key)) for key in sorted(set(TEST_SPLIT_DIRS.values()))},
            "library_sha256": library_digest(), "metrics_csv_sha256": file_digest(csv) if csv.is_file() else None}


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


def step_done(executed: str | os.PathLike, run_dir: str | os.PathLike, cfg, *, stage: int | None = None,
              init_from: str | os.PathLike | None = None, scored: tuple[int, ...] | None = None) -> bool:
    """Whether a notebook step of a sweep or the ablation may be skipped on a re-run: its executed notebook
    `executed` is there (an interrupt after its stage finished, before the notebook was written, leaves
    none) and the stage it trains (`stage`) is finished for `cfg` from its start checkpoint (`stage_status`),
    or the evaluation it writes scored the current checkpoints of `scored` with `cfg` (`is_evaluated`).
    A step that does neither (the demo) always runs."""
    if not Path(executed).is_file():
        return False
    if stage is not None:
        return stage_status(cfg, stage, run_dir, init_from) == "finished"
    return scored is not None and is_evaluated(run_dir, scored, cfg)


def training_differences(stored_config: dict, cfg, stage: int | None = None) -> list[str]:
    """Config differences ('key: a -> b') that change what a stage trains.

    Left out: the `eval.*` keys, which change no weight, the TEST_ONLY_KEYS and RUN_ONLY_KEYS, the DOWNLOAD_KEYS
    and CONVERSION_KEYS whose training folder holds synthetic data, and, given `stage`, the
    settings of the later stages (`train.stage{m}.*`, m > stage), which it never reads. The earlier
    stages' settings are compared: a change to one makes this stage stale too, also where it started
    from an explicit --init (its start checkpoint is compared as well, `stale_reasons`).
    """
    from ..config import config_differences, config_to_dict
    from ..synthetic.generator import data_identity

    ignored = (EVAL_PREFIX, *(f"{k}:" for k in TEST_ONLY_KEYS + RUN_ONLY_KEYS)) + tuple(
        f"train.stage{m}." for m in STAGES if stage is not None and m > stage)
    diffs = [d for d in config_differences(stored_config, config_to_dict(cfg)) if not d.startswith(ignored)]

    def download_left_out(diff: str) -> bool:  # read the folder's manifest only for a download that differs
        key = diff.split(":", 1)[0]
        return key in FILLED_BY and (FILLED_BY[key] is None
                                     or data_identity(getattr(cfg.data, FILLED_BY[key])) is not None)

    return [d for d in diffs if not download_left_out(d)]


def stage_status(cfg, stage: int, run_dir: str | os.PathLike, init_from: str | os.PathLike | None = None) -> str:
    """State of a stage's run folder for this config.

    "finished": last.pt ran all epochs with this config and from the current init checkpoint;
    "partial": an unfinished last.pt with this config (continue it with resume=True);
    "stale": a last.pt made with another config or init; "absent": no last.pt.
    The evaluation options (`eval.*`), later stages' settings, TEST_ONLY_KEYS and RUN_ONLY_KEYS do
    not change what a stage trains, so they are not compared (`training_differences`); the start
    checkpoint is (`stale_reasons`).
    """
    from .checkpoint import is_finished, load_checkpoint

    path = checkpoint_path(run_dir, stage)
    if not path.is_file():
        return "absent"
    ckpt = load_checkpoint(path)
    if stale_reasons(cfg, stage, run_dir, init_from, ckpt):
        return "stale"
    return "finished" if is_finished(ckpt) else "partial"


def stale_reasons(cfg, stage: int, run_dir: str | os.PathLike, init_from: str | os.PathLike | None = None,
                  ckpt: dict | None = None) -> list[str]:
    """Why a stage's last.pt is "stale" for this config ([] when it is not, or there is none): the
    config differences that change what it trains ('key: a -> b', `training_differences`), training
    data other than it was trained on (`data_changes`) and a start checkpoint other than the one it
    was trained from."""
    from .checkpoint import is_finished, load_checkpoint

    path = checkpoint_path(run_dir, stage)
    if ckpt is None:
        if not path.is_file():
            return []
        ckpt = load_checkpoint(path)
    reasons = recipe_differences(ckpt, cfg, stage)
    if not is_finished(ckpt):  # a partial stage would continue here
        from .device import resolve_device, training_precision
        from .distributed import world_size_from_environment
        from .errors import ConfigError

        made_by, now = ckpt.get("extra", {}).get("world_size", 1), world_size_from_environment()
        if made_by != now:  # its steps and data shards are those of that many processes
            reasons.append(f"it was trained by {made_by} process(es) and would continue in {now}")

        try:
            reasons += precision_change(ckpt, training_precision(cfg.train, resolve_device(cfg.train.device)))
        except ConfigError:  # no such device here: training says so itself when it starts
            pass
    init = resolve(init_from) if init_from is not None else default_init(run_dir, stage)
    if init is not None and not started_from(ckpt, init):
        reasons.append(f"its start checkpoint {init} is not the one it was trained from"
                       + ("" if init.is_file() else " (missing)"))
    return reasons


def recipe_differences(ckpt: dict, cfg, stage: int, ignored: tuple[str, ...] = ()) -> list[str]:
    """Why the stage checkpoint `ckpt` was not trained as `cfg` would train it now: its config
    differences (`training_differences`) and its training data's (`data_changes`), leaving out the
    dotted keys in `ignored` (a sweep's seed, or the key an evaluation-only sweep varies)."""
    ignored_prefixes = tuple(f"{k}:" for k in ignored)
    diffs = [d for d in training_differences(ckpt["config"], cfg, stage) if not d.startswith(ignored_prefixes)]
    return diffs + data_changes(ckpt, cfg, ignored)


def folder_identity(folder: str) -> dict | None:
    """What a data folder holds: `synthetic.generator.data_identity` for a synthetic set; {"download":
    <fingerprint>} for a set `REAL_DATA=True` converted (the fingerprint of its download when converted,
    from its download.json, `data.convert.common.download_stamp`: over the relative names, sizes and
    modification times of the files the converter reads, so not over where the download or the clone
    lies); None for other data (a set converted by hand, real data of your own)."""
    from ..data.convert.common import download_stamp
    from ..synthetic.generator import data_identity

    synthetic = data_identity(folder)
    if synthetic is not None:
        return synthetic
    stamp = download_stamp(folder) if folder else None
    return None if stamp is None else {"download": stamp["fingerprint"]}


def data_identities(cfg) -> dict[str, dict | None]:
    """{data key: `folder_identity` of its folder} for TRAINING_DATA_KEYS: what a stage checkpoint records
    of the data it was trained on (`data_changes` compares it with what the folders hold now)."""
    return {key: folder_identity(getattr(cfg.data, key)) for key in TRAINING_DATA_KEYS}


def download_key(key: str) -> str:
    """The `data.raw_*_dir` field whose conversion fills training folder `key` ('h36m_dir' -> 'raw_h36m_dir')."""
    return next(raw for raw, filled in DOWNLOAD_KEYS.items() if filled == key).split(".", 1)[1]


def non_synthetic_training_data(ckpt: dict) -> list[str]:
    """'data.<key> = <folder> ...' for each training folder of a stage checkpoint that did not hold synthetic
    data: as it recorded (`data_identities`: a converted download, or None for other data), or, where it
    recorded nothing (a checkpoint from before identities were recorded), one that holds no synthetic
    set now. [] for a stage trained on synthetic sets."""
    from ..synthetic.generator import data_identity

    recorded = ckpt.get("extra", {}).get("data")
    data = ckpt.get("config", {}).get("data", {})
    found = []
    for key in TRAINING_DATA_KEYS:
        folder = data.get(key, "")
        if isinstance(recorded, dict):  # what the stage recorded: synthetic, a conversion, or other data (None)
            identity = recorded.get(key)
            if isinstance(identity, dict) and "download" in identity:
                raw = download_key(key)
                found.append(f"data.{key} = {folder}, converted from data.{raw} = {data.get(raw, '')}")
            elif not isinstance(identity, dict):
                found.append(f"data.{key} = {folder}, which held no synthetic set")
        elif data_identity(folder) is None:  # recorded nothing: what the folder holds now
            found.append(f"data.{key} = {folder}, which holds no synthetic set")
    return found


def data_changes(ckpt: dict, cfg, ignored: tuple[str, ...] = ()) -> list[str]:
    """Why the data the config's training folders hold now are not the ones `ckpt` was trained on: other
    synthetic sets, or a conversion of a download that changed since ([] when they are the same, or where
    the checkpoint recorded no identity, `data_identities`, or the folder holds neither synthetic data nor
    a conversion while the checkpoint recorded synthetic data); the folders whose key ('data.h36m_dir')
    is in `ignored` are not compared. Another download named is a config difference
    (`training_differences`), not one of these."""
    recorded = ckpt.get("extra", {}).get("data")
    if not isinstance(recorded, dict):
        return []
    reasons = []
    for key, now in data_identities(cfg).items():
        then = recorded.get(key)
        if not isinstance(then, dict) or f"data.{key}" in ignored:
            continue
        if "download" in then or (now is not None and "download" in now):  # a converted set on either side
            if then != now:
                reasons.append(f"data.{key} = {getattr(cfg.data, key)} {_download_change(then, now, cfg, key)}")
            continue
        if now is None:
            continue
        sizes_now = now.get("synthetic") or {}
        sizes_then = {k: v for k, v in (then.get("synthetic") or {}).items() if k in sizes_now}  # what counts now
        if {**then, "synthetic": sizes_then} == now:
            continue
        what = [f"generator {k} {then.get(k)} -> {now.get(k)}" for k in ("generator", "version", "seed")
                if then.get(k) != now.get(k)]
        what += [f"synthetic.{k} {sizes_then.get(k)} -> {sizes_now.get(k)}" for k in dict.fromkeys([*sizes_then, *sizes_now])
                 if sizes_then.get(k) != sizes_now.get(k)]
        reasons.append(f"data.{key} = {getattr(cfg.data, key)} holds other synthetic data than it was trained on "
                       f"({', '.join(what) or 'another generator'})")
    return reasons


def _download_change(then: dict, now: dict | None, cfg, key: str) -> str:
    """How training folder `key`'s identity moved, where one side is a converted download (`data_changes`)."""
    if "download" not in then:
        return "holds a converted download where it was trained on synthetic data"
    raw = download_key(key)
    download = f"data.{raw} = {getattr(cfg.data, raw)}"
    if now is None:
        return (f"holds no record of its download (no download.json: converted by hand since?) where it was trained "
                f"on a conversion of {download}")
    if "download" not in now:
        return "holds synthetic data where it was trained on a converted download"
    settings = CONVERSION_SETTINGS.get(key)
    return (f"was converted again since it was trained on it: its download {download} changed (files added, removed "
            "or replaced, or their modification times)"
            + (f" or the conversion's settings did ({settings})" if settings else ""))


def precision_change(ckpt: dict, now: dict) -> list[str]:
    """Why an unfinished checkpoint cannot be continued in the precision `now`
    (`device.training_precision` of this machine): trained on another kind of device or in another
    precision (`train.bf16_on_cpu: auto` follows the CPU), which would mix two numerics in one stage;
    [] when the same, or the checkpoint recorded none. A finished stage is a trained network, whatever
    it ran on: `stale_reasons` does not compare it."""
    then = ckpt.get("extra", {}).get("precision")
    if not isinstance(then, dict) or then == now:
        return []

    def say(p: dict) -> str:
        return f"{p.get('device')} in {'bf16' if p.get('bf16') else 'float32'}"

    return [f"it was trained on {say(then)} and would continue on {say(now)}, mixing two numerics in one stage"]


def started_from(ckpt: dict, init: Path) -> bool:
    """Whether the stage checkpoint `ckpt` was trained from the checkpoint file `init` as it is now
    (its recorded `init_digest`); False for a missing `init` or a checkpoint that started from nothing."""
    started = ckpt.get("extra", {}).get("init_digest")
    return started is not None and init.is_file() and file_digest(init) == started


def newest_finished_checkpoint(stage: int = 3, root: str | os.PathLike | None = None,
                               unreadable: list[str] | None = None) -> Path:
    """The most recently written finished `<root>/<run>/stage{N}/last.pt` (root: runs/), smoke runs excluded.

    A candidate that cannot be read (damaged, or stored by an incompatible pose3dlib) is passed
    over, with its error appended to `unreadable` when given; the Pose3DError raised when no
    candidate is left names them.
    """
    from .checkpoint import is_finished, load_checkpoint

    root = RUNS_DIR if root is None else root
    found, passed_over = [], []
    for path in sorted(resolve(root).glob(f"*/{stage_name(stage)}/{CHECKPOINT_NAME}")):
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError as e:
            passed_over.append(str(e))
            continue
        if is_finished(ckpt) and ckpt["config"].get("profile") != TEST_PROFILE:
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

"""Typed, frozen configs for each concern, loaded from YAML with dotted overrides.

    cfg = load_config("configs/cpu.yaml", overrides=["train.stage1.lr=1e-3"])
    dump_config(cfg, run_dir / "config.yaml")

An unknown key, a value of the wrong type or outside its bounds (declared beside each
field), or a broken cross-field invariant (`check_invariants`: heatmap = input / 4, input a
multiple of 64, ...) raises ConfigError naming the key, at load time, before any data work.
Every checkpoint stores `config_to_dict(cfg)`; `config_from_dict` restores it.
"""
from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .engine.atomic_io import atomic_write_text
from .engine.errors import ConfigError
from .engine.paths import resolve
from .skeleton import PAPER_BONE_SUM_MM

# Network input side must be a multiple of this (four 2x poolings per hourglass plus the stem's 4x).
INPUT_SIZE_MULTIPLE = 64
# Heatmaps are the input downsampled by the stem: heatmap_size = input_size / this.
HEATMAP_STRIDE = 4


def bounded(default: Any, *, lo: float | None = None, hi: float | None = None) -> Any:
    """A numeric field (or tuple of numbers, each item checked) whose accepted range [lo, hi]
    sits beside it (checked at load)."""
    return field(default=default, metadata={"lo": lo, "hi": hi})


def one_of(default: Any, *choices: Any) -> Any:
    """A field that accepts only `choices` (checked at load)."""
    return field(default=default, metadata={"choices": choices})


@dataclass(frozen=True)
class SyntheticConfig:
    """Sizes of the synthetic-people splits written by `prepare-synthetic`."""

    image_size: int = bounded(256, lo=64)  # px, square images written to disk
    h36m_train: int = bounded(2000, lo=1)  # lab images, subjects 1,5,6,7,8
    h36m_test: int = bounded(500, lo=0)  # lab test images
    # Lab test people: S9, S11 (Human3.6M's test subjects), then S12, S13, ... A larger number
    # spreads the same h36m_test images over more bodies, so a lab test number depends less on
    # who was drawn; the training rows stay the same (runs.TEST_ONLY_KEYS).
    h36m_test_subjects: int = bounded(2, lo=1, hi=90)  # at most S99: two-digit subject folders
    mpii_train: int = bounded(2000, lo=1)  # wild images, 2D labels only
    mpii_val: int = bounded(300, lo=1)  # wild images, 2D labels only
    wild_test: int = bounded(300, lo=1)  # wild images with 3D ground truth (never trained on)
    wild_val: int = bounded(0, lo=0)  # wild validation images with 3D ground truth (tuning only; 0: not written)
    lab_val: int = bounded(0, lo=0)  # lab validation images: new frames of the training subjects (tuning only)
    workers: int = bounded(2, lo=1)  # generator processes


@dataclass(frozen=True)
class DataConfig:
    """Where the datasets live and how samples become network inputs and targets."""

    h36m_dir: str = "data/synthetic/cpu/h36m"  # Human3.6M-format root (annotations + images)
    mpii_dir: str = "data/synthetic/cpu/mpii"  # MPII-format root (train.h5, val.h5, images/)
    wild_test_dir: str = "data/synthetic/cpu/wild_test"  # h36m-format wild split with 3D GT
    # Validation splits in the h36m format (istrain 0 rows) for training curves and tuning;
    # "" means: training validation reads the test rows of h36m_dir (the only choice with
    # real Human3.6M until a validation split is converted).
    lab_val_dir: str = ""
    wild_val_dir: str = ""
    h36m_annotation_file: str = "annot.h5"  # inside h36m_dir (and wild_test_dir)
    image_dir: str = "images"  # image folder inside each dataset root
    # Official downloads (read only; "" = not used). With REAL_DATA=True, notebook 01 converts
    # each one once into h36m_dir / mpii_dir / wild_test_dir (pose3dlib.data.convert.real).
    raw_h36m_dir: str = ""  # Human3.6M: S1/ ... S11/ (MyPoseFeatures/, Videos/) and metadata.xml
    raw_mpii_dir: str = ""  # MPII: mpii_human_pose_v1_u12_1.mat, images/ (and Newell's valid.h5, optional)
    raw_3dhp_dir: str = ""  # MPI-INF-3DHP: mpi_inf_3dhp_test_set (TS1..TS6)
    # Converting raw_h36m_dir: leave out S9's sequences whose ground truth is damaged in parts (Greeting,
    # SittingDown 1, Waiting 1; `convert-h36m --drop-damaged`). Kept by default, marked `damaged` = 1;
    # changing it converts the set again (and so trains and scores on the other set).
    h36m_drop_damaged: bool = False
    input_size: int = bounded(256, lo=64)  # px, network input (a multiple of 64)
    heatmap_size: int = bounded(64, lo=16)  # px, heatmap side (input_size / 4)
    sigma: float = bounded(1.75, lo=0.1)  # heatmap Gaussian std in heatmap px (original: ~1.75 px kernel)
    scale_sigma: float = bounded(0.25, lo=0.0)  # log2 scale jitter std (the paper's training recipe)
    scale_clip: float = bounded(0.5, lo=0.0)  # clip of the log2 scale jitter
    rotation_sigma_deg: float = bounded(30.0, lo=0.0)  # rotation jitter std, degrees
    rotation_clip_deg: float = bounded(60.0, lo=0.0, hi=180.0)  # rotation jitter clip, degrees
    rotation_prob: float = bounded(0.4, lo=0.0, hi=1.0)  # probability of rotating a sample
    flip_prob: float = bounded(0.5, lo=0.0, hi=1.0)  # horizontal flip with left/right swap
    # Crops without a whole person, for the person search (measured in docs/benchmarks.md,
    # "Finding the person"): these fractions of the 2D-only training samples frame a close-up of
    # part of the person, or the usual box moved off the person, and teach all-zero heatmaps
    # there. 0 (the paper's recipe): every crop frames the person.
    part_crop_prob: float = bounded(0.0, lo=0.0, hi=1.0)  # close-up: 0.3-0.5 x the box, on a random joint
    shifted_crop_prob: float = bounded(0.0, lo=0.0, hi=1.0)  # box moved 0.5-0.8 of its side off the person
    color_scale_min: float = bounded(0.6, lo=0.0)  # per-channel colour scale lower bound
    color_scale_max: float = bounded(1.4, lo=0.0)  # per-channel colour scale upper bound (Torch original)
    augment_3d: bool = True  # augment Human3.6M samples too (the original did not)
    num_workers: int = bounded(2, lo=0)  # DataLoader worker processes
    # MiB of decoded training pictures kept in memory between the epochs of a stage of several (data/image_cache.py);
    # 0: none. Changes no sample, only how often a picture is decoded; needs num_workers 0 (a worker process
    # would keep its own copy; so does each DDP process).
    image_cache_mb: int = bounded(0, lo=0)


MAX_LAYOUT_LEVELS = 4  # model.hourglass_depth and model.depth_head_levels: 64 px = 4 x 2^4


@dataclass(frozen=True)
class ModelConfig:
    """HourglassNet3D layout; the defaults are the paper's network (14,429,104 parameters).

    The network takes any input size that is a multiple of 64 with the same parameters
    (the depth head pools its grid to the 4 x 4 of a 256 px input), so no size lives here.
    """

    num_stacks: int = bounded(2, lo=1)  # hourglasses
    num_modules: int = bounded(2, lo=1)  # residual modules per hourglass level
    num_features: int = bounded(256, lo=1)  # channels in the hourglasses
    num_reg_modules: int = bounded(2, lo=1)  # residual modules per depth-head level
    # Recursion levels of each hourglass (the paper's 4 take its 64 x 64 heatmaps down to 4 x 4) and
    # (residuals + max-pool) levels of the depth head (the paper's 4 take 64 x 64 to its 4 x 4 grid).
    # At most MAX_LAYOUT_LEVELS, so any input that is a multiple of 64 still works.
    hourglass_depth: int = bounded(4, lo=1, hi=MAX_LAYOUT_LEVELS)
    depth_head_levels: int = bounded(4, lo=1, hi=MAX_LAYOUT_LEVELS)
    # Channels of the stem's residuals before its last one (the paper's 128; even, as a residual's
    # bottleneck halves them). The first runs at S/2, where at 64 px input it is a quarter of the
    # cpu network's arithmetic, so fewer channels make the stem cheaper.
    stem_res_channels: int = bounded(128, lo=2)
    num_joints: int = one_of(16, 16)  # MPII16 order (pose3dlib.skeleton)
    input_format: str = one_of("rgb", "rgb", "bgr256")  # "rgb": RGB / 255; "bgr256": original release, BGR / 256


@dataclass(frozen=True)
class StageConfig:
    """One of the three training stages, with its three loss weights."""

    epochs: int = bounded(1, lo=1)  # 0 would train nothing and write no checkpoint
    lr: float = bounded(2.5e-4, lo=0.0)
    # lr *= lr_drop_factor from 0-based epoch e on, i.e. after e finished epochs (train.lr_at_epoch);
    # never negative (0: a lower rate from the start); a drop at or after `epochs` never comes (the stage
    # says so when it starts: train.unused_lr_drops)
    lr_drop_epochs: tuple[int, ...] = bounded((), lo=0)
    lr_drop_factor: float = bounded(0.1, lo=0.0)
    # "step": the rate above, dropped at lr_drop_epochs. "cosine": half a cosine over the stage's
    # optimiser steps, from lr at the first to lr x lr_min_factor after the last (train.lr_at_step);
    # it takes no lr_drop_epochs, and the step schedule no lr_min_factor. Either way the warm-up below scales it.
    lr_schedule: str = one_of("step", "step", "cosine")
    lr_min_factor: float = bounded(0.0, lo=0.0, hi=1.0)
    # Linear learning-rate warm-up over the stage's first optimiser steps: step k (1-based) uses
    # lr x k / warmup_steps until k reaches it. 0: none (the paper's). A fresh Adam state at the
    # start of a stage otherwise moves every weight by about lr on its first steps.
    warmup_steps: int = bounded(0, lo=0)
    ratio_3d: float = bounded(0.0, lo=0.0)  # 3D (h36m) samples per 2D (mpii) sample in an epoch
    heatmap_weight: float = bounded(1.0, lo=0.0)  # weight of the summed per-stack heatmap MSE
    depth_weight: float = bounded(0.0, lo=0.0)  # weight of the depth L2 loss on 3D samples
    geometric_weight: float = bounded(0.0, lo=0.0)  # weight of the bone-length-ratio loss on 2D samples
    samples_2d_per_epoch: int = bounded(0, lo=0)  # 0: the whole 2D training split; else a fresh draw each epoch, without repeats while the split lasts (a count above its size starts a new permutation; images may repeat across epochs, and some go unseen)
    # False: no 2D-only (MPII-format) image in this stage; the epoch keeps its length with
    # 3D (Human3.6M-format) samples in their place (the "3D only" arm of `make ablation`)
    mix_2d: bool = True
    # Loose, off-centre framing of this stage's 2D-only samples, as in whole pictures and
    # hand-drawn boxes (transforms.loose_framing; docs/cpu-recipe.md): this fraction of them is
    # cropped 1.35-2.0 x the person's extent, centre shifted. 0 (the paper's recipe): the
    # annotated box.
    loose_crop_prob: float = bounded(0.0, lo=0.0, hi=1.0)
    # An exponential moving average of the weights (engine.averaging) over this stage's steps, with
    # this decay per step (0.998: a horizon of about 500 steps), is the stage's output: what its
    # checkpoint's "model" holds, what validation, evaluation and the next stage start from. The
    # optimiser trains the weights as without it (saved as "train_model" for --resume). A stage much shorter
    # than the horizon outputs mostly its starting weights (no warm-up of the average). 0: off (the paper's).
    ema_decay: float = bounded(0.0, lo=0.0, hi=0.99999)

    def loss_weights(self) -> dict[str, float]:
        """{"heatmap": w, "depth": w, "geometric": w}: the keyword weights of losses.total_loss."""
        return {"heatmap": self.heatmap_weight, "depth": self.depth_weight, "geometric": self.geometric_weight}


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser, device and schedule."""

    batch_size: int = bounded(6, lo=1)  # samples per step per process (DDP: the global batch is this x processes)
    optimizer: str = one_of("rmsprop", "rmsprop", "adam")  # "rmsprop" (paper) or "adam"
    rmsprop_alpha: float = bounded(0.99, lo=0.0, hi=1.0)
    eps: float = bounded(1e-8, lo=0.0)
    momentum: float = bounded(0.0, lo=0.0)
    weight_decay: float = bounded(0.0, lo=0.0)
    # Adam only: torch's fused kernel (one vectorised update of all weights per step instead of,
    # on CPU, a loop over the tensors; CUDA's default is already a multi-tensor update). The same
    # algorithm with another rounding, so a run's weights differ from the loop's in the last bits;
    # faster on CPU (docs/benchmarks.md, "Speed switches").
    fused_adam: bool = False
    device: str = "auto"  # "auto" (CUDA, then CPU), "cpu", "cuda", "cuda:1", ...
    num_threads: int = bounded(0, lo=0)  # torch CPU threads; 0 leaves torch's default
    bf16: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    # bf16 autocast on CPU too: true, false or "auto" (only where the CPU has native bf16, AVX512-BF16 or AMX:
    # training 1.2 x (cpu network) to 1.9 x (paper network) faster on an AVX512-BF16 EPYC; emulated bf16 is slower
    # than float32)
    bf16_on_cpu: bool | str = one_of(False, False, True, "auto")
    channels_last: bool = True  # channels_last (NHWC) memory format, on every device
    compile: bool = False  # torch.compile the model
    val_every: int = bounded(1, lo=1)  # validate every N epochs (and after the last)
    val_samples: int = bounded(200, lo=0)  # validation subset size per split (0: all)
    checkpoint_every_steps: int = bounded(0, lo=0)  # also checkpoint every N steps (0: per epoch only)
    log_every_steps: int = bounded(10, lo=1)  # write train losses to metrics.jsonl every N steps
    # The millimetre scale of 3D output (see decode.reconstruct_3d): 2D + depth are scaled so
    # the 14 bone lengths sum to this many mm. 0: the mean over the samples of the Human3.6M-
    # format training split (decode.mean_bone_sum_mm). Fixed when a stage is trained and
    # stored in its checkpoint ("bone_sum_mm"), which evaluation and the demo both use.
    bone_sum_mm: float = bounded(0.0, lo=0.0)
    # Deterministic algorithms: CPU runs (and --resume) are then bitwise reproducible for a
    # fixed seed, thread count and world size; on CUDA it also disables cuDNN autotuning, and a
    # kernel without a deterministic version only warns (warn_only), so CUDA runs are not guaranteed bitwise.
    deterministic: bool = True
    stage1: StageConfig = field(default_factory=lambda: StageConfig(epochs=60))
    stage2: StageConfig = field(
        default_factory=lambda: StageConfig(epochs=30, lr_drop_epochs=(25,), ratio_3d=1.0, depth_weight=0.1)
    )
    stage3: StageConfig = field(
        default_factory=lambda: StageConfig(
            epochs=10, lr=2.5e-5, ratio_3d=1.0, depth_weight=0.1, geometric_weight=0.01
        )
    )

    def stage(self, n: int) -> StageConfig:
        """The StageConfig of stage 1, 2 or 3."""
        if n not in (1, 2, 3):
            raise ConfigError(f"stage must be 1, 2 or 3, got {n}")
        return getattr(self, f"stage{n}")


@dataclass(frozen=True)
class EvalConfig:
    """Inference and evaluation options."""

    flip_test: bool = True  # average with the mirrored image's prediction
    subpixel: str = one_of("quarter", "quarter", "log_parabola")  # heatmap peak refinement (decode.SUBPIXEL_METHODS)
    batch_size: int = bounded(32, lo=1)
    paper_bone_sum_mm: float = bounded(PAPER_BONE_SUM_MM, lo=0.0)  # paper evaluator: sum of the 14 edge lengths
    pckh_threshold: float = bounded(0.5, lo=0.0)  # fraction of the head segment length
    # 0: one pass on each split's own crop. > 0: a second pass on a crop framed around the joints the first
    # pass found, side = this x their extent (the training crops: 1.25; evaluate.predict_dataset)
    recrop_margin: float = bounded(0.0, lo=0.0)
    # With a second pass (recrop_margin > 0; ignored without one): 0 gives every sample one; > 0 only those whose
    # first-pass joints span at most this fraction of their first crop's side (a small person in a large crop)
    recrop_max_fill: float = bounded(0.0, lo=0.0)
    # A test-time skeleton prior, not in the paper (evaluation.bone_prior): each 3D prediction's depth is
    # rescaled, and each bone's depth step moved `bone_prior_blend` of the way, toward the bone proportions
    # of the Human3.6M-format training skeletons of the evaluation's data.h36m_dir (on a new synthetic set,
    # that set's). Applies wherever `evaluate` reconstructs 3D (every 3D protocol, the 3DHP rows too; so in
    # notebook 06 and unseen-check); not to PCKh, the mean pose, training validation, diagnose-depth or the demo
    bone_prior: bool = False
    bone_prior_scale_penalty: float = bounded(0.05, lo=0.0)  # weight of (log scale)^2 in the scale's choice
    # 0: the scale alone; 1: every bone at its prior length where its 2D length and predicted sign allow
    bone_prior_blend: float = bounded(0.25, lo=0.0, hi=1.0)


@dataclass(frozen=True)
class Config:
    """Everything one experiment needs; saved with every checkpoint and output."""

    profile: str = "paper"
    seed: int = bounded(0, lo=0)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


# Keys that no longer exist: a YAML file or override naming one is an error that says why;
# a checkpoint that stores one loads with it dropped (its meaning lives on in the data).
RETIRED_KEYS: dict[str, str] = {
    "data.mpii_center_shift": "MPII h5 files are now cropped as stored (Newell's convention: the centre "
                              "shift and the 1.25 box factor are already in center/scale; convert-mpii "
                              "applies them once); remove the key",
    "data.mpii_box_factor": "MPII h5 files are now cropped as stored (Newell's convention: the centre "
                            "shift and the 1.25 box factor are already in center/scale; convert-mpii "
                            "applies them once); remove the key",
}


def drop_retired_keys(data: dict) -> dict:
    """A copy of a nested config dict without the RETIRED_KEYS (for configs stored in checkpoints)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for dotted in RETIRED_KEYS:
        section, key = dotted.split(".")
        if isinstance(out.get(section), dict):
            out[section].pop(key, None)
    return out


# ----------------------------------------------------------------------------- conversion

def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str, base: Any = None) -> Any:
    """Check `value` against the annotation `tp` (converting where lossless); raise ConfigError.

    A mapping for a dataclass `tp` fills the fields it leaves out from `base` (the value this key
    has when the mapping is not given; None: `tp`'s own defaults).
    """
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r}: expected a mapping for {tp.__name__}, got {value!r}")
        return _from_dict(tp, value, key, base)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"config key {key!r}: expected {_type_name(tp)}, got {value!r}")
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r}: expected a list ({_type_name(tp)}), got {value!r}")
        item_tp = args[0] if args else Any
        return tuple(_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value))
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r}: expected bool, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r}: expected int, got {value!r}")
    if tp is float:
        return _finite(_to_float(value, key), key)
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config key {key!r}: expected str, got {value!r}")
    raise ConfigError(f"config key {key!r}: unsupported annotation {tp!r}")


def _to_float(value: Any, key: str) -> float:
    """`value` as a float: an int or float, or a number written as text; else ConfigError."""
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT_RE.fullmatch(value.strip()):
            return float(value)  # "1e-3" in a YAML file (YAML 1.1 reads it as a string)
    except OverflowError:  # an int beyond the float range
        raise ConfigError(f"config key {key!r}: expected a finite number, got {value!r}") from None
    raise ConfigError(f"config key {key!r}: expected float, got {value!r}")


def _finite(value: float, key: str) -> float:
    """`value` unchanged when finite; ConfigError naming `key` for NaN and infinities (which every
    bound check would let through: NaN compares False)."""
    if not math.isfinite(value):
        raise ConfigError(f"config key {key!r}: expected a finite number, got {value!r}")
    return value


def _field_default(f: dataclasses.Field) -> Any:
    """The value a dataclass field takes when it is not given."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _from_dict(cls: type, data: dict, prefix: str = "", base: Any = None) -> Any:
    """A `cls` with the values in `data` (checked and converted); the fields `data` leaves out
    keep their value in `base` (default: the field defaults of `cls`).

    A nested dataclass field given as a mapping starts from the parent's value of that field, so
    `train: {stage2: {epochs: 5}}` keeps the other values of TrainConfig's default stage 2, not
    those of a bare StageConfig.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for k in data:
        if k not in fields:
            where = f"{prefix}.{k}" if prefix else k
            if where in RETIRED_KEYS:
                raise ConfigError(f"config key {where!r} was retired: {RETIRED_KEYS[where]}")
            raise ConfigError(f"unknown config key {where!r}; {cls.__name__} has keys: {', '.join(sorted(fields))}")
    kwargs = {}
    for k, v in data.items():
        default = getattr(base, k) if base is not None else _field_default(fields[k])
        kwargs[k] = _coerce(v, hints[k], f"{prefix}.{k}" if prefix else k, default)
    for f in fields.values():
        if f.name in kwargs:
            _check_field(f, kwargs[f.name], f"{prefix}.{f.name}" if prefix else f.name)
    return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)


def _check_bounds(value: Any, lo: float | None, hi: float | None, key: str) -> None:
    """Raise ConfigError naming `key` when `value` (each item of a tuple) is outside [lo, hi]."""
    if isinstance(value, tuple):
        for i, item in enumerate(value):
            _check_bounds(item, lo, hi, f"{key}[{i}]")
        return
    if lo is not None and value < lo:
        raise ConfigError(f"config key {key!r}: expected a value >= {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ConfigError(f"config key {key!r}: expected a value <= {hi}, got {value!r}")


def _check_field(f: dataclasses.Field, value: Any, key: str) -> None:
    """Raise ConfigError naming `key` when `value` is outside the bounds or choices beside the field."""
    _check_bounds(value, f.metadata.get("lo"), f.metadata.get("hi"), key)
    choices = f.metadata.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"config key {key!r}: expected one of {', '.join(map(repr, choices))}, got {value!r}")


def check_invariants(cfg: Config) -> Config:
    """Raise ConfigError naming the key when fields that must agree do not; returns cfg."""
    d = cfg.data
    if d.input_size % INPUT_SIZE_MULTIPLE:
        raise ConfigError(f"config key 'data.input_size': expected a multiple of {INPUT_SIZE_MULTIPLE}, "
                          f"got {d.input_size}")
    if d.heatmap_size * HEATMAP_STRIDE != d.input_size:
        raise ConfigError(f"config key 'data.heatmap_size': expected data.input_size / {HEATMAP_STRIDE} = "
                          f"{d.input_size // HEATMAP_STRIDE}, got {d.heatmap_size}")
    if d.color_scale_min > d.color_scale_max:
        raise ConfigError(f"config key 'data.color_scale_min': expected <= data.color_scale_max "
                          f"({d.color_scale_max}), got {d.color_scale_min}")
    if d.image_cache_mb > 0 and d.num_workers > 0:
        raise ConfigError(f"config key 'data.image_cache_mb': expected 0 with data.num_workers={d.num_workers} "
                          f"(each worker process would keep its own copy of the pictures), got {d.image_cache_mb}; "
                          "set data.image_cache_mb=0 or data.num_workers=0")
    for n in (1, 2, 3):
        st = cfg.train.stage(n)
        if st.lr_schedule == "cosine" and st.lr_drop_epochs:
            raise ConfigError(f"config key 'train.stage{n}.lr_drop_epochs': expected [] with train.stage{n}.lr_schedule "
                              f"'cosine' (the cosine decays the rate itself), got {list(st.lr_drop_epochs)}")
        if st.lr_schedule == "step" and st.lr_min_factor:
            raise ConfigError(f"config key 'train.stage{n}.lr_min_factor': expected 0 with train.stage{n}.lr_schedule "
                              f"'step' (only the cosine reads it; the step schedule drops by lr_drop_factor), "
                              f"got {st.lr_min_factor}")
    check_fused_adam(cfg.train)
    return cfg


def check_fused_adam(t: TrainConfig) -> None:
    """Raise ConfigError when train.fused_adam is on with an optimiser other than Adam."""
    if t.fused_adam and t.optimizer != "adam":
        raise ConfigError(f"config key 'train.fused_adam': expected false with train.optimizer {t.optimizer!r} "
                          "(torch has a fused kernel for Adam only); set train.optimizer=adam or train.fused_adam=false")


def config_from_dict(data: dict, cls: type = Config) -> Any:
    """Build a (frozen) config of type `cls` from a nested dict; missing keys take defaults."""
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping, got {type(data).__name__}")
    cfg = _from_dict(cls, data)
    return check_invariants(cfg) if isinstance(cfg, Config) else cfg


def config_to_dict(cfg: Any) -> dict:
    """Nested plain dict (tuples as lists) of a config, suitable for YAML/JSON/checkpoints."""
    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, tuple):
            return [conv(x) for x in v]
        return v
    return conv(cfg)


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


def migrate_config_dict(data: dict) -> dict:
    """A stored config dict with keys renamed since it was written moved to their new place.

    `loss.heatmap_weight` became each stage's `heatmap_weight`; the evaluation-time
    `eval.reconstruct_bone_sum_mm` became the training-time `train.bone_sum_mm`; the
    RETIRED_KEYS are dropped (`drop_retired_keys`).
    """
    out = drop_retired_keys(data)
    loss = out.pop("loss", None)
    if isinstance(loss, dict) and "heatmap_weight" in loss:
        train = out.setdefault("train", {})
        for n in (1, 2, 3):
            stage = dict(train.get(f"stage{n}") or {})
            stage.setdefault("heatmap_weight", loss["heatmap_weight"])
            train[f"stage{n}"] = stage
    ev = out.get("eval")
    if isinstance(ev, dict) and "reconstruct_bone_sum_mm" in ev:
        out.setdefault("train", {}).setdefault("bone_sum_mm", ev.pop("reconstruct_bone_sum_mm"))
    return out


_FLOAT_RE = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


def yaml_comment_dropped(text: str, value: Any) -> bool:
    """Whether YAML dropped a comment from `text` when it read `value`: a '#' after a space or at the start
    starts one ('/tmp/w s/wild #1' reads as '/tmp/w s/wild'), so the value holds fewer '#' than the text."""
    return re.search(r"(^|\s)#", text) is not None and text.count("#") > repr(value).count("#")


def _parse_scalar(text: str) -> Any:
    """Parse an override's value with YAML rules (1e-3 -> float, true -> bool, [1,2] -> list)."""
    try:
        value = _safe_load_unique(text)  # a mapping value repeating a key is refused, as in a file
    except yaml.YAMLError as e:
        raise ConfigError(f"value {text!r} is not valid YAML ({' '.join(str(e).split())[:120]})") from None
    if yaml_comment_dropped(text, value):
        raise ConfigError(f"value {text!r}: YAML reads a '#' after a space as the start of a comment and would drop "
                          "what follows it; quote the value inside the override, e.g. --set \"key='...'\"")
    if isinstance(value, str) and _FLOAT_RE.fullmatch(text.strip()):
        return float(text)  # YAML 1.1 reads "1e-3" as a string; we want the number
    return value


def _check_override_list(overrides: Any) -> None:
    """Raise ConfigError unless `overrides` is a list or tuple (papermill's -p hands over one text)."""
    if not isinstance(overrides, (list, tuple)):  # e.g. the str papermill's -p passes
        raise ConfigError(f"overrides must be a list of 'key.sub=value' texts, got {type(overrides).__name__} "
                          f"{overrides!r}; papermill's -p passes text: give it as YAML, "
                          "-y 'overrides: [train.stage3.geometric_weight=0.1]', or use python -m pose3dlib run-notebook")


def _merged(current: Any, value: Any) -> Any:
    """`value` laid over `current`: two mappings merge key by key (recursively); else `value` replaces."""
    if isinstance(current, dict) and isinstance(value, dict):
        return {**current, **{k: _merged(current.get(k), v) for k, v in value.items()}}
    return value


def comma_items(text: str, option: str, example: str) -> list[str]:
    """The comma-separated items of `text` ([] for an empty text); ConfigError naming `option` (and a
    valid `example`) for an empty item between commas ('0,,0.1', a trailing comma), a typo that would
    drop a value silently."""
    if not text.strip():
        return []
    items = text.split(",")
    if empty := [i + 1 for i, v in enumerate(items) if not v.strip()]:
        raise ConfigError(f"{option} {text!r}: item {empty[0]} of {len(items)} is empty (two commas in a row, or one "
                          f"at an end?); give comma-separated values, e.g. {example}")
    return items


def override_keys(item: str) -> list[str]:
    """The dotted keys an override `key=value` sets: its key, or, for a mapping value, each key inside
    it (`data={input_size: 128, h36m_dir: d}` -> data.input_size, data.h36m_dir). A value that is not
    valid YAML counts as a plain value (applying the override then names the error)."""
    key, _, text = item.partition("=")
    try:
        value = _parse_scalar(text)
    except ConfigError:
        value = None

    def flat(prefix: str, v: Any) -> list[str]:
        if isinstance(v, dict) and v:
            return [k for sub, inner in v.items() for k in flat(f"{prefix}.{sub}", inner)]
        return [prefix]

    return flat(key.strip(), value)


def _apply_override(tree: dict, item: Any) -> None:
    """Set one `key.sub=value` override in the full config dict `tree` (in place) and check the key's
    type and bounds; a mapping value merges into the key's current value. Errors name the override."""
    if not isinstance(item, str):
        raise ConfigError(f"override {item!r} is not text ({type(item).__name__}); each must be a 'key.sub=value' text")
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key.sub=value")
    key, text = item.split("=", 1)
    parts = key.strip().split(".")
    node = tree
    for i, p in enumerate(parts):
        if not isinstance(node, dict) or p not in node:
            if key.strip() in RETIRED_KEYS:
                raise ConfigError(f"override {item!r}: config key {key.strip()!r} was retired: "
                                  f"{RETIRED_KEYS[key.strip()]}")
            raise ConfigError(f"unknown config key {'.'.join(parts[: i + 1])!r} in override {item!r}")
        if i < len(parts) - 1:
            node = node[p]
    try:
        node[parts[-1]] = _merged(node[parts[-1]], _parse_scalar(text))
        _from_dict(Config, tree)  # type and bounds; the cross-field invariants wait for all overrides
    except ConfigError as e:
        # `--set key=$VAR` with VAR unset gives no value (YAML's null): say how to write an empty text
        empty = (f" (no value after '=': an unset shell variable? an empty text is {key.strip()}=\"\", in a shell "
                 f"--set '{key.strip()}=\"\"')" if not text.strip() else "")
        raise ConfigError(f"override {item!r}: {e}{empty}") from None


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """Apply `key.sub=value` overrides to a nested dict, checking that each key exists and each value
    has its key's type and bounds (ConfigError naming the override). A mapping value merges into the
    key's current value: `train.stage2={epochs: 1}` keeps stage 2's other values."""
    _check_override_list(overrides)
    out = config_to_dict(config_from_dict(data))  # full tree, so every key can be set
    for item in overrides:
        _apply_override(out, item)
    return out


def _overrides_named(overrides: list[str] | tuple[str, ...]) -> str:
    """"override 'a=1'" or "overrides 'a=1', 'b=2'": the overrides an error is laid to."""
    return ("override " if len(overrides) == 1 else "overrides ") + ", ".join(map(repr, overrides))


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (SafeLoader keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        """The mapping of `node`, after checking that no key repeats (ConfigError naming key and lines)."""
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue  # '<<' merge keys may repeat what they merge; SafeLoader reports odd keys itself
            key, line = self.construct_object(key_node), key_node.start_mark.line + 1
            if key in first_line:
                raise ConfigError(f"key {key!r} given twice in one mapping (line {first_line[key]} and line {line})")
            first_line[key] = line
        return super().construct_mapping(node, deep=deep)


def _safe_load_unique(text: str) -> Any:
    """yaml.safe_load with `_UniqueKeyLoader` (a SafeLoader: no Python objects are ever built)."""
    loader = _UniqueKeyLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _read_config_file(p: Path) -> dict:
    """The top-level mapping of the YAML config file `p`; ConfigError naming `p` when the file is
    missing, not UTF-8, not valid YAML, empty, not a mapping or repeats a key in one mapping."""
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        loaded = _safe_load_unique(p.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({e})".replace("\n", " ")) from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not a UTF-8 text (YAML) file ({e.reason} at byte {e.start})") from None
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None
    if loaded is None:
        raise ConfigError(f"{p}: empty config file (write the keys to set, or {{}} for every default)")
    if not isinstance(loaded, dict):
        raise ConfigError(f"{p}: a config must be a mapping at the top level")
    return loaded


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Load a YAML config (relative paths resolve at the project root) and apply overrides.

    An error in the file names the file; an error an override causes names the override.
    """
    data: dict = {}
    if path is not None:
        p = resolve(path)
        data = _read_config_file(p)
        try:
            config_from_dict(data)
        except ConfigError as e:
            raise ConfigError(f"{p}: {e}") from None
    tree = apply_overrides(data, overrides)
    try:
        return config_from_dict(tree)
    except ConfigError as e:  # a cross-field invariant the overrides broke (the file alone passed)
        raise ConfigError(f"{_overrides_named(overrides)}: {e}") from None


def dump_config(cfg: Any, path: str | Path) -> Path:
    """Write a config as YAML (atomically) and return the path."""
    return atomic_write_text(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))

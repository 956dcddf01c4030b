"""Typed, frozen configs for each concern, loaded from YAML with dotted overrides.

    cfg = load_config("configs/cpu.yaml", overrides=["train.stage1.lr=1e-3"])
    dump_config(cfg, run_dir / "config.yaml")

An unknown key or a value of the wrong type raises ConfigError naming the key and the
expected type. Every checkpoint stores `config_to_dict(cfg)`; `config_from_dict` restores it.
"""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .atomic_io import atomic_write_text
from .errors import ConfigError
from .paths import resolve


@dataclass(frozen=True)
class SyntheticConfig:
    """Sizes of the synthetic-people splits written by `prepare-synthetic`."""

    image_size: int = 256  # px, square images written to disk
    h36m_train: int = 2000  # lab images, subjects 1,5,6,7,8
    h36m_test: int = 500  # lab images, subjects 9,11
    mpii_train: int = 2000  # wild images, 2D labels only
    mpii_val: int = 300  # wild images, 2D labels only
    wild_test: int = 300  # wild images with 3D ground truth (never trained on)
    wild_val: int = 0  # wild validation images with 3D ground truth (tuning only; 0: not written)
    lab_val: int = 0  # lab validation images: new frames of the training subjects (tuning only)
    workers: int = 2  # generator processes


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
    # each one once into h36m_dir / mpii_dir / wild_test_dir (pose3dlib.convert.real).
    raw_h36m_dir: str = ""  # Human3.6M: S1/ ... S11/ (MyPoseFeatures/, Videos/) and metadata.xml
    raw_mpii_dir: str = ""  # MPII: mpii_human_pose_v1_u12_1.mat, images/ (and Newell's valid.h5, optional)
    raw_3dhp_dir: str = ""  # MPI-INF-3DHP: mpi_inf_3dhp_test_set (TS1..TS6)
    input_size: int = 256  # px, network input (a multiple of 64)
    heatmap_size: int = 64  # px, heatmap side (input_size / 4)
    sigma: float = 1.75  # heatmap Gaussian std in heatmap px (original: ~1.75 px kernel)
    scale_sigma: float = 0.25  # log2 scale jitter std (paper-facts: training recipe)
    scale_clip: float = 0.5  # clip of the log2 scale jitter
    rotation_sigma_deg: float = 30.0  # rotation jitter std, degrees
    rotation_clip_deg: float = 60.0  # rotation jitter clip, degrees
    rotation_prob: float = 0.4  # probability of rotating a sample
    flip_prob: float = 0.5  # horizontal flip with left/right swap
    color_scale_min: float = 0.6  # per-channel colour scale lower bound
    color_scale_max: float = 1.4  # per-channel colour scale upper bound (Torch original)
    augment_3d: bool = True  # augment Human3.6M samples too (the original did not)
    num_workers: int = 2  # DataLoader worker processes


@dataclass(frozen=True)
class ModelConfig:
    """HourglassNet3D layout; the defaults are the paper's network (14,429,104 parameters).

    The network takes any input size that is a multiple of 64 with the same parameters
    (the depth head pools its grid to the 4 x 4 of a 256 px input), so no size lives here.
    """

    num_stacks: int = 2  # hourglasses
    num_modules: int = 2  # residual modules per hourglass level
    num_features: int = 256  # channels in the hourglasses
    num_reg_modules: int = 2  # residual modules per depth-head level
    num_joints: int = 16  # MPII16 order
    input_format: str = "rgb"  # "rgb": RGB / 255; "bgr256": original release, BGR / 256


@dataclass(frozen=True)
class LossConfig:
    """Loss options shared by all stages (the per-stage weights live in StageConfig)."""

    heatmap_weight: float = 1.0  # weight of the summed per-stack heatmap MSE


@dataclass(frozen=True)
class StageConfig:
    """One of the three training stages."""

    epochs: int = 1
    lr: float = 2.5e-4
    lr_drop_epochs: tuple[int, ...] = ()  # epochs at which lr *= lr_drop_factor
    lr_drop_factor: float = 0.1
    ratio_3d: float = 0.0  # 3D (h36m) samples per 2D (mpii) sample in an epoch
    depth_weight: float = 0.0  # weight of the depth L2 loss on 3D samples
    geometric_weight: float = 0.0  # weight of the bone-length-ratio loss on 2D samples
    samples_2d_per_epoch: int = 0  # 0: the whole 2D training split


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser, device and schedule."""

    batch_size: int = 6  # samples per step per process (DDP: the global batch is this x processes)
    optimizer: str = "rmsprop"  # "rmsprop" (paper) or "adam"
    rmsprop_alpha: float = 0.99
    eps: float = 1e-8
    momentum: float = 0.0
    weight_decay: float = 0.0
    device: str = "auto"  # "auto" (CUDA, then CPU), "cpu", "cuda", "cuda:1", ...
    num_threads: int = 0  # torch CPU threads; 0 leaves torch's default
    bf16: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    bf16_on_cpu: bool = False  # bf16 autocast on CPU too: ~2x faster with native bf16 (AVX512-BF16, AMX), slow without
    channels_last: bool = True  # channels_last (NHWC) memory format, on every device
    compile: bool = False  # torch.compile the model
    val_every: int = 1  # validate every N epochs (and after the last)
    val_samples: int = 200  # validation subset size per split (0: all)
    checkpoint_every_steps: int = 0  # also checkpoint every N steps (0: per epoch only)
    log_every_steps: int = 10  # write train losses to metrics.jsonl every N steps
    # Deterministic algorithms: CPU runs (and --resume) are then bitwise reproducible for a
    # fixed seed, thread count and world size; on CUDA it also disables cuDNN autotuning.
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
    subpixel: str = "quarter"  # heatmap peak refinement (decode.SUBPIXEL_METHODS): "quarter" or "log_parabola"
    batch_size: int = 32
    paper_bone_sum_mm: float = 4296.99  # paper evaluator: sum of the 14 edge lengths
    # Sum of the 14 edge lengths (mm) used to scale 2D + depth to millimetres; 0 means
    # "compute the mean over the training subjects of the h36m split".
    reconstruct_bone_sum_mm: float = 0.0
    pckh_threshold: float = 0.5


@dataclass(frozen=True)
class Config:
    """Everything one experiment needs; saved with every checkpoint and output."""

    profile: str = "paper"
    seed: int = 0
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


# Smallest accepted value of numeric keys read from files and overrides (a batch of 0 or
# logging every 0 steps would otherwise fail deep inside training with a ZeroDivisionError).
_LOWER_BOUNDS: dict[tuple[type, str], int | float] = {
    (Config, "seed"): 0,
    **{(SyntheticConfig, k): 0 for k in ("h36m_train", "h36m_test", "mpii_train", "mpii_val", "wild_test",
                                         "wild_val", "lab_val")},
    (SyntheticConfig, "image_size"): 64, (SyntheticConfig, "workers"): 1,
    (DataConfig, "input_size"): 64, (DataConfig, "heatmap_size"): 1, (DataConfig, "num_workers"): 0,
    **{(ModelConfig, k): 1 for k in ("num_stacks", "num_modules", "num_features", "num_reg_modules", "num_joints")},
    **{(StageConfig, k): 0 for k in ("epochs", "lr", "ratio_3d", "depth_weight", "geometric_weight",
                                     "samples_2d_per_epoch")},
    (TrainConfig, "batch_size"): 1, (TrainConfig, "num_threads"): 0, (TrainConfig, "val_every"): 1,
    (TrainConfig, "val_samples"): 0, (TrainConfig, "checkpoint_every_steps"): 0, (TrainConfig, "log_every_steps"): 1,
    (EvalConfig, "batch_size"): 1,
}


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


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp` (converting where lossless); raise ConfigError."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r}: expected a mapping for {tp.__name__}, got {value!r}")
        return _from_dict(tp, value, key)
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
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT_RE.fullmatch(value.strip()):
            return float(value)  # "1e-3" in a YAML file (YAML 1.1 reads it as a string)
        raise ConfigError(f"config key {key!r}: expected float, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config key {key!r}: expected str, got {value!r}")
    raise ConfigError(f"config key {key!r}: unsupported annotation {tp!r}")


def _from_dict(cls: type, data: dict, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for k in data:
        if k not in names:
            where = f"{prefix}.{k}" if prefix else k
            if where in RETIRED_KEYS:
                raise ConfigError(f"config key {where!r} was retired: {RETIRED_KEYS[where]}")
            raise ConfigError(f"unknown config key {where!r}; {cls.__name__} has keys: {', '.join(sorted(names))}")
    kwargs = {k: _coerce(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in data.items()}
    for k, v in kwargs.items():
        low = _LOWER_BOUNDS.get((cls, k))
        if low is not None and v < low:
            raise ConfigError(f"config key {f'{prefix}.{k}' if prefix else k!r}: expected a value >= {low}, got {v!r}")
    return cls(**kwargs)


def config_from_dict(data: dict, cls: type = Config) -> Any:
    """Build a (frozen) config of type `cls` from a nested dict; missing keys take defaults."""
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping, got {type(data).__name__}")
    return _from_dict(cls, data)


def config_to_dict(cfg: Any) -> dict:
    """Nested plain dict (tuples as lists) of a config, suitable for YAML/JSON/checkpoints."""
    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, tuple):
            return [conv(x) for x in v]
        return v
    return conv(cfg)


_FLOAT_RE = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


def _parse_scalar(text: str) -> Any:
    """Parse an override's value with YAML rules (1e-3 -> float, true -> bool, [1,2] -> list)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"value {text!r} is not valid YAML ({' '.join(str(e).split())[:120]})") from None
    if isinstance(value, str) and _FLOAT_RE.fullmatch(text.strip()):
        return float(text)  # YAML 1.1 reads "1e-3" as a string; we want the number
    return value


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """Apply `key.sub=value` overrides to a nested dict, checking that each key exists."""
    out = config_to_dict(config_from_dict(data))  # full tree, so every key can be set
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        node = out
        for i, p in enumerate(parts):
            if not isinstance(node, dict) or p not in node:
                if key.strip() in RETIRED_KEYS:
                    raise ConfigError(f"override {item!r}: config key {key.strip()!r} was retired: "
                                      f"{RETIRED_KEYS[key.strip()]}")
                raise ConfigError(f"unknown config key {'.'.join(parts[: i + 1])!r} in override {item!r}")
            if i == len(parts) - 1:
                try:
                    node[p] = _parse_scalar(text)
                except ConfigError as e:
                    raise ConfigError(f"override {item!r}: {e}") from None
            else:
                node = node[p]
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Load a YAML config (relative paths resolve at the project root) and apply overrides."""
    data: dict = {}
    if path is not None:
        p = resolve(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML ({e})".replace("\n", " ")) from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"{p}: not a UTF-8 text (YAML) file ({e.reason} at byte {e.start})") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: a config must be a mapping at the top level")
        data = loaded
    try:
        return config_from_dict(apply_overrides(data, overrides))
    except ConfigError as e:
        where = f"{resolve(path)}: " if path is not None else ""
        raise ConfigError(f"{where}{e}") from None


def dump_config(cfg: Any, path: str | Path) -> Path:
    """Write a config as YAML (atomically) and return the path."""
    return atomic_write_text(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))

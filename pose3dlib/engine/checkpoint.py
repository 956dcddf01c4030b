"""Checkpoints: atomic writes and safe loads.

A checkpoint is a plain dict (no pickled classes), loadable with `weights_only=True`:

    {"format": "pose3d-checkpoint", "format_version": 1,
     "config": config_to_dict(cfg),          # the full typed config that produced it
     "model": model.state_dict(),
     "optimizer": optimizer.state_dict() | None,
     "stage": int, "epoch": int, "step": int, "metrics": {name: float},
     "bone_sum_mm": float,                    # the millimetre scale of 3D output (train.bone_sum_mm)
     "train_model": state_dict,               # only where the stage averages its weights (ema_decay > 0):
                                              # the trained weights, which --resume continues; "model"
                                              # then holds their moving average, the stage's output
     "code_version": str, "extra": {...}}     # extra: anything else JSON-like (RNG states...)

Writes go to a temporary file in the same folder, are fsynced, then renamed over the
target, so a kill at any moment leaves either the old or the new checkpoint, never half.
"""
from __future__ import annotations

import errno
import math
import os
import pickle
import re
import subprocess
import zipfile
import zlib
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..config import Config, config_from_dict, config_to_dict, migrate_config_dict
from .atomic_io import atomic_write
from .errors import CheckpointError, ConfigError

FORMAT = "pose3d-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "format_version", "config", "model")


def code_version() -> str:
    """Package version plus the git commit when run from a checkout (e.g. '0.1.0+3f2a9c1')."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
            capture_output=True, text=True, timeout=5, check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save to `path` atomically (temp file + fsync + rename, pose3dlib.engine.atomic_io)."""
    return atomic_write(path, lambda f: _torch_save(obj, f), binary=True)


def _torch_save(obj: Any, f) -> None:
    """torch.save, with a failed write (a full disk) raised as the OSError it is: torch's zip writer
    reports it as a RuntimeError ('unexpected pos ...') with the OSError only in its context, which
    would hide the reason and the file from the one-line error."""
    try:
        torch.save(obj, f)
    except RuntimeError as e:
        cause = e.__cause__ or e.__context__
        while cause is not None and not isinstance(cause, OSError):
            cause = cause.__cause__ or cause.__context__
        if cause is None or cause.errno is None:
            raise
        raise OSError(cause.errno, cause.strerror or str(cause), cause.filename) from e


def make_checkpoint(*, model_state: dict, config: dict, stage: int = 0, epoch: int = 0, step: int = 0,
                    optimizer_state: dict | None = None, metrics: dict | None = None,
                    extra: dict | None = None, bone_sum_mm: float | None = None,
                    train_model_state: dict | None = None) -> dict:
    """Assemble a checkpoint dict in the documented format (bone_sum_mm: see `bone_sum_mm`;
    train_model_state: the trained weights where `model_state` is their moving average)."""
    ckpt = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config,
        "model": model_state,
        "optimizer": optimizer_state,
        "stage": int(stage),
        "epoch": int(epoch),
        "step": int(step),
        "metrics": {k: float(v) for k, v in (metrics or {}).items()},
        "code_version": code_version(),
        "extra": extra or {},
    }
    if bone_sum_mm is not None:
        ckpt["bone_sum_mm"] = float(bone_sum_mm)
    if train_model_state is not None:
        ckpt["train_model"] = train_model_state
    return ckpt


def bone_sum_mm(ckpt: dict, where: str = "checkpoint") -> float:
    """The millimetre scale stored in a checkpoint: 3D output is scaled so its 14 bones sum to this.

    The one rule (see TrainConfig.bone_sum_mm): fixed when the stage was trained, from
    train.bone_sum_mm or, when that is 0, the mean over the Human3.6M-format training
    split; evaluation and the demo both read it from here, so one network gives the same
    skeletons in both. Raises CheckpointError naming `where` when the checkpoint has none.
    """
    value = ckpt.get("bone_sum_mm")
    if not isinstance(value, float) or not 0 < value < math.inf:
        raise CheckpointError(f"{where}: the checkpoint stores no millimetre scale ('bone_sum_mm'; written by "
                              "training since this entry was added); train the stage again to get one")
    return value


def is_finished(ckpt: dict) -> bool:
    """Whether a checkpoint's stage ran all its epochs (`extra.finished`, which the trainer sets on the
    last save of a stage and convert-hg3d on a converted model); False for one stopped before."""
    return bool(ckpt.get("extra", {}).get("finished", False))


def unfinished_note(ckpt: dict) -> str:
    """How far an unfinished checkpoint's stage got, in the trainer's own terms: 'stopped after 1 of 3
    epochs (step 7)'. `epoch` counts the epochs completed; the stage's length is in its config."""
    stage = ckpt.get("stage")
    epochs = ckpt.get("config", {}).get("train", {}).get(f"stage{stage}", {}).get("epochs", "?")
    return f"stopped after {ckpt.get('epoch', '?')} of {epochs} epochs (step {ckpt.get('step', '?')})"


def checkpoint_caveats(ckpt: dict, where: str = "checkpoint") -> list[str]:
    """What every output of this checkpoint must carry, in words ([] for none): a Stage 1 checkpoint
    (2D only: its depth branch never trained, so its 3D output means nothing) and an unfinished one
    (a stage stopped before its last epoch: a partly trained network). Finished Stages 2-3 and converted
    hg3d checkpoints (stage 0, marked finished) pass."""
    caveats = []
    if ckpt.get("stage") == 1:
        caveats.append(f"{where} is a Stage 1 checkpoint (2D only): its depth branch is untrained and its 3D "
                       "output meaningless; use a Stage 2 or 3 checkpoint for 3D")
    if not is_finished(ckpt):
        caveats.append(f"{where} is unfinished: its stage {unfinished_note(ckpt)}, so the network is partly "
                       "trained (finish it with `train --resume`)")
    return caveats


def save_checkpoint(path: str | os.PathLike, checkpoint: dict) -> Path:
    """Write a checkpoint dict (see `make_checkpoint`) atomically."""
    for k in REQUIRED_KEYS:
        if k not in checkpoint:
            raise CheckpointError(f"refusing to save a checkpoint without key {k!r}")
    return atomic_torch_save(checkpoint, path)


RETRAIN_HINT = "a run's own stage checkpoint is trained again once deleted (or with `train --overwrite`)"


def _damaged_member(path: Path) -> str | None:
    """The first entry of a zip archive whose bytes fail their stored CRC-32, else None.

    torch.load does not check the checksums, so without this a flipped byte inside a tensor
    loads silently as a wrong weight."""
    try:
        with zipfile.ZipFile(path) as z:
            return z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as e:
        return f"(the archive itself: {type(e).__name__})"


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a pose3d checkpoint safely (weights_only: no code from the file ever runs).

    Its "config" comes back as the full config tree of this pose3dlib (keys newer than the
    file take their defaults). Raises CheckpointError naming the file when it is missing,
    truncated, not a pose3d checkpoint (e.g. an original hg3d file: use `convert-hg3d`),
    holds unsafe objects, or its entries do not have the documented types (see
    `check_checkpoint`).
    """
    path = Path(path)
    if path.is_dir():
        inside = next((c for c in (path / "last.pt", path / "stage3" / "last.pt") if c.is_file()), None)
        raise CheckpointError(f"checkpoint {path}: is a folder; expected a checkpoint file "
                              f"({f'here: {inside}' if inside else 'e.g. runs/cpu/stage3/last.pt'})")
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:  # zipfile.is_zipfile answers False for a file it may not open: say why instead
        path.open("rb").close()
    except OSError as e:
        hint = "; check its permissions" if e.errno in (errno.EACCES, errno.EPERM) else ""
        raise CheckpointError(f"checkpoint {path}: cannot be read ({e.strerror or type(e).__name__}){hint}") from None
    if not zipfile.is_zipfile(path):  # torch.save (>= 1.6) always writes a zip archive
        raise CheckpointError(
            f"{path}: not a pose3d checkpoint (expected a torch zip archive; the file is "
            f"{'empty' if path.stat().st_size == 0 else 'truncated, corrupt or in an older format'}); "
            f"{RETRAIN_HINT}; a file of the original release converts with `python -m pose3dlib convert-hg3d IN OUT`"
        )
    damaged = _damaged_member(path)
    if damaged:
        raise CheckpointError(f"{path}: damaged: the bytes of its entry {damaged!r} no longer match the checksum "
                              f"stored beside them (overwritten or flipped on disk or in a copy); {RETRAIN_HINT}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path}: refused to load: it holds objects other than tensors and plain containers "
            f"({_unpickler_reason(e)}; nothing from the file was run); an original hg3d checkpoint? "
            "convert it with `python -m pose3dlib convert-hg3d`"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, IndexError, KeyError, TypeError) as e:
        # torch's zip reader and unpickler report damaged archives with any of these
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt?): "
                              f"{type(e).__name__}: {' '.join(str(e).split())[:200]}; {RETRAIN_HINT}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: not a pose3d checkpoint (no 'format': {FORMAT!r}); "
            "for the original release's files use `python -m pose3dlib convert-hg3d IN OUT`"
        )
    version = ckpt.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        # before the entries are checked: a newer release's config may hold keys this one does not know
        raise CheckpointError(f"{path}: format_version {version} is newer than this pose3dlib understands "
                              f"({FORMAT_VERSION}); update pose3dlib to read it")
    cfg = check_checkpoint(ckpt, str(path))
    # The full config tree of this version: keys added since the file was written take their
    # defaults, so an older checkpoint compares equal to the config it was trained with
    # (stage_status, --resume) instead of looking stale.
    ckpt["config"] = config_to_dict(cfg)
    return ckpt


# key -> (accepted types, what the message calls them); the state dicts are checked entry by entry
_ENTRY_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "format_version": ((int,), "an int"), "config": ((dict,), "a mapping"), "model": ((dict,), "a state dict"),
    "train_model": ((dict,), "a state dict"),
    "optimizer": ((dict, type(None)), "an optimizer state dict or None"), "stage": ((int,), "an int"),
    "epoch": ((int,), "an int"), "step": ((int,), "an int"), "metrics": ((dict,), "a mapping"),
    "extra": ((dict,), "a mapping"), "bone_sum_mm": ((float,), "a float"),
}


def check_checkpoint(ckpt: dict, where: str) -> Config:
    """Raise CheckpointError naming `where` and the key when an entry lacks its documented type.

    Returns the stored config, parsed.

    Required keys must be present; the others are checked when present. `config` must be
    a valid Config (unknown or mistyped keys are named), `model` (and `train_model`) a mapping
    of str -> tensor.
    """
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{where}: checkpoint lacks keys {missing}")
    for key, (types, expected) in _ENTRY_TYPES.items():
        value = ckpt.get(key)
        if key in ckpt and (not isinstance(value, types) or isinstance(value, bool)):
            raise CheckpointError(f"{where}: checkpoint entry {key!r} is a {type(value).__name__}, expected {expected}")
    for key in ("model", "train_model"):
        state = ckpt.get(key, {})
        bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
        if bad:
            raise CheckpointError(f"{where}: checkpoint entry {key!r} must map parameter names to tensors; "
                                  f"{str(bad[0])!r} holds a {type(state[bad[0]]).__name__}")
    try:
        return config_from_dict(migrate_config_dict(ckpt["config"]))
    except ConfigError as e:
        raise CheckpointError(f"{where}: stored config is invalid: {e}") from None


def _unpickler_reason(e: Exception) -> str:
    """The one informative sentence of torch's weights-only refusal (e.g. 'Unsupported global: GLOBAL os.system')."""
    text = " ".join(str(e).split())
    m = re.search(r"WeightsUnpickler error:\s*(.+?)(?: was not an allowed global| Check the documentation|$)", text)
    return (m.group(1) if m else text)[:160].rstrip(". ")

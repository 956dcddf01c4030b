"""Checkpoints: atomic writes and safe loads.

A checkpoint is a plain dict (no pickled classes), loadable with `weights_only=True`:

    {"format": "pose3d-checkpoint", "format_version": 1,
     "config": config_to_dict(cfg),          # the full typed config that produced it
     "model": model.state_dict(),
     "optimizer": optimizer.state_dict() | None,
     "stage": int, "epoch": int, "step": int, "metrics": {name: float},
     "code_version": str, "extra": {...}}     # extra: anything else JSON-like (RNG states...)

Writes go to a temporary file in the same folder, are fsynced, then renamed over the
target, so a kill at any moment leaves either the old or the new checkpoint, never half.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .errors import CheckpointError

FORMAT = "pose3d-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "format_version", "config", "model")


def code_version() -> str:
    """Package version plus the git commit when run from a checkout (e.g. '0.1.0+3f2a9c1')."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save to `path` atomically (temp file + fsync + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def make_checkpoint(*, model_state: dict, config: dict, stage: int = 0, epoch: int = 0, step: int = 0,
                    optimizer_state: dict | None = None, metrics: dict | None = None,
                    extra: dict | None = None) -> dict:
    """Assemble a checkpoint dict in the documented format."""
    return {
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


def save_checkpoint(path: str | os.PathLike, checkpoint: dict) -> Path:
    """Write a checkpoint dict (see `make_checkpoint`) atomically."""
    for k in REQUIRED_KEYS:
        if k not in checkpoint:
            raise CheckpointError(f"refusing to save a checkpoint without key {k!r}")
    return atomic_torch_save(checkpoint, path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a pose3d checkpoint safely (weights_only: no code from the file ever runs).

    Raises CheckpointError naming the file when it is missing, truncated, not a pose3d
    checkpoint (e.g. an original hg3d file: use `convert-hg3d`), or holds unsafe objects.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path}: refused to load: it holds objects other than tensors and plain containers "
            f"({first[:200]}); an original hg3d checkpoint? convert it with `python -m pose3dlib convert-hg3d`"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt?): {str(e).splitlines()[0][:200]}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: not a pose3d checkpoint (no 'format': {FORMAT!r}); "
            "for the original release's files use `python -m pose3dlib convert-hg3d IN OUT`"
        )
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks keys {missing}")
    if ckpt["format_version"] > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {ckpt['format_version']} is newer than this pose3dlib understands ({FORMAT_VERSION})")
    return ckpt

"""Atomic file writes and generated-block rewrites: the one implementation every writer uses.

A write goes to a temporary file in the target's folder, is flushed and fsynced, then
renamed over the target (and the folder fsynced), so a kill at any moment leaves either
the old file or the new one, never half of one; a failed write removes its temporary file.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

from .errors import Pose3DError


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], *, binary: bool = False) -> Path:
    """Create or replace `path` atomically with what `write(file)` writes; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""})) as f:
            write(f)
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


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Create or replace the UTF-8 text file `path` atomically; return the path."""
    return atomic_write(path, lambda f: f.write(text))


def replace_marked_block(path: str | os.PathLike, begin: str, end: str, block: str) -> Path:
    """Replace the text from `begin` to `end` (markers included) in `path` by `block`, atomically.

    Raises Pose3DError naming the file when it is missing, not UTF-8, or lacks the markers.
    """
    path = Path(path)
    if not path.is_file():
        raise Pose3DError(f"{path}: not found; it must exist and hold the markers {begin!r} ... {end!r}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise Pose3DError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    start = text.find(begin)
    stop = text.find(end, start + len(begin)) if start >= 0 else -1
    if start < 0 or stop < 0:
        raise Pose3DError(f"{path}: lacks the generated-block markers {begin!r} ... {end!r} (in that order)")
    return atomic_write_text(path, text[:start] + block + text[stop + len(end):])

"""Progress bars: live in terminals, rare in logs, silent where asked.

Every bar of pose3dlib (data preparation, training, evaluation) comes from `progress_bar`,
so a non-interactive log (a redirected stderr, a notebook) gets at most one refresh every
LOG_REFRESH_S seconds instead of one line per update. POSE3D_PROGRESS=off turns bars off
(the notebook tests set it). POSE3D_PROGRESS=file:<path> appends them to that file instead
of stderr, every FILE_REFRESH_S seconds (off a terminal a nested bar redraws the same
line, so no cursor escapes reach a log): `run-notebook` (so `make reproduce`, sweeps and the
ablation) gives its kernel such a file and shows its latest line in the terminal
(pose3dlib.tools.notebook_runner), so the executed notebook carries no bar text while a
training stage still shows how far it is.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

# Seconds between refreshes when stderr is not a terminal (a log file, a notebook cell).
LOG_REFRESH_S = 30.0
TERMINAL_REFRESH_S = 0.5
FILE_REFRESH_S = 10.0  # POSE3D_PROGRESS=file:<path>
ENV = "POSE3D_PROGRESS"  # "off" disables every bar; "file:<path>" writes them there; else (or unset) on stderr
FILE_PREFIX = "file:"
_files: dict[str, object] = {}  # one append handle per progress file, for the process's lifetime


def bars_enabled() -> bool:
    """False when POSE3D_PROGRESS=off."""
    return os.environ.get(ENV, "").strip().lower() not in ("off", "0", "false", "no")


def progress_file() -> str | None:
    """The file POSE3D_PROGRESS=file:<path> names, else None."""
    value = os.environ.get(ENV, "").strip()
    return value[len(FILE_PREFIX):] if value.startswith(FILE_PREFIX) and len(value) > len(FILE_PREFIX) else None


def refresh_interval_s(stream=None) -> float:
    """Seconds between refreshes for `stream` (default stderr): short on a terminal, long otherwise."""
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    return TERMINAL_REFRESH_S if callable(isatty) and isatty() else LOG_REFRESH_S


def progress_bar(iterable: Iterable | None = None, *, disable: bool = False, **kwargs: Any):
    """A tqdm bar on stderr with pose3dlib's refresh rule (see the module docstring)."""
    from tqdm import tqdm

    target = progress_file()
    if target is not None and "file" not in kwargs:
        if target not in _files:
            _files[target] = open(target, "a", encoding="utf-8")  # kept open: bars come and go
        kwargs["file"] = _files[target]
        kwargs.setdefault("mininterval", FILE_REFRESH_S)
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("mininterval", refresh_interval_s(kwargs["file"]))
    if refresh_interval_s(kwargs["file"]) != TERMINAL_REFRESH_S:
        # Off a terminal a nested bar (one opened while another runs) would get its own line
        # reached with cursor-up escapes, which a log or the progress file shows as `[A`:
        # there every bar redraws the one line instead.
        kwargs.setdefault("position", 0)
    return tqdm(iterable, disable=disable or not bars_enabled(), **kwargs)

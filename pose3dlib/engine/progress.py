"""Progress bars: live in terminals, rare in logs, silent where asked.

Every bar of pose3dlib (data preparation, training, evaluation) comes from `progress_bar`,
so a non-interactive log (a redirected stderr, a notebook) gets at most one refresh every
LOG_REFRESH_S seconds instead of one line per update. POSE3D_PROGRESS=off turns bars off
(the notebook runner and the notebook tests set it, so executed notebooks carry no bar text).
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

# Seconds between refreshes when stderr is not a terminal (a log file, a notebook cell).
LOG_REFRESH_S = 30.0
TERMINAL_REFRESH_S = 0.5
ENV = "POSE3D_PROGRESS"  # "off" disables every bar; anything else (or unset) leaves them on


def bars_enabled() -> bool:
    """False when POSE3D_PROGRESS=off."""
    return os.environ.get(ENV, "").strip().lower() not in ("off", "0", "false", "no")


def refresh_interval_s(stream=None) -> float:
    """Seconds between refreshes for `stream` (default stderr): short on a terminal, long otherwise."""
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    return TERMINAL_REFRESH_S if callable(isatty) and isatty() else LOG_REFRESH_S


def progress_bar(iterable: Iterable | None = None, *, disable: bool = False, **kwargs: Any):
    """A tqdm bar on stderr with pose3dlib's refresh rule (see the module docstring)."""
    from tqdm import tqdm

    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("mininterval", refresh_interval_s(kwargs["file"]))
    return tqdm(iterable, disable=disable or not bars_enabled(), **kwargs)

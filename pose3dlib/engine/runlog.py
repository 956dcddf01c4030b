"""Training logs: `metrics.jsonl` (one JSON record per line) and optional TensorBoard scalars.

Each record has a `kind` ("train": losses at a step, "epoch": epoch means, "val":
validation metrics) plus `stage`, `epoch` and `step`. On `--resume` the file is cut back
to the records of steps the checkpoint has seen, so a resumed run's log equals an
uninterrupted run's.
"""
from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

from .atomic_io import atomic_write, atomic_write_text


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl file ([] if it does not exist); a torn last line is dropped."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a kill while appending leaves at most one partial line, the last
    return records


def drop_torn_line(path: str | os.PathLike) -> bool:
    """Cut an append-only JSON-lines file back to its last whole line; True when something was cut.

    A process killed while appending a record leaves it without its newline; the next process
    (`train --resume`) would append its first record onto that fragment, and the file would no
    longer parse. A missing file is left alone.
    """
    path = Path(path)
    if not path.is_file():
        return False
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return False
    atomic_write(path, lambda f: f.write(data[: data.rfind(b"\n") + 1]), binary=True)
    return True


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # JSON has no nan/inf
    return v


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line (a JSON record) to a log file, flushed; an OSError that names no file (a full
    disk) is raised again naming `path`, so the command line reports it in one line."""
    try:
        with open(path, "a") as f:
            f.write(line + "\n")
            f.flush()
    except OSError as e:
        if e.filename is None and e.errno is not None:
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise


class MetricsLog:
    """Appends records to `<stage_dir>/metrics.jsonl` and mirrors scalars to TensorBoard.

    Only the main rank writes; other ranks get a log whose methods do nothing.
    """

    def __init__(self, path: str | os.PathLike, *, enabled: bool = True, resume_step: int | None = None,
                 tensorboard_dir: str | os.PathLike | None = None) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self._tb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = [r for r in read_metrics(self.path) if resume_step is not None and r.get("step", 0) <= resume_step]
        # Rewrite (not append) so a fresh run never inherits stale records and a resumed
        # one drops the records written after its checkpoint.
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package
            except ImportError:
                self._tb = None
            else:
                if resume_step is None:  # a fresh run: the older run's curves go, as its records did
                    shutil.rmtree(tensorboard_dir, ignore_errors=True)
                # resumed: the events written after the checkpoint are dropped, as the records are
                self._tb = SummaryWriter(str(tensorboard_dir),
                                         purge_step=None if resume_step is None else resume_step + 1)

    def write(self, kind: str, **values: Any) -> None:
        """Append one record; numeric values also go to TensorBoard as `<kind>/<name>`."""
        if not self.enabled:
            return
        record = {"kind": kind, **{k: _json_value(v) for k, v in values.items()}}
        append_line(self.path, json.dumps(record))
        if self._tb is not None:
            step = int(values.get("step", 0))
            for k, v in values.items():
                if k not in ("step", "stage", "epoch") and isinstance(v, (int, float)) and not isinstance(v, bool):
                    self._tb.add_scalar(f"{kind}/{k}", v, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None

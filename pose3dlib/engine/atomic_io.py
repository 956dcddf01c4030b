"""Atomic file writes and generated-block rewrites: the one implementation every writer uses.

A write goes to a temporary file in the target's folder, is flushed and fsynced, then
renamed over the target (and the folder fsynced), so a kill at any moment leaves either
the old file or the new one, never half of one; a failed write removes its temporary file.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from .errors import Pose3DError

# `.<name>.<pid>.<kind>[.<extension>]`: see temporary_sibling. A process id has at most 7
# digits and is at most MAX_PID (Linux's largest pid_max, 2**22), so a hidden name with a date
# in it (`.data.20240101.old`) is not taken for one.
MAX_PID = 4_194_304  # pid_max may be at most this, and a process id is below pid_max
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d{1,7})\.(?P<kind>tmp|partial|old)(?:\.[A-Za-z0-9]+)?$")
_LEGACY_PARTIAL = re.compile(r"^\.(?P<name>.+)\.partial-(?P<pid>\d{1,7})$")  # the generator's name before 2026-12-03


def temporary_sibling(path: str | os.PathLike, kind: str = "tmp", suffix: str = "") -> Path:
    """The hidden, process-unique name beside `path` under which it is built: `.<name>.<pid>.<kind><suffix>`.

    `kind` is "tmp" for a file, "partial" for a folder being filled, "old" for the version a
    rename is about to replace; `suffix` keeps an extension the writer needs (".jpg" for OpenCV,
    ".ipynb" for papermill). `target_of_temporary` maps such a name back to `path`.
    """
    if kind not in ("tmp", "partial", "old"):
        raise ValueError(f"temporary kind must be tmp, partial or old, got {kind!r}")
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{kind}{suffix}")


def target_of_temporary(path: str | os.PathLike) -> tuple[Path, int] | None:
    """(the path being written, the writer's process id) for a `temporary_sibling` name, else None."""
    path = Path(path)
    m = _TEMPORARY.match(path.name) or _LEGACY_PARTIAL.match(path.name)
    if m is None or not 0 < int(m["pid"]) <= MAX_PID:
        return None
    return path.with_name(m["name"]), int(m["pid"])


def process_alive(pid: int) -> bool:
    """True while process `pid` may exist on this machine (a process of another user counts as alive).

    Only POSIX can probe a process id (signal 0); elsewhere every writer counts as alive, so
    nothing is removed (on Windows `os.kill(pid, 0)` would send the process a CTRL_C_EVENT).
    """
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove what killed writers of `path` left beside it (`temporary_sibling` names of processes
    that are gone: a kill -9, a Ctrl-C during a write); returns the paths removed.

    Kept: a live writer's temporaries (another process writing the same output), another
    user's, and whatever cannot be removed (the run goes on; nothing here is an error).
    """
    import shutil

    path = Path(path)
    if not path.parent.is_dir():
        return []
    removed = []
    for candidate in list(path.parent.iterdir()):
        written = target_of_temporary(candidate)
        if written is None or written[0] != path or written[1] == os.getpid() or process_alive(written[1]):
            continue
        try:
            if hasattr(os, "getuid") and candidate.lstat().st_uid != os.getuid():
                continue
            if candidate.is_dir() and not candidate.is_symlink():
                shutil.rmtree(candidate)
            else:
                candidate.unlink()
        except OSError:
            continue
        removed.append(candidate)
    return removed


def describe_os_error(e: OSError) -> str:
    """One line for a failed file operation, naming the file a user asked for rather than a temporary one.

    `[Errno 2] No such file or directory: '/proc/.x.onnx.31893.tmp'` becomes
    `cannot write /proc/x.onnx: No such file or directory (creating /proc/.x.onnx.31893.tmp)`; making a
    folder where a file is (`--out afile/m.csv`) says so instead of only `File exists`.
    """
    if e.filename is None:
        return str(e)
    name, name2 = (os.fsdecode(f) if isinstance(f, (str, bytes, os.PathLike)) else f for f in (e.filename, e.filename2))
    name = str(name)  # a file descriptor (os.stat(3)) is an int
    reason = e.strerror or str(e)
    written = target_of_temporary(name)
    if written is not None:
        return f"cannot write {written[0]}: {reason} (creating {name})"
    if name2 is not None:
        return f"{name} -> {name2}: {reason}"
    if e.errno in (errno.EEXIST, errno.ENOTDIR):  # a folder wanted where a file is (`--out afile/m.csv`)
        blocking = next((str(d) for d in (Path(name), *Path(name).parents) if d.is_file()), None)
        if blocking is not None:
            return f"{blocking}: is a file, where a folder is needed ({reason})"
    return f"{name}: {reason}"


def probe_writable(folder: str | os.PathLike) -> None:
    """Write and remove an empty temporary file in `folder`: OSError when files cannot be made there
    (an existing folder may still be read-only)."""
    probe = temporary_sibling(Path(folder) / "write-check")
    probe.write_bytes(b"")
    probe.unlink()


def prepare_output_folder(folder: str | os.PathLike, option: str, given: str | os.PathLike | None = None) -> Path:
    """Make `folder` (and the folders above it) before any work, so an output path that cannot hold
    files (a file where a folder is needed, no permission) fails at once, not after minutes of work;
    Pose3DError naming `option` with the path as given (`given`, else `folder`) and the reason."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        probe_writable(folder)
    except OSError as e:
        raise Pose3DError(f"{option} {given or folder}: cannot write there ({describe_os_error(e)})") from None
    return Path(folder)


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], *, binary: bool = False) -> Path:
    """Create or replace `path` atomically with what `write(file)` writes; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        with open(tmp, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if e.filename is None and e.errno is not None:  # a failed write (a full disk) names no file: name it
            raise OSError(e.errno, e.strerror, str(tmp)) from e
        raise
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


def replace_folder(filled: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Put the folder `filled` (built as `temporary_sibling(path, "partial")`) in place of `path`.

    The folder there before is renamed aside first and removed after the new one is in place, so
    `path` is never a mix of the two: the old whole folder, the new one or, between the two
    renames, nothing.
    """
    filled, path = Path(filled), Path(path)
    if path.exists() and not path.is_dir():
        raise Pose3DError(f"{path}: exists and is not a folder; a folder of results would replace it")
    old = temporary_sibling(path, "old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    try:
        filled.rename(path)
    except OSError:
        if old.exists():
            old.rename(path)  # the folder there before comes back
        raise
    shutil.rmtree(old, ignore_errors=True)
    return path


@contextlib.contextmanager
def building_folder(path: str | os.PathLike) -> Iterator[Path]:
    """An empty temporary folder beside `path` (`temporary_sibling(path, "partial")`) to fill; when the
    block ends without an error it replaces `path` whole (`replace_folder`), after an error it is
    removed and `path` is as it was."""
    filled = temporary_sibling(path, "partial")
    shutil.rmtree(filled, ignore_errors=True)
    filled.mkdir(parents=True)
    try:
        yield filled
        replace_folder(filled, path)
    finally:
        shutil.rmtree(filled, ignore_errors=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Create or replace the UTF-8 text file `path` atomically; return the path."""
    return atomic_write(path, lambda f: f.write(text))


def marked_block(path: str | os.PathLike, begin: str, end: str) -> tuple[str, int, int]:
    """(text of `path`, where `begin` starts, where `end` starts): a command that writes a generated block
    calls it before its work too, so a file without the markers is named before minutes are spent.

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
    return text, start, stop


def replace_marked_block(path: str | os.PathLike, begin: str, end: str, block: str) -> Path:
    """Replace the text from `begin` to `end` (markers included) in `path` by `block`, atomically
    (errors: `marked_block`)."""
    text, start, stop = marked_block(path, begin, end)
    return atomic_write_text(path, text[:start] + block + text[stop + len(end):])

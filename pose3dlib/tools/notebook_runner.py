"""Run a numbered notebook through papermill with checked parameters and an atomic output.

    python -m pose3dlib run-notebook 02_train_2d runs/cpu/02_train_2d.ipynb -p config_file configs/cpu.yaml -p run_dir runs/cpu

Unlike plain papermill, an unknown parameter is an error naming it and the notebook's
parameters (papermill only warns), a value of the wrong type (the type of the parameter's
default: `-p use_real_data maybe` for a bool) is an error naming the parameter, the value
and the type, and the executed notebook is written to a temporary file renamed on success,
so a failed or interrupted run never looks finished.
"""
from __future__ import annotations

import argparse
import ast
import json
import logging
import os
import re
import sys
import tempfile
from pathlib import Path

import yaml

from ..config import yaml_comment_dropped
from ..engine.atomic_io import remove_stale_temporaries, temporary_sibling
from ..engine.errors import Pose3DError
from ..engine.paths import NOTEBOOKS_DIR, CommandLinePath, from_current_folder, project_relative, resolve
from .kernel import NAME as KERNEL  # the Jupyter kernel run-notebook asks for (registered by make setup)

# The numbered notebook that trains each stage, and the one that evaluates a run (metrics.csv).
TRAIN_NOTEBOOKS = {1: "02_train_2d", 2: "03_train_depth", 3: "04_train_geometry"}
STAGE_TRAINED_BY = {notebook: stage for stage, notebook in TRAIN_NOTEBOOKS.items()}
EVAL_NOTEBOOK = "06_eval_mpjpe"


# Seconds a kernel may take to start; a busy machine (other training runs) can need minutes.
KERNEL_START_TIMEOUT_S = 600
# The temporary folder of a run's kernel connection file, sockets and logs: pose3d-kernel-<runner pid>-<random>
KERNEL_DIR_PREFIX = "pose3d-kernel-"
STALE_KERNEL_DIR_S = 3600  # ... removed by a later run once nothing in it changed for this long and its runner is gone
MAX_SOCKET_PATH = 100  # bytes of an IPC socket's path (the system limit: 104 on macOS, 108 on Linux)


KERNEL_LOG_NAME = "kernel-stderr.log"  # in the kernel's folder: the kernel process's own stderr
KERNEL_LOG_TAIL = 20  # lines of it shown when the kernel failed


def kernel_config(socket_dir: str | Path):
    """traitlets Config of the executing kernel: its process's stderr to `KERNEL_LOG_NAME` in
    `socket_dir` (pose3dlib.tools.kernel_manager) and, on POSIX, its connection on local (IPC)
    sockets there, a short private folder (an IPC socket path may not exceed about 104 bytes).

    Unlike a kernel on localhost TCP ports, IPC sockets are reachable only through the file
    system (the folder is the user's own), and ipykernel prints no "running over TCP without
    encryption" warning for every notebook. Where IPC is not possible (Windows, where ZeroMQ has
    none, or a temporary folder whose path is too long for a socket) the kernel uses Jupyter's
    default, TCP on localhost: the notebook runs the same either way. The same holds where a
    local socket cannot be created in the folder (a temporary folder on a file system without
    sockets): `unix_sockets_work` tries one first.
    """
    from traitlets.config import Config

    from .kernel_manager import LoggedKernelManager

    cfg = Config({"NotebookClient": {"kernel_manager_class": LoggedKernelManager},
                  "LoggedKernelManager": {"stderr_log": os.path.join(socket_dir, KERNEL_LOG_NAME)}})
    if (os.name == "posix" and len(os.fsencode(os.path.join(socket_dir, "kernel-ipc-9999"))) <= MAX_SOCKET_PATH
            and unix_sockets_work(socket_dir)):
        cfg.KernelManager = Config({"transport": "ipc", "connection_file": os.path.join(socket_dir, "kernel.json")})
    return cfg


PROGRESS_LOG_NAME = "progress.log"  # in the kernel's folder: its progress bars (pose3dlib.engine.progress)
PROGRESS_POLL_S = 2.0  # how often ProgressEcho looks for a new bar line
PROGRESS_ECHO_S = 30.0  # the least time between two lines it prints


class ProgressEcho:
    """While a notebook runs, print the newest state of the kernel's progress bars (the last
    line in `path`, which tqdm rewrites with carriage returns) as one line, `<label>: <bar>`:
    the first at once, then at most one every `echo_s` seconds (a make log stays short)."""

    def __init__(self, path: str | Path, label: str, poll_s: float = PROGRESS_POLL_S, echo_s: float = PROGRESS_ECHO_S):
        import threading

        self.path, self.label, self.interval_s, self.echo_s = Path(path), label, poll_s, echo_s
        self._stop, self._offset, self._last, self._pending = threading.Event(), 0, "", None
        self._thread = threading.Thread(target=self._run, name="progress-echo", daemon=True)

    def __enter__(self) -> ProgressEcho:
        self._thread.start()
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if exc_type is None and self._pending is not None:  # the bars' last state (not after an interrupt)
            self._print(self._pending)

    def poll(self) -> str | None:
        """Read what the kernel added since the last poll; returns the newest complete bar state, if new."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return None
        if not chunk:
            return None
        self._offset += len(chunk)
        written = [p for p in chunk.decode("utf-8", "replace").replace("\r", "\n").split("\n") if p]
        if not written or not written[-1].strip():  # nothing, or a bar that cleared itself (leave=False)
            self._pending = None
            return None
        newest = written[-1].strip()
        if newest == self._last:
            return None
        self._last = newest
        return newest

    def _print(self, state: str) -> None:
        from tqdm import tqdm

        tqdm.write(f"{self.label}: {state}", file=sys.stderr)  # above papermill's own bar
        self._pending = None

    def _run(self) -> None:
        import time

        printed = -float("inf")
        while not self._stop.wait(self.interval_s):
            self._pending = self.poll() or self._pending
            if self._pending is not None and time.monotonic() - printed >= self.echo_s:
                self._print(self._pending)
                printed = time.monotonic()
        self._pending = self.poll() or self._pending


def kernel_log_tail(socket_dir: str | Path, lines: int = KERNEL_LOG_TAIL) -> str:
    """The last `lines` lines of the kernel process's stderr log ('' when it wrote nothing)."""
    path = Path(socket_dir) / KERNEL_LOG_NAME
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").rstrip().splitlines()[-lines:])


def unix_sockets_work(folder: str | Path) -> bool:
    """True when a local (Unix-domain) socket can be bound in `folder`; the probe is removed again."""
    import socket

    probe = os.path.join(folder, "probe-socket")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.bind(probe)
    except OSError:
        return False
    finally:
        if os.path.lexists(probe):
            os.unlink(probe)
    return True


def kernel_dir_prefix(pid: int | None = None) -> str:
    """The prefix of the kernel folders of the runner process `pid` (default: this one)."""
    return f"{KERNEL_DIR_PREFIX}{os.getpid() if pid is None else pid}-"


def remove_stale_kernel_dirs(folder: str | Path | None = None) -> list[Path]:
    """Remove the kernel folders that runners killed with SIGKILL left in `folder` (default: the
    temporary folder); returns the folders removed.

    Only folders of this user named with a runner's pid (`kernel_dir_prefix`) whose process is
    gone and in which nothing changed for STALE_KERNEL_DIR_S are removed (the age also guards a
    temporary folder shared with machines or containers whose pids this one cannot see); a live
    runner's folder, another user's, and one that cannot be removed are kept (a few kilobytes;
    nothing here stops a run). Off POSIX nothing is removed (no pid probe).
    """
    import re
    import shutil
    import time

    from ..engine.atomic_io import process_alive

    folder = Path(folder or tempfile.gettempdir())
    name = re.compile(rf"^{re.escape(KERNEL_DIR_PREFIX)}(?P<pid>\d{{1,7}})-")
    removed: list[Path] = []
    if os.name != "posix":
        return removed
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for path in entries:
        match = name.match(path.name)
        try:
            if (not match or not path.is_dir() or path.is_symlink() or path.stat().st_uid != os.getuid()
                    or process_alive(int(match["pid"]))):
                continue
            changed = max(p.stat().st_mtime for p in (path, *path.rglob("*")))
            if time.time() - changed < STALE_KERNEL_DIR_S:
                continue
            shutil.rmtree(path)
        except OSError:  # gone meanwhile, or not ours to remove
            continue
        removed.append(path)
    return removed


def notebook_path(name: str) -> Path:
    """notebooks/<name>.ipynb for a bare name, or the path itself."""
    p = resolve(name) if name.endswith(".ipynb") else NOTEBOOKS_DIR / f"{name}.ipynb"
    if not p.is_file():
        names = ", ".join(sorted(n.stem for n in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb")))
        raise Pose3DError(f"notebook not found: {p} (the project's notebooks by name: {names})")
    check_notebook_file(p)
    return p


def check_notebook_file(path: Path) -> None:
    """Raise Pose3DError naming `path` unless it is JSON with the top-level keys of a v4 notebook."""
    try:
        nb = json.loads(path.read_text())
    except (UnicodeDecodeError, ValueError) as e:
        raise Pose3DError(f"{path}: not a Jupyter notebook (not JSON: {' '.join(str(e).split())[:120]})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list) or nb.get("nbformat") != 4:
        raise Pose3DError(f"{path}: not a Jupyter notebook (expected a JSON object with 'cells' and 'nbformat': 4)")


def declared_parameters(notebook: Path) -> dict:
    """papermill's view of the notebook's parameters cell ({name: description}); Pose3DError naming
    the file when papermill cannot read it (e.g. no kernelspec in the notebook's metadata)."""
    import papermill as pm

    try:
        return pm.inspect_notebook(str(notebook))
    except ValueError as e:
        raise Pose3DError(f"{notebook}: papermill cannot read its parameters: {e}") from None


# Parameter types that are checked, with what a value of each may be and how the error says it.
_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "bool": ((bool,), "a bool (True or False)"),
    "int": ((int,), "an int"),
    "float": ((int, float), "a number"),
    "str": ((object,), "a string"),
    "list": ((list, tuple), "a list (YAML or JSON, e.g. '[]' or '[a, b]')"),
    "dict": ((dict,), "a mapping (YAML or JSON, e.g. '{a: 1}')"),
}


NO_DEFAULT = object()  # `declared_default` of a parameter whose default is not a literal


def declared_default(info) -> object:
    """The value of a parameter's default as papermill read it (`declared_parameters`' entry), when it
    is a Python literal; NO_DEFAULT otherwise (an expression, or nothing)."""
    try:
        return ast.literal_eval(str((info if isinstance(info, dict) else {}).get("default")))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return NO_DEFAULT


def parameter_types(declared: dict) -> dict[str, str]:
    """{name: 'bool' | 'int' | 'float' | 'str' | 'list' | 'dict'} of the parameters whose type is known:
    the annotation papermill read (`x: int = 0`), else the type of the default's literal; a parameter
    with neither (e.g. default None) is left out (any value goes)."""
    types = {}
    for name, info in declared.items():
        info = info if isinstance(info, dict) else {}
        kind = str(info.get("inferred_type_name") or "").split("[")[0].strip().lower()
        if kind not in _TYPES:
            default = declared_default(info)
            if default is NO_DEFAULT:
                continue
            kind = {"tuple": "list"}.get(type(default).__name__, type(default).__name__)
        if kind in _TYPES:
            types[name] = kind
    return types


def type_error(name: str, value, kind: str) -> str | None:
    """The one-line complaint when `value` is not of parameter type `kind`, else None."""
    allowed, wanted = _TYPES[kind]
    if isinstance(value, allowed) and not (isinstance(value, bool) and kind in ("int", "float")):
        return None
    return f"parameter {name} = {value!r}: expected {wanted}"


def check_parameters(notebook: Path, params: dict, known: dict | None = None) -> None:
    """Raise Pose3DError when `params` names a parameter the notebook does not declare, or gives
    one a value of another type than its default's (`known`: the notebook's `declared_parameters`,
    when the caller has them already)."""
    known = declared_parameters(notebook) if known is None else known
    unknown = sorted(k for k in params if k not in known)
    if unknown:
        raise Pose3DError(f"{notebook.name}: unknown parameter(s) {unknown}; it takes {sorted(known)}")
    types = parameter_types(known)
    for name, value in params.items():
        problem = type_error(name, value, types[name]) if name in types else None
        if problem:
            raise Pose3DError(f"{notebook.name}: {problem}")


def prepare(name: str, params: dict, skip_undeclared: tuple[str, ...] = ()) -> tuple[Path, dict]:
    """The notebook's path and the parameters it gets, checked (see `execute`); Pose3DError
    naming a missing notebook, an unknown parameter or a value of the wrong type."""
    src = notebook_path(name)
    declared = declared_parameters(src)  # read once: the filter below and the check
    if skip_undeclared:
        params = {k: v for k, v in params.items() if k in declared or k not in skip_undeclared}
    check_parameters(src, params, declared)
    check_config_parameters(src, params, declared)
    return src, params


def check_config_parameters(notebook: Path, params: dict, declared: dict) -> None:
    """Pose3DError naming the notebook when its `config_file` and `overrides` (as given, else the
    notebook's defaults) do not load: a mistyped override key fails here, before a kernel starts,
    as it would in the notebook's first cell."""
    from ..config import load_config

    if "config_file" not in declared or not ({"config_file", "overrides"} & set(params)):
        return

    def value(name: str, fallback):
        if name in params:
            return params[name]
        default = declared_default(declared.get(name))
        return fallback if default is NO_DEFAULT else default

    try:
        load_config(value("config_file", None), value("overrides", []) or [])
    except Pose3DError as e:
        raise Pose3DError(f"{notebook.name}: {e}") from None


def relative_papermill_paths(notebook: Path, src: Path, out: Path) -> None:
    """Record `src` and `out` in the executed notebook's papermill metadata as project-relative
    paths (papermill writes the absolute ones, the temporary file's for the output), so an
    executed notebook names no folder of the machine that ran it."""
    from papermill.iorw import load_notebook_node, write_ipynb

    nb = load_notebook_node(str(notebook))
    meta = nb.metadata.get("papermill")
    if meta is None:
        return
    meta["input_path"], meta["output_path"] = str(project_relative(src)), str(project_relative(out))
    write_ipynb(nb, str(notebook))


def running_cell(executed: Path, line: int | None = None) -> str | None:
    """Which cell of the partial notebook papermill saved at `executed` was running when the kernel
    stopped: "code cell K of N (`first line`)", counting the code cells of the notebook as written
    (papermill's injected parameters cell left out), or, given the cell's failing `line` (1-based, from
    the traceback: `failing_line`), "code cell K of N, line L (`that line`)"; None when the file says nothing.

    papermill stamps each cell's start_time as it begins and saves the notebook, and only the cells
    it reached have one, so the running cell is the last with a start_time."""
    try:
        cells = json.loads(executed.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    code = [c for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"
            and "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    started = [k for k, c in enumerate(code, 1) if (c.get("metadata", {}).get("papermill") or {}).get("start_time")]
    if not started:
        return None
    k = started[-1]
    source = code[k - 1].get("source", "")
    lines = ("".join(source) if isinstance(source, list) else source).splitlines()
    at = lines[line - 1].strip() if line is not None and 0 < line <= len(lines) else None
    first = at or next((text.strip() for text in lines if text.strip()), "")
    shown = first if len(first) <= 60 else first[:57] + "..."
    return f"code cell {k} of {len(code)}" + (f", line {line}" if at else "") + (f" (`{shown}`)" if shown else "")


def failing_line(traceback: list[str] | None) -> int | None:
    """The line of the notebook cell an IPython traceback (papermill's `PapermillExecutionError.traceback`)
    points to, `Cell In[n], line L` (its first such frame: the cell's own, before library frames); None if absent."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(traceback or []))  # without the colour codes
    found = re.search(r"Cell In\s*\[\s*\d*\s*\],\s*line (\d+)", text)
    return int(found.group(1)) if found else None


def check_output(src: Path, out: Path, in_place: bool = False) -> None:
    """Pose3DError before anything runs when the executed notebook could not, or must not, go to `out`:
    the source notebook itself unless `in_place` (its copy would be replaced by the executed one), or a folder."""
    if not in_place and out.exists() and out.resolve() == src.resolve():
        raise Pose3DError(f"{out}: is the notebook being run; the executed copy would replace it: give another "
                          "output path (e.g. runs/mine/<name>.ipynb), or --in-place to refresh its outputs")
    if out.is_dir():
        raise Pose3DError(f"{out}: is a folder; give the executed notebook's file name (e.g. {out / src.name})")
    if out.suffix != ".ipynb":
        raise Pose3DError(f"{out}: the executed notebook's name must end in .ipynb")


def execute(name: str, output: str | Path, params: dict, *, kernel: str = KERNEL, progress: bool = True,
            skip_undeclared: tuple[str, ...] = (), in_place: bool = False) -> Path:
    """Execute notebook `name` with `params` into `output` (atomically); returns the output path.

    Parameters named in `skip_undeclared` are dropped for a notebook that does not declare
    them (every other unknown parameter is an error). The kernel writes its progress bars to a
    file (POSE3D_PROGRESS=file:...) whose latest line `ProgressEcho` shows here, so the executed
    notebook carries no bar text and a long training cell still shows how far it is. `output` may be
    the notebook itself only with `in_place` (`check_output`).
    """
    import papermill as pm
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import DeadKernelError

    from ..engine.progress import ENV as PROGRESS_ENV
    from ..engine.progress import FILE_PREFIX as PROGRESS_FILE_PREFIX

    src, params = prepare(name, params, skip_undeclared)
    out = resolve(output)
    check_output(src, out, in_place)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)  # partial notebooks of earlier runs that failed or were killed
    remove_stale_kernel_dirs()  # and the kernel folders of runners killed with SIGKILL
    tmp = temporary_sibling(out, suffix=".ipynb")
    previous = os.environ.get(PROGRESS_ENV)
    try:
        # removed after the kernel has shut down; a failed removal never hides the run's own error
        with tempfile.TemporaryDirectory(prefix=kernel_dir_prefix(), ignore_cleanup_errors=True) as sockets:
            bars = os.path.join(sockets, PROGRESS_LOG_NAME)
            os.environ[PROGRESS_ENV] = f"{PROGRESS_FILE_PREFIX}{bars}"  # inherited by the kernel process
            try:
                with ProgressEcho(bars, src.stem):
                    pm.execute_notebook(str(src), str(tmp), parameters=params, kernel_name=kernel,
                                        cwd=str(src.parent), progress_bar=progress,
                                        start_timeout=KERNEL_START_TIMEOUT_S, config=kernel_config(sockets))
            except KeyboardInterrupt:
                # the user's Ctrl-C (the kernel's shutdown traceback stays in its log). nbclient's tasks that
                # the interrupt left waiting on the dying kernel end in DeadKernelError, which asyncio would
                # print as "Task exception was never retrieved" after `interrupted`: nobody waits for them now
                quiet_abandoned_kernel_tasks()
                raise
            except (pm.PapermillExecutionError, NoSuchKernel):
                raise  # a cell's own error; no kernel of that name
            except BaseException as e:  # the kernel died or did not start: its own last words explain it
                if tail := kernel_log_tail(sockets):
                    print(f"{src.name}: the kernel's own last output:\n{tail}", file=sys.stderr)
                if isinstance(e, DeadKernelError):
                    where = running_cell(tmp)
                    raise Pose3DError(f"{src.name}: the kernel died while running {where or 'it'} ({e}; out of memory, "
                                      "or a crash in native code: see its last output above, if any)") from None
                raise
        relative_papermill_paths(tmp, src, out)
        tmp.replace(out)
    except NoSuchKernel:
        raise Pose3DError(f"no Jupyter kernel named {kernel!r}; run `make setup` (it registers {KERNEL!r}) "
                          "or pass --kernel NAME") from None
    except pm.PapermillExecutionError as e:
        # the cell as `running_cell` names it (the kernel-died message too), and its In [n] in the partial output
        where = running_cell(tmp, failing_line(getattr(e, "traceback", None))) or "a cell"
        raise Pose3DError(f"{src.name} failed in {where}: {e.ename}: {e.evalue} (partial output, where it is "
                          f"In [{e.exec_count}], kept in {tmp} until the step runs again)") from None
    except BaseException:  # an interrupt (Ctrl-C) or an error outside the notebook: nothing worth keeping
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if previous is None:
            os.environ.pop(PROGRESS_ENV, None)
        else:
            os.environ[PROGRESS_ENV] = previous
    return out


class _AbandonedKernelTask(logging.Filter):
    """Drops asyncio's 'Task exception was never retrieved' records of a DeadKernelError (a task an
    interrupt left on the kernel it shut down); every other asyncio record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        from nbclient.exceptions import DeadKernelError

        exc = record.exc_info[1] if record.exc_info else None  # asyncio logs the task's exception as exc_info
        return not (str(record.msg).startswith("Task exception was never retrieved") and isinstance(exc, DeadKernelError))


def quiet_abandoned_kernel_tasks() -> None:
    """Add `_AbandonedKernelTask` to asyncio's logger (once)."""
    log = logging.getLogger("asyncio")
    if not any(isinstance(f, _AbandonedKernelTask) for f in log.filters):
        log.addFilter(_AbandonedKernelTask())


_BOOL_TEXT = {"true": True, "false": False}


def parse_params(items: list[list[str]], types: dict[str, str] | None = None) -> dict:
    """[['name', 'value'], ...] -> {'name': YAML-parsed value}; Pose3DError naming a value that is not YAML.

    With `types` (`parameter_types` of the notebook) a value is read as its parameter's type: a
    bool from True/False/true/false only (any other text stays text, which the type check
    rejects), a float also from '1e-3', a str as the text given ('123' and '' stay strings).
    """
    params = {}
    types = types or {}
    for k, v in items:
        kind = types.get(k)
        if kind == "str":  # the text as given, never YAML: a path's ' #2' is no comment, '123' stays text, '[x' a name
            params[k] = v
            continue
        try:
            value = yaml.safe_load(v)
        except yaml.YAMLError as e:
            raise Pose3DError(f"-p {k} {v!r}: the value is not valid YAML ({' '.join(str(e).split())[:120]})") from None
        if yaml_comment_dropped(v, value):
            raise Pose3DError(f"-p {k} {v!r}: YAML reads a '#' after a space as the start of a comment and would "
                              "drop what follows it; quote the value")
        elif kind == "bool":
            value = _BOOL_TEXT.get(v.strip().lower(), v)
        elif kind == "float" and isinstance(value, str):
            try:
                value = float(v)
            except ValueError:
                pass
        params[k] = value
    return params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook", help="notebook name (e.g. 02_train_2d, from notebooks/) or path to an .ipynb")
    parser.add_argument("output", action=CommandLinePath, help="executed notebook to write")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="notebook parameter (value parsed as YAML); repeatable")
    parser.add_argument("--kernel", default=KERNEL, help="Jupyter kernel name")
    parser.add_argument("--in-place", action="store_true",
                        help="allow OUTPUT to be the notebook itself (refreshing the committed smoke outputs of "
                             "notebooks/*.ipynb); refused without it")


def run(args: argparse.Namespace) -> int:
    if args.notebook.endswith(".ipynb"):  # a path, typed on the command line: from the current folder
        args.notebook = from_current_folder(args.notebook)
    types = parameter_types(declared_parameters(notebook_path(args.notebook)))
    out = execute(args.notebook, args.output, parse_params(args.parameter, types), kernel=args.kernel,
                  in_place=args.in_place)
    print(f"wrote {out}")
    return 0

"""Run a numbered notebook through papermill with checked parameters and an atomic output.

    python -m pose3dlib run-notebook 02_train_2d runs/cpu/02_train_2d.ipynb -p profile cpu -p run_dir runs/cpu

Unlike plain papermill, an unknown parameter is an error naming it and the notebook's
parameters (papermill only warns), and the executed notebook is written to a temporary
file renamed on success, so a failed or interrupted run never looks finished.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import yaml

from ..engine.errors import Pose3DError
from ..engine.paths import NOTEBOOKS_DIR, project_relative, resolve

KERNEL = "pose3d"


# Seconds a kernel may take to start; a busy machine (other training runs) can need minutes.
KERNEL_START_TIMEOUT_S = 600

def notebook_path(name: str) -> Path:
    """notebooks/<name>.ipynb for a bare name, or the path itself."""
    p = resolve(name) if name.endswith(".ipynb") else NOTEBOOKS_DIR / f"{name}.ipynb"
    if not p.is_file():
        raise Pose3DError(f"notebook not found: {p}")
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


def check_parameters(notebook: Path, params: dict, known: dict | None = None) -> None:
    """Raise Pose3DError when `params` names a parameter the notebook does not declare (`known`:
    its `declared_parameters`, when the caller has them already)."""
    known = declared_parameters(notebook) if known is None else known
    unknown = sorted(k for k in params if k not in known)
    if unknown:
        raise Pose3DError(f"{notebook.name}: unknown parameter(s) {unknown}; it takes {sorted(known)}")


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


def execute(name: str, output: str | Path, params: dict, *, kernel: str = KERNEL, progress: bool = True,
            skip_undeclared: tuple[str, ...] = ()) -> Path:
    """Execute notebook `name` with `params` into `output` (atomically); returns the output path.

    Parameters named in `skip_undeclared` are dropped for a notebook that does not declare
    them (every other unknown parameter is an error). The kernel runs with progress bars
    off (POSE3D_PROGRESS=off), so the executed notebook carries no bar text.
    """
    import papermill as pm
    from jupyter_client.kernelspec import NoSuchKernel

    from ..engine.progress import ENV as PROGRESS_ENV

    src = notebook_path(name)
    declared = declared_parameters(src)  # read once: the filter below and the check
    if skip_undeclared:
        params = {k: v for k, v in params.items() if k in declared or k not in skip_undeclared}
    check_parameters(src, params, declared)
    out = resolve(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp.ipynb")
    previous = os.environ.get(PROGRESS_ENV)
    os.environ[PROGRESS_ENV] = "off"  # inherited by the kernel process
    try:
        pm.execute_notebook(str(src), str(tmp), parameters=params, kernel_name=kernel, cwd=str(src.parent),
                            progress_bar=progress, start_timeout=KERNEL_START_TIMEOUT_S)
        relative_papermill_paths(tmp, src, out)
        tmp.replace(out)
    except NoSuchKernel:
        raise Pose3DError(f"no Jupyter kernel named {kernel!r}; run `make setup` (it registers {KERNEL!r}) "
                          "or pass --kernel NAME") from None
    except pm.PapermillExecutionError as e:
        raise Pose3DError(f"{src.name} failed in cell {e.exec_count}: {e.ename}: {e.evalue} "
                          f"(partial output kept in {tmp})") from None
    finally:
        if previous is None:
            os.environ.pop(PROGRESS_ENV, None)
        else:
            os.environ[PROGRESS_ENV] = previous
    return out


def parse_params(items: list[list[str]]) -> dict:
    """[['name', 'value'], ...] -> {'name': YAML-parsed value}; Pose3DError naming a value that is not YAML."""
    params = {}
    for k, v in items:
        try:
            params[k] = yaml.safe_load(v)
        except yaml.YAMLError as e:
            raise Pose3DError(f"-p {k} {v!r}: the value is not valid YAML ({' '.join(str(e).split())[:120]})") from None
    return params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook", help="notebook name (e.g. 02_train_2d) or path")
    parser.add_argument("output", help="executed notebook to write")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="notebook parameter (value parsed as YAML); repeatable")
    parser.add_argument("--kernel", default=KERNEL, help="Jupyter kernel name")


def run(args: argparse.Namespace) -> int:
    out = execute(args.notebook, args.output, parse_params(args.parameter), kernel=args.kernel)
    print(f"wrote {out}")
    return 0

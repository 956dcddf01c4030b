"""Project-rooted paths: every relative path in a config resolves against PROJECT_ROOT.

A path typed on the command line is the exception: it is read from the folder the command
runs in, as in any shell command (`CommandLinePath`). The commands' own defaults and every
path inside a config stay relative to the project root, so they work from any folder.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

# The repository root (the folder holding pyproject.toml). POSE3D_ROOT overrides it for
# installs outside the repository; a relative value (POSE3D_ROOT=.) or one with ~ is made absolute
# here, against the folder this process started in, and written back, so that the processes pose3dlib
# starts from another folder (the kernels `run-notebook` runs in notebooks/) use the same root. A kernel
# JupyterLab starts reads the variable as the shell gave it: give it an absolute path there.
if os.environ.get("POSE3D_ROOT"):
    os.environ["POSE3D_ROOT"] = os.path.abspath(os.path.expanduser(os.environ["POSE3D_ROOT"]))
PROJECT_ROOT = Path(os.environ.get("POSE3D_ROOT") or Path(__file__).resolve().parents[2])  # pose3dlib/engine/paths.py
DATA_DIR = PROJECT_ROOT / "data"
SYNTHETIC_DIR = DATA_DIR / "synthetic"
CONFIG_DIR = PROJECT_ROOT / "configs"
RUNS_DIR = PROJECT_ROOT / "runs"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"


def resolve(path: str | os.PathLike) -> Path:
    """Absolute path: `path` itself if absolute, else relative to the project root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else PROJECT_ROOT / p


def project_relative(path: str | os.PathLike) -> Path:
    """`path` relative to the project root when it lies inside it, else absolute: what files that
    are committed (executed notebooks, generated tables) should name, so they do not carry the
    folder of the machine that wrote them."""
    p = Path(os.path.abspath(resolve(path)))  # '..' folded, symlinks kept
    # As written, then with symlinks followed (a clone reached through a link, POSE3D_ROOT=.).
    for candidate, root in ((p, Path(os.path.abspath(PROJECT_ROOT))), (p.resolve(), PROJECT_ROOT.resolve())):
        if candidate.is_relative_to(root):
            return candidate.relative_to(root)
    return p


def refuse_overwriting_an_input(out: str | os.PathLike, option: str, inputs: dict[str, str | os.PathLike | None],
                                checkpoints_too: bool = True) -> None:
    """Pose3DError when the file a command would write (`out`, given as `option`) is one it reads:
    {what it is: path} of `inputs` (None: not read). Writing it would replace the input, a trained
    checkpoint say, with the output. Compared as files (links and other names of one file too).
    With `checkpoints_too` (commands that write something else) any existing PyTorch checkpoint
    (`is_torch_file`) is refused as well: a trained stage replaced by a table or an ONNX file."""
    from .errors import Pose3DError

    target = resolve(out)
    if not target.is_file():
        return
    for what, path in inputs.items():
        source = None if path is None else resolve(path)
        if source is not None and source.is_file() and os.path.samefile(target, source):
            raise Pose3DError(f"{option} {target}: is the {what} this command reads; writing there would replace it: "
                              "give another file name")
    if checkpoints_too and is_torch_file(target):
        raise Pose3DError(f"{option} {target}: is a PyTorch checkpoint; writing there would replace it: "
                          "give another file name")


def is_torch_file(path: str | os.PathLike) -> bool:
    """True for a file `torch.save` wrote (a zip archive with a pickled `data.pkl` inside); False for
    anything else, an unreadable file included."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return any(name == "data.pkl" or name.endswith("/data.pkl") for name in archive.namelist())
    except (OSError, EOFError, ValueError, zipfile.BadZipFile):  # a damaged archive: not a checkpoint to keep
        return False


def from_current_folder(path: str) -> str:
    """A path as typed on the command line, made absolute from the current folder (`~` expanded)."""
    return os.path.abspath(os.path.expanduser(path))


class CommandLinePath(argparse.Action):
    """argparse action: store a typed path (or list of paths) absolute, relative to the current folder.

    Only what the user types passes through it; a default is stored as written, and `resolve`
    later reads it relative to the project root. Keeps the type argparse produced (str or Path).
    An empty string is an error, except for `OptionalCommandLinePath`, where it means "none".
    """

    empty_means_none = False

    def __call__(self, parser, namespace, values, option_string=None):
        def absolute(v):
            if os.fspath(v) == "":  # '' means "none" where the argument says so (`bench --doc ''`)
                if self.empty_means_none:
                    return v
                parser.error(f"{option_string or self.metavar or self.dest}: empty path")
            a = from_current_folder(os.fspath(v))
            return Path(a) if isinstance(v, Path) else a

        setattr(namespace, self.dest, [absolute(v) for v in values] if isinstance(values, list) else absolute(values))


class OptionalCommandLinePath(CommandLinePath):
    """`CommandLinePath` for which '' means "none" (e.g. `bench --doc ''`: write no document)."""

    empty_means_none = True

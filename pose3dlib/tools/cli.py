"""`python -m pose3dlib <command>`: the command-line entry point.

Each command lives in its own module, which defines `add_arguments(parser)` and
`run(args) -> int`; this file only maps names to modules, so importing the CLI stays fast.
Errors caused by input (Pose3DError; a file that is missing, misplaced, unwritable or on a full or read-only
disk) print one line naming the file and exit with status 2;
`--debug` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare-synthetic": ("pose3dlib.synthetic.generator", "write synthetic people in the Human3.6M/MPII formats"),
    "convert-h36m": ("pose3dlib.data.convert.h36m", "convert an official Human3.6M download to the release format"),
    "convert-mpii": ("pose3dlib.data.convert.mpii", "convert the official MPII .mat to train.h5 / val.h5 (Newell's schema)"),
    "convert-3dhp": ("pose3dlib.data.convert.mpi3dhp", "convert the MPI-INF-3DHP test set to the release format"),
    "real-data-overrides": ("pose3dlib.data.convert.real", "print the overrides that read the configured downloads' converted sets (REAL_DATA=True)"),
    "train": ("pose3dlib.engine.train", "train one of the three stages"),
    "evaluate": ("pose3dlib.evaluation.evaluate", "evaluate checkpoints on the test splits under every protocol"),
    "unseen-check": ("pose3dlib.evaluation.unseen", "score a run on new synthetic people (other seeds) and compare with its metrics.csv"),
    "diagnose-depth": ("pose3dlib.evaluation.diagnose", "where a checkpoint's 3D error comes from: own or true 2D x own or true depth"),
    "demo": ("pose3dlib.inference.demo", "2D and 3D pose of the person in your own images"),
    "person-search": ("pose3dlib.inference.detect", "measure the person search (hit rate) on synthetic uncropped scenes"),
    "export-onnx": ("pose3dlib.inference.onnx_export", "export the network to ONNX (dynamic batch and input size)"),
    "convert-hg3d": ("pose3dlib.original.compat", "convert a checkpoint of the original hg3d release"),
    "run-notebook": ("pose3dlib.tools.notebook_runner", "execute a notebook with checked papermill parameters"),
    "sweep": ("pose3dlib.tools.sweep", "run notebooks once per value of a parameter (papermill) and compare"),
    "ablation": ("pose3dlib.tools.ablation", "the paper's ablation with seeds: 3D only, + 2D-only images, + geometric loss"),
    "bench": ("pose3dlib.tools.bench.command", "time training, inference and data; write runs/bench/bench.json and docs/benchmarks.md"),
    "report": ("pose3dlib.evaluation.report", "regenerate the README's results table from a metrics.csv"),
}


def build_parser(argv_command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pose3dlib", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks instead of one-line errors")
        if name == argv_command:  # import only the module of the command being run
            importlib.import_module(module).add_arguments(p)
    return parser


# OSErrors about files that pose3d raises itself with a message (and no filename attribute)
_FILE_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)


def main(argv: list[str] | None = None) -> int:
    from ..engine.atomic_io import describe_os_error
    from ..engine.errors import Pose3DError

    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    debug = "--debug" in argv
    try:  # Ctrl-C while the command's modules are still importing ends the same way as later
        try:
            parser = build_parser(command if command in COMMANDS else None)
        except ModuleNotFoundError as e:
            print(f"error: command {command!r} is not available ({e})", file=sys.stderr)
            return 2
        args = parser.parse_args(argv)
        debug = getattr(args, "debug", False)
        return int(importlib.import_module(COMMANDS[args.command][0]).run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (Pose3DError, OSError) as e:
        if debug:
            raise
        if isinstance(e, OSError) and e.filename is None and not isinstance(e, _FILE_ERRORS):
            raise  # not about a file (a socket, a process): a traceback helps more than one line
        msg = (describe_os_error(e) if isinstance(e, OSError) else str(e)).replace("\n", " ")
        print(f"error: {msg}", file=sys.stderr)
        return 2

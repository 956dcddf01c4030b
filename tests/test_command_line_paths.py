"""Paths typed on the command line are read from the current folder; defaults and configs from the project root."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pose3dlib.engine.paths import PROJECT_ROOT
from pose3dlib.tools.cli import COMMANDS, build_parser


def _parse(argv: list[str]):
    return build_parser(argv[0]).parse_args(argv)


def test_typed_paths_become_absolute_from_the_current_folder_and_defaults_stay_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = _parse(["report", "--metrics", "mine/metrics.csv"])
    assert args.metrics == str(tmp_path / "mine" / "metrics.csv")
    assert args.readme == "README.md"  # the default: resolved against the project root later
    args = _parse(["demo", "a.jpg", "shots", "--out", "out", "--checkpoint", "~/m.pt"])
    assert args.inputs == ["a.jpg", "shots"]  # read from the current folder as typed; the JSON shows them so
    assert args.out == str(tmp_path / "out") and args.checkpoint == str(Path.home() / "m.pt")
    args = _parse(["convert-hg3d", "orig.pth", "sub/conv.pt"])  # type=Path arguments stay Paths
    assert args.input == tmp_path / "orig.pth" and args.output == tmp_path / "sub" / "conv.pt"
    args = _parse(["train", "--stage", "1"])
    assert args.config == "configs/cpu.yaml"
    args = _parse(["evaluate", "--config", "/abs/c.yaml", "--run-dir", "../r"])
    assert args.config == "/abs/c.yaml" and args.run_dir == str(tmp_path.parent / "r")


# The arguments of each command that name a file or folder (argparse dest), written out from what each one
# means: each must go through CommandLinePath, every other argument must not. Left as typed on purpose:
# demo's INPUTs (the JSON names them as typed) and run-notebook's notebook (a name from notebooks/ or a path).
PATH_ARGUMENTS: dict[str, set[str]] = {
    "prepare-synthetic": {"config", "out"},
    "convert-h36m": {"raw", "out"},
    "convert-mpii": {"mat", "images", "out", "val_from"},
    "convert-3dhp": {"testset", "out"},
    "real-data-overrides": {"config", "state_file"},
    "train": {"config", "run_dir", "init"},
    "evaluate": {"config", "run_dir", "out"},
    "unseen-check": {"config", "run_dir", "data_root", "out"},
    "diagnose-depth": {"config", "checkpoint", "figure"},
    "demo": {"checkpoint", "out"},
    "person-search": {"checkpoint", "out"},
    "export-onnx": {"checkpoint", "out"},
    "convert-hg3d": {"input", "output"},
    "run-notebook": {"output"},
    "sweep": {"config", "base_run", "out"},
    "ablation": {"out"},
    "bench": {"out", "doc", "figure"},
    "report": {"metrics", "readme", "config"},
}


def _command_actions(name: str) -> list:
    import argparse

    sub = next(a for a in build_parser(name)._actions if isinstance(a, argparse._SubParsersAction))
    return [a for a in sub.choices[name]._actions if a.dest not in ("help", "debug")]


def test_every_commands_path_arguments_and_only_those_take_the_action():
    from pose3dlib.engine.paths import CommandLinePath, OptionalCommandLinePath

    assert set(PATH_ARGUMENTS) == set(COMMANDS)  # a new command adds its row here
    for name, expected in PATH_ARGUMENTS.items():
        actions = _command_actions(name)  # the action sits on arguments of every kind (positional, optional, nargs)
        assert expected <= {a.dest for a in actions}, name
        assert {a.dest for a in actions if isinstance(a, CommandLinePath)} == expected, name
        # '' means "no file" only for bench --doc (write no document); elsewhere an empty path is an error
        optional = {a.dest for a in actions if isinstance(a, OptionalCommandLinePath)}
        assert optional == ({"doc"} if name == "bench" else set()), name
    # convert-hg3d hands Paths to its library function: the action keeps the type it was given
    assert {a.dest: a.type for a in _command_actions("convert-hg3d") if a.dest in ("input", "output")} == {
        "input": Path, "output": Path}


def test_an_empty_path_is_an_error_except_where_it_means_none(tmp_path, monkeypatch, capsys):
    import pytest

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):  # `--out "$OUT"` with OUT unset must not mean the current folder
        _parse(["demo", "a.jpg", "--out", ""])
    assert "--out: empty path" in capsys.readouterr().err
    from pose3dlib.tools.bench import command

    parser = __import__("argparse").ArgumentParser()
    command.add_arguments(parser)
    assert parser.parse_args(["--doc", ""]).doc == ""  # bench: '' writes no document


def test_a_notebook_given_as_a_path_is_read_from_the_current_folder(tmp_path, monkeypatch, capsys):
    from pose3dlib.tools.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["run-notebook", "mine.ipynb", "out.ipynb"]) == 2
    assert f"notebook not found: {tmp_path / 'mine.ipynb'}" in capsys.readouterr().err


def test_a_command_run_elsewhere_writes_where_it_was_asked(tmp_path):
    # prepare-synthetic --out relative to the folder it runs in; --profile still finds configs/ in the project
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(PROJECT_ROOT))
    done = subprocess.run([sys.executable, "-m", "pose3dlib", "prepare-synthetic", "--profile", "smoke",
                           "--out", "mine"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "mine" / "h36m" / "annot.h5").is_file()
    assert not (PROJECT_ROOT / "mine").exists()


def test_ctrl_c_while_a_command_is_still_importing_is_one_line(monkeypatch, capsys):
    from pose3dlib.tools import cli

    def slow_import(*_):
        raise KeyboardInterrupt  # as if Ctrl-C landed in the command module's imports

    monkeypatch.setattr(cli, "build_parser", slow_import)
    assert cli.main(["demo", "x.jpg"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_a_relative_pose3d_root_is_made_absolute_for_this_process_and_its_children(tmp_path):
    """POSE3D_ROOT=. names the folder the command started in, also for a process started elsewhere
    (a notebook kernel runs in notebooks/), and ~ is expanded."""
    import os
    import subprocess
    import sys

    show = ("import os; from pose3dlib.engine.paths import PROJECT_ROOT, resolve; "
            "print(PROJECT_ROOT); print(resolve('runs')); print(os.environ['POSE3D_ROOT'])")
    env = dict(os.environ, POSE3D_ROOT=".", PYTHONPATH=os.getcwd())
    out = subprocess.run([sys.executable, "-c", show], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[:3] == [str(tmp_path), str(tmp_path / "runs"), str(tmp_path)]
    env["POSE3D_ROOT"] = "~/p3root"
    out = subprocess.run([sys.executable, "-c", show], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[0] == os.path.join(os.path.expanduser("~"), "p3root")


def test_an_output_that_is_an_input_is_refused_before_anything_is_written(tmp_path, capsys):
    """export-onnx, evaluate --out and convert-hg3d would replace the checkpoint (or config) they read."""
    import pytest

    from pose3dlib.engine.errors import Pose3DError
    from pose3dlib.engine.paths import refuse_overwriting_an_input
    from pose3dlib.tools.cli import main

    ckpt = tmp_path / "run" / "stage3" / "last.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"trained weights")
    (tmp_path / "link.pt").symlink_to(ckpt)
    os.link(ckpt, tmp_path / "hard.pt")
    for other_name in (ckpt, tmp_path / "link.pt", tmp_path / "hard.pt"):
        with pytest.raises(Pose3DError, match=r"^OUT .*: is the checkpoint this command reads; writing there would replace it"):
            refuse_overwriting_an_input(other_name, "OUT", {"config": None, "checkpoint": ckpt})
    refuse_overwriting_an_input(tmp_path / "new.onnx", "OUT", {"checkpoint": ckpt})  # not there yet: fine
    (tmp_path / "other.pt").write_bytes(b"trained weights")  # the same bytes, another file: fine
    refuse_overwriting_an_input(tmp_path / "other.pt", "OUT", {"checkpoint": ckpt})

    commands = (["export-onnx", str(ckpt), str(tmp_path / "link.pt")],
                ["convert-hg3d", str(ckpt), str(ckpt), "--force"],
                ["evaluate", "--config", "configs/smoke.yaml", "--run-dir", str(tmp_path / "run"), "--stages", "3",
                 "--out", str(ckpt)])
    for argv in commands:
        assert main(argv) == 2, argv
        assert "this command reads; writing there would replace it" in capsys.readouterr().err
        assert ckpt.read_bytes() == b"trained weights"


def test_train_takes_resume_or_overwrite_not_both(capsys):
    """--resume continues a checkpoint and --overwrite replaces it: given both, argparse refuses before any work
    (it used to resume and drop --overwrite without a word)."""
    import pytest

    base = ["train", "--config", "configs/smoke.yaml", "--stage", "1", "--run-dir", "runs/x"]
    assert _parse([*base, "--resume"]).resume and _parse([*base, "--overwrite"]).overwrite
    with pytest.raises(SystemExit):
        _parse([*base, "--resume", "--overwrite"])
    assert "argument --overwrite: not allowed with argument --resume" in capsys.readouterr().err

"""pose3dlib.tools.notebook_runner: executed notebooks name project-relative paths, not the machine's folders."""
from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import pytest

from pose3dlib.engine import paths
from pose3dlib.engine.errors import Pose3DError
from pose3dlib.engine.paths import PROJECT_ROOT, project_relative
from pose3dlib.tools import notebook_runner


def test_project_relative_inside_and_outside_the_root(tmp_path):
    assert project_relative(PROJECT_ROOT / "runs" / "cpu" / "metrics.csv") == Path("runs/cpu/metrics.csv")
    assert project_relative("runs/cpu/metrics.csv") == Path("runs/cpu/metrics.csv")
    outside = tmp_path / "x.csv"
    assert not outside.is_relative_to(PROJECT_ROOT)  # pytest's tmp_path lies outside the repository
    assert project_relative(outside) == outside
    # '..' that leaves the project: absolute, not '../...'
    assert project_relative(PROJECT_ROOT / ".." / "elsewhere" / "x.ipynb") == PROJECT_ROOT.parent / "elsewhere" / "x.ipynb"
    assert project_relative(PROJECT_ROOT / "runs" / ".." / "figures" / "a.png") == Path("figures/a.png")


def test_project_relative_through_a_symlink_to_the_project(tmp_path):
    link = tmp_path / "link"
    link.symlink_to(PROJECT_ROOT, target_is_directory=True)
    assert project_relative(link / "runs" / "cpu" / "metrics.csv") == Path("runs/cpu/metrics.csv")


def _notebook(meta: dict | None) -> dict:
    nb = {"cells": [{"cell_type": "code", "execution_count": 1, "id": "c1", "metadata": {"tags": []},
                     "outputs": [], "source": "x = 1"}],
          "metadata": {"kernelspec": {"name": notebook_runner.KERNEL, "display_name": "Python (pose3d)",
                                      "language": "python"}, "language_info": {"name": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    if meta is not None:
        nb["metadata"]["papermill"] = meta
    return nb


def test_papermill_paths_become_project_relative(tmp_path):
    executed = tmp_path / ".02_train_2d.ipynb.123.tmp.ipynb"
    executed.write_text(json.dumps(_notebook({"input_path": "/somewhere/notebooks/02_train_2d.ipynb",
                                              "output_path": str(executed), "parameters": {"a": 1}})))
    src, out = PROJECT_ROOT / "notebooks" / "02_train_2d.ipynb", PROJECT_ROOT / "runs" / "cpu" / "02_train_2d.ipynb"
    notebook_runner.relative_papermill_paths(executed, src, out)
    meta = json.loads(executed.read_text())["metadata"]["papermill"]
    assert meta["input_path"] == "notebooks/02_train_2d.ipynb"
    assert meta["output_path"] == "runs/cpu/02_train_2d.ipynb"  # the final name, not the temporary file's
    assert meta["parameters"] == {"a": 1}
    assert "".join(json.loads(executed.read_text())["cells"][0]["source"]) == "x = 1"


def test_an_output_outside_the_project_keeps_its_absolute_path(tmp_path):
    executed = tmp_path / "run.ipynb"
    executed.write_text(json.dumps(_notebook({"input_path": "a", "output_path": "b"})))
    notebook_runner.relative_papermill_paths(executed, PROJECT_ROOT / "notebooks" / "01_data_prep.ipynb", executed)
    meta = json.loads(executed.read_text())["metadata"]["papermill"]
    assert meta["output_path"] == str(executed)


def _need_the_pose3d_kernel() -> None:
    """Skip without the `pose3d` Jupyter kernel; in CI, where `make test` registers it, fail instead."""
    from jupyter_client.kernelspec import KernelSpecManager

    if notebook_runner.KERNEL in KernelSpecManager().find_kernel_specs():
        return
    if os.environ.get("CI"):
        pytest.fail("no 'pose3d' Jupyter kernel in CI: `make test` should have registered it (make setup)")
    pytest.skip("no 'pose3d' Jupyter kernel: run `make setup`")


def test_execute_writes_relative_paths_into_the_executed_notebook(tmp_path, monkeypatch):
    """A real papermill run of a two-cell notebook (the `pose3d` kernel that `make setup` registers)."""
    _need_the_pose3d_kernel()
    monkeypatch.setattr(paths, "PROJECT_ROOT", tmp_path)  # the run's folder plays the project root
    nb = _notebook(None)
    nb["cells"][0]["metadata"]["tags"] = ["parameters"]
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "c2", "metadata": {}, "outputs": [],
                        "source": "print('x is', x)"})
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "c3", "metadata": {}, "outputs": [],
                        "source": "import json, ipykernel.connect\n"
                                  "print('transport', json.loads(ipykernel.connect.get_connection_info())['transport'])\n"
                                  "print('file', ipykernel.connect.get_connection_file())"})
    src = tmp_path / "nb" / "tiny.ipynb"
    src.parent.mkdir()
    src.write_text(json.dumps(nb))
    out = notebook_runner.execute(str(src), tmp_path / "runs" / "tiny.ipynb", {"x": 2}, progress=False)
    done = json.loads(out.read_text())
    meta = done["metadata"]["papermill"]
    assert (meta["input_path"], meta["output_path"]) == ("nb/tiny.ipynb", "runs/tiny.ipynb")
    assert "x is 2" in "".join(done["cells"][-2]["outputs"][0]["text"])
    # local sockets, not localhost TCP (POSIX): ipykernel warns about unencrypted TCP for every notebook
    expected = "ipc" if os.name == "posix" else "tcp"
    printed = "".join(done["cells"][-1]["outputs"][0]["text"])
    assert f"transport {expected}" in printed
    if os.name == "posix":  # the connection file (and the sockets beside it) in a private temporary folder, removed
        folder = Path(printed.split("file ", 1)[1].strip()).parent
        assert folder.name.startswith(notebook_runner.kernel_dir_prefix()) and folder.parent.resolve() == Path(tempfile.gettempdir()).resolve()
        assert not folder.exists()
    assert not list((tmp_path / "runs").glob(".*tmp*"))  # the temporary file was renamed


def test_the_kernels_own_stderr_is_kept_off_the_terminal_unless_the_kernel_dies(tmp_path, capfd):
    """What the kernel process writes to its file descriptor 2 (not a cell's output) goes to its log;
    it is shown, last lines, when the kernel dies."""
    _need_the_pose3d_kernel()

    def run(source: str):
        nb = _notebook(None)
        nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "c2", "metadata": {}, "outputs": [],
                            "source": source})
        src = tmp_path / "nb.ipynb"
        src.write_text(json.dumps(nb))
        return notebook_runner.execute(str(src), tmp_path / "out" / "nb.ipynb", {}, progress=False)

    run("import os\nos.write(2, b'native library chatter\\n')\nprint('cell output')")
    assert "native library chatter" not in capfd.readouterr().err
    assert "cell output" in (tmp_path / "out" / "nb.ipynb").read_text()
    # the message names the cell that was running: the second code cell, by its first line
    with pytest.raises(Pose3DError, match=r"nb\.ipynb: the kernel died while running code cell 2 of 2 \(`import os`\)"):
        run("import os\nos.write(2, b'native library: out of memory\\n')\nos._exit(3)")
    err = capfd.readouterr().err
    assert "the kernel's own last output" in err and "native library: out of memory" in err
    assert not list((tmp_path / "out").glob(".*tmp*"))  # no partial notebook left


def test_a_failing_cell_is_named_and_its_partial_output_kept(tmp_path):
    _need_the_pose3d_kernel()
    nb = _notebook(None)
    nb["cells"] += [{"cell_type": "markdown", "id": "m", "metadata": {}, "source": "# a heading"},
                    {"cell_type": "code", "execution_count": None, "id": "c2", "metadata": {}, "outputs": [],
                     "source": "import os\n\nraise ValueError('no such joint')"},
                    {"cell_type": "code", "execution_count": None, "id": "c3", "metadata": {}, "outputs": [],
                     "source": "print('never')"}]
    src = tmp_path / "nb.ipynb"
    src.write_text(json.dumps(nb))
    with pytest.raises(Pose3DError, match=r"nb\.ipynb failed in code cell 2 of 3, line 3 \(`raise ValueError\('no such joint'\)`\): "
                                          r"ValueError: no such joint \(partial output, where it is In \[2\], kept in (.*) until") as e:
        notebook_runner.execute(str(src), tmp_path / "out" / "nb.ipynb", {}, progress=False)
    kept = Path(re.search(r"kept in (.*) until", str(e.value)).group(1))
    assert "no such joint" in kept.read_text()


def test_running_cell_is_the_last_cell_papermill_started(tmp_path):
    """From papermill's partial notebook: the last code cell with a start_time, counted among the
    notebook's own code cells (the injected parameters cell and markdown left out)."""
    def cell(kind, source, started, tags=()):
        meta = {"tags": list(tags), "papermill": {"start_time": "2026-12-06T01:00:00" if started else None}}
        return {"cell_type": kind, "metadata": meta, "source": source, **({"outputs": []} if kind == "code" else {})}

    nb = {"cells": [cell("markdown", "# title", True), cell("code", "x = 1", True, ["parameters"]),
                    cell("code", "x = 2", True, ["injected-parameters"]),
                    cell("code", ["\n", "model = train(x)  # a long comment that goes well past sixty characters in all\n"], True),
                    cell("code", "plot(model)", False)]}
    path = tmp_path / "partial.ipynb"
    path.write_text(json.dumps(nb))
    assert notebook_runner.running_cell(path) == "code cell 2 of 3 (`model = train(x)  # a long comment that goes well past si...`)"
    assert notebook_runner.running_cell(path, 2) == "code cell 2 of 3, line 2 (`model = train(x)  # a long comment that goes well past si...`)"
    assert notebook_runner.running_cell(path, 9) == notebook_runner.running_cell(path)  # no such line: the first one
    tb = ["\x1b[0;31m---------\x1b[0m", "Cell \x1b[0;32mIn[4], line 14\x1b[0m\n  convert()",
          "File \x1b[0;32m/lib/x.py:3\x1b[0m, in \x1b[0;36mconvert\x1b[0m", "Cell In[4], line 2"]
    assert notebook_runner.failing_line(tb) == 14 and notebook_runner.failing_line(["no cell here"]) is None
    nb["cells"][3]["metadata"]["papermill"]["start_time"] = None
    nb["cells"][1]["metadata"]["papermill"]["start_time"] = None
    path.write_text(json.dumps(nb))
    assert notebook_runner.running_cell(path) is None  # only the injected cell started: nothing of the notebook's own
    path.write_text("{not json")
    assert notebook_runner.running_cell(path) is None
    assert notebook_runner.running_cell(tmp_path / "absent.ipynb") is None


def test_the_kernels_progress_bars_reach_the_terminal_not_the_notebook(tmp_path, capfd):
    _need_the_pose3d_kernel()
    nb = _notebook(None)
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "c2", "metadata": {}, "outputs": [],
                        "source": "from pose3dlib.engine.progress import progress_bar\n"
                                  "for _ in progress_bar(range(4), desc='stage 9 epoch 1/1'):\n    pass\nprint('done')"})
    src = tmp_path / "bars.ipynb"
    src.write_text(json.dumps(nb))
    out = notebook_runner.execute(str(src), tmp_path / "out" / "bars.ipynb", {}, progress=False)
    outputs = json.dumps([c.get("outputs", []) for c in json.loads(out.read_text())["cells"]])
    assert "done" in outputs and "stage 9 epoch" not in outputs
    assert "bars: stage 9 epoch 1/1: 100%" in capfd.readouterr().err  # the last state, when the notebook ends


def test_a_notebook_without_kernelspec_is_an_error_naming_it(tmp_path):
    nb = _notebook(None)
    del nb["metadata"]["kernelspec"]
    nb["cells"][0]["metadata"]["tags"] = ["parameters"]  # papermill looks for the kernel only then
    src = tmp_path / "nokernel.ipynb"
    src.write_text(json.dumps(nb))
    with pytest.raises(Pose3DError, match=r"nokernel\.ipynb: papermill cannot read its parameters: No kernel name"):
        notebook_runner.check_parameters(src, {})
    with pytest.raises(Pose3DError, match=r"nokernel\.ipynb: papermill cannot read its parameters"):
        notebook_runner.execute(str(src), tmp_path / "out.ipynb", {"x": 1}, skip_undeclared=("x",))  # the sweeps' path
    assert not (tmp_path / "out.ipynb").exists()


@pytest.mark.parametrize("failure", ["interrupt", "cell error"])
def test_an_interrupted_run_leaves_no_partial_notebook_and_old_leftovers_go(tmp_path, monkeypatch, failure):
    """Ctrl-C removes the partial notebook; a failing cell keeps it (for reading) until the step runs again."""
    import papermill

    from pose3dlib.engine import atomic_io

    nb = _notebook(None)
    nb["cells"][0]["metadata"]["tags"] = ["parameters"]
    src = tmp_path / "tiny.ipynb"
    src.write_text(json.dumps(nb))
    out = tmp_path / "runs" / "tiny.ipynb"
    out.parent.mkdir()
    dead = out.parent / ".tiny.ipynb.4000000.tmp.ipynb"  # a killed run's partial notebook
    dead.write_text("{}")
    monkeypatch.setattr(atomic_io, "process_alive", lambda pid: pid != 4_000_000)

    def execute_notebook(input_path, output_path, **kw):
        Path(output_path).write_text("{}")  # papermill writes the notebook as it goes
        if failure == "interrupt":
            raise KeyboardInterrupt
        raise papermill.PapermillExecutionError(1, 1, "x = 1", "ValueError", "bad", [])

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    import logging

    monkeypatch.setattr(logging.getLogger("asyncio"), "filters", [])  # restored after the test
    with pytest.raises(KeyboardInterrupt if failure == "interrupt" else Pose3DError):
        notebook_runner.execute(str(src), out, {"x": 1}, progress=False)
    left = sorted(p.name for p in out.parent.iterdir())
    assert not out.exists() and not dead.exists()
    assert left == ([] if failure == "interrupt" else [f".tiny.ipynb.{os.getpid()}.tmp.ipynb"])
    # after a Ctrl-C the tasks left on the dying kernel print no "Task exception was never retrieved"
    # traceback after `interrupted`; any other asyncio record still passes; a cell's error adds no filter
    from nbclient.exceptions import DeadKernelError

    log = logging.getLogger("asyncio")

    def passes(message: str, exc: BaseException) -> bool:
        record = log.makeRecord("asyncio", logging.ERROR, __file__, 1, message, (), (type(exc), exc, None))
        return all(f.filter(record) for f in log.filters)

    assert passes("Task exception was never retrieved\nfuture: <Task ...>", DeadKernelError("Kernel died")) == (
        failure != "interrupt")
    assert passes("Task exception was never retrieved\nfuture: <Task ...>", ValueError("a real bug"))
    assert passes("Exception in callback ...", DeadKernelError("Kernel died"))


# ----------------------------------------------------------------------------- parameter types

def _cli(notebook: str, *args: str) -> dict:
    """What `run-notebook NOTEBOOK OUT -p NAME VALUE ...` hands papermill, checked as `run` checks it."""
    src = notebook_runner.notebook_path(notebook)
    declared = notebook_runner.declared_parameters(src)
    assert len(args) % 3 == 0 and set(args[0::3]) <= {"-p"}, args
    items = [list(args[i + 1:i + 3]) for i in range(0, len(args), 3)]
    params = notebook_runner.parse_params(items, notebook_runner.parameter_types(declared))
    notebook_runner.check_parameters(src, params, declared)
    return params


def test_a_value_of_the_wrong_type_is_an_error_naming_parameter_value_and_type():
    for value in ("maybe", "yes", "1", "[True]"):
        with pytest.raises(Pose3DError, match=rf"01_data_prep\.ipynb: parameter use_real_data = .*{value[1:3]}.*: "
                                              r"expected a bool \(True or False\)"):
            _cli("01_data_prep", "-p", "use_real_data", value)
    for value, expected in (("True", True), ("true", True), ("False", False), ("false", False)):
        assert _cli("01_data_prep", "-p", "use_real_data", value)["use_real_data"] is expected
    assert _cli("01_data_prep", "-p", "samples_per_split", "7")["samples_per_split"] == 7
    for value in ("7.5", "seven", "True"):
        with pytest.raises(Pose3DError, match=rf"parameter samples_per_split = .*{value}.*: expected an int"):
            _cli("01_data_prep", "-p", "samples_per_split", value)
    # str takes anything, as the text given; list takes its YAML / JSON form only
    assert _cli("01_data_prep", "-p", "config_file", "123", "-p", "run_dir", "")["config_file"] == "123"
    assert _cli("01_data_prep", "-p", "run_dir", "")["run_dir"] == ""
    # a path with ' #' was cut at the YAML comment: figures of '/tmp/w s/figs #2' went to '/tmp/w s/figs'
    assert _cli("06_eval_mpjpe", "-p", "figures_dir", "/tmp/w s/figs #2")["figures_dir"] == "/tmp/w s/figs #2"
    for text in ("runs/[x", "@out", "a: b: c"):  # not YAML, but a text parameter takes any text
        assert _cli("06_eval_mpjpe", "-p", "run_dir", text)["run_dir"] == text
    with pytest.raises(Pose3DError, match=r"-p overrides '\[\"a#b\"\] #c': YAML reads a '#'"):  # a kept '#' hid it
        _cli("06_eval_mpjpe", "-p", "overrides", '["a#b"] #c')
    with pytest.raises(Pose3DError, match=r"-p stages '\[3\] #1': YAML reads a '#' after a space as the start of a comment"):
        _cli("06_eval_mpjpe", "-p", "stages", "[3] #1")
    assert _cli("06_eval_mpjpe", "-p", "stages", "[3]", "-p", "overrides", '["seed=1"]')["stages"] == [3]
    with pytest.raises(Pose3DError, match=r"parameter overrides = 'seed=1': expected a list"):
        _cli("06_eval_mpjpe", "-p", "overrides", "seed=1")
    # the Python API (sweep, ablation) is checked the same way, before papermill runs
    with pytest.raises(Pose3DError, match=r"parameter limit = '5': expected an int"):
        notebook_runner.check_parameters(notebook_runner.notebook_path("06_eval_mpjpe"), {"limit": "5"})


def test_float_parameters_take_ints_and_exponents_and_untyped_ones_their_defaults_type(tmp_path):
    nb = _notebook(None)
    nb["cells"][0]["metadata"]["tags"] = ["parameters"]
    nb["cells"][0]["source"] = "w: float = 0.1\nx = 1\nname = 'a'\nanything = None\n"
    src = tmp_path / "typed.ipynb"
    src.write_text(json.dumps(nb))
    declared = notebook_runner.declared_parameters(src)
    types = notebook_runner.parameter_types(declared)
    assert types == {"w": "float", "x": "int", "name": "str"}  # None: no type, any value goes
    params = notebook_runner.parse_params([["w", "1e-3"], ["x", "2"], ["anything", "[1, 2]"]], types)
    assert params == {"w": 0.001, "x": 2, "anything": [1, 2]}
    notebook_runner.check_parameters(src, {**params, "w": 2}, declared)
    with pytest.raises(Pose3DError, match=r"typed\.ipynb: parameter w = True: expected a number"):
        notebook_runner.check_parameters(src, {"w": True}, declared)


def test_run_notebook_rejects_a_mistyped_value_in_one_line_before_running(tmp_path, capsys):
    from pose3dlib.tools.cli import main

    out = tmp_path / "o.ipynb"
    assert main(["run-notebook", "01_data_prep", str(out), "-p", "use_real_data", "maybe"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "use_real_data" in err[0] and "'maybe'" in err[0] and "bool" in err[0], err
    assert not out.exists() and not list(tmp_path.iterdir())


def _makefile_invocation(notebook: str, profile: str, real_data: str, overrides: str) -> list[str]:
    """The `-p NAME VALUE` arguments the Makefile's `$(RUN_DIR)/.stamps/%` rule passes for `notebook`,
    read from the Makefile itself (`$$OVERRIDES`: `overrides`)."""
    import re
    import shlex

    text = (PROJECT_ROOT / "Makefile").read_text().replace("\\\n", " ")
    line = next(ln for ln in text.splitlines() if "run-notebook $*" in ln)
    extra = dict(re.findall(r"^PAPERMILL_ARGS_(\S+)\s*=\s*(.*)$", text, re.M)).get(notebook, "")
    cmd = line[line.index("run-notebook $*") + len("run-notebook $*"):].replace("$(PAPERMILL_ARGS_$*)", extra)
    run_dir = f"runs/{profile}" + ("-real" if real_data == "True" else "")
    for var, value in (("$(PROFILE)", profile), ("$(RUN_DIR)", run_dir), ("$(FIG_DIR)", f"{run_dir}/figures"),
                       ("$(REAL_DATA)", real_data), ('"$$OVERRIDES"', "OVERRIDES_PLACEHOLDER")):
        cmd = cmd.replace(var, value)
    args = [overrides if a == "OVERRIDES_PLACEHOLDER" else a for a in shlex.split(cmd)[1:]]  # [0]: the output
    assert "$" not in " ".join(a for a in args if a != overrides), args
    return args


def test_the_makefiles_invocations_pass_the_type_check(capsys):
    """`make reproduce` (REAL_DATA=False and True) hands every notebook values of its parameters' types."""
    import yaml

    from pose3dlib.engine.paths import NOTEBOOKS_DIR
    from pose3dlib.tools.cli import main

    raw = ["data.raw_h36m_dir=data/raw/h36m", "data.raw_mpii_dir=data/raw/mpii", "data.raw_3dhp_dir=data/raw/3dhp"]
    assert main(["real-data-overrides", "--config", "configs/cpu.yaml", *(a for o in raw for a in ("--set", o))]) == 0
    real_overrides = capsys.readouterr().out.strip()  # what `OVERRIDES=$(... real-data-overrides ...)` holds
    assert isinstance(yaml.safe_load(real_overrides), list) and len(yaml.safe_load(real_overrides)) > 1
    notebooks = sorted(p.stem for p in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    assert "01_data_prep" in notebooks and "06_eval_mpjpe" in notebooks
    for nb in notebooks:
        for real_data, overrides in (("False", "[]"), ("True", real_overrides)):
            args = _makefile_invocation(nb, "cpu", real_data, overrides)
            params = _cli(nb, *args)
            assert params["overrides"] == yaml.safe_load(overrides) and params["config_file"] == "configs/cpu.yaml"
            if nb == "01_data_prep":
                assert params["use_real_data"] is (real_data == "True")


def test_the_kernel_sockets_go_into_the_given_folder_unless_its_path_is_too_long():
    # a typical temporary folder (pytest's tmp_path can be too long for a socket on macOS)
    with tempfile.TemporaryDirectory(prefix=notebook_runner.KERNEL_DIR_PREFIX, dir="/tmp" if os.name == "posix" else None) as short:
        cfg = notebook_runner.kernel_config(short)
        if os.name == "posix":
            assert cfg.KernelManager.transport == "ipc"
            assert cfg.KernelManager.connection_file == os.path.join(short, "kernel.json")
            assert os.listdir(short) == []  # the probe socket is removed again
    long = os.path.join(short, "x" * notebook_runner.MAX_SOCKET_PATH)
    assert "KernelManager" not in notebook_runner.kernel_config(long)  # Jupyter's default, TCP on localhost


@pytest.mark.skipif(os.name != "posix", reason="IPC sockets are POSIX-only")
def test_the_kernel_falls_back_to_tcp_where_no_local_socket_can_be_bound(monkeypatch):
    import socket

    class NoSockets(socket.socket):  # a file system that refuses sockets (some network and FUSE mounts)
        def bind(self, address):
            raise OSError(95, "Operation not supported", address)

    with tempfile.TemporaryDirectory(prefix=notebook_runner.KERNEL_DIR_PREFIX, dir="/tmp") as short:
        assert notebook_runner.unix_sockets_work(short)
        monkeypatch.setattr(socket, "socket", NoSockets)
        assert not notebook_runner.unix_sockets_work(short)
        assert "KernelManager" not in notebook_runner.kernel_config(short)
        assert os.listdir(short) == []
    assert not notebook_runner.unix_sockets_work(os.path.join(short, "gone"))  # a folder that is not there


@pytest.mark.skipif(os.name != "posix", reason="process ids are probed on POSIX only")
def test_kernel_folders_of_killed_runners_are_removed_and_others_kept(tmp_path):
    import subprocess

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid whose process has exited (a runner killed with SIGKILL)
    stale = tmp_path / f"{notebook_runner.kernel_dir_prefix(gone.pid)}abc123"
    (stale / "sub").mkdir(parents=True)
    (stale / "kernel-stderr.log").write_text("x")
    live = tmp_path / f"{notebook_runner.kernel_dir_prefix()}def456"  # this process: a runner still running
    legacy = tmp_path / f"{notebook_runner.KERNEL_DIR_PREFIX}xyz789"  # no pid in the name: cannot tell, kept
    unrelated = tmp_path / f"other-{gone.pid}-abc"
    for folder in (live, legacy, unrelated):
        folder.mkdir()
    a_file = tmp_path / f"{notebook_runner.kernel_dir_prefix(gone.pid)}file"
    a_file.write_text("not a folder")
    recent = tmp_path / f"{notebook_runner.kernel_dir_prefix(gone.pid)}recent"  # its runner gone, but written lately
    recent.mkdir()
    old = time.time() - notebook_runner.STALE_KERNEL_DIR_S - 60
    for p in (stale, stale / "sub", stale / "kernel-stderr.log"):
        os.utime(p, (old, old))
    assert notebook_runner.remove_stale_kernel_dirs(tmp_path) == [stale]
    assert recent.is_dir()
    os.utime(recent, (old, old))
    assert notebook_runner.remove_stale_kernel_dirs(tmp_path) == [recent]
    assert not stale.exists() and live.is_dir() and legacy.is_dir() and unrelated.is_dir() and a_file.is_file()
    assert notebook_runner.remove_stale_kernel_dirs(tmp_path / "missing") == []


def test_an_output_that_would_replace_the_source_or_is_a_folder_is_refused_before_running(tmp_path, monkeypatch):
    import papermill as pm

    monkeypatch.setattr(pm, "execute_notebook", lambda *a, **k: pytest.fail("the notebook ran"))
    src = tmp_path / "nb.ipynb"
    src.write_text(json.dumps(_notebook(None)))
    with pytest.raises(Pose3DError, match=r"nb\.ipynb: is the notebook being run; the executed copy would replace it"):
        notebook_runner.execute(str(src), tmp_path / "." / "nb.ipynb", {}, progress=False)
    (tmp_path / "out").mkdir()
    with pytest.raises(Pose3DError, match=r"out: is a folder; give the executed notebook's file name \(e\.g\. .*out/nb"):
        notebook_runner.execute(str(src), tmp_path / "out", {}, progress=False)
    with pytest.raises(Pose3DError, match=r"run\.txt: the executed notebook's name must end in \.ipynb"):
        notebook_runner.execute(str(src), tmp_path / "run.txt", {}, progress=False)
    assert json.loads(src.read_text()) == _notebook(None)
    notebook_runner.check_output(src, src, in_place=True)  # refreshing a committed notebook's outputs: asked for


def test_an_unknown_notebook_name_lists_the_projects_notebooks():
    with pytest.raises(Pose3DError, match=r"notebook not found: .*07_nope\.ipynb \(the project's notebooks by name: "
                                          r"01_data_prep, 02_train_2d, .*06_eval_mpjpe\)"):
        notebook_runner.notebook_path("07_nope")


def test_a_config_or_override_that_does_not_load_fails_before_a_kernel_starts():
    """prepare() loads the notebook's config with its overrides (given, else the notebook's defaults),
    as the notebook's first cell would, so a typo is one line at once, not a failed cell seconds later."""
    src, params = notebook_runner.prepare("06_eval_mpjpe", {"overrides": ["train.stage3.geometric_weight=0.1"]})
    assert src.name == "06_eval_mpjpe.ipynb" and params["overrides"] == ["train.stage3.geometric_weight=0.1"]
    with pytest.raises(Pose3DError, match=r"^06_eval_mpjpe\.ipynb: unknown config key 'train\.stage3\.geometric_wieght'"):
        notebook_runner.prepare("06_eval_mpjpe", {"overrides": ["train.stage3.geometric_wieght=0.1"]})
    with pytest.raises(Pose3DError, match=r"^02_train_2d\.ipynb: .*configs/nosuch\.yaml"):
        notebook_runner.prepare("02_train_2d", {"config_file": "configs/nosuch.yaml"})
    notebook_runner.prepare("05_demo", {"run_dir": "runs/x"})  # neither given: nothing to load early

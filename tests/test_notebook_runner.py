"""pose3dlib.tools.notebook_runner: executed notebooks name project-relative paths, not the machine's folders."""
from __future__ import annotations

import json
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


def test_execute_writes_relative_paths_into_the_executed_notebook(tmp_path, monkeypatch):
    """A real papermill run of a two-cell notebook (the `pose3d` kernel that `make setup` registers)."""
    from jupyter_client.kernelspec import KernelSpecManager

    if notebook_runner.KERNEL not in KernelSpecManager().find_kernel_specs():
        pytest.skip("no 'pose3d' Jupyter kernel: run `make setup`")
    monkeypatch.setattr(paths, "PROJECT_ROOT", tmp_path)  # the run's folder plays the project root
    nb = _notebook(None)
    nb["cells"][0]["metadata"]["tags"] = ["parameters"]
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "c2", "metadata": {}, "outputs": [],
                        "source": "print('x is', x)"})
    src = tmp_path / "nb" / "tiny.ipynb"
    src.parent.mkdir()
    src.write_text(json.dumps(nb))
    out = notebook_runner.execute(str(src), tmp_path / "runs" / "tiny.ipynb", {"x": 2}, progress=False)
    done = json.loads(out.read_text())
    meta = done["metadata"]["papermill"]
    assert (meta["input_path"], meta["output_path"]) == ("nb/tiny.ipynb", "runs/tiny.ipynb")
    assert "x is 2" in "".join(done["cells"][-1]["outputs"][0]["text"])
    assert not list((tmp_path / "runs").glob(".*tmp*"))  # the temporary file was renamed


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

"""The committed notebooks: one parameter set, figures on the page, no progress-bar noise."""
from __future__ import annotations

import json

import pytest

from pose3dlib.engine.paths import NOTEBOOKS_DIR

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
COMMON_PARAMETERS = ("config_file", "overrides", "run_dir", "figures_dir")
MAX_STDERR_OUTPUTS = 3


def _code(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_takes_the_same_parameters(path):
    import papermill as pm

    declared = list(pm.inspect_notebook(str(path)))
    assert tuple(declared[: len(COMMON_PARAMETERS)]) == COMMON_PARAMETERS, declared


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_outputs_show_their_figures_without_bar_noise(path):
    nb = json.loads(path.read_text())
    sources = ["".join(c["source"]) for c in _code(nb)]
    assert not any("matplotlib.use" in s for s in sources), "a notebook must not force a matplotlib backend"
    outputs = [o for c in _code(nb) for o in c.get("outputs", [])]
    makes_figures = any(k in s for s in sources for k in ("plt.", "save_figure", "run_stage_notebook"))
    if makes_figures:
        assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name}: no figure on the page"
    stderr = [o for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    assert len(stderr) <= MAX_STDERR_OUTPUTS, [("".join(o["text"]))[:120] for o in stderr]
    assert not any("it/s]" in "".join(o["text"]) or "img/s]" in "".join(o["text"]) for o in stderr)


def test_the_library_never_forces_a_matplotlib_backend():
    from pose3dlib.engine.paths import PROJECT_ROOT

    offenders = [p for p in (PROJECT_ROOT / "pose3dlib").rglob("*.py") if "matplotlib.use(" in p.read_text()]
    assert offenders == []

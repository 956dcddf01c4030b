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


@pytest.mark.parametrize("path", [*NOTEBOOKS, *sorted((NOTEBOOKS_DIR.parent / "runs" / "cpu").glob("[0-9][0-9]_*.ipynb"))],
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_interactive_figure_carries_a_still_picture(path):
    """GitHub and `nbconvert --to html` cannot draw plotly's mimetype: without a PNG beside it the cell is empty."""
    outputs = [o for c in _code(json.loads(path.read_text())) for o in c.get("outputs", [])]
    for o in outputs:
        if "application/vnd.plotly.v1+json" in o.get("data", {}):
            assert "image/png" in o["data"], f"{path.name}: a plotly output without its still picture"


def test_the_notebook_skeleton_offers_jupyter_the_figure_and_static_viewers_a_picture():
    import base64

    import numpy as np

    from pose3dlib.plots.viz import MAX_STILLS, notebook_skeleton, notebook_skeleton_sequence

    rng = np.random.default_rng(0)
    one = notebook_skeleton(rng.normal(scale=300.0, size=(16, 3)), title="photo")._repr_mimebundle_()
    assert set(one) == {"application/vnd.plotly.v1+json", "image/png", "text/plain"}
    assert one["application/vnd.plotly.v1+json"]["data"][1]["type"] == "scatter3d"
    assert base64.b64decode(one["image/png"]).startswith(b"\x89PNG")
    clip = notebook_skeleton_sequence(rng.normal(scale=300.0, size=(9, 16, 3)), np.arange(9) / 6, title="clip")
    bundle = clip._repr_mimebundle_()
    assert len(clip.figure.frames) == 9 and "9 frames" in bundle["text/plain"]

    def width(png_b64: str) -> int:
        import cv2

        return cv2.imdecode(np.frombuffer(base64.b64decode(png_b64), np.uint8), cv2.IMREAD_COLOR).shape[1]

    assert width(bundle["image/png"]) > (MAX_STILLS - 0.5) * width(one["image/png"])  # MAX_STILLS frames side by side
    with pytest.raises(ValueError, match=r"\(T, 16, 3\)"):
        notebook_skeleton_sequence(np.zeros((0, 16, 3)))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_figures_follow_the_run_folder_unless_named(path):
    """figures_dir defaults to "" and every notebook turns it into <run_dir>/figures, so a
    notebook run on another run folder never writes over the smoke run's figures."""
    import papermill as pm

    assert pm.inspect_notebook(str(path))["figures_dir"]["default"] == '""'
    nb = json.loads(path.read_text())
    assert any("figures_dir = runs.figures_path(run_dir, figures_dir)" in "".join(c["source"]) for c in _code(nb))


def test_figures_path():
    from pose3dlib.engine.runs import figures_path

    assert figures_path("runs/mine") == "runs/mine/figures"
    assert figures_path("runs/mine", "") == "runs/mine/figures"
    assert figures_path("runs/mine", "figures") == "figures"


def test_a_sequence_still_carries_the_sequence_title():
    import numpy as np

    from pose3dlib.plots.viz import _still_figure

    poses = np.random.default_rng(0).normal(scale=300.0, size=(2, 16, 3))
    fig = _still_figure(poses, ["frame 0", "frame 1"], suptitle="clip")
    assert fig._suptitle is not None and fig._suptitle.get_text() == "clip"
    assert [ax.get_title() for ax in fig.axes] == ["frame 0", "frame 1"]
    assert _still_figure(poses[:1], ["photo"])._suptitle is None

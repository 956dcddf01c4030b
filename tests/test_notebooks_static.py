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
    """GitHub and `nbconvert --to html` cannot draw plotly's mimetype: without a picture beside it the cell
    is empty. (The still is SVG since notebook_skeleton's change from PNG; a page executed before that
    still holds a PNG.)"""
    outputs = [o for c in _code(json.loads(path.read_text())) for o in c.get("outputs", [])]
    for o in outputs:
        if "application/vnd.plotly.v1+json" in o.get("data", {}):
            assert {"image/svg+xml", "image/png"} & set(o["data"]), f"{path.name}: a plotly output without its still picture"
            # JupyterLab's plotly renderer adds its own PNG snapshot to an output it drew, and shows that
            # PNG, not the figure, when the notebook is opened again: a page saved from JupyterLab
            assert not {"image/svg+xml", "image/png"} <= set(o["data"]), \
                f"{path.name}: a plotly output with a PNG snapshot beside its SVG still (saved from JupyterLab?)"


def _svg_width_pt(svg: str) -> float:
    import re

    return float(re.search(r'<svg[^>]*\swidth="([0-9.]+)pt"', svg).group(1))


def test_the_notebook_skeleton_offers_jupyter_the_figure_and_static_viewers_a_picture():
    import numpy as np

    from pose3dlib.plots.viz import MAX_STILLS, notebook_skeleton, notebook_skeleton_sequence

    rng = np.random.default_rng(0)
    one = notebook_skeleton(rng.normal(scale=300.0, size=(16, 3)), title="photo")._repr_mimebundle_()
    assert set(one) == {"application/vnd.plotly.v1+json", "image/svg+xml", "text/plain"}
    assert one["application/vnd.plotly.v1+json"]["data"][1]["type"] == "scatter3d"
    assert one["image/svg+xml"].lstrip().startswith("<?xml") and "<svg" in one["image/svg+xml"]
    clip = notebook_skeleton_sequence(rng.normal(scale=300.0, size=(9, 16, 3)), np.arange(9) / 6, title="clip")
    bundle = clip._repr_mimebundle_()
    assert len(clip.figure.frames) == 9 and "9 frames" in bundle["text/plain"]
    # MAX_STILLS frames side by side (the single still is a little wider than its one frame: its key)
    assert _svg_width_pt(bundle["image/svg+xml"]) > (MAX_STILLS - 1) * _svg_width_pt(one["image/svg+xml"])
    with pytest.raises(ValueError, match=r"\(T, 16, 3\)"):
        notebook_skeleton_sequence(np.zeros((0, 16, 3)))


def test_jupyterlab_draws_the_interactive_figure_at_once():
    """jupyterlab-plotly (the JupyterLab renderer that ships with plotly) shows a bundle's image/png
    instead of the figure until the pointer is over it: the still must come as another mimetype, one
    that static viewers show and that JupyterLab ranks below plotly's."""
    import numpy as np

    from pose3dlib.plots.viz import STILL_MIMETYPE, notebook_skeleton, notebook_skeleton_sequence

    poses = np.random.default_rng(2).normal(scale=300.0, size=(3, 16, 3))
    for shown in (notebook_skeleton(poses[0]), notebook_skeleton_sequence(poses)):
        bundle = shown._repr_mimebundle_()
        assert "image/png" not in bundle and STILL_MIMETYPE in bundle
    assert STILL_MIMETYPE in ("image/svg+xml", "image/jpeg", "text/html")


def test_the_still_is_the_same_text_for_the_same_figure():
    """No date or random ids in the SVG: a notebook run twice on the same predictions commits no diff."""
    import numpy as np

    from pose3dlib.plots.viz import notebook_skeleton

    pose = np.random.default_rng(3).normal(scale=300.0, size=(16, 3))
    first, second = (notebook_skeleton(pose, title="photo")._repr_mimebundle_()["image/svg+xml"] for _ in range(2))
    assert first == second
    assert "<dc:date>" not in first
    assert "Matplotlib v" not in first  # nor the version that drew it: an upgrade alone changes no still


def test_a_title_with_control_characters_still_gives_a_valid_svg():
    """A demo title is the user's file name, which may hold control characters; the SVG copies titles
    into XML, which refuses most of them, and a static viewer then shows a broken picture."""
    import xml.etree.ElementTree as ET

    import numpy as np

    from pose3dlib.plots.viz import notebook_skeleton, notebook_skeleton_sequence

    pose = np.random.default_rng(4).normal(scale=300.0, size=(16, 3))
    for shown in (notebook_skeleton(pose, title="clip\x01\x1b.jpg"),
                  notebook_skeleton_sequence(np.stack([pose, pose]), title="run\x07 2")):
        ET.fromstring(shown._repr_mimebundle_()["image/svg+xml"])  # raises ParseError on invalid XML


def test_a_static_viewer_shows_the_still_in_place_of_the_interactive_figure(tmp_path):
    """nbconvert's HTML (what nbviewer serves; GitHub's view picks from the bundle the same way) holds the
    still picture of a notebook_skeleton output, and no plotly figure it could not draw."""
    import base64
    import re

    import nbformat
    import numpy as np
    from nbconvert import HTMLExporter

    from pose3dlib.plots.viz import notebook_skeleton

    bundle = notebook_skeleton(np.random.default_rng(4).normal(scale=300.0, size=(16, 3)), title="photo")._repr_mimebundle_()
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("notebook_skeleton(pose)")
    cell.outputs = [nbformat.v4.new_output("display_data", data=bundle)]
    nb.cells = [cell]
    nbformat.validate(nb)
    html, _ = HTMLExporter().from_notebook_node(nb)
    body = html[html.index("<body"):]
    # the matplotlib still (its 3D panes), inlined or as an <img> of the SVG
    pictures = [base64.b64decode(b).decode() for b in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', body)]
    assert any("pane3d_1" in svg for svg in [body, *pictures])
    assert "3D skeleton: photo" not in body  # not the plain-text line in its place


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_figures_follow_the_run_folder_unless_named(path):
    """figures_dir defaults to "" and every notebook turns it into <run_dir>/figures, so a
    notebook run on another run folder never writes over the smoke run's figures (notebook 06
    through evaluate.figures_for, which also keeps a partial scoring's figures in other/)."""
    import papermill as pm

    assert pm.inspect_notebook(str(path))["figures_dir"]["default"] == '""'
    nb = json.loads(path.read_text())
    line = ("figures_dir = evaluate.figures_for(run_dir, figures_dir, out_csv)" if path.stem == "06_eval_mpjpe"
            else "figures_dir = runs.figures_path(run_dir, figures_dir)")
    assert any(line in "".join(c["source"]) for c in _code(nb))


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


def test_no_committed_output_reads_as_a_class_name_where_markdown_is_not_rendered():
    """IPython's Markdown object's plain-text form is '<IPython.core.display.Markdown object>': a
    table shown with it is lost to every reader of the plain text (terminals, diffs, some viewers)."""
    paths = [*NOTEBOOKS, *sorted((NOTEBOOKS_DIR.parent / "runs" / "cpu").glob("[0-9][0-9]_*.ipynb"))]
    for path in paths:
        for o in (o for c in _code(json.loads(path.read_text())) for o in c.get("outputs", [])):
            plain = "".join(o.get("data", {}).get("text/plain", ""))
            assert not plain.startswith("<IPython.core.display."), f"{path.name}: {plain[:60]}"


def test_markdown_text_is_its_own_plain_text():
    from pose3dlib.plots.viz import MarkdownText

    table = "| a | b |\n|---|---:|\n| x | 1.0 |"
    shown = MarkdownText(table)
    assert shown._repr_markdown_() == table and repr(shown) == table


def _legend_texts(fig) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_skeleton_figures_say_what_their_colours_mean():
    import matplotlib.pyplot as plt
    import numpy as np

    from pose3dlib.plots.viz import SIDE_LABELS, _still_figure, demo_panel

    rng = np.random.default_rng(0)
    image, joints = np.zeros((40, 60, 3), np.uint8), rng.uniform(5, 35, (16, 2))
    with_box = demo_panel([("a", image, joints, {"center_px": [30, 20], "side_px": 30})])
    without = demo_panel([("a", image, joints)])
    still = _still_figure(rng.normal(scale=300.0, size=(1, 16, 3)), ["photo"])
    try:
        for fig in (with_box, without, still):
            assert set(SIDE_LABELS.values()) <= set(_legend_texts(fig))
        assert "the box the network looked at" in _legend_texts(with_box)
        assert "the box the network looked at" not in _legend_texts(without)
    finally:
        plt.close(with_box)
        plt.close(without)


def test_sample_grid_titles_name_actions_only_where_the_split_has_them(smoke_data):
    import matplotlib.pyplot as plt

    from pose3dlib.config import load_config
    from pose3dlib.data.h36m import H36MDataset
    from pose3dlib.data.mpii import MPIIDataset
    from pose3dlib.plots.viz import sample_grid

    data = load_config("configs/smoke.yaml", smoke_data).data
    splits = {"h36m test": H36MDataset(data.h36m_dir, "test", data), "mpii val": MPIIDataset(data.mpii_dir, "val", data)}
    fig = sample_grid(splits, 2, seed=0, input_size=data.input_size, heatmap_size=data.heatmap_size)
    try:
        titles = [ax.get_title() for ax in fig.axes]
        assert len(titles) == 3 * 2  # h36m: images and 3D; mpii: images only
        assert all(t.endswith(", 3D") for t in titles[2:4])
        assert not any("Unknown" in t for t in titles)  # MPII rows have no action
        h36m_names = [t.split(" ", 3)[-1] for t in titles[:2]]
        assert all(name and not name.startswith("#") for name in h36m_names)  # "h36m test #12 Walking"
    finally:
        plt.close(fig)
    # two splits of the same size draw different samples: each split has its own seed
    twins = {"mpii val": splits["mpii val"], "mpii val again": splits["mpii val"]}
    fig = sample_grid(twins, 2, seed=0, input_size=data.input_size, heatmap_size=data.heatmap_size)
    try:
        indices = [ax.get_title().split("#")[1] for ax in fig.axes]
        assert indices[:2] != indices[2:]
    finally:
        plt.close(fig)


def test_pose_statistics_figure_labels_units_and_means():
    import matplotlib.pyplot as plt
    import numpy as np

    from pose3dlib.plots.viz import plot_pose_statistics

    stats = {"lab": {"knee_flexion_deg": np.array([10.0, 20.0]), "depth_range_mm": np.array([400.0, 600.0])},
             "wild": {"knee_flexion_deg": np.array([30.0, 50.0]), "depth_range_mm": np.array([800.0, 1000.0])}}
    fig = plot_pose_statistics(stats)
    try:
        knee, depth = fig.axes
        assert "degrees" in knee.get_xlabel() and "(mm)" in depth.get_xlabel()
        assert knee.get_ylabel() == "density (per degree)" and depth.get_ylabel() == "density (per mm)"
        assert [t.get_text() for t in knee.get_legend().get_texts()] == ["lab: mean 15 degrees", "wild: mean 40 degrees"]
        assert [t.get_text() for t in depth.get_legend().get_texts()] == ["lab: mean 500 mm", "wild: mean 900 mm"]
        assert fig._suptitle.get_text() == "Pose statistics: lab against wild"
    finally:
        plt.close(fig)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_committed_cpu_run_is_of_the_current_notebooks(path):
    """runs/cpu/<notebook> is read as the cpu profile's copy of notebooks/<notebook>: the same cells
    (papermill's injected parameters aside), so a reader never sees prose or code that has changed since."""
    executed = NOTEBOOKS_DIR.parent / "runs" / "cpu" / path.name
    assert executed.is_file(), f"{executed} is missing: every notebook's cpu run is committed (make reproduce)"

    def sources(p) -> list[str]:
        cells = json.loads(p.read_text())["cells"]
        return ["".join(c["source"]) for c in cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]

    assert sources(executed) == sources(path), f"re-run {path.stem} for runs/cpu (make reproduce)"


def test_every_figure_kind_draws_a_body_side_in_one_colour():
    """matplotlib skeletons, plotly skeletons and the OpenCV overlays share viz.COLOURS."""
    import matplotlib.colors as mcolors
    import numpy as np

    from pose3dlib.plots import viz

    fig = viz.skeleton_figure_plotly(np.random.default_rng(0).normal(scale=300.0, size=(16, 3)))
    by_name = {trace.name: trace.line.color for trace in fig.data if trace.type == "scatter3d"}
    assert by_name == {viz.SIDE_LABELS[side]: colour for side, colour in viz.COLOURS.items()}
    for side, colour in viz.COLOURS.items():
        assert viz.RGB_COLOURS[side] == tuple(round(255 * c) for c in mcolors.to_rgb(colour))
    assert viz.COLOURS["right"] == mcolors.to_hex("tab:red")  # the matplotlib palette the figures were drawn in


def test_scale_bar_is_the_longest_round_length_that_fits():
    from pose3dlib.plots.viz import SCALE_BARS_MM, scale_bar_mm

    assert scale_bar_mm(2000.0) == 500.0  # 0.4 x 2000 = 800: 500 fits, 1000 does not
    assert scale_bar_mm(2500.0) == 1000.0  # exactly 0.4 x the side
    assert scale_bar_mm(600.0) == 200.0
    assert scale_bar_mm(10.0) == SCALE_BARS_MM[0]  # nothing fits: the shortest
    assert scale_bar_mm(2000.0, fraction=0.2) == 250.0


def test_a_3d_still_shows_its_scale_in_millimetres():
    """The 3D panels hide their tick labels (camera-frame coordinates), so each carries a scale bar
    whose length in data units is the length its label names."""
    import numpy as np

    from pose3dlib.plots.viz import PLOT_MARGIN, _still_figure, scale_bar_mm

    pose = np.random.default_rng(1).normal(scale=300.0, size=(16, 3))
    (ax,) = _still_figure(pose[None], ["photo"]).axes
    labels = [t.get_text() for t in ax.texts if t.get_text().endswith(" mm")]
    side = np.ptp(pose[:, [0, 2, 1]], axis=0).max() * PLOT_MARGIN
    assert labels == [f"{scale_bar_mm(side):g} mm"]
    bars = [line for line in ax.lines if line.get_color() == "black"]
    assert len(bars) == 1
    xs = bars[0].get_data_3d()[0]
    assert np.isclose(xs[1] - xs[0], scale_bar_mm(side))


def test_a_3d_still_has_no_blank_band_between_the_skeleton_and_its_key():
    """At matplotlib's 3D defaults a quarter of each still (the notebook's and the demo's <stem>_3d.png)
    was a blank band under the ground; the box now fills its panel."""
    import io

    import cv2
    import numpy as np

    from pose3dlib.plots.viz import _still_figure

    poses = np.random.default_rng(5).normal(scale=300.0, size=(4, 16, 3))
    for n in (1, 4):
        buffer = io.BytesIO()
        _still_figure(poses[:n], [f"frame {i}" for i in range(n)], suptitle="clip" if n > 1 else "").savefig(
            buffer, format="png", dpi=100, bbox_inches="tight")
        grey = cv2.imdecode(np.frombuffer(buffer.getvalue(), np.uint8), cv2.IMREAD_GRAYSCALE)
        inked = (grey < 250).any(axis=1)
        longest, run = 0, 0
        for row_inked in inked:
            run = 0 if row_inked else run + 1
            longest = max(longest, run)
        assert longest < 0.1 * len(grey), f"{n} panel(s): {longest} blank rows of {len(grey)}"


@pytest.mark.parametrize("size, interpolation", [(16, "nearest"), (512, "antialiased")])
def test_sample_grid_shows_the_network_inputs_pixel_for_pixel(size, interpolation):
    """Crops enlarged in their panels are drawn without smoothing: what the network sees, and a PNG half the
    size (matplotlib's smoothing of the noisy synthetic crops made notebook 01's page 1 MB heavier); crops
    shrunk into them (larger than the panel) keep matplotlib's antialiasing, which drops no rows."""
    import matplotlib.pyplot as plt
    import numpy as np

    from pose3dlib.data.actions import UNKNOWN_ACTION
    from pose3dlib.plots.viz import sample_grid

    class TwoDOnly:  # an MPII-like split: images with 2D labels, no action
        def __len__(self):
            return 3

        def __getitem__(self, i):
            rng = np.random.default_rng(i)
            return {"image": rng.uniform(0, 1, (3, size, size)).astype(np.float32), "joints_2d": rng.uniform(-0.8, 0.8, (16, 2)),
                    "valid": np.ones(16, bool), "index": i, "action": UNKNOWN_ACTION}

    fig = sample_grid({"mpii val": TwoDOnly()}, 2, seed=0, input_size=size, heatmap_size=size // 4)
    try:
        assert [im.get_interpolation() for ax in fig.axes for im in ax.get_images()] == [interpolation] * 2
    finally:
        plt.close(fig)


def test_the_page_gives_the_interactive_figure_room_and_leaves_the_figure_alone():
    """JupyterLab's plotly renderer draws a figure without a height 360 px high (the clip's play buttons
    and slider take a quarter of that); the bundle names a height, the figure itself (write_html's) none."""
    import numpy as np

    from pose3dlib.plots.viz import (
        NOTEBOOK_HEIGHT_PX,
        NOTEBOOK_SEQUENCE_HEIGHT_PX,
        notebook_skeleton,
        notebook_skeleton_sequence,
    )

    poses = np.random.default_rng(6).normal(scale=300.0, size=(3, 16, 3))
    one, clip = notebook_skeleton(poses[0]), notebook_skeleton_sequence(poses)
    assert one._repr_mimebundle_()["application/vnd.plotly.v1+json"]["layout"]["height"] == NOTEBOOK_HEIGHT_PX
    assert clip._repr_mimebundle_()["application/vnd.plotly.v1+json"]["layout"]["height"] == NOTEBOOK_SEQUENCE_HEIGHT_PX
    assert NOTEBOOK_SEQUENCE_HEIGHT_PX > NOTEBOOK_HEIGHT_PX > 360
    assert one.figure.layout.height is None and clip.figure.layout.height is None

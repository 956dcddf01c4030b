"""Skeleton figures (matplotlib and plotly) and saving figures."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..engine.paths import resolve
from ..skeleton import MPII16

# One colour per body side for every figure (matplotlib, plotly and the OpenCV overlays below):
# matplotlib's tab:red, tab:blue and tab:green
COLOURS = {"right": "#d62728", "left": "#1f77b4", "centre": "#2ca02c"}
# The key of every skeleton figure (legend labels, same order as COLOURS)
SIDE_LABELS = {"right": "the person's right side", "left": "left side", "centre": "pelvis, spine, neck and head"}
PLOT_MARGIN = 1.15  # 3D axis half-range / half the skeleton's largest extent
# One colour per model row of the per-stage figures (metrics.csv's stage labels), whichever rows a
# figure shows: matplotlib's tab:gray for the mean-pose baseline, tab:blue, tab:orange, tab:green
STAGE_COLOURS = {"mean_pose": "#7f7f7f", "stage1": "#1f77b4", "stage2": "#ff7f0e", "stage3": "#2ca02c"}
# One colour per data domain for every figure that sets lab against wild data: tab:purple, tab:olive
DOMAIN_COLOURS = {"lab": "#9467bd", "wild": "#bcbd22"}


def stage_colour(stage: str) -> str | None:
    """The STAGE_COLOURS colour of a metrics.csv stage label ('mean_pose', 'stage1', ...); None (the
    default colour cycle) for another label."""
    return STAGE_COLOURS.get(stage)


def domain_colour(name: str) -> str | None:
    """The DOMAIN_COLOURS colour of a split or set of poses named after its domain ('lab_val',
    'wild_test', 'lab (h36m train)': the name's first word); None (the default colour cycle) for another name."""
    return DOMAIN_COLOURS.get(re.split(r"[^a-z]+", name.lower(), maxsplit=1)[0])


def _side(a: int, b: int) -> str:
    """The body side of the edge between joints a and b, from the joints' names (r_*, l_*, else centre)."""
    prefixes = {MPII16.joint_names[a][:2], MPII16.joint_names[b][:2]}
    return "right" if "r_" in prefixes else "left" if "l_" in prefixes else "centre"


def plot_skeleton_2d(ax, joints: np.ndarray, valid: np.ndarray | None = None, linewidth: float = 2.0) -> None:
    """Draw (16, 2) image-pixel joints on a matplotlib axis (right red, left blue); skip invalid joints."""
    valid = np.ones(len(joints), bool) if valid is None else np.asarray(valid, bool)
    for a, b in MPII16.edges:
        if valid[a] and valid[b]:
            ax.plot(joints[[a, b], 0], joints[[a, b], 1], color=COLOURS[_side(a, b)], lw=linewidth)
    ax.scatter(joints[valid, 0], joints[valid, 1], s=8, c="white", edgecolors="black", linewidths=0.5, zorder=3)


def skeleton_key(fig, box: bool = False, joints: bool = True, fontsize: float = 8) -> None:
    """A legend under the figure saying what the skeleton colours, the joint dots (`joints`) and the
    dashed person box (`box`) mean."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=COLOURS[side], lw=2, label=label) for side, label in SIDE_LABELS.items()]
    if joints:
        handles.append(Line2D([], [], ls="none", marker="o", markerfacecolor="white", markeredgecolor="black",
                              markersize=4, label="joints"))
    if box:
        handles.append(Line2D([], [], color="yellow", ls="--", lw=1.2, label="the box the network looked at"))
    wide = fig.get_figwidth() >= 8  # one row of entries; a narrow figure gets two columns
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=len(handles) if wide else 2,
               fontsize=fontsize, frameon=False)


def plot_skeleton_3d(ax, joints_mm: np.ndarray, zoom: float = 1.0) -> None:
    """Draw (16, 3) camera-frame mm joints on a 3D axis, viewed upright (camera y down -> plot z up),
    on a grey ground under the lowest joint with a millimetre scale bar (`scale_bar_mm`); the cubic box
    drawn `zoom` x matplotlib's size."""
    p = np.asarray(joints_mm, dtype=np.float64)
    x, y, z = p[:, 0], p[:, 2], -p[:, 1]  # plot axes: right, depth, up
    for a, b in MPII16.edges:
        ax.plot(x[[a, b]], y[[a, b]], z[[a, b]], color=COLOURS[_side(a, b)], lw=2)
    r = max(np.ptp(x), np.ptp(y), np.ptp(z)) / 2 * PLOT_MARGIN + 1e-6
    mids = [(v.max() + v.min()) / 2 for v in (x, y, z)]
    for setter, mid in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), mids):
        setter(mid - r, mid + r)
    gx, gy = np.meshgrid([mids[0] - r, mids[0] + r], [mids[1] - r, mids[1] + r])
    ax.plot_surface(gx, gy, np.full_like(gx, z.min()), color="lightgrey", alpha=0.35, linewidth=0)  # ground
    # A scale bar on the ground's front edge (the tick labels, camera-frame coordinates, stay off)
    bar = scale_bar_mm(2 * r)
    x0, y0 = mids[0] - r * 0.9, mids[1] - r
    ax.plot([x0, x0 + bar], [y0, y0], [z.min()] * 2, color="black", lw=2.5, solid_capstyle="butt")
    ax.text(x0 + bar / 2, y0, z.min() + 0.06 * r, f"{bar:g} mm", fontsize=7, ha="center", va="bottom")
    ax.set_box_aspect((1, 1, 1), zoom=zoom)
    ax.set_xticklabels([])
    ax.set_yticklabels([])
    ax.set_zticklabels([])
    ax.view_init(elev=10, azim=-75)


SCALE_BARS_MM = (50, 100, 200, 250, 500, 1000, 2000, 5000)  # round lengths a scale bar may take


def scale_bar_mm(side_mm: float, fraction: float = 0.4) -> float:
    """The longest round length (SCALE_BARS_MM) at most `fraction` of a plot side of `side_mm`
    millimetres; the shortest one when even that is longer."""
    fitting = [b for b in SCALE_BARS_MM if b <= fraction * side_mm]
    return float(fitting[-1] if fitting else SCALE_BARS_MM[0])


CAMERA_EYE = {"x": 0.35, "y": -1.9, "z": 0.55}  # from the photo's camera side (depth < 0), a little above


def _plot_axes(joints_mm: np.ndarray) -> np.ndarray:
    """Camera-frame mm (..., 3) (x right, y down, z away) -> plot axes (..., 3): right, depth, up."""
    p = np.asarray(joints_mm, dtype=np.float64)
    return np.stack([p[..., 0], p[..., 2], -p[..., 1]], -1)


def _limb_lines(p: np.ndarray) -> dict[str, tuple[list, list, list]]:
    """Per body side, x/y/z lists of the edges of one (16, 3) plot-axes skeleton, None between edges."""
    lines: dict[str, tuple[list, list, list]] = {side: ([], [], []) for side in COLOURS}
    for a, b in MPII16.edges:
        xs, ys, zs = lines[_side(a, b)]
        for k, coords in enumerate((xs, ys, zs)):
            coords += [p[a, k], p[b, k], None]
    return lines


def _skeleton_traces(p: np.ndarray) -> list:
    """Three Scatter3d traces (right, left, centre) of one plot-axes skeleton (16, 3)."""
    import plotly.graph_objects as go

    return [go.Scatter3d(x=x, y=y, z=z, mode="lines+markers", name=SIDE_LABELS[side], showlegend=True,
                         line={"color": COLOURS[side], "width": 6}, marker={"size": 3})
            for side, (x, y, z) in _limb_lines(p).items()]


def _scene_box(p: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(centre (3,), half-range, ground height) that keep every finite joint of (..., 16, 3) in a cube."""
    pts = p.reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(1)]
    if len(pts) == 0:
        return np.zeros(3), 1000.0, -1000.0
    lo, hi = pts.min(0), pts.max(0)
    half = max(float((hi - lo).max()) / 2 * PLOT_MARGIN, 1.0)
    return (lo + hi) / 2, half, float(lo[2])


def _ground_and_layout(p: np.ndarray, title: str) -> tuple[object, dict]:
    """A grey ground plane at the lowest joint and a layout with equal axes and a camera facing the person."""
    import plotly.graph_objects as go

    centre, half, ground = _scene_box(p)
    gx = [centre[0] - half, centre[0] + half]
    gy = [centre[1] - half, centre[1] + half]
    plane = go.Surface(x=gx, y=gy, z=[[ground, ground], [ground, ground]], showscale=False, opacity=0.35,
                       colorscale=[[0, "lightgrey"], [1, "lightgrey"]], hoverinfo="skip", name="ground")
    axis = {c: {"range": [centre[k] - half, centre[k] + half], "title": t}
            for k, (c, t) in enumerate((("xaxis", "x (mm)"), ("yaxis", "depth (mm)"), ("zaxis", "up (mm)")))}
    layout = {"title": title, "margin": {"l": 0, "r": 0, "t": 40, "b": 0},
              "legend": {"orientation": "h", "x": 0.5, "xanchor": "center", "y": 1.0, "yanchor": "bottom"},
              "scene": {**axis, "aspectmode": "cube",
                        "camera": {"eye": CAMERA_EYE, "up": {"x": 0, "y": 0, "z": 1}, "center": {"x": 0, "y": 0, "z": 0}}}}
    return plane, layout


def skeleton_figure_plotly(joints_mm: np.ndarray, title: str = ""):
    """An interactive plotly 3D figure of (16, 3) camera-frame mm joints.

    Equal axes that hold the whole skeleton, a ground plane under the lowest joint, and a
    camera looking at the person from the side of the photo's camera.
    """
    import plotly.graph_objects as go

    p = _plot_axes(joints_mm)
    plane, layout = _ground_and_layout(p, title)
    return go.Figure(data=[plane, *_skeleton_traces(p)], layout=layout)


MAX_ANIMATION_FRAMES = 600  # a longer sequence is shown at evenly spaced frames (a page of every frame would not play)


def animation_frames(count: int, max_frames: int = MAX_ANIMATION_FRAMES) -> np.ndarray:
    """Indices of the frames an animation of `count` frames shows: all of them up to `max_frames`,
    else `max_frames` evenly spaced ones, the first and the last included."""
    if count <= max_frames:
        return np.arange(count)
    return np.unique(np.rint(np.linspace(0, count - 1, max_frames)).astype(int))


def animated_skeleton_figure(joints_mm: np.ndarray, frame_times_s: np.ndarray | None = None, title: str = "",
                             max_frames: int = MAX_ANIMATION_FRAMES):
    """A plotly 3D figure of a sequence (T, 16, 3) mm with a slider and play/pause: one plotly frame per
    entry, or per `animation_frames` entry when T > `max_frames` (the slider names the sequence's own
    frame numbers, and play keeps the sequence's pace).

    Axes and ground are fixed over the whole sequence so the person stays in view.
    """
    import plotly.graph_objects as go

    p = _plot_axes(joints_mm)  # (T, 16, 3)
    if p.ndim != 3 or p.shape[0] == 0:
        raise ValueError(f"joints_mm must have shape (T, 16, 3) with T >= 1, got {np.shape(joints_mm)}")
    shown = animation_frames(len(p), max_frames)
    times = (np.arange(len(p)) if frame_times_s is None else np.asarray(frame_times_s))[shown]
    plane, layout = _ground_and_layout(p, title)
    frames = [go.Frame(data=_skeleton_traces(p[t]), traces=[1, 2, 3], name=str(t)) for t in shown]
    # the mean gap between shown frames, so that playing them all takes the sequence's own time: shown frames
    # 1 and 2 source frames apart in turn (900 frames shown as 600) have a median gap of 2, 1.33 x too slow
    step_ms = 100 if len(times) < 2 else max(int(1000 * float(times[-1] - times[0]) / (len(times) - 1)), 20)
    play = {"label": "play", "method": "animate",
            "args": [None, {"frame": {"duration": step_ms, "redraw": True}, "fromcurrent": True,
                            "transition": {"duration": 0}}]}
    pause = {"label": "pause", "method": "animate",
             "args": [[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}]}
    slider = {"active": 0, "currentvalue": {"prefix": "frame "}, "pad": {"t": 30},
              "steps": [{"label": f"{t}", "method": "animate",
                         "args": [[str(t)], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"}]}
                        for t in shown]}
    layout["updatemenus"] = [{"type": "buttons", "buttons": [play, pause], "x": 0.05, "y": 0.05}]
    layout["sliders"] = [slider]
    return go.Figure(data=[plane, *_skeleton_traces(p[0])], frames=frames, layout=layout)


STILL_HEIGHT_IN, STILL_ZOOM = 3.6, 1.35  # the still pictures' height (inches) and 3D box zoom (see _still_figure)


def _printable(text: str) -> str:
    """`text` with each control character (possible in a user's file name, which the demo's titles show)
    as U+FFFD: the SVG still copies titles into XML, where most control characters are not allowed."""
    return "".join(ch if ch.isprintable() or ch == "\n" else "\ufffd" for ch in text)


def _still_figure(joints_mm: np.ndarray, titles: list[str], suptitle: str = ""):
    """A matplotlib Figure (no pyplot) of one or more (16, 3) mm skeletons side by side,
    each under its title, all under `suptitle` when given."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    poses = np.asarray(joints_mm, dtype=np.float64).reshape(-1, MPII16.num_joints, 3)
    fig = Figure(figsize=(4 * len(poses), STILL_HEIGHT_IN))  # no pyplot: leaves the notebook's or terminal's backend alone
    FigureCanvasAgg(fig)
    # Each 3D box is drawn STILL_ZOOM x matplotlib's size, and the panels reach the figure's foot: at
    # matplotlib's defaults a quarter of the picture was blank between the ground and the key.
    fig.subplots_adjust(bottom=0.02, top=0.84 if suptitle else 0.9)  # a suptitle's line above the titles
    for i, (pose, title) in enumerate(zip(poses, titles)):
        ax = fig.add_subplot(1, len(poses), i + 1, projection="3d")
        plot_skeleton_3d(ax, pose, zoom=STILL_ZOOM)
        ax.set_title(_printable(title), fontsize=9)
    if suptitle:
        fig.suptitle(_printable(suptitle), fontsize=11)
    skeleton_key(fig, joints=False)  # plot_skeleton_3d draws the bones only
    return fig


def skeleton_figure_3d_png(joints_mm: np.ndarray, path: str | Path, title: str = "") -> Path:
    """A static matplotlib PNG of the 3D skeleton (for places without JavaScript); returns the path."""
    path = resolve(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _still_figure(joints_mm, [title]).savefig(path, dpi=100, bbox_inches="tight")
    return path


MAX_STILLS = 4  # frames of a sequence shown in its still picture


class InteractiveWithStill:
    """A plotly figure that carries a still picture of itself (SVG) for viewers without JavaScript.

    Jupyter (JupyterLab, VS Code) shows the interactive figure; GitHub's notebook view,
    `jupyter nbconvert --to html` and other static viewers, which cannot draw plotly's
    mimetype, show the picture instead. `.figure` is the plotly figure itself.

    The still is SVG, not PNG: JupyterLab's plotly renderer (the jupyterlab-plotly extension
    that ships with plotly) shows a bundle's `image/png` in place of the figure and draws the
    figure only once the pointer is over that picture, at another size and in plotly's look.
    It reads no `image/svg+xml`, so there the figure is drawn at once; static viewers take SVG
    as readily as PNG, and the vector still is the smaller of the two.
    """

    def __init__(self, figure, svg: str, description: str, height_px: int = 0):
        self.figure, self.svg, self.description, self.height_px = figure, svg, description, height_px

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        import plotly.io as pio

        spec = self.figure.to_dict()
        if self.height_px and "height" not in spec["layout"]:
            # only on the page: JupyterLab's renderer draws a figure without a height 360 px high, while
            # the HTML files (write_html) fill their browser window
            spec["layout"]["height"] = self.height_px
        bundle = dict(pio.renderers["plotly_mimetype"].to_mimebundle(spec))
        bundle[STILL_MIMETYPE] = self.svg
        bundle["text/plain"] = self.description
        return bundle


STILL_MIMETYPE = "image/svg+xml"  # the mimetype of InteractiveWithStill's still (never image/png: see there)
# notebook_skeleton's figure height on the page, and notebook_skeleton_sequence's (its play buttons and slider below)
NOTEBOOK_HEIGHT_PX, NOTEBOOK_SEQUENCE_HEIGHT_PX = 480, 580


def _svg_text(fig) -> str:
    """A matplotlib figure as SVG text, the same text for the same figure (no date, a fixed salt for
    the clip-path ids), so that a re-run notebook's diff shows only what changed. Text is drawn as
    paths: no font is needed where it is shown."""
    import io

    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "pose3d", "svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    return buffer.getvalue()


def notebook_skeleton(joints_mm: np.ndarray, title: str = "") -> InteractiveWithStill:
    """`skeleton_figure_plotly` for a notebook page: interactive in Jupyter, a still picture elsewhere."""
    return InteractiveWithStill(skeleton_figure_plotly(joints_mm, title=title),
                                _svg_text(_still_figure(joints_mm, [title])), f"3D skeleton: {title}",
                                NOTEBOOK_HEIGHT_PX)


def notebook_skeleton_sequence(joints_mm: np.ndarray, frame_times_s: np.ndarray | None = None,
                               title: str = "") -> InteractiveWithStill:
    """`animated_skeleton_figure` for a notebook page; its still shows up to MAX_STILLS evenly spaced frames."""
    figure = animated_skeleton_figure(joints_mm, frame_times_s, title=title)
    poses = np.asarray(joints_mm, dtype=np.float64)
    picked = np.unique(np.linspace(0, len(poses) - 1, min(MAX_STILLS, len(poses))).round().astype(int))
    labels = [f"frame {t}" + ("" if frame_times_s is None else f", {float(frame_times_s[t]):.2f} s") for t in picked]
    return InteractiveWithStill(figure, _svg_text(_still_figure(poses[picked], labels, suptitle=title)),
                                f"3D skeleton sequence: {title} ({len(poses)} frames)", NOTEBOOK_SEQUENCE_HEIGHT_PX)


def save_figure(fig, figures_dir: str | Path, name: str, dpi: int = 120) -> Path:
    """Save a matplotlib figure as `<figures_dir>/<name>.png` (project-rooted path); return the path."""
    out = resolve(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def write_png(fig, path: str | Path, dpi: int = 120, **savefig_kwargs) -> Path:
    """Write a matplotlib figure to `path` as PNG atomically (an interrupt never leaves half a file),
    then close it (also when writing fails); return the path. For the committed records that
    commands write (sweep.png, ablation.png, diagnose-depth --figure)."""
    import matplotlib.pyplot as plt

    from ..engine.atomic_io import atomic_write

    try:
        return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi, **savefig_kwargs), binary=True)
    finally:
        plt.close(fig)


# COLOURS as RGB (0-255) for drawing on images with OpenCV (in RGB order: the images are RGB)
RGB_COLOURS = {side: tuple(int(h[i:i + 2], 16) for i in (1, 3, 5)) for side, h in COLOURS.items()}


def draw_skeleton_2d(image_rgb: np.ndarray, joints_px: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """A copy of an (H, W, 3) uint8 RGB image with the (16, 2) pixel skeleton drawn on it."""
    import cv2

    out = np.ascontiguousarray(image_rgb).copy()
    valid = np.ones(len(joints_px), bool) if valid is None else np.asarray(valid, bool)
    thickness = max(1, round(max(out.shape[:2]) / 150))
    pts = np.round(np.asarray(joints_px, dtype=np.float64) * 16).astype(np.int64)  # 4 fractional bits
    for a, b in MPII16.edges:
        if valid[a] and valid[b]:
            cv2.line(out, tuple(map(int, pts[a])), tuple(map(int, pts[b])), RGB_COLOURS[_side(a, b)],
                     thickness, cv2.LINE_AA, shift=4)
    for j in np.flatnonzero(valid):
        cv2.circle(out, tuple(map(int, pts[j])), (thickness + 1) * 16, (255, 255, 255), -1, cv2.LINE_AA, shift=4)
    return out


def write_html(fig, path: str | Path, plotlyjs: str | Path | None = None) -> Path:
    """Write a plotly figure as HTML that opens offline.

    Without `plotlyjs` plotly.js is embedded (a self-contained file of about 4.8 MB); with
    it the page loads that plotly.min.js file (written by `write_plotlyjs`) through a
    relative link, so many pages share one copy.
    """
    import os

    path = resolve(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    include = True if plotlyjs is None else Path(os.path.relpath(resolve(plotlyjs), path.parent)).as_posix()
    fig.write_html(str(path), include_plotlyjs=include, full_html=True, auto_play=False)
    return path


def write_plotlyjs(folder: str | Path) -> Path:
    """Write plotly.min.js (the installed plotly's own copy) into `folder`; returns its path.

    Written atomically, and again whenever the file there is not that copy (cut short by a
    kill or a full disk, or another plotly's): every page of the folder loads it.
    """
    from plotly.offline import get_plotlyjs

    from ..engine.atomic_io import atomic_write

    path = resolve(folder) / "plotly.min.js"
    script = get_plotlyjs().encode("utf-8")
    if not (path.is_file() and path.stat().st_size == len(script) and path.read_bytes() == script):
        atomic_write(path, lambda f: f.write(script), binary=True)
    return path


def demo_panel(items: list[tuple], height_in: float = 3.2):
    """A row of images with their 2D skeletons: items are (title, RGB image, (16, 2) px joints[, box]).

    A box is the demo JSON's {"center_px", "side_px"}; it is drawn as a dashed square.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, axes = plt.subplots(1, len(items), figsize=(height_in * 1.2 * len(items), height_in), squeeze=False)
    for ax, (title, image, joints, *box) in zip(axes[0], items):
        ax.imshow(image)
        plot_skeleton_2d(ax, joints)
        if box and box[0] is not None:
            (cx, cy), side = box[0]["center_px"], box[0]["side_px"]
            ax.add_patch(Rectangle((cx - side / 2, cy - side / 2), side, side, fill=False, ls="--", ec="yellow", lw=1.2))
        ax.set_xlim(0, image.shape[1])
        ax.set_ylim(image.shape[0], 0)
        ax.set_title(f"{title}\n{image.shape[1]}x{image.shape[0]}", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    skeleton_key(fig, box=any(box and box[0] is not None for _, _, _, *box in items))
    return fig


def sample_grid(splits: dict, samples_per_split: int, seed: int, input_size: int, heatmap_size: int):
    """Figure: for each split (name -> dataset) a row of `samples_per_split` random network inputs with
    their 2D labels drawn back in crop pixels (unannotated or out-of-crop joints skipped), and for a
    split with 3D labels (an H36MDataset) a second row with the same samples' 3D ground truth.

    The k-th split draws its samples with seed `seed + k`, so splits of the same size do not show
    the same indices."""
    import matplotlib.pyplot as plt

    from .. import camera
    from ..data.actions import UNKNOWN_ACTION, dataset_action_name
    from ..data.h36m import H36MDataset

    panels = [(name, kind) for name, ds in splits.items() for kind in ("image", "3d")
              if kind == "image" or isinstance(ds, H36MDataset)]
    panel_in = 2.2  # each panel's side, inches
    fig = plt.figure(figsize=(panel_in * samples_per_split, panel_in * len(panels)))
    split_seed = {name: seed + k for k, name in enumerate(splits)}
    for r, (name, kind) in enumerate(panels):
        ds = splits[name]
        rows = np.random.default_rng(split_seed[name]).choice(len(ds), min(samples_per_split, len(ds)), replace=False)
        for c, i in enumerate(rows):
            s = ds[int(i)]
            position = (len(panels), samples_per_split, r * samples_per_split + c + 1)
            action = "" if int(s["action"]) == UNKNOWN_ACTION else f" {dataset_action_name(ds, s['action'])}"
            if kind == "image":
                ax = fig.add_subplot(*position)
                # enlarged (the cpu profile's 64 px crops in their panel): the network's own pixels, not a
                # smoothed enlargement, also half the PNG (1.0 MB of the cpu profile's 01 page were this figure's
                # interpolated crops); shrunk (the paper's 256 px): matplotlib's antialiasing, no dropped rows
                enlarged = input_size < panel_in * fig.dpi
                ax.imshow(s["image"].transpose(1, 2, 0), interpolation="nearest" if enlarged else "antialiased")
                plot_skeleton_2d(ax, camera.normalized_to_crop_px(s["joints_2d"], input_size, heatmap_size),
                                 s["valid"], linewidth=1)
                ax.set_title(f"{name} #{int(s['index'])}{action}", fontsize=7)
                ax.axis("off")
            else:
                ax = fig.add_subplot(*position, projection="3d")
                plot_skeleton_3d(ax, s["joints_3d_mm"])
                ax.set_title(f"{name} #{int(s['index'])}, 3D", fontsize=7)
    fig.tight_layout()
    skeleton_key(fig)
    return fig


# Axis labels of data.stats.pose_statistics' keys
POSE_STATISTIC_LABELS = {"knee_flexion_deg": "knee bend (degrees, both knees' mean)",
                         "elbow_flexion_deg": "elbow bend (degrees, both elbows' mean)",
                         "torso_tilt_deg": "torso tilt from the image's vertical (degrees)",
                         "depth_range_mm": "depth range of the joints (mm)"}


# The unit of a pose_statistics key, from its suffix: (plural, singular: the histograms' density is per one)
STATISTIC_UNITS = {"_deg": ("degrees", "degree"), "_mm": ("mm", "mm")}


def statistic_unit(key: str) -> tuple[str, str]:
    """('degrees', 'degree') or ('mm', 'mm') for a data.stats.pose_statistics key ('knee_flexion_deg');
    ('', '') for another key."""
    return next((unit for suffix, unit in STATISTIC_UNITS.items() if key.endswith(suffix)), ("", ""))


def plot_pose_statistics(stats: dict[str, dict[str, np.ndarray]]):
    """Overlaid histograms (densities), one panel per statistic of `data.stats.pose_statistics`, one
    colour per named set of poses ({"lab (h36m train)": stats, ...}; a set named after its domain
    takes DOMAIN_COLOURS' colour), each set's mean with its unit in the legend."""
    import matplotlib.pyplot as plt

    keys = list(next(iter(stats.values())))
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.2))
    for ax, key in zip(np.atleast_1d(axes), keys):
        unit, per = statistic_unit(key)
        bins = np.linspace(0, max(float(s[key].max()) for s in stats.values()), 25)
        for name, s in stats.items():
            ax.hist(s[key], bins=bins, alpha=0.6, density=True, color=domain_colour(name),
                    label=f"{name}: mean {np.mean(s[key]):.0f}" + (f" {unit}" if unit else ""))
        ax.set_xlabel(POSE_STATISTIC_LABELS.get(key, key), fontsize=8)
        ax.set_ylabel(f"density (per {per})" if per else "density", fontsize=8)
        ax.legend(fontsize=7)
    fig.suptitle("Pose statistics: " + " against ".join(stats), fontsize=10)
    fig.tight_layout()
    return fig


class MarkdownText:
    """Markdown for a notebook page (a table, a note) that stays readable where markdown is not
    rendered: its plain-text form is the markdown source (IPython's Markdown shows its class name)."""

    def __init__(self, text: str):
        self.text = text

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

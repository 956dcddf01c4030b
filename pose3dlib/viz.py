"""Skeleton figures (matplotlib and plotly) and saving figures."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .paths import resolve
from .skeleton import MPII16

RIGHT = {"r_ankle", "r_knee", "r_hip", "r_wrist", "r_elbow", "r_shoulder"}
LEFT = {"l_ankle", "l_knee", "l_hip", "l_wrist", "l_elbow", "l_shoulder"}
COLOURS = {"right": "tab:red", "left": "tab:blue", "centre": "tab:green"}


def _side(a: int, b: int) -> str:
    names = {MPII16.joint_names[a], MPII16.joint_names[b]}
    return "right" if names & RIGHT else "left" if names & LEFT else "centre"


def plot_skeleton_2d(ax, joints: np.ndarray, valid: np.ndarray | None = None, linewidth: float = 2.0) -> None:
    """Draw (16, 2) image-pixel joints on a matplotlib axis (right red, left blue); skip invalid joints."""
    valid = np.ones(len(joints), bool) if valid is None else np.asarray(valid, bool)
    for a, b in MPII16.edges:
        if valid[a] and valid[b]:
            ax.plot(joints[[a, b], 0], joints[[a, b], 1], color=COLOURS[_side(a, b)], lw=linewidth)
    ax.scatter(joints[valid, 0], joints[valid, 1], s=8, c="white", edgecolors="black", linewidths=0.5, zorder=3)


def plot_skeleton_3d(ax, joints_mm: np.ndarray) -> None:
    """Draw (16, 3) camera-frame mm joints on a 3D axis, viewed upright (camera y down -> plot z up)."""
    p = np.asarray(joints_mm, dtype=np.float64)
    x, y, z = p[:, 0], p[:, 2], -p[:, 1]  # plot axes: right, depth, up
    for a, b in MPII16.edges:
        ax.plot(x[[a, b]], y[[a, b]], z[[a, b]], color=COLOURS[_side(a, b)], lw=2)
    r = max(np.ptp(x), np.ptp(y), np.ptp(z)) / 2 + 1e-6
    for setter, v in ((ax.set_xlim, x), (ax.set_ylim, y), (ax.set_zlim, z)):
        mid = (v.max() + v.min()) / 2
        setter(mid - r, mid + r)
    ax.set_xticklabels([])
    ax.set_yticklabels([])
    ax.set_zticklabels([])
    ax.view_init(elev=10, azim=-75)


def skeleton_figure_plotly(joints_mm: np.ndarray, title: str = ""):
    """An interactive plotly 3D figure of (16, 3) camera-frame mm joints."""
    import plotly.graph_objects as go

    p = np.asarray(joints_mm, dtype=np.float64)
    fig = go.Figure()
    for a, b in MPII16.edges:
        fig.add_trace(go.Scatter3d(x=p[[a, b], 0], y=p[[a, b], 2], z=-p[[a, b], 1], mode="lines+markers",
                                   line={"color": COLOURS[_side(a, b)].replace("tab:", ""), "width": 6},
                                   marker={"size": 3}, showlegend=False))
    fig.update_layout(title=title, scene={"aspectmode": "data", "xaxis_title": "x (mm)",
                                          "yaxis_title": "depth (mm)", "zaxis_title": "up (mm)"})
    return fig


def save_figure(fig, figures_dir: str | Path, name: str, dpi: int = 120) -> Path:
    """Save a matplotlib figure as `<figures_dir>/<name>.png` (project-rooted path); return the path."""
    out = resolve(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


# BGR-free RGB colours (0-255) for drawing on images with OpenCV, same sides as COLOURS.
RGB_COLOURS = {"right": (220, 40, 40), "left": (40, 90, 230), "centre": (40, 170, 60)}


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


def write_html(fig, path: str | Path) -> Path:
    """Write a plotly figure as a self-contained HTML file (plotly.js embedded: opens offline)."""
    path = resolve(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)
    return path


def demo_panel(items: list[tuple[str, np.ndarray, np.ndarray]], height_in: float = 3.2):
    """A row of images with their 2D skeletons: items are (title, RGB image, (16, 2) px joints)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(items), figsize=(height_in * 1.2 * len(items), height_in), squeeze=False)
    for ax, (title, image, joints) in zip(axes[0], items):
        ax.imshow(image)
        plot_skeleton_2d(ax, joints)
        ax.set_title(f"{title}\n{image.shape[1]}x{image.shape[0]}", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig

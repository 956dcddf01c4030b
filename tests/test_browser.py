"""A real-browser check: the demo's plotly HTML, opened offline in headless Chromium, shows a skeleton."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


def screenshot(html_path, png_path, tmp_path, size=(900, 700)) -> np.ndarray:
    """Render a local HTML file with headless Chromium and return the screenshot (H,W,3) BGR."""
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'chrome-profile'}", f"--window-size={size[0]},{size[1]}",
           "--virtual-time-budget=8000", f"--screenshot={png_path}", f"file://{html_path}"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    img = cv2.imread(str(png_path))
    assert img is not None, f"chromium wrote no screenshot to {png_path}"
    return img


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="chromium not installed (make test installs it)")
def test_plotly_skeleton_renders_in_chromium(tmp_path):
    assert CHROMIUM is not None, "chromium missing in CI: the Makefile's `browser` target should have installed it"
    from pose3dlib.plots.viz import skeleton_figure_plotly, write_html
    from pose3dlib.skeleton import MPII16

    rng = np.random.default_rng(0)
    joints = rng.normal(scale=300.0, size=(MPII16.num_joints, 3))
    html = write_html(skeleton_figure_plotly(joints), tmp_path / "skeleton_3d.html")
    text = html.read_text()
    assert "<script" in text and not re.search(r"<script[^>]*src=", text), "the HTML must embed plotly.js to open offline"
    assert len(text) > 1_000_000  # plotly.js itself is embedded

    img = screenshot(html, tmp_path / "shot.png", tmp_path)
    empty = write_html(skeleton_figure_plotly(np.full((MPII16.num_joints, 3), np.nan)), tmp_path / "empty.html")
    img_empty = screenshot(empty, tmp_path / "empty.png", tmp_path)

    def coloured_fraction(bgr):  # the skeleton's red/blue/green limbs are saturated; axes are grey
        hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)
        return float(((hsv[..., 1] > 80) & (hsv[..., 2] > 60)).mean())

    drawn, blank = coloured_fraction(img), coloured_fraction(img_empty)
    assert drawn > 0.001 and drawn > 3 * blank, f"no skeleton visible: {drawn:.5f} coloured vs {blank:.5f} for an empty scene"

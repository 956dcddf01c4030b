"""Training-curve figures: whole scales from zero, only the terms a stage trains."""
from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pytest

from pose3dlib.plots.curves import plot_training_curves


def _write_log(path, depth_weight: float):
    records = []
    for step in (10, 20, 30):
        heatmap, depth = 0.02 / step, 0.5 / step
        records.append({"kind": "train", "stage": 1, "epoch": 1, "step": step, "lr": 1e-3,
                        "loss": heatmap + depth_weight * depth, "heatmap": heatmap, "depth": depth, "geometric": 3.0})
    for step, pck in ((0, 85.5), (30, 86.2)):
        records.append({"kind": "val", "stage": 1, "epoch": step // 30, "step": step, "pck": pck,
                        "mpjpe_mm": 60.0 + step / 10, "mpjpe_mean_pose_mm": 139.0})
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _labels(ax) -> list[str]:
    return [line.get_label() for line in ax.lines]


def test_stage_without_depth_shows_one_loss_and_pck_from_zero(tmp_path):
    log = _write_log(tmp_path / "metrics.jsonl", depth_weight=0.0)
    fig = plot_training_curves(log, weights={"heatmap": 1.0, "depth": 0.0, "geometric": 0.0})
    try:
        ax_loss, ax_val, ax_mm = fig.axes
        assert _labels(ax_loss) == ["heatmap"]  # the total equals it: drawn once; untrained terms hidden
        assert ax_val.get_ylim() == (0.0, 100.0)  # half a point of PCK must not fill the panel
        assert not ax_mm.lines and not ax_mm.axison  # no depth trained: no MPJPE axis
    finally:
        plt.close(fig)


def test_depth_stage_shows_the_total_and_mpjpe_from_zero(tmp_path):
    log = _write_log(tmp_path / "metrics.jsonl", depth_weight=0.1)
    fig = plot_training_curves(log, weights={"heatmap": 1.0, "depth": 0.1, "geometric": 0.0})
    try:
        ax_loss, ax_val, ax_mm = fig.axes
        assert _labels(ax_loss) == ["loss", "heatmap", "depth"]
        low, high = ax_mm.get_ylim()
        assert low == 0.0 and high == pytest.approx(1.05 * 139.0)
        assert ax_val.get_ylim() == (0.0, 100.0)
        assert any("true 2D" in label for label in _labels(ax_mm))
    finally:
        plt.close(fig)

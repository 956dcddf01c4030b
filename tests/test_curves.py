"""Training-curve figures: whole scales from zero, only the terms a stage trains, labelled with their
weights, each term in its own colour, the validation splits named."""
from __future__ import annotations

import json

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import pytest

from pose3dlib.plots.curves import LOSS_COLOURS, plot_training_curves


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
        # the total equals it: drawn once; untrained terms hidden
        assert _labels(ax_loss) == ["heatmap (unweighted; x1 in loss, its only term)"]
        assert ax_val.get_ylim() == (0.0, 100.0)  # half a point of PCK must not fill the panel
        assert not ax_mm.lines and not ax_mm.axison  # no depth trained: no MPJPE axis
        assert ax_val.get_title() == "validation\n2D: PCK@0.1 on MPII-format val"  # no 3D split named
        assert ax_val.get_ylabel() == "PCK (%), higher is better"
    finally:
        plt.close(fig)


def test_depth_stage_shows_the_total_and_mpjpe_from_zero(tmp_path):
    log = _write_log(tmp_path / "metrics.jsonl", depth_weight=0.1)
    fig = plot_training_curves(log, weights={"heatmap": 1.0, "depth": 0.1, "geometric": 0.0})
    try:
        ax_loss, ax_val, ax_mm = fig.axes
        # the logged terms are unweighted, the total weighted: the labels say by how much
        assert _labels(ax_loss) == ["loss (weighted total)", "heatmap (unweighted; x1 in loss)",
                                    "depth (unweighted; x0.1 in loss)"]
        low, high = ax_mm.get_ylim()
        assert low == 0.0 and high == pytest.approx(1.05 * 139.0)
        assert ax_val.get_ylim() == (0.0, 100.0)
        assert any("true 2D" in label for label in _labels(ax_mm))
        assert ax_val.get_title() == "validation\n2D: PCK@0.1 on MPII-format val; 3D: MPJPE on lab val"
        assert ax_mm.get_ylabel() == "MPJPE (mm), lower is better"
        # both legends under their axes, off the curves
        for ax in (ax_loss, ax_val):
            anchor = ax.get_legend().get_bbox_to_anchor().transformed(ax.transAxes.inverted())
            assert anchor.y1 < 0
    finally:
        plt.close(fig)


def test_each_loss_term_keeps_its_colour_from_stage_to_stage(tmp_path):
    """The same term in the same colour whichever terms a stage shows (not the colour cycle's next one)."""
    colours = {}
    for depth_weight, weights in ((0.0, {"heatmap": 1.0, "depth": 0.0, "geometric": 0.0}),
                                  (0.1, {"heatmap": 1.0, "depth": 0.1, "geometric": 0.0}), (0.1, None)):
        fig = plot_training_curves(_write_log(tmp_path / f"m{depth_weight}{weights is None}.jsonl", depth_weight),
                                   weights=weights)
        try:
            for line in fig.axes[0].lines:
                term = line.get_label().split(" ")[0]
                colours.setdefault(term, set()).add(mcolors.to_hex(line.get_color()))
            if weights is None:  # without the weights only what is known: the terms are unweighted
                assert "depth (unweighted)" in _labels(fig.axes[0])
        finally:
            plt.close(fig)
    assert set(colours) == {"loss", "heatmap", "depth", "geometric"}
    assert colours == {term: {mcolors.to_hex(LOSS_COLOURS[term])} for term in colours}
    assert len({c for cs in colours.values() for c in cs}) == 4  # four terms, four colours

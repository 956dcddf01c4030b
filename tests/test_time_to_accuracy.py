"""pose3dlib.evaluation.time_to_accuracy and the PCKh of training validation."""
from __future__ import annotations

import json
import math

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from pose3dlib import metrics
from pose3dlib.engine.errors import Pose3DError
from pose3dlib.engine.validation import head_size_in_crop, pckh_hits
from pose3dlib.evaluation.time_to_accuracy import (
    plot_time_to_accuracy,
    time_to_accuracy_rows,
    time_to_accuracy_table,
)


def _write_stage(root, stage: int, vals: list[dict], seconds: list[float]) -> None:
    sdir = root / f"stage{stage}"
    sdir.mkdir(parents=True)
    with open(sdir / "metrics.jsonl", "w") as f:
        f.write(json.dumps({"kind": "train", "stage": stage, "epoch": 1, "step": 5, "loss": 1.0}) + "\n")
        for i, v in enumerate(vals):
            f.write(json.dumps({"kind": "val", "stage": stage, "epoch": i, "step": 10 * i, **v}) + "\n")
    with open(sdir / "wallclock.jsonl", "w") as f:
        for i, s in enumerate(seconds):
            f.write(json.dumps({"stage": stage, "epoch": i, "step": 10 * i, "train_seconds": s}) + "\n")


def test_minutes_accumulate_over_stages(tmp_path) -> None:
    _write_stage(tmp_path, 1, [{"pckh": 1.0}, {"pckh": 40.0}], [0.0, 120.0])
    _write_stage(tmp_path, 2, [{"pckh": 40.0, "p1_lab_mm": 300.0, "p1_wild_mm": 400.0},
                               {"pckh": 39.0, "p1_lab_mm": 150.0, "p1_wild_mm": 250.0}], [0.0, 60.0])
    rows = time_to_accuracy_rows(tmp_path, stages=(1, 2))
    assert [r["minutes"] for r in rows] == [0.0, 2.0, 2.0, 3.0]
    assert [r["stage"] for r in rows] == [1, 1, 2, 2]
    assert math.isnan(rows[1]["p1_lab_mm"]) and rows[3]["p1_wild_mm"] == 250.0
    table = time_to_accuracy_table(rows)
    assert "| 2 | 1 | 3.00 | 39.0 | 150.0 | 250.0 |" in table and "| 1 | 1 | 2.00 | 40.0 | - | - |" in table
    fig = plot_time_to_accuracy(rows, baselines_mm={"p1_lab_mm": 200.0, "p1_wild_mm": 300.0})
    assert len(fig.axes) == 2 and len(fig.axes[1].lines) == 5  # 2 series, 2 baselines, 1 stage boundary
    assert fig.axes[0].get_ylim() == (0.0, 100.0) and fig.axes[1].get_ylim()[0] == 0.0  # whole scales
    assert [t.get_text().strip() for t in fig.axes[0].texts] == ["stage 2"]  # the boundary is named
    # which way is better; PCKh is training validation's (the table's column labels stay as they are)
    assert fig.axes[0].get_ylabel() == "PCKh@0.5, MPII val (%), higher is better\n(training validation, one pass)"
    assert fig.axes[1].get_ylabel() == "Protocol #1 (mm), lower is better"
    assert "PCKh@0.5, MPII val (%) |" in table
    plt.close(fig)


def _colours(artists) -> dict[str, set[str]]:
    """Label -> the colours of the artists with that label (lines or bar containers)."""
    out: dict[str, set[str]] = {}
    for a in artists:
        colours = [p.get_facecolor() for p in a.patches] if hasattr(a, "patches") else [a.get_color()]
        out.setdefault(a.get_label(), set()).update(mcolors.to_hex(c) for c in colours)
    return out


def test_lab_and_wild_have_the_same_colours_in_every_figure():
    """Time to accuracy, the viewpoint diagnosis and the pose statistics draw lab and wild data in
    viz.DOMAIN_COLOURS, whichever comes first (not the colour cycle's, by position)."""
    from pose3dlib.evaluation.diagnose import TILT_BINS
    from pose3dlib.plots.diagnostics import plot_by_trunk_tilt
    from pose3dlib.plots.viz import DOMAIN_COLOURS, plot_pose_statistics

    lab, wild = (mcolors.to_hex(DOMAIN_COLOURS[d]) for d in ("lab", "wild"))
    assert lab != wild
    rows = [{"stage": 2, "epoch": e, "minutes": e, "pckh": 50.0, "p1_lab_mm": 100.0, "p1_wild_mm": 200.0} for e in (0, 1)]
    tta = plot_time_to_accuracy(rows, baselines_mm={"p1_lab_mm": 200.0, "p1_wild_mm": 300.0})
    bins = [{"tilt": label, "n": 20, "p1_mm": 1.0, "mean_pose_p1_mm": 2.0, "sign_agreement": 0.5} for label, _, _ in TILT_BINS]
    tilt = plot_by_trunk_tilt({"wild_val": bins, "lab_val": bins})  # wild first: the colours still follow the domain
    poses = {"knee_flexion_deg": np.array([10.0, 20.0])}
    stats = plot_pose_statistics({"wild (wild_test)": poses, "lab (h36m train)": poses})
    try:
        assert _colours(tta.axes[1].lines) == {
            "Protocol #1, lab val (mm)": {lab}, "mean pose, lab val (mm)": {lab},
            "Protocol #1, wild val (mm)": {wild}, "mean pose, wild val (mm)": {wild}}
        for ax in tilt.axes:
            assert _colours(ax.containers) == {"wild_val": {wild}, "lab_val": {lab}}
        hists = stats.axes[0].containers  # a histogram's label is on its first bar
        assert {c.patches[0].get_label(): _colours([c])[c.get_label()] for c in hists} == {"wild (wild_test): mean 15 degrees": {wild},
                                                      "lab (h36m train): mean 15 degrees": {lab}}
    finally:
        for fig in (tta, tilt, stats):
            plt.close(fig)


def test_missing_wallclock_names_the_file(tmp_path) -> None:
    _write_stage(tmp_path, 1, [{"pckh": 1.0}], [0.0])
    (tmp_path / "stage1" / "wallclock.jsonl").unlink()
    with pytest.raises(Pose3DError, match="wallclock.jsonl"):
        time_to_accuracy_rows(tmp_path, stages=(1,))


def test_validation_pckh_equals_metrics_pckh_for_similarity_crops() -> None:
    # Crop px = s * image px + t (a similarity), so PCKh measured in the crop with the head
    # size scaled by s equals PCKh in image pixels (pose3dlib.metrics.pckh).
    rng = np.random.default_rng(0)
    n, size = 20, 64
    s = rng.uniform(0.2, 0.5, n)
    t = rng.uniform(-50, 10, (n, 2))
    crop = np.zeros((n, 2, 3))
    crop[:, 0, 0] = crop[:, 1, 1] = s
    crop[:, :, 2] = t
    gt_img = rng.uniform(100, 250, (n, 16, 2))
    pred_img = gt_img + rng.normal(0, 8, (n, 16, 2))
    head = rng.uniform(20, 40, n)
    valid = rng.random((n, 16)) > 0.1
    to_norm = lambda p: (p * s[:, None, None] + t[:, None, :]) / (size / 2.0)  # noqa: E731 (offsets cancel)
    hits, counted = pckh_hits(torch.from_numpy(to_norm(pred_img)), torch.from_numpy(to_norm(gt_img)),
                              torch.from_numpy(valid), head_size_in_crop(torch.from_numpy(head), torch.from_numpy(crop)),
                              size)
    expected = metrics.pckh(pred_img, gt_img, head, valid, threshold=0.5)
    assert counted == int(valid.sum())
    assert hits / counted == pytest.approx(expected, abs=1e-12)
    assert 0.1 < expected < 0.9  # the noise makes some joints miss and some hit

"""`diagnose-depth`: the 2D x depth error decomposition and the depth statistics."""
from __future__ import annotations

import numpy as np
import pytest

from pose3dlib import decode
from pose3dlib.engine.errors import Pose3DError
from pose3dlib.evaluation import diagnose
from pose3dlib.evaluation.evaluate import Predictions
from pose3dlib.skeleton import DEPTH_ROOT

BONE_SUM = 4000.0


def _people(n: int = 12, seed: int = 0):
    """Root-relative 3D skeletons with bone sum BONE_SUM and their exact weak-perspective 2D."""
    rng = np.random.default_rng(seed)
    mm = rng.normal(scale=300.0, size=(n, 16, 3))
    mm -= mm[:, DEPTH_ROOT:DEPTH_ROOT + 1]
    mm *= (BONE_SUM / decode.bone_length_sum(mm))[:, None, None]
    scale = rng.uniform(1e-4, 3e-4, size=n)  # normalised crop units per mm, one per sample
    centre = rng.uniform(-0.2, 0.2, size=(n, 1, 2))
    return mm, mm[..., :2] * scale[:, None, None] + centre, scale


def _predictions(joints_2d, depth, gt_2d, gt_mm, has_depth=None) -> Predictions:
    n = len(gt_mm)
    return Predictions(joints_2d=joints_2d, depth=depth, gt_joints_2d=gt_2d, gt_joints_3d_mm=gt_mm,
                       valid=np.ones((n, 16), bool), has_depth=np.ones(n, bool) if has_depth is None else has_depth,
                       action=np.zeros(n, int), subject=np.zeros(n, int), index=np.arange(n),
                       crop=np.tile(np.eye(2, 3), (n, 1, 1)))


def test_true_depth_is_the_depth_in_the_crops_units():
    mm, gt_2d, scale = _people()
    camera_frame = mm + np.array([120.0, -40.0, 5000.0])  # the root anywhere: only root-relative depth counts
    np.testing.assert_allclose(diagnose.true_depth_normalised(gt_2d, camera_frame), mm[..., 2] * scale[:, None],
                               rtol=1e-6, atol=1e-12)
    flat = mm.copy()
    flat[4] = 0.0
    with pytest.raises(Pose3DError, match="sample 4"):
        diagnose.true_depth_normalised(gt_2d, flat)
    with pytest.raises(Pose3DError, match=r"expected \(N, 16, 2\) and \(N, 16, 3\)"):
        diagnose.true_depth_normalised(gt_2d[:, :15], mm)


def _p1(rows):
    return {(r["2d"], r["depth"]): r["p1_mm"] for r in rows}


def test_decomposition_puts_each_error_where_it_was_made():
    mm, gt_2d, scale = _people()
    true_depth = mm[..., 2] * scale[:, None] + 0.3  # an offset: only root-relative depth counts
    exact = _p1(diagnose.error_decomposition(_predictions(gt_2d, true_depth, gt_2d, mm), BONE_SUM))
    assert list(exact) == list(diagnose.COMBINATIONS)
    assert max(exact.values()) < 1e-3  # exact weak perspective, equal bone sums: nothing is lost (float32 targets)

    rng = np.random.default_rng(1)
    bad_depth = true_depth + rng.normal(scale=0.05, size=true_depth.shape)
    rows = diagnose.error_decomposition(_predictions(gt_2d, bad_depth, gt_2d, mm), BONE_SUM)
    p1 = _p1(rows)
    assert p1["own", "own"] == pytest.approx(p1["true", "own"]) and p1["own", "own"] > 10
    assert p1["own", "true"] < 1e-3 and p1["true", "true"] < 1e-3
    own = rows[0]
    assert own["abs_depth_mm"] > own["abs_x_mm"] and own["abs_depth_mm"] > own["abs_y_mm"]

    bad_2d = gt_2d + rng.normal(scale=0.02, size=gt_2d.shape)
    p1 = _p1(diagnose.error_decomposition(_predictions(bad_2d, true_depth, gt_2d, mm), BONE_SUM))
    assert p1["own", "own"] == pytest.approx(p1["own", "true"]) and p1["own", "own"] > 10
    assert p1["true", "own"] < 1e-3


def test_depth_statistics_spread_correlation_and_signs():
    mm, gt_2d, scale = _people(40)
    true_depth = mm[..., 2] * scale[:, None]
    half = diagnose.depth_statistics(_predictions(gt_2d, 0.5 * true_depth - 1.0, gt_2d, mm))
    assert half["spread_ratio"] == pytest.approx(0.5)
    assert half["correlation"] == pytest.approx(1.0)
    assert half["sign_agreement"] == 1.0
    joints = [j for j in range(16) if j != DEPTH_ROOT]
    assert half["true_mean_abs_depth_mm"] == pytest.approx(np.median(np.abs(mm[:, joints, 2]).mean(1)))
    mirrored = diagnose.depth_statistics(_predictions(gt_2d, -true_depth, gt_2d, mm))
    assert mirrored["correlation"] == pytest.approx(-1.0) and mirrored["sign_agreement"] == 0.0
    with pytest.raises(Pose3DError, match="constant"):
        diagnose.depth_statistics(_predictions(gt_2d, np.zeros_like(true_depth), gt_2d, mm))


def test_trunk_tilt_by_hand_and_the_rows_per_tilt():
    from pose3dlib.metrics import mpjpe_per_sample

    thorax = diagnose.THORAX
    mm = np.zeros((3, 16, 3))
    mm[:, thorax] = [[0, -500, 0], [0, -500, -500], [0, -500, 500]]  # upright; toward the camera; away
    np.testing.assert_allclose(diagnose.trunk_tilt_deg(mm), [0.0, 45.0, -45.0])
    with pytest.raises(Pose3DError, match=r"samples \[0\]"):
        diagnose.trunk_tilt_deg(np.zeros((1, 16, 3)))
    with pytest.raises(Pose3DError, match=r"expected \(N, 16, 3\)"):
        diagnose.trunk_tilt_deg(np.zeros((1, 15, 3)))

    # bins by hand, just either side of their bounds; two samples without 3D truth on top
    angles = [-120.0, -120.0, -1e-4] + [1e-4] * 6 + [14.999] * 6 + [15.001] * 3 + [45.001, 45.001, 100.0, 170.0]
    n = len(angles) + 2
    people, gt_2d, scale = _people(n, seed=6)
    a = np.radians(angles)
    people[:len(angles), thorax] = 400.0 * np.stack([np.zeros_like(a), -np.cos(a), -np.sin(a)], axis=1)
    gt_2d = people[..., :2] * scale[:, None, None]
    np.testing.assert_allclose(diagnose.trunk_tilt_deg(people[:len(angles)]), angles, atol=1e-9)
    has = np.arange(n) < len(angles)
    people[~has] = 0.0  # 2D-only samples: no 3D truth, no tilt
    rng = np.random.default_rng(2)
    depth = people[..., 2] * scale[:, None] + rng.normal(scale=0.03, size=(n, 16))
    own_2d = gt_2d + rng.normal(scale=0.01, size=gt_2d.shape)
    train = people[:len(angles)][::-1] + 10.0
    rows = diagnose.by_trunk_tilt(_predictions(own_2d, depth, gt_2d, people, has), BONE_SUM, train)
    assert [(r["tilt"], r["n"]) for r in rows] == [("< 0", 3), ("0-15", 12), ("15-30", 3), (">= 45", 4)]

    zero_to_15 = np.arange(3, 15)
    row = rows[1]
    error = mpjpe_per_sample(decode.reconstruct_3d(own_2d[zero_to_15], depth[zero_to_15], BONE_SUM), people[zero_to_15])
    assert row["p1_mm"] == pytest.approx(error.mean())
    true_2d = mpjpe_per_sample(decode.reconstruct_3d(gt_2d[zero_to_15], depth[zero_to_15], BONE_SUM), people[zero_to_15])
    assert row["p1_true_2d_mm"] == pytest.approx(true_2d.mean()) and row["p1_true_2d_mm"] != row["p1_mm"]
    baseline = mpjpe_per_sample(np.repeat(train.mean(0, keepdims=True), 12, 0), people[zero_to_15])
    assert row["mean_pose_p1_mm"] == pytest.approx(baseline.mean())
    joints = [j for j in range(16) if j != DEPTH_ROOT]
    relative = (depth - depth[:, DEPTH_ROOT:DEPTH_ROOT + 1])[zero_to_15][:, joints]
    truth = (people[..., 2] * scale[:, None])[zero_to_15][:, joints]
    assert row["spread_ratio"] == pytest.approx(relative.std() / truth.std(), rel=1e-5)
    assert 0.5 < row["sign_agreement"] <= 1.0
    for small in (rows[0], rows[2], rows[3]):  # fewer than MIN_BIN_SAMPLES: no depth statistics
        assert small["n"] < diagnose.MIN_BIN_SAMPLES
        assert all(np.isnan(small[k]) for k in diagnose.STATISTICS)
        assert np.isfinite(small["p1_mm"])
    with pytest.raises(Pose3DError, match=r"\(M, 16, 3\) with M > 0"):
        diagnose.by_trunk_tilt(_predictions(own_2d, depth, gt_2d, people, has), BONE_SUM, train[:0])


def test_samples_without_3d_truth_are_left_out_and_none_is_an_error():
    mm, gt_2d, scale = _people()
    depth = mm[..., 2] * scale[:, None]
    has = np.arange(len(mm)) < 6
    broken, no_truth = depth.copy(), mm.copy()
    broken[~has] += np.random.default_rng(4).normal(size=broken[~has].shape)  # garbage where there is no 3D truth
    no_truth[~has] = 0.0  # as the 2D-only samples store it
    rows = diagnose.error_decomposition(_predictions(gt_2d, broken, gt_2d, no_truth, has), BONE_SUM)
    assert max(_p1(rows).values()) < 1e-3
    stats = diagnose.depth_statistics(_predictions(gt_2d, broken, gt_2d, no_truth, has))
    assert stats["correlation"] == pytest.approx(1.0) and stats["sign_agreement"] == 1.0
    with pytest.raises(Pose3DError, match="no samples with 3D"):
        diagnose.error_decomposition(_predictions(gt_2d, depth, gt_2d, mm, np.zeros(len(mm), bool)), BONE_SUM)


def test_the_command_reports_each_split_and_names_a_bad_one(tmp_path, smoke_data, capsys):
    import torch

    from pose3dlib.config import config_to_dict, load_config
    from pose3dlib.engine.checkpoint import make_checkpoint, save_checkpoint
    from pose3dlib.model import build_model
    from pose3dlib.tools.cli import main

    cfg = load_config("configs/smoke.yaml", smoke_data)
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "net.pt", make_checkpoint(
        model_state=build_model(cfg.model).state_dict(), config=config_to_dict(cfg), stage=3, bone_sum_mm=BONE_SUM,
        extra={"finished": True}))
    sets = [a for o in smoke_data for a in ("--set", o)]
    figure = tmp_path / "viewpoint.png"
    assert main(["diagnose-depth", "--config", "configs/smoke.yaml", "--checkpoint", str(ckpt),
                 "--splits", "lab_val,wild_test", "--limit", "8", "--figure", str(figure), *sets]) == 0
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert f"wrote {figure}" in out
    assert "### lab_val" in out and "### wild_test" in out
    for src in ("own, own", "true, own", "own, true", "true, true"):
        assert out.count(f"| {src} |") == 2
    assert out.count("| trunk tilt toward the camera (deg) |") == 2
    assert main(["diagnose-depth", "--config", "configs/smoke.yaml", "--checkpoint", str(ckpt),
                 "--splits", "lab_val,bogus", *sets]) == 2
    assert "'lab_val,bogus': unknown bogus; expected a comma-separated list of lab_val, wild_val" in capsys.readouterr().err
    assert main(["diagnose-depth", "--config", "configs/smoke.yaml", "--checkpoint", str(ckpt),
                 "--figure", str(tmp_path / "viewpoint.jpg"), *sets]) == 2
    assert "expected a .png path" in capsys.readouterr().err
    assert main(["diagnose-depth", "--config", "configs/smoke.yaml", "--checkpoint", str(ckpt),
                 "--limit", "-1", *sets]) == 2
    assert "--limit -1" in capsys.readouterr().err
    assert main(["diagnose-depth", "--config", "configs/smoke.yaml", "--checkpoint", str(ckpt),
                 "--splits", "lab_val,lab_val", "--limit", "4", *sets]) == 0
    assert capsys.readouterr().out.count("### lab_val") == 1
    assert main(["diagnose-depth", "--config", "configs/smoke.yaml", "--checkpoint", str(ckpt),
                 "--splits", "lab_val,wild_val", *sets, "--set", "data.wild_val_dir=''"]) == 2
    captured = capsys.readouterr()
    assert "data.wild_val_dir is empty" in captured.err and "### lab_val" not in captured.out  # checked first


def test_the_viewpoint_figure_has_a_bar_per_split_and_bin():
    import matplotlib
    matplotlib.use("Agg")
    from pose3dlib.plots.diagnostics import plot_by_trunk_tilt

    rows = {"lab_val": [{"tilt": "0-15", "n": 5, "p1_mm": 50.0, "mean_pose_p1_mm": 200.0, "sign_agreement": 0.9}],
            "wild_val": [{"tilt": label, "n": 3, "p1_mm": 150.0, "mean_pose_p1_mm": 200.0, "sign_agreement": 0.7}
                         for label, _, _ in diagnose.TILT_BINS]}
    fig = plot_by_trunk_tilt(rows, target_ratio=0.75)
    ratio_ax, sign_ax = fig.axes
    # lab_val's only bin has 5 samples: hatched; wild_val's have 3: hatched too (a value but too few samples)
    assert all(bar.get_hatch() for c in ratio_ax.containers for bar in c if bar.get_height() > 0)
    heights = sorted(round(p.get_height(), 3) for p in ratio_ax.patches if np.isfinite(p.get_height()))
    assert heights == [0.25] + [0.75] * len(diagnose.TILT_BINS)
    assert sorted(round(p.get_height(), 1) for p in sign_ax.patches if np.isfinite(p.get_height())) == \
        [70.0] * len(diagnose.TILT_BINS) + [90.0]
    # a bin with samples but too few for the sign statistic says so instead of showing an empty slot
    small = {"lab_val": [{"tilt": "15-30", "n": 6, "p1_mm": 60.0, "mean_pose_p1_mm": 200.0, "sign_agreement": np.nan}]}
    fig = plot_by_trunk_tilt(small)
    def notes(ax) -> list[str]:
        return [t.get_text() for t in ax.texts if "too few" in t.get_text()]

    assert notes(fig.axes[1]) == ["n=6:\ntoo few"] and notes(fig.axes[0]) == []
    # ... and its ratio bar, which has a value, is hatched as the legend explains: the same bins on both panels
    (ratio_bars,) = fig.axes[0].containers
    assert [bool(bar.get_hatch()) for bar in ratio_bars] == [label == "15-30" for label, _, _ in diagnose.TILT_BINS]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["mean pose", "lab_val", f"n < {diagnose.MIN_BIN_SAMPLES}: no sign statistic"]
    assert fig.axes[0].get_ylabel() == "Protocol #1 / mean pose's\n(lower is better)"
    (mean_pose,) = [line for line in fig.axes[0].lines if line.get_label() == "mean pose"]
    assert list(mean_pose.get_ydata()) == [1.0, 1.0]  # the ratio of the mean pose itself
    with pytest.raises(ValueError, match="no splits"):
        plot_by_trunk_tilt({})


def test_a_figure_path_under_a_file_fails_before_the_diagnosis(tmp_path, capsys):
    """`--figure afile/d.png` printed the whole diagnosis, then `afile: File exists`."""
    from pose3dlib.tools import cli

    (tmp_path / "afile").write_text("a file")
    status = cli.main(["diagnose-depth", "--config", "configs/smoke.yaml", "--checkpoint", str(tmp_path / "none.pt"),
                       "--figure", str(tmp_path / "afile" / "d.png")])
    err = capsys.readouterr().err.strip()
    assert status == 2 and err == (f"error: --figure {tmp_path / 'afile' / 'd.png'}: cannot write there "
                                   f"({tmp_path / 'afile'}: is a file, where a folder is needed (File exists))")

"""Evaluation tables: per-action means, the 'all' average, and the protocol set."""
from __future__ import annotations

import numpy as np
import pytest

from pose3dlib import metrics
from pose3dlib.evaluation import evaluate


def test_all_is_the_mean_of_per_action_means():
    errors = {"p1_mpjpe": np.array([10.0, 20.0, 30.0, 100.0])}
    action = np.array([2, 2, 2, 3])
    rows = evaluate.per_action_rows("stage3", "lab_test", errors, action, {2: "Directions", 3: "Discussion"})
    by_action = {r["action"]: r["value"] for r in rows}
    assert by_action == pytest.approx({"Directions": 20.0, "Discussion": 100.0, "all": 60.0})
    assert {r["stage"] for r in rows} == {"stage3"} and {r["split"] for r in rows} == {"lab_test"}


def test_scores_3d_covers_every_protocol_and_matches_metrics():
    rng = np.random.default_rng(0)
    gt = rng.normal(scale=200.0, size=(8, 16, 3))
    gt -= gt[:, 6:7]
    pred = gt + rng.normal(scale=30.0, size=gt.shape)
    scores = evaluate.scores_3d(pred, gt, 4296.99)
    assert set(scores) == set(evaluate.PROTOCOLS_3D)
    np.testing.assert_allclose(scores["p1_mpjpe"], metrics.mpjpe_per_sample(pred, gt))
    np.testing.assert_allclose(scores["p2_pa_mpjpe"], metrics.pa_mpjpe_per_sample(pred, gt))
    np.testing.assert_allclose(scores["n_mpjpe"], metrics.n_mpjpe_per_sample(pred, gt))
    np.testing.assert_allclose(scores["paper"], metrics.paper_protocol_mpjpe_per_sample(pred, gt, 4296.99))


# ----------------------------------------------------------------------------- evaluate_run on a smoke run

@pytest.fixture(scope="module")
def random_run(tmp_path_factory):
    """A run folder whose stage1 is a random smoke network, trained at 64 px, with data dirs that do not exist."""
    import torch

    from pose3dlib.config import config_to_dict, load_config
    from pose3dlib.engine.checkpoint import make_checkpoint, save_checkpoint
    from pose3dlib.engine.runs import checkpoint_path
    from pose3dlib.model import build_model

    run = tmp_path_factory.mktemp("random_run")
    trained = load_config("configs/smoke.yaml", ["data.h36m_dir=/nonexistent/h36m", "data.mpii_dir=/nonexistent/mpii"])
    torch.manual_seed(0)
    model = build_model(trained.model)
    for scale in (3000.0, 6000.0):
        save_checkpoint(checkpoint_path(run / str(int(scale)), 1), make_checkpoint(
            model_state=model.state_dict(), config=config_to_dict(trained), stage=1, bone_sum_mm=scale))
    return run


def _all(rows, split, protocol):
    return next(r["value"] for r in rows if r["stage"] == "stage1" and r["split"] == split
                and r["protocol"] == protocol and r["action"] == "all")


def test_eval_options_and_data_come_from_the_evaluation_config(random_run, smoke_data):
    from pose3dlib.config import load_config

    def score(*overrides, run="3000"):
        cfg = load_config("configs/smoke.yaml", [*smoke_data, *overrides])
        return evaluate.evaluate_run(cfg, random_run / run, stages=[1], limit=8, progress=False, device="cpu")

    base = score()  # the checkpoint's own data dirs do not exist: the evaluation's are used
    # flip_test from the evaluation's overrides changes the numbers
    flipped = score("eval.flip_test=false")
    assert _all(base, "lab_test", "p1_mpjpe") != _all(flipped, "lab_test", "p1_mpjpe")
    # the input geometry comes from the checkpoint, not from the evaluation config
    other_geometry = score("data.input_size=128", "data.heatmap_size=32")
    assert [r["value"] for r in other_geometry] == [r["value"] for r in base]
    # one PCKh threshold per row: label and value agree
    loose, strict = score("eval.pckh_threshold=2.0"), score("eval.pckh_threshold=0.05")
    assert {r["protocol"] for r in loose if r["split"] == "mpii_val"} == {"pckh@2"}
    assert {r["protocol"] for r in strict if r["split"] == "mpii_val"} == {"pckh@0.05"}
    assert _all(loose, "mpii_val", "pckh@2") > _all(strict, "mpii_val", "pckh@0.05")
    # the millimetre scale is the checkpoint's: doubling it doubles the reconstruction, the
    # paper evaluator (which rescales the prediction itself) does not move
    doubled = score(run="6000")
    assert _all(doubled, "lab_test", "paper") == pytest.approx(_all(base, "lab_test", "paper"), rel=1e-6)
    assert _all(doubled, "lab_test", "p1_mpjpe") != pytest.approx(_all(base, "lab_test", "p1_mpjpe"), rel=1e-3)


def test_a_checkpoint_without_a_mm_scale_is_refused_by_name(tmp_path, smoke_data):
    from pose3dlib.config import config_to_dict, load_config
    from pose3dlib.engine.checkpoint import make_checkpoint, save_checkpoint
    from pose3dlib.engine.errors import CheckpointError
    from pose3dlib.engine.runs import checkpoint_path
    from pose3dlib.model import build_model

    cfg = load_config("configs/smoke.yaml", smoke_data)
    path = save_checkpoint(checkpoint_path(tmp_path, 1), make_checkpoint(
        model_state=build_model(cfg.model).state_dict(), config=config_to_dict(cfg), stage=1))
    with pytest.raises(CheckpointError, match=f"{path}.*bone_sum_mm"):
        evaluate.evaluate_run(cfg, tmp_path, stages=[1], limit=4, progress=False, device="cpu")

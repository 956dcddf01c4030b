"""Evaluation tables: per-action means, the 'all' average, and the protocol set."""
from __future__ import annotations

import numpy as np
import pytest

from pose3dlib import evaluate, metrics


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

"""The official MPI-INF-3DHP protocol (3DPCK@150 mm, AUC) against a plain-loop implementation."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pose3dlib import metrics
from pose3dlib.skeleton import MPII16

# The official evaluation's 14 joints by name, grouped as in its tables (written out here
# independently of skeleton.MPI3DHP_EVAL_GROUPS).
GROUPS_BY_NAME = {
    "head_top": ["head_top"], "neck": ["upper_neck"], "shoulders": ["r_shoulder", "l_shoulder"],
    "elbows": ["r_elbow", "l_elbow"], "wrists": ["r_wrist", "l_wrist"], "hips": ["r_hip", "l_hip"],
    "knees": ["r_knee", "l_knee"], "ankles": ["r_ankle", "l_ankle"],
}


def _loop_pck_auc(pred, gt, names):
    hits, auc_hits, count = 0, 0, 0
    for n in range(len(pred)):
        for name in names:
            j = MPII16.joint_names.index(name)
            d = math.sqrt(sum((float(pred[n, j, c]) - float(gt[n, j, c])) ** 2 for c in range(3)))
            count += 1
            hits += d < 150
            auc_hits += sum(d < t for t in range(0, 151, 5)) / 31
    return hits / count, auc_hits / count


def test_pck3d_3dhp_against_loop():
    rng = np.random.default_rng(4)
    gt = rng.normal(0, 300, (40, 16, 3))
    pred = gt + rng.normal(0, 1, (40, 16, 3)) * rng.uniform(10, 150, (40, 16, 1))
    out = metrics.pck3d_3dhp(pred, gt)
    all_names = [nm for names in GROUPS_BY_NAME.values() for nm in names]
    pck, auc = _loop_pck_auc(pred, gt, all_names)
    assert 0.1 < pck < 0.95 and out["n"] == 40
    assert out["pck"] == pytest.approx(pck, abs=1e-9) and out["auc"] == pytest.approx(auc, abs=1e-9)
    assert set(out["groups"]) == set(GROUPS_BY_NAME)
    for group, names in GROUPS_BY_NAME.items():
        gp, ga = _loop_pck_auc(pred, gt, names)
        assert out["groups"][group]["pck"] == pytest.approx(gp, abs=1e-9), group
        assert out["groups"][group]["auc"] == pytest.approx(ga, abs=1e-9), group


def test_pck3d_3dhp_strict_threshold_and_excluded_joints():
    gt = np.zeros((1, 16, 3))
    pred = gt.copy()
    pred[0, :, 0] = 150.0  # exactly at the threshold: not correct (strict <)
    pred[0, MPII16.index("r_wrist"), 0] = 149.999
    pred[0, MPII16.index("pelvis"), 0] = 0.0
    pred[0, MPII16.index("thorax"), 0] = 0.0
    out = metrics.pck3d_3dhp(pred, gt)
    assert out["pck"] == pytest.approx(1 / 14)  # only the right wrist, of 14 joints
    assert out["groups"]["wrists"]["pck"] == pytest.approx(0.5)
    perfect = metrics.pck3d_3dhp(gt, gt)
    assert perfect["pck"] == 1.0 and perfect["auc"] == pytest.approx(30 / 31)  # 0 mm never counts
    far = gt.copy()
    far[0, MPII16.index("pelvis")] = 1e4  # pelvis and thorax are not evaluated
    far[0, MPII16.index("thorax")] = 1e4
    assert metrics.pck3d_3dhp(far, gt)["pck"] == 1.0


def test_pck3d_3dhp_needs_16_joints():
    with pytest.raises(ValueError, match=r"\(N, 16, 3\)"):
        metrics.pck3d_3dhp(np.zeros((2, 17, 3)), np.zeros((2, 17, 3)))


def test_scene_rows_are_valid_frame_weighted_and_tabled():
    from pose3dlib.evaluation.eval_3dhp import mpi3dhp_rows, mpi3dhp_table

    rng = np.random.default_rng(5)
    counts = {1: 7, 2: 3, 3: 5, 5: 4}  # TS4 and TS6 absent (a partial download)
    sequence = np.concatenate([np.full(c, s) for s, c in counts.items()])
    gt = rng.normal(0, 300, (len(sequence), 16, 3))
    pred = gt + rng.normal(0, 90, gt.shape)
    rows = mpi3dhp_rows("stage3", "wild_test", pred, gt, sequence)
    got = {(r["protocol"], r["action"]): r["value"] for r in rows}
    per_seq = {s: metrics.pck3d_3dhp(pred[sequence == s], gt[sequence == s])["pck"] for s in counts}
    gs = (per_seq[1] * counts[1] + per_seq[2] * counts[2]) / (counts[1] + counts[2])
    assert got[("3dhp_pck", "green_screen")] == pytest.approx(gs)
    assert got[("3dhp_pck", "no_green_screen")] == pytest.approx(per_seq[3])
    overall = sum(per_seq[s] * c for s, c in counts.items()) / sum(counts.values())
    assert got[("3dhp_pck", "all")] == pytest.approx(overall)
    # outdoor is TS5 + TS6, and TS6 is absent: exactly the TS5 frames
    outdoor = metrics.pck3d_3dhp(pred[sequence == 5], gt[sequence == 5])
    assert got[("3dhp_pck", "outdoor")] == pytest.approx(outdoor["pck"])
    assert got[("3dhp_auc", "outdoor")] == pytest.approx(outdoor["auc"])
    # every present scene (3), sequence (4) and 'all': two rows each; no activity rows without activities
    assert len(rows) == 2 * (3 + 4 + 1)
    assert got[("3dhp_pck", "TS3")] == pytest.approx(per_seq[3]) and ("3dhp_pck", "TS4") not in got
    rows.append({"stage": "stage3", "split": "wild_test", "protocol": "p1_mpjpe", "action": "all", "value": 123.456})
    table = mpi3dhp_table(rows, "wild_test").splitlines()
    assert table[0].startswith("| stage | GS PCK | noGS PCK | Outdoor PCK | All PCK | All AUC | P1")
    # 3DPCK and AUC shown in percent, the millimetre columns as they are
    assert table[2].startswith(f"| stage3 | {100 * gs:.1f} |") and "| 123.5 |" in table[2] and table[2].endswith("| - |")
    with pytest.raises(ValueError, match="1..6"):
        mpi3dhp_rows("s", "w", pred, gt, np.full(len(sequence), 7))


def test_activity_rows_pool_each_activity_and_are_tabled():
    from pose3dlib.data.actions import MPI3DHP_ACTIVITIES
    from pose3dlib.evaluation import eval_3dhp

    rng = np.random.default_rng(9)
    sequence = np.array([1, 1, 2, 3, 3, 5, 5, 6, 6, 6])
    activity = np.array([1, 3, 3, 1, 7, 3, 1, 1, 3, 7])
    gt = rng.normal(0, 300, (len(sequence), 16, 3))
    pred = gt + rng.normal(0, 80, gt.shape)
    rows = eval_3dhp.mpi3dhp_rows("stage3", "wild_test", pred, gt, sequence, activity=activity)
    got = {(r["protocol"], r["action"]): r["value"] for r in rows}
    for a in (1, 3, 7):  # an activity's value pools its frames over every sequence
        expected = metrics.pck3d_3dhp(pred[activity == a], gt[activity == a])
        assert got[("3dhp_pck", MPI3DHP_ACTIVITIES[a])] == pytest.approx(expected["pck"])
        assert got[("3dhp_auc", MPI3DHP_ACTIVITIES[a])] == pytest.approx(expected["auc"])
    assert ("3dhp_pck", MPI3DHP_ACTIVITIES[2]) not in got  # no frame of activity 2
    report = eval_3dhp.mpi3dhp_report(rows, "wild_test")
    assert report.startswith(eval_3dhp.mpi3dhp_table(rows, "wild_test"))
    activity_table = report.split("Per activity (3DPCK@150mm, %):\n\n")[1].split("\n\n")[0].splitlines()
    assert activity_table[0] == "| stage | Standing/Walking PCK | Sitting PCK | Miscellaneous PCK | All PCK | All AUC |"
    assert activity_table[2].startswith(f"| stage3 | {100 * got[('3dhp_pck', 'Standing/Walking')]:.1f} |")
    sequence_table = report.split("Per sequence (3DPCK@150mm, %):\n\n")[1].splitlines()
    assert sequence_table[0] == "| stage | TS1 PCK | TS2 PCK | TS3 PCK | TS5 PCK | TS6 PCK | All PCK | All AUC |"
    assert "Not the whole test set: TS4 not among the scored frames" in report  # TS4 has no frame here
    whole = eval_3dhp.mpi3dhp_rows("stage3", "wild_test", pred, gt, np.array([1, 1, 2, 3, 3, 4, 5, 6, 6, 6]))
    assert "Not the whole test set" not in eval_3dhp.mpi3dhp_report(whole, "wild_test")
    with pytest.raises(ValueError, match="activities are 1..7"):
        eval_3dhp.mpi3dhp_rows("s", "w", pred, gt, sequence, activity=np.full(len(sequence), 8))
    with pytest.raises(ValueError, match="activity must have shape"):
        eval_3dhp.mpi3dhp_rows("s", "w", pred, gt, sequence, activity=activity[:3])


def test_evaluate_prints_the_scene_table_only_for_3dhp_splits(monkeypatch, tmp_path, capsys):
    """`evaluate` prints the paper's per-scene table for a split scored with the 3DHP protocol, and none otherwise."""
    from types import SimpleNamespace

    from pose3dlib.evaluation import eval_3dhp, evaluate

    rng = np.random.default_rng(2)
    gt = rng.normal(0, 300, (6, 16, 3))
    scene_rows = eval_3dhp.mpi3dhp_rows("stage3", "wild_test", gt + rng.normal(0, 60, gt.shape), gt,
                                        np.array([1, 1, 3, 3, 5, 6]))
    lab = {"stage": "stage3", "split": "lab_test", "protocol": "p1_mpjpe", "action": "all", "value": 90.0}
    assert eval_3dhp.mpi3dhp_tables([lab]) == {}
    tables = eval_3dhp.mpi3dhp_tables([lab, *scene_rows])
    assert list(tables) == ["wild_test"] and tables["wild_test"] == eval_3dhp.mpi3dhp_report(scene_rows, "wild_test")
    assert tables["wild_test"].startswith(eval_3dhp.mpi3dhp_table(scene_rows, "wild_test"))

    for rows, expect in (([lab], False), ([lab, *scene_rows], True)):
        monkeypatch.setattr(evaluate, "evaluate_run", lambda *a, rows=rows, **k: rows)
        monkeypatch.setattr("pose3dlib.config.load_config", lambda *a, **k: SimpleNamespace(profile="mine"))  # a config of its own
        args = SimpleNamespace(config="c.yaml", overrides=[], stages="3", limit=0, run_dir=tmp_path,
                               out=tmp_path / "scores.csv")
        assert evaluate.run(args) == 0
        out = capsys.readouterr().out
        assert ("wild_test: MPI-INF-3DHP official protocol" in out) is expect
        assert (tables["wild_test"] in out) is expect


def test_3dhp_values_are_fractions_like_pckh_and_reported_in_percent():
    """metrics.csv holds one scale for its ratios: PCKh, 3DPCK and AUC in [0, 1]; the results table shows percent."""
    from pose3dlib.evaluation import eval_3dhp
    from pose3dlib.evaluation.evaluate import is_fraction, pckh_protocol
    from pose3dlib.evaluation.report import results_table

    assert all(is_fraction(p) for p in (*eval_3dhp.PROTOCOLS, pckh_protocol(0.5)))
    assert not any(is_fraction(p) for p in ("p1_mpjpe", "p2_pa_mpjpe", "paper", "n_mpjpe"))
    gt = np.random.default_rng(3).normal(0, 300, (8, 16, 3))
    rows = eval_3dhp.mpi3dhp_rows("stage3", "wild_test", gt + 40.0, gt, np.array([1, 2, 3, 4, 5, 6, 1, 2]))
    assert all(0.0 <= r["value"] <= 1.0 for r in rows)
    pck = next(r["value"] for r in rows if r["protocol"] == "3dhp_pck" and r["action"] == "all")
    assert f"{100 * pck:.1f}%" in results_table(rows)


def test_a_metrics_csv_with_3dhp_values_in_percent_is_refused(tmp_path):
    """Files written before the fractions held 3DPCK in percent: read as fractions they would show as 6920%."""
    from pose3dlib.engine.errors import Pose3DError
    from pose3dlib.evaluation.evaluate import read_metrics_csv

    path = tmp_path / "metrics.csv"
    path.write_text("stage,split,protocol,action,value\nstage3,wild_test,3dhp_pck,all,0.692\n")
    assert read_metrics_csv(path)[0]["value"] == 0.692
    path.write_text("stage,split,protocol,action,value\nstage3,wild_test,p1_mpjpe,all,120.5\n"
                    "stage3,wild_test,3dhp_pck,all,69.2\n")
    with pytest.raises(Pose3DError, match=r"line 3: 3dhp_pck is 69\.2, expected a fraction in \[0, 1\]"):
        read_metrics_csv(path)

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


def test_mean_pose_baseline_on_a_hand_computed_case():
    """Two training poses, everything at the pelvis but the right ankle (joint 0), at x = 100 and 300 mm:
    the baseline predicts it at their mean, (200, 0, 0) mm, for every test sample."""
    from pose3dlib.config import EvalConfig

    train = np.zeros((2, 16, 3))
    train[0, 0] = [100.0, 0.0, 0.0]
    train[1, 0] = [300.0, 0.0, 0.0]
    mean = evaluate.mean_pose_prediction(train, 3)
    expected = np.zeros((3, 16, 3))
    expected[:, 0] = [200.0, 0.0, 0.0]
    np.testing.assert_array_equal(mean, expected)

    class Test:  # the two arrays of a test split mean_pose_rows reads
        joints_3d_mm = np.zeros((3, 16, 3), np.float32)
        actions = np.array([2, 2, 5])

        def __len__(self):
            return 3

    gt = Test.joints_3d_mm
    gt[0, 0] = [200.0, 40.0, 30.0]  # ankle 50 mm off (3-4-5): MPJPE 50 / 16 = 3.125
    gt[1, 0] = [200.0, 0.0, 0.0]
    gt[1, 9] = [0.0, -160.0, 0.0]  # ankle right, head top 160 mm off: 160 / 16 = 10
    # sample 2: ankle at the pelvis, 200 mm off: 200 / 16 = 12.5
    names = {2: "Directions", 5: "Greeting"}
    rows = evaluate.mean_pose_rows(train, Test(), EvalConfig(), split="lab_test", action_names=names)
    p1 = {r["action"]: r["value"] for r in rows if r["protocol"] == "p1_mpjpe"}
    # 'all' is the mean of the per-action means, (6.5625 + 12.5) / 2, not the sample mean 8.541...
    assert p1 == pytest.approx({"Directions": (3.125 + 10.0) / 2, "Greeting": 12.5, "all": 9.53125})
    assert {r["stage"] for r in rows} == {"mean_pose"} and {r["split"] for r in rows} == {"lab_test"}
    assert {r["protocol"] for r in rows} == set(evaluate.PROTOCOLS_3D)
    limited = evaluate.mean_pose_rows(train, Test(), EvalConfig(), split="lab_test", action_names=names, limit=2)
    assert {r["action"]: r["value"] for r in limited if r["protocol"] == "p1_mpjpe"} == pytest.approx(
        {"Directions": 6.5625, "all": 6.5625})



def test_mean_pose_baseline_gets_the_official_3dhp_rows_on_a_3dhp_set():
    """On a set with MPI-INF-3DHP `sequences`, the baseline is scored with 3DPCK/AUC too. The mean pose
    is the pelvis but for the right ankle 200 mm off, the truth all at the pelvis: of the protocol's 14
    joints, the ankle misses at every threshold (>= 150 mm) and the 13 others (0 mm off) hit at every
    threshold but 0 mm (a hit is strictly below): PCK 13/14, AUC (30 x 13/14) / 31."""
    from pose3dlib.config import EvalConfig
    from pose3dlib.data.actions import MPI3DHP_ACTIVITIES

    train = np.zeros((2, 16, 3))
    train[:, 0] = [200.0, 0.0, 0.0]

    class Test3DHP:
        joints_3d_mm = np.zeros((3, 16, 3), np.float32)
        actions = np.array([1, 1, 6])  # activities: Standing/Walking, Sports
        sequences = np.array([1, 5, 6])  # green screen, outdoor, outdoor

        def __len__(self):
            return 3

    names = {a: MPI3DHP_ACTIVITIES[a] for a in (1, 6)}
    rows = evaluate.mean_pose_rows(train, Test3DHP(), EvalConfig(), split="wild_test", action_names=names)
    pck = {r["action"]: r["value"] for r in rows if r["protocol"] == "3dhp_pck"}
    auc = {r["action"]: r["value"] for r in rows if r["protocol"] == "3dhp_auc"}
    assert {r["stage"] for r in rows} == {"mean_pose"}
    assert set(pck) == set(auc) == {"green_screen", "outdoor", "TS1", "TS5", "TS6", MPI3DHP_ACTIVITIES[1],
                                    MPI3DHP_ACTIVITIES[6], "all"}
    assert pck["all"] == pytest.approx(13 / 14) and auc["all"] == pytest.approx(30 * 13 / 14 / 31)
    assert pck["TS5"] == pytest.approx(13 / 14) and "TS2" not in pck  # groups without frames have no rows


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
            model_state=model.state_dict(), config=config_to_dict(trained), stage=1, bone_sum_mm=scale,
            extra={"finished": True}))
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
    # the millimetre scale is the checkpoint's: doubling it doubles the reconstruction; the paper
    # evaluator (which rescales the prediction itself), N-MPJPE (least-squares scale) and PA-MPJPE
    # (similarity alignment) are invariant to the prediction's scale, so they do not move
    doubled = score(run="6000")
    assert _all(doubled, "lab_test", "paper") == pytest.approx(_all(base, "lab_test", "paper"), rel=1e-6)
    for protocol in ("n_mpjpe", "p2_pa_mpjpe"):
        assert _all(doubled, "lab_test", protocol) == pytest.approx(_all(base, "lab_test", protocol), rel=1e-9)
    assert _all(doubled, "lab_test", "p1_mpjpe") != pytest.approx(_all(base, "lab_test", "p1_mpjpe"), rel=1e-3)


def test_a_checkpoint_of_another_profile_is_scored_with_a_note_saying_so(random_run, smoke_data, capsys):
    from pose3dlib.config import load_config

    same = load_config("configs/smoke.yaml", smoke_data)
    evaluate.evaluate_run(same, random_run / "3000", stages=[1], limit=2, progress=False, device="cpu")
    assert "note:" not in capsys.readouterr().err
    other = load_config("configs/smoke.yaml", [*smoke_data, "profile=cpu"])
    evaluate.evaluate_run(other, random_run / "3000", stages=[1], limit=2, progress=False, device="cpu")
    err = capsys.readouterr().err
    assert "was trained with the 'smoke' profile, the config is 'cpu'" in err and "3000" in err


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


def test_pckh_by_joint_comes_from_the_evaluations_predictions(random_run, smoke_data):
    from pose3dlib.config import load_config
    from pose3dlib.skeleton import PCKH_BENCHMARK_JOINTS

    cfg = load_config("configs/smoke.yaml", [*smoke_data, "eval.pckh_threshold=2.0"])  # a random network hits some
    run = random_run / "3000"
    by_joint: dict = {}
    rows = evaluate.evaluate_run(cfg, run, stages=[1], limit=8, progress=False, device="cpu", by_joint=by_joint)
    assert list(by_joint) == ["stage1"]
    from pose3dlib.evaluation.report import missing_rows
    assert {r["stage"] for r in rows} == {"mean_pose", "stage1"} and missing_rows(rows) == []  # what report accepts
    scores = by_joint["stage1"]
    # the pooled 16-joint value is the CSV's pckh row, to the CSV's 4 decimals and beyond
    assert scores.all_joints == pytest.approx(_all(rows, "mpii_val", "pckh@2"), abs=1e-12)
    assert scores.per_joint.shape == (16,)
    # the benchmark's mean pools the 14 joints' entries: recompute it from the same predictions
    from pose3dlib.data.mpii import MPIIDataset
    from pose3dlib.engine.device import resolve_device

    model, trained, _ = evaluate.load_stage(run, 1, resolve_device("cpu"))
    data = evaluate.checkpoint_geometry(cfg.data, trained)
    pred, gt, head, annotated = evaluate.mpii_predictions(model, MPIIDataset(data.mpii_dir, "val", data), cfg.eval,
                                                          trained.model.input_format, resolve_device("cpu"), limit=8,
                                                          progress=False)
    keep = list(PCKH_BENCHMARK_JOINTS)
    hit = (np.linalg.norm(pred - gt, axis=-1) <= 2.0 * head[:, None]) & annotated
    assert scores.benchmark == pytest.approx(hit[:, keep].sum() / annotated[:, keep].sum())
    assert scores.all_joints == pytest.approx(hit.sum() / annotated.sum())
    np.testing.assert_allclose(scores.per_joint, hit.sum(0) / annotated.sum(0))


def test_pckh_joint_table_and_figure_show_both_means():
    from pose3dlib.evaluation import report

    per_joint = np.linspace(0.2, 0.95, 16)
    per_joint[3] = np.nan  # a joint never annotated: an empty cell
    by_stage = {"stage1": evaluate.JointPCKh(per_joint, 0.612, 0.587),
                "stage3": evaluate.JointPCKh(np.full(16, 0.5), 0.5, 0.5)}
    table = report.pckh_joint_table(by_stage).splitlines()
    assert table[0] == "| joint | Stage 1 (2D only) | Stage 3 (+geometric) |"
    assert len(table) == 2 + 16 + 2
    assert table[2] == "| r_ankle | 20.0 | 50.0 |" and table[5] == "| l_hip |  | 50.0 |"
    # the pooled means to two decimals, as the CSV's four-decimal fraction: 0.612 -> 61.20
    assert table[-2].endswith("| 61.20 | 50.00 |") and "all 16 joints" in table[-2]
    assert table[-1].endswith("| 58.70 | 50.00 |") and "no pelvis, no thorax" in table[-1]
    fig = report.plot_pckh_per_joint(by_stage)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[0] == "Stage 1 (2D only): 61.20 % (16 joints), 58.70 % (benchmark's 14)"
    assert len(fig.axes[0].patches) == 32


# ----------------------------------------------------------------------------- second pass (eval.recrop_margin)

def _random_network_on_wild(random_run, smoke_data):
    """(model, its trained config, the evaluation's data config, the smoke wild_test split) for the second-pass tests."""
    from pose3dlib.config import load_config
    from pose3dlib.data.h36m import H36MDataset
    from pose3dlib.model import load_model

    cfg = load_config("configs/smoke.yaml", smoke_data)
    model, trained = load_model(str(random_run / "3000" / "stage1" / "last.pt"))
    data = evaluate.checkpoint_geometry(cfg.data, trained)
    return model, trained, data, H36MDataset(data.wild_test_dir, "test", data)


def test_second_pass_crops_around_the_joints_the_first_pass_found(random_run, smoke_data):
    from pose3dlib import camera, decode

    model, trained, data, wild = _random_network_on_wild(random_run, smoke_data)
    size, hm = data.input_size, data.heatmap_size

    def run(margin):
        return evaluate.predict_dataset(model, wild, trained.model.input_format, batch_size=4, limit=6,
                                        recrop_margin=margin, progress=False)

    first, second = run(0.0), run(1.25)
    found = decode.joints_to_image(camera.normalized_to_crop_px(first.joints_2d, size, hm), first.crop)
    lo, hi = found.min(1), found.max(1)
    for k in range(6):
        # the second crop maps the found joints' box centre to the crop centre, 1.25 x their extent to the side
        centre = camera.apply_affine(((lo[k] + hi[k]) / 2)[None], second.crop[k].astype(np.float64))[0]
        np.testing.assert_allclose(centre, [(size - 1) / 2] * 2, atol=1e-3)
        side = 1.25 * (hi[k] - lo[k]).max()
        np.testing.assert_allclose(np.abs(np.linalg.det(second.crop[k, :, :2])), (size / side) ** 2, rtol=1e-4)
        # and differs from the split's own crop (the whole picture)
        assert not np.allclose(second.crop[k], first.crop[k])
    # the 2D ground truth is expressed in the second crop; the 3D ground truth does not depend on the crop
    gt_px = camera.apply_affine(wild.joints_2d_px[0], second.crop[0].astype(np.float64))
    np.testing.assert_allclose(second.gt_joints_2d[0], camera.crop_px_to_normalized(gt_px, size, hm), atol=1e-4)
    np.testing.assert_array_equal(second.gt_joints_3d_mm, first.gt_joints_3d_mm)


def test_crop_fill_is_the_joints_extent_over_the_crop_side():
    from pose3dlib import camera

    joints = np.array([[[100.0, 50.0], [140.0, 90.0], [120.0, 60.0]],   # extent 40 px
                       [[0.0, 0.0], [10.0, 30.0], [5.0, 5.0]]])        # extent 30 px
    crop = np.stack([camera.crop_affine(np.array([120.0, 70.0]), 80.0, 0.0, 64),
                     camera.crop_affine(np.array([5.0, 15.0]), 20.0, 0.0, 32)])
    np.testing.assert_allclose(evaluate.crop_fill(joints, crop, 64)[0], 0.5)
    np.testing.assert_allclose(evaluate.crop_fill(joints[1:], crop[1:], 32), [1.5])  # larger than its crop
    # the ratio is the same at another input resolution of the same box
    np.testing.assert_allclose(evaluate.crop_fill(joints[:1], camera.crop_affine(np.array([120.0, 70.0]), 80.0, 0.0,
                                                                                   256)[None], 256), [0.5])


def test_second_pass_only_where_the_person_fills_little_of_the_crop(random_run, smoke_data):
    model, trained, data, wild = _random_network_on_wild(random_run, smoke_data)

    def run(margin, max_fill=0.0):
        return evaluate.predict_dataset(model, wild, trained.model.input_format, batch_size=4, limit=8,
                                        recrop_margin=margin, recrop_max_fill=max_fill, progress=False)

    first, every = run(0.0), run(1.25)
    fill = evaluate.crop_fill(evaluate.joints_in_image(first, data), first.crop, data.input_size)
    limit = float(fill.min())  # a random network: its joints span most of the crop, a few values
    small = fill <= limit
    assert 0 < small.sum() < len(fill)
    some = run(1.25, limit)
    for name in ("joints_2d", "depth", "gt_joints_2d", "crop", "index"):
        # (another batch composition moves the network's outputs by float rounding only)
        np.testing.assert_allclose(getattr(some, name)[small], getattr(every, name)[small], atol=1e-5)
        np.testing.assert_allclose(getattr(some, name)[~small], getattr(first, name)[~small], atol=1e-5)
    # (the comparison above means something: a second pass for every sample moves those crops)
    assert not np.allclose(every.crop[~small], first.crop[~small])
    none = run(1.25, float(fill.min()) / 2)  # nobody small enough: the first pass unchanged
    np.testing.assert_array_equal(none.joints_2d, first.joints_2d)


def test_recrop_margin_reaches_every_evaluated_split(random_run, smoke_data):
    from pose3dlib.config import load_config

    def score(*overrides):
        cfg = load_config("configs/smoke.yaml", [*smoke_data, *overrides])
        return evaluate.evaluate_run(cfg, random_run / "3000", stages=[1], limit=8, progress=False, device="cpu")

    one, two = score(), score("eval.recrop_margin=1.25")
    # recrop_max_fill reaches evaluate_run too: nobody fills as little as 1 % of a crop, so no second pass
    none_small = score("eval.recrop_margin=1.25", "eval.recrop_max_fill=0.01")
    assert [r["value"] for r in none_small] == [r["value"] for r in one]
    for split, protocol in (("lab_test", "p1_mpjpe"), ("wild_test", "p1_mpjpe"), ("lab_test", "p1_mpjpe_gt2d")):
        assert _all(one, split, protocol) != _all(two, split, protocol)
    # the mean-pose baseline needs no crop and does not move
    base = [r for r in one if r["stage"] == "mean_pose"]
    assert base and base == [r for r in two if r["stage"] == "mean_pose"]


def test_bone_prior_reaches_every_3d_reconstruction_and_only_those(random_run, smoke_data):
    from pose3dlib.config import load_config

    def score(*overrides):
        cfg = load_config("configs/smoke.yaml", [*smoke_data, *overrides])
        return evaluate.evaluate_run(cfg, random_run / "3000", stages=[1], limit=8, progress=False, device="cpu")

    off, on = score(), score("eval.bone_prior=true")
    for split, protocol in (("lab_test", "p1_mpjpe"), ("wild_test", "p1_mpjpe"), ("lab_test", "p1_mpjpe_gt2d"),
                            ("wild_test", "p2_pa_mpjpe")):
        assert _all(off, split, protocol) != _all(on, split, protocol)
    # PCKh (2D) and the mean-pose baseline do not move
    same = [r for r in off if r["split"] == "mpii_val" or r["stage"] == "mean_pose"]
    assert same and same == [r for r in on if r["split"] == "mpii_val" or r["stage"] == "mean_pose"]
    # a penalty that keeps every scale at 1 and no blend: the prior changes nothing (but the float64 rounding)
    assert [r["value"] for r in score("eval.bone_prior=true", "eval.bone_prior_scale_penalty=1e9",
                                      "eval.bone_prior_blend=0")] == pytest.approx([r["value"] for r in off], rel=1e-6)


def test_bone_prior_without_its_lengths_is_refused():
    from pose3dlib.config import EvalConfig
    from pose3dlib.engine.errors import Pose3DError

    with pytest.raises(Pose3DError, match="eval.bone_prior is on but no bone lengths"):
        evaluate.reconstruct(np.zeros((1, 16, 2)), np.zeros((1, 16)), 4000.0, EvalConfig(bone_prior=True))


def test_recrop_needs_a_dataset_that_can_crop_again():
    import torch

    class Plain(torch.utils.data.Dataset):
        cfg = type("C", (), {"input_size": 64, "heatmap_size": 16})()

        def __len__(self):
            return 2

        def __getitem__(self, i):
            return {"image": np.zeros((3, 64, 64), np.uint8), "joints_2d": np.zeros((16, 2), np.float32),
                    "joints_3d_mm": np.zeros((16, 3), np.float32), "valid": np.ones(16, bool),
                    "has_depth": np.bool_(True), "action": np.int64(0), "subject": np.int64(0),
                    "index": np.int64(i), "crop": np.eye(2, 3, dtype=np.float32)}

    from pose3dlib.config import load_config
    from pose3dlib.engine.errors import Pose3DError
    from pose3dlib.model import build_model

    model = build_model(load_config("configs/smoke.yaml").model)
    with pytest.raises(Pose3DError, match="recrop_margin.*sample_at.*Plain"):
        evaluate.predict_dataset(model, Plain(), "rgb", batch_size=2, recrop_margin=1.25, progress=False)


def test_a_negative_limit_is_refused_and_zero_means_every_sample(capsys):
    from pose3dlib.evaluation.evaluate import check_limit
    from pose3dlib.tools.cli import main

    check_limit(0)
    check_limit(5)
    assert main(["evaluate", "--config", "configs/smoke.yaml", "--run-dir", "runs/nowhere", "--limit", "-3"]) == 2
    assert "--limit -3: expected 0 (every sample) or a positive whole number" in capsys.readouterr().err
    from pose3dlib.config import load_config
    from pose3dlib.engine.errors import Pose3DError
    from pose3dlib.evaluation.evaluate import evaluate_run

    with pytest.raises(Pose3DError, match="^limit -2: expected"):  # notebook 06 calls the library directly
        evaluate_run(load_config("configs/smoke.yaml"), "runs/nowhere", limit=-2)


@pytest.mark.parametrize("override, key", [("model.num_features=32", "model.num_features"),
                                           ("data.input_size=128", "data.input_size"),
                                           ("data.heatmap_size=32", "data.heatmap_size"),
                                           ("train.batch_size=4", "train.batch_size"),
                                           ("model={num_features: 32}", "model.num_features"),  # a whole section
                                           ("data={h36m_dir: d, input_size: 128}", "data.input_size"),
                                           ("train={stage1: {lr: 0.1}}", "train.stage1.lr")])
def test_an_override_of_what_the_checkpoint_decides_is_refused(override, key, capsys):
    from pose3dlib.evaluation.evaluate import check_overrides
    from pose3dlib.tools.cli import main

    for command in ("evaluate", "unseen-check"):  # unseen-check takes --set as evaluate does
        assert main([command, "--config", "configs/smoke.yaml", "--run-dir", "runs/nowhere", "--set", override]) == 2
        err = capsys.readouterr().err
        assert f"--set {override}: each checkpoint decides {key} " in err, command
    assert main(["diagnose-depth", "--config", "configs/smoke.yaml", "--checkpoint", "runs/nowhere/last.pt",
                 "--set", override]) == 2  # diagnose-depth scores one checkpoint the same way
    assert f"--set {override}: each checkpoint decides" in capsys.readouterr().err
    check_overrides(["eval.flip_test=false", "data.wild_test_dir=data/x", "data.h36m_dir=data/y",
                     "train.device=cpu", "data={h36m_dir: a, mpii_dir: b}", "train={device: cpu}",
                     "eval={flip_test: false}"])  # what it takes


def test_per_action_table_and_figure_show_the_requested_split_only():
    import matplotlib.pyplot as plt

    from pose3dlib.evaluation import report

    rows = [{"stage": st, "split": split, "protocol": "p1_mpjpe", "action": a, "value": v}
            for st, base in (("stage2", 100.0), ("stage3", 90.0))
            for split, shift in (("lab_test", 0.0), ("wild_test", 1000.0))
            for a, v in (("Walking", base + shift), ("Eating", base + 5 + shift))]
    table = report.per_action_table(rows, "p1_mpjpe", "lab_test").splitlines()
    assert [line.split(" | ")[0].strip("| ") for line in table[2:]] == ["Walking", "Eating"]
    assert "1090" not in "\n".join(table) and table[2].startswith("| Walking | 100.0 | 90.0")
    fig = report.plot_per_action(rows, "p1_mpjpe", "lab_test")
    try:
        heights = sorted(round(p.get_height(), 6) for p in fig.axes[0].patches)
        assert heights == [90.0, 95.0, 100.0, 105.0]  # no wild_test bar among them
    finally:
        plt.close(fig)


def test_a_partial_scoring_never_replaces_the_runs_metrics_csv(random_run, smoke_data, tmp_path, capsys):
    """`evaluate --stages 1 --limit N` (a quick look) wrote <run>/metrics.csv before, replacing the full
    table that `report` puts in the README; now it goes to metrics_other.csv, and the numbers are printed."""
    import shutil

    from pose3dlib.tools.cli import main

    run = tmp_path / "run"
    shutil.copytree(random_run / "3000", run)
    (run / "metrics.csv").write_text("the full scoring\n")
    sets = [a for o in smoke_data for a in ("--set", o)]
    assert main(["evaluate", "--config", "configs/smoke.yaml", "--run-dir", str(run), "--stages", "1",
                 "--limit", "2", *sets]) == 0
    out = capsys.readouterr().out
    assert (run / "metrics.csv").read_text() == "the full scoring\n"
    rows = evaluate.read_metrics_csv(run / evaluate.OTHER_CSV_NAME)
    assert {r["stage"] for r in rows} == {"mean_pose", "stage1"}
    assert "| model | split |" in out and "Stage 1 (2D only)" in out
    assert "(not the run's full scoring: stages 1; the first 2 samples of each split)" in out
    assert evaluate.default_csv(run, [3, 1, 2], 0) == run / "metrics.csv"
    assert evaluate.default_csv(run, [1, 2, 3], 5) == evaluate.default_csv(run, [1, 3], 0) == run / "metrics_other.csv"


def test_a_partial_scoring_draws_its_figures_beside_the_runs_not_over_them(tmp_path):
    """Notebook 06 with a limit wrote metrics_other.csv but drew over the run's own figures (figures/ of
    the committed run when figures_dir names it): such a scoring's figures go to the folder's other/."""
    import os

    run = tmp_path / "run"
    full, other = evaluate.default_csv(run, [1, 2, 3], 0), evaluate.default_csv(run, [1, 2, 3], 5)
    assert evaluate.figures_for(run, "", full) == os.path.join(run, "figures")
    assert evaluate.figures_for(run, "", other) == os.path.join(run, "figures", "other")
    assert evaluate.figures_for(run, tmp_path / "figs", full) == os.fspath(tmp_path / "figs")
    assert evaluate.figures_for(run, tmp_path / "figs", other) == os.path.join(tmp_path / "figs", "other")
    assert evaluate.figures_for(run, "", tmp_path / "mine.csv").endswith(os.path.join("figures", "other"))



@pytest.mark.parametrize("limit", [1, 2, 500])
def test_any_positive_limit_is_a_partial_scoring(limit, tmp_path):
    """--limit 1 scores one sample per split: as partial as any other limit, so never the run's metrics.csv."""
    assert evaluate.other_scoring([1, 2, 3], limit) == [f"the first {limit} samples of each split"]
    assert evaluate.default_csv(tmp_path, [1, 2, 3], limit) == tmp_path / evaluate.OTHER_CSV_NAME
    assert evaluate.other_scoring([1, 2, 3], 0) == [] and evaluate.default_csv(tmp_path, [1, 2, 3], 0) != (
        tmp_path / evaluate.OTHER_CSV_NAME)

def test_a_full_scoring_on_other_data_than_the_runs_goes_to_metrics_other(tmp_path):
    """The unseen-data check (`evaluate --set data.*_dir=<new people>`) replaced the run's metrics.csv;
    the run's own data (a real-data run's converted folders given again) and eval options do not."""
    from pose3dlib.config import config_to_dict, load_config
    from pose3dlib.engine.checkpoint import make_checkpoint, save_checkpoint
    from pose3dlib.engine.runs import checkpoint_path

    own = ["data.h36m_dir=/data/mine/h36m", "data.mpii_dir=/data/mine/mpii", "data.wild_test_dir=/data/mine/wild_test"]
    trained = load_config("configs/smoke.yaml", own)
    save_checkpoint(checkpoint_path(tmp_path, 3), make_checkpoint(model_state={}, config=config_to_dict(trained),
                                                                  stage=3, bone_sum_mm=4000.0, extra={"finished": True}))
    same = load_config("configs/smoke.yaml", [*own, "eval.flip_test=false", "train.device=cpu"])
    assert evaluate.default_csv(tmp_path, [1, 2, 3], 0, same) == tmp_path / "metrics.csv"
    other = load_config("configs/smoke.yaml", [*own[:2], "data.wild_test_dir=/data/unseen/wild_test"])
    assert evaluate.default_csv(tmp_path, [1, 2, 3], 0, other) == tmp_path / "metrics_other.csv"
    assert evaluate.other_scoring([1, 2, 3], 0, other, tmp_path) == [
        "other data than the run's (data.wild_test_dir=/data/unseen/wild_test)"]


def test_a_scoring_of_an_unfinished_stage_goes_to_metrics_other(tmp_path, capsys):
    """A stage stopped before its last epoch (Ctrl-C, a crash) is a partly trained network: its scoring is not
    the run's and never replaces metrics.csv, which report and unseen-check read; the reason names the step."""
    from pose3dlib.config import config_to_dict, load_config
    from pose3dlib.engine.checkpoint import make_checkpoint, save_checkpoint
    from pose3dlib.engine.runs import checkpoint_path

    cfg = load_config("configs/smoke.yaml")
    for stage, finished in ((1, True), (2, True), (3, False)):
        save_checkpoint(checkpoint_path(tmp_path, stage), make_checkpoint(
            model_state={}, config=config_to_dict(cfg), stage=stage, step=2, extra={"finished": finished}))
    assert evaluate.other_scoring([1, 2, 3], 0, cfg, tmp_path) == [
        f"stage 3 unfinished: it stopped after 0 of {cfg.train.stage3.epochs} epochs (step 2) (finish it with "
        "train --resume)"]
    assert evaluate.default_csv(tmp_path, [1, 2, 3], 0, cfg) == tmp_path / "metrics_other.csv"
    assert evaluate.other_scoring([1, 2], 0, cfg, tmp_path) == ["stages 1,2"]  # the unfinished one not scored
    from pose3dlib.tools.cli import main  # nor given as --out: refused before any set is read

    assert main(["evaluate", "--config", "configs/smoke.yaml", "--run-dir", str(tmp_path), "--out",
                 str(tmp_path / "metrics.csv")]) == 2
    assert not (tmp_path / "metrics.csv").exists() and "stage 3 unfinished" in capsys.readouterr().err
    save_checkpoint(checkpoint_path(tmp_path, 3), make_checkpoint(
        model_state={}, config=config_to_dict(cfg), stage=3, step=9, extra={"finished": True}))
    assert evaluate.default_csv(tmp_path, [1, 2, 3], 0, cfg) == tmp_path / "metrics.csv"



def test_a_full_scoring_of_the_runs_folders_regenerated_since_goes_to_metrics_other(tmp_path, smoke_data):
    """`prepare-synthetic --seed 7` over the run's own folders: the same names, other people (the test
    splits too); scored as the run's own, the checkpoints trained on seed 0 filled its metrics.csv."""
    import copy

    from pose3dlib.config import config_to_dict, load_config
    from pose3dlib.engine import runs
    from pose3dlib.engine.checkpoint import make_checkpoint, save_checkpoint

    cfg = load_config("configs/smoke.yaml", smoke_data)
    now = runs.data_identities(cfg)
    then = copy.deepcopy(now)
    then["h36m_dir"]["seed"] = then["mpii_dir"]["seed"] = now["h36m_dir"]["seed"] + 7

    def stage3(identities) -> None:
        save_checkpoint(runs.checkpoint_path(tmp_path, 3), make_checkpoint(
            model_state={}, config=config_to_dict(cfg), stage=3, bone_sum_mm=4000.0, extra={"data": identities, "finished": True}))

    stage3(now)
    assert evaluate.other_scoring([1, 2, 3], 0, cfg, tmp_path) == []
    stage3(then)
    reasons = evaluate.other_scoring([1, 2, 3], 0, cfg, tmp_path)
    assert len(reasons) == 1 and reasons[0].startswith("other data than the run's (data.h36m_dir = ")
    seed = now["h36m_dir"]["seed"]
    assert f"holds other synthetic data than it was trained on (generator seed {seed + 7} -> {seed})" in reasons[0]
    assert evaluate.default_csv(tmp_path, [1, 2, 3], 0, cfg) == tmp_path / "metrics_other.csv"


def test_an_out_that_is_a_folder_is_refused_before_scoring(tmp_path, capsys, monkeypatch):
    from pose3dlib.tools.cli import main

    monkeypatch.setattr(evaluate, "evaluate_run", lambda *a, **k: pytest.fail("scored before --out was checked"))
    assert main(["evaluate", "--config", "configs/smoke.yaml", "--run-dir", "runs/nowhere", "--out", str(tmp_path)]) == 2
    assert f"--out {tmp_path}: is a folder; give the CSV file's name" in capsys.readouterr().err



def test_a_partial_scoring_is_refused_as_the_runs_own_table(tmp_path, capsys, monkeypatch):
    """`evaluate --stages 3 --limit 2 --out <run>/metrics.csv` wrote a partial scoring where report, the
    results table and unseen-check read the run's full one."""
    from pose3dlib.engine import runs
    from pose3dlib.tools.cli import main

    monkeypatch.setattr(evaluate, "evaluate_run", lambda *a, **k: pytest.fail("scored before --out was checked"))
    own = runs.eval_csv_path(tmp_path)
    assert main(["evaluate", "--config", "configs/smoke.yaml", "--run-dir", str(tmp_path), "--stages", "3",
                 "--limit", "2", "--out", str(own)]) == 2
    err = capsys.readouterr().err
    assert f"--out {own}: the run's own table" in err and "(stages 3; the first 2 samples of each split)" in err
    assert "leave out --out (it goes to metrics_other.csv)" in err and not own.exists()


def test_a_data_folder_spelt_with_dot_dot_is_the_runs_own(tmp_path):
    from pose3dlib.config import config_to_dict, load_config
    from pose3dlib.engine.checkpoint import make_checkpoint, save_checkpoint
    from pose3dlib.engine.runs import checkpoint_path

    trained = load_config("configs/smoke.yaml", ["data.wild_test_dir=/data/mine/wild_test"])
    save_checkpoint(checkpoint_path(tmp_path, 3), make_checkpoint(model_state={}, config=config_to_dict(trained),
                                                                  stage=3, bone_sum_mm=4000.0))
    spelt = load_config("configs/smoke.yaml", ["data.wild_test_dir=/data/other/../mine/./wild_test"])
    assert evaluate.other_data(spelt, tmp_path) == []


def test_evaluation_options_written_into_the_runs_own_table_are_noted(tmp_path):
    """`evaluate --set eval.flip_test=false` replaced runs/<run>/metrics.csv without a word; `report`,
    `make reproduce` and `unseen-check` then read the no-flip scoring as the run's."""
    from pose3dlib.engine import runs
    from pose3dlib.evaluation.evaluate import eval_option_note

    own = runs.eval_csv_path(tmp_path)
    note = eval_option_note(["eval.flip_test=false", "data.num_workers=0"], own, tmp_path)
    assert note is not None and note.startswith(f"note: {own} now holds the scoring with eval.flip_test=false, not")
    assert "data.num_workers" not in note
    assert eval_option_note(["eval.flip_test=false"], tmp_path / "other.csv", tmp_path) is None  # --out elsewhere
    assert eval_option_note(["train.device=cpu"], own, tmp_path) is None  # no evaluation option


def test_a_repeated_stage_is_refused_before_any_scoring_however_it_is_given():
    """Notebook 06 calls evaluate_run with its own `stages`: [1, 2, 3, 3] counted as the run's full scoring and
    replaced its metrics.csv with one that no table reads."""
    from pose3dlib.config import load_config
    from pose3dlib.engine.errors import Pose3DError
    from pose3dlib.evaluation.evaluate import evaluate_run, parse_stages

    cfg = load_config("configs/smoke.yaml")
    with pytest.raises(Pose3DError, match=r"^stages: stage 3 given more than once"):
        evaluate_run(cfg, "runs/nowhere", stages=[1, 2, 3, 3])
    with pytest.raises(Pose3DError, match=r"^stages: stage 4 is not 1, 2 or 3"):
        evaluate_run(cfg, "runs/nowhere", stages=[4])
    with pytest.raises(Pose3DError, match=r"^--stages '1,1': stage 1 given more than once"):
        parse_stages("1,1")
    assert parse_stages("3, 1") == [3, 1]
    with pytest.raises(Pose3DError, match=r"--stages '1,,3': item 2 of 3 is empty"):  # not stages 1,3 silently
        parse_stages("1,,3")


def test_a_stage_without_a_checkpoint_is_named_with_the_stages_the_run_holds(tmp_path, smoke_data, monkeypatch):
    """Before: `evaluate` of a folder holding only stage 3 (a converted release model) read every test set,
    then failed on stage1/last.pt without a hint; now it fails before reading them and names --stages."""
    from pose3dlib.config import load_config
    from pose3dlib.engine.errors import CheckpointError

    (tmp_path / "stage3").mkdir()
    (tmp_path / "stage3" / "last.pt").write_bytes(b"")
    cfg = load_config("configs/smoke.yaml", smoke_data)
    monkeypatch.setattr("pose3dlib.data.h36m.H36MDataset", lambda *a, **k: pytest.fail("a set was read before the check"))
    with pytest.raises(CheckpointError, match=r"stage1/last.pt; it holds stage 3: score those with --stages 3 "
                                              r"\(notebook 06: stages=\[3\]\)"):
        evaluate.evaluate_run(cfg, tmp_path)
    with pytest.raises(CheckpointError, match="train it first"):
        evaluate.evaluate_run(cfg, tmp_path / "empty")
    # notebook 06 asks default_csv first, which read a missing stage3/last.pt for its data and failed without a hint
    from pose3dlib.engine.checkpoint import make_checkpoint, save_checkpoint

    two = tmp_path / "two"
    for stage in (1, 2):
        save_checkpoint(two / f"stage{stage}" / "last.pt", make_checkpoint(model_state={}, config={}, stage=stage,
                                                                           extra={"finished": True}))
    assert evaluate.default_csv(two, [1, 2, 3], 0, cfg) == two / "metrics.csv"
    with pytest.raises(CheckpointError, match=r"stage3/last.pt; it holds stages 1,2: score those with --stages 1,2"):
        evaluate.evaluate_run(cfg, two)


@pytest.mark.parametrize("stages, limit, needle", [
    ("[3]", 0, r"stages: '\[3\]' is not a list of stages such as \[1, 2, 3\] \(with papermill, give a list as YAML"),
    (3, 0, r"stages: 3 is not a list of stages"),
    ([3], "abc", r"limit 'abc': expected 0 \(every sample\) or a positive whole number"),
])
def test_notebook_06_parameters_of_the_wrong_type_are_one_clear_error(tmp_path, stages, limit, needle):
    """papermill -p stages "[3]" passes a string (before: 'stage [, 3, ] is not 1, 2 or 3'), -p stages 3 an int
    and -p limit abc a string (before: TypeErrors); notebook 06 asks `default_csv` first."""
    with pytest.raises(evaluate.Pose3DError, match=needle):
        evaluate.default_csv(tmp_path, stages, limit)


def test_evaluate_refuses_a_folder_it_cannot_write_before_scoring(tmp_path, monkeypatch, capsys):
    """Before: `evaluate` into a read-only run folder scored every stage (minutes on the cpu profile), then failed
    writing metrics_other.csv. (The probe is faked: root writes into read-only folders.)"""
    from pose3dlib.tools.cli import main

    def refuse(folder):
        raise PermissionError(13, "Permission denied", str(folder))

    monkeypatch.setattr(evaluate, "probe_writable", refuse)
    monkeypatch.setattr(evaluate, "evaluate_run", lambda *a, **k: pytest.fail("scored before the check"))
    assert main(["evaluate", "--config", "configs/smoke.yaml", "--run-dir", str(tmp_path), "--limit", "2"]) == 2
    assert f"--run-dir {tmp_path}: cannot write the metrics there (" in capsys.readouterr().err
    assert main(["evaluate", "--config", "configs/smoke.yaml", "--run-dir", str(tmp_path),
                 "--out", str(tmp_path / "m.csv")]) == 2
    assert f"--out {tmp_path / 'm.csv'}: cannot write the metrics there" in capsys.readouterr().err

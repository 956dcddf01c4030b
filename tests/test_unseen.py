"""`unseen-check`: a run scored on newly generated synthetic people and compared with its metrics.csv."""
from __future__ import annotations

import csv
import json
import math
import os

import pytest

from pose3dlib.engine.errors import Pose3DError
from pose3dlib.evaluation.unseen import compare_metrics, relative_difference, unseen_rows, unseen_table, verdict


def _row(stage, split, protocol, value, action="all"):
    return {"stage": stage, "split": split, "protocol": protocol, "action": action, "value": value}


REFERENCE = [
    _row("mean_pose", "lab_test", "p1_mpjpe", 200.0),
    _row("stage2", "lab_test", "p1_mpjpe", 120.0),
    _row("stage3", "lab_test", "p1_mpjpe", 90.0, action="Directions"),  # per-action rows are not compared
    _row("stage3", "lab_test", "p1_mpjpe", 100.0),
    _row("stage3", "wild_test", "p1_mpjpe", 200.0),
    _row("stage3", "mpii_val", "pckh@0.5", 0.8),
]


def test_relative_difference_is_signed_and_nan_without_a_reference():
    assert relative_difference(100.0, 110.0) == pytest.approx(0.10)
    assert relative_difference(-50.0, -55.0) == pytest.approx(-0.10)
    assert math.isnan(relative_difference(0.0, 1.0))
    assert math.isnan(relative_difference(1.0, math.nan))


def test_numbers_beyond_the_tolerance_are_flagged_and_the_baseline_is_not_checked():
    candidate = [
        _row("mean_pose", "lab_test", "p1_mpjpe", 260.0),  # +30 %: the new people's baseline, shown only
        _row("stage3", "lab_test", "p1_mpjpe", 110.0),  # +10 % exactly: within
        _row("stage3", "lab_test", "p1_mpjpe", 500.0, action="Directions"),
        _row("stage3", "wild_test", "p1_mpjpe", 178.0),  # -11 %
        _row("stage3", "mpii_val", "pckh@0.5", 0.7),  # -12.5 %
    ]
    got = {(c["stage"], c["split"]): c for c in compare_metrics(REFERENCE, candidate, tolerance=0.10)}
    assert set(got) == {("mean_pose", "lab_test"), ("stage3", "lab_test"), ("stage3", "wild_test"),
                        ("stage3", "mpii_val")}  # stage2 was not scored on the new set: skipped
    assert got[("mean_pose", "lab_test")]["within"] is None
    assert got[("stage3", "lab_test")]["within"] is True
    assert got[("stage3", "lab_test")]["value"] == 110.0  # the averaged row, not the per-action one
    assert got[("stage3", "wild_test")]["within"] is False
    assert got[("stage3", "wild_test")]["relative"] == pytest.approx(-0.11)
    assert got[("stage3", "mpii_val")]["within"] is False
    assert [c["within"] for c in compare_metrics(REFERENCE, candidate, tolerance=0.13)][1:] == [True, True, True]


def test_a_number_missing_from_a_compared_stage_or_no_common_stage_is_an_error():
    with pytest.raises(Pose3DError, match="stage3/wild_test/p1_mpjpe"):
        compare_metrics(REFERENCE, [_row("stage3", "lab_test", "p1_mpjpe", 100.0),
                                    _row("stage3", "mpii_val", "pckh@0.5", 0.8)])
    with pytest.raises(Pose3DError, match="no model stage"):
        compare_metrics(REFERENCE, [_row("stage1", "lab_test", "p1_mpjpe", 100.0)])
    with pytest.raises(Pose3DError, match="tolerance"):
        compare_metrics(REFERENCE, REFERENCE, tolerance=-0.1)


def test_table_bolds_only_the_misses_and_the_verdict_counts_them():
    good = [_row(*k, v) for k, v in (
        (("mean_pose", "lab_test", "p1_mpjpe"), 210.0), (("stage3", "lab_test", "p1_mpjpe"), 104.0),
        (("stage3", "wild_test", "p1_mpjpe"), 205.0), (("stage3", "mpii_val", "pckh@0.5"), 0.78))]
    bad = [dict(r) for r in good]
    bad[1]["value"] = 115.0  # lab +15 %
    rows = unseen_rows(REFERENCE, {7: good, 13: bad}, tolerance=0.10)
    table = unseen_table(rows, 0.10)
    assert "| Stage 3, lab_test, Protocol #1 MPJPE (mm) | 100.0 | 104.0 (+4.0 %) | 115.0 (**+15.0 %**) |" in table
    assert "| Stage 3, mpii_val, PCKh@0.5 (MPII val) | 80.0 % | 78.0 % (-2.5 %) | 78.0 % (-2.5 %) |" in table
    assert table.count("**") == 2
    # Protocol #1 as a fraction of each set's own mean pose, to 4 decimals: 100/200 for the reference, 104/210, 115/210
    assert "| Stage 3, lab_test, Protocol #1 MPJPE (mm) / mean pose | 0.5000 | 0.4952 | 0.5476 |" in table
    text = verdict(rows, 0.10)
    assert text.startswith("2 of 3 numbers within ±10 % of the reference on every set (seeds 7, 13)")
    assert "1 differ by more on 1 of 2 set(s): Stage 3, lab_test, Protocol #1 MPJPE (mm): seed 13 +15.0 %" in text
    assert verdict(unseen_rows(REFERENCE, {7: good}, 0.10), 0.10).endswith("(seeds 7).")


# ----------------------------------------------------------------------------- the command on a smoke run

@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, smoke_data):
    """A run folder with a random smoke network as Stage 1 and its metrics.csv on the smoke data (seed 0)."""
    import torch

    from pose3dlib.config import config_to_dict, load_config
    from pose3dlib.engine.checkpoint import make_checkpoint, save_checkpoint
    from pose3dlib.engine.runs import checkpoint_path, eval_csv_path
    from pose3dlib.evaluation.evaluate import evaluate_run, write_metrics_csv
    from pose3dlib.model import build_model

    run = tmp_path_factory.mktemp("unseen_run")
    cfg = load_config("configs/smoke.yaml", smoke_data)
    torch.manual_seed(0)
    save_checkpoint(checkpoint_path(run, 1), make_checkpoint(
        model_state=build_model(cfg.model).state_dict(), config=config_to_dict(cfg), stage=1, bone_sum_mm=4000.0))
    write_metrics_csv(evaluate_run(cfg, run, stages=[1], limit=8, progress=False), eval_csv_path(run))
    return run


def test_set_overrides_keep_a_path_yaml_would_cut():
    from pose3dlib.config import load_config
    from pose3dlib.evaluation.unseen import set_overrides

    odd = "/tmp/my data #2/x: y"
    cfg = load_config("configs/smoke.yaml", set_overrides(__import__("pathlib").Path(odd)))
    assert cfg.data.h36m_dir == f"{odd}/h36m" and cfg.data.wild_test_dir == f"{odd}/wild_test"


def _cli(run, tmp_path, *extra):
    from pose3dlib.tools.cli import main

    return main(["unseen-check", "--config", "configs/smoke.yaml", "--run-dir", str(run), "--stages", "1",
                 "--limit", "8", "--data-root", str(tmp_path / "sets"), "--out", str(tmp_path / "out"), *extra])


def test_unseen_check_scores_new_people_as_evaluate_does(smoke_run, tmp_path, capsys):
    from pose3dlib.config import load_config
    from pose3dlib.evaluation.evaluate import evaluate_run, read_metrics_csv
    from pose3dlib.evaluation.unseen import set_overrides

    assert _cli(smoke_run, tmp_path, "--seeds", "5") == 0
    out = capsys.readouterr().out
    assert "numbers within ±10 % of the reference on every set (seeds 5)" in out
    scored = read_metrics_csv(tmp_path / "out" / "seed=5" / "metrics.csv")
    reference = read_metrics_csv(smoke_run / "metrics.csv")

    def baseline(rows):
        return next(r["value"] for r in rows if r["stage"] == "mean_pose" and r["split"] == "lab_test"
                    and r["protocol"] == "p1_mpjpe" and r["action"] == "all")

    assert baseline(scored) != baseline(reference)  # other people: the new set, not the run's own data
    # exactly what `evaluate` writes for the run on that set
    cfg = load_config("configs/smoke.yaml", set_overrides(tmp_path / "sets" / "seed=5"))
    direct = evaluate_run(cfg, smoke_run, stages=[1], limit=8, progress=False)
    assert [round(r["value"], 4) for r in scored] == [round(r["value"], 4) for r in direct]
    with open(tmp_path / "out" / "unseen.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    averaged = [r for r in reference if r["action"] == "all"]
    assert len(rows) == len(averaged) and {r["seed"] for r in rows} == {"5"}
    assert {r["within"] for r in rows if r["stage"] == "mean_pose"} == {""}
    assert (tmp_path / "out" / "unseen.md").read_text().count("| Stage 1, ") >= len(averaged) // 2
    # --strict: exit status 1 when a number differs at all (tolerance 0), the data is reused
    assert _cli(smoke_run, tmp_path, "--seeds", "5", "--tolerance", "0", "--strict") == 1


def test_the_configs_own_seed_and_a_missing_checkpoint_are_refused_before_any_data(smoke_run, tmp_path, capsys):
    assert _cli(smoke_run, tmp_path, "--seeds", "3,0") == 2
    assert "0 is the config's own seed" in capsys.readouterr().err
    assert _cli(smoke_run, tmp_path, "--seeds", "7,-1") == 2
    assert "--seeds '7,-1': seeds are integers >= 0, got [-1]" in capsys.readouterr().err
    assert _cli(smoke_run, tmp_path, "--seeds", "5", "--tolerance", "10") == 2  # 10 % typed as 10: 1000 %
    assert "--tolerance 10: expected a fraction in [0, 1), e.g. 0.1 for 10 %" in capsys.readouterr().err
    assert _cli(smoke_run, tmp_path, "--seeds", "5", "--stages", "2") == 2  # nothing to compare stage 2 with
    assert "has no rows of stage2" in capsys.readouterr().err
    real = tmp_path / "real_run"  # scored on a converted MPI-INF-3DHP test set: no synthetic set reproduces it
    real.mkdir()
    lines = (smoke_run / "metrics.csv").read_text().splitlines()
    header, first = lines[0].split(","), lines[1].split(",")
    first[header.index("protocol")], first[header.index("value")] = "3dhp_pck", "0.5"
    (real / "metrics.csv").write_text("\n".join([*lines, ",".join(first)]) + "\n")
    assert _cli(real, tmp_path, "--seeds", "5") == 2
    assert "was scored on a converted MPI-INF-3DHP test set" in capsys.readouterr().err
    # trained on a converted Human3.6M download alone (no MPI-INF-3DHP rows): its checkpoints say so
    import torch

    h36m_only = tmp_path / "real_h36m_run"
    (h36m_only / "stage1").mkdir(parents=True)
    ckpt = torch.load(smoke_run / "stage1" / "last.pt", weights_only=False)
    ckpt["config"]["data"] = {**ckpt["config"]["data"], "raw_h36m_dir": "/downloads/h36m", "h36m_dir": "converted/h36m"}
    synthetic_mpii = {"generator": "pose3d-synthetic", "version": 1, "seed": 0, "synthetic": {}}
    ckpt["extra"] = {**ckpt.get("extra", {}), "data": {"h36m_dir": {"download": "f" * 64}, "mpii_dir": synthetic_mpii}}
    torch.save(ckpt, h36m_only / "stage1" / "last.pt")
    (h36m_only / "metrics.csv").write_bytes((smoke_run / "metrics.csv").read_bytes())
    assert _cli(h36m_only, tmp_path, "--seeds", "5") == 2
    assert ("stage1/last.pt was trained on data other than synthetic sets (data.h36m_dir = converted/h36m, converted "
            "from data.raw_h36m_dir = /downloads/h36m): a run on the real datasets" in capsys.readouterr().err)
    assert _cli(smoke_run, tmp_path, "--seeds", "5", "--set", "data.wild_test_dir=elsewhere") == 2  # would do nothing
    assert ("--set data.wild_test_dir=elsewhere: unseen-check scores each seed on the sets it generates"
            in capsys.readouterr().err)
    bare = tmp_path / "bare_run"  # the run's metrics.csv without its checkpoints
    bare.mkdir()
    (bare / "metrics.csv").write_bytes((smoke_run / "metrics.csv").read_bytes())
    assert _cli(bare, tmp_path, "--seeds", "5") == 2
    assert "stage1/last.pt not found" in capsys.readouterr().err
    retrained = tmp_path / "retrained_run"  # Stage 1 trained again after metrics.csv was written
    (retrained / "stage1").mkdir(parents=True)
    (retrained / "metrics.csv").write_bytes((smoke_run / "metrics.csv").read_bytes())
    (retrained / "stage1" / "last.pt").write_bytes((smoke_run / "stage1" / "last.pt").read_bytes())
    os.utime(retrained / "metrics.csv", (1_000_000, 1_000_000))
    assert _cli(retrained, tmp_path, "--seeds", "5") == 2
    assert "stage1/last.pt is not the checkpoint" in capsys.readouterr().err
    from pose3dlib.engine import runs
    from pose3dlib.evaluation.unseen import scored_these_weights

    # where evaluated.json records the scoring (sweep and ablation runs), digests decide, not file times
    (retrained / runs.EVALUATED_NAME).write_text(json.dumps({
        "checkpoints_sha256": {"stage1": runs.file_digest(retrained / "stage1" / "last.pt")},
        "metrics_csv_sha256": runs.file_digest(retrained / "metrics.csv")}))
    assert scored_these_weights(retrained, 1)  # a copy with fresh file times (cp -r): still these weights
    (retrained / runs.EVALUATED_NAME).write_text(json.dumps({
        "checkpoints_sha256": {"stage1": "0" * 64}, "metrics_csv_sha256": runs.file_digest(retrained / "metrics.csv")}))
    os.utime(retrained / "stage1" / "last.pt", (1, 1))  # older than metrics.csv, but another file than it scored
    assert not scored_these_weights(retrained, 1)
    assert not (tmp_path / "sets").exists()


def test_a_check_of_more_seeds_keeps_the_earlier_ones_and_refuses_to_drop_any(smoke_run, tmp_path, capsys):
    import json

    from pose3dlib.evaluation.unseen import read_unseen_csv

    table, meta = tmp_path / "out" / "unseen.csv", tmp_path / "out" / "unseen.json"
    assert _cli(smoke_run, tmp_path, "--seeds", "6") == 0
    one = read_unseen_csv(table)
    assert json.loads(meta.read_text()) == {"config": "configs/smoke.yaml", "overrides": [], "stages": [1],
                                            "limit": 8, "tolerance": 0.1}
    assert _cli(smoke_run, tmp_path, "--seeds", "5") == 0
    both = table.read_bytes()
    rows = read_unseen_csv(table)
    assert [r["seed"] for r in rows] == [5] * len(one) + [6] * len(one)  # seed 6 kept; sorted by seed
    assert [r for r in rows if r["seed"] == 6] == one
    assert "| seed 5 | seed 6 |" in (tmp_path / "out" / "unseen.md").read_text()
    assert "kept seed(s) 6" in capsys.readouterr().out
    assert _cli(smoke_run, tmp_path, "--seeds", "6") == 0  # seed 6 again: the same numbers, the same file
    assert table.read_bytes() == both
    # a check that would drop a seed is refused before any data is written, naming the difference
    assert _cli(smoke_run, tmp_path, "--seeds", "7", "--limit", "4") == 2
    err = capsys.readouterr().err
    assert "holds seeds 5, 6, which this check would drop" in err and "limit 8 -> 4" in err and "--replace" in err
    assert _cli(smoke_run, tmp_path, "--seeds", "7", "--set", "eval.recrop_margin=0") == 2
    assert "overrides [] -> ['eval.recrop_margin=0']" in capsys.readouterr().err
    assert not (tmp_path / "sets" / "seed=7").exists() and table.read_bytes() == both
    lines = table.read_text().splitlines()  # seed 6 compared with other reference numbers (another run)
    lines = [",".join(f[:4] + [f"{float(f[4]) + 1:.4f}"] + f[5:]) if (f := line.split(","))[0] == "6" else line
             for line in lines]
    table.write_text("\n".join(lines) + "\n")
    assert _cli(smoke_run, tmp_path, "--seeds", "5") == 2
    assert "seeds 6 were compared with other reference numbers" in capsys.readouterr().err
    assert _cli(smoke_run, tmp_path, "--seeds", "5", "--replace") == 0  # --replace: these seeds alone
    assert {r["seed"] for r in read_unseen_csv(table)} == {5}
    # a damaged record is named before any work, with the way out
    table.write_text(table.read_text().splitlines()[0] + "\n9,stage1,lab_test\n")
    assert _cli(smoke_run, tmp_path, "--seeds", "6") == 2
    assert "unseen.csv: line 2: not a row of seed,stage" in capsys.readouterr().err


def test_strict_judges_this_checks_seeds_only(smoke_run, tmp_path):
    from pose3dlib.evaluation.unseen import read_unseen_csv

    assert _cli(smoke_run, tmp_path, "--seeds", "5") == 0
    table = tmp_path / "out" / "unseen.csv"  # seed 5 made to miss by far: relative difference 99
    lines = [",".join(f[:6] + ["99.0", f[7] and "0"]) if (f := line.split(","))[0] == "5" else line
             for line in table.read_text().splitlines()]
    table.write_text("\n".join(lines) + "\n")
    # kept seed 5 misses even at tolerance 0.99 (its `within` recomputed), seed 6 is within it
    assert _cli(smoke_run, tmp_path, "--seeds", "6", "--tolerance", "0.99", "--strict") == 0
    rows = read_unseen_csv(table)
    assert {r["within"] for r in rows if r["seed"] == 5 and r["stage"] != "mean_pose"} == {False}
    assert {r["within"] for r in rows if r["seed"] == 6 and r["stage"] != "mean_pose"} == {True}
    assert _cli(smoke_run, tmp_path, "--seeds", "6", "--tolerance", "0", "--strict") == 1


def test_an_out_that_cannot_hold_files_fails_before_any_set_is_generated(tmp_path, monkeypatch, capsys):
    """`--out afile` generated and scored a whole synthetic set before `afile/seed=39: Not a directory`."""
    from pose3dlib.evaluation import unseen
    from pose3dlib.tools import cli

    monkeypatch.setattr(unseen, "check_unseen", lambda *a, **k: pytest.fail("work started before --out was checked"))
    (tmp_path / "afile").write_text("a file")
    status = cli.main(["unseen-check", "--config", "configs/smoke.yaml", "--run-dir", str(tmp_path / "run"),
                       "--seeds", "39", "--out", str(tmp_path / "afile")])
    err = capsys.readouterr().err.strip()
    assert status == 2 and err.startswith(f"error: --out {tmp_path / 'afile'}: cannot write there "
                                          f"({tmp_path / 'afile'}: is a file, where a folder is needed")

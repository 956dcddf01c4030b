"""pose3dlib.tools.ablation: the arms' configs and training data, the shared Stage 2, resuming, the CSV,
the Welch tests against a hand computation, the table, the claims in words and the figure."""
from __future__ import annotations

import math
import statistics

import matplotlib
import pytest
from torch.utils.data import Dataset

matplotlib.use("Agg")

from pose3dlib.config import config_to_dict, load_config
from pose3dlib.data.fusion import FusionDataset
from pose3dlib.engine import runs
from pose3dlib.engine.checkpoint import load_checkpoint
from pose3dlib.engine.errors import Pose3DError
from pose3dlib.engine.paths import resolve
from pose3dlib.engine.train import (
    build_datasets,
    checkpoint_path,
    config_differences,
    file_digest,
    train_or_load,
)
from pose3dlib.evaluation.evaluate import PROTOCOLS_3D, evaluate_run, write_metrics_csv
from pose3dlib.tools import ablation
from pose3dlib.tools.ablation import (
    CSV_COLUMNS,
    SUMMARY_METRICS,
    arm_config,
    check_schedule,
    claims_summary,
    plan,
    read_ablation_csv,
    run_ablation,
    summarize,
    welch_test,
    write_ablation_csv,
)

# ----------------------------------------------------------------------------- FusionDataset without 2D-only samples

class _Tagged(Dataset):
    """`n` items tagged with the dataset's name; counts reads."""

    def __init__(self, name: str, n: int):
        self.name, self.n, self.reads = name, n, 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[str, int]:
        self.reads += 1
        return self.name, int(i)


def test_an_epoch_without_2d_keeps_its_length_with_3d_samples_only():
    ds_2d, ds_3d = _Tagged("2d", 10), _Tagged("3d", 7)
    mixed = FusionDataset(ds_2d, ds_3d, ratio_3d=0.5, samples_2d=6, seed=1)
    only_3d = FusionDataset(ds_2d, ds_3d, ratio_3d=0.5, samples_2d=6, seed=1, mix_2d=False)
    assert len(mixed) == len(only_3d) == 9  # 6 + round(0.5 x 6)
    assert (only_3d.n_2d, only_3d.n_3d) == (0, 9)
    epochs = []
    for epoch in range(3):
        only_3d.set_epoch(epoch)
        items = [only_3d[i] for i in range(len(only_3d))]
        assert {name for name, _ in items} == {"3d"}
        rows = [i for _, i in items]
        assert sorted(rows[:7]) == list(range(7))  # no repeat while the 3D split lasts
        epochs.append(rows)
    assert ds_2d.reads == 0
    assert epochs[0] != epochs[1]  # each epoch draws anew ...
    only_3d.set_epoch(1)
    assert [only_3d[i][1] for i in range(9)] == epochs[1]  # ... as a pure function of (seed, epoch)
    mixed.set_epoch(0)
    assert [mixed[i][0] for i in range(9)] == ["2d"] * 6 + ["3d"] * 3
    with pytest.raises(ValueError, match="mix_2d=False needs a non-empty 3D dataset"):
        FusionDataset(ds_2d, None, ratio_3d=0.0, mix_2d=False)


# ----------------------------------------------------------------------------- arms

def test_arm_configs_differ_from_the_profile_exactly_as_claimed():
    base = load_config("configs/smoke.yaml", ["seed=3"])
    assert arm_config("smoke", "c", 3) == base
    assert config_differences(config_to_dict(base), config_to_dict(arm_config("smoke", "b", 3))) == [
        "train.stage3.geometric_weight: 0.01 -> 0.0"]
    assert config_differences(config_to_dict(base), config_to_dict(arm_config("smoke", "a", 3))) == [
        "train.stage1.mix_2d: True -> False", "train.stage2.mix_2d: True -> False",
        "train.stage3.geometric_weight: 0.01 -> 0.0", "train.stage3.mix_2d: True -> False"]
    for arm in "abc":
        cfg = arm_config("smoke", arm, 1, ["train.stage3.epochs=2"])
        assert (cfg.seed, cfg.train.stage3.epochs) == (1, 2)
    with pytest.raises(Pose3DError, match="unknown ablation arm 'd'"):
        arm_config("smoke", "d", 0)


def test_arm_a_trainer_reads_no_2d_only_image_in_any_stage(smoke_data, monkeypatch):
    from pose3dlib.data.mpii import MPIIDataset

    reads = []
    original = MPIIDataset.__getitem__

    def spy(self, i):
        reads.append(self.split)
        return original(self, i)

    monkeypatch.setattr(MPIIDataset, "__getitem__", spy)
    cfg_a, cfg_c = arm_config("smoke", "a", 0, smoke_data), arm_config("smoke", "c", 0, smoke_data)
    for stage in (1, 2, 3):
        train_a = build_datasets(cfg_a, stage, cfg_a.train.stage(stage))[0]
        train_c = build_datasets(cfg_c, stage, cfg_c.train.stage(stage))[0]
        assert len(train_a) == len(train_c)  # same epoch length, so the same number of steps
        train_a.set_epoch(0)
        assert all(bool(train_a[i]["has_depth"]) for i in range(len(train_a)))
    assert "train" not in reads
    train_c = build_datasets(cfg_c, 1, cfg_c.train.stage(1))[0]
    train_c.set_epoch(0)
    assert not any(bool(train_c[i]["has_depth"]) for i in range(len(train_c)))  # the spy can see reads ...
    assert reads.count("train") == len(train_c)  # ... and counts every one


def test_the_notebooks_take_the_parameters_the_ablation_passes():
    from pose3dlib.tools.notebook_runner import check_parameters, notebook_path

    steps = plan("runs/ablation/smoke", [0], [0])
    assert [(s.arm, s.stage) for s in steps] == [("c", 1), ("c", 2), ("c", 3), ("c", None), ("b", 3), ("b", None),
                                                  ("a", 1), ("a", 2), ("a", 3), ("a", None)]
    for step in steps:
        check_parameters(notebook_path(step.notebook), ablation.notebook_params(step, "smoke", resolve("x.yaml")))


# ----------------------------------------------------------------------------- running, sharing, resuming

def _in_process(calls: list):
    """An executor doing what the notebooks do, without papermill: train the stage or score Stage 3."""
    def run(step, profile, config_file):
        calls.append((step.arm, step.seed, step.stage))
        cfg = load_config(config_file)
        if step.stage is not None:
            train_or_load(cfg, step.stage, step.run_dir, step.init_from)
        else:
            rows = evaluate_run(cfg, step.run_dir, stages=[3], progress=False)
            write_metrics_csv(rows, resolve(step.run_dir) / "metrics.csv")
        (resolve(step.run_dir) / f"{step.notebook}.ipynb").write_text("{}")  # the executed notebook, last
    return run


@pytest.mark.slow
def test_ablation_shares_stage2_between_b_and_c_and_reruns_only_what_changed(smoke_data, tmp_path):
    out, calls = tmp_path / "ablation", []
    csv_path = run_ablation("smoke", [0], [0], out, smoke_data, executor=_in_process(calls), log=lambda line: None)
    assert len(calls) == 10 and calls.count(("b", 0, 3)) == 1

    # b starts Stage 3 from c's Stage 2 (same bytes); b trains no Stage 1 or 2 of its own
    shared = file_digest(checkpoint_path(out / "c" / "seed=0", 2))
    ckpt = {arm: load_checkpoint(checkpoint_path(out / arm / "seed=0", 3)) for arm in "abc"}
    assert ckpt["b"]["extra"]["init_digest"] == ckpt["c"]["extra"]["init_digest"] == shared
    assert not (out / "b" / "seed=0" / "stage2").exists()
    assert [ckpt[arm]["config"]["train"]["stage3"]["geometric_weight"] for arm in "abc"] == [0.0, 0.0, 0.01]
    a_stages = [load_checkpoint(checkpoint_path(out / "a" / "seed=0", s))["config"]["train"] for s in (1, 2, 3)]
    assert all(t[f"stage{s}"]["mix_2d"] is False for t in a_stages for s in (1, 2, 3))

    # the CSV: header, one row per arm and (split, protocol) of metrics.csv, Stage 3 only
    text = csv_path.read_text()
    assert text.splitlines()[0] == ",".join(CSV_COLUMNS) == "arm,seed,split,protocol,value"
    rows = read_ablation_csv(csv_path)
    labels = {(r["split"], r["protocol"]) for r in rows}
    assert labels == {(s, p) for s in ("lab_test", "wild_test") for p in (*PROTOCOLS_3D, "p1_mpjpe_gt2d")} | {
        ("mpii_val", "pckh@0.5")}
    assert set(SUMMARY_METRICS) <= labels
    assert len(rows) == 3 * len(labels) and {(r["arm"], r["seed"]) for r in rows} == {("a", 0), ("b", 0), ("c", 0)}
    metrics_c = (out / "c" / "seed=0" / "metrics.csv").read_text()
    row_c = next(r for r in rows if r["arm"] == "c" and r["protocol"] == "p1_mpjpe" and r["split"] == "wild_test")
    assert f"stage3,wild_test,p1_mpjpe,all,{row_c['value']:.4f}" in metrics_c

    # a rerun trains and scores nothing; a lost evaluation record re-scores that run alone
    calls.clear()
    assert run_ablation("smoke", [0], [0], out, smoke_data, executor=_in_process(calls), log=lambda line: None) == csv_path
    assert calls == [] and csv_path.read_text() == text
    (out / "b" / "seed=0" / runs.EVALUATED_NAME).unlink()
    run_ablation("smoke", [0], [0], out, smoke_data, executor=_in_process(calls), log=lambda line: None)
    assert calls == [("b", 0, None)]
    # interrupted after its stage finished, before its executed notebook was written: that notebook runs again
    # (its stage loads, finished), so its curves are not lost; nothing else does
    calls.clear()
    (out / "c" / "seed=0" / "02_train_2d.ipynb").unlink()
    run_ablation("smoke", [0], [0], out, smoke_data, executor=_in_process(calls), log=lambda line: None)
    assert calls == [("c", 0, 1)] and csv_path.read_text() == text
    # another Stage 3 schedule makes the Stage 3s stale, not the shared Stages 1-2; without --replace it is
    # refused before anything runs (it would retrain the arms and replace the folder's record)
    calls.clear()
    longer = [*smoke_data, "train.stage3.epochs=2"]
    with pytest.raises(Pose3DError, match=r"c/seed=0/config\.yaml holds another recipe than this ablation's "
                                          r"\(train\.stage3\.epochs: 1 -> 2\)"):
        run_ablation("smoke", [0], [0], out, longer, executor=_in_process(calls), log=lambda line: None)
    assert calls == [] and csv_path.read_text() == text
    run_ablation("smoke", [0], [], out, longer, executor=_in_process(calls), log=lambda line: None, replace=True)
    assert calls == [("c", 0, 3), ("c", 0, None), ("b", 0, 3), ("b", 0, None)]
    # another Stage 1 makes every stage stale: c trains again and b follows its new Stage 2
    calls.clear()
    run_ablation("smoke", [0], [], out, [*longer, "train.stage1.lr=2e-3"], executor=_in_process(calls),
                 log=lambda line: None, replace=True)
    assert calls == [("c", 0, 1), ("c", 0, 2), ("c", 0, 3), ("c", 0, None), ("b", 0, 3), ("b", 0, None)]


# ----------------------------------------------------------------------------- statistics, table, words, figure

A = [210.0, 214.0, 219.0]
B = [200.0, 203.0, 199.0, 205.0, 201.0]
C = [199.0, 204.0, 200.0, 202.0, 203.0]


def _student_t_two_sided_p(t: float, df: float, n: int = 20000) -> float:
    """2 P(T > |t|) by Simpson's rule on the Student t density (independent of scipy)."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    pdf = lambda x: c * (1 + x * x / df) ** (-(df + 1) / 2)  # noqa: E731
    h = abs(t) / n
    area = pdf(0) + pdf(abs(t)) + sum((4 if k % 2 else 2) * pdf(k * h) for k in range(1, n))
    return 2 * (0.5 - area * h / 3)


def test_welch_test_matches_a_hand_computation():
    m1, m2, v1, v2 = statistics.fmean(A), statistics.fmean(B), statistics.variance(A), statistics.variance(B)
    se = math.sqrt(v1 / 3 + v2 / 5)
    t = (m2 - m1) / se
    df = se ** 4 / ((v1 / 3) ** 2 / 2 + (v2 / 5) ** 2 / 4)
    test = welch_test(A, B, "a", "b")
    assert (test.n1, test.n2) == (3, 5)
    assert test.difference == pytest.approx(m2 - m1) == pytest.approx(-12.7333, abs=1e-4)
    assert test.t == pytest.approx(t, rel=1e-12) and test.df == pytest.approx(df, rel=1e-12)
    assert test.p == pytest.approx(_student_t_two_sided_p(t, df), abs=1e-8)
    assert test.significant
    # the 95% interval is centred on the difference and its ends are where p reaches 0.05
    assert (test.ci_low + test.ci_high) / 2 == pytest.approx(test.difference)
    assert _student_t_two_sided_p((test.ci_high - test.ci_low) / 2 / se, df) == pytest.approx(0.05, abs=1e-8)
    assert welch_test([1.0], B) is None and welch_test([2.0, 2.0], [2.0, 2.0]) is None


@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")  # scipy, on the constant arm
def test_one_arm_without_spread_is_still_a_test():
    """The other arm carries the variance: only both without spread leave the test undefined."""
    one_flat = welch_test([1.0, 2.0, 3.0], [5.0, 5.0, 5.0])
    assert one_flat is not None and one_flat.difference == pytest.approx(3.0) and one_flat.df == pytest.approx(2.0)


@pytest.mark.parametrize("p, significant", [(0.049, True), (0.05, False), (0.07, False)])
def test_significant_means_p_below_alpha(p, significant):
    assert ablation.ALPHA == 0.05
    test = ablation.WelchTest("a", "b", 3, 5, -1.0, -2.5, 4.0, p, -2.0, 0.0)
    assert test.significant is significant


def test_figure_error_bars_are_the_sample_sd_of_the_seeds():
    import matplotlib.pyplot as plt

    rows = _rows(a=A, b=B, c=C)
    fig = ablation.plot_ablation(rows, [("wild_test", "p1_mpjpe")])
    try:
        ax = fig.axes[0]
        for arm_index, values in enumerate((A, B, C)):
            (low, high), = [seg[:, 1] for seg in ax.containers[arm_index].lines[2][0].get_segments()]
            assert (high - low) / 2 == pytest.approx(statistics.stdev(values))  # n - 1, not n
            assert (high + low) / 2 == pytest.approx(statistics.fmean(values))
    finally:
        plt.close(fig)


def test_figure_titles_name_each_test_and_the_run():
    """The panel p-values say which test they are (the claim's verdict on (c)−(b) follows the paired one), and
    the overall title names the run, so two profiles' figures differ."""
    import matplotlib.pyplot as plt

    rows = _rows(a=A, b=B, c=C)
    welch_ab, welch_bc = (ablation.compare(rows, "wild_test", "p1_mpjpe", a, b) for a, b in ablation.COMPARISONS)
    paired = ablation.paired_test(rows, "wild_test", "p1_mpjpe", *ablation.PAIRED)
    fig = ablation.plot_ablation(rows, [("wild_test", "p1_mpjpe")], run_name="cpu-intel-xeon")
    try:
        assert fig.axes[0].get_title().splitlines() == [
            "wild_test Protocol #1 MPJPE (mm)", f"(b)−(a): Welch p={welch_ab.p:.2g}",
            f"(c)−(b): Welch p={welch_bc.p:.2g}, paired p={paired.p:.2g}"]
        assert fig._suptitle.get_text().startswith("Ablation (cpu-intel-xeon), Stage 3: ")
    finally:
        plt.close(fig)
    fig = ablation.plot_ablation(_rows(a=A[:1], b=B[:1], c=C[:1]), [("wild_test", "p1_mpjpe")])
    try:
        assert fig.axes[0].get_title().splitlines()[1:] == ["(b)−(a): Welch n/a", "(c)−(b): Welch n/a, paired n/a"]
        assert fig._suptitle.get_text().startswith("Ablation, Stage 3: ")
    finally:
        plt.close(fig)


def _rows(**arms: list[float]) -> list[dict]:
    rows = []
    for arm, values in arms.items():
        for seed, v in enumerate(values):
            rows.append({"arm": arm, "seed": seed, "split": "wild_test", "protocol": "p1_mpjpe", "value": v})
            rows.append({"arm": arm, "seed": seed, "split": "mpii_val", "protocol": "pckh@0.5", "value": v / 400})
    return rows


def test_table_and_claims_say_which_effects_are_significant():
    rows = _rows(a=A, b=B, c=C)
    ab, bc = welch_test(A, B), welch_test(B, C)
    table = ablation.ablation_table(rows, [("wild_test", "p1_mpjpe"), ("mpii_val", "pckh@0.5")])
    lines = table.splitlines()
    assert lines[2] == "| wild_test Protocol #1 MPJPE (mm) | 214.3 ± 4.5 (3 seeds) | 201.6 ± 2.4 (5 seeds) | 201.6 ± 2.1 (5 seeds) |"
    assert lines[3].startswith("| mpii_val PCKh@0.5 (%) | 53.6 ± 1.1 (3 seeds) |")  # fractions shown in %
    test_lines = [line for line in lines if "(b) − (a)" in line or "(c) − (b)" in line]
    assert test_lines[0] == (f"| wild_test Protocol #1 MPJPE (mm) | (b) − (a) | -12.7 ({ab.ci_low:+.1f} to {ab.ci_high:+.1f}) "
                             f"| {ab.t:.2f} | {ab.df:.1f} | {ab.p:.3g} | significant (p < 0.05) |")
    assert bc.p >= 0.05 and test_lines[1].endswith("| not significant at this scale |")
    assert "| (b) − (a) | -3.2 (" in test_lines[2]  # PCKh difference in points

    claims = claims_summary(rows).split("\n\n")
    assert len(claims) == 2
    assert "transfers 3D pose to the wild" in claims[0] and "support the claim" in claims[0]
    assert f"p = {ab.p:.2g})" in claims[0] and "from 214.3 ± 4.5 (3 seeds) to 201.6 ± 2.4 (5 seeds) mm" in claims[0]
    assert "geometric loss" in claims[1] and "not significant at this scale" in claims[1]
    assert "neither confirm nor refute" in claims[1]
    worse = claims_summary(_rows(a=B, b=A, c=A))
    assert "contradict the claim" in worse.split("\n\n")[0]
    single = claims_summary(_rows(a=[210.0], b=[200.0]))
    assert "cannot test the claim" in single and "No results of both arms" in single.split("\n\n")[1]


def test_summarize_writes_table_and_figure_and_rejects_a_wrong_csv(tmp_path):
    rows = _rows(a=A, b=B, c=C)
    path = write_ablation_csv(rows, tmp_path / "ablation.csv")
    assert read_ablation_csv(path) == rows
    import matplotlib.pyplot as plt

    open_figures = plt.get_fignums()
    text = summarize(path)
    assert plt.get_fignums() == open_figures  # the figure is closed once saved
    assert (tmp_path / "ablation.md").read_text() == text
    assert "## The paper's two claims" in text and claims_summary(rows) in text
    png = (tmp_path / "ablation.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    (tmp_path / "bad.csv").write_text("arm,seed,split,value\n")
    with pytest.raises(Pose3DError, match="bad.csv: expected columns arm,seed,split,protocol,value"):
        read_ablation_csv(tmp_path / "bad.csv")
    (tmp_path / "bad.csv").write_text("arm,seed,split,protocol,value\nd,0,wild_test,p1_mpjpe,1.0\n")
    with pytest.raises(Pose3DError, match="line 2: column 'arm' is 'd'"):
        read_ablation_csv(tmp_path / "bad.csv")
    with pytest.raises(Pose3DError, match="run `make ablation` first"):
        read_ablation_csv(tmp_path / "missing.csv")


def test_fewer_seeds_do_not_shrink_an_ablation_csv_and_seed_is_not_a_schedule_key(tmp_path):
    out = tmp_path / "ablation"
    rows = [{"arm": arm, "seed": seed, "split": "wild_test", "protocol": "p1_mpjpe", "value": 1.0}
            for arm in "abc" for seed in (0, 1)]
    write_ablation_csv(rows, out / "ablation.csv")
    before = (out / "ablation.csv").read_bytes()
    with pytest.raises(Pose3DError, match=r"ablation.csv holds runs these seeds would drop from it: \(a\) seed 1, "
                                          r"\(b\) seed 1, \(c\) seed 1; give them too"):
        run_ablation("smoke", [0], [0], out, executor=lambda *a: None, log=lambda line: None)
    assert (out / "ablation.csv").read_bytes() == before
    with pytest.raises(Pose3DError, match=r"--set seed=5: the ablation's seeds come from --seeds-bc and --seeds-a"):
        run_ablation("smoke", [0, 1], [0, 1], out, ["seed=5"], executor=lambda *a: None, log=lambda line: None)
    # an every-arm override with which two arms train the same recipe (arm c's geometric weight 0 is arm b),
    # as a dotted key or inside a section's mapping, is refused; another value of that key keeps the arms apart
    for item in ("train.stage3.geometric_weight=0", "train={stage3: {geometric_weight: 0.0}}"):
        with pytest.raises(Pose3DError, match=r"with it arms \(b\) and \(c\) would train the same recipe \(the "
                                              r"arms differ in train\.stage1\.mix_2d, train\.stage2\.mix_2d, "
                                              r"train\.stage3\.geometric_weight, train\.stage3\.mix_2d only\)"):
            run_ablation("smoke", [0, 1], [0, 1], out, [item], executor=lambda *a: None, log=lambda line: None)
    for item in ("train.stage3.geometric_weight=0.05", "train.stage2.mix_2d=false", "train.stage1.epochs=1"):
        check_schedule("smoke", [item])  # three different arms still
    assert (out / "ablation.csv").read_bytes() == before


def test_paired_test_matches_a_hand_computation_over_the_shared_seeds():
    """Arms b and c share Stages 1-2 per seed: the paired t of their per-seed differences, by hand."""
    rows = _rows(b=B, c=C) + [{"arm": "c", "seed": 9, "split": "wild_test", "protocol": "p1_mpjpe", "value": 500.0}]
    rows = [r for r in rows if r["arm"] == "b"][::-1] + [r for r in rows if r["arm"] == "c"]  # pairs by seed, not position
    d = [c - b for b, c in zip(B, C)]  # seed 9 has no (b) run: left out
    se = statistics.stdev(d) / math.sqrt(len(d))
    t = statistics.fmean(d) / se
    test = ablation.paired_test(rows, "wild_test", "p1_mpjpe", "b", "c")
    assert test.n == 5 and test.df == 4 and test.difference == pytest.approx(statistics.fmean(d))
    assert test.t == pytest.approx(t, rel=1e-12)
    assert test.p == pytest.approx(_student_t_two_sided_p(t, 4), abs=1e-8)
    assert _student_t_two_sided_p((test.ci_high - test.ci_low) / 2 / se, 4) == pytest.approx(0.05, abs=1e-8)
    same = _rows(b=B, c=[v + 1.0 for v in B])  # every difference 1: no spread, no test
    assert ablation.paired_test(same, "wild_test", "p1_mpjpe", "b", "c") is None
    table = ablation.ablation_table(rows, [("wild_test", "p1_mpjpe")])
    assert "Arms (b) and (c) share Stages 1-2 per seed" in table
    assert (f"| wild_test Protocol #1 MPJPE (mm) | 5 | {test.difference:+.1f} ({test.ci_low:+.1f} to "
            f"{test.ci_high:+.1f}) | {test.t:.2f} | {test.df:.1f} | {test.p:.3g} |") in table
    claim = claims_summary(_rows(a=A, b=B, c=C)).split("\n\n")[1]
    assert f"Paired by seed (the two arms share Stages 1-2 per seed; 5 seeds): {test.difference:+.1f} mm" in claim


def test_the_paired_test_decides_the_second_claims_verdict():
    """Seeds that move together: Welch sees only the spread between seeds, the pairing removes it."""
    b = [200.0, 220.0, 240.0, 260.0, 280.0]
    c = [v - 3.0 + 0.2 * (i % 2) for i, v in enumerate(b)]
    rows = _rows(a=A, b=b, c=c)
    assert not welch_test(b, c).significant and ablation.paired_test(rows, "wild_test", "p1_mpjpe", "b", "c").significant
    claim = claims_summary(rows).split("\n\n")[1]
    assert "support the claim" in claim and "not significant at this scale, so" not in claim


def test_a_value_that_is_not_finite_leaves_the_tests_undefined_not_insignificant():
    """`evaluate` writes nan for a diverged run's metric. Before, scipy's p = nan read as 'not significant
    at this scale'; now both tests are undefined and the table says why."""
    b_nan = [B[0], float("nan"), *B[2:]]
    assert welch_test(A, b_nan) is None and welch_test(A, [*B[:-1], float("inf")]) is None
    rows = _rows(a=A, b=b_nan, c=C)
    assert ablation.paired_test(rows, "wild_test", "p1_mpjpe", "b", "c") is None
    table = ablation.ablation_table(rows, [("wild_test", "p1_mpjpe")])
    assert "not significant" not in table
    assert table.count("n/a: needs two seeds per arm, finite and with some spread") == 2  # (b)-(a), (c)-(b)
    assert "n/a: needs two shared seeds, finite, whose differences spread" in table
    assert welch_test(A, B) is not None  # the same arms, all finite: a test
    # before: the table itself failed (statistics.stdev on nan: AttributeError); now the seed is named apart
    mean, sd = statistics.fmean(b_nan[:1] + b_nan[2:]), statistics.stdev(b_nan[:1] + b_nan[2:])
    assert f"| {mean:.1f} ± {sd:.1f} ({len(B) - 1} seeds; 1 more not finite) |" in table
    assert ablation._mean_sd_words([float("nan")], "p1_mpjpe") == "not finite (1 seed)"
    ablation.plot_ablation(rows, [("wild_test", "p1_mpjpe")]).clf()  # draws, the nan seed left out

"""The README results table is generated from metrics.csv, and the committed README matches it."""
from __future__ import annotations

import re

import pytest

from pose3dlib.engine.errors import Pose3DError
from pose3dlib.engine.paths import PROJECT_ROOT
from pose3dlib.evaluation.evaluate import CSV_COLUMNS, read_metrics_csv, write_metrics_csv
from pose3dlib.evaluation.report import END, START, results_table, update_readme


def _rows():
    return [
        {"stage": "mean_pose", "split": "lab_test", "protocol": "p1_mpjpe", "action": "Walking", "value": 150.0},
        {"stage": "mean_pose", "split": "lab_test", "protocol": "p1_mpjpe", "action": "all", "value": 150.04},
        {"stage": "mean_pose", "split": "lab_test", "protocol": "paper", "action": "all", "value": 160.0},
        {"stage": "stage3", "split": "lab_test", "protocol": "p1_mpjpe", "action": "all", "value": 80.26},
        {"stage": "stage3", "split": "lab_test", "protocol": "paper", "action": "all", "value": 70.0},
        {"stage": "stage3", "split": "mpii_val", "protocol": "pckh@0.5", "action": "all", "value": 0.4567},
    ]


def test_csv_round_trip(tmp_path):
    path = write_metrics_csv(_rows(), tmp_path / "m.csv")
    assert path.read_text().splitlines()[0] == ",".join(CSV_COLUMNS)
    back = read_metrics_csv(path)
    assert [r["value"] for r in back] == pytest.approx([r["value"] for r in _rows()], abs=1e-4)


def test_table_has_one_row_per_model_and_split():
    table = results_table(_rows())
    lines = table.splitlines()
    assert len(lines) == 2 + 3  # header, rule, (mean_pose, lab), (stage3, lab), (stage3, mpii_val)
    assert "| mean-pose baseline | lab_test |" in table and "150.0" in table
    assert "80.3" in table and "70.0" in table and "45.7%" in table



def test_table_shows_the_average_over_actions_whatever_the_row_order():
    """The cell is the 'all' row's value, also where a per-action row comes after it (a file sorted by hand)."""
    rows = _rows()
    rows.append({"stage": "stage3", "split": "lab_test", "protocol": "paper", "action": "Walking", "value": 99.0})
    rows.append({"stage": "mean_pose", "split": "lab_test", "protocol": "paper", "action": "Walking", "value": 121.0})
    table = results_table(rows)
    assert "99.0" not in table and "121.0" not in table
    assert "| Stage 3 (+geometric) | lab_test | 70.0 | 80.3 |" in table
    assert "| mean-pose baseline | lab_test | 160.0 | 150.0 |" in table


def test_update_readme_rewrites_only_the_block(tmp_path):
    csv = write_metrics_csv(_rows(), tmp_path / "m.csv")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold\n{END}\noutro\n")
    update_readme(readme, csv)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("\noutro\n") and "old" not in text
    assert "80.3" in text


def test_the_readme_never_takes_a_runs_table_that_predates_its_checkpoints(tmp_path):
    """A run's metrics.csv older than a stage checkpoint beside it (a stage trained since, or an unfinished one
    whose scoring went to metrics_other.csv): report refuses to put its numbers under the run in the README;
    once the run is scored again it writes them. A table without checkpoints beside it is taken as it is."""
    import os

    from pose3dlib.engine.checkpoint import make_checkpoint, save_checkpoint
    from pose3dlib.engine.errors import Pose3DError
    from pose3dlib.engine.runs import checkpoint_path

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold\n{END}\n")
    run = tmp_path / "run"
    csv = write_metrics_csv(_rows(), run / "metrics.csv")
    update_readme(readme, csv)  # no checkpoint beside it
    ckpt = save_checkpoint(checkpoint_path(run, 3), make_checkpoint(model_state={}, config={}, stage=3))
    os.utime(csv, (1_000_000, 1_000_000))  # scored before the checkpoint was written
    readme.write_text(f"intro\n{START}\nold\n{END}\n")
    with pytest.raises(Pose3DError, match=r"metrics\.csv: does not score the stage 3 checkpoint beside it"):
        update_readme(readme, csv)
    assert "old" in readme.read_text()
    os.utime(ckpt, (900_000, 900_000))  # scored after it
    update_readme(readme, csv)
    assert "80.3" in readme.read_text()


def test_committed_readme_matches_committed_metrics():
    csv = PROJECT_ROOT / "runs" / "cpu" / "metrics.csv"
    assert csv.is_file(), f"{csv} is committed (git ls-files runs/cpu) but missing: restore it or run `make reproduce`"
    text = (PROJECT_ROOT / "README.md").read_text()
    block = text.split(START, 1)[1].split(END, 1)[0]
    expected = results_table(read_metrics_csv(csv))
    assert expected in block, "README results table is stale: run `python -m pose3dlib report`"
    assert re.search(r"\d", block)


def test_table_columns_follow_the_evaluators_protocol_list(monkeypatch):
    from pose3dlib.evaluation import evaluate

    rows = [*_rows(), *({"stage": stage, "split": "lab_test", "protocol": "new_protocol", "action": "all",
                         "value": 12.34} for stage in ("mean_pose", "stage3"))]
    with pytest.raises(evaluate.Pose3DError, match="new_protocol"):  # not the evaluator's: refused, not dropped
        results_table(rows)
    monkeypatch.setitem(evaluate.PROTOCOLS, "new_protocol", "A new protocol (mm)")
    header, *_ = results_table(rows).splitlines()
    assert header.endswith("| PCKh@0.5 (MPII val) | A new protocol (mm) |") and "12.3" in results_table(rows)


def test_pckh_column_label_carries_the_rows_threshold():
    rows = [{"stage": "stage3", "split": "mpii_val", "protocol": "pckh@0.2", "action": "all", "value": 0.25}]
    assert "| PCKh@0.2 (MPII val) |" in results_table(rows).splitlines()[0]


def test_a_converted_3dhp_evaluation_gets_its_own_columns():
    # evaluate_run adds the official 3DHP rows (fractions, as PCKh) on a converted 3DHP wild_test
    import numpy as np

    from pose3dlib.evaluation.eval_3dhp import mpi3dhp_rows

    rng = np.random.default_rng(0)
    gt = rng.normal(0, 200, (12, 16, 3))
    rows = [*_rows(), *mpi3dhp_rows("stage3", "wild_test", gt + rng.normal(0, 30, gt.shape), gt,
                                    np.repeat([1, 2, 3, 4, 5, 6], 2))]
    header, _, *body = results_table(rows).splitlines()
    assert header.endswith("| 3DPCK@150mm, MPI-INF-3DHP | AUC 0-150mm, MPI-INF-3DHP |")
    wild = next(line for line in body if "| wild_test |" in line)
    pck = next(r["value"] for r in rows if r["protocol"] == "3dhp_pck" and r["action"] == "all")
    assert 0 < pck <= 1 and f"| {100 * pck:.1f}% |" in wild  # a fraction, shown in percent as PCKh is


def test_protocol_bars_are_millimetres_only():
    """A converted MPI-INF-3DHP split adds fractions (3DPCK, AUC): they get no bar on the mm axis."""
    from pose3dlib.evaluation.report import plot_protocols

    rows = [{**r, "split": "wild_test"} for r in _rows() if r["split"] == "lab_test"]
    rows += [{"stage": "stage3", "split": "wild_test", "protocol": p, "action": "all", "value": 0.6}
             for p in ("3dhp_pck", "3dhp_auc")]
    ax = plot_protocols(rows, split="wild_test").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["paper evaluator", "Protocol #1 MPJPE"]
    assert ax.get_ylabel() == "error (mm)"


def test_another_runs_metrics_do_not_go_into_the_project_readme(tmp_path, capsys):
    from pose3dlib.evaluation.report import check_pairing
    from pose3dlib.tools.cli import main

    before = (PROJECT_ROOT / "README.md").read_bytes()
    assert main(["report", "--metrics", "runs/smoke/metrics.csv"]) == 2
    assert "--metrics runs/smoke/metrics.csv: the project README's results table is the cpu run's" in capsys.readouterr().err
    assert (PROJECT_ROOT / "README.md").read_bytes() == before
    check_pairing("README.md", "runs/cpu/metrics.csv")  # the pairing the README holds
    check_pairing(tmp_path / "mine.md", "runs/smoke/metrics.csv")  # another run into a file of one's own
    # through a symbolic link to the clone: the same files (before, the strings differed and the guard let
    # runs/smoke's table into the project README, and refused the cpu run's own)
    link = tmp_path / "clone"
    link.symlink_to(PROJECT_ROOT)
    with pytest.raises(Pose3DError, match="the project README's results table is the cpu run's"):
        check_pairing(link / "README.md", "runs/smoke/metrics.csv")
    check_pairing("README.md", link / "runs" / "cpu" / "metrics.csv")
    # --print: any run's table on the terminal, nothing written
    mine = tmp_path / "m.csv"
    mine.write_text("stage,split,protocol,action,value\nstage3,wild_test,p1_mpjpe,all,123.45\n")
    assert main(["report", "--metrics", str(mine), "--print"]) == 0
    out = capsys.readouterr().out
    assert "| model | split |" in out and "| 123.5 |" in out
    assert (PROJECT_ROOT / "README.md").read_bytes() == before


def _stage_rows(stages: tuple[str, ...]) -> list[dict]:
    """lab_test rows of `stages` under two protocols and per action; the mean pose has no GT-2D value."""
    rows = []
    for k, stage in enumerate(stages):
        for protocol in ("p1_mpjpe", "p1_mpjpe_gt2d"):
            if stage == "mean_pose" and protocol == "p1_mpjpe_gt2d":
                continue
            for action in ("all", "Walking", "Eating"):
                rows.append({"stage": stage, "split": "lab_test", "protocol": protocol, "action": action,
                             "value": 100.0 + 10 * k})
    return rows


def _bar_colours(ax) -> dict[str, set[str]]:
    """Legend label -> the face colours of that label's bars."""
    import matplotlib.colors as mcolors

    return {c.get_label(): {mcolors.to_hex(p.get_facecolor()) for p in c.patches} for c in ax.containers}


def test_a_stage_has_the_same_colour_in_every_per_stage_figure():
    """With the mean-pose baseline or without it, per protocol, per action or per joint: Stage 2 is Stage 2's
    colour (viz.STAGE_COLOURS), not the colour cycle's next one."""
    import matplotlib.pyplot as plt
    import numpy as np

    from pose3dlib.evaluation import report
    from pose3dlib.evaluation.evaluate import JointPCKh
    from pose3dlib.plots.viz import STAGE_COLOURS

    expected = {report.STAGE_LABELS[s]: {c} for s, c in STAGE_COLOURS.items()}
    figures = [report.plot_protocols(_stage_rows(("mean_pose", "stage1", "stage2", "stage3"))),
               report.plot_protocols(_stage_rows(("stage2", "stage3"))),
               report.plot_per_action(_stage_rows(("mean_pose", "stage1", "stage2", "stage3"))),
               report.plot_per_action(_stage_rows(("stage1", "stage3")))]
    try:
        for fig in figures:
            colours = _bar_colours(fig.axes[0])
            assert colours == {label: expected[label] for label in colours}
        assert len(_bar_colours(figures[0].axes[0])) == 4  # every row drawn, the mean pose and Stage 1 included
        joints = report.plot_pckh_per_joint({"stage3": JointPCKh(np.full(16, 0.5), 0.5, 0.5)})
        figures.append(joints)
        (colours,) = _bar_colours(joints.axes[0]).values()
        assert colours == expected[report.STAGE_LABELS["stage3"]]
        assert "lower is better" in figures[2].axes[0].get_title()
    finally:
        for fig in figures:
            plt.close(fig)


def test_a_protocol_without_a_value_is_marked_not_left_blank():
    """The mean pose has no 'Protocol #1 with GT 2D': its slot says n/a, the other bars keep their labels."""
    import matplotlib.pyplot as plt
    from matplotlib.text import Annotation

    from pose3dlib.evaluation.report import plot_protocols

    fig = plot_protocols(_stage_rows(("mean_pose", "stage3")))
    try:
        ax = fig.axes[0]
        notes = [t for t in ax.texts if not isinstance(t, Annotation)]
        assert [t.get_text() for t in notes] == ["n/a"]
        (gt2d,) = [k for k, t in enumerate(ax.get_xticklabels()) if "GT 2D" in t.get_text()]
        assert notes[0].get_position()[0] == pytest.approx(gt2d - 0.2)  # the mean pose's slot, first of two
        bar_labels = sorted(t.get_text() for t in ax.texts if isinstance(t, Annotation))
        assert bar_labels == ["", "100", "110", "110"]  # the empty bar gets no 'nan'
    finally:
        plt.close(fig)


def _full_rows():
    """Every "all" row an evaluation of the mean pose and stages 1-3 writes on lab_test, wild_test and mpii_val."""
    three_d = ("paper", "p1_mpjpe", "p1_mpjpe_gt2d", "p2_pa_mpjpe", "n_mpjpe")
    rows = [{"stage": "mean_pose", "split": split, "protocol": p, "action": "all", "value": 200.0}
            for split in ("lab_test", "wild_test") for p in three_d if p != "p1_mpjpe_gt2d"]
    for stage in ("stage1", "stage2", "stage3"):
        rows += [{"stage": stage, "split": split, "protocol": p, "action": "all", "value": 100.0}
                 for split in ("lab_test", "wild_test") for p in three_d]
        rows.append({"stage": stage, "split": "mpii_val", "protocol": "pckh@0.5", "action": "all", "value": 0.8})
    return rows


def test_structural_blanks_pass_and_a_missing_row_is_named(tmp_path):
    """Blank cells the evaluator means (PCKh on 3D splits, ground-truth 2D for the mean pose) are fine;
    a row one stage has and another lacks on the same split stops the table, naming file, stage, protocol."""
    rows = _full_rows()
    table = results_table(rows)
    assert len(table.splitlines()) == 1 + 1 + 2 + 3 * 3  # header, rule, mean pose x 2 splits, 3 stages x 3 splits
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold\n{END}\n")
    for gone in (("stage2", "wild_test", "p2_pa_mpjpe"), ("stage1", "mpii_val", "pckh@0.5")):
        cut = [r for r in rows if (r["stage"], r["split"], r["protocol"]) != gone]
        csv = write_metrics_csv(cut, tmp_path / "cut.csv")
        with pytest.raises(Pose3DError) as e:
            update_readme(readme, csv)
        message = str(e.value)
        named = (f"{gone[0]} has no {gone[2]} row on {gone[1]}" if gone[1] != "mpii_val"  # its only row there
                 else f"{gone[0]} has no rows on {gone[1]}, where stage2, stage3 have")
        assert str(csv) in message and named in message, message
        assert readme.read_text() == f"intro\n{START}\nold\n{END}\n"  # nothing written
    only_stage3 = [r for r in rows if r["stage"] in ("mean_pose", "stage3")]  # `evaluate --stages 3`: complete
    assert "Stage 3" in results_table(only_stage3) and "Stage 1" not in results_table(only_stage3)
    no_stage_n_mpjpe = [r for r in rows if r["stage"] == "mean_pose" or r["protocol"] != "n_mpjpe"]
    with pytest.raises(Pose3DError, match="mean_pose has a n_mpjpe row on lab_test that no stage has"):
        results_table(no_stage_n_mpjpe)


@pytest.mark.parametrize("cut, named", [
    (lambda r: (r["stage"], r["split"], r["protocol"]) == ("mean_pose", "lab_test", "p1_mpjpe"),
     "mean_pose has no p1_mpjpe row on lab_test, which the stages have there"),
    (lambda r: r["stage"] == "mean_pose" and r["split"] == "wild_test",
     "mean_pose has no rows on wild_test, where the stages have 3D errors"),
    (lambda r: r["stage"] != "mean_pose" and r["split"] == "wild_test",
     "stage1 has no rows on wild_test, where mean_pose has"),
])
def test_the_baseline_and_whole_splits_are_checked_too(cut, named):
    with pytest.raises(Pose3DError, match=re.escape(named)):
        results_table([r for r in _full_rows() if not cut(r)])


def test_a_row_written_twice_is_refused():
    rows = _full_rows()
    twice = [*rows, {**rows[-1], "value": 0.1}]  # stage3's PCKh again, as from a second evaluation appended
    with pytest.raises(Pose3DError, match="stage3 has two pckh@0.5 rows on mpii_val for action all"):
        results_table(twice)
    per_action = {"stage": "stage3", "split": "lab_test", "protocol": "p1_mpjpe", "action": "Walking", "value": 1.0}
    with pytest.raises(Pose3DError, match="for action Walking"):
        results_table([*rows, per_action, per_action])


def test_a_metrics_file_without_rows_is_refused_and_a_partial_one_is_said_to_be(tmp_path, capsys):
    """`report --print` of a header-only CSV printed an empty table and exited 0; of metrics_other.csv it did
    not say the table is partial."""
    from pose3dlib.tools import cli

    empty = tmp_path / "metrics.csv"
    empty.write_text(",".join(CSV_COLUMNS) + "\n")
    with pytest.raises(Pose3DError, match=rf"^{re.escape(str(empty))}: holds the header but no rows"):
        read_metrics_csv(empty)
    other = tmp_path / "metrics_other.csv"
    other.write_bytes((PROJECT_ROOT / "runs" / "cpu" / "metrics.csv").read_bytes())
    assert cli.main(["report", "--metrics", str(other), "--print"]) == 0
    assert "(metrics_other.csv: a scoring of fewer stages or samples, of other data or of an unfinished stage" in (
        capsys.readouterr().out)


def test_the_readme_never_takes_a_run_whose_stage_was_trained_with_other_settings(tmp_path):
    """make reproduce keeps a stage trained by hand with other settings (a notebook run with overrides); report
    --config refuses to put such a run's table in the README as the profile's, naming the stage and the key."""
    from pose3dlib.config import config_to_dict, dump_config, load_config
    from pose3dlib.engine.checkpoint import make_checkpoint, save_checkpoint
    from pose3dlib.engine.errors import Pose3DError
    from pose3dlib.engine.runs import checkpoint_path
    from pose3dlib.evaluation.report import check_stages_match_config

    run = tmp_path / "run"
    csv = write_metrics_csv(_rows(), run / "metrics.csv")
    by_hand = load_config("configs/smoke.yaml", ["train.stage1.lr=0.002"])
    save_checkpoint(checkpoint_path(run, 1), make_checkpoint(model_state={}, config=config_to_dict(by_hand), stage=1,
                                                             extra={"finished": True}))
    with pytest.raises(Pose3DError, match=r"stage1/last.pt was not trained as configs/smoke.yaml trains stage 1 "
                                          r"\(train.stage1.lr: 0.002 -> 0.001\).*remove .*stage1/ and run `make reproduce`"):
        check_stages_match_config(csv, "configs/smoke.yaml")
    dump_config(by_hand, tmp_path / "by_hand.yaml")
    check_stages_match_config(csv, tmp_path / "by_hand.yaml")  # the config it was trained with: its run


def test_make_reproduce_passes_the_profiles_config_to_report(make_n):
    out = make_n("reproduce", "PROFILE=cpu").stdout
    line = next(x for x in out.splitlines() if "pose3dlib report" in x)
    assert "--metrics runs/cpu/metrics.csv" in line and "--config configs/cpu.yaml" in line, line

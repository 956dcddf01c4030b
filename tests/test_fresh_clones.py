"""tools.bench.fresh_clones: the record of timed fresh clones agrees with its own summary, and the
checks find the disagreements they are for (on small pages written here)."""
from __future__ import annotations

import pytest

from pose3dlib.engine.errors import DataError
from pose3dlib.engine.paths import PROJECT_ROOT
from pose3dlib.tools.bench import fresh_clones as fc
from pose3dlib.tools.bench.command import fresh_clones_command

SUMMARY_HEAD = "| " + " | ".join(fc.SUMMARY_HEADER) + " |\n|---|---:|---|---|---:|\n"
RUNS_HEAD = "| " + " | ".join(fc.RUNS_HEADER) + " |\n|---|---|---:|---|---|---|\n"


def page(summary_rows: list[str], run_rows: list[str]) -> str:
    return ("# timings\n\n" + SUMMARY_HEAD + "\n".join(summary_rows) + "\n\nprose\n\n"
            + RUNS_HEAD + "\n".join(run_rows) + "\n\nmore prose\n")


RUNS = ["| 1st (first) | 2026-12-02 | 21.9 | 8.6 / 7.2 / 2.1 (17.9) | 2.0 / 2.1 | - |",
        "| 2nd | 2026-12-02 | **17.7** | 6.6 / 5.7 / 1.9 (14.3) | 0.4 / 2.0 | 150 before, 160-170 at end |",
        "| 4th (Intel Xeon; a slow hour) | 2026-12-03 | 27.6 | 10.61 / 8.80 / 3.02 (22.4) | 0.5 / 1.8 | 168 at end |"]
SUMMARY = ["| AMD EPYC (1st to 3rd) | 2 | 17.7-21.9 | 14.3-17.9 | 1 |",
           "| Intel Xeon (4th) | 1 | 27.6 | 22.4 | 0 |",
           "| all | 3 | 17.7-27.6 | 14.3-22.4 | 1 |"]


def test_the_committed_record_agrees_with_its_summary():
    doc = PROJECT_ROOT / fc.TIMINGS_DOC
    text = fc.read(doc)
    runs = fc.parse_runs(text)
    assert len(runs) >= 2 and all(r.minutes > 0 and len(r.training) == 3 for r in runs)
    assert fc.disagreements(text) == []


def test_a_consistent_page_parses_and_agrees():
    text = page(SUMMARY, RUNS)
    runs = fc.parse_runs(text, "t.md")
    assert [r.clone for r in runs] == [1, 2, 4]
    assert runs[1].minutes == 17.7 and runs[1].met and not runs[0].met
    assert runs[1].host_gflops == (150.0, 160.0, 170.0) and runs[0].host_gflops == ()
    assert runs[2].cpu == "Intel Xeon" and runs[0].cpu == "AMD EPYC"
    assert fc.disagreements(text, "t.md") == []
    rows = fc.parse_summary(text, "t.md")
    assert rows[0].clones == (1, 2, 3) and rows[1].clones == (4,) and rows[2].clones is None
    assert fc.summarise(runs, rows[0].clones) == (2, (17.7, 21.9), (14.3, 17.9), 1)


@pytest.mark.parametrize("row, changed", [
    (0, "| AMD EPYC (1st to 3rd) | 3 | 17.7-21.9 | 14.3-17.9 | 1 |"),    # a count not updated
    (0, "| AMD EPYC (1st to 3rd) | 2 | 17.7-22.9 | 14.3-17.9 | 1 |"),    # a stale range
    (2, "| all | 3 | 17.7-27.6 | 14.3-22.4 | 2 |"),                     # the tally
    (1, "| Intel Xeon (4th) | 1 | 27.6 | 22.0 | 0 |"),                  # a single value
])
def test_a_stale_summary_row_is_found(row, changed):
    summary = list(SUMMARY)
    summary[row] = changed
    problems = fc.disagreements(page(summary, RUNS), "t.md")
    assert len(problems) == 1 and summary[row].split(" | ")[0].strip("| ") in problems[0]


def test_a_training_total_that_is_not_the_sum_is_found_and_rounding_is_not():
    runs = list(RUNS)
    runs[0] = runs[0].replace("(17.9)", "(18.3)")  # 8.6 + 7.2 + 2.1 = 17.9
    summary = [SUMMARY[0].replace("14.3-17.9", "14.3-18.3"), SUMMARY[1], SUMMARY[2]]
    problems = fc.disagreements(page(summary, runs), "t.md")
    assert len(problems) == 1 and problems[0].startswith("1: training")
    # within the rounding of one-decimal stages: 6.6 + 5.7 + 1.9 = 14.2, written 14.3 (each may be 0.05 off)
    assert fc.disagreements(page(SUMMARY, RUNS), "t.md") == []


def test_a_run_that_no_host_row_names_is_found():
    """A new run added below and to the 'all' row only: its host row was not updated."""
    fifth = "| 5th (Intel Xeon) | 2026-12-04 | 19.0 | 7.0 / 6.0 / 2.0 (15.0) | 0.1 / 1.9 | - |"
    summary = [*SUMMARY[:2], "| all | 4 | 17.7-27.6 | 14.3-22.4 | 2 |"]
    problems = fc.disagreements(page(summary, [*RUNS, fifth]), "t.md")
    assert problems == ["clones in no host row of the summary: 5"]


def test_clones_out_of_order_are_found():
    problems = fc.disagreements(page(SUMMARY, [RUNS[1], RUNS[0], RUNS[2]]), "t.md")
    assert any("out of order" in p for p in problems)


def test_named_clones_reads_lists_and_ranges():
    assert fc.named_clones("slow hours (31st to 33rd, 39th, 41st to 42nd)") == (31, 32, 33, 39, 41, 42)
    assert fc.named_clones("normal hours (29th, 30th and 37th)") == (29, 30, 37)
    assert fc.named_clones("all") == ()


def test_malformed_pages_name_the_file_and_the_row():
    with pytest.raises(DataError, match="t.md: no table headed"):
        fc.parse_runs("# nothing\n", "t.md")
    bad = [RUNS[0].replace("8.6 / 7.2 / 2.1 (17.9)", "8.6 / 7.2 (15.8)")]
    with pytest.raises(DataError, match=r"t.md: the 1st clone's training '8.6 / 7.2 \(15.8\)'"):
        fc.parse_runs(page(SUMMARY, bad), "t.md")
    with pytest.raises(DataError, match="has 5 cells, expected 6"):
        fc.parse_runs(page(SUMMARY, ["| 1st | 2026-12-02 | 21.9 | 8.6 / 7.2 / 2.1 (17.9) | - |"]), "t.md")
    with pytest.raises(DataError, match="no such file"):
        fc.read("/nonexistent/fresh-clone-timings.md")


def test_the_command_draws_the_figure_and_fails_on_a_stale_summary(tmp_path, capsys):
    good, stale = tmp_path / "good.md", tmp_path / "stale.md"
    good.write_text(page(SUMMARY, RUNS))
    stale.write_text(page([SUMMARY[0], SUMMARY[1], "| all | 4 | 17.7-27.6 | 14.3-22.4 | 1 |"], RUNS))
    figure = tmp_path / "out" / "timings.png"
    assert fresh_clones_command(good, figure) == 0
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "all: 3 clones, 17.7-27.6 min (training 14.3-22.4), 1 within 20" in capsys.readouterr().out
    assert fresh_clones_command(stale, tmp_path / "stale.png") == 1
    assert "'all': the runs give 3 clones" in capsys.readouterr().err


def test_the_figure_has_a_bar_per_stage_and_rest_for_every_run():
    from pose3dlib.plots.timings import plot_fresh_clones

    text = page(SUMMARY, RUNS)
    fig = plot_fresh_clones(fc.parse_runs(text, "t.md"), fc.parse_summary(text, "t.md"))
    ax_bar, ax_host = fig.axes
    heights = [p.get_height() for p in ax_bar.patches]
    assert len(heights) == 4 * len(RUNS)
    assert sum(heights[:4]) == pytest.approx(21.9)        # the 1st's bar reaches its minutes
    assert len(ax_host.lines) == 2 * 2                     # the two runs with a measured host speed


def test_figure_without_fresh_clones_and_two_modes_at_once_are_refused(tmp_path, capsys):
    """Before: `bench --figure x.png` ran the whole benchmark and ignored it; `--host-speed --fresh-clones`
    measured the host and silently skipped the check."""
    from pose3dlib.tools.cli import main

    assert main(["bench", "--figure", str(tmp_path / "x.png")]) == 2
    assert "--figure goes with --fresh-clones" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--host-speed", "--fresh-clones"])
    assert exit_info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()

"""pose3dlib.sweep: the summary table and figure built from sweep.csv rows (no notebooks run here)."""
from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")

from pose3dlib.evaluate import read_metrics_csv, write_metrics_csv  # noqa: E402
from pose3dlib.errors import Pose3DError  # noqa: E402
from pose3dlib.sweep import (  # noqa: E402
    SUMMARY_COLUMNS,
    mean_sd,
    parse_seeds,
    summarize,
    sweep_curve,
    sweep_table,
)


def _rows(values: dict[str, dict[tuple[str, str], float]], param: str = "geometric_weight",
          seed: int | None = None) -> list[dict]:
    rows = []
    tail = "" if seed is None else f"@seed={seed}"
    for v, cells in values.items():
        for (split, protocol), mm in cells.items():
            rows.append({"stage": f"stage3@{param}={v}{tail}", "split": split, "protocol": protocol,
                         "action": "all", "value": mm})
            # a per-action row and another stage must not leak into the summary
            rows.append({"stage": f"stage3@{param}={v}", "split": split, "protocol": protocol,
                         "action": "Eating", "value": -1.0})
            rows.append({"stage": f"stage2@{param}={v}", "split": split, "protocol": protocol,
                         "action": "all", "value": -2.0})
    return rows


def test_table_puts_each_value_in_its_column_and_leaves_gaps_empty():
    rows = _rows({
        "0": {("wild_test", "p1_mpjpe"): 378.29, ("wild_test", "p1_mpjpe_gt2d"): 254.87,
              ("lab_test", "p1_mpjpe"): 237.3, ("lab_test", "p1_mpjpe_gt2d"): 124.25},
        "0.1": {("wild_test", "p1_mpjpe"): 380.92, ("lab_test", "p1_mpjpe_gt2d"): 113.24},
    })
    lines = sweep_table(rows, "geometric_weight").splitlines()
    assert lines[0].startswith("| geometric_weight | wild_test P1 (mm) | wild_test P1, GT 2D (mm)")
    assert len(lines) == 4  # header, rule, two values
    assert [c.strip() for c in lines[2].strip("|").split("|")] == ["0", "378.3", "254.9", "237.3", "124.2"]
    assert [c.strip() for c in lines[3].strip("|").split("|")] == ["0.1", "380.9", "", "", "113.2"]


def test_curve_keeps_the_sweep_order():
    rows = _rows({v: {("wild_test", "p1_mpjpe"): float(i)} for i, v in enumerate(["0.1", "0", "1"])})
    assert sweep_curve(rows, "geometric_weight") == [("0.1", [0.0]), ("0", [1.0]), ("1", [2.0])]


def test_summarize_writes_table_and_figure_beside_the_csv(tmp_path):
    rows = _rows({v: {col: 100.0 + i for col in SUMMARY_COLUMNS} for i, v in enumerate(["0", "0.01"])})
    csv = write_metrics_csv(rows, tmp_path / "sweep.csv")
    table = summarize(csv, "geometric_weight")
    assert (tmp_path / "sweep.md").read_text().strip() == table
    png = (tmp_path / "sweep.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert len(read_metrics_csv(csv)) == len(rows)


def test_seeds_are_grouped_per_value_with_mean_and_sample_sd():
    col = ("wild_test", "p1_mpjpe")
    rows = []
    for seed, (a, b) in enumerate([(300.0, 200.0), (310.0, 204.0), (326.0, 190.0)]):
        rows += _rows({"0": {col: a}, "1": {col: b}}, seed=seed)
    assert sweep_curve(rows, "geometric_weight") == [("0", [300.0, 310.0, 326.0]), ("1", [200.0, 204.0, 190.0])]
    mean, sd = mean_sd([300.0, 310.0, 326.0])
    assert mean == pytest.approx(312.0) and sd == pytest.approx(((144 + 4 + 196) / 2) ** 0.5)
    assert mean_sd([5.0]) == (5.0, 0.0)
    lines = sweep_table(rows, "geometric_weight", columns=(col,)).splitlines()
    assert lines[0].endswith("| runs |")
    assert [c.strip() for c in lines[2].strip("|").split("|")] == ["0", f"312.0 ± {sd:.1f}", "3"]


def test_summarize_draws_a_seeded_sweep(tmp_path):
    rows = []
    for seed in (0, 1):
        rows += _rows({v: {col: 100.0 + i + seed for col in SUMMARY_COLUMNS} for i, v in enumerate(["0", "1"])},
                      seed=seed)
    table = summarize(write_metrics_csv(rows, tmp_path / "sweep.csv"), "geometric_weight")
    assert "100.5 ± 0.7" in table and (tmp_path / "sweep.png").stat().st_size > 10_000


def test_seeds_argument_is_parsed_or_rejected_by_name():
    assert parse_seeds("0, 1,2") == [0, 1, 2]
    assert parse_seeds("") == []
    with pytest.raises(Pose3DError, match="--seeds"):
        parse_seeds("0,x")

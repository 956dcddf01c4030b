"""Papermill parameter sweeps: run notebooks once per value of one parameter, then compare.

    python -m pose3dlib sweep --param geometric_weight --values 0,0.001,0.01,0.1 \\
        --notebooks 04_train_geometry 06_eval_mpjpe --base-run runs/sweep-base --out runs/sweep
    python -m pose3dlib sweep ... --seeds 0,1,2      # each value three times, config seed 0, 1, 2

Each value gets its own run folder `<out>/<param>=<value>/` (`<param>=<value>,seed=<s>/`
with --seeds), seeded with a copy (hard links) of the base run's earlier-stage
checkpoints, so only the swept notebooks re-run. --seeds repeats every value with the
config's `seed` overridden (through the notebooks' `overrides` parameter): the re-run
stages then see other sample orders and augmentations, which measures how much of a
difference between values is run-to-run noise.
Any parameter of the swept notebooks can be swept (`papermill --help-notebook NB`).
The summary reads every value's `metrics.csv` and writes `<out>/sweep.csv`, a table
(`sweep.md`) and a figure (`sweep.png`) of Stage 3's Protocol #1 MPJPE, with predicted and
with ground-truth 2D, on wild_test and lab_test, against the swept value.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
from pathlib import Path

import yaml

from .errors import Pose3DError
from .evaluate import read_metrics_csv, write_metrics_csv
from .paths import resolve


def parse_values(text: str) -> list:
    """'0,0.001,abc' -> [0, 0.001, 'abc'] (YAML scalars)."""
    try:
        values = [yaml.safe_load(v) for v in text.split(",") if v.strip()]
    except yaml.YAMLError as e:
        raise Pose3DError(f"--values {text!r}: not a list of YAML scalars ({' '.join(str(e).split())[:120]})") from None
    if not values:
        raise Pose3DError(f"--values {text!r}: give at least one value")
    return values


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]; '' -> [] (no seed override)."""
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise Pose3DError(f"--seeds {text!r}: give comma-separated integers, e.g. 0,1,2") from None


def seed_run_dir(base_run: Path, run_dir: Path, stages: tuple[int, ...]) -> None:
    """Make `run_dir` start from `base_run`'s checkpoints of `stages` (linked, not modified)."""
    for stage in stages:
        src = base_run / f"stage{stage}"
        if not src.is_dir():
            raise Pose3DError(f"sweep base run lacks {src}; run `make reproduce PROFILE=...` for it first")
        dst = run_dir / f"stage{stage}"
        if dst.exists():
            continue
        dst.mkdir(parents=True)
        for f in src.iterdir():
            if f.is_file():
                try:
                    os.link(f, dst / f.name)
                except OSError:
                    shutil.copy2(f, dst / f.name)


def run_sweep(param: str, values: list, notebooks: list[str], base_run: str | Path, out: str | Path,
              profile: str, reuse_stages: tuple[int, ...] = (1, 2), extra_params: dict | None = None,
              seeds: list[int] | None = None) -> Path:
    """Execute `notebooks` once per value (and per seed, when given); returns the summary CSV path.

    Every notebook gets profile/run_dir/figures_dir; the swept parameter and each of
    `extra_params` go to the notebooks that declare them (at least one must declare each,
    else Pose3DError). Evaluation notebooks that take `stages` score only the re-run ones.
    With `seeds`, the notebooks declaring `overrides` get `seed=<s>` appended to it, and the
    rows' stage labels end in `@seed=<s>`.
    """
    import papermill as pm

    from .notebook_runner import execute, notebook_path

    out_dir, base = resolve(out), resolve(base_run)
    declared = {nb: set(pm.inspect_notebook(str(notebook_path(nb)))) for nb in notebooks}
    extra = {"stages": [s for s in (1, 2, 3) if s not in reuse_stages], **(extra_params or {})}
    needed = [param, *(extra_params or {})] + (["overrides"] if seeds else [])
    for name in needed:
        if not any(name in d for d in declared.values()):
            raise Pose3DError(f"no notebook among {notebooks} has a parameter {name!r}"
                              + (" (--seeds passes the seed through it; run without seeds: --seeds '', make SWEEP_SEEDS=)"
                                 if name == "overrides" else ""))
    if seeds and (param == "overrides" or "overrides" in extra):
        raise Pose3DError("--seeds sets the notebooks' `overrides` parameter; it cannot be swept or given as well")
    rows = []
    for value in values:
        for seed in seeds or [None]:
            tag = f"{param}={value}" + ("" if seed is None else f",seed={seed}")
            run_dir = out_dir / tag
            seed_run_dir(base, run_dir, reuse_stages)
            common = {"profile": profile, "run_dir": str(run_dir), "figures_dir": str(run_dir / "figures")}
            swept = {param: value, **extra, **({} if seed is None else {"overrides": [f"seed={seed}"]})}
            for nb in notebooks:
                params = {**common, **{k: v for k, v in swept.items() if k in declared[nb]}}
                print(f"sweep {tag}: {nb}", flush=True)
                execute(nb, run_dir / f"{nb}.ipynb", params, progress=False)
            label = f"@{param}={value}" + ("" if seed is None else f"@seed={seed}")
            for r in read_metrics_csv(run_dir / "metrics.csv"):
                if r["stage"].startswith("stage"):
                    rows.append({**r, "stage": f"{r['stage']}{label}"})
    return write_metrics_csv(rows, out_dir / "sweep.csv")


# (split, protocol) pairs of the summary, in column order: the full pipeline and, apart from
# the 2D detector, ground-truth 2D with predicted depth; in the wild and in the lab.
SUMMARY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("wild_test", "p1_mpjpe"), ("wild_test", "p1_mpjpe_gt2d"),
    ("lab_test", "p1_mpjpe"), ("lab_test", "p1_mpjpe_gt2d"),
)
_PROTOCOL_LABEL = {"p1_mpjpe": "P1", "p1_mpjpe_gt2d": "P1, GT 2D"}


def sweep_curve(rows: list[dict], param: str, split: str = "wild_test", protocol: str = "p1_mpjpe",
                stage: str = "stage3") -> list[tuple[str, list[float]]]:
    """[(value, [error mm of each seed])] of one stage on one split under one protocol, from sweep.csv rows.

    Values keep their order of first appearance; a sweep without seeds has one error per value.
    """
    prefix = f"{stage}@{param}="
    curve: dict[str, list[float]] = {}
    for r in rows:
        if r["stage"].startswith(prefix) and r["split"] == split and r["protocol"] == protocol \
                and r["action"] == "all":
            value = r["stage"][len(prefix):].split("@seed=")[0]
            curve.setdefault(value, []).append(r["value"])
    return list(curve.items())


def mean_sd(errors: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single run)."""
    return statistics.fmean(errors), statistics.stdev(errors) if len(errors) > 1 else 0.0


def _cell(errors: list[float]) -> str:
    if len(errors) == 1:
        return f"{errors[0]:.1f}"
    mean, sd = mean_sd(errors)
    return f"{mean:.1f} ± {sd:.1f}"


def sweep_table(rows: list[dict], param: str, columns=SUMMARY_COLUMNS, stage: str = "stage3") -> str:
    """Markdown table: one line per swept value, one column (mm) per (split, protocol) of `columns`.

    With several seeds per value a cell is "mean ± sd" (sample sd) and a last column gives the
    number of seeds. A value without a row for some column shows an empty cell.
    """
    curves = [dict(sweep_curve(rows, param, split, protocol, stage)) for split, protocol in columns]
    values = list(dict.fromkeys(v for curve in curves for v in curve))  # first-seen order
    runs = {v: max(len(curve.get(v, [])) for curve in curves) for v in values}
    seeded = any(n > 1 for n in runs.values())
    head = [f"{split} {_PROTOCOL_LABEL.get(protocol, protocol)} (mm)" for split, protocol in columns]
    head += ["runs"] if seeded else []
    lines = [f"| {param} | " + " | ".join(head) + " |", "|---:|" + "---:|" * len(head)]
    for v in values:
        cells = [_cell(curve[v]) if v in curve else "" for curve in curves]
        cells += [str(runs[v])] if seeded else []
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_sweep(rows: list[dict], param: str, columns=SUMMARY_COLUMNS, stage: str = "stage3"):
    """One panel per split, one line per protocol: error (mm) against the swept value (categorical x).

    With several seeds per value: every run as a dot, the mean as a line, the sd as error bars.
    """
    import matplotlib.pyplot as plt

    splits = list(dict.fromkeys(split for split, _ in columns))
    fig, axes = plt.subplots(1, len(splits), figsize=(4.6 * len(splits), 3.4), squeeze=False)
    seeds = 1  # most runs of any value
    for ax, split in zip(axes[0], splits):
        for col_split, protocol in columns:
            if col_split != split:
                continue
            curve = sweep_curve(rows, param, split, protocol, stage)
            stats = [mean_sd(errors) for _, errors in curve]
            seeds = max([seeds, *(len(errors) for _, errors in curve)])
            x = range(len(curve))
            line = ax.errorbar(x, [m for m, _ in stats], yerr=[sd for _, sd in stats], fmt="o-", capsize=3,
                               label=_PROTOCOL_LABEL.get(protocol, protocol))
            for i, (_, errors) in enumerate(curve):
                if len(errors) > 1:
                    ax.plot([i + 0.08] * len(errors), errors, "o", ms=3.5, mfc="none", color=line[0].get_color(),
                            alpha=0.7)  # beside the error bar, so single runs stay visible
            ax.set_xticks(x, [v for v, _ in curve])
        ax.set_xlabel(param)
        ax.set_ylabel("MPJPE (mm)")
        ax.set_title(f"{stage}, {split}")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"Sweep of {param}" + (f" (mean ± sd of {seeds} seeds, dots: single runs)" if seeds > 1 else ""))
    fig.tight_layout()
    return fig


def summarize(summary_csv: str | Path, param: str) -> str:
    """Write sweep.md (table) and sweep.png (figure) beside `summary_csv`; return the table."""
    summary = resolve(summary_csv)
    rows = read_metrics_csv(summary)
    table = sweep_table(rows, param)
    (summary.parent / "sweep.md").write_text(table + "\n")
    plot_sweep(rows, param).savefig(summary.parent / "sweep.png", dpi=120)
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--param", default="geometric_weight", help="notebook parameter to sweep")
    parser.add_argument("--values", default="0,0.001,0.01,0.1", help="comma-separated values (YAML scalars)")
    parser.add_argument("--notebooks", nargs="+", default=["04_train_geometry", "06_eval_mpjpe"],
                        help="notebooks (in notebooks/, without .ipynb) to run per value, in order")
    parser.add_argument("--profile", default="smoke", help="configs/<profile>.yaml")
    parser.add_argument("--base-run", default=None, help="run folder holding the stages not re-run (default runs/<profile>)")
    parser.add_argument("--seeds", default="", help="comma-separated config seeds: run every value once per seed "
                        "(default: once, with the config's seed)")
    parser.add_argument("--out", default="runs/sweep", help="sweep folder")


def run(args: argparse.Namespace) -> int:
    base = args.base_run or f"runs/{args.profile}"
    seeds = parse_seeds(args.seeds)
    summary = run_sweep(args.param, parse_values(args.values), args.notebooks, base, args.out, args.profile,
                        seeds=seeds or None)
    print(summarize(summary, args.param))
    print(f"sweep summary: {summary}, {summary.parent / 'sweep.md'}, {summary.parent / 'sweep.png'}")
    return 0

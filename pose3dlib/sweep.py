"""Papermill parameter sweeps: run notebooks once per value of one parameter, then compare.

    python -m pose3dlib sweep --param geometric_weight --values 0,0.001,0.01,0.1 \\
        --notebooks 04_train_geometry 06_eval_mpjpe --base-run runs/sweep-base --out runs/sweep

Each value gets its own run folder `<out>/<param>=<value>/`, seeded with a copy (hard
links) of the base run's earlier-stage checkpoints, so only the swept notebooks re-run.
Any parameter of the swept notebooks can be swept (`papermill --help-notebook NB`).
The summary reads every value's `metrics.csv` and writes `<out>/sweep.csv` and a figure
of wild-test MPJPE against the swept value.
"""
from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import yaml

from .errors import Pose3DError
from .evaluate import read_metrics_csv, write_metrics_csv
from .paths import NOTEBOOKS_DIR, resolve


def parse_values(text: str) -> list:
    """'0,0.001,abc' -> [0, 0.001, 'abc'] (YAML scalars)."""
    values = [yaml.safe_load(v) for v in text.split(",") if v.strip()]
    if not values:
        raise Pose3DError(f"--values {text!r}: give at least one value")
    return values


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
              profile: str, reuse_stages: tuple[int, ...] = (1, 2), extra_params: dict | None = None) -> Path:
    """Execute `notebooks` once per value; returns the summary CSV path."""
    import papermill as pm

    out_dir, base = resolve(out), resolve(base_run)
    rows = []
    for value in values:
        run_dir = out_dir / f"{param}={value}"
        seed_run_dir(base, run_dir, reuse_stages)
        params = {"profile": profile, "run_dir": str(run_dir), "figures_dir": str(run_dir / "figures"),
                  param: value, **(extra_params or {})}
        for nb in notebooks:
            src = NOTEBOOKS_DIR / f"{nb}.ipynb"
            if not src.is_file():
                raise Pose3DError(f"notebook not found: {src}")
            known = pm.inspect_notebook(str(src))
            unknown = [k for k in params if k not in known]
            if unknown:
                raise Pose3DError(f"{src.name} has no parameter(s) {unknown}; it has {sorted(known)}")
            print(f"sweep {param}={value}: {nb}", flush=True)
            pm.execute_notebook(str(src), str(run_dir / f"{nb}.ipynb"), parameters=params,
                                kernel_name="pose3d", progress_bar=False)
        for r in read_metrics_csv(run_dir / "metrics.csv"):
            rows.append({**r, "stage": f"{r['stage']}@{param}={value}"})
    summary = write_metrics_csv(rows, out_dir / "sweep.csv")
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--param", default="geometric_weight", help="notebook parameter to sweep")
    parser.add_argument("--values", default="0,0.001,0.01,0.1", help="comma-separated values (YAML scalars)")
    parser.add_argument("--notebooks", nargs="+", default=["04_train_geometry", "06_eval_mpjpe"],
                        help="notebooks (in notebooks/, without .ipynb) to run per value, in order")
    parser.add_argument("--profile", default="smoke", help="configs/<profile>.yaml")
    parser.add_argument("--base-run", default=None, help="run folder holding the stages not re-run (default runs/<profile>)")
    parser.add_argument("--out", default="runs/sweep", help="sweep folder")


def run(args: argparse.Namespace) -> int:
    base = args.base_run or f"runs/{args.profile}"
    summary = run_sweep(args.param, parse_values(args.values), args.notebooks, base, args.out, args.profile)
    print(f"sweep summary: {summary}")
    return 0

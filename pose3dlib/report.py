"""The README's results table, generated from a long-form metrics.csv (never typed by hand).

    python -m pose3dlib report --metrics runs/cpu/metrics.csv --readme README.md

replaces the text between `<!-- results:start -->` and `<!-- results:end -->`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .errors import Pose3DError
from .evaluate import read_metrics_csv
from .paths import resolve

START, END = "<!-- results:start -->", "<!-- results:end -->"
PROTOCOL_LABELS = {
    "paper": "paper evaluator (mm)",
    "p1_mpjpe": "Protocol #1 MPJPE (mm)",
    "p2_pa_mpjpe": "Protocol #2 PA-MPJPE (mm)",
    "n_mpjpe": "N-MPJPE (mm)",
    "pckh@0.5": "PCKh@0.5 (MPII val)",
}
STAGE_LABELS = {"mean_pose": "mean-pose baseline", "stage1": "Stage 1 (2D only)",
                "stage2": "Stage 2 (+depth)", "stage3": "Stage 3 (+geometric)"}


def _fmt(protocol: str, value: float) -> str:
    return f"{100 * value:.1f}%" if protocol.startswith("pck") else f"{value:.1f}"


def results_table(rows: list[dict]) -> str:
    """Markdown: one row per (stage, split), one column per protocol, averaged over actions."""
    avg = [r for r in rows if r["action"] == "all"]
    protocols = [p for p in PROTOCOL_LABELS if any(r["protocol"] == p for r in avg)]
    keys: list[tuple[str, str]] = []
    for r in avg:
        if (r["stage"], r["split"]) not in keys:
            keys.append((r["stage"], r["split"]))
    value = {(r["stage"], r["split"], r["protocol"]): r["value"] for r in avg}
    lines = ["| model | split | " + " | ".join(PROTOCOL_LABELS[p] for p in protocols) + " |",
             "|---|---|" + "---:|" * len(protocols)]
    for stage, split in keys:
        cells = [_fmt(p, value[(stage, split, p)]) if (stage, split, p) in value else "" for p in protocols]
        lines.append(f"| {STAGE_LABELS.get(stage, stage)} | {split} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def update_readme(readme: str | Path, metrics_csv: str | Path) -> Path:
    """Rewrite the README's results block from `metrics_csv`; returns the README path."""
    readme, metrics_csv = resolve(readme), resolve(metrics_csv)
    text = readme.read_text()
    if START not in text or END not in text:
        raise Pose3DError(f"{readme}: no results block ({START} ... {END})")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    rel = metrics_csv.relative_to(resolve(".")) if metrics_csv.is_relative_to(resolve(".")) else metrics_csv
    block = f"{START}\n_Generated from `{rel}` by `python -m pose3dlib report`._\n\n{results_table(read_metrics_csv(metrics_csv))}\n{END}"
    readme.write_text(head + block + tail)
    return readme


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics", default="runs/cpu/metrics.csv", help="long-form metrics CSV")
    parser.add_argument("--readme", default="README.md", help="README whose results block is rewritten")


def run(args: argparse.Namespace) -> int:
    path = update_readme(args.readme, args.metrics)
    print(f"updated the results table in {path}")
    return 0

"""The README's results table, generated from a long-form metrics.csv (never typed by hand).

    python -m pose3dlib report --metrics runs/cpu/metrics.csv --readme README.md

replaces the text between `<!-- results:start -->` and `<!-- results:end -->`. Its columns
are the protocols of the metrics file in the evaluator's order (pose3dlib.evaluation.evaluate.PROTOCOLS,
with their labels), so a protocol the evaluator adds appears without an edit here.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..engine.atomic_io import replace_marked_block
from ..engine.errors import Pose3DError
from ..engine.paths import CommandLinePath, project_relative, resolve
from ..skeleton import MPII16
from .evaluate import (
    GT2D_PROTOCOL,
    MEAN_POSE,
    OTHER_CSV_NAME,
    PROTOCOLS,
    JointPCKh,
    is_fraction,
    protocol_key,
    protocol_label,
    read_metrics_csv,
)

START, END = "<!-- results:start -->", "<!-- results:end -->"
PROJECT_README, CPU_METRICS = "README.md", "runs/cpu/metrics.csv"  # the project README tabulates the cpu run
STAGE_LABELS = {MEAN_POSE: "mean-pose baseline", "stage1": "Stage 1 (2D only)",
                "stage2": "Stage 2 (+depth)", "stage3": "Stage 3 (+geometric)"}


def _fmt(protocol: str, value: float) -> str:
    return f"{100 * value:.1f}%" if is_fraction(protocol) else f"{value:.1f}"


def table_protocols(rows: list[dict]) -> list[str]:
    """The distinct protocols of `rows`, in the evaluator's order (PROTOCOLS), then by name."""
    order = list(PROTOCOLS)
    return sorted(dict.fromkeys(r["protocol"] for r in rows), key=lambda p: (order.index(protocol_key(p)), p))


def missing_rows(rows: list[dict]) -> list[str]:
    """What an evaluation writes and `rows` lacks, or holds twice (action "all" rows), one line each.

    The evaluator scores every stage it evaluates on every split of the run, every model on a split
    under the same protocols, and the mean-pose baseline on every split with 3D ground truth (the
    splits where the stages have a Protocol #1 row) under the stages' protocols but the one that
    reads the 2D input (GT2D_PROTOCOL). So within the file: a stage with no rows on a split that
    another model has, a protocol one stage has on a split and another lacks there, a baseline
    without rows or protocols it should have (when the file has baseline rows at all), a baseline
    protocol no stage has, and a (stage, split, protocol, action) written twice are each a missing or
    broken row, not a blank cell: the file was cut short, edited, or pieced together from several
    evaluations. A split no model has is not seen here.
    """
    have: dict[str, dict[str, set[str]]] = {}
    seen: set[tuple[str, str, str, str]] = set()
    problems = []
    for r in rows:
        key = (r["stage"], r["split"], r["protocol"], r["action"])
        if key in seen:
            problems.append(f"{key[0]} has two {key[2]} rows on {key[1]} for action {key[3]}")
        seen.add(key)
        if r["action"] == "all":
            have.setdefault(r["split"], {}).setdefault(r["stage"], set()).add(r["protocol"])
    every_stage = sorted({s for by_stage in have.values() for s in by_stage if s != MEAN_POSE})
    has_baseline = any(MEAN_POSE in by_stage for by_stage in have.values())

    def listed(names) -> str:
        names = sorted(names)
        return f"{', '.join(names)} {'has' if len(names) == 1 else 'have'}"

    for split, by_stage in have.items():
        stages = {s: p for s, p in by_stage.items() if s != MEAN_POSE}
        problems += [f"{s} has no rows on {split}, where {listed(by_stage)}" for s in every_stage if s not in stages]
        if not stages:
            continue
        expected = set().union(*stages.values())
        for stage, protocols in stages.items():
            for p in sorted(expected - protocols):
                problems.append(f"{stage} has no {p} row on {split}, which {listed(s for s in stages if p in stages[s])} there")
        baseline = by_stage.get(MEAN_POSE)
        if baseline is None:
            if has_baseline and "p1_mpjpe" in expected:
                problems.append(f"{MEAN_POSE} has no rows on {split}, where the stages have 3D errors")
            continue
        problems += [f"{MEAN_POSE} has no {p} row on {split}, which the stages have there"
                     for p in sorted(expected - baseline - {GT2D_PROTOCOL})]
        problems += [f"{MEAN_POSE} has a {p} row on {split} that no stage has there" for p in sorted(baseline - expected)]
    return problems


def check_complete(rows: list[dict], source: str = "the metrics") -> None:
    """Pose3DError naming `source` and each missing row (`missing_rows`), so the table never shows
    a missing number as an empty cell."""
    if problems := missing_rows(rows):
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise Pose3DError(f"{source}: rows are missing: {shown}. Score the run again with `python -m pose3dlib "
                          "evaluate` (it writes every stage's rows together) rather than editing the file")


def results_table(rows: list[dict], source: str = "the metrics") -> str:
    """Markdown: one row per (stage, split), one column per protocol, averaged over actions.

    An empty cell is a protocol the model is not scored under on that split (PCKh on a 3D split,
    3D errors on MPII val, ground-truth 2D for the mean pose); a row the evaluation should have
    written and `rows` lacks is a Pose3DError naming `source` (`check_complete`)."""
    check_complete(rows, source)
    avg = [r for r in rows if r["action"] == "all"]
    protocols = table_protocols(avg)
    keys: list[tuple[str, str]] = []
    for r in avg:
        if (r["stage"], r["split"]) not in keys:
            keys.append((r["stage"], r["split"]))
    value = {(r["stage"], r["split"], r["protocol"]): r["value"] for r in avg}
    lines = ["| model | split | " + " | ".join(protocol_label(p) for p in protocols) + " |",
             "|---|---|" + "---:|" * len(protocols)]
    for stage, split in keys:
        cells = [_fmt(p, value[(stage, split, p)]) if (stage, split, p) in value else "" for p in protocols]
        lines.append(f"| {STAGE_LABELS.get(stage, stage)} | {split} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def check_scored_current_weights(metrics_csv: Path) -> None:
    """Pose3DError when `metrics_csv` is a run's own metrics.csv and a stage checkpoint beside it is not the
    one it scored (`unseen.scored_these_weights`): a stage trained since, or an unfinished one whose scoring
    went to metrics_other.csv, would put the older numbers in the README under the newer run. A table
    without checkpoints beside it (the committed one in a fresh clone) is taken as it is."""
    from ..engine import runs
    from .unseen import scored_these_weights

    if metrics_csv.name != runs.EVAL_CSV_NAME:
        return
    run_dir = metrics_csv.parent
    newer = [s for s in runs.STAGES if runs.checkpoint_path(run_dir, s).is_file() and not scored_these_weights(run_dir, s)]
    if newer:
        raise Pose3DError(f"{metrics_csv}: does not score the stage {newer[0]} checkpoint beside it "
                          f"({runs.checkpoint_path(run_dir, newer[0])}, written since; an unfinished stage's scoring "
                          "goes to metrics_other.csv): score the run again with `python -m pose3dlib evaluate` first, "
                          "or `report --print` to see the table as it is")


def update_readme(readme: str | Path, metrics_csv: str | Path) -> Path:
    """Rewrite the README's results block from `metrics_csv`; returns the README path."""
    readme, metrics_csv = resolve(readme), resolve(metrics_csv)
    shown = project_relative(metrics_csv)
    check_scored_current_weights(metrics_csv)
    rows = read_metrics_csv(metrics_csv)
    if bad := [r for r in rows if math.isnan(r["value"])]:
        raise Pose3DError(f"{metrics_csv}: {len(bad)} value(s) are nan (first: {bad[0]['stage']}, {bad[0]['split']}, "
                          f"{bad[0]['protocol']}, {bad[0]['action']}): a run that diverged or a damaged table; the "
                          "README's results take finite numbers only (`report --print` shows the table)")
    table = results_table(rows, str(shown))
    block = f"{START}\n_Generated from `{shown}` by `python -m pose3dlib report`._\n\n{table}\n{END}"
    return replace_marked_block(readme, START, END, block)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics", action=CommandLinePath, default=CPU_METRICS,
                        help=f"long-form metrics CSV (default {CPU_METRICS})")
    parser.add_argument("--readme", action=CommandLinePath, default=PROJECT_README,
                        help="README whose results block is rewritten (the project's takes the cpu run's metrics only)")
    parser.add_argument("--print", dest="print_only", action="store_true",
                        help="print the results table of --metrics (any run's) and write nothing")
    parser.add_argument("--config", action=CommandLinePath, default=None,
                        help="the run's config (make reproduce passes configs/PROFILE.yaml): refuse a stage checkpoint "
                             "beside --metrics that this config would train otherwise (trained by hand with other "
                             "settings, or from another previous stage)")


def check_stages_match_config(metrics_csv: str | Path, config: str | Path) -> None:
    """Pose3DError when a stage checkpoint beside `metrics_csv` is stale for `config` (`runs.stale_reasons`:
    trained with other settings, on other data or from another previous stage), naming the stage, why, and
    how to train it again: `make reproduce` keeps a stage trained by hand in its folder, and the README's
    table must be the profile's run, not a mix of two recipes."""
    from ..config import load_config
    from ..engine import runs

    run_dir = resolve(metrics_csv).parent
    cfg = load_config(config)
    for stage in runs.STAGES:
        if runs.checkpoint_path(run_dir, stage).is_file() and (why := runs.stale_reasons(cfg, stage, run_dir)):
            raise Pose3DError(f"{project_relative(runs.checkpoint_path(run_dir, stage))} was not trained as {config} "
                              f"trains stage {stage} ({'; '.join(why[:3])}), so {project_relative(resolve(metrics_csv))} "
                              f"is not that profile's run; remove {project_relative(runs.stage_dir(run_dir, stage))}/ "
                              "and run `make reproduce` again to train it (and the stages after it) as the config says, "
                              "or `report --print` to see the table as it is")


def check_pairing(readme: str | Path, metrics_csv: str | Path) -> None:
    """Pose3DError when another run's metrics would go into the project README, whose results table sits
    under "Results (cpu profile, synthetic data)" and is the committed cpu run's. Files are compared with
    symbolic links followed (a link to the clone is the same README)."""
    real = lambda path: resolve(path).resolve()  # noqa: E731
    if real(readme) == real(PROJECT_README) and real(metrics_csv) != real(CPU_METRICS):
        raise Pose3DError(f"--metrics {project_relative(resolve(metrics_csv))}: the project README's results table is the cpu run's "
                          f"({CPU_METRICS}); to see another run's table, add --print; to write it into a file, give "
                          f"--readme a Markdown file of your own holding the lines {START} and {END}")


def run(args: argparse.Namespace) -> int:
    if args.print_only:
        print(results_table(read_metrics_csv(args.metrics), str(project_relative(args.metrics))))
        if Path(args.metrics).name == OTHER_CSV_NAME:
            print(f"({OTHER_CSV_NAME}: a scoring of fewer stages or samples, of other data or of an unfinished stage, "
                  "not the run's full one)")
        return 0
    check_pairing(args.readme, args.metrics)
    if args.config is not None:
        check_stages_match_config(args.metrics, args.config)
    path = update_readme(args.readme, args.metrics)
    print(f"updated the results table in {path}")
    return 0


def plot_protocols(rows: list[dict], split: str = "lab_test"):
    """Bar chart: each model (baseline, stages) under each 3D protocol on one split (mm).

    Each model in its viz.STAGE_COLOURS colour; a protocol a model has no value for (the mean
    pose's with ground-truth 2D) is marked "n/a" instead of an empty slot."""
    import matplotlib.pyplot as plt
    import numpy as np

    from ..plots.viz import stage_colour

    avg = [r for r in rows if r["action"] == "all" and r["split"] == split
           and not is_fraction(r["protocol"])]  # millimetres only (no PCKh, 3DPCK or AUC)
    stages = list(dict.fromkeys(r["stage"] for r in avg))
    protocols = table_protocols(avg)
    value = {(r["stage"], r["protocol"]): r["value"] for r in avg}
    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / max(len(stages), 1)
    x = np.arange(len(protocols))
    for i, s in enumerate(stages):
        vals = [value.get((s, p), np.nan) for p in protocols]
        pos = x + i * width - 0.4 + width / 2
        bars = ax.bar(pos, vals, width, label=STAGE_LABELS.get(s, s), color=stage_colour(s))
        ax.bar_label(bars, labels=["" if np.isnan(v) else f"{v:.0f}" for v in vals], fontsize=7)
        for p, v in zip(pos, vals):
            if np.isnan(v):  # no value under this protocol: say so rather than leave the slot blank
                ax.text(p, 0, "n/a", ha="center", va="bottom", fontsize=7, color="0.3")
    ax.set_xticks(x, [protocol_label(p).replace(" (mm)", "") for p in protocols], fontsize=8)
    ax.set_ylabel("error (mm)")
    ax.set_title(f"3D error on {split} by protocol (lower is better)")
    ax.margins(y=0.12)  # room for the bar labels under the title
    # below the axes, so the legend never covers a bar or its label
    ax.legend(fontsize=7, ncols=len(stages), loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    fig.tight_layout()
    return fig


def plot_per_action(rows: list[dict], protocol: str = "p1_mpjpe", split: str = "lab_test"):
    """Grouped bars per action for each model (in its viz.STAGE_COLOURS colour) under one protocol
    on one split (mm)."""
    import matplotlib.pyplot as plt
    import numpy as np

    from ..plots.viz import stage_colour

    sel = [r for r in rows if r["split"] == split and r["protocol"] == protocol and r["action"] != "all"]
    stages = list(dict.fromkeys(r["stage"] for r in sel))
    actions = list(dict.fromkeys(r["action"] for r in sel))
    value = {(r["stage"], r["action"]): r["value"] for r in sel}
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(actions) + 2), 3.6))
    width = 0.8 / max(len(stages), 1)
    x = np.arange(len(actions))
    for i, s in enumerate(stages):
        ax.bar(x + i * width - 0.4 + width / 2, [value.get((s, a), np.nan) for a in actions], width,
               label=STAGE_LABELS.get(s, s), color=stage_colour(s))
    ax.set_xticks(x, actions, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(protocol_label(protocol))
    better = "higher" if is_fraction(protocol) else "lower"
    ax.set_title(f"{protocol_label(protocol)} per action, {split} ({better} is better)")
    # below the axes and the action names, so the legend never covers a bar
    ax.legend(fontsize=7, ncols=len(stages), loc="upper center", bbox_to_anchor=(0.5, -0.35), frameon=False)
    fig.tight_layout()
    return fig


def per_action_table(rows: list[dict], protocol: str = "p1_mpjpe", split: str = "lab_test") -> str:
    """Markdown table: actions as rows, models as columns, one protocol on one split."""
    sel = [r for r in rows if r["split"] == split and r["protocol"] == protocol]
    stages = list(dict.fromkeys(r["stage"] for r in sel))
    actions = list(dict.fromkeys(r["action"] for r in sel))
    value = {(r["stage"], r["action"]): r["value"] for r in sel}
    lines = ["| action | " + " | ".join(STAGE_LABELS.get(s, s) for s in stages) + " |",
             "|---|" + "---:|" * len(stages)]
    for a in actions:
        lines.append(f"| {a} | " + " | ".join(_fmt(protocol, value[(s, a)]) if (s, a) in value else "" for s in stages) + " |")
    return "\n".join(lines)


def pckh_joint_table(by_stage: dict[str, JointPCKh]) -> str:
    """Markdown: PCKh (%) per joint (rows, MPII16 order) for each stage (columns), then the two pooled means.

    The pooled means carry two decimals, as many as the CSV's four-decimal fraction holds: one
    decimal of the unrounded value (0.80553 -> 80.6) and of the CSV's (0.8055 -> 80.5) can differ.
    """
    stages = list(by_stage)

    def pct(v: float, decimals: int = 1) -> str:
        return "" if v != v else f"{100 * v:.{decimals}f}"  # NaN: a joint never annotated

    lines = ["| joint | " + " | ".join(STAGE_LABELS.get(s, s) for s in stages) + " |",
             "|---|" + "---:|" * len(stages)]
    for j, name in enumerate(MPII16.joint_names):
        lines.append(f"| {name} | " + " | ".join(pct(by_stage[s].per_joint[j]) for s in stages) + " |")
    lines.append("| **all 16 joints** (the CSV's pckh@0.5) | "
                 + " | ".join(pct(by_stage[s].all_joints, 2) for s in stages) + " |")
    lines.append("| **MPII benchmark mean** (no pelvis, no thorax) | "
                 + " | ".join(pct(by_stage[s].benchmark, 2) for s in stages) + " |")
    return "\n".join(lines)


def plot_pckh_per_joint(by_stage: dict[str, JointPCKh], threshold: float = 0.5):
    """Grouped bars: PCKh (%) per joint for each stage (in its viz.STAGE_COLOURS colour), the two
    pooled means in the legend."""
    import matplotlib.pyplot as plt
    import numpy as np

    from ..plots.viz import stage_colour

    stages = list(by_stage)
    names = MPII16.joint_names
    fig, ax = plt.subplots(figsize=(9, 3.6))
    width = 0.8 / max(len(stages), 1)
    x = np.arange(len(names))
    for i, s in enumerate(stages):
        r = by_stage[s]
        ax.bar(x + i * width - 0.4 + width / 2, 100 * np.asarray(r.per_joint), width, color=stage_colour(s),
               label=f"{STAGE_LABELS.get(s, s)}: {100 * r.all_joints:.2f} % (16 joints), "
                     f"{100 * r.benchmark:.2f} % (benchmark's 14)")
    ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(f"PCKh@{threshold:g} (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"PCKh@{threshold:g} per joint, MPII-format val (higher is better)")
    # below the axes and the joint names, so the legend never covers a bar
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), frameon=False)
    fig.tight_layout()
    return fig

"""Time to accuracy: validation numbers of a run against training wall-clock minutes.

    rows = time_to_accuracy_rows("runs/cpu")           # one row per validation, stages 1-3
    print(time_to_accuracy_table(rows))               # markdown
    fig = plot_time_to_accuracy(rows)                  # PCKh and Protocol #1 (lab, wild) vs minutes

Each stage folder holds `metrics.jsonl` (its validation records: PCKh on the MPII-format
val split, Protocol #1 with predicted 2D on the lab and wild validation splits, see
`pose3dlib.engine.validation`) and `wallclock.jsonl` (the training seconds reached at each
validation, kept apart because wall-clock time is not reproducible). The minutes of later
stages start where the earlier stage ended, so the x axis is the whole recipe's training
time (data preparation, validation and evaluation excluded).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..engine.errors import Pose3DError
from ..engine.runlog import read_metrics

# Validation record key -> column label; the three numbers the recipe is judged by (training validation:
# one pass, no flip test, PCKh over the joints inside the crop; engine.validation.pckh_hits).
SERIES = {
    "pckh": "PCKh@0.5, MPII val (%)",
    "p1_lab_mm": "Protocol #1, lab val (mm)",
    "p1_wild_mm": "Protocol #1, wild val (mm)",
}
# The figure's y axes (SERIES are the table's column labels): which way is better, and for PCKh
# that it is training validation's number (one pass), not the evaluation's
AXIS_LABELS = {
    "2d": "PCKh@0.5, MPII val (%), higher is better\n(training validation, one pass)",
    "3d": "Protocol #1 (mm), lower is better",
}


def _read_wallclock(path: Path) -> dict[tuple[int, int], float]:
    """{(epoch, step): training seconds} from a wallclock.jsonl (the last record of a step wins)."""
    out: dict[tuple[int, int], float] = {}
    with open(path) as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                out[(int(r["epoch"]), int(r["step"]))] = float(r["train_seconds"])
            except (ValueError, KeyError, TypeError) as e:
                raise Pose3DError(f"{path}: line {n} is not a wall-clock record ({e})") from None
    return out


def time_to_accuracy_rows(run_dir: str | os.PathLike, stages: tuple[int, ...] = (1, 2, 3)) -> list[dict]:
    """One dict per validation: stage, epoch, minutes (cumulative over stages) and the SERIES values.

    Raises Pose3DError naming the file when a stage folder lacks its metrics or wall-clock log.
    Values a record does not have (e.g. Protocol #1 before depth is trained) are NaN.
    """
    from ..engine.runs import WALLCLOCK_NAME, metrics_log_path, stage_dir

    rows: list[dict] = []
    offset = 0.0
    for stage in stages:
        metrics_path, clock_path = metrics_log_path(run_dir, stage), stage_dir(run_dir, stage) / WALLCLOCK_NAME
        for p in (metrics_path, clock_path):
            if not p.is_file():
                raise Pose3DError(f"{p} not found: train stage {stage} of {run_dir} first")
        clock = _read_wallclock(clock_path)
        last = 0.0
        for r in read_metrics(metrics_path):
            if r.get("kind") != "val":
                continue
            key = (int(r["epoch"]), int(r["step"]))
            if key not in clock:
                raise Pose3DError(f"{clock_path}: no time for epoch {key[0]}, step {key[1]} of {metrics_path}")
            last = clock[key]
            row = {"stage": stage, "epoch": key[0], "minutes": (offset + last) / 60.0}
            row.update({k: float(r.get(k, float("nan"))) for k in SERIES})
            rows.append(row)
        offset += last
    return rows


def time_to_accuracy_table(rows: list[dict]) -> str:
    """Markdown table of the rows: stage, epoch, minutes and the SERIES columns."""
    head = "| stage | epoch | training minutes | " + " | ".join(SERIES.values()) + " |"
    sep = "|---" * (3 + len(SERIES)) + "|"
    lines = [head, sep]
    for r in rows:
        vals = ["-" if r[k] != r[k] else f"{r[k]:.1f}" for k in SERIES]  # NaN -> "-"
        lines.append(f"| {r['stage']} | {r['epoch']} | {r['minutes']:.2f} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def plot_time_to_accuracy(rows: list[dict], baselines_mm: dict[str, float] | None = None, title: str = ""):
    """Figure: PCKh (left panel) and Protocol #1 lab / wild (right panel) against training minutes.

    `baselines_mm` ({"p1_lab_mm": mm, "p1_wild_mm": mm}) draws the mean-pose baselines as
    dashed lines. Lab and wild in their viz.DOMAIN_COLOURS colours. Stage boundaries are dotted
    verticals, named at the top. Both scales start at zero. Returns a matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    from ..plots.viz import domain_colour

    fig, (ax_2d, ax_3d) = plt.subplots(1, 2, figsize=(11, 4))
    minutes = [r["minutes"] for r in rows]
    ax_2d.plot(minutes, [r["pckh"] for r in rows], "o-", color="tab:blue")
    ax_2d.set(xlabel="training minutes", ylabel=AXIS_LABELS["2d"], title="2D", ylim=(0, 100))
    for key in ("p1_lab_mm", "p1_wild_mm"):
        split = SERIES[key].split(", ")[1]  # 'lab val (mm)': its domain names the colour
        color = domain_colour(split)
        ax_3d.plot(minutes, [r[key] for r in rows], "o-", color=color, label=SERIES[key])
        if baselines_mm and key in baselines_mm:
            ax_3d.axhline(baselines_mm[key], color=color, linestyle="--", linewidth=1, label=f"mean pose, {split}")
    ax_3d.set(xlabel="training minutes", ylabel=AXIS_LABELS["3d"], title="3D, predicted 2D + depth")
    ax_3d.set_ylim(bottom=0)
    ax_3d.legend(fontsize=8, loc="lower left")
    for ax in (ax_2d, ax_3d):
        for prev, cur in zip(rows, rows[1:]):
            if cur["stage"] != prev["stage"]:
                ax.axvline(cur["minutes"], color="grey", linestyle=":", linewidth=1)
                ax.text(cur["minutes"], 1.0, f" stage {cur['stage']} ", transform=ax.get_xaxis_transform(),
                        ha="left", va="top", fontsize=7, color="grey")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def mean_pose_baselines(cfg) -> dict[str, float]:
    """Protocol #1 of the mean training pose on the lab and wild validation splits of `cfg.data`.

    Returns {"p1_lab_mm": mm, "p1_wild_mm": mm} (a key only for each split whose folder is set),
    the dashed lines of `plot_time_to_accuracy`.
    """
    import numpy as np

    from .. import metrics
    from ..data.h36m import H36MDataset
    from .evaluate import mean_pose_prediction

    train = H36MDataset(cfg.data.h36m_dir, "train", cfg.data).joints_3d_mm
    out = {}
    for key, folder in (("p1_lab_mm", cfg.data.lab_val_dir), ("p1_wild_mm", cfg.data.wild_val_dir)):
        if folder:
            gt = H36MDataset(folder, "test", cfg.data).joints_3d_mm
            out[key] = float(np.mean(metrics.mpjpe_per_sample(mean_pose_prediction(train, len(gt)), gt)))
    return out

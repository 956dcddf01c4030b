"""The figure of the timed fresh clones (`tools.bench.fresh_clones` reads them from their page)."""
from __future__ import annotations

import numpy as np

from ..tools.bench.fresh_clones import TARGET_MINUTES, CloneRun, SummaryRow

STAGE_SHADES = (0.95, 0.7, 0.45)  # how dark each training stage's part of a bar is drawn (Stage 1 darkest)


def group_of(run: CloneRun, groups: list[SummaryRow]) -> int | None:
    """Index of the first summary row that names the run's clone (None: no row names it)."""
    return next((i for i, g in enumerate(groups) if g.clones is not None and run.clone in g.clones), None)


def plot_fresh_clones(runs: list[CloneRun], summary: list[SummaryRow]):
    """Figure: left, each clone's minutes (bars in the page's order, training by stage and the rest of
    the run, coloured by the kind of host and hour of the "In short" table), with the 20-minute target;
    right, each run's training minutes against the host speeds measured around it (the marker at their
    median, the line over their range). Returns a matplotlib Figure."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch

    groups = [g for g in summary if g.clones is not None]
    colours = [f"C{i}" for i in range(len(groups))]
    fig, (ax_bar, ax_host) = plt.subplots(1, 2, figsize=(13, 4.6), gridspec_kw={"width_ratios": [2.2, 1]})
    x = np.arange(len(runs))
    for xi, run in zip(x, runs):
        g = group_of(run, groups)
        base = np.array(to_rgb("0.5" if g is None else colours[g]))
        bottom = 0.0
        for minutes, shade in zip(run.training, STAGE_SHADES):
            ax_bar.bar(xi, minutes, bottom=bottom, color=base * shade + (1 - shade), edgecolor="none", width=0.8)
            bottom += minutes
        ax_bar.bar(xi, run.minutes - bottom, bottom=bottom, color="white", edgecolor=base, hatch="///",
                   linewidth=0.6, width=0.8)
    target = ax_bar.axhline(TARGET_MINUTES, color="black", linestyle="--", linewidth=1,
                            label=f"the target, {TARGET_MINUTES:g} minutes")
    ax_bar.set_xticks(x, [str(r.clone) for r in runs], fontsize=7)
    ax_bar.set_xlim(-0.7, len(runs) - 0.3)
    ax_bar.set_xlabel("fresh clone (in the order timed)")
    ax_bar.set_ylabel("make reproduce, setup included (min)")
    handles = [Patch(color=c, label=g.host) for c, g in zip(colours, groups)]
    handles += [Patch(facecolor="0.3", label="training, Stage 1 / 2 / 3 (dark to light)"),
                Patch(facecolor="white", edgecolor="0.3", hatch="///",
                      label="the rest: setup, data, validation, demo, evaluation"), target]
    ax_bar.legend(handles=handles, fontsize=7, loc="upper right")
    ax_bar.set_ylim(0, max(r.minutes for r in runs) * 1.45)
    ax_bar.set_title(f"{len(runs)} timed fresh clones: {sum(r.met for r in runs)} within {TARGET_MINUTES:g} minutes")

    for run in runs:
        if not run.host_gflops:
            continue
        g = group_of(run, groups)
        colour = "0.5" if g is None else colours[g]
        low, mid, high = min(run.host_gflops), float(np.median(run.host_gflops)), max(run.host_gflops)
        ax_host.plot([low, high], [run.training_total] * 2, color=colour, linewidth=1, alpha=0.7)
        ax_host.plot(mid, run.training_total, "o", color=colour, markersize=4)
    ax_host.set_xlabel("host speed around the run (GFLOP/s)")
    ax_host.set_ylabel("training minutes, Stages 1-3")
    ax_host.set_title("training minutes against the host's speed", fontsize=10)
    ax_host.grid(alpha=0.3)
    fig.tight_layout()
    return fig

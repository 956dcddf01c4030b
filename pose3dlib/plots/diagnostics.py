"""Figures of `evaluation.diagnose`: where a checkpoint's 3D error comes from."""
from __future__ import annotations

import numpy as np

SMALL_BIN_HATCH = "///"  # a bin with fewer than diagnose.MIN_BIN_SAMPLES samples, on both panels


def plot_by_trunk_tilt(rows_by_split: dict[str, list[dict]], target_ratio: float | None = None):
    """Protocol #1 / the mean pose's and the bones' front/back signs per trunk-tilt bin.

    `rows_by_split`: split name -> `diagnose.by_trunk_tilt` rows; a split named after its domain
    ('lab_val', 'wild_test') takes viz.DOMAIN_COLOURS' colour. Bins missing from a split are left
    empty; each bar is labelled with its number of samples. A bin with samples but fewer than
    MIN_BIN_SAMPLES gets no sign statistic, and says so on the right panel; on the left its ratio bar
    is hatched, as the legend explains. The left panel has a line at 1 (the mean pose's error) and,
    with `target_ratio`, a dashed line there (e.g. a profile's target). Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from ..evaluation.diagnose import MIN_BIN_SAMPLES, TILT_BINS
    from .viz import domain_colour

    if not rows_by_split:
        raise ValueError("plot_by_trunk_tilt: no splits to plot")
    labels = [label for label, _, _ in TILT_BINS]
    x = np.arange(len(labels))
    width = 0.8 / len(rows_by_split)
    fig, (ax_ratio, ax_sign) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_ratio.axhline(1.0, color="0.3", linestyle=":", linewidth=1, label="mean pose")
    any_small = False
    for k, (split, rows) in enumerate(rows_by_split.items()):
        by_label = {r["tilt"]: r for r in rows}
        pos = x - 0.4 + width * (k + 0.5)
        ratio = [by_label[b]["p1_mm"] / by_label[b]["mean_pose_p1_mm"] if b in by_label else np.nan for b in labels]
        signs = [100 * by_label[b]["sign_agreement"] if b in by_label else np.nan for b in labels]
        counts = [by_label[b]["n"] if b in by_label else 0 for b in labels]
        small = [0 < c < MIN_BIN_SAMPLES for c in counts]  # too few for the sign statistic (diagnose.MIN_BIN_SAMPLES)
        any_small = any_small or any(small)
        for ax, values in ((ax_ratio, ratio), (ax_sign, signs)):
            bars = ax.bar(pos, values, width, label=split, color=domain_colour(split))
            ax.bar_label(bars, labels=[f"n={c}" if c else "" for c in counts], fontsize=7, padding=2)
            if ax is ax_ratio:
                for bar, few in zip(bars, small):
                    if few:  # the same bins as the right panel's "too few" notes
                        bar.set_hatch(SMALL_BIN_HATCH)
                        bar.set_edgecolor("white")
            for p, v, c in zip(pos, values, counts):
                if c and np.isnan(v):  # a bin too small for this statistic (diagnose.MIN_BIN_SAMPLES)
                    ax.text(p, 0, f"n={c}:\ntoo few", ha="center", va="bottom", fontsize=6, rotation=90)
    if target_ratio is not None:
        ax_ratio.axhline(target_ratio, color="k", linestyle="--", linewidth=1, label=f"target {target_ratio:g} x")
    ax_ratio.set_ylabel("Protocol #1 / mean pose's\n(lower is better)")
    ax_sign.set_ylabel("bone front/back signs right (%)\n(higher is better)")
    ax_sign.set_ylim(0, 105)
    for ax in (ax_ratio, ax_sign):
        ax.set_xticks(x, labels)
        ax.set_xlabel("trunk tilt toward the camera (degrees)")
        ax.margins(y=0.12)
        handles, names = ax.get_legend_handles_labels()
        if ax is ax_ratio and any_small:
            handles.append(Patch(facecolor="0.6", edgecolor="white", hatch=SMALL_BIN_HATCH))
            names.append(f"n < {MIN_BIN_SAMPLES}: no sign statistic")
        ax.legend(handles, names, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    fig.suptitle("3D error by viewpoint (predicted 2D and depth)")
    fig.tight_layout()
    return fig

"""Figures of `evaluation.diagnose`: where a checkpoint's 3D error comes from."""
from __future__ import annotations

import numpy as np


def plot_by_trunk_tilt(rows_by_split: dict[str, list[dict]], target_ratio: float | None = None):
    """Protocol #1 / the mean pose's and the bones' front/back signs per trunk-tilt bin.

    `rows_by_split`: split name -> `diagnose.by_trunk_tilt` rows. Bins missing from a split
    are left empty; each bar is labelled with its number of samples, and a bin with samples but no
    value (the sign statistic needs MIN_BIN_SAMPLES of them) says so. `target_ratio` draws a
    dashed line on the left panel (e.g. a profile's target). Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    from ..evaluation.diagnose import TILT_BINS

    if not rows_by_split:
        raise ValueError("plot_by_trunk_tilt: no splits to plot")
    labels = [label for label, _, _ in TILT_BINS]
    x = np.arange(len(labels))
    width = 0.8 / len(rows_by_split)
    fig, (ax_ratio, ax_sign) = plt.subplots(1, 2, figsize=(10, 3.6))
    for k, (split, rows) in enumerate(rows_by_split.items()):
        by_label = {r["tilt"]: r for r in rows}
        pos = x - 0.4 + width * (k + 0.5)
        ratio = [by_label[b]["p1_mm"] / by_label[b]["mean_pose_p1_mm"] if b in by_label else np.nan for b in labels]
        signs = [100 * by_label[b]["sign_agreement"] if b in by_label else np.nan for b in labels]
        counts = [by_label[b]["n"] if b in by_label else 0 for b in labels]
        for ax, values in ((ax_ratio, ratio), (ax_sign, signs)):
            bars = ax.bar(pos, values, width, label=split)
            ax.bar_label(bars, labels=[f"n={c}" if c else "" for c in counts], fontsize=7, padding=2)
            for p, v, c in zip(pos, values, counts):
                if c and np.isnan(v):  # a bin too small for this statistic (diagnose.MIN_BIN_SAMPLES)
                    ax.text(p, 0, f"n={c}:\ntoo few", ha="center", va="bottom", fontsize=6, rotation=90)
    if target_ratio is not None:
        ax_ratio.axhline(target_ratio, color="k", linestyle="--", linewidth=1, label=f"target {target_ratio:g} x")
    ax_ratio.set_ylabel("Protocol #1 / mean pose's")
    ax_sign.set_ylabel("bone front/back signs right (%)")
    ax_sign.set_ylim(0, 105)
    for ax in (ax_ratio, ax_sign):
        ax.set_xticks(x, labels)
        ax.set_xlabel("trunk tilt toward the camera (degrees)")
        ax.margins(y=0.12)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False)
    fig.suptitle("3D error by viewpoint (predicted 2D and depth)")
    fig.tight_layout()
    return fig

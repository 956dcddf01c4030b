"""Training-curve figures from a stage's metrics.jsonl (see pose3dlib.engine.runlog)."""
from __future__ import annotations

import os

from ..engine.runlog import read_metrics

# Validation series shown in the right panel: record key -> (label, axis). The MPJPE of training
# validation takes the true 2D and the predicted depth (engine.validation), so it measures depth
# alone; its baseline gives every joint the mean training depth.
VAL_SERIES = {
    "pck": ("2D PCK@0.1 (%)", "left"),
    "mpjpe_mm": ("3D MPJPE, true 2D + predicted depth (mm)", "right"),
    "mpjpe_mean_pose_mm": ("the same with the mean training depth (mm)", "right"),
}
PCK_COLOUR, MPJPE_COLOUR = "C0", "C3"
# The splits training validation scores (engine.train: MPII-format val for 2D, data.lab_val_dir for 3D)
VAL_SPLITS = {"2d": "PCK@0.1 on MPII-format val", "3d": "MPJPE on lab val"}
# One colour per train-loss curve in every stage's figure: the total in black, the heatmap term in the
# 2D colour, the depth term in the 3D colour
LOSS_COLOURS = {"loss": "black", "heatmap": PCK_COLOUR, "depth": MPJPE_COLOUR, "geometric": "C1"}


def loss_table(records: list[dict], kind: str = "epoch") -> dict[str, list[float]]:
    """Columns {"step": [...], term: [...]} of the records of one kind (missing values: nan)."""
    rows = [r for r in records if r.get("kind") == kind]
    keys = [k for k in (rows[0] if rows else {}) if k not in ("kind", "stage", "epoch", "lr", "digests", "world_size")]
    return {k: [float(r.get(k, float("nan"))) for r in rows] for k in keys}


def weights_of(weights: dict[str, float] | None, term: str) -> float:
    """The weight of one loss term in the total (1 when no weights are given)."""
    return 1.0 if weights is None else weights.get(term, 1.0)


def loss_label(term: str, weights: dict[str, float] | None, only_term: bool = False) -> str:
    """The legend label of a logged loss series: the total is weighted, the terms are logged unweighted
    ('depth (unweighted; x0.1 in loss)' when the weights are known). `only_term`: the term is the whole
    loss (its curve stands for the total too)."""
    if term == "loss":
        return "loss (weighted total)"
    if weights is None or term not in weights:
        return f"{term} (unweighted)"
    return f"{term} (unweighted; x{weights[term]:g} in loss" + (", its only term)" if only_term else ")")


def plot_training_curves(metrics_path: str | os.PathLike, title: str = "", weights: dict[str, float] | None = None):
    """Figure: train losses per logged step (log scale) and validation PCK / MPJPE per epoch.

    `weights` ({"heatmap": w, "depth": w, "geometric": w}, the stage's loss weights) hides
    the terms a stage does not train (weight 0), and the MPJPE series when depth is not
    trained. Returns a matplotlib Figure (two axes); save it with `fig.savefig(...)`.
    """
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    if not records:
        raise FileNotFoundError(f"{metrics_path}: no training records (has the stage been trained?)")
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 4.2))
    train = loss_table(records, "train")
    shown = {k: v for k, v in train.items()
             if k != "step" and any(x > 0 for x in v) and weights_of(weights, k) != 0}
    terms = [k for k in shown if k != "loss"]
    only_term = ("loss" in shown and len(terms) == 1
                 and shown["loss"] == [weights_of(weights, terms[0]) * x for x in shown[terms[0]]])
    if only_term:
        del shown["loss"]  # the total is that one term (Stage 1: the heatmap loss), drawn once
    for k, v in shown.items():
        ax_loss.plot(train["step"], v, ".-" if len(v) < 50 else "-", label=loss_label(k, weights, only_term),
                     linewidth=1, color=LOSS_COLOURS.get(k))
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("train losses", fontsize=10)
    if train:
        # below the axes, as the validation panel's: inside, it covered the curves
        ax_loss.legend(fontsize=8, ncols=1, loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False)
    val = loss_table(records, "val")
    ax_mm = ax_val.twinx()
    for key, (label, side) in VAL_SERIES.items():
        if key in val and not (key.startswith("mpjpe") and weights_of(weights, "depth") == 0):
            ax = ax_val if side == "left" else ax_mm
            style = "--" if key == "mpjpe_mean_pose_mm" else "-o"
            ax.plot(val["step"], val[key], style, label=label,
                    color={"pck": PCK_COLOUR, "mpjpe_mm": MPJPE_COLOUR}.get(key, "0.5"))
    ax_val.set_xlabel("step")
    # Whole scales from zero: a stage that moves PCK by half a point should look like it
    ax_val.set_ylim(0, 100)
    ax_val.set_ylabel("PCK (%), higher is better", color=PCK_COLOUR)
    ax_val.tick_params(axis="y", colors=PCK_COLOUR)
    ax_mm.set_ylabel("MPJPE (mm), lower is better", color=MPJPE_COLOUR)
    ax_mm.tick_params(axis="y", colors=MPJPE_COLOUR)
    if not ax_mm.lines:
        ax_mm.set_axis_off()
    else:
        ax_mm.set_ylim(0, 1.05 * max(max(line.get_ydata()) for line in ax_mm.lines))
    scored = [f"2D: {VAL_SPLITS['2d']}"] * bool(ax_val.lines) + [f"3D: {VAL_SPLITS['3d']}"] * bool(ax_mm.lines)
    ax_val.set_title("validation" + (f"\n{'; '.join(scored)}" if scored else ""), fontsize=10)
    handles = ax_val.get_legend_handles_labels()[0] + ax_mm.get_legend_handles_labels()[0]
    labels = ax_val.get_legend_handles_labels()[1] + ax_mm.get_legend_handles_labels()[1]
    if handles:
        # below the axes: "best" placement sees only one of the two y axes' lines and covered the other's
        ax_val.legend(handles, labels, fontsize=8, ncols=1, loc="upper center",
                      bbox_to_anchor=(0.5, -0.22), frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig

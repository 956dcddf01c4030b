"""The shared body of the training notebooks 02-04: train (or load) one stage, then show its curves."""
from __future__ import annotations

import os

from ..engine.runlog import read_metrics
from ..plots.curves import loss_table, plot_training_curves

# What a training notebook does for each `stage_status` of its stage's run folder.
STATUS_MEANING = {
    "absent": "none yet: training it now",
    "partial": "an interrupted run with this config: resuming it",
    "stale": "made with another config or start checkpoint: training it again from the start",
    "finished": "done with this config: reading it, no training",
}


def run_stage_notebook(cfg, stage: int, run_dir: str | os.PathLike, figures_dir: str | os.PathLike,
                       figure_name: str, init_from: str | os.PathLike | None = None) -> dict:
    """The shared body of the training notebooks 02-04: train (or load) one stage and show it.

    Prints the stage's status before and its checkpoint after, draws its training curves
    (saved as `<figures_dir>/<figure_name>.png` and left open, so a notebook shows it
    inline) and prints the validation table. Returns {"metrics": the stage's final
    metrics, "figure": the curves Figure, "val": loss_table of the 'val' records}.
    `init_from`: the checkpoint the stage starts from (default: stage N-1's, see train.fit).
    """
    from ..engine.paths import project_relative
    from ..engine.runs import checkpoint_path, metrics_log_path, stale_reasons
    from ..engine.train import stage_status, train_or_load
    from ..plots.viz import save_figure

    status = stage_status(cfg, stage, run_dir, init_from)
    print(f"stage {stage} checkpoint found: {status} ({STATUS_MEANING[status]})")
    if status == "stale":  # say what changed: a config key, or the stage it starts from
        reasons = stale_reasons(cfg, stage, run_dir, init_from)
        print("  because: " + "; ".join(reasons[:5]) + (f"; and {len(reasons) - 5} more" if len(reasons) > 5 else ""))
    metrics = train_or_load(cfg, stage, run_dir, init_from)
    print("checkpoint:", project_relative(checkpoint_path(run_dir, stage)))
    log = metrics_log_path(run_dir, stage)
    fig = plot_training_curves(log, title=f"stage {stage} ({cfg.profile})", weights=cfg.train.stage(stage).loss_weights())
    save_figure(fig, figures_dir, figure_name)
    val = loss_table(read_metrics(log), "val")
    print(f"{'step':>6} {'PCK@0.1 %':>10} {'MPJPE mm':>9} {'mean-pose mm':>13}")
    for i, step in enumerate(val["step"]):
        print(f"{int(step):>6} {val['pck'][i]:>10.1f} {val['mpjpe_mm'][i]:>9.1f} {val['mpjpe_mean_pose_mm'][i]:>13.1f}")
    return {"metrics": metrics, "figure": fig, "val": val}

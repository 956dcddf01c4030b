"""MPI-INF-3DHP test-set report: the official 3DPCK / AUC per scene and overall.

Scenes of the test set (sequences TS1..TS6): green screen TS1+TS2, no green screen TS3+TS4,
outdoor TS5+TS6. A scene's value is the valid-frame-weighted mean over its sequences,
which equals the value over all its (valid) frames pooled; the ground truth is the
`univ_annot3` the 3DHP converter writes as `joint_3d_mono`. The table's P1 / P2 columns are the
evaluator's 'all' rows, a mean of per-activity means as for Human3.6M, so on a test set whose
activities hold unequal numbers of frames they are averaged differently from the pooled PCK / AUC.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..metrics import pck3d_3dhp

SCENES: dict[str, tuple[int, ...]] = {"green_screen": (1, 2), "no_green_screen": (3, 4), "outdoor": (5, 6)}
PROTOCOLS = ("3dhp_pck", "3dhp_auc")  # percent
# their column labels in the results table (evaluate.PROTOCOLS takes them from here)
LABELS = {"3dhp_pck": "3DPCK@150mm, MPI-INF-3DHP (%)", "3dhp_auc": "AUC 0-150mm, MPI-INF-3DHP (%)"}
TABLE_COLUMNS = (("GS PCK", "3dhp_pck", "green_screen"), ("noGS PCK", "3dhp_pck", "no_green_screen"),
                 ("Outdoor PCK", "3dhp_pck", "outdoor"), ("All PCK", "3dhp_pck", "all"),
                 ("All AUC", "3dhp_auc", "all"), ("P1 (mm)", "p1_mpjpe", "all"), ("P2 (mm)", "p2_pa_mpjpe", "all"))


def mpi3dhp_rows(stage: str, split: str, pred_mm: np.ndarray, gt_mm: np.ndarray, sequence: np.ndarray) -> list[dict]:
    """Long-form rows (stage, split, protocol, action=scene or 'all', value in %) of the official protocol.

    Args:
        pred_mm, gt_mm: (N, 16, 3) pelvis-relative mm, MPII16 order.
        sequence: (N,) test sequence 1..6 of each frame.
    """
    sequence = np.asarray(sequence).astype(np.int64)
    if sequence.shape != (len(pred_mm),):
        raise ValueError(f"sequence must have shape ({len(pred_mm)},), got {sequence.shape}")
    unknown = sorted(set(sequence.tolist()) - {s for seqs in SCENES.values() for s in seqs})
    if unknown:
        raise ValueError(f"MPI-INF-3DHP test sequences are 1..6, got {unknown}")
    rows = []
    groups = {scene: np.isin(sequence, seqs) for scene, seqs in SCENES.items()}
    groups["all"] = np.ones(len(sequence), bool)
    for scene, mask in groups.items():
        if not mask.any():
            continue  # a partial download: report the scenes that are there
        scores = pck3d_3dhp(pred_mm[mask], gt_mm[mask])
        for protocol in PROTOCOLS:
            rows.append({"stage": stage, "split": split, "protocol": protocol, "action": scene,
                         "value": scores[protocol.removeprefix("3dhp_")]})
    return rows


def mpi3dhp_table(rows: Iterable[dict], split: str) -> str:
    """A markdown table in the paper's layout (per-scene PCK, overall PCK and AUC) with Protocols #1/#2 beside it."""
    values = {(r["stage"], r["protocol"], r["action"]): float(r["value"]) for r in rows if r["split"] == split}
    stages = sorted({s for s, p, _ in values if p in PROTOCOLS})
    lines = ["| stage | " + " | ".join(c for c, _, _ in TABLE_COLUMNS) + " |",
             "|---|" + "---:|" * len(TABLE_COLUMNS)]
    for stage in stages:
        cells = [f"{values[(stage, p, a)]:.1f}" if (stage, p, a) in values else "-" for _, p, a in TABLE_COLUMNS]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mpi3dhp_tables(rows: Iterable[dict]) -> dict[str, str]:
    """{split: mpi3dhp_table} for every split scored with the official protocol, in row order; {} if none.

    Only a converted MPI-INF-3DHP test set (`data.wild_test_dir`) has such rows; the synthetic
    splits have none, so `evaluate` and notebook 06 print these tables for real data only.
    """
    rows = list(rows)
    splits = dict.fromkeys(r["split"] for r in rows if r["protocol"] in PROTOCOLS)
    return {split: mpi3dhp_table(rows, split) for split in splits}

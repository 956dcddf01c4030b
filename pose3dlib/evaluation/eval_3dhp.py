"""MPI-INF-3DHP test-set report: the official 3DPCK / AUC per scene, per sequence, per activity and overall.

Scenes of the test set (sequences TS1..TS6): green screen TS1+TS2, no green screen TS3+TS4,
outdoor TS5+TS6. The official protocol also reports each sequence and each of the seven
activities (`data.actions.MPI3DHP_ACTIVITIES`, the per-frame activity label of the test set).
A group's value (scene, sequence, activity) is taken over all its valid frames pooled, which
for a scene equals the valid-frame-weighted mean over its sequences; the ground truth is the
`univ_annot3` the 3DHP converter writes as `joint_3d_mono`. The table's P1 / P2 columns are the
evaluator's 'all' rows, a mean of per-activity means as for Human3.6M, so on a test set whose
activities hold unequal numbers of frames they are averaged differently from the pooled PCK / AUC.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..data.actions import MPI3DHP_ACTIVITIES
from ..data.h36m import MPI3DHP_TEST_SEQUENCES
from ..metrics import pck3d_3dhp

SCENES: dict[str, tuple[int, ...]] = {"green_screen": (1, 2), "no_green_screen": (3, 4), "outdoor": (5, 6)}
PROTOCOLS = ("3dhp_pck", "3dhp_auc")  # fractions in [0, 1] in rows and metrics.csv, percent in the tables
# their column labels in the results table (evaluate.PROTOCOLS takes them from here; the cells say %, as PCKh's)
LABELS = {"3dhp_pck": "3DPCK@150mm, MPI-INF-3DHP", "3dhp_auc": "AUC 0-150mm, MPI-INF-3DHP"}
TABLE_COLUMNS = (("GS PCK", "3dhp_pck", "green_screen"), ("noGS PCK", "3dhp_pck", "no_green_screen"),
                 ("Outdoor PCK", "3dhp_pck", "outdoor"), ("All PCK", "3dhp_pck", "all"),
                 ("All AUC", "3dhp_auc", "all"), ("P1 (mm)", "p1_mpjpe", "all"), ("P2 (mm)", "p2_pa_mpjpe", "all"))


SEQUENCES: tuple[str, ...] = tuple(f"TS{s}" for s in MPI3DHP_TEST_SEQUENCES)


def mpi3dhp_rows(stage: str, split: str, pred_mm: np.ndarray, gt_mm: np.ndarray, sequence: np.ndarray,
                 activity: np.ndarray | None = None) -> list[dict]:
    """Long-form rows (stage, split, protocol, action, value a fraction in [0, 1]) of the official protocol.

    `action` is a scene (SCENES), a sequence ('TS1'..'TS6'), an activity's name
    (MPI3DHP_ACTIVITIES, when `activity` is given) or 'all'; groups without frames (a partial
    download) have no rows.

    Args:
        pred_mm, gt_mm: (N, 16, 3) pelvis-relative mm, MPII16 order.
        sequence: (N,) test sequence 1..6 of each frame.
        activity: (N,) activity id 1..7 of each frame, or None.
    """
    sequence = np.asarray(sequence).astype(np.int64)
    if sequence.shape != (len(pred_mm),):
        raise ValueError(f"sequence must have shape ({len(pred_mm)},), got {sequence.shape}")
    unknown = sorted(set(sequence.tolist()) - {s for seqs in SCENES.values() for s in seqs})
    if unknown:
        raise ValueError(f"MPI-INF-3DHP test sequences are 1..6, got {unknown}")
    rows = []
    groups = {scene: np.isin(sequence, seqs) for scene, seqs in SCENES.items()}
    groups.update({name: sequence == s for s, name in enumerate(SEQUENCES, start=1)})
    if activity is not None:
        activity = np.asarray(activity).astype(np.int64)
        if activity.shape != sequence.shape:
            raise ValueError(f"activity must have shape {sequence.shape}, got {activity.shape}")
        unknown = sorted(set(activity.tolist()) - set(MPI3DHP_ACTIVITIES))
        if unknown:
            raise ValueError(f"MPI-INF-3DHP activities are {min(MPI3DHP_ACTIVITIES)}..{max(MPI3DHP_ACTIVITIES)}, "
                             f"got {unknown}")
        groups.update({name: activity == a for a, name in MPI3DHP_ACTIVITIES.items()})
    groups["all"] = np.ones(len(sequence), bool)
    for scene, mask in groups.items():
        if not mask.any():
            continue  # a partial download: report the groups that are there
        scores = pck3d_3dhp(pred_mm[mask], gt_mm[mask])
        for protocol in PROTOCOLS:
            rows.append({"stage": stage, "split": split, "protocol": protocol, "action": scene,
                         "value": scores[protocol.removeprefix("3dhp_")]})
    return rows


def _stage_table(rows: Iterable[dict], split: str, columns: list[tuple[str, str, str]]) -> str:
    """Markdown: one row per stage scored with the official protocol, one column per (label, protocol, action);
    3DPCK and AUC in percent, Protocols #1 / #2 in mm."""
    values = {(r["stage"], r["protocol"], r["action"]): float(r["value"]) for r in rows if r["split"] == split}
    stages = sorted({s for s, p, _ in values if p in PROTOCOLS})
    lines = ["| stage | " + " | ".join(c for c, _, _ in columns) + " |", "|---|" + "---:|" * len(columns)]
    for stage in stages:
        cells = [f"{values[(stage, p, a)] * (100 if p in PROTOCOLS else 1):.1f}" if (stage, p, a) in values
                 else "-" for _, p, a in columns]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mpi3dhp_table(rows: Iterable[dict], split: str) -> str:
    """A markdown table in the paper's layout (per-scene PCK, overall PCK and AUC) with Protocols #1/#2 beside it."""
    return _stage_table(rows, split, list(TABLE_COLUMNS))


def breakdown_table(rows: Iterable[dict], split: str, groups: Iterable[str]) -> str | None:
    """Markdown: 3DPCK per group (columns, those with rows) and overall, then the overall AUC, one row per
    stage; None when no group has rows."""
    rows = list(rows)
    present = {r["action"] for r in rows if r["split"] == split and r["protocol"] == "3dhp_pck"}
    shown = [g for g in groups if g in present]
    if not shown:
        return None
    return _stage_table(rows, split, [(f"{g} PCK", "3dhp_pck", g) for g in shown]
                        + [("All PCK", "3dhp_pck", "all"), ("All AUC", "3dhp_auc", "all")])


def mpi3dhp_report(rows: Iterable[dict], split: str) -> str:
    """Markdown: the paper's per-scene table (`mpi3dhp_table`), then the official protocol's per-activity
    and per-sequence 3DPCK (where the rows hold them)."""
    rows = list(rows)
    parts = [mpi3dhp_table(rows, split)]
    present = {r["action"] for r in rows if r["split"] == split and r["protocol"] == "3dhp_pck"}
    if (absent := [s for s in SEQUENCES if s not in present]) and len(absent) < len(SEQUENCES):
        parts.append(f"Not the whole test set: {', '.join(absent)} not among the scored frames (missing from the "
                     "converted set, or left out by a sample limit), so the scene and All columns above cover the "
                     "other sequences only (not comparable with published numbers).")
    for title, groups in (("Per activity", MPI3DHP_ACTIVITIES.values()), ("Per sequence", SEQUENCES)):
        if (table := breakdown_table(rows, split, groups)) is not None:
            parts.append(f"{title} (3DPCK@150mm, %):\n\n{table}")
    return "\n\n".join(parts)


def mpi3dhp_tables(rows: Iterable[dict]) -> dict[str, str]:
    """{split: mpi3dhp_report} for every split scored with the official protocol, in row order; {} if none.

    Only a converted MPI-INF-3DHP test set (`data.wild_test_dir`) has such rows; the synthetic
    splits have none, so `evaluate` and notebook 06 print these tables for real data only.
    """
    rows = list(rows)
    splits = dict.fromkeys(r["split"] for r in rows if r["protocol"] in PROTOCOLS)
    return {split: mpi3dhp_report(rows, split) for split in splits}

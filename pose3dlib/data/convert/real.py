"""Convert the configured official downloads once (`data.raw_*_dir` -> `data.*_dir`): what `REAL_DATA=True` runs.

    reports = prepare_real_data(cfg.data)   # {"h36m": {...}, "mpii": {...}, "3dhp": {...}} for the keys set
"""
from __future__ import annotations

import json

from ...config import DataConfig
from ...engine.errors import DataError
from ...engine.paths import resolve
from .h36m import convert_h36m
from .mpi3dhp import convert_3dhp
from .mpii import convert_mpii

# The original release kept every 5th training frame and every 200th test frame.
RELEASE_EVERY, RELEASE_EVERY_TEST = 5, 200
MPII_MAT = "mpii_human_pose_v1_u12_1.mat"
MPII_VAL_FILES = ("valid.h5", "val.h5")  # Newell's validation split, when it lies beside the .mat


def _finished(out_dir: str) -> dict | None:
    """The report of an earlier complete conversion in `out_dir`, else None."""
    try:
        report = json.loads((resolve(out_dir) / "conversion.json").read_text())
    except (OSError, ValueError):
        return None
    return report if report.get("rows") else None


def _check_target(out_dir: str, key: str) -> None:
    out = resolve(out_dir)
    if any((p / "manifest.json").is_file() for p in (out, out.parent)):
        raise DataError(f"data.{key} = {out} holds synthetic data; point it at a folder for the converted set "
                        f"(e.g. data/converted/{out.name})")


def prepare_real_data(data_cfg: DataConfig, progress: bool = True) -> dict[str, dict]:
    """Convert every configured download that is not converted yet; return each one's report (found, converted, missing)."""
    jobs = {"h36m": (data_cfg.raw_h36m_dir, data_cfg.h36m_dir, "h36m_dir"),
            "mpii": (data_cfg.raw_mpii_dir, data_cfg.mpii_dir, "mpii_dir"),
            "3dhp": (data_cfg.raw_3dhp_dir, data_cfg.wild_test_dir, "wild_test_dir")}
    if not any(raw for raw, _, _ in jobs.values()):
        raise DataError("no official download configured: set data.raw_h36m_dir, data.raw_mpii_dir and/or "
                        "data.raw_3dhp_dir (README, 'Using the real datasets')")
    reports = {}
    for name, (raw, out, key) in jobs.items():
        if not raw:
            continue
        _check_target(out, key)
        done = _finished(out)
        if done is not None and done.get("dataset") == name:
            reports[name] = done
            continue
        if name == "h36m":
            reports[name] = convert_h36m(raw, out, every=RELEASE_EVERY, every_test=RELEASE_EVERY_TEST,
                                         progress=progress)
        elif name == "mpii":
            folder = resolve(raw)
            val = next((folder / f for f in MPII_VAL_FILES if (folder / f).is_file()), None)
            reports[name] = convert_mpii(folder / MPII_MAT, folder / "images", out, val_from=val, progress=progress)
        else:
            reports[name] = convert_3dhp(raw, out, progress=progress)
    return reports


def summary_rows(reports: dict[str, dict]) -> list[dict]:
    """One row per dataset for a table: rows written and how many files or sequences were missing."""
    rows = []
    for name, r in reports.items():
        missing = sum(len(r.get(k) or []) for k in ("missing", "subjects_missing", "missing_images",
                                                     "sequences_missing", "skipped"))
        rows.append({"dataset": name, "download": r["raw"], "rows": r["rows"], "missing": missing})
    return rows

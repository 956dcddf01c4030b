"""Convert the configured official downloads once (`data.raw_*_dir` -> `data.*_dir`): what `REAL_DATA=True` runs.

    overrides = real_data_overrides(cfg.data, "paper")  # where the converted sets go, for every notebook
    reports = prepare_real_data(cfg.data)   # {"h36m": {...}, "mpii": {...}, "3dhp": {...}} for the keys set

    python -m pose3dlib real-data-overrides --config configs/paper.yaml   # the overrides as a YAML list

Only the three `data.raw_*_dir` keys need setting: a dataset whose `data.*_dir` still names
synthetic data (a folder under data/synthetic/, or one the generator wrote) is read from
`data/converted/<profile>/<name>` instead, and the synthetic validation split of its domain
(`data.lab_val_dir` for Human3.6M, `data.wild_val_dir` for MPI-INF-3DHP) is dropped, so
training validates on Human3.6M's own test split, as the original release did, and on no wild
split with MPI-INF-3DHP (scored by the evaluation only). A
`data.*_dir` set to any other folder is used as given.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import yaml

from ...config import DataConfig, load_config
from ...engine.atomic_io import atomic_write_text
from ...engine.errors import ConfigError, DataError
from ...engine.paths import SYNTHETIC_DIR, CommandLinePath, resolve
from ...synthetic.generator import data_folders, set_manifest
from ..h36m import MPI3DHP_TEST_SEQUENCES
from .common import (
    CROP_RESAMPLING,
    DOWNLOAD_STAMP,
    REPORT_LISTS,
    download_stamp,
    files_fingerprint,
    report_items,
    shown_items,
)
from .h36m import RELEASE_EVERY, RELEASE_EVERY_TEST, convert_h36m, find_metadata, find_subject_dirs
from .mpi3dhp import convert_3dhp
from .mpii import convert_mpii

MPII_MAT = "mpii_human_pose_v1_u12_1.mat"
MPII_VAL_FILES = ("valid.h5", "val.h5")  # Newell's validation split, when it lies beside the .mat
CONVERTED_ROOT = "data/converted"  # <root>/<profile>/<name>: converted sets of a profile's downloads
# name -> (download key, converted-set key, the synthetic validation split of its domain or "")
DATASETS = {"h36m": ("raw_h36m_dir", "h36m_dir", "lab_val_dir"),
            "mpii": ("raw_mpii_dir", "mpii_dir", ""),
            "3dhp": ("raw_3dhp_dir", "wild_test_dir", "wild_val_dir")}


def _names_synthetic_data(folder: str) -> bool:
    """True for a location under data/synthetic/ or inside a folder the synthetic generator wrote."""
    return resolve(folder).is_relative_to(SYNTHETIC_DIR) or set_manifest(folder) is not None


def synthetic_sets_root(data_cfg: DataConfig) -> Path | None:
    """The one folder holding the synthetic sets this config still reads (`_names_synthetic_data`), or None.

    With only some downloads configured, the other datasets (and the synthetic validation split
    of a domain without a download) stay synthetic: the generator writes them into this folder.
    ConfigError when they lie in more than one folder (the generator writes all of them together).
    """
    synthetic = {key: f for key, f in data_folders(data_cfg).items() if _names_synthetic_data(getattr(data_cfg, key))}
    roots = {f.parent for f in synthetic.values()}
    if len(roots) > 1:
        raise ConfigError("the synthetic sets must share one folder (the generator writes them together), got "
                          + ", ".join(f"data.{k} = {f}" for k, f in synthetic.items()))
    return roots.pop() if roots else None


def _require_download(data_cfg: DataConfig) -> None:
    """DataError unless at least one `data.raw_*_dir` is set."""
    if not any(getattr(data_cfg, raw) for raw, _, _ in DATASETS.values()):
        raise DataError("no official download configured: set data.raw_h36m_dir, data.raw_mpii_dir and/or "
                        "data.raw_3dhp_dir (README, 'Using the real datasets')")


def real_data_overrides(data_cfg: DataConfig, profile: str) -> list[str]:
    """Config overrides (as for `--set`) that read every configured download from its converted set.

    See the module docstring for the rule; DataError when no `data.raw_*_dir` is set.
    """
    _require_download(data_cfg)
    overrides = []
    for name, (raw, key, val_key) in DATASETS.items():
        if getattr(data_cfg, raw) and _names_synthetic_data(getattr(data_cfg, key)):
            overrides.append(f"data.{key}={CONVERTED_ROOT}/{profile}/{name}")
            if val_key and getattr(data_cfg, val_key):
                overrides.append(f'data.{val_key}=""')
    return overrides


def read_paths(raw: Path, name: str | None) -> list[Path]:
    """The files and folders under the download `raw` that dataset `name`'s converter reads (all of
    `raw` for None): Human3.6M's subject folders (`S1/` or h36m-fetch's `extracted/S1/`) and
    metadata.xml; MPII's .mat, validation file and images/; MPI-INF-3DHP's TS1..TS6/. Whatever
    else the download holds (h36m-fetch's `processed/` frames, archives) is not walked."""
    if name == "h36m":
        subjects = find_subject_dirs(raw)
        paths = [subjects[s] for s in sorted(subjects)]
        try:
            paths.append(find_metadata(raw))
        except DataError:  # the converter names it; absent, it counts as absent
            paths.append(raw / "metadata.xml")
        return paths
    if name == "mpii":
        return [raw / MPII_MAT, *(raw / f for f in MPII_VAL_FILES), raw / "images"]
    if name == "3dhp":
        return [raw / f"TS{s}" for s in MPI3DHP_TEST_SEQUENCES]
    return [raw]


def download_fingerprint(raw: str | os.PathLike, name: str | None = None, drop_damaged: bool = False) -> str:
    """SHA-256 over the files dataset `name`'s converter reads under the download (`read_paths`;
    relative path, size, modification time; an absent one as absent): it changes when a subject, a
    sequence or a file the converter reads is added, removed or replaced (a Human3.6M subject removed is
    then refused by its converter, which would drop the subject's rows, until it is back or the converted
    set is deleted), and, for the sets of person
    crops (not MPII's, whose pictures are read as they are), when the converter cuts its crops another
    way (`common.CROP_RESAMPLING`) or, for Human3.6M, with `drop_damaged` (`data.h36m_drop_damaged`) set
    otherwise: the set is then converted again, and the stages trained on it again."""
    root = resolve(raw)
    files = files_fingerprint(*read_paths(root, name), root=root)
    if name == "mpii":
        return files
    options = f"crops: {CROP_RESAMPLING}" + ("; S9's damaged sequences dropped" if drop_damaged else "")
    return hashlib.sha256(f"{files} {options}".encode()).hexdigest()


def conversion_options(data_cfg: DataConfig, name: str) -> dict:
    """The config's options for dataset `name`'s converter, as keyword arguments of `download_fingerprint`
    (which they change) and of the converter."""
    return {"drop_damaged": data_cfg.h36m_drop_damaged} if name == "h36m" else {}


def _download_stamp(name: str, raw: str, options: dict) -> dict:
    """What `DOWNLOAD_STAMP` holds for dataset `name`'s download `raw` as it is now: its path (for
    messages) and its `download_fingerprint`, which alone identifies it (wherever it lies)."""
    return {"raw": str(resolve(raw)), "fingerprint": download_fingerprint(raw, name, **options)}


def _converted_from(out: str | os.PathLike, fingerprint: str) -> bool:
    """Whether the set in `out` was converted from a download with this `download_fingerprint`."""
    stamp = download_stamp(out)
    return stamp is not None and stamp["fingerprint"] == fingerprint


def download_states(data_cfg: DataConfig) -> dict[str, str]:
    """{dataset: `download_fingerprint` of its download now} for every configured download."""
    return {name: download_fingerprint(getattr(data_cfg, raw), name, **conversion_options(data_cfg, name))
            for name, (raw, _, _) in DATASETS.items() if getattr(data_cfg, raw)}


def write_download_states(data_cfg: DataConfig, path: str | os.PathLike) -> bool:
    """Write `download_states` as JSON to `path` unless it holds them already; True when written. The
    file's time then moves only when a download changed (or another one, with other files, is named):
    make's stamp that runs notebook 01, which converts the downloads, again (and with it the stages
    after it)."""
    text = json.dumps(download_states(data_cfg), sort_keys=True) + "\n"
    target = resolve(path)
    try:
        if target.read_text() == text:
            return False
    except OSError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, text)
    return True


def check_converted(data_cfg: DataConfig, hint: str) -> None:
    """DataError unless every configured download's set (its data.*_dir, as the real-data overrides
    give them) was converted from it as it is now (the same fingerprint), naming the first that was
    not and `hint` (the command that converts it)."""
    for name, fingerprint in download_states(data_cfg).items():
        raw_key, key, _ = DATASETS[name]
        out = getattr(data_cfg, key)
        if not _converted_from(out, fingerprint):
            state = "is not converted yet" if not resolve(out).is_dir() else "was not converted from it as it is now"
            raise DataError(f"data.{key} = {out} {state} (data.{raw_key} = {getattr(data_cfg, raw_key)}): {hint}")


def _finished(out_dir: str, stamp: dict) -> dict | None:
    """The report of an earlier complete conversion in `out_dir` of the download `stamp` describes, as it
    is now (the same fingerprint), else None (a different download, or files added to or removed from it
    since: convert again)."""
    out = resolve(out_dir)
    try:
        report = json.loads((out / "conversion.json").read_text())
    except (OSError, ValueError):
        return None
    return report if report.get("rows") and _converted_from(out, stamp["fingerprint"]) else None


def _check_target(out_dir: str, key: str) -> None:
    out = resolve(out_dir)
    if set_manifest(out) is not None:
        raise DataError(f"data.{key} = {out} holds synthetic data; point it at a folder for the converted set "
                        f"(e.g. data/converted/{out.name})")


def prepare_real_data(data_cfg: DataConfig, progress: bool = True) -> dict[str, dict]:
    """Convert every configured download that is not converted yet; return each one's report (found, converted, missing)."""
    _require_download(data_cfg)
    jobs = {name: (getattr(data_cfg, raw), getattr(data_cfg, key), key) for name, (raw, key, _) in DATASETS.items()}
    reports = {}
    for name, (raw, out, key) in jobs.items():
        if not raw:
            continue
        _check_target(out, key)
        options = conversion_options(data_cfg, name)
        stamp = _download_stamp(name, raw, options)  # before converting: a later change converts again
        done = _finished(out, stamp)
        if done is not None and done.get("dataset") == name:
            reports[name] = done
            continue
        try:
            reports[name] = _convert(name, raw, out, progress, options)
        except DataError as e:  # the converter names files and folders; this names the setting to change
            raise DataError(f"data.{DATASETS[name][0]} = {raw}: {e}") from None
        if not reports[name]["rows"]:  # as `convert-*` says it: not a later "annotation file not found"
            shown = shown_items(missing_items(reports[name]), 4)
            raise DataError(f"{name}: nothing was converted from data.{DATASETS[name][0]} = {reports[name]['raw']}"
                            + (f" (missing: {shown})" if shown else ""))
        atomic_write_text(resolve(out) / DOWNLOAD_STAMP, json.dumps(stamp) + "\n")
    return reports


def _convert(name: str, raw: str, out: str, progress: bool, options: dict) -> dict:
    """Run dataset `name`'s converter on the download `raw` into `out` (with `conversion_options`); its report."""
    if name == "h36m":
        return convert_h36m(raw, out, every=RELEASE_EVERY, every_test=RELEASE_EVERY_TEST, progress=progress,
                            **options)
    if name == "mpii":
        folder = resolve(raw)
        if not (folder / MPII_MAT).is_file():
            found = sorted(folder.glob(f"*/{MPII_MAT}")) + sorted(folder.glob(f"*/*/{MPII_MAT}"))
            where = (f"; it lies in {found[0].parent}: move it into {folder}, beside images/" if found else
                     f" (this setting names the folder that holds {MPII_MAT} and images/)")
            raise DataError(f"no {MPII_MAT} in {folder}{where}")
        val = next((folder / f for f in MPII_VAL_FILES if (folder / f).is_file()), None)
        return convert_mpii(folder / MPII_MAT, folder / "images", out, val_from=val, progress=progress)
    return convert_3dhp(raw, out, progress=progress)


def missing_items(report: dict) -> list[str]:
    """Everything a conversion report lists as missing, skipped or not found, in REPORT_LISTS order (not
    the damaged sequences left out on request, `data.h36m_drop_damaged`)."""
    return [item for field in REPORT_LISTS if field != "damaged_dropped" for item in report_items(report, field)]


def summary_rows(reports: dict[str, dict], shown: int = 4) -> list[dict]:
    """One row per dataset for a table: rows written, how many files, subjects or sequences were
    missing, and the first `shown` of them by name (conversion.json in the converted set lists all)."""
    rows = []
    for name, r in reports.items():
        missing = missing_items(r)
        rows.append({"dataset": name, "download": r["raw"], "rows": r["rows"], "missing": len(missing),
                     "first missing": shown_items(missing, shown) if missing else ""})
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", action=CommandLinePath, required=True, help="YAML config whose data.raw_*_dir name the downloads")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override (repeatable)")
    parser.add_argument("--state-file", action=CommandLinePath, default=None, metavar="FILE",
                        help="also write the downloads' state (the fingerprint of each) to FILE, only when it "
                             "changed: the stamp with which make reruns notebook 01 after a download changed")
    parser.add_argument("--as-args", action="store_true",
                        help="print them as command-line options instead ('--set KEY=VALUE ...'), e.g. for "
                             "`evaluate ... $(python -m pose3dlib real-data-overrides --config C --as-args)`")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides)
    try:
        overrides = real_data_overrides(cfg.data, cfg.profile)
    except DataError as e:  # name the file to edit
        raise DataError(f"{args.config}: {e}") from None
    for raw, _, _ in DATASETS.values():  # the overrides read sets converted from these: a typo is named now
        if (folder := getattr(cfg.data, raw)) and not resolve(folder).is_dir():
            print(f"warning: {args.config}: data.{raw} = {folder}: download folder not found ({resolve(folder)}); "
                  "the overrides name the set notebook 01 converts from it, which needs it there", file=sys.stderr)
    if args.state_file is not None:
        write_download_states(cfg.data, args.state_file)
    if args.as_args:
        spaced = [o for o in overrides if any(c.isspace() for c in o)]
        if spaced:  # $(...) splits words on spaces and keeps quotes: such a path cannot pass that way
            raise DataError(f"{spaced[0]!r} holds a space, which $(...) would split; use the YAML list "
                            "(without --as-args) with papermill, or type the --set options quoted")
        print(" ".join(f"--set {o}" for o in overrides))
    else:
        print(yaml.safe_dump(overrides, default_flow_style=True, width=10_000).strip())
    return 0

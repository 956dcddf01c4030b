"""Score a trained run on synthetic people it never saw, and compare with the run's own numbers.

    python -m pose3dlib unseen-check --config configs/cpu.yaml --run-dir runs/cpu [--seeds 7,13,21]

A run's `metrics.csv` is one draw of test people (the cpu profile's lab_test holds twelve,
`synthetic.h36m_test_subjects`), so a number in it is worth as much as it holds on people
drawn again. For each seed this
command writes a new synthetic set with the config's sizes and that generator seed
(`<data-root>/seed=<s>/`, skipped when already complete), scores the run's checkpoints on it
exactly as `evaluate` does, with `data.h36m_dir`, `data.mpii_dir` and `data.wild_test_dir`
pointed there, into `<out>/seed=<s>/metrics.csv`, and compares every action-averaged number
with the run's `metrics.csv`:

- `<out>/unseen.csv`: one row per seed and number (`seed,stage,split,protocol,reference,value,
  relative,within`); `relative` is (value - reference) / reference;
- `<out>/unseen.md`: the run's numbers against each seed's, relative differences beyond the
  tolerance in bold, then each set's own mean-pose baseline and Protocol #1 as a fraction of it
  (shown, not checked: the baseline is a property of the new people, not of the network);
- `<out>/unseen.json`: how the seeds were scored (config, overrides, stages, limit, tolerance).

A check of some seeds keeps the other seeds already in `<out>/unseen.csv` (the record gains
columns instead of losing them): those scored with the same settings and compared with the same
reference numbers. A check that would drop a seed (other settings, another run's metrics.csv) is
refused before any data is written; `--replace` starts the record over.

The seed must differ from the config's: that one is the data the run was trained and scored on.
A run on the real datasets is refused (new synthetic people do not reproduce its numbers): one
scored on a converted MPI-INF-3DHP test set (its 3DPCK rows), or trained on other data than
synthetic sets (`runs.non_synthetic_training_data`: a converted download its checkpoints record,
or a training folder that holds no synthetic set).
The evaluation is redone on every call (about a minute per seed for the cpu profile); the data
is kept and reused (about 320 MB per cpu-profile seed; delete `<data-root>` to reclaim it).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

from ..engine import runs
from ..engine.atomic_io import atomic_write, atomic_write_text
from ..engine.errors import Pose3DError
from ..engine.paths import SYNTHETIC_DIR, CommandLinePath, project_relative, resolve
from ..tools.sweep import parse_seeds
from .eval_3dhp import PROTOCOLS as THREEDHP_PROTOCOLS
from .evaluate import (
    MEAN_POSE,
    check_stages,
    evaluate_run,
    is_fraction,
    parse_stages,
    protocol_label,
    read_metrics_csv,
    write_metrics_csv,
)

UNSEEN_COLUMNS = ("seed", "stage", "split", "protocol", "reference", "value", "relative", "within")
UNSEEN_CSV, UNSEEN_JSON = "unseen.csv", "unseen.json"  # the comparison; how its seeds were scored
# the generator seeds of the committed runs/unseen/cpu record, and the default
RECORD_SEEDS = (7, 13, 21, 31, 32, 33, 34, 35, 36, 37, 38)
RATIO_PROTOCOL = "p1_mpjpe"  # shown as a fraction of each set's own mean pose
# the data folders `evaluate` reads, and each one's sub-folder in a generated set
DATA_KEYS = {"h36m_dir": "h36m", "mpii_dir": "mpii", "wild_test_dir": "wild_test"}


def relative_difference(reference: float, value: float) -> float:
    """(value - reference) / |reference|; nan when the reference is 0 or either is not finite."""
    if not (math.isfinite(reference) and math.isfinite(value)) or reference == 0:
        return math.nan
    return (value - reference) / abs(reference)


def _averaged(rows: list[dict]) -> dict[tuple[str, str, str], float]:
    """(stage, split, protocol) -> value of the action-averaged ('all') rows, in file order."""
    return {(r["stage"], r["split"], r["protocol"]): r["value"] for r in rows if r["action"] == "all"}


def compare_metrics(reference: list[dict], candidate: list[dict], tolerance: float = 0.10) -> list[dict]:
    """Compare two metrics.csv row lists number by number (action-averaged rows).

    Every (stage, split, protocol) of `reference` whose stage `candidate` has too is compared;
    a number missing from a stage that both have is an error (the two came from different
    evaluators). Returns, in `reference`'s order, dicts with the keys of UNSEEN_COLUMNS but
    `seed`: `relative` from `relative_difference`, and `within` True / False for |relative| <=
    `tolerance` (False when it is nan), None for the mean-pose rows, which are not checked.
    """
    if not tolerance >= 0:
        raise Pose3DError(f"tolerance must be >= 0, got {tolerance}")
    ref, cand = _averaged(reference), _averaged(candidate)
    common_stages = {k[0] for k in ref} & {k[0] for k in cand}
    out = []
    for key, r in ref.items():
        if key[0] not in common_stages:
            continue
        if key not in cand:
            raise Pose3DError(f"the compared metrics lack {'/'.join(key)}, which the reference has "
                              "(written by another version of the evaluator? evaluate both again)")
        rel = relative_difference(r, cand[key])
        within = None if key[0] == MEAN_POSE else (not math.isnan(rel) and abs(rel) <= tolerance)
        out.append({"stage": key[0], "split": key[1], "protocol": key[2], "reference": r, "value": cand[key],
                    "relative": rel, "within": within})
    if not any(c["within"] is not None for c in out):
        raise Pose3DError("the two metrics files share no model stage to compare")
    return out


def _number(protocol: str, value: float) -> str:
    return f"{100 * value:.1f} %" if is_fraction(protocol) else f"{value:.1f}"


def _percent(rel: float) -> str:
    return "n/a" if math.isnan(rel) else f"{100 * rel:+.1f} %"


def _label(stage: str, split: str, protocol: str) -> str:
    name = "mean pose" if stage == MEAN_POSE else stage.replace("stage", "Stage ")
    return f"{name}, {split}, {protocol_label(protocol)}"


def unseen_table(rows: list[dict], tolerance: float) -> str:
    """Markdown: one line per number, the reference then each seed's value (relative difference).

    `rows`: the long-form rows of `unseen_rows` (one per seed and number). Differences beyond
    the tolerance are bold; then each set's mean pose and Protocol #1 as a fraction of it, to 4
    decimals (with 3, a ratio of 0.7497 would print as 0.750, on a 0.75 target).
    """
    seeds = list(dict.fromkeys(r["seed"] for r in rows))
    by_key: dict[tuple, dict] = {}
    for r in rows:
        by_key.setdefault((r["stage"], r["split"], r["protocol"]), {})[r["seed"]] = r
    head = ["| | reference | " + " | ".join(f"seed {s}" for s in seeds) + " |", "|---|---:|" + "---:|" * len(seeds)]
    checked, baseline = [], []
    for (stage, split, protocol), per_seed in by_key.items():
        first = next(iter(per_seed.values()))
        cells = []
        for s in seeds:
            r = per_seed.get(s)
            if r is None:
                cells.append("")
                continue
            rel = _percent(r["relative"])
            cells.append(f"{_number(protocol, r['value'])} ({'**' + rel + '**' if r['within'] is False else rel})")
        line = f"| {_label(stage, split, protocol)} | {_number(protocol, first['reference'])} | " + " | ".join(cells) + " |"
        (baseline if stage == MEAN_POSE else checked).append(line)
    ratios = []
    for (stage, split, protocol), per_seed in by_key.items():
        base = by_key.get((MEAN_POSE, split, protocol), {})
        if stage == MEAN_POSE or protocol != RATIO_PROTOCOL or not base:
            continue
        first_seed = next(iter(per_seed))
        ref_ratio = per_seed[first_seed]["reference"] / base[first_seed]["reference"]
        cells = [f"{per_seed[s]['value'] / base[s]['value']:.4f}" if s in per_seed and s in base else "" for s in seeds]
        ratios.append(f"| {_label(stage, split, protocol)} / mean pose | {ref_ratio:.4f} | " + " | ".join(cells) + " |")
    return "\n".join([
        f"Each cell: the number on that seed's new people (its difference from the reference; beyond "
        f"±{100 * tolerance:g} % in bold).", "", *head, *checked, "",
        "Each set's own mean-pose baseline (not checked), and Protocol #1 as a fraction of it:", "",
        *head, *baseline, *ratios])


def verdict(rows: list[dict], tolerance: float) -> str:
    """One paragraph: how many model numbers hold within the tolerance on every seed, and which do not."""
    checked = [r for r in rows if r["within"] is not None]
    seeds = list(dict.fromkeys(r["seed"] for r in rows))
    keys = list(dict.fromkeys((r["stage"], r["split"], r["protocol"]) for r in checked))
    misses: dict[tuple, list[dict]] = {}
    for r in checked:
        if not r["within"]:
            misses.setdefault((r["stage"], r["split"], r["protocol"]), []).append(r)
    text = (f"{len(keys) - len(misses)} of {len(keys)} numbers within ±{100 * tolerance:g} % of the reference on "
            f"every set (seeds {', '.join(str(s) for s in seeds)})")
    if not misses:
        return text + "."
    sets = len({m["seed"] for ms in misses.values() for m in ms})
    listed = "; ".join(f"{_label(*k)}: " + ", ".join(f"seed {m['seed']} {_percent(m['relative'])}" for m in ms)
                       for k, ms in misses.items())
    return f"{text}; {len(misses)} differ by more on {sets} of {len(seeds)} set(s): {listed}."


def unseen_rows(reference: list[dict], per_seed: dict[int, list[dict]], tolerance: float) -> list[dict]:
    """`compare_metrics` of every seed's rows against `reference`, as long-form rows with a `seed`."""
    return [{"seed": s, **c} for s, rows in per_seed.items() for c in compare_metrics(reference, rows, tolerance)]


def _stored(value: float) -> str:
    """A number as unseen.csv stores it (4 decimals; 'nan'): the form in which two checks' references are compared."""
    return f"{value:.4f}" if math.isfinite(value) else "nan"


def write_unseen_csv(rows: list[dict], path: str | Path) -> Path:
    """Write `unseen_rows` atomically (UNSEEN_COLUMNS; values to 4 decimals, within as 1/0/empty)."""
    def write(f) -> None:
        w = csv.DictWriter(f, fieldnames=UNSEEN_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({**r, **{k: _stored(r[k]) for k in ("reference", "value")},
                        "relative": f"{r['relative']:.5f}" if math.isfinite(r["relative"]) else "nan",
                        "within": "" if r["within"] is None else int(r["within"])})

    return atomic_write(resolve(path), write)


def read_unseen_csv(path: str | Path) -> list[dict]:
    """Rows written by `write_unseen_csv`, typed back (seed int; numbers float; within True/False/None).

    Raises Pose3DError naming the file and line for another header or a short or malformed row."""
    path = resolve(path)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != UNSEEN_COLUMNS:
            raise Pose3DError(f"{path}: header {reader.fieldnames}; expected {','.join(UNSEEN_COLUMNS)}")
        rows = []
        for r in reader:
            try:
                rows.append({**r, "seed": int(r["seed"]), **{k: float(r[k]) for k in ("reference", "value", "relative")},
                             "within": {"": None, "1": True, "0": False}[r["within"]]})
            except (ValueError, TypeError, KeyError) as e:
                raise Pose3DError(f"{path}: line {reader.line_num}: not a row of {','.join(UNSEEN_COLUMNS)} "
                                  f"({type(e).__name__}: {e})") from None
    return rows


def earlier_seeds(out: Path, settings: dict, reference: list[dict], seeds: list[int]) -> list[dict]:
    """The rows of `<out>/unseen.csv` to keep beside a check of `seeds` (none when the file is absent).

    Kept: every seed not among `seeds`, provided `<out>/unseen.json` records the same scoring
    `settings` (config, overrides, stages, limit) and each of its rows' reference numbers equals
    the run's `metrics.csv` (`reference`) as stored. Anything else would drop a seed, so it raises
    Pose3DError naming the difference and `--replace` before any data is written.
    """
    table, meta = out / UNSEEN_CSV, out / UNSEEN_JSON
    if not table.is_file():
        return []
    rows = [r for r in read_unseen_csv(table) if r["seed"] not in seeds]
    if not rows:
        return []
    others = sorted({r["seed"] for r in rows})
    lost = (f"{project_relative(table)} holds seeds {', '.join(map(str, others))}, which this check would drop: "
            "pass --replace to start the record over with these seeds, or --out for another folder")
    try:
        before = json.loads(meta.read_text())
    except (OSError, ValueError):
        raise Pose3DError(f"{lost} ({project_relative(meta)}, how they were scored, is missing or unreadable)") from None
    changed = [f"{k} {before.get(k)!r} -> {v!r}" for k, v in settings.items() if k != "tolerance" and before.get(k) != v]
    if changed:
        raise Pose3DError(f"{lost} (scored with other settings: {'; '.join(changed)})")
    now = {k: _stored(v) for k, v in _averaged(reference).items()}
    stale = sorted({r["seed"] for r in rows if now.get((r["stage"], r["split"], r["protocol"])) != _stored(r["reference"])})
    if stale:
        raise Pose3DError(f"{lost} (seeds {', '.join(map(str, stale))} were compared with other reference numbers "
                          "than the run's metrics.csv has now: another run, or the run evaluated again)")
    if before.get("tolerance") != settings["tolerance"]:  # `within` from the stored relative difference
        rows = [{**r, "within": None if r["within"] is None else (not math.isnan(r["relative"])
                                                                   and abs(r["relative"]) <= settings["tolerance"])}
                for r in rows]
    return rows


def merge_seeds(result: list[dict], kept: list[dict]) -> list[dict]:
    """`result` and `kept` rows in one list sorted by seed, each seed's rows in their own (metrics.csv) order."""
    return sorted([*result, *kept], key=lambda r: r["seed"])


def scored_these_weights(run_dir: str | Path, stage: int) -> bool:
    """Whether the run's metrics.csv scored its `stage` checkpoint as it is now: by the checkpoint's
    digest where an `evaluated.json` records the evaluation that wrote this metrics.csv (sweep and
    ablation runs), else by the files' times (the checkpoint not newer than metrics.csv)."""
    ckpt, csv_path = runs.checkpoint_path(run_dir, stage), runs.eval_csv_path(run_dir)
    try:
        record = json.loads((resolve(run_dir) / runs.EVALUATED_NAME).read_text())
        scored = record["checkpoints_sha256"][runs.stage_name(stage)]
        if record["metrics_csv_sha256"] == runs.file_digest(csv_path) and scored is not None:
            return scored == runs.file_digest(ckpt)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return ckpt.stat().st_mtime <= csv_path.stat().st_mtime


def check_no_data_folders(overrides: list[str]) -> None:
    """Pose3DError naming an --set of a data folder (generator.DATA_KEYS): each seed is scored on the sets this
    check generates for it (`set_overrides` points the evaluation there), so such an override would be
    recorded in unseen.json without changing a number."""
    from ..config import override_keys
    from ..synthetic.generator import DATA_KEYS as GENERATOR_DATA_KEYS  # not this module's DATA_KEYS (three of them)

    folders = {f"data.{k}" for k in GENERATOR_DATA_KEYS}  # each seed's sets stand in for all of them
    for item in overrides:
        for key in override_keys(item):
            if key in folders:
                raise Pose3DError(f"--set {item}: unseen-check scores each seed on the sets it generates (under "
                                  "--data-root), not on data folders of the config; to score the run on a folder of "
                                  "yours, use `python -m pose3dlib evaluate --set data.KEY=FOLDER`")


def set_overrides(set_dir: Path) -> list[str]:
    """The `--set` overrides that point `evaluate`'s data folders into a generated set."""
    return [f"data.{key}={json.dumps(str(set_dir / sub))}" for key, sub in DATA_KEYS.items()]  # quoted: a '#' or ': ' in the path stays in it


def check_unseen(config: str, run_dir: str | Path, seeds: list[int], *, stages: list[int] | None = None,
                 tolerance: float = 0.10, data_root: str | Path | None = None, out: str | Path | None = None,
                 overrides: list[str] | tuple[str, ...] = (), limit: int = 0,
                 replace: bool = False) -> tuple[list[dict], Path]:
    """Generate, score and compare every seed (see the module docstring); returns (rows, out folder).

    The rows are these seeds' and, unless `replace`, the earlier seeds kept from `<out>/unseen.csv`
    (`earlier_seeds`), sorted by seed."""
    from ..config import load_config
    from ..engine.checkpoint import load_checkpoint
    from ..synthetic.generator import generate

    cfg = load_config(config, overrides)
    stages = list(runs.STAGES) if stages is None else list(stages)
    check_stages(stages)
    if not seeds:
        raise Pose3DError("--seeds: give at least one generator seed, e.g. 7")
    if any(s < 0 for s in seeds):
        raise Pose3DError(f"--seeds: generator seeds are >= 0, got {','.join(str(s) for s in seeds)}")
    if cfg.seed in seeds:
        raise Pose3DError(f"--seeds: {cfg.seed} is the config's own seed, the data the run was trained and scored "
                          "on; choose other seeds")
    if not 0 <= tolerance < 1:  # 10 meant as 10 % would pass differences up to 1000 %: --strict could never fail
        raise Pose3DError(f"--tolerance {tolerance:g}: expected a fraction in [0, 1), e.g. 0.1 for 10 %")
    reference = read_metrics_csv(runs.eval_csv_path(run_dir))
    if any(r["protocol"] in THREEDHP_PROTOCOLS for r in reference):
        raise Pose3DError(f"{runs.eval_csv_path(run_dir)} was scored on a converted MPI-INF-3DHP test set (its "
                          f"{', '.join(THREEDHP_PROTOCOLS)} rows): a run on the real datasets, which synthetic sets of "
                          "new people do not reproduce; unseen-check compares a synthetic run with sets generated anew")
    scored = {r["stage"] for r in reference}
    missing = [runs.stage_name(s) for s in stages if runs.stage_name(s) not in scored]
    if missing:
        raise Pose3DError(f"{runs.eval_csv_path(run_dir)} has no rows of {', '.join(missing)}, so there is nothing to "
                          "compare them with: evaluate the run first or choose --stages")
    for stage in stages:  # fail before generating anything
        ckpt = runs.checkpoint_path(run_dir, stage)
        if not ckpt.is_file():
            raise Pose3DError(f"{ckpt} not found: train the run first (make reproduce) or choose --stages")
        other = runs.non_synthetic_training_data(load_checkpoint(ckpt))
        if other:
            raise Pose3DError(f"{ckpt} was trained on data other than synthetic sets ({'; '.join(other)}): a run on "
                              "the real datasets, which synthetic sets of new people do not reproduce; unseen-check "
                              "compares a synthetic run with sets generated anew")
        if not scored_these_weights(run_dir, stage):
            raise Pose3DError(f"{ckpt} is not the checkpoint {runs.eval_csv_path(run_dir)} scored (newer than it, or "
                              "another file than its evaluated.json records), so the numbers to compare with may be "
                              "of other weights: score the run again first (make reproduce, or python -m pose3dlib "
                              "evaluate --run-dir ...)")
    data_root = resolve(data_root) if data_root else SYNTHETIC_DIR / "unseen" / cfg.profile
    out = resolve(out) if out else resolve(Path("runs") / "unseen" / cfg.profile)
    settings = {"config": str(project_relative(config)), "overrides": list(overrides), "stages": list(stages),
                "limit": int(limit), "tolerance": tolerance}
    kept = [] if replace else earlier_seeds(out, settings, reference, seeds)  # refuses before any data is written
    # Every set is written before the first evaluation, so the data is complete before the long part.
    set_dirs = {}
    for seed in seeds:
        print(f"seed {seed}: synthetic set in {project_relative(data_root / f'seed={seed}')}", flush=True)
        set_dirs[seed] = generate(data_root / f"seed={seed}", cfg.synthetic, seed)
    per_seed = {}
    for seed, set_dir in set_dirs.items():
        print(f"seed {seed}: scoring {project_relative(run_dir)}", flush=True)
        seed_cfg = load_config(config, [*overrides, *set_overrides(set_dir)])
        rows = evaluate_run(seed_cfg, run_dir, stages=stages, limit=limit)
        write_metrics_csv(rows, out / f"seed={seed}" / runs.EVAL_CSV_NAME)
        per_seed[seed] = rows
    result = merge_seeds(unseen_rows(reference, per_seed, tolerance), kept)
    if kept:
        print(f"kept seed(s) {', '.join(map(str, sorted({r['seed'] for r in kept})))} of earlier checks "
              f"in {project_relative(out / UNSEEN_CSV)} (same settings, same metrics.csv)", flush=True)
    write_unseen_csv(result, out / UNSEEN_CSV)
    atomic_write_text(out / UNSEEN_JSON, json.dumps(settings, indent=1) + "\n")
    write_unseen_md(result, run_dir, out, tolerance)
    return result, out


def write_unseen_md(rows: list[dict], run_dir: str | Path, out: str | Path, tolerance: float) -> Path:
    """Write `<out>/unseen.md` (the table and verdict of `rows`, the long-form rows of unseen.csv) atomically."""
    out = resolve(out)
    return atomic_write_text(out / "unseen.md", (
        f"# `{project_relative(run_dir)}` on people it never saw\n\n"
        f"_Written by `python -m pose3dlib unseen-check` from `{project_relative(runs.eval_csv_path(run_dir))}` "
        f"(the reference) and `{project_relative(out)}/seed=<s>/metrics.csv`._\n\n"
        f"{unseen_table(rows, tolerance)}\n\n{verdict(rows, tolerance)}\n"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", action=CommandLinePath, required=True, help="the run's YAML config (e.g. configs/cpu.yaml)")
    parser.add_argument("--run-dir", action=CommandLinePath, required=True, help="run folder holding stage1/ stage2/ stage3/ and metrics.csv")
    seeds = ",".join(map(str, RECORD_SEEDS))
    parser.add_argument("--seeds", default=seeds,
                        help=f"generator seeds of the new sets (default {seeds}, the committed record's: for the cpu profile 320 MB "
                             "each and about 1.2 minutes each on an idle 2-core machine, longer on shared cores; e.g. --seeds 7 for one)")
    parser.add_argument("--stages", default="1,2,3", help="comma-separated stages to score (default 1,2,3)")
    parser.add_argument("--tolerance", type=float, default=0.10,
                        help="largest relative difference that counts as agreement, a fraction in [0, 1) (default 0.10: 10 %%)")
    parser.add_argument("--data-root", action=CommandLinePath, default=None,
                        help="where the new sets go, one seed=<s>/ each (default data/synthetic/unseen/<profile>)")
    parser.add_argument("--out", action=CommandLinePath, default=None, help="results folder (default runs/unseen/<profile>)")
    parser.add_argument("--limit", type=int, default=0,
                        help="score only the first N samples of each split (default 0: every sample)")
    parser.add_argument("--replace", action="store_true",
                        help="write unseen.csv/.md from these seeds alone (default: keep the other seeds already "
                             "there, scored with the same settings against the same metrics.csv numbers, and refuse "
                             "a check that would drop one)")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 1 when a number of these seeds differs by more than the tolerance")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, as for evaluate (repeatable)")


def run(args: argparse.Namespace) -> int:
    from ..engine.atomic_io import prepare_output_folder
    from .evaluate import check_limit, check_overrides

    check_limit(args.limit)
    check_overrides(args.overrides)
    check_no_data_folders(args.overrides)
    seeds = parse_seeds(args.seeds)
    if args.out is not None:
        prepare_output_folder(args.out, "--out")  # before any set is generated or scored
    rows, out = check_unseen(args.config, args.run_dir, seeds, stages=parse_stages(args.stages),
                             tolerance=args.tolerance, data_root=args.data_root, out=args.out,
                             overrides=args.overrides, limit=args.limit, replace=args.replace)
    print(unseen_table(rows, args.tolerance))
    print()
    print(verdict(rows, args.tolerance))
    print(f"wrote {project_relative(out / UNSEEN_CSV)}, {project_relative(out / 'unseen.md')}, "
          f"{project_relative(out / UNSEEN_JSON)} and each seed's {project_relative(out / 'seed=<N>' / runs.EVAL_CSV_NAME)}")
    # --strict judges this check's seeds, not the kept ones
    return 1 if args.strict and any(r["within"] is False for r in rows if r["seed"] in seeds) else 0

"""Papermill parameter sweeps: run notebooks once per value of one config key, then compare.

    python -m pose3dlib sweep --config configs/cpu.yaml --param train.stage3.geometric_weight \
        --values 0,0.1,1,10 --notebooks 04_train_geometry 06_eval_mpjpe --seeds 0,1,2

The swept parameter is a dotted config key: every value (and, with --seeds, every config
seed) reaches the notebooks as `overrides` entries (`<key>=<value>`, `seed=<s>`), and the
key is checked against the config before anything runs. Outputs go to one folder per
profile and key, `<out>/<profile>/<key>/` (runs.sweep_dir), so a sweep never overwrites
another profile's or another key's results. Each run gets its own folder
`<that>/value=<v>[,seed=<s>]/`, seeded with a copy (hard links) of the base run's
earlier-stage checkpoints (all three for an evaluation-only sweep), so only the swept
notebooks re-run. The summary gathers
every run's metrics.csv into `sweep.csv` (the metrics columns plus `param_value` and
`seed`), a table (`sweep.md`) and a figure (`sweep.png`) of Stage 3's Protocol #1 MPJPE,
with predicted and with ground-truth 2D, on wild_test and lab_test, against the value.

On the converted real downloads (`--real-data`, `make sweep REAL_DATA=True`) every cell also
gets the overrides of `real-data-overrides` (the config's `data.raw_*_dir` read from their
converted sets, as `make reproduce REAL_DATA=True` reads them), builds on the real-data run
`runs/<profile>-real` and writes to `<out>/<profile>-real/<key>/`, beside the synthetic sweeps.

Run again (after an interrupt, or with more values or seeds), a sweep skips what is done: a
training notebook whose stage is finished for the cell's config, an evaluation that scored
the cell's current checkpoints with it (`evaluated.json`, runs.is_evaluated).
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
from pathlib import Path

import yaml

from ..config import comma_items
from ..engine import runs
from ..engine.atomic_io import atomic_write, atomic_write_text, remove_stale_temporaries, temporary_sibling
from ..engine.errors import DataError, Pose3DError
from ..engine.paths import CommandLinePath, resolve
from ..evaluation.evaluate import CSV_COLUMNS, EVALUATION_DATA_KEYS, MEAN_POSE, read_metrics_csv
from .seed_stats import finite_mean_sd


def parse_values(text: str) -> list:
    """'0,0.001,abc' -> [0, 0.001, 'abc'] (YAML scalars)."""
    items = comma_items(text, "--values", "0,0.01")
    try:
        values = [yaml.safe_load(v) for v in items]
    except yaml.YAMLError as e:
        raise Pose3DError(f"--values {text!r}: not a list of YAML scalars ({' '.join(str(e).split())[:120]})") from None
    if not values:
        raise Pose3DError(f"--values {text!r}: give at least one value")
    return values


def parse_seeds(text: str, option: str = "--seeds") -> list[int]:
    """'0,1,2' -> [0, 1, 2]; '' -> [] (no seed override). A repeated seed counts once (order kept);
    Pose3DError naming `option` for anything but integers >= 0."""
    items = comma_items(text, option, "0,1,2")
    try:
        seeds = [int(v) for v in items]
    except ValueError:
        raise Pose3DError(f"{option} {text!r}: give comma-separated integers, e.g. 0,1,2") from None
    negative = [s for s in seeds if s < 0]
    if negative:
        raise Pose3DError(f"{option} {text!r}: seeds are integers >= 0, got {negative}")
    return list(dict.fromkeys(seeds))


def check_base_stage(ckpt_path: Path, ckpt: dict, cfg, stage: int,
                     ignored: tuple[str, ...] = runs.SEED_KEYS) -> None:
    """Pose3DError unless the base run's finished stage (`ckpt_path`, loaded as `ckpt`) was trained with
    `cfg` (the sweep cell's config) and on the data its folders hold now (`runs.data_changes`: the same
    synthetic sets, or conversions of the downloads as they are now), so a cell never builds on a stage
    of another recipe or other data while its records name these.
    `ignored`: keys the cells may change on a reused stage: the seed (the cells' seeds vary only the
    stages they train) and, in an evaluation-only sweep (every stage reused, e.g. of
    `data.mpii_dir`), the swept key (`data.wild_test_dir` never counts: `runs.TEST_ONLY_KEYS`)."""
    diffs = runs.recipe_differences(ckpt, cfg, stage, ignored)
    if diffs:
        raise Pose3DError(f"sweep base run's {ckpt_path} was trained with another config or other data than the "
                          f"sweep's ({'; '.join(diffs)}); where the swept key itself is among them, sweep the notebooks "
                          f"that train Stage {stage} too (SWEEP_NOTEBOOKS / --notebooks, from the one training Stage "
                          f"{stage}), so each cell trains it; otherwise train that stage again with this config and data "
                          f"(`python -m pose3dlib train --config <config> --stage {stage} --run-dir "
                          f"{ckpt_path.parent.parent} --overwrite`, then `make reproduce PROFILE=...` for the stages after "
                          "it; for a run on the real downloads, `make reproduce PROFILE=... REAL_DATA=True` converts them "
                          "again and retrains what was trained on other conversions) or sweep with the config it was "
                          "trained with (--config)")


def check_reused_stage(base_run: Path, stage: int, cfgs=(), ignored: tuple[str, ...] = runs.SEED_KEYS) -> None:
    """Pose3DError unless the base run's `stage` is there, finished, trained from the base run's previous
    stage as that file is now (`runs.started_from`), and trained with each of `cfgs` (`check_base_stage`):
    what the sweep cells reusing that stage need. Its checkpoint is read once for all of them."""
    from ..engine.checkpoint import is_finished, load_checkpoint

    src, path = runs.stage_dir(base_run, stage), runs.checkpoint_path(base_run, stage)
    if not src.is_dir():
        raise Pose3DError(f"sweep base run lacks {src}; run `make reproduce PROFILE=...` for it first (REAL_DATA=True "
                          "for a run on the real downloads)")
    ckpt = load_checkpoint(path) if path.is_file() else None
    if ckpt is None or not is_finished(ckpt):
        raise Pose3DError(f"sweep base run's {path} is not a finished stage "
                          "(missing, or a training run that was interrupted); finish it first, e.g. "
                          "`make reproduce PROFILE=...` (REAL_DATA=True for a run on the real downloads)")
    previous = runs.checkpoint_path(base_run, stage - 1) if stage > 1 else None
    if previous is not None and not runs.started_from(ckpt, previous):
        raise Pose3DError(f"sweep base run's {path} was not trained from its {previous} as that file is now (the "
                          f"earlier stage was trained again since, or this one started from another checkpoint); "
                          f"train it again from that file first (`python -m pose3dlib train --config <config> --stage "
                          f"{stage} --run-dir {base_run} --overwrite`, then `make reproduce PROFILE=...` for the stages "
                          "after it)")
    for cfg in cfgs:
        check_base_stage(path, ckpt, cfg, stage, ignored)


def seed_run_dir(base_run: Path, run_dir: Path, stages: tuple[int, ...], cfg=None,
                 ignored: tuple[str, ...] = runs.SEED_KEYS) -> None:
    """Make `run_dir`'s `stages` the base run's: its files hard-linked (copied where links fail).

    Each stage must be finished in the base run, and trained with `cfg` when given (`check_base_stage`,
    differences in the `ignored` keys aside). Hidden files (the stage folder's lock, a writer's
    temporaries) are not linked: the cell has its own.

    Run again on a cell that exists, it re-links every file that is not (or no longer) the base
    run's: a copy cut off by an interrupt, or a base run retrained since (the cell's later
    stages then see a new init checkpoint and retrain, runs.stage_status). Each file is built
    under a temporary name and renamed, so an interrupt never leaves half of one.
    """
    for stage in stages:
        check_reused_stage(base_run, stage, () if cfg is None else (cfg,), ignored)
    link_stages(base_run, run_dir, stages)


def link_stages(base_run: Path, run_dir: Path, stages: tuple[int, ...]) -> None:
    """`seed_run_dir`'s linking alone, for stages already checked (`check_reused_stage`)."""
    import filecmp

    for stage in stages:
        src = runs.stage_dir(base_run, stage)
        dst = runs.stage_dir(run_dir, stage)
        dst.mkdir(parents=True, exist_ok=True)
        for f in src.iterdir():
            target = dst / f.name
            if f.name.startswith(".") or not f.is_file() or (target.is_file() and (os.path.samefile(f, target)
                                                         or filecmp.cmp(f, target, shallow=False))):
                continue
            remove_stale_temporaries(target)
            tmp = temporary_sibling(target)
            try:
                try:
                    os.link(f, tmp)
                except OSError:
                    shutil.copy2(f, tmp)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)


SWEEP_COLUMNS = ("param_value", "seed", *CSV_COLUMNS)
SKIPPED_PARAMS = ("stages", "metrics_csv")  # notebook parameters only the evaluation notebook declares


def project_notebook_name(notebook: str) -> str:
    """A project notebook given as a path (notebooks/04_train_geometry.ipynb) -> its name, as the plan below
    reads it; a name, or a notebook of one's own, as given."""
    from ..engine.paths import NOTEBOOKS_DIR

    if notebook.endswith(".ipynb") and Path(os.path.realpath(resolve(notebook))).parent == NOTEBOOKS_DIR.resolve():
        return Path(notebook).stem
    return notebook


def check_notebook_order(notebooks: list[str]) -> None:
    """Pose3DError unless the training notebooks run in stage order and the evaluation after them: each cell
    runs the notebooks in the order given, so 06 before 04 scored the cell's old Stage 3 and then trained it."""
    from .notebook_runner import EVAL_NOTEBOOK, STAGE_TRAINED_BY

    rank = {"01_data_prep": 0, **STAGE_TRAINED_BY, EVAL_NOTEBOOK: len(STAGE_TRAINED_BY) + 1}
    ranks = [rank[nb] for nb in notebooks if nb in rank]
    if ranks != sorted(ranks):
        ordered = sorted((nb for nb in notebooks if nb in rank), key=rank.__getitem__)
        raise Pose3DError(f"sweep notebooks {' '.join(notebooks)}: each cell runs them in the order given, so they must "
                          f"follow the stages, the evaluation last: {' '.join(ordered)}")


def stage_plan(notebooks: list[str]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(stages linked from the base run, stages the evaluation scores) for a sweep of `notebooks`.

    The stages before the first one a swept notebook trains come from the base run; the swept
    ones are scored (all three when no swept notebook trains: an evaluation-only sweep, such as
    one of `eval.*` keys). Stages after the last trained one are not there, so are not scored.
    A gap (training Stages 1 and 3 but not 2) is refused: Stage 3 would start from no Stage 2.
    """
    from .notebook_runner import STAGE_TRAINED_BY, TRAIN_NOTEBOOKS

    trained = sorted(STAGE_TRAINED_BY[nb] for nb in set(notebooks) if nb in STAGE_TRAINED_BY)
    if not trained:
        return tuple(runs.STAGES), tuple(runs.STAGES)
    missing = [TRAIN_NOTEBOOKS[s] for s in range(trained[0], trained[-1] + 1) if s not in trained]
    if missing:
        raise Pose3DError(f"sweep notebooks {notebooks} train Stages {trained} but skip {missing}: "
                          "a stage starts from the one before it, so add them")
    return tuple(s for s in runs.STAGES if s < trained[0]), tuple(trained)


def cell_value(value) -> str:
    """A swept value as it appears in its folder's name: as written, with '/' as '%2F' (a path value
    such as data/synthetic/x would otherwise nest one value's folder inside another's)."""
    return str(value).replace("/", "%2F")


def typed_value(config_file: str | Path, param: str, value):
    """The value of dotted key `param` as the config reads it with `<param>=<value>` (ConfigError when bad)."""
    from ..config import load_config

    node = load_config(config_file, [f"{param}={value}"])
    for part in param.split("."):
        node = getattr(node, part)
    return node


def check_values(param: str, values: list, seeds: list[int] | None, config_file: str | Path) -> None:
    """Refuse values that are the same value of `param` twice (0.01 and 1e-2: one run counted as two) and
    a sweep of `seed` given seeds as well (the seed override would replace every swept value)."""
    seen: dict[str, object] = {}
    for value in values:
        typed = repr(typed_value(config_file, param, value))  # repr: a tuple-valued key is compared as well
        if typed in seen:
            raise Pose3DError(f"--values: {seen[typed]!r} and {value!r} are the same value of {param} ({typed}); "
                              "give each value once")
        seen[typed] = value
    if param == "seed" and seeds:
        raise Pose3DError(f"a sweep of seed takes no --seeds (each value is the seed; --seeds {seeds} would replace "
                          "it): give SWEEP_SEEDS= (empty) or --seeds ''")


def check_base_overrides(param: str, base_overrides: list[str] | tuple[str, ...], seeds: list[int] | None,
                         origin: str = "given for every cell") -> list[str]:
    """`base_overrides` as a list, refusing one that a cell's own override would replace: of the swept
    key (its values come from --values), or of `seed` when the sweep has seeds. `origin` says where
    they come from, for the message."""
    from ..config import override_keys

    for override in base_overrides:
        for key in override_keys(override):
            if key == param or (key == "seed" and seeds):
                given = "the swept key" if key == param else f"the seed, which --seeds {seeds} set per cell"
                raise Pose3DError(f"sweep of {param}: the override {override!r} {origin} sets {given}, which the "
                                  "cells' own overrides would replace; sweep another key, or leave it out")
    return list(base_overrides)


def check_stage_key(param: str, notebooks: list[str], trained: tuple[int, ...]) -> None:
    """Refuse a sweep of a stage's key (`train.stage<N>.*`) that none of `notebooks` trains: every value
    would reuse the base run's Stage N, trained with the base value."""
    from .notebook_runner import TRAIN_NOTEBOOKS

    parts = param.split(".")
    if len(parts) > 2 and parts[0] == "train" and parts[1].startswith("stage") and parts[1][5:].isdigit():
        stage = int(parts[1][5:])
        if stage in TRAIN_NOTEBOOKS and stage not in trained:
            raise Pose3DError(f"sweep of {param} with notebooks {notebooks}: none of them trains Stage {stage}, so "
                              f"every value would reuse the base run's Stage {stage}; add {TRAIN_NOTEBOOKS[stage]} "
                              "(and the training notebooks after it)")


def check_kept_runs(summary_csv: Path, cells: set[tuple[str, str]], replace: bool) -> None:
    """Refuse to write a summary that leaves out runs an earlier summary in the same folder holds,
    unless `replace` (their folders stay on disk either way)."""
    if replace or not summary_csv.is_file():
        return
    earlier = {(r["param_value"], r["seed"]) for r in read_sweep_csv(summary_csv)}
    dropped = sorted(earlier - cells)
    if dropped:
        shown = ", ".join(f"value={v}" + (f",seed={s}" if s else "") for v, s in dropped[:6])
        raise Pose3DError(f"{summary_csv} holds runs this sweep would drop from its summary ({shown}"
                          f"{', ...' if len(dropped) > 6 else ''}): give their values and seeds too (finished "
                          "runs are reused), or --replace (REPLACE=True with make) to summarise only these")


def is_up_to_date(notebook: str, run_dir: Path, cfg, scored_stages: tuple[int, ...]) -> bool:
    """True when a re-run of the sweep may skip `notebook` in this cell: its executed copy is there and
    the stage it trains is finished for `cfg` from the current earlier stage (runs.stage_status), or
    the evaluation it writes scored the current checkpoints with `cfg` (runs.is_evaluated). Any other
    notebook (the demo) always runs."""
    from .notebook_runner import EVAL_NOTEBOOK, STAGE_TRAINED_BY

    return runs.step_done(run_dir / f"{notebook}.ipynb", run_dir, cfg, stage=STAGE_TRAINED_BY.get(notebook),
                          scored=scored_stages if notebook == EVAL_NOTEBOOK else None)


def run_sweep(param: str, values: list, notebooks: list[str], base_run: str | Path, out: str | Path,
              config_file: str | Path, seeds: list[int] | None = None, replace: bool = False,
              base_overrides: list[str] | tuple[str, ...] = (), base_origin: str = "given for every cell") -> Path:
    """Execute `notebooks` once per value (and per seed, when given); returns the summary CSV path.

    `param` is a dotted config key (e.g. train.stage3.geometric_weight); every value is
    checked by loading the config with it, and every notebook (that it exists, and the names
    and types of the parameters it gets) before anything runs (ConfigError naming the key,
    Pose3DError naming the notebook). Every notebook gets config_file, overrides, run_dir and
    figures_dir; the stages no swept notebook trains come from the base run and evaluation
    notebooks that take `stages` score the re-run ones (`stage_plan`). Refused before anything
    runs: the same value twice, `seed` swept with seeds, a `train.stage<N>.*` key whose stage
    no notebook trains, and (unless `replace`) a summary that would drop earlier runs.
    `base_overrides` (`KEY=VALUE`, such as the real-data ones; `base_origin` says where from) come
    first in every cell's overrides; one of the swept key, or of `seed` beside seeds, is refused
    (the cell's own override would replace it without a word).
    """
    from ..config import load_config
    from .notebook_runner import EVAL_NOTEBOOK, execute, notebook_path, prepare

    check_values(param, values, seeds, config_file)  # unknown key or bad value first, then repeats
    base_overrides = check_base_overrides(param, base_overrides, seeds, base_origin)
    for nb in notebooks:
        notebook_path(nb)  # a misspelled notebook is named before the plan below reasons about the others
    notebooks = [project_notebook_name(nb) for nb in notebooks]
    check_notebook_order(notebooks)
    if EVAL_NOTEBOOK not in notebooks:
        raise Pose3DError(f"sweep with notebooks {notebooks}: each cell's numbers come from {EVAL_NOTEBOOK}'s "
                          f"metrics.csv; add {EVAL_NOTEBOOK} (last)")
    reuse_stages, scored_stages = stage_plan(notebooks)
    if reuse_stages != tuple(runs.STAGES):
        check_stage_key(param, notebooks, scored_stages)
    else:  # nothing trained: only what the evaluation reads can change
        if not (param.startswith("eval.") or param in {f"data.{k}" for k in EVALUATION_DATA_KEYS}):
            raise Pose3DError(f"sweep of {param} with notebooks {notebooks} trains nothing: every value would score "
                              "the base run's checkpoints; add the training notebooks it changes, or sweep an eval.* "
                              f"key or what the evaluation reads ({', '.join(f'data.{k}' for k in EVALUATION_DATA_KEYS)})")
        if seeds:
            raise Pose3DError(f"sweep with notebooks {notebooks} trains nothing, so seeds {seeds} would score the "
                              "same checkpoints again; run it without seeds (SWEEP_SEEDS= or --seeds '')")
    out_dir, base = resolve(out), resolve(base_run)

    def notebook_params(run_dir: Path, overrides: list[str]) -> dict:
        # metrics_csv: the cell's metrics.csv even when it scores fewer stages (the sweep reads it)
        return {"config_file": str(config_file), "overrides": overrides, "run_dir": str(run_dir),
                "figures_dir": runs.figures_path(run_dir), "stages": list(scored_stages),
                "metrics_csv": str(runs.eval_csv_path(run_dir))}

    for nb in notebooks:  # a missing notebook or a parameter it does not take: fail before the first run
        prepare(nb, notebook_params(out_dir, [*base_overrides, *(f"{param}={v}" for v in values[:1])]),
                skip_undeclared=SKIPPED_PARAMS)
    check_kept_runs(out_dir / "sweep.csv", {(str(v), "" if s is None else str(s)) for v in values
                                            for s in (seeds or [None])}, replace)
    # the swept key may differ on a reused stage only in an evaluation-only sweep (every stage reused)
    ignored = (*runs.SEED_KEYS, param) if reuse_stages == tuple(runs.STAGES) else runs.SEED_KEYS
    cells = []  # (value, seed, overrides, config) of every cell
    for value in values:
        for seed in seeds or [None]:
            overrides = [*base_overrides, f"{param}={value}"] + ([] if seed is None else [f"seed={seed}"])
            cells.append((value, seed, overrides, load_config(config_file, overrides)))
    for stage in reuse_stages:  # every cell's reused stages, before the first cell trains anything
        check_reused_stage(base, stage, [cfg for *_, cfg in cells], ignored)
    rows = []
    for value, seed, overrides, cfg in cells:
        run_dir = out_dir / (f"value={cell_value(value)}" + ("" if seed is None else f",seed={seed}"))
        link_stages(base, run_dir, reuse_stages)  # every cell's reused stages were checked above
        params = notebook_params(run_dir, overrides)
        for nb in notebooks:
            if is_up_to_date(nb, run_dir, cfg, scored_stages):
                print(f"sweep {run_dir.name}: {nb} up to date", flush=True)
                continue
            print(f"sweep {run_dir.name}: {nb}", flush=True)
            execute(nb, run_dir / f"{nb}.ipynb", params, progress=False, skip_undeclared=SKIPPED_PARAMS)
            if nb == EVAL_NOTEBOOK:
                runs.record_evaluation(run_dir, scored_stages, cfg)
        for r in read_metrics_csv(runs.eval_csv_path(run_dir)):
            if r["stage"] != MEAN_POSE:
                rows.append({"param_value": str(value), "seed": "" if seed is None else str(seed), **r})
    return write_sweep_csv(rows, out_dir / "sweep.csv")


def write_sweep_csv(rows: list[dict], path: Path) -> Path:
    """Write sweep rows (SWEEP_COLUMNS) atomically; values rounded to 4 decimals."""
    def write(f) -> None:
        w = csv.DictWriter(f, fieldnames=SWEEP_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({**r, "value": f"{r['value']:.4f}"})

    return atomic_write(path, write)


def read_sweep_csv(path: str | Path) -> list[dict]:
    """Read a sweep.csv (values as floats); Pose3DError naming the file on a wrong header or value."""
    path = resolve(path)
    if not path.is_file():
        raise Pose3DError(f"sweep file not found: {path}")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != SWEEP_COLUMNS:
            raise Pose3DError(f"{path}: expected columns {','.join(SWEEP_COLUMNS)}, got {reader.fieldnames}")
        rows = list(reader)
    for line, r in enumerate(rows, start=2):
        try:
            r["value"] = float(r["value"])
        except (TypeError, ValueError):  # TypeError: a short row, whose missing columns read as None
            raise Pose3DError(f"{path}: line {line}: column 'value' is {r['value']!r}, expected a number") from None
    return rows


# (split, protocol) pairs of the summary, in column order: the full pipeline and, apart from
# the 2D detector, ground-truth 2D with predicted depth; in the wild and in the lab.
SUMMARY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("wild_test", "p1_mpjpe"), ("wild_test", "p1_mpjpe_gt2d"),
    ("lab_test", "p1_mpjpe"), ("lab_test", "p1_mpjpe_gt2d"),
)
_PROTOCOL_LABEL = {"p1_mpjpe": "P1", "p1_mpjpe_gt2d": "P1, GT 2D"}  # the table's column labels
# The figure's legend labels of the same protocols, in words
_PROTOCOL_LEGEND = {"p1_mpjpe": "Protocol #1, predicted 2D", "p1_mpjpe_gt2d": "Protocol #1, ground-truth 2D"}


def sweep_curve(rows: list[dict], split: str = "wild_test", protocol: str = "p1_mpjpe",
                stage: str = "stage3") -> list[tuple[str, list[float]]]:
    """[(value, [error mm of each seed])] of one stage on one split under one protocol, from sweep.csv rows.

    Values written as numbers are in increasing order, so the figure's lines follow its axis (values given
    as 1,0,0.1 drew a trend over an unsorted axis); other values keep their order of first appearance. A
    sweep without seeds has one error per value.
    """
    curve: dict[str, list[float]] = {}
    for r in rows:
        if r["stage"] == stage and r["split"] == split and r["protocol"] == protocol and r["action"] == "all":
            curve.setdefault(r["param_value"], []).append(r["value"])
    if all(_is_number(value) for value in curve):
        return sorted(curve.items(), key=lambda item: float(item[0]))
    return list(curve.items())


def _cell(errors: list[float]) -> str:
    """'200.0' for one run, 'mean ± sd' for several; runs whose value is not finite are counted apart."""
    mean, sd, n = finite_mean_sd(errors)
    bad = len(errors) - n
    if n == 0:
        return "not finite"
    text = f"{mean:.1f}" if n == 1 else f"{mean:.1f} ± {sd:.1f}"
    return text + (f" ({bad} not finite)" if bad else "")


def sweep_table(rows: list[dict], param: str, columns=SUMMARY_COLUMNS, stage: str = "stage3") -> str:
    """Markdown table: one line per swept value, one column (mm) per (split, protocol) of `columns`.

    With several seeds per value a cell is "mean ± sd" (sample sd) and a last column gives the
    number of seeds. A value without a row for some column shows an empty cell.
    """
    curves = [dict(sweep_curve(rows, split, protocol, stage)) for split, protocol in columns]
    values = list(dict.fromkeys(v for curve in curves for v in curve))  # first-seen order, numbers increasing
    if all(_is_number(v) for v in values):
        values.sort(key=float)
    runs = {v: max(len(curve.get(v, [])) for curve in curves) for v in values}
    seeded = any(n > 1 for n in runs.values())
    head = [f"{split} {_PROTOCOL_LABEL.get(protocol, protocol)} (mm)" for split, protocol in columns]
    head += ["runs"] if seeded else []
    lines = [f"| {param} | " + " | ".join(head) + " |", "|---:|" + "---:|" * len(head)]
    for v in values:
        cells = [_cell(curve[v]) if v in curve else "" for curve in curves]
        cells += [str(runs[v])] if seeded else []
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _is_number(text: str) -> bool:
    """True for a swept value written as a number ('0.01', '1e-4'), whose values have an order."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def plot_sweep(rows: list[dict], param: str, columns=SUMMARY_COLUMNS, stage: str = "stage3"):
    """One panel per split (lab before wild, as the other figures), one line per protocol: error (mm)
    against the swept value (categorical x).

    With several seeds per value: every run as a dot, the mean as a line, the sd as error bars. Values
    that are not all numbers (paths, names) have no order: their means are not joined by lines, and
    long labels are turned. On test splits the title says the figure reports, it is not for choosing a value.
    """
    import matplotlib.pyplot as plt

    splits = sorted(dict.fromkeys(split for split, _ in columns), key=lambda split: not split.startswith("lab"))
    fig, axes = plt.subplots(1, len(splits), figsize=(4.6 * len(splits), 3.4), squeeze=False)
    seeds = 1  # most runs of any value
    for ax, split in zip(axes[0], splits):
        for col_split, protocol in columns:
            if col_split != split:
                continue
            curve = sweep_curve(rows, split, protocol, stage)
            stats = [finite_mean_sd(errors)[:2] for _, errors in curve]  # a value that is not finite is not drawn
            seeds = max([seeds, *(len(errors) for _, errors in curve)])
            x = range(len(curve))
            ordered = all(_is_number(v) for v, _ in curve)
            line = ax.errorbar(x, [m for m, _ in stats], yerr=[sd for _, sd in stats], fmt="o-" if ordered else "o",
                               capsize=3, label=_PROTOCOL_LEGEND.get(protocol, protocol))
            for i, (_, errors) in enumerate(curve):
                if len(errors) > 1:
                    ax.plot([i + 0.08] * len(errors), errors, "o", ms=3.5, mfc="none", color=line[0].get_color(),
                            alpha=0.7)  # beside the error bar, so single runs stay visible
            labels = [v for v, _ in curve]
            turned = max(map(len, labels), default=0) > 10  # long labels (paths) are turned
            ax.set_xticks(x, labels, rotation=30 if turned else 0, ha="right" if turned else "center")
        ax.set_xlabel(param)
        ax.set_ylabel("MPJPE (mm), lower is better")
        ax.set_title(f"{stage}, {split}")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"Sweep of {param}" + (f" (mean ± sd of {seeds} seeds, dots: single runs)" if seeds > 1 else "")
                 + ("\non the test splits: for reporting, not for choosing a value"
                    if all(split.endswith("_test") for split in splits) else ""), fontsize=11)
    fig.tight_layout()
    return fig


def sweep_caption(rows: list[dict], stage: str) -> str:
    """What the sweep table shows, in words: the stage, the statistic, and what the seeds varied."""
    scored = sorted({int(r["stage"][len("stage"):]) for r in rows if r["stage"].startswith("stage")})
    seeded = len({r["seed"] for r in rows}) > 1
    words = f"_Stage {stage[len('stage'):]} of each run, Protocol #1 in mm"
    if seeded:
        words += ("; mean ± sample sd over the runs of a value (one per seed). The seeds vary only the stages "
                  f"the sweep trained and scored (Stage{'s' if len(scored) > 1 else ''} {', '.join(map(str, scored))}); "
                  "the stages before them "
                  "are the base run's, shared by every run")
    return words + "._"


def summarize(summary_csv: str | Path, param: str) -> str:
    """Write sweep.md (table) and sweep.png (figure) beside `summary_csv`; return the table.

    They show the last stage the sweep scored: Stage 3, or Stage 2 for a sweep that stops there."""
    summary = resolve(summary_csv)
    rows = read_sweep_csv(summary)
    stage = max((r["stage"] for r in rows if r["stage"].startswith("stage")), default="stage3")
    table = sweep_table(rows, param, stage=stage) + "\n\n" + sweep_caption(rows, stage)
    atomic_write_text(summary.parent / "sweep.md", table + "\n")  # a Ctrl-C never leaves half a committed record
    from ..plots.viz import write_png

    write_png(plot_sweep(rows, param, stage=stage), summary.parent / "sweep.png")
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", action=CommandLinePath, default="configs/smoke.yaml",
                        help="YAML config of the base run (default configs/smoke.yaml; `make sweep` passes configs/<SWEEP_PROFILE>.yaml)")
    parser.add_argument("--param", default="train.stage3.geometric_weight",
                        help="dotted config key to sweep (default train.stage3.geometric_weight)")
    parser.add_argument("--values", default="0,0.01", help="comma-separated values (YAML scalars; default 0,0.01)")
    parser.add_argument("--notebooks", nargs="+", default=["04_train_geometry", "06_eval_mpjpe"],
                        help="notebooks (in notebooks/, without .ipynb) to run per value, in order")
    parser.add_argument("--base-run", action=CommandLinePath, default=None, help="run folder holding the stages not re-run (default runs/<profile>)")
    parser.add_argument("--seeds", default="", help="comma-separated config seeds: run every value once per seed "
                        "(default: once, with the config's seed)")
    parser.add_argument("--out", action=CommandLinePath, default="runs/sweep",
                        help="sweep root (default runs/sweep); results go to <out>/<profile>/<param>/ "
                             "(<out>/<profile>-real/<param>/ with --real-data)")
    parser.add_argument("--replace", action="store_true",
                        help="let the summary leave out runs of an earlier sweep in the same folder (default: refused)")
    parser.add_argument("--real-data", action="store_true",
                        help="every cell reads the converted real downloads of the config's data.raw_*_dir (the "
                             "overrides of `real-data-overrides`, as make reproduce REAL_DATA=True); base run "
                             "runs/<profile>-real by default, results in <out>/<profile>-real/<param>/")


def run(args: argparse.Namespace) -> int:
    from ..config import load_config

    cfg = load_config(args.config)
    base_overrides = []
    if args.real_data:
        from ..data.convert.real import check_converted, real_data_overrides

        if args.param in runs.DOWNLOAD_KEYS:
            raise Pose3DError(f"sweep of {args.param} with --real-data: every cell would read the sets converted from "
                              "the config's downloads; name each download in a config of its own instead")
        try:
            base_overrides = real_data_overrides(cfg.data, cfg.profile)
        except DataError as e:  # name the file to edit
            raise DataError(f"{args.config}: {e}") from None
        check_converted(load_config(args.config, base_overrides).data,
                        f"convert it first: `make sweep PROFILE={cfg.profile} REAL_DATA=True ...` converts the "
                        f"downloads before the sweep, as `make reproduce PROFILE={cfg.profile} REAL_DATA=True` does")
    base = args.base_run or runs.default_run_dir(cfg.profile, real_data=args.real_data)
    out = runs.sweep_dir(args.out, runs.run_name(cfg.profile, args.real_data), args.param)
    summary = run_sweep(args.param, parse_values(args.values), args.notebooks, base, out, args.config,
                        seeds=parse_seeds(args.seeds) or None, replace=args.replace, base_overrides=base_overrides,
                        base_origin="that --real-data gives every cell")
    print(summarize(summary, args.param))
    print(f"sweep summary: {summary}, {summary.parent / 'sweep.md'}, {summary.parent / 'sweep.png'}")
    return 0

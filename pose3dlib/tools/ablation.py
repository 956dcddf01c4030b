"""The paper's ablation with seeds: 3D data only, plus 2D-only images, plus the geometric loss.

    python -m pose3dlib ablation --profile cpu --seeds-bc 0,1,2,3,4 --seeds-a 0,1,2
    python -m pose3dlib ablation ... --set train.stage1.epochs=1      # a shorter schedule, the same for every arm
    python -m pose3dlib ablation --profile cpu --summarize           # table, figure, claims from ablation.csv only

Three arms, each trained through notebooks 02-04 (papermill, like `make sweep`) and scored
on Stage 3 by notebook 06; config seed k is the config's `seed` key:

    a  3D only: no 2D-only (MPII-format) image in any stage (train.stageN.mix_2d=false). Stage 1
       learns heatmaps from the lab images, every epoch keeps its length with lab samples in
       place of the 2D-only ones, Stage 3 runs as long as in the other arms (its geometric
       weight is 0: without 2D-only samples the loss has nothing to act on).
    b  3D + 2D-only images, no geometric loss: Stage 3 with train.stage3.geometric_weight=0.
    c  3D + 2D-only images + geometric loss: the profile's config (the paper's recipe).

b and c share Stages 1-2 per seed: c/seed=k/ trains all three stages, b/seed=k/ trains only
Stage 3, starting from c/seed=k/stage2/last.pt.

Layout of the output folder (default runs/ablation/<profile>/):

    <arm>/seed=<k>/config.yaml      the arm's full config (profile + schedule + arm + seed)
    <arm>/seed=<k>/NN_*.ipynb       executed notebooks (training curves, Stage-3 evaluation)
    <arm>/seed=<k>/stage<N>/        checkpoints (train.py's layout)
    <arm>/seed=<k>/metrics.csv      notebook 06 on Stage 3; evaluated.json: what it scored
    ablation.csv                    arm,seed,split,protocol,value (Stage 3, action 'all')
    ablation.md, ablation.png       mean ± sd per arm, Welch t-tests (and paired ones for the arms that share
                                    Stages 1-2 per seed), the paper's claims in words

A rerun is resumable: a stage whose checkpoint is finished for its config and starting
checkpoint (`train.stage_status`) is skipped, an interrupted one continues, a stale one is
trained again, and a run is re-evaluated only when its Stage-3 checkpoint or config changed.
"""
from __future__ import annotations

import argparse
import csv
import math
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..config import Config, EvalConfig, dump_config, load_config, override_keys
from ..engine.atomic_io import atomic_write, atomic_write_text
from ..engine.errors import Pose3DError
from ..engine.paths import CommandLinePath, resolve
from ..engine.runs import STAGES, checkpoint_path, eval_csv_path, figures_path, record_evaluation
from ..evaluation.evaluate import is_fraction, pckh_protocol, protocol_label
from .notebook_runner import EVAL_NOTEBOOK, TRAIN_NOTEBOOKS
from .seed_stats import finite_mean_sd

ARMS: dict[str, str] = {
    "a": "3D only",
    "b": "3D + 2D-only images",
    "c": "3D + 2D-only images + geometric loss",
}
# (first arm, second arm) of each two-sided Welch t-test; the difference is second - first.
COMPARISONS: tuple[tuple[str, str], ...] = (("a", "b"), ("b", "c"))
PAIRED: tuple[str, str] = ("b", "c")  # arms that share Stages 1-2 per seed, so their seeds pair
ALPHA = 0.05  # significance level of the tests
CONFIDENCE = 0.95  # confidence level of the difference's interval
CSV_COLUMNS = ("arm", "seed", "split", "protocol", "value")
# (split, protocol) of the table and figure, labels as in metrics.csv (pose3dlib.evaluation.evaluate)
SUMMARY_METRICS: tuple[tuple[str, str], ...] = (
    ("lab_test", "p1_mpjpe"), ("lab_test", "p2_pa_mpjpe"), ("lab_test", "p1_mpjpe_gt2d"),
    ("wild_test", "p1_mpjpe"), ("wild_test", "p2_pa_mpjpe"), ("wild_test", "p1_mpjpe_gt2d"),
    ("mpii_val", pckh_protocol(EvalConfig().pckh_threshold)),  # the evaluator's label, 'pckh@0.5'
)
EVALUATED_STAGES = (3,)  # the stage each run's evaluation scores


# ----------------------------------------------------------------------------- arms

def arm_overrides(arm: str) -> list[str]:
    """Config overrides that turn the profile's config (arm c, the paper's recipe) into `arm`."""
    if arm == "a":
        return [f"train.stage{s}.mix_2d=false" for s in (1, 2, 3)] + ["train.stage3.geometric_weight=0"]
    if arm == "b":
        return ["train.stage3.geometric_weight=0"]
    if arm == "c":
        return []
    raise Pose3DError(f"unknown ablation arm {arm!r}; the arms are {', '.join(ARMS)}")


def arm_keys() -> set[str]:
    """The config keys the arms set (`arm_overrides`)."""
    return {override_keys(o)[0] for arm in ARMS for o in arm_overrides(arm)}


def check_schedule(profile: str, schedule: list[str]) -> None:
    """Pose3DError for an every-arm override (--set) of the seed, or one with which two arms would train
    the same recipe (arm c's geometric weight set to 0 is arm b): each arm's own overrides come after the
    schedule, so a key the arms set can still be given another value that keeps them apart."""
    for item in schedule:
        if "seed" in (k.strip() for k in override_keys(item)):
            raise Pose3DError(f"--set {item}: the ablation's seeds come from --seeds-bc and --seeds-a "
                              "(ABLATION_SEEDS_BC, ABLATION_SEEDS_A), not from the config")
    configs = {arm: arm_config(profile, arm, 0, schedule) for arm in ARMS}
    alike = [(x, y) for i, x in enumerate(ARMS) for y in list(ARMS)[i + 1:] if configs[x] == configs[y]]
    if alike:
        named = [o for o in schedule if {k.strip() for k in override_keys(o)} & arm_keys()] or schedule
        pairs = " and ".join(f"({x}) and ({y})" for x, y in alike)
        raise Pose3DError(f"--set {', '.join(named)}: with it arms {pairs} would train the same recipe (the arms "
                          f"differ in {', '.join(sorted(arm_keys()))} only); change the profile's config (arm c) "
                          "instead, the other arms follow from it")


def arm_config(profile: str, arm: str, seed: int, schedule: Iterable[str] = ()) -> Config:
    """configs/<profile>.yaml + the schedule overrides (every arm) + the arm's overrides + seed."""
    return load_config(f"configs/{profile}.yaml", [*schedule, *arm_overrides(arm), f"seed={seed}"])


def run_folder(out: str | Path, arm: str, seed: int) -> Path:
    """`<out>/<arm>/seed=<seed>` (as given: project-relative stays relative)."""
    return Path(out) / arm / f"seed={seed}"


def arm_seeds(seeds_bc: Iterable[int], seeds_a: Iterable[int]) -> list[tuple[str, int]]:
    """(arm, seed) of every run, seed by seed: c before b (b starts from c's Stage 2), then a."""
    seeds_bc, seeds_a = list(seeds_bc), list(seeds_a)
    order = []
    for seed in sorted(set(seeds_bc) | set(seeds_a)):
        order += [("c", seed), ("b", seed)] if seed in seeds_bc else []
        order += [("a", seed)] if seed in seeds_a else []
    return order


@dataclass(frozen=True)
class Step:
    """One notebook run of the ablation: a training stage, or (stage None) the Stage-3 evaluation."""

    arm: str
    seed: int
    run_dir: Path  # the arm/seed run folder
    notebook: str
    stage: int | None  # 1..3 for training notebooks, None for the evaluation
    init_from: Path | None = None  # the starting checkpoint when not <run_dir>/stage<N-1>/last.pt

    def __str__(self) -> str:
        return f"arm {self.arm} seed {self.seed}: {self.notebook}"


def plan(out: str | Path, seeds_bc: Iterable[int], seeds_a: Iterable[int]) -> list[Step]:
    """Every notebook run of the ablation, in order; each training run is followed by its evaluation."""
    steps = []
    for arm, seed in arm_seeds(seeds_bc, seeds_a):
        run_dir = run_folder(out, arm, seed)
        if arm == "b":  # Stage 3 only, from the Stage 2 that arm c trained with the same seed
            init = run_folder(out, "c", seed) / "stage2" / "last.pt"
            steps.append(Step(arm, seed, run_dir, TRAIN_NOTEBOOKS[3], 3, init))
        else:
            steps += [Step(arm, seed, run_dir, nb, stage) for stage, nb in TRAIN_NOTEBOOKS.items()]
        steps.append(Step(arm, seed, run_dir, EVAL_NOTEBOOK, None))
    return steps


# ----------------------------------------------------------------------------- running

def is_done(step: Step, cfg: Config) -> bool:
    """True when `step` need not run (`runs.step_done`): its executed notebook is there and its stage is
    finished for `cfg` and its starting checkpoint, or its evaluation scored the current Stage-3
    checkpoint with `cfg`."""
    from ..engine.runs import step_done

    run_dir = resolve(step.run_dir)
    return step_done(run_dir / f"{step.notebook}.ipynb", run_dir, cfg, stage=step.stage, init_from=step.init_from,
                     scored=EVALUATED_STAGES if step.stage is None else None)


def notebook_params(step: Step, profile: str, config_file: Path) -> dict:
    """The papermill parameters of a step's notebook: the arm's config file, its run folder and,
    for arm b's Stage 3, the Stage-2 checkpoint it starts from; the evaluation scores Stage 3."""
    params: dict = {"run_dir": str(step.run_dir), "figures_dir": figures_path(step.run_dir),
                    "config_file": str(config_file)}
    if step.init_from is not None:
        params["init_from"] = str(step.init_from)
    if step.stage is None:  # Stage 3 only, into the run's metrics.csv, which the ablation reads
        params["stages"] = list(EVALUATED_STAGES)
        params["metrics_csv"] = str(eval_csv_path(step.run_dir))
    return params


def run_notebook(step: Step, profile: str, config_file: Path) -> None:
    """Execute the step's notebook into its run folder (papermill, pose3dlib.tools.notebook_runner)."""
    from .notebook_runner import execute

    execute(step.notebook, step.run_dir / f"{step.notebook}.ipynb", notebook_params(step, profile, config_file),
            progress=False)


def ensure_data(cfg: Config) -> None:
    """Generate the synthetic data the config names when missing, with the config's own seed.

    Done here, before any arm runs, so that an arm's seed never becomes the data's seed
    (notebook 02 would generate missing data with the seed of the run that first needs it).
    """
    from ..synthetic.generator import ensure_synthetic_data

    ensure_synthetic_data(cfg)


def check_kept_seeds(csv_path: Path, seeds_bc: Iterable[int], seeds_a: Iterable[int], replace: bool) -> None:
    """Refuse to rewrite an ablation.csv without arm/seed runs it holds, unless `replace`."""
    if replace or not csv_path.is_file():
        return
    wanted = set(arm_seeds(seeds_bc, seeds_a))
    dropped = sorted({(r["arm"], r["seed"]) for r in read_ablation_csv(csv_path)} - wanted)
    if dropped:
        shown = ", ".join(f"({a}) seed {s}" for a, s in dropped)
        raise Pose3DError(f"{csv_path} holds runs these seeds would drop from it: {shown}; give them too "
                          "(finished runs are reused), or --replace (REPLACE=True with make) to write only these")


def check_same_recipe(configs: dict[tuple[str, int], tuple[Config, Path]], replace: bool) -> None:
    """Refuse, unless `replace`, an ablation whose arms' recipe differs from the one their run
    folders hold and trained (another --set schedule, or `make ablation ABLATION_SCHEDULE=` for the
    full one): every arm would be trained again and the record in the folder replaced."""
    from ..config import config_to_dict
    from ..engine.runs import training_differences

    if replace:
        return
    for (arm, seed), (cfg, path) in configs.items():
        trained = any(checkpoint_path(path.parent, s).is_file() for s in STAGES)
        if trained and path.is_file() and (diffs := training_differences(config_to_dict(load_config(path)), cfg)):
            raise Pose3DError(f"{path} holds another recipe than this ablation's ({'; '.join(diffs[:4])}"
                              f"{'; ...' if len(diffs) > 4 else ''}): arm ({arm}) seed {seed} and the others would be "
                              "trained again and the record in this folder replaced; use the schedule it was made "
                              "with, another --out, or --replace (REPLACE=True with make) to train them here again")


def run_ablation(profile: str, seeds_bc: list[int], seeds_a: list[int], out: str | Path | None = None,
                 schedule: Iterable[str] = (), executor: Callable[[Step, str, Path], None] = run_notebook,
                 log: Callable[[str], None] = lambda line: print(line, flush=True), replace: bool = False) -> Path:
    """Train and evaluate what is not up to date, then write `<out>/ablation.csv`; returns its path.

    Args:
        profile: configs/<profile>.yaml, arm c's config.
        seeds_bc, seeds_a: config seeds of arms b and c (shared Stages 1-2) and of arm a.
        out: output folder (default runs/ablation/<profile>).
        schedule: config overrides applied to every arm (a shorter schedule, other data folders).
        executor: runs one step, given (step, profile, config file); default: its notebook.
        log: receives one progress line per step.
        replace: let ablation.csv leave out arm/seed runs it held before (else refused, `check_kept_seeds`),
            and train arms again whose folders hold another recipe (else refused, `check_same_recipe`).
    """
    if not seeds_bc and not seeds_a:
        raise Pose3DError("the ablation needs seeds: give --seeds-bc and/or --seeds-a (e.g. 0,1,2)")
    schedule = list(schedule)
    check_schedule(profile, schedule)
    out = Path(out or f"runs/ablation/{profile}")
    check_kept_seeds(resolve(out) / "ablation.csv", seeds_bc, seeds_a, replace)
    configs: dict[tuple[str, int], tuple[Config, Path]] = {}
    for arm, seed in arm_seeds(seeds_bc, seeds_a):
        configs[(arm, seed)] = (arm_config(profile, arm, seed, schedule),
                                resolve(run_folder(out, arm, seed)) / "config.yaml")
    check_same_recipe(configs, replace)  # before any data is generated or written
    ensure_data(load_config(f"configs/{profile}.yaml", schedule))
    for cfg, path in configs.values():
        if not path.is_file() or load_config(path) != cfg:
            dump_config(cfg, path)
    steps = plan(out, seeds_bc, seeds_a)
    for i, step in enumerate(steps, start=1):
        cfg, config_file = configs[(step.arm, step.seed)]
        head = f"ablation [{i}/{len(steps)}] {step}"
        if is_done(step, cfg):
            log(f"{head}: up to date")
            continue
        log(f"{head} ...")
        start = time.monotonic()
        executor(step, profile, config_file)
        if step.stage is None:
            record_evaluation(step.run_dir, EVALUATED_STAGES, cfg)
        log(f"{head}: done in {time.monotonic() - start:.0f} s")
    rows = collect_rows(out, seeds_bc, seeds_a)
    return write_ablation_csv(rows, resolve(out) / "ablation.csv")


# ----------------------------------------------------------------------------- the CSV

def collect_rows(out: str | Path, seeds_bc: Iterable[int], seeds_a: Iterable[int]) -> list[dict]:
    """Stage 3's 'all'-action rows of every arm/seed metrics.csv, as ablation.csv rows."""
    from ..evaluation.evaluate import read_metrics_csv

    rows = []
    for arm, seed in arm_seeds(seeds_bc, seeds_a):
        for r in read_metrics_csv(resolve(run_folder(out, arm, seed)) / "metrics.csv"):
            if r["stage"] == "stage3" and r["action"] == "all":
                rows.append({"arm": arm, "seed": seed, "split": r["split"], "protocol": r["protocol"], "value": r["value"]})
    return sorted(rows, key=lambda r: (r["arm"], r["seed"]))


def write_ablation_csv(rows: Iterable[dict], path: str | Path) -> Path:
    """Write ablation rows (CSV_COLUMNS) atomically; values with 4 decimals."""
    def write(f) -> None:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({**r, "value": f"{r['value']:.4f}"})

    return atomic_write(resolve(path), write)


def read_ablation_csv(path: str | Path) -> list[dict]:
    """Read ablation.csv (seed int, value float); Pose3DError naming the file, line and column."""
    path = resolve(path)
    if not path.is_file():
        raise Pose3DError(f"ablation results not found: {path}; run `make ablation` first")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
            raise Pose3DError(f"{path}: expected columns {','.join(CSV_COLUMNS)}, got {reader.fieldnames}")
        rows = list(reader)
    for line, r in enumerate(rows, start=2):
        if r["arm"] not in ARMS:
            raise Pose3DError(f"{path}: line {line}: column 'arm' is {r['arm']!r}, expected one of {', '.join(ARMS)}")
        for key, kind in (("seed", int), ("value", float)):
            try:
                r[key] = kind(r[key])
            except (TypeError, ValueError):
                raise Pose3DError(f"{path}: line {line}: column {key!r} is {r[key]!r}, expected a number") from None
    return rows


def arm_values(rows: list[dict], arm: str, split: str, protocol: str) -> list[float]:
    """The values of one arm for one (split, protocol), in seed order."""
    return [r["value"] for r in sorted(rows, key=lambda r: r["seed"])
            if r["arm"] == arm and r["split"] == split and r["protocol"] == protocol]


# ----------------------------------------------------------------------------- statistics

@dataclass(frozen=True)
class WelchTest:
    """Two-sided Welch t-test of `second` against `first`; difference = mean(second) - mean(first)."""

    first: str
    second: str
    n1: int
    n2: int
    difference: float
    t: float
    df: float  # Welch-Satterthwaite degrees of freedom
    p: float
    ci_low: float  # CONFIDENCE interval of the difference
    ci_high: float

    @property
    def significant(self) -> bool:
        return self.p < ALPHA


def welch_test(first: list[float], second: list[float], first_arm: str = "", second_arm: str = "",
               confidence: float = CONFIDENCE) -> WelchTest | None:
    """scipy.stats.ttest_ind(second, first, equal_var=False) with its interval; None when either
    group has fewer than two values, a value is not finite (`evaluate` writes nan for a diverged run) or
    both groups have no spread (the test is then undefined)."""
    if (len(first) < 2 or len(second) < 2 or not all(math.isfinite(v) for v in (*first, *second))
            or (statistics.stdev(first) == 0 and statistics.stdev(second) == 0)):
        return None
    from scipy import stats

    res = stats.ttest_ind(second, first, equal_var=False)
    ci = res.confidence_interval(confidence)
    return WelchTest(first_arm, second_arm, len(first), len(second), statistics.fmean(second) - statistics.fmean(first),
                     float(res.statistic), float(res.df), float(res.pvalue), float(ci.low), float(ci.high))


@dataclass(frozen=True)
class PairedTest:
    """Two-sided paired t-test of `second` against `first` over the seeds both arms ran; difference =
    the mean over those seeds of (second - first)."""

    first: str
    second: str
    n: int  # seeds in both arms
    difference: float
    t: float
    df: float
    p: float
    ci_low: float
    ci_high: float

    @property
    def significant(self) -> bool:
        return self.p < ALPHA


def paired_test(rows: list[dict], split: str, protocol: str, first: str, second: str,
                confidence: float = CONFIDENCE) -> PairedTest | None:
    """scipy.stats.ttest_rel over the seeds both arms ran (arms PAIRED share Stages 1-2 per seed); None
    with fewer than two such seeds, a value that is not finite or differences without spread (the test is
    then undefined)."""
    by_seed = {arm: {r["seed"]: r["value"] for r in rows if r["arm"] == arm and r["split"] == split
                     and r["protocol"] == protocol} for arm in (first, second)}
    seeds = sorted(set(by_seed[first]) & set(by_seed[second]))
    v1, v2 = [by_seed[first][s] for s in seeds], [by_seed[second][s] for s in seeds]
    differences = [b - a for a, b in zip(v1, v2)]
    if len(seeds) < 2 or not all(math.isfinite(d) for d in differences) or statistics.stdev(differences) == 0:
        return None
    from scipy import stats

    res = stats.ttest_rel(v2, v1)
    ci = res.confidence_interval(confidence)
    return PairedTest(first, second, len(seeds), statistics.fmean(differences),
                      float(res.statistic), float(res.df), float(res.pvalue), float(ci.low), float(ci.high))


def compare(rows: list[dict], split: str, protocol: str, first: str, second: str) -> WelchTest | None:
    """Welch test of arm `second` against arm `first` on one (split, protocol)."""
    return welch_test(arm_values(rows, first, split, protocol), arm_values(rows, second, split, protocol), first, second)


# ----------------------------------------------------------------------------- table, figure, words

def _shown(protocol: str, value: float) -> float:
    """Values as displayed: PCKh in %, errors in mm."""
    return 100 * value if is_fraction(protocol) else value


def metric_label(split: str, protocol: str) -> str:
    """'wild_test Protocol #1 MPJPE (mm)', 'mpii_val PCKh@0.5 (%)'."""
    if is_fraction(protocol):
        return f"{split} {protocol.replace('pckh', 'PCKh')} (%)"
    return f"{split} {protocol_label(protocol)}"


def arm_label(arm: str) -> str:
    return f"({arm}) {ARMS[arm]}"


def _mean_sd_words(values: list[float], protocol: str) -> str:
    """'171.2 ± 3.1 (5 seeds)'; seeds whose value is not finite are named apart and left out of both."""
    mean, sd, n = finite_mean_sd([_shown(protocol, v) for v in values])
    bad = len(values) - n
    note = f"; {bad} more not finite" if bad else ""
    if n == 0:
        return f"not finite ({bad} seed{'s' if bad > 1 else ''})"
    if n == 1:
        return f"{mean:.1f} (1 seed{note})"
    return f"{mean:.1f} ± {sd:.1f} ({n} seeds{note})"


def _have_both(rows: list[dict], split: str, protocol: str, first: str, second: str) -> bool:
    """Whether both arms have results on (split, protocol)."""
    return all(arm_values(rows, arm, split, protocol) for arm in (first, second))


def _test_cells(test: WelchTest | PairedTest | None, protocol: str, have_both: bool,
                undefined: str = "n/a: needs two seeds per arm, finite and with some spread") -> list[str]:
    """The table cells of one test; without one, `undefined` when both arms have results."""
    if test is None:
        return ["", "", "", "", undefined if have_both else "no results"]
    s = 100.0 if is_fraction(protocol) else 1.0
    verdict = "significant (p < 0.05)" if test.significant else "not significant at this scale"
    return [f"{s * test.difference:+.1f} ({s * test.ci_low:+.1f} to {s * test.ci_high:+.1f})", f"{test.t:.2f}",
            f"{test.df:.1f}", f"{test.p:.3g}", verdict]


def ablation_table(rows: list[dict], metrics: Iterable[tuple[str, str]] = SUMMARY_METRICS) -> str:
    """Markdown: mean ± sd per arm for each metric, then the Welch tests of COMPARISONS."""
    metrics = list(metrics)
    lines = ["| metric | " + " | ".join(arm_label(a) for a in ARMS) + " |", "|---|" + "---:|" * len(ARMS)]
    for split, protocol in metrics:
        cells = [_mean_sd_words(values, protocol) if (values := arm_values(rows, a, split, protocol)) else ""
                 for a in ARMS]
        lines.append(f"| {metric_label(split, protocol)} | " + " | ".join(cells) + " |")
    lines += ["", f"Two-sided Welch t-tests; difference = second arm − first arm with its {CONFIDENCE:.0%} confidence "
              "interval (mm; PCKh in points).", "",
              "| metric | test | difference (95% CI) | t | df | p | |", "|---|---|---:|---:|---:|---:|---|"]
    for split, protocol in metrics:
        for first, second in COMPARISONS:
            cells = _test_cells(compare(rows, split, protocol, first, second), protocol,
                                _have_both(rows, split, protocol, first, second))
            lines.append(f"| {metric_label(split, protocol)} | ({second}) − ({first}) | " + " | ".join(cells) + " |")
    first, second = PAIRED
    lines += ["", f"Arms ({first}) and ({second}) share Stages 1-2 per seed, so their seeds pair: two-sided paired "
              f"t-tests over the seeds both ran; difference = mean of ({second}) − ({first}) per seed with its "
              f"{CONFIDENCE:.0%} confidence interval.", "",
              "| metric | seeds | difference (95% CI) | t | df | p | |", "|---|---:|---:|---:|---:|---:|---|"]
    for split, protocol in metrics:
        test = paired_test(rows, split, protocol, first, second)
        seeds = str(test.n) if test else ""
        cells = _test_cells(test, protocol, _have_both(rows, split, protocol, first, second),
                            undefined="n/a: needs two shared seeds, finite, whose differences spread")
        lines.append(f"| {metric_label(split, protocol)} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _panel_tests(rows: list[dict], split: str, protocol: str) -> list[str]:
    """A panel title's lines: each comparison's Welch p and, for arms that pair by seed (PAIRED), the
    paired test's p too (the one the claim's verdict follows); 'n/a' where a test is undefined."""
    lines = []
    for first, second in COMPARISONS:
        welch = compare(rows, split, protocol, first, second)
        words = [f"Welch p={welch.p:.2g}" if welch else "Welch n/a"]
        if (first, second) == PAIRED:
            paired = paired_test(rows, split, protocol, first, second)
            words.append(f"paired p={paired.p:.2g}" if paired else "paired n/a")
        lines.append(f"({second})−({first}): {', '.join(words)}")
    return lines


def plot_ablation(rows: list[dict], metrics: Iterable[tuple[str, str]] = SUMMARY_METRICS, run_name: str = ""):
    """One panel per metric: each arm's mean ± sd (error bar) and every seed as a dot; the two-sided
    tests' p-values (Welch; paired too for PAIRED) in the titles. `run_name` (e.g. the output folder's
    name, the profile) goes into the overall title."""
    import matplotlib.pyplot as plt

    metrics = list(metrics)
    splits_3d = list(dict.fromkeys(split for split, protocol in metrics if not is_fraction(protocol)))
    pck = [m for m in metrics if is_fraction(m[1])]
    ncols = max([0, *(sum(1 for s, p in metrics if s == split and not is_fraction(p)) for split in splits_3d)]) + bool(pck)
    nrows = max(len(splits_3d), len(pck), 1)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.2 * nrows), squeeze=False)
    # one row per 3D split (its protocols side by side), PCKh in the last column
    where = {m: (splits_3d.index(m[0]), [x for x in metrics if x[0] == m[0]].index(m)) for m in metrics if m not in pck}
    where.update({m: (j, ncols - 1) for j, m in enumerate(pck)})
    arms = list(ARMS)
    for split, protocol in metrics:
        ax = axes[where[(split, protocol)]]
        for x, arm in enumerate(arms):
            values = [_shown(protocol, v) for v in arm_values(rows, arm, split, protocol)]
            if not values:
                continue
            mean, sd, _ = finite_mean_sd(values)  # a value that is not finite is not drawn
            line = ax.errorbar([x], [mean], yerr=[sd], fmt="s", ms=7, capsize=5)
            offsets = [0.12 + 0.04 * (i - (len(values) - 1) / 2) for i in range(len(values))]
            ax.plot([x + o for o in offsets], values, "o", ms=4, mfc="none", color=line[0].get_color())
        ax.set_title("\n".join([metric_label(split, protocol), *_panel_tests(rows, split, protocol)]), fontsize=8)
        ax.set_xticks(range(len(arms)), [f"({a})" for a in arms])
        ax.set_xlim(-0.5, len(arms) - 0.5)
        ax.grid(alpha=0.3)
    for r, c in {(r, c) for r in range(nrows) for c in range(ncols)} - set(where.values()):
        axes[r, c].axis("off")
    seeds = {a: len({r["seed"] for r in rows if r["arm"] == a}) for a in arms}
    first, second = PAIRED
    fig.suptitle(f"Ablation{f' ({run_name})' if run_name else ''}, Stage 3: "
                 + "; ".join(f"{arm_label(a)}, {seeds[a]} seeds" for a in arms)
                 + "\nsquares: mean ± sd; circles: single seeds; p: two-sided t-tests, Welch's between arms and, "
                 f"for ({second})−({first}) (Stages 1-2 shared per seed), paired by seed", fontsize=9)
    fig.tight_layout()
    return fig


def _effect(rows: list[dict], split: str, protocol: str, first: str, second: str) -> tuple[str, WelchTest | None]:
    """A sentence on how (second) changed a metric against (first), with the test; ('', None) without data."""
    v1, v2 = arm_values(rows, first, split, protocol), arm_values(rows, second, split, protocol)
    if not v1 or not v2:
        return "", None
    unit = "points" if is_fraction(protocol) else "mm"
    name = f"{protocol_label(protocol).replace(' (mm)', '')} on {split}"
    text = f"{name} went from {_mean_sd_words(v1, protocol)} to {_mean_sd_words(v2, protocol)} {unit}"
    test = compare(rows, split, protocol, first, second)
    if test is None:
        return text + "; too few seeds with finite values and spread for a test.", None
    return f"{text}, a change of {_test_words(test, protocol, 'Welch', f'{test.df:.1f}')}.", test


def _test_words(test: WelchTest | PairedTest, protocol: str, kind: str, df: str) -> str:
    """'<difference> <unit> (95% CI a to b; <kind> t = .., df = <df>, p = ..[, not significant at this scale])'."""
    s, unit = (100.0, "points") if is_fraction(protocol) else (1.0, "mm")
    return (f"{s * test.difference:+.1f} {unit} (95% CI {s * test.ci_low:+.1f} to {s * test.ci_high:+.1f}; "
            f"{kind} t = {test.t:.2f}, df = {df}, p = {test.p:.2g}"
            + (")" if test.significant else ", not significant at this scale)"))


def _paired_words(rows: list[dict], split: str, protocol: str, first: str, second: str) -> tuple[str, PairedTest | None]:
    """A sentence with the paired test of arms that share Stages 1-2 per seed; ('', None) without one."""
    test = paired_test(rows, split, protocol, first, second)
    if test is None:
        return "", None
    return (f"Paired by seed (the two arms share Stages 1-2 per seed; {test.n} seeds): "
            f"{_test_words(test, protocol, 'paired', f'{test.df:.0f}')}."), test


def _claim(rows: list[dict], claim: str, first: str, second: str) -> str:
    """One paragraph: the claim, the wild_test Protocol #1 effect and its verdict, then context. For arms
    that pair by seed (PAIRED) the paired test is given too and decides the verdict: it is the test their
    design calls for."""
    head = f"**{claim}** ({arm_label(second)} against {arm_label(first)})."
    main, test = _effect(rows, "wild_test", "p1_mpjpe", first, second)
    if not main:
        return f"{head} No results of both arms on wild_test yet."
    if (first, second) == PAIRED:
        paired, paired_result = _paired_words(rows, "wild_test", "p1_mpjpe", first, second)
        if paired_result is not None:
            test, main = paired_result, f"{main} {paired}"
        elif test is not None:
            main += " Too few shared seeds for a paired test: the Welch test decides."
    if test is None:
        verdict = "These runs cannot test the claim."
    elif not test.significant:
        verdict = ("The difference is not significant at this scale, so these runs neither confirm nor refute "
                   "the claim.")
    elif test.difference < 0:
        verdict = "At this scale the runs support the claim."
    else:
        verdict = "At this scale the runs contradict the claim: the error in the wild went up."
    context = [_effect(rows, split, protocol, first, second)[0]
               for split, protocol in (("wild_test", "p2_pa_mpjpe"), ("lab_test", "p1_mpjpe"))]
    return " ".join([head, main, verdict, *(c for c in context if c)])


def claims_summary(rows: list[dict]) -> str:
    """The paper's two claims in plain words, read from ablation rows (read_ablation_csv).

    1. Mixing 2D-only in-the-wild images into 3D training transfers 3D pose to the wild:
       (b) against (a) on wild_test.
    2. The geometric loss improves it further: (c) against (b) on wild_test.
    Each says whether the effect is significant (p < 0.05): two-sided Welch t-test, and for claim 2,
    whose arms share Stages 1-2 per seed, the paired t-test over those seeds.
    """
    return "\n\n".join([
        _claim(rows, "Mixing 2D-only in-the-wild images into 3D training transfers 3D pose to the wild", "a", "b"),
        _claim(rows, "The geometric loss improves 3D pose in the wild further", "b", "c"),
    ])


def summarize(csv_path: str | Path) -> str:
    """Write ablation.md (tables and the claims in words) and ablation.png beside `csv_path`; return the markdown."""
    path = resolve(csv_path)
    rows = read_ablation_csv(path)
    seeds = "; ".join(f"({a}) {', '.join(str(s) for s in sorted({r['seed'] for r in rows if r['arm'] == a})) or 'none'}"
                      for a in ARMS)
    text = "\n".join([
        "# The paper's ablation, Stage 3", "",
        f"_Generated from `{path.name}` by `python -m pose3dlib ablation`. Config seeds: {seeds}. "
        "Mean ± sample sd over seeds; errors in mm (lower is better), PCKh in % (higher is better)._", "",
        ablation_table(rows), "", "## The paper's two claims", "", claims_summary(rows), "",
    ])
    atomic_write_text(path.parent / "ablation.md", text)
    from ..plots.viz import write_png

    write_png(plot_ablation(rows, run_name=path.parent.name), path.parent / "ablation.png")
    return text


# ----------------------------------------------------------------------------- CLI

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="cpu", help="configs/<profile>.yaml: arm c's config (default cpu)")
    parser.add_argument("--seeds-bc", default="0,1,2,3,4", help="config seeds of arms b and c (default 0,1,2,3,4)")
    parser.add_argument("--seeds-a", default="0,1,2", help="config seeds of arm a (default 0,1,2)")
    parser.add_argument("--set", dest="schedule", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every arm, e.g. a shorter schedule: "
                             "--set train.stage1.epochs=1 (repeatable)")
    parser.add_argument("--out", action=CommandLinePath, default=None, help="output folder (default runs/ablation/<profile>)")
    parser.add_argument("--replace", action="store_true",
                        help="let ablation.csv leave out arm/seed runs an earlier run wrote into it (default: refused)")
    parser.add_argument("--summarize", action="store_true",
                        help="only rewrite ablation.md and ablation.png from the output folder's ablation.csv")


def run(args: argparse.Namespace) -> int:
    from .sweep import parse_seeds

    out = Path(args.out or f"runs/ablation/{args.profile}")
    if args.summarize:
        csv_path = resolve(out) / "ablation.csv"
    else:
        start = time.monotonic()
        csv_path = run_ablation(args.profile, parse_seeds(args.seeds_bc, "--seeds-bc"),
                                parse_seeds(args.seeds_a, "--seeds-a"), out, args.schedule, replace=args.replace)
        print(f"ablation: trained and evaluated in {(time.monotonic() - start) / 60:.1f} min")
    print(summarize(csv_path))
    print(f"ablation: {csv_path}, {csv_path.parent / 'ablation.md'}, {csv_path.parent / 'ablation.png'}")
    return 0

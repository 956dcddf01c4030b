"""`make bench`: run every benchmark, write bench.json and the generated block of docs/benchmarks.md.

    python -m pose3dlib bench                  # full run (6-7 min on a 2-core Intel Xeon with AMX-BF16)
    python -m pose3dlib bench --quick          # fewer repeats and smaller sizes, for development
    BENCH_QUICK=1 make bench                   # the same through make

Through `python -m pose3dlib` the process runs with the memory allocator training runs with
(mimalloc; engine/allocator.py), so the training rows time what `make reproduce` trains with;
`python -m pose3dlib.tools.bench` runs with the C library's (the `mimalloc` row says which).
CPU metrics always; the `_cuda` metrics only when torch sees a CUDA device (never needed
by CI). Timings depend on other load on the machine: check `uptime` first.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch._dynamo.exc

from ...config import load_config
from ...engine import allocator
from ...engine.errors import ConfigError
from ...engine.paths import CommandLinePath, OptionalCommandLinePath, resolve
from ...engine.progress import progress_bar
from ...engine.train import SpeedSwitches
from . import fresh_clones, measure
from .flops import TRAIN_FLOPS_PER_FORWARD, model_forward_flops
from .measure import QUICK_PLAN, BenchPlan
from .report import check_document, machine_description, render_block, update_document, write_json
from .threads import OMP_WAIT_ENV, PASSIVE, wait_policy
from .timing import CPU

QUICK_ENV = "BENCH_QUICK"  # BENCH_QUICK=1 selects QUICK_PLAN
RECORD_JSON, RECORD_DOC = "runs/bench/bench.json", "docs/benchmarks.md"  # the committed record
FRESH_CLONES_FIGURE = "figures/fresh_clone_timings.png"  # `bench --fresh-clones`: every timed `make reproduce`
QUICK_JSON = "runs/bench/quick/bench.json"  # where a quick run writes instead (git-ignored)
PAPER_SCHEDULE_SAMPLES = 3.1e6  # three stages of the paper schedule (about 3.1 million samples)


def cpu_tasks(plan: BenchPlan, work_dir: Path, m: dict[str, float]) -> list[tuple[str, Callable[[], None]]]:
    """The CPU measurements, in order, each filling its keys of `m` (later ones read earlier ones)."""
    paper, cpu = load_config("configs/paper.yaml"), load_config("configs/cpu.yaml")
    timing = {"warmup": plan.warmup, "repeats": plan.repeats}
    switch = {"warmup": 1, "repeats": plan.switch_repeats}

    def peak() -> None:
        m["threads"] = float(plan.threads)
        m["matmul_peak_gflops"] = measure.matmul_peak_gflops(plan.matmul_size, **timing)
        m["conv_peak_gflops"] = measure.conv_peak_gflops(paper.train.batch_size, **timing)

    def train(cfg, prefix: str) -> Callable[[], None]:
        def task() -> None:
            flop = model_forward_flops(cfg.model, cfg.data.input_size)  # per image
            m[f"{prefix}_forward_gflop"] = flop / 1e9
            img_s = measure.train_images_per_s(cfg, **timing).images_per_s
            m[f"train_{prefix}_img_s"] = img_s
            m[f"train_{prefix}_gflops"] = img_s * TRAIN_FLOPS_PER_FORWARD * flop / 1e9
            m[f"train_{prefix}_peak_ratio"] = m[f"train_{prefix}_gflops"] / m["matmul_peak_gflops"]
            if prefix == "paper":
                m["train_paper_conv_ratio"] = m["train_paper_gflops"] / m["conv_peak_gflops"]
        return task

    def train_stage1() -> None:  # the step Stage 1 trains with: heatmap loss only, no backward through the depth head
        img_s = measure.train_images_per_s(cpu, stage=1, **timing).images_per_s
        m["train_cpu_stage1_img_s"] = img_s
        m["train_cpu_stage1_over_stage3"] = img_s / m["train_cpu_img_s"]

    def loss() -> None:
        m["geometric_loss_speedup"] = measure.geometric_loss_speedup(plan.loss_batch, **timing)

    def infer() -> None:
        m["infer_paper_ms"] = 1e3 / measure.infer_images_per_s(paper, 1, **timing).images_per_s
        m["infer_paper_img_s"] = measure.infer_images_per_s(paper, plan.infer_batch, **timing).images_per_s
        m["infer_cpu_img_s"] = measure.infer_images_per_s(cpu, cpu.eval.batch_size, **timing).images_per_s

    def data() -> None:
        m["data_samples_s"] = measure.data_samples_per_s(measure.bench_data(cpu, work_dir / "data" / "cpu"),
                                                         plan.data_samples)
        m["data_over_train_ratio"] = m["data_samples_s"] / m["train_cpu_img_s"]
        # 256 px: input to the GPU plan
        m["data_paper_samples_s"] = measure.data_samples_per_s(measure.bench_data(paper, work_dir / "data" / "paper"),
                                                               plan.data_samples)

    def rss() -> None:
        m["peak_rss_mb"] = measure.train_in_subprocess("paper", threads=plan.threads)["peak_rss_mb"]

    def allocators() -> None:
        if allocator.library() is None:  # nothing to compare: both children would run the C library's
            print("bench: mimalloc is not installed here; the allocator rows are left out", file=sys.stderr)
            return
        for name, key in (("system", "train_cpu_system_malloc_img_s"), ("mimalloc", "train_cpu_mimalloc_img_s")):
            m[key] = measure.train_in_subprocess("cpu", threads=plan.threads, repeats=plan.switch_repeats,
                                                 env={allocator.SWITCH_ENV: name})["images_per_s"]

    def omp_passive() -> None:
        m["train_cpu_omp_passive_img_s"] = measure.train_in_subprocess(
            "cpu", threads=plan.threads, repeats=plan.switch_repeats, env={OMP_WAIT_ENV: PASSIVE})["images_per_s"]

    def switch_task(prefix: str, cfg, switches: SpeedSwitches, threads: int | None = None) -> Callable[[], None]:
        def task() -> None:
            torch.set_num_threads(threads or plan.threads)
            try:
                with measure.fresh_compile_cache():  # compile: cold, what a first run pays
                    timed = measure.train_images_per_s(cfg, switches=switches, **switch)
            except torch._dynamo.exc.BackendCompilerFailed as e:  # InductorError is one; only compile raises it
                # torch.compile is an optional switch whose code generation can fail on some CPUs
                # (an inductor error, not ours): that is a result to record, not a reason to lose the run
                m[f"{prefix}_failed"] = 1.0
                first_line = (str(e).strip().splitlines() or [""])[0]
                print(f"bench: {prefix}: torch.compile failed on this machine ({type(e).__name__}: {first_line}); "
                      f"recorded as {prefix}_failed = 1", file=sys.stderr)
                return
            finally:
                torch.set_num_threads(plan.threads)
            m[f"{prefix}_img_s"] = timed.images_per_s
            if switches.compile:
                m[f"{prefix}_overhead_s"] = max(timed.first_call_s - cfg.train.batch_size / timed.images_per_s, 0.0)
        return task

    def infer_bf16_cl() -> None:
        bf16_cl = SpeedSwitches(channels_last=True, bf16=True)
        m["infer_paper_bf16_cl_ms"] = 1e3 / measure.infer_images_per_s(paper, 1, switches=bf16_cl, **timing).images_per_s

    def infer_nchw() -> None:
        m["infer_paper_nchw_ms"] = 1e3 / measure.infer_images_per_s(paper, 1, switches=SpeedSwitches(),
                                                                    **switch).images_per_s
        m["infer_cpu_nchw_img_s"] = measure.infer_images_per_s(cpu, cpu.eval.batch_size, switches=SpeedSwitches(),
                                                               **switch).images_per_s

    tasks = [("matmul peak", peak), ("train paper", train(paper, "paper")), ("train cpu", train(cpu, "cpu")),
             ("train cpu stage 1", train_stage1), ("geometric loss", loss), ("inference", infer), ("data pipeline", data), ("peak RSS", rss)]
    if plan.switches:
        # The main rows time training's own switches (channels_last on; bf16 autocast on a CPU with native bf16
        # when the profile says auto, float32 elsewhere); each row
        # below changes one thing: back to NCHW, bf16 autocast on top, compile on top, 1 thread.
        nchw = SpeedSwitches()

        def on_top(cfg, **change) -> SpeedSwitches:
            return dataclasses.replace(SpeedSwitches.for_training(cfg.train, CPU), **change)

        tasks += [
            ("paper NCHW", switch_task("train_paper_nchw", paper, nchw)),
            ("paper bf16", switch_task("train_paper_bf16", paper, on_top(paper, bf16=True))),
            ("paper inference bf16+channels_last", infer_bf16_cl),
            ("inference NCHW", infer_nchw),
            ("cpu NCHW", switch_task("train_cpu_nchw", cpu, nchw)),
            ("cpu bf16", switch_task("train_cpu_bf16", cpu, on_top(cpu, bf16=True))),
            ("cpu compile", switch_task("train_cpu_compile", cpu, on_top(cpu, compile=True))),
            ("cpu 1 thread", switch_task("train_cpu_1thread", cpu, on_top(cpu), threads=1)),
            ("cpu OpenMP passive wait", omp_passive),
            ("cpu allocators", allocators),
        ]
    return tasks


def cuda_tasks(plan: BenchPlan, work_dir: Path, m: dict[str, float]) -> list[tuple[str, Callable[[], None]]]:
    """The `_cuda` measurements: bf16 matmul peak, compute-only and end-to-end paper training, loader alone."""
    paper = load_config("configs/paper.yaml")
    device = torch.device("cuda")
    workers = min(paper.data.num_workers, os.cpu_count() or 1)
    flop = model_forward_flops(paper.model, paper.data.input_size)
    switches = SpeedSwitches.for_training(paper.train, device)  # bf16 + channels_last (configs/paper.yaml)

    def peak() -> None:
        torch.backends.cudnn.benchmark = True  # autotuned convolutions (train.deterministic=false does the same)
        m["matmul_peak_gflops_cuda"] = measure.matmul_peak_gflops(
            plan.cuda_matmul_size, warmup=plan.warmup, repeats=plan.repeats, device=device, dtype=torch.bfloat16)

    def compute() -> None:
        m["train_paper_compute_img_s_cuda"] = measure.train_images_per_s(
            paper, warmup=plan.warmup + 3, repeats=plan.repeats, device=device, batch_size=plan.cuda_batch,
            switches=switches).images_per_s

    def end_to_end() -> None:
        cfg = measure.bench_data(paper, work_dir / "data" / "paper")
        m["data_loader_samples_s_cuda"] = measure.loader_samples_per_s(cfg, plan.cuda_batch, plan.cuda_steps, workers)
        img_s = measure.cuda_end_to_end_images_per_s(cfg, plan.cuda_batch, plan.cuda_steps, warmup=plan.warmup + 3,
                                                     device=device, switches=switches, num_workers=workers)
        m["train_paper_img_s_cuda"] = img_s
        m["train_paper_gflops_cuda"] = img_s * TRAIN_FLOPS_PER_FORWARD * flop / 1e9
        m["train_paper_peak_ratio_cuda"] = m["train_paper_gflops_cuda"] / m["matmul_peak_gflops_cuda"]
        m["schedule_minutes_cuda"] = PAPER_SCHEDULE_SAMPLES / img_s / 60.0

    return [("cuda matmul peak", peak), ("cuda compute", compute), ("cuda end to end", end_to_end)]


@contextmanager
def plan_threads(plan: BenchPlan) -> Iterator[None]:
    """torch runs on plan.threads threads inside (ConfigError unless >= 1); the previous count after."""
    if plan.threads < 1:
        raise ConfigError(f"bench threads must be >= 1, got {plan.threads}")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(plan.threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous_threads)


def run_benchmarks(plan: BenchPlan, work_dir: Path, cuda: bool | None = None) -> dict[str, float]:
    """Run the CPU benchmarks (and the CUDA ones when `cuda`, default: when available); return the metrics."""
    cuda = torch.cuda.is_available() if cuda is None else cuda
    with plan_threads(plan):
        metrics: dict[str, float] = {"load_avg_1min": os.getloadavg()[0],
                                     "omp_wait_passive": float(wait_policy().upper() == "PASSIVE"),
                                     "mimalloc": float(allocator.loaded() == "mimalloc")}
        tasks = cpu_tasks(plan, work_dir, metrics) + (cuda_tasks(plan, work_dir, metrics) if cuda else [])
        with progress_bar(tasks, desc="bench", unit="task") as bar:
            for name, task in bar:
                bar.set_postfix_str(name)
                task()
    return metrics


def host_speed_line(plan: BenchPlan) -> str:
    """One line giving `matmul_peak_gflops` as `make bench` measures it, on plan.threads threads.

    The 2-core hosts' speed has varied more than 3 x (102-352 GFLOP/s; docs/fresh-clone-timings.md),
    so a wall-clock time means little without it; the memory allocator
    (engine/allocator.py) changes training's speed too, so the line names it.
    """
    with plan_threads(plan):
        gflops = measure.matmul_peak_gflops(plan.matmul_size, warmup=plan.warmup, repeats=plan.repeats)
    return (f"host speed: {gflops:.0f} GFLOP/s (matmul_peak_gflops of make bench: fp32 "
            f"{plan.matmul_size} x {plan.matmul_size} matmul, torch threads {plan.threads}); "
            f"memory allocator: {allocator.loaded()}")


def fresh_clones_command(doc: Path, figure: Path) -> int:
    """`bench --fresh-clones`: print the tally of the timed fresh clones, any disagreement between the
    page's summary and its rows (then return 1), and write the figure."""
    from ...plots.timings import plot_fresh_clones
    from ...plots.viz import write_png

    text = fresh_clones.read(doc)
    runs = fresh_clones.parse_runs(text, str(doc))
    summary = fresh_clones.parse_summary(text, str(doc))
    for row in summary:
        count, minutes, training, met = fresh_clones.summarise(runs, row.clones)
        print(f"{row.host}: {count} clones, {minutes[0]:g}-{minutes[1]:g} min (training {training[0]:g}-"
              f"{training[1]:g}), {met} within {fresh_clones.TARGET_MINUTES:g}")
    problems = fresh_clones.table_disagreements(runs, summary)  # the tables as parsed above
    for line in problems:
        print(f"bench: {doc}: {line}", file=sys.stderr)
    write_png(plot_fresh_clones(runs, summary), figure)
    print(f"bench: wrote {figure}")
    return 1 if problems else 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help=f"fewer repeats and smaller sizes (development; also ${QUICK_ENV}=1)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: 2)")
    parser.add_argument("--out", action=CommandLinePath, default=RECORD_JSON,
                        help=f"metrics JSON (default: {RECORD_JSON}; a quick run writes {QUICK_JSON} instead)")
    parser.add_argument("--doc", action=OptionalCommandLinePath, default=RECORD_DOC,
                        help=f"markdown whose generated block is rewritten (default: {RECORD_DOC}, never by a quick run); "
                             "'' to skip")
    parser.add_argument("--no-switches", action="store_true", help="skip the channels_last/bf16/compile/thread runs")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--host-speed", action="store_true",
                        help="only print this host's matmul_peak_gflops (seconds; writes nothing): "
                             "how fast the host is for a timing such as `make reproduce`'s")
    only.add_argument("--fresh-clones", action="store_true",
                        help=f"time nothing: check that the summary of {fresh_clones.TIMINGS_DOC} agrees with its table "
                             f"of timed fresh clones (exit 1 where not) and draw them to --figure")
    parser.add_argument("--figure", action=CommandLinePath, default=None,
                        help=f"with --fresh-clones: the PNG to write (default: {FRESH_CLONES_FIGURE})")


def run(args: argparse.Namespace) -> int:
    quick = args.quick or os.environ.get(QUICK_ENV, "") not in ("", "0")
    plan = QUICK_PLAN if quick else BenchPlan()
    overrides = {}
    if args.threads is not None:
        overrides["threads"] = args.threads
    if args.no_switches:
        overrides["switches"] = False
    if overrides:
        from dataclasses import replace
        plan = replace(plan, **overrides)
    if args.host_speed:
        print(host_speed_line(plan))
        return 0
    if args.figure is not None and not args.fresh_clones:
        raise ConfigError("--figure goes with --fresh-clones (the figure of the timed fresh clones)")
    if args.fresh_clones:
        return fresh_clones_command(resolve(fresh_clones.TIMINGS_DOC), resolve(args.figure or FRESH_CLONES_FIGURE))
    out, doc = resolve(args.out), args.doc
    if quick and os.path.realpath(out) == os.path.realpath(resolve(RECORD_JSON)):  # never replaces the record
        out = resolve(QUICK_JSON)
        print(f"bench: quick plan: writing {out}, not the committed {RECORD_JSON}")
    if quick and doc and os.path.realpath(resolve(doc)) == os.path.realpath(resolve(RECORD_DOC)):
        doc = ""
        print(f"bench: quick plan: {RECORD_DOC} left as it is")
    if doc:
        check_document(resolve(doc))  # a document without the markers is named now, not after the run
    metrics = run_benchmarks(plan, out.parent)
    write_json(metrics, out)
    print(f"bench: wrote {out}")
    if doc:
        command = "make bench" + (" (BENCH_QUICK=1: quick plan, not for the record)" if quick else "")
        update_document(resolve(doc), render_block(metrics, machine_description(), command=command))
        print(f"bench: updated {resolve(doc)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m pose3dlib.tools.bench` (one-line errors, as pose3dlib.tools.cli)."""
    from ...engine.errors import Pose3DError

    parser = argparse.ArgumentParser(prog="python -m pose3dlib.tools.bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except Pose3DError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

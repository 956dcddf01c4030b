"""`make gpu-check`: one run that measures and exercises on a GPU what only a GPU can show.

    PYTHONPATH=. python3 -m pose3dlib.tools.bench.gpu_check                  # on the GPU machine, <= 8 min
    PYTHONPATH=. python3 -m pose3dlib.tools.bench.gpu_check --dry            # the same code on the CPU, tiny sizes
    python -m pose3dlib.tools.bench.gpu_check --from-json runs/gpu-check/gpu_check.json --doc docs/benchmarks.md

Writes runs/gpu-check/ (a dry run: runs/gpu-check/dry/): gpu_check.json (after every step, so a
killed run keeps what it measured), gpu_check.md (the block for docs/benchmarks.md) and gpu_check.log (output of
the subprocesses). Data, checkpoints and run folders go to --work-dir (a temp folder).
Every step is guarded: its error is recorded and the others still run. The project need
not be installed: it runs from the checkout with PYTHONPATH=. and imports only torch,
numpy, h5py, OpenCV, PyYAML and tqdm (and pytest for the test step).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from ...config import Config, load_config
from ...engine.atomic_io import atomic_write_text, marked_block
from ...engine.device import opencv_threads
from ...engine.errors import Pose3DError
from ...engine.paths import PROJECT_ROOT, CommandLinePath, OptionalCommandLinePath, resolve
from ...engine.runlog import read_metrics
from ...engine.runs import checkpoint_path
from ...engine.train import KILL_AT_STEP_ENV, SpeedSwitches
from . import measure
from .flops import TRAIN_FLOPS_PER_FORWARD, model_forward_flops
from .gpu_report import (
    GPU_BEGIN_MARK,
    GPU_END_MARK,
    eager_train_rate,
    recipe_minutes,
    recipe_samples,
    render_block,
    scaled_lr,
    splice_block,
)

DRY_ENV = "GPU_CHECK_DRY"  # GPU_CHECK_DRY=1 selects DRY_PLAN
PAPER_CONFIG = "configs/paper.yaml"
LOG_TAIL_CHARS = 20_000  # of each subprocess's output kept in gpu_check.log
LOSS_WINDOW = 5  # logged training losses averaged for train_loss_first / train_loss_last
# Steps the trainer runs per step of stage 2's schedule: + 1/10 for stage 1, + 1/16 redone after the kill.
FIT_WORK_PER_STEP = 1 + 1 / 10 + 1 / 16
# The trainer's stage 2 runs slower than the bench step (the loader's hand-off, copies, checkpoints):
# on an H200, a whole epoch at 241 against 378 img/s at batch 32 (0.64) in the first check, about
# 0.8 in the second. Sized at 0.6.
FIT_TRAINER_SPEED = 0.6
# start, workers and the last checkpoint of one trainer process (three in the fit step): about 20 s
# on the H200 (the killed stage 2 of the second check: 53.5 s for 280 steps, 34 s of them steps)
FIT_PROCESS_S = 20.0
FALLBACK_RATE = 10.0  # img/s assumed for sizing the trainer run when no rate was measured


@dataclass(frozen=True)
class GpuCheckPlan:
    """Sizes and time budgets of one check; `FULL_PLAN` for a GPU, `DRY_PLAN` for a CPU run in CI time."""

    dry: bool = False
    device: str = "cuda"
    overrides: tuple[str, ...] = ()  # config overrides on configs/paper.yaml (the dry run's tiny network)
    warmup: int = 3
    repeats: int = 5
    matmul_size: int = 8192  # side of the bf16 matrices of the peak
    train_batches: tuple[int, ...] = (6, 32, 128)
    compile_batches: tuple[int, ...] = (128, 32, 6)  # most telling first: each cold compile takes a while
    infer_batches: tuple[int, int] = (1, 128)
    data_rows: dict[str, int] = field(default_factory=lambda: {
        "mpii_train": 2048, "mpii_val": 256, "h36m_train": 2048, "h36m_test": 256, "wild_test": 16})
    data_batch: int = 128
    data_steps: int = 24  # batches timed per worker count
    worker_counts: tuple[int, ...] = (8, 0)  # 0: one per CPU core
    jpeg_repeats: int = 40
    fit_batch: int = 32  # also the train_fed step's batch
    fed_steps: int = 40  # train_fed: timed steps of the step fed by the training loader, after fed_warmup
    fed_warmup: int = 5
    fit_seconds: float = 125.0  # the fit step's time, trainer processes' start included, the run is sized for
    fit_max_steps: int = 20_000
    fit_val_samples: int = 64
    fit_workers: int | None = None  # DataLoader workers of the trainer run; None: the data step's best count
    ddp_batch: int = 32  # per process
    ddp_steps: int = 8
    ddp_processes: int = 0  # 0: one per GPU (dry: 2 CPU processes)
    ddp_workers: int = 4  # DataLoader workers per process
    # pytest targets (files or file::test), run one at a time: the whole of test_train.py took over 82 s on an
    # H200 machine's CPU, so only its trainer-step test (its CUDA case: the bf16 + channels_last step) and the
    # plain case of test_resume.py's kill -9 test (on CUDA there: the resumed weights bit for bit); its three
    # cases (nine trainer processes) ran past the step's 68 s left on an H100 machine (47 s on the 2-core CPU)
    test_files: tuple[str, ...] = ("tests/test_cuda.py",
                                   "tests/test_train.py::test_trainer_steps_lower_the_loss_of_a_fixed_batch",
                                   "tests/test_resume.py::test_kill_9_then_resume_equals_an_uninterrupted_run[plain]")
    budgets_s: dict[str, float] = field(default_factory=lambda: {
        "environment": 10, "peak": 10, "train_step": 45, "inference": 15, "data": 30, "train_fed": 25, "fit": 150,
        "ddp": 50, "tests": 90, "train_step_compile": 165})
    # torch.compile's first call is one uninterruptible cold compile (the batch-128 row took 152 s on an
    # H200, 144 of them compiling): the step starts only with this much of the total budget left, else it
    # is skipped, not overrun
    compile_min_s: float = 160.0
    total_s: float = 475.0  # + interpreter start: make gpu-check stays within 8 minutes


FULL_PLAN = GpuCheckPlan()
DRY_PLAN = GpuCheckPlan(
    dry=True, device="cpu",
    overrides=("model.num_stacks=1", "model.num_modules=1", "model.num_features=32", "model.num_reg_modules=1",
               "data.input_size=64", "data.heatmap_size=16", "data.sigma=1.0", "synthetic.image_size=64",
               "train.device=cpu", "train.num_threads=1"),
    warmup=1, repeats=1, matmul_size=256, train_batches=(2, 4, 8), compile_batches=(), infer_batches=(1, 8),
    data_rows={"mpii_train": 48, "mpii_val": 8, "h36m_train": 48, "h36m_test": 8, "wild_test": 8},
    data_batch=8, data_steps=3, worker_counts=(1,), jpeg_repeats=5, fit_batch=4, fed_steps=3, fed_warmup=1,
    fit_seconds=6.0, fit_max_steps=16, fit_workers=0,
    fit_val_samples=8, ddp_batch=2, ddp_steps=4, ddp_processes=2, ddp_workers=0, test_files=("tests/test_cuda.py",),
    budgets_s={"environment": 10, "peak": 10, "train_step": 15, "inference": 10, "data": 20, "train_fed": 10, "fit": 40,
               "ddp": 40, "tests": 30, "train_step_compile": 5},
    total_s=180.0,
)
REQUIRED_FIELDS = ("torch_version", "device", "train_paper_img_s", "data_img_s", "train_loss_first", "train_loss_last",
                   "ddp_ok")
# the tests before the compile step: a cold compile cannot be cut short, so it goes last
STEPS = ("environment", "peak", "train_step", "inference", "data", "train_fed", "fit", "ddp", "tests",
         "train_step_compile")


class StepSkipped(Exception):
    """A step, or part of one, did not run (no GPU for it, budget spent): recorded, not an error."""


class GpuCheck:
    """One run: the steps fill `self.r` (saved as gpu_check.json after each step)."""

    def __init__(self, plan: GpuCheckPlan, out_dir: Path, work_dir: Path, command: str) -> None:
        self.plan, self.out_dir, self.work_dir = plan, out_dir, work_dir
        self.device = torch.device(plan.device)
        self.cfg: Config = load_config(PAPER_CONFIG, list(plan.overrides))
        if self.cfg.train.num_threads > 0:  # the dry run's one thread: no OpenMP waits on a busy machine
            torch.set_num_threads(self.cfg.train.num_threads)
        self.paper: Config = load_config(PAPER_CONFIG)
        self.flop = model_forward_flops(self.cfg.model, self.cfg.data.input_size)  # per image forward
        self.start = time.perf_counter()
        self.data_cfg: Config | None = None  # cfg pointed at the generated data
        self.r: dict[str, Any] = {
            "dry": plan.dry, "command": command, "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "input_size": self.cfg.data.input_size, "forward_gflop": self.flop / 1e9,
            "recipe_samples": recipe_samples(self.paper), "steps": {}, "errors": {},
            **dict.fromkeys(REQUIRED_FIELDS),  # null until a step measures them
        }
        self.log_path = out_dir / "gpu_check.log"

    # ------------------------------------------------------------------ plumbing
    def log(self, title: str, text: str) -> None:
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(f"\n===== {title}\n{text[-LOG_TAIL_CHARS:]}\n")

    def save(self) -> None:
        self.r["wall_s"] = time.perf_counter() - self.start
        atomic_write_text(self.out_dir / "gpu_check.json", json.dumps(self.r, indent=1, sort_keys=True) + "\n")

    def remaining_s(self) -> float:
        return self.plan.total_s - (time.perf_counter() - self.start)

    def run_step(self, name: str, fn: Callable[[float], None]) -> None:
        """Run `fn(deadline)` guarded: its error or skip reason and its time land in the JSON."""
        budget = self.plan.budgets_s[name]
        entry: dict[str, Any] = {"budget_s": budget if math.isfinite(budget) else None}
        t0 = time.perf_counter()
        print(f"gpu-check: {name} (budget {budget:.0f} s, {self.remaining_s():.0f} s left)", flush=True)
        try:
            if self.remaining_s() <= 0:
                raise StepSkipped("the total time budget is spent")
            fn(min(t0 + budget, t0 + self.remaining_s()))
            entry["status"] = "ok"
        except StepSkipped as e:
            entry["status"], entry["reason"] = "skipped", str(e)
        except Exception as e:  # every failure is recorded and the next step runs
            entry["status"] = "error"
            self.r["errors"][name] = f"{type(e).__name__}: {' '.join(str(e).split())[:600]}"
            self.log(f"{name}: traceback", traceback.format_exc())
        entry["seconds"] = round(time.perf_counter() - t0, 2)
        if entry["seconds"] > budget:
            entry["over_budget"] = True
        self.r["steps"][name] = entry
        print(f"gpu-check: {name} {entry['status']} in {entry['seconds']:.1f} s"
              + (f": {self.r['errors'][name]}" if name in self.r["errors"] else ""), flush=True)
        self.save()

    def child_env(self, **extra: str) -> dict[str, str]:
        """Environment of the subprocesses: the checkout on PYTHONPATH (nothing is installed)."""
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(PROJECT_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]), PYTHONUNBUFFERED="1")
        if self.plan.dry:
            env["OMP_NUM_THREADS"] = "1"
        env.update(extra)
        return env

    def run_child(self, title: str, cmd: list[str], timeout_s: float, **env: str) -> subprocess.CompletedProcess:
        """Run `cmd` from the project root with a timeout; its output goes to the log."""
        if timeout_s <= 1:
            raise StepSkipped(f"no time left in the step's budget for {title}")
        try:
            proc = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False,
                                  timeout=timeout_s if math.isfinite(timeout_s) else None, env=self.child_env(**env))
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"") + (e.stderr or b"")
            self.log(f"{title} (timed out after {timeout_s:.0f} s)", out.decode(errors="replace")
                     if isinstance(out, bytes) else str(out))
            raise Pose3DError(f"{title} timed out after {timeout_s:.0f} s") from None
        self.log(f"{title} (exit {proc.returncode}): {' '.join(cmd)}", proc.stdout + proc.stderr)
        return proc

    def train_cmd(self, stage: int, run_dir: Path, overrides: list[str], *extra: str,
                  processes: int = 0) -> list[str]:
        """`python -m pose3dlib train` (under torchrun when `processes`) with the plan's and these overrides."""
        launcher = [sys.executable]
        if processes:
            launcher += ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
        cmd = [*launcher, "-m", "pose3dlib", "train", "--config", PAPER_CONFIG, "--stage", str(stage),
               "--run-dir", str(run_dir), *extra]
        for o in [*self.plan.overrides, *self.data_overrides(), *overrides]:
            cmd += ["--set", o]
        return cmd

    def bench_data_cfg(self) -> Config:
        """The config reading the data step's synthetic set; StepSkipped when that step did not write one."""
        if self.data_cfg is None:
            raise StepSkipped("needs the data step's synthetic set")
        return self.data_cfg

    def data_overrides(self) -> list[str]:
        from ...synthetic.generator import synthetic_overrides

        data_cfg = self.bench_data_cfg()
        d = data_cfg.data
        return [f"data.h36m_dir={d.h36m_dir}", f"data.mpii_dir={d.mpii_dir}", f"data.wild_test_dir={d.wild_test_dir}",
                *synthetic_overrides(data_cfg.synthetic)]  # its sizes, which training checks

    # ------------------------------------------------------------------ steps
    def environment(self, deadline: float) -> None:
        import cv2
        import numpy as np

        r = self.r
        r.update(torch_version=torch.__version__, cuda_version=torch.version.cuda, python_version=platform.python_version(),
                 numpy_version=np.__version__, opencv_version=cv2.__version__, cpu_count=os.cpu_count(),
                 cuda_available=torch.cuda.is_available(), gpu_count=torch.cuda.device_count())
        if self.device.type == "cuda":
            if not torch.cuda.is_available():
                raise Pose3DError("torch sees no CUDA device; run the dry mode (GPU_CHECK_DRY=1) on a machine without one")
            props = torch.cuda.get_device_properties(self.device)
            r.update(device=f"{props.name} ({props.total_memory / 2**30:.0f} GiB) x {torch.cuda.device_count()}",
                     cudnn_version=torch.backends.cudnn.version(), capability=".".join(map(str, (props.major, props.minor))))
            try:
                smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], check=False,
                                     capture_output=True, text=True, timeout=20)
                r["driver_version"] = smi.stdout.strip().splitlines()[0] if smi.returncode == 0 else None
            except (OSError, subprocess.SubprocessError, IndexError):
                r["driver_version"] = None
        else:
            r["device"] = f"CPU ({platform.processor() or platform.machine()}), dry run"
        print(f"gpu-check: torch {r['torch_version']}, CUDA {r['cuda_version']}, driver {r.get('driver_version')}, "
              f"Python {r['python_version']}, device {r['device']}", flush=True)

    def peak(self, deadline: float) -> None:
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # autotuned convolutions, as train.deterministic=false
        gflops = measure.matmul_peak_gflops(self.plan.matmul_size, warmup=self.plan.warmup, repeats=self.plan.repeats,
                                            device=self.device, dtype=torch.bfloat16)
        self.r["matmul_bf16_tflops"] = gflops / 1e3

    def _time_rows(self, deadline: float, compile_: bool, batches: tuple[int, ...]) -> None:
        rows = self.r.setdefault("train_rows", [])
        peak = self.r.get("matmul_bf16_tflops")
        last_row_s = 0.0
        for batch in batches:
            if time.perf_counter() + last_row_s > deadline:  # the next row would likely overrun the budget
                self.r.setdefault("skipped_rows", []).append(f"batch {batch}, compile {compile_}: budget spent")
                continue
            row_start = time.perf_counter()
            switches = SpeedSwitches(channels_last=True, bf16=True, compile=compile_)
            with measure.fresh_compile_cache() if compile_ else nullcontext():
                timed = measure.train_images_per_s(self.cfg, warmup=self.plan.warmup, repeats=self.plan.repeats,
                                                   device=self.device, batch_size=batch, switches=switches)
            tflops = timed.images_per_s * TRAIN_FLOPS_PER_FORWARD * self.flop / 1e12
            rows.append({"batch": batch, "compile": compile_, "img_s": timed.images_per_s, "tflops": tflops,
                         "peak_fraction": tflops / peak if peak else None, "first_call_s": timed.first_call_s})
            self._best_rate()
            self.save()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            last_row_s = time.perf_counter() - row_start

    def _best_rate(self) -> None:
        """train_paper_img_s: the best row at batch >= 32 (or the largest batch of a dry run)."""
        rows = self.r.get("train_rows", [])
        floor = 32 if not self.plan.dry else max(self.plan.train_batches)
        big = [row for row in rows if row["batch"] >= floor] or rows
        best = max(big, key=lambda row: row["img_s"])
        self.r.update(train_paper_img_s=best["img_s"], train_paper_batch=best["batch"],
                      train_paper_compile=best["compile"], train_paper_peak_fraction=best["peak_fraction"])
        self._projection()

    def _projection(self) -> None:
        rates = [self.r.get("train_paper_img_s"), self.r.get("data_img_s")]
        rates = [x for x in rates if x]
        if rates:
            self.r["recipe_minutes"] = recipe_minutes(self.r["recipe_samples"], min(rates))
        if self.r.get("data_img_s") and self.r.get("train_paper_img_s"):
            self.r["data_over_train_ratio"] = self.r["data_img_s"] / self.r["train_paper_img_s"]

    def train_step(self, deadline: float) -> None:
        self._time_rows(deadline, False, self.plan.train_batches)

    def train_step_compile(self, deadline: float) -> None:
        if not self.plan.compile_batches:
            raise StepSkipped("dry run: inductor compiles take minutes on a CPU (make bench times compile there)")
        left = deadline - time.perf_counter()
        if left < self.plan.compile_min_s:
            raise StepSkipped(f"{left:.0f} s left, a cold compile needs about {self.plan.compile_min_s:.0f}")
        self._time_rows(deadline, True, self.plan.compile_batches)

    def inference(self, deadline: float) -> None:
        small, big = self.plan.infer_batches
        switches = SpeedSwitches(channels_last=True, bf16=True)
        timing = {"warmup": self.plan.warmup, "repeats": self.plan.repeats, "device": self.device, "switches": switches}
        self.r["infer_b1_ms"] = 1e3 / measure.infer_images_per_s(self.cfg, small, **timing).images_per_s
        self.r["infer_big_batch"] = big
        self.r["infer_big_img_s"] = measure.infer_images_per_s(self.cfg, big, **timing).images_per_s

    def data(self, deadline: float) -> None:
        cores = os.cpu_count() or 1
        cfg = dataclasses.replace(self.cfg, synthetic=dataclasses.replace(self.cfg.synthetic, workers=cores))
        self.data_cfg = measure.bench_data(cfg, self.work_dir / "data", self.plan.data_rows)
        rates = {}
        for n in dict.fromkeys(w or cores for w in self.plan.worker_counts):
            if time.perf_counter() > deadline:
                break
            rates[n] = measure.loader_samples_per_s(self.data_cfg, self.plan.data_batch, self.plan.data_steps, n)
        self.r["data_rates"] = {str(n): v for n, v in rates.items()}
        workers, best = max(rates.items(), key=lambda kv: kv[1])
        self.r.update(data_img_s=best, data_workers=workers)
        self._projection()
        decode = jpeg_decode_ms(self.plan.jpeg_repeats)
        self.r.update(decode)
        # each worker spends workers / data_img_s per sample; full-size JPEGs add the decode difference
        per_sample_s = workers / best + (decode["jpeg_1280x720_decode_ms"] - decode["jpeg_256_decode_ms"]) / 1e3
        self.r["data_img_s_full_jpeg_estimate"] = workers / per_sample_s

    def train_fed(self, deadline: float) -> None:
        """The training step at the fit step's batch, fed by the training loader with the fit step's workers."""
        p = self.plan
        workers = self.fit_workers()
        rate = measure.fed_train_images_per_s(self.bench_data_cfg(), p.fit_batch, p.fed_steps, workers, warmup=p.fed_warmup,
                                              device=self.device, switches=SpeedSwitches(channels_last=True, bf16=True))
        self.r.update(train_fed_img_s=rate, train_fed_batch=p.fit_batch, train_fed_workers=workers)

    def fit_workers(self) -> int:
        """DataLoader workers of the trainer run (and of train_fed): the plan's, else the data step's best count."""
        return self.plan.fit_workers if self.plan.fit_workers is not None else self.r.get("data_workers") or 2

    def fit(self, deadline: float) -> None:
        """Stage 1 briefly, then stage 2 sized to fit_seconds, killed mid-way and finished with --resume."""
        run_dir = self.work_dir / "runs" / "fit"
        shutil.rmtree(run_dir, ignore_errors=True)
        try:
            self._fit(deadline, run_dir)
        finally:  # checkpoints never outlive the check
            shutil.rmtree(run_dir, ignore_errors=True)

    def _fit(self, deadline: float, run_dir: Path) -> None:
        p = self.plan
        batch = p.fit_batch
        rates = [eager_train_rate(self.r, batch) or self.r.get("train_paper_img_s"), self.r.get("data_img_s")]
        steps = fit_steps(p, min([x for x in rates if x] or [FALLBACK_RATE]))
        stage1_steps = max(steps // 10, 4)
        workers = self.fit_workers()
        lr1 = scaled_lr(self.paper.train.stage1.lr, batch)
        lr2 = scaled_lr(self.paper.train.stage2.lr, batch)
        common = [f"train.batch_size={batch}", f"data.num_workers={workers}", "train.deterministic=false",
                  f"train.val_samples={p.fit_val_samples}", "train.log_every_steps=1" if p.dry else
                  "train.log_every_steps=10"]
        self.r.update(fit_batch=batch, fit_lr_rule="sqrt", fit_lr_stage1=lr1, fit_lr_stage2=lr2, fit_steps=steps)
        t0 = time.perf_counter()
        one = self.run_child("fit stage 1", self.train_cmd(1, run_dir, [
            *common, "train.stage1.epochs=1", f"train.stage1.lr={lr1}",
            f"train.stage1.samples_2d_per_epoch={stage1_steps * batch}"]), deadline - time.perf_counter())
        if one.returncode != 0:
            raise Pose3DError(f"stage 1 exited with {one.returncode}: {_last_line(one)}")
        # stage 2: two epochs of 2D + 3D (ratio 1), a checkpoint every steps/8, killed at 5/8 + 1/16
        every = steps // 8
        kill_at = 5 * every + max(every // 2, 1)
        two = [*common, "train.stage2.epochs=2", f"train.stage2.lr={lr2}", "train.stage2.lr_drop_epochs=[]",
               f"train.stage2.samples_2d_per_epoch={steps * batch // 4}", f"train.checkpoint_every_steps={every}",
               "train.val_every=2"]
        t1 = time.perf_counter()
        # --init: stage 2 starts from the short stage 1 above as it is (its settings differ from the ones
        # given here, which `train` would otherwise note)
        init = ("--init", str(checkpoint_path(run_dir, 1)))
        killed = self.run_child("fit stage 2 (killed)", self.train_cmd(2, run_dir, two, *init),
                                deadline - time.perf_counter(), **{KILL_AT_STEP_ENV: str(kill_at)})
        killed_s = time.perf_counter() - t1
        if killed.returncode != -9:
            raise Pose3DError(f"stage 2 should have been killed at step {kill_at} (SIGKILL), exited with "
                              f"{killed.returncode}: {_last_line(killed)}")
        resumed = self.run_child("fit stage 2 (--resume)", self.train_cmd(2, run_dir, two, *init, "--resume"),
                                 deadline - time.perf_counter())
        self.r["fit_wall_s"] = time.perf_counter() - t0
        if resumed.returncode != 0:
            raise Pose3DError(f"stage 2 --resume exited with {resumed.returncode}: {_last_line(resumed)}")
        self.r["fit_img_s"] = kill_at * batch / killed_s  # lower bound: process start and checkpoints included
        self.r["recipe_minutes_fit"] = recipe_minutes(self.r["recipe_samples"], self.r["fit_img_s"])
        losses, resumed_ok = _train_losses(run_dir / "stage2", steps)
        self.r.update(train_loss_first=sum(losses[:LOSS_WINDOW]) / len(losses[:LOSS_WINDOW]),
                      train_loss_last=sum(losses[-LOSS_WINDOW:]) / len(losses[-LOSS_WINDOW:]),
                      fit_resume_ok=resumed_ok)
        self.r["fit_loss_falls"] = self.r["train_loss_last"] < self.r["train_loss_first"]
        self.r.update(_first_epoch_timing(run_dir / "stage2", batch))  # last: without it the results above still stand

    def ddp(self, deadline: float) -> None:
        """The trainer under torchrun on every GPU (gloo CPU processes in a dry run): killed, then resumed."""
        run_dir = self.work_dir / "runs" / "ddp"
        shutil.rmtree(run_dir, ignore_errors=True)
        try:
            self._ddp(deadline, run_dir)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)

    def _ddp(self, deadline: float, run_dir: Path) -> None:
        p = self.plan
        n = p.ddp_processes or max(torch.cuda.device_count(), 1)
        backend = ("nccl" if self.device.type == "cuda" else "gloo") if n > 1 else "none (one process)"
        self.r.update(ddp_world_size=n, ddp_backend=backend, ddp_ok=False)
        overrides = [f"train.batch_size={p.ddp_batch}", f"data.num_workers={p.ddp_workers}", "train.deterministic=false",
                     "train.stage1.epochs=1", f"train.stage1.samples_2d_per_epoch={n * p.ddp_batch * p.ddp_steps}",
                     "train.checkpoint_every_steps=2", "train.log_every_steps=1", "train.val_samples=8"]
        kill_at = p.ddp_steps // 2 + 1
        killed = self.run_child("ddp (killed)", self.train_cmd(1, run_dir, overrides, processes=n),
                                deadline - time.perf_counter(), **{KILL_AT_STEP_ENV: str(kill_at)})
        if killed.returncode == 0:
            raise Pose3DError(f"torchrun should have failed after the kill at step {kill_at}")
        resumed = self.run_child("ddp (--resume)", self.train_cmd(1, run_dir, overrides, "--resume", processes=n),
                                 deadline - time.perf_counter())
        if resumed.returncode != 0:
            raise Pose3DError(f"torchrun --resume exited with {resumed.returncode}: {_last_line(resumed)}")
        records = read_metrics(run_dir / "stage1" / "metrics.jsonl")
        checks = [x for x in records if x["kind"] == "ddp_check"]
        steps = [x["step"] for x in records if x["kind"] == "train"]
        if n > 1 and not (len(checks) == 1 and checks[0]["world_size"] == n and len(set(checks[0]["digests"])) == 1):
            raise Pose3DError(f"the {n} processes did not end with identical weights: {checks}")
        if steps != list(range(1, p.ddp_steps + 1)):
            raise Pose3DError(f"logged steps after the resume are {steps}, expected 1..{p.ddp_steps}")
        self.r["ddp_ok"] = True

    def tests(self, deadline: float) -> None:
        """pytest, one target at a time (the CUDA-only file first), so a timeout keeps the earlier targets' results."""
        summaries, failed = [], []
        for f in self.plan.test_files:
            if not (PROJECT_ROOT / f.split("::")[0]).is_file():
                raise Pose3DError(f"{f}: test file not found in {PROJECT_ROOT}")
            proc = self.run_child(f"pytest {f}", [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f],
                                  deadline - time.perf_counter())
            summaries.append(f"{f.removeprefix('tests/')}: {_last_line(proc)}")
            self.r["tests_summary"] = "; ".join(summaries)
            if proc.returncode != 0:
                failed.append(f)
        self.r["tests_ok"] = not failed
        if failed:
            raise Pose3DError(f"pytest failed in {', '.join(failed)}: {self.r['tests_summary']}")

    def run(self, skip: tuple[str, ...] = ()) -> dict[str, Any]:
        """Every step not in `skip`, in STEPS order; returns the result (also in gpu_check.json / .md)."""
        for name in STEPS:
            if name in skip:
                self.r["steps"][name] = {"status": "skipped", "reason": "--skip"}
                continue
            self.run_step(name, getattr(self, name))
        self.save()
        atomic_write_text(self.out_dir / "gpu_check.md", render_block(self.r) + "\n")
        return self.r


def fit_steps(plan: GpuCheckPlan, step_img_s: float) -> int:
    """Stage 2 steps of the fit step: `plan.fit_seconds` less three process starts, at the trainer's share
    of the bench step's rate `step_img_s` (a dry run: the whole time at the full rate); a multiple of 8."""
    rate = step_img_s * (1.0 if plan.dry else FIT_TRAINER_SPEED)
    train_s = max(plan.fit_seconds - (0.0 if plan.dry else 3 * FIT_PROCESS_S), 1.0)
    steps = int(min(max(rate * train_s / plan.fit_batch / FIT_WORK_PER_STEP, 16), plan.fit_max_steps))
    return steps - steps % 8


def _last_line(proc: subprocess.CompletedProcess) -> str:
    lines = [x for x in (proc.stdout + proc.stderr).strip().splitlines() if x.strip()]
    return lines[-1].strip()[:400] if lines else "(no output)"


def _first_epoch_timing(stage_dir: Path, batch: int) -> dict[str, float | None]:
    """Where the killed process's first stage-2 epoch went (timing.jsonl): fit_epoch_{data,step,callback}_s, steps,
    the epoch's first step alone (fit_epoch_first_step_s: cuDNN autotuning and first allocations land there) and
    fit_steady_img_s, the rate of the epoch's other steps, which compares with the training step's row at `batch`
    (None when the record has no first step, or the epoch a single step). The first record not of a resumed
    epoch: a process that resumed mid-epoch timed only that epoch's rest."""
    from ...engine.runs import TIMING_NAME

    path = stage_dir / TIMING_NAME
    records = read_metrics(path)  # any JSON-lines file: [] when absent
    first = next((r for r in records if not r.get("resumed")), None)
    if first is None:
        raise Pose3DError(f"{path}: no timing of a whole epoch written ({len(records)} record(s) of resumed epochs)")
    first_step_s = first.get("first_step_seconds")
    rest_s = None if first_step_s is None else first["step_seconds"] - first_step_s
    steady = batch * (first["steps"] - 1) / rest_s if rest_s and rest_s > 0 and first["steps"] > 1 else None
    return {"fit_epoch_steps": first["steps"], "fit_epoch_data_s": first["data_seconds"],
            "fit_epoch_step_s": first["step_seconds"], "fit_epoch_callback_s": first["callback_seconds"],
            "fit_epoch_first_step_s": first_step_s, "fit_steady_img_s": steady}


def _train_losses(stage_dir: Path, steps: int) -> tuple[list[float], bool]:
    """Logged training losses of a stage folder, and whether the resumed run reached `steps` in its checkpoint."""
    from ...engine.checkpoint import load_checkpoint

    records = read_metrics(stage_dir / "metrics.jsonl")
    losses = [float(x["loss"]) for x in records if x["kind"] == "train"]
    if not losses:
        raise Pose3DError(f"{stage_dir / 'metrics.jsonl'}: no training losses logged")
    ckpt = load_checkpoint(stage_dir / "last.pt")
    return losses, ckpt["step"] == steps and bool(ckpt["extra"].get("finished"))


def jpeg_decode_ms(repeats: int) -> dict[str, float]:
    """One-thread OpenCV decode time of a 1280x720 JPEG (real-MPII-sized) and of a 256 px one, milliseconds.

    The image is synthetic but photo-like (smooth gradients, shapes, sensor noise) so its
    compressed size, and so the decode work, is close to a camera frame's at quality 90.
    """
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    h, w = 720, 1280
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.stack([xx / w * 200, yy / h * 180, (xx + yy) / (w + h) * 220], axis=-1)
    for _ in range(60):
        x, y, r = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(10, 120))
        cv2.circle(image, (x, y), r, [float(c) for c in rng.uniform(0, 255, 3)], -1)
    image = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
    small = cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA)
    out = {}
    with opencv_threads(1):
        for name, img in (("jpeg_1280x720", image), ("jpeg_256", small)):
            data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
            cv2.imdecode(data, cv2.IMREAD_COLOR)
            t0 = time.perf_counter()
            for _ in range(repeats):
                cv2.imdecode(data, cv2.IMREAD_COLOR)
            out[f"{name}_decode_ms"] = (time.perf_counter() - t0) / repeats * 1e3
            out[f"{name}_kb"] = data.size / 1024
    return out


# ----------------------------------------------------------------------------- CLI

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry", action="store_true", help=f"tiny sizes on the CPU (also ${DRY_ENV}=1)")
    parser.add_argument("--out", action=CommandLinePath, default=None,
                        help="result folder (default: runs/gpu-check, the committed record; a dry run: runs/gpu-check/dry)")
    parser.add_argument("--work-dir", action=CommandLinePath, default=None,
                        help="data and checkpoints (default: <temp>/pose3d-gpu-check; reused between runs)")
    parser.add_argument("--doc", action=OptionalCommandLinePath, default="", help="also splice the block into this markdown (not in a dry run)")
    parser.add_argument("--skip", default="", help=f"comma-separated steps to leave out, of: {', '.join(STEPS)}")
    parser.add_argument("--no-time-limits", action="store_true",
                        help="run every step to its end, however long (tests on a busy machine); default: the plan's budgets")
    parser.add_argument("--from-json", action=CommandLinePath, default=None, metavar="JSON",
                        help="render a gpu_check.json (fetched from the GPU machine) into --doc; runs nothing")


RESULT_KEYS = ("command", "date", "dry", "steps")  # what every gpu_check.json holds (GpuCheck sets them first)


def read_result(path: Path) -> dict[str, Any]:
    """A gpu_check.json as `--from-json` renders it; Pose3DError naming the file when it is missing, not
    JSON, or not a gpu-check result (before a document's committed block would be replaced by '?')."""
    if not path.is_file():
        raise Pose3DError(f"--from-json {path}: not found (make gpu-check writes runs/gpu-check/gpu_check.json)")
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise Pose3DError(f"--from-json {path}: not a JSON text file ({e})") from None
    missing = [k for k in RESULT_KEYS if not isinstance(result, dict) or k not in result]
    if missing or not isinstance(result["steps"], dict):
        raise Pose3DError(f"--from-json {path}: not a gpu-check result (it lacks {', '.join(missing) or 'a steps map'}; "
                          f"make gpu-check's gpu_check.json holds {', '.join(RESULT_KEYS)}, ...)")
    return result


def run(args: argparse.Namespace) -> int:
    if args.from_json:
        result = read_result(resolve(args.from_json))
        if not args.doc:
            print(render_block(result))
            return 0
        return _splice(result, args.doc)
    dry = args.dry or os.environ.get(DRY_ENV, "") not in ("", "0")
    skip = tuple(s for s in args.skip.split(",") if s)
    unknown = sorted(set(skip) - set(STEPS))
    if unknown:
        raise Pose3DError(f"--skip: unknown step(s) {unknown}; the steps are {', '.join(STEPS)}")
    plan = DRY_PLAN if dry else FULL_PLAN
    if args.doc:  # a document that cannot take the numbers is named now, not after minutes of GPU work
        if dry:
            raise Pose3DError("--doc with a dry run: a dry run's numbers are no GPU figures; they are not written "
                              "into the docs")
        marked_block(resolve(args.doc), GPU_BEGIN_MARK, GPU_END_MARK)
    if plan.device == "cuda" and not torch.cuda.is_available():  # before the committed record is touched
        raise Pose3DError(f"no CUDA device here (torch {torch.__version__}, built for CUDA {torch.version.cuda}: None "
                          f"is a CPU-only build; {torch.cuda.device_count()} devices seen); the full check needs a GPU and would "
                          f"replace the committed record with errors: run it on a GPU machine, or `{DRY_ENV}=1 make "
                          "gpu-check` for the tiny CPU run")
    out = resolve(args.out or ("runs/gpu-check/dry" if dry else "runs/gpu-check"))
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("gpu_check.json", "gpu_check.md", "gpu_check.log"):
        (out / stale).unlink(missing_ok=True)
    work = resolve(args.work_dir) if args.work_dir else Path(tempfile.gettempdir()) / "pose3d-gpu-check"
    work = work / ("dry" if dry else "full")
    command = f"{DRY_ENV}=1 make gpu-check" if dry else "make gpu-check"
    if args.no_time_limits:
        plan = dataclasses.replace(plan, budgets_s=dict.fromkeys(plan.budgets_s, math.inf), total_s=math.inf)
    result = GpuCheck(plan, out, work, command).run(skip)
    print(f"gpu-check: wrote {out / 'gpu_check.json'}, {out / 'gpu_check.md'} in {result['wall_s']:.0f} s; "
          f"errors: {', '.join(result['errors']) or 'none'}")
    if args.doc:
        return _splice(result, args.doc)
    return 0


def _splice(result: dict[str, Any], doc: str) -> int:
    if result.get("dry"):
        raise Pose3DError("a dry run's numbers are no GPU figures; they are not written into the docs")
    print(f"gpu-check: updated {splice_block(resolve(doc), result)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m pose3dlib.tools.bench.gpu_check` (one-line errors, as pose3dlib.tools.cli)."""
    parser = argparse.ArgumentParser(prog="python -m pose3dlib.tools.bench.gpu_check", description=__doc__.splitlines()[0])
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except Pose3DError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

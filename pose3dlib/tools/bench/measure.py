"""One function per benchmark metric: matmul peak, training and inference speed, loss speedup, data rate.

Every timing is a median of repeats after warm-up (pose3dlib.tools.bench.timing). Inputs of the
compute benchmarks are random tensors with the shapes of a real batch (the sample dict
of docs/architecture.md), so they measure the network and the losses, not the disk; the
data pipeline is measured on its own (`data_samples_per_s`) and, on CUDA, together with
training (`cuda_end_to_end_images_per_s`).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, RandomSampler, Subset

from ...config import Config
from ...engine import allocator
from ...engine.errors import Pose3DError
from ...engine.train import SpeedSwitches, build_datasets, build_optimizer, epoch_loader, train_step
from ...losses import geometric_loss
from ...model import build_model, preprocess
from .loop_loss import geometric_loss_loop
from .timing import CPU, median_seconds, synchronize

BENCH_STAGE = 3  # loss weights of stage 3: heatmap + depth + geometric terms all active
MIN_REPEAT_S = 0.5  # fast steps are grouped so that one timed repeat lasts at least this long
ANNOTATED_PROB = 0.9  # share of annotated joints in the random batches (some bones are skipped)
# A small synthetic set for the data-rate benchmarks: enough rows for `data_samples` reads.
INDUCTOR_CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"
BENCH_DATA_ROWS = {"h36m_train": 192, "h36m_test": 16, "mpii_train": 192, "mpii_val": 16, "wild_test": 16}


@dataclass(frozen=True)
class BenchPlan:
    """How much `make bench` measures; `QUICK_PLAN` is the short development run."""

    threads: int = 2  # torch CPU threads of every CPU measurement (matmul peak included)
    warmup: int = 2  # untimed calls before each measurement
    repeats: int = 5  # timed repeats; the metric is their median
    switch_repeats: int = 3  # repeats of the switch comparisons (channels_last, compile, threads)
    matmul_size: int = 4096  # side of the square fp32 matrices of matmul_peak_gflops
    loss_batch: int = 32  # batch of geometric_loss_speedup
    infer_batch: int = 8  # batch of infer_paper_img_s
    data_samples: int = 256  # dataset reads timed for data_samples_s
    switches: bool = True  # also time the speed switches (evidence for the defaults)
    cuda_batch: int = 128  # per-step batch of the `_cuda` training metrics
    cuda_steps: int = 40  # timed steps of the `_cuda` end-to-end measurement
    cuda_matmul_size: int = 8192  # side of the bf16 matrices of matmul_peak_gflops_cuda


QUICK_PLAN = BenchPlan(warmup=1, repeats=2, switch_repeats=1, matmul_size=2048, infer_batch=4, data_samples=48,
                       cuda_batch=64, cuda_steps=10, cuda_matmul_size=4096)


# ----------------------------------------------------------------------------- inputs

def random_batch(cfg: Config, batch_size: int, device: torch.device, seed: int = 0,
                 with_3d: bool = True) -> dict[str, torch.Tensor]:
    """A batch with the keys, dtypes and shapes of a collated sample dict (random values).

    image uint8 (B, 3, S, S); heatmaps (B, 16, H, H); valid and heatmap_valid bool (B, 16); joints_2d (B, 16, 2)
    in [-1, 1]; has_depth (B,) alternating True/False (3D and 2D samples, ratio 1), or all False without
    `with_3d` (a stage with ratio_3d 0, Stage 1: 2D samples only); depth (B, 16).
    """
    g = torch.Generator().manual_seed(seed)
    s, h, j = cfg.data.input_size, cfg.data.heatmap_size, cfg.model.num_joints
    batch = {
        "image": torch.randint(0, 256, (batch_size, 3, s, s), generator=g, dtype=torch.uint8),
        "heatmaps": torch.rand(batch_size, j, h, h, generator=g),
        "valid": torch.rand(batch_size, j, generator=g) < ANNOTATED_PROB,
        "joints_2d": torch.rand(batch_size, j, 2, generator=g) * 2 - 1,
        "has_depth": (torch.arange(batch_size) % 2 == 0) & with_3d,
        "depth": torch.randn(batch_size, j, generator=g) * 0.3,
    }
    batch["heatmap_valid"] = batch["valid"].clone()
    return {k: v.to(device) for k, v in batch.items()}


# ----------------------------------------------------------------------------- matmul peak

def matmul_peak_gflops(size: int, *, warmup: int, repeats: int, device: torch.device = CPU,
                       dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of torch.matmul on two random (size, size) matrices: 2 size^3 / median seconds."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    seconds = median_seconds(lambda: torch.matmul(a, b), warmup=warmup, repeats=repeats, device=device)
    return 2.0 * size**3 / seconds / 1e9


# The paper network's main convolutions at 256 px input (64 x 64 features): bottleneck 3x3
# and the two 1x1s of a 256-channel residual, as (C_in, C_out, kernel).
PAPER_CONV_SHAPES = ((128, 128, 3), (256, 128, 1), (128, 256, 1))
PAPER_CONV_SIDE = 64


def conv_peak_gflops(batch_size: int, *, warmup: int, repeats: int, device: torch.device = CPU) -> float:
    """Best forward GFLOP/s of the paper network's main fp32 convolutions (oneDNN on CPU), at `batch_size`.

    A second reference next to the matmul peak: the convolution library may use the
    vector units better than the BLAS behind torch.matmul (it does on AMD CPUs with MKL).
    """
    best = 0.0
    for c_in, c_out, k in PAPER_CONV_SHAPES:
        x = torch.randn(batch_size, c_in, PAPER_CONV_SIDE, PAPER_CONV_SIDE, device=device)
        w = torch.randn(c_out, c_in, k, k, device=device)
        with torch.no_grad():
            seconds = seconds_per_call(lambda: torch.nn.functional.conv2d(x, w, padding=k // 2),  # noqa: B023
                                       warmup=warmup, repeats=repeats, device=device)
        flops = 2.0 * batch_size * c_out * PAPER_CONV_SIDE**2 * c_in * k * k
        best = max(best, flops / seconds / 1e9)
    return best


# ----------------------------------------------------------------------------- training

def make_train_step(model: torch.nn.Module, cfg: Config, device: torch.device,
                    switches: SpeedSwitches, stage: int = BENCH_STAGE) -> Callable[[dict[str, torch.Tensor]], dict[str, float]]:
    """A closure calling the trainer's own `train.train_step` on a batch (what `make bench` times).

    The optimiser is cfg.train's (RMSprop for the paper profile) at `stage`'s lr, with its loss
    weights: stage 3 (the default) runs all three loss terms; stage 1 only the heatmap loss, so
    the step leaves the depth head out of the backward pass where the trainer does
    (`train.depth_head_trains`). `train_images_per_s` also gives a stage without 3D samples
    (ratio_3d 0) a batch of 2D samples only, as its loader does. The model is moved to `device` (and channels_last) here;
    compile wraps it when asked.
    """
    stage_cfg = cfg.train.stage(stage)
    model.to(device).train()
    if switches.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model.parameters(), cfg.train, stage_cfg.lr)
    forward = torch.compile(model) if switches.compile else model
    weights = stage_cfg.loss_weights()

    def step(batch: dict[str, torch.Tensor]) -> dict[str, float]:
        return train_step(forward, optimizer, batch, input_format=cfg.model.input_format, switches=switches,
                          weights=weights)

    return step


@dataclass(frozen=True)
class StepTiming:
    """Result of timing a step: images per second and the one-off cost of the first call."""

    images_per_s: float
    first_call_s: float  # seconds of the first call (compilation, allocator); minus a steady step = overhead


def seconds_per_call(fn: Callable[[], object], *, warmup: int, repeats: int,
                     device: torch.device = CPU) -> float:
    """Median seconds of one `fn()` after warm-up, grouping fast calls into repeats of >= MIN_REPEAT_S."""
    one = median_seconds(fn, warmup=warmup, repeats=1, device=device)
    calls = max(1, math.ceil(MIN_REPEAT_S / max(one, 1e-6)))
    return median_seconds(fn, warmup=0, repeats=repeats, device=device, calls_per_repeat=calls)


def _time_step(step: Callable[[], object], batch_size: int, *, warmup: int, repeats: int,
               device: torch.device) -> StepTiming:
    """Time `step` (one call = `batch_size` images): the first call alone, then warm-up and repeats."""
    start = time.perf_counter()
    step()
    synchronize(device)
    first = time.perf_counter() - start
    seconds = seconds_per_call(step, warmup=max(warmup - 1, 0), repeats=repeats, device=device)
    return StepTiming(images_per_s=batch_size / seconds, first_call_s=first)


def train_images_per_s(cfg: Config, *, warmup: int, repeats: int, device: torch.device = CPU,
                       batch_size: int | None = None, switches: SpeedSwitches | None = None,
                       seed: int = 0, stage: int = BENCH_STAGE) -> StepTiming:
    """Training throughput (images/s) of cfg.model on random batches of cfg's shapes, data excluded.

    Args:
        cfg: the profile; batch size defaults to cfg.train.batch_size.
        warmup, repeats: see timing.median_seconds; fast steps are grouped into repeats of
            at least MIN_REPEAT_S seconds.
        switches: channels_last / bf16 / compile; None: what training applies to cfg on
            `device` (SpeedSwitches.for_training), so the default measures the trainer's path.
        stage: whose loss weights and lr the step trains with (`make_train_step`).
    """
    if switches is None:
        switches = SpeedSwitches.for_training(cfg.train, device)
    torch.manual_seed(seed)
    bs = batch_size or cfg.train.batch_size
    batch = random_batch(cfg, bs, device, seed, with_3d=cfg.train.stage(stage).ratio_3d > 0)  # as the stage's batches
    step = make_train_step(build_model(cfg.model), cfg, device, switches, stage=stage)
    return _time_step(lambda: step(batch), bs, warmup=warmup, repeats=repeats, device=device)


@contextmanager
def fresh_compile_cache() -> Iterator[None]:
    """Point torch.compile's on-disk cache (TORCHINDUCTOR_CACHE_DIR) at an empty folder, so compile time is cold."""
    previous = os.environ.get(INDUCTOR_CACHE_ENV)
    with tempfile.TemporaryDirectory(prefix="pose3d-bench-inductor-") as folder:
        os.environ[INDUCTOR_CACHE_ENV] = folder
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop(INDUCTOR_CACHE_ENV, None)
            else:
                os.environ[INDUCTOR_CACHE_ENV] = previous


# ----------------------------------------------------------------------------- inference

def infer_images_per_s(cfg: Config, batch_size: int, *, warmup: int, repeats: int,
                       device: torch.device = CPU, switches: SpeedSwitches | None = None,
                       seed: int = 0) -> StepTiming:
    """Inference throughput (images/s) of cfg.model in eval mode: preprocess from uint8 + forward.

    switches None: what `load_model` + `evaluate.predict` do with a checkpoint of cfg
    (channels_last when cfg.train.channels_last, fp32).
    """
    if switches is None:
        switches = SpeedSwitches(channels_last=cfg.train.channels_last)
    torch.manual_seed(seed)
    model = build_model(cfg.model).to(device).eval()
    if switches.channels_last:
        model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if switches.compile else model
    images_u8 = random_batch(cfg, batch_size, device, seed)["image"]

    def step() -> torch.Tensor:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=switches.bf16):
            x = preprocess(images_u8, cfg.model.input_format)  # (B, 3, S, S)
            if switches.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return forward(x)["depth"]

    return _time_step(step, batch_size, warmup=warmup, repeats=repeats, device=device)


# ----------------------------------------------------------------------------- geometric loss

def geometric_loss_seconds(loss_fn: Callable[..., torch.Tensor], batch_size: int, *, warmup: int,
                           repeats: int, seed: int = 0) -> float:
    """Median seconds of forward + backward of `loss_fn(depth, joints_2d, valid).sum()` on a random batch."""
    g = torch.Generator().manual_seed(seed)
    depth = (torch.randn(batch_size, 16, generator=g) * 0.3).requires_grad_(True)  # (B, 16)
    joints_2d = torch.rand(batch_size, 16, 2, generator=g) * 2 - 1  # (B, 16, 2)
    valid = torch.rand(batch_size, 16, generator=g) < ANNOTATED_PROB  # (B, 16)

    def step() -> None:
        depth.grad = None
        loss_fn(depth, joints_2d, valid).sum().backward()

    return seconds_per_call(step, warmup=warmup, repeats=repeats)


def geometric_loss_speedup(batch_size: int, *, warmup: int, repeats: int) -> float:
    """Time of the per-sample loop transcription over the time of losses.geometric_loss (forward + backward)."""
    loop_s = geometric_loss_seconds(geometric_loss_loop, batch_size, warmup=warmup, repeats=repeats)
    ours_s = geometric_loss_seconds(geometric_loss, batch_size, warmup=warmup, repeats=repeats)
    return loop_s / ours_s


# ----------------------------------------------------------------------------- data

def with_data_root(cfg: Config, root: Path) -> Config:
    """cfg with its dataset folders moved under `root` (h36m/, mpii/, wild_test/; validation splits off)."""
    data = dataclasses.replace(cfg.data, h36m_dir=str(root / "h36m"), mpii_dir=str(root / "mpii"),
                               wild_test_dir=str(root / "wild_test"), lab_val_dir="", wild_val_dir="")
    return dataclasses.replace(cfg, data=data)


def bench_data(cfg: Config, out_dir: Path, rows: dict[str, int] | None = None) -> Config:
    """Write (or reuse, when complete) a small synthetic set with cfg's image size under `out_dir`;
    return cfg reading it: its folders (`with_data_root`) and its sizes (`synthetic.*`, which
    training and evaluation check against the set's manifest).

    rows: split sizes (SyntheticConfig field -> rows), default BENCH_DATA_ROWS.
    """
    from ...synthetic.generator import generate

    synthetic = dataclasses.replace(cfg.synthetic, **(rows or BENCH_DATA_ROWS))
    root = generate(out_dir, synthetic, seed=cfg.seed)
    return with_data_root(dataclasses.replace(cfg, synthetic=synthetic), root)


def train_dataset(cfg: Config):
    """The augmented training mix (2D + 3D at the bench stage's ratio), as training builds it, without the
    cache of decoded pictures (`data.image_cache_mb`): the bench times what preparing a new sample costs,
    and its loaders may have worker processes, which the cache must not go with."""
    stage_cfg = cfg.train.stage(BENCH_STAGE)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, image_cache_mb=0))
    return build_datasets(cfg, BENCH_STAGE, stage_cfg)[0]


def data_samples_per_s(cfg: Config, num_samples: int) -> float:
    """Samples/s of one process reading the training mix (decode, augment, targets); cfg's folders must exist.

    Reads 2D and 3D samples interleaved (the mix stores all 2D rows first), through
    pose3dlib.synthetic.throughput.measure_throughput (OpenCV limited to one thread: per core).
    """
    from ...synthetic.throughput import measure_throughput

    ds = train_dataset(cfg)
    ds.set_epoch(0)
    n_2d, n = ds.n_2d, len(ds)
    pairs = min(n_2d, n - n_2d)
    order = [i for k in range(pairs) for i in (k, n_2d + k)] + list(range(pairs, n_2d)) + list(range(n_2d + pairs, n))
    return float(measure_throughput(Subset(ds, order), num_samples=num_samples)["samples_per_s"])


# ----------------------------------------------------------------------------- peak memory

def train_in_subprocess(profile: str, *, threads: int, warmup: int = 1, repeats: int = 1,
                        env: dict[str, str | None] | None = None) -> dict[str, float]:
    """{"peak_rss_mb", "images_per_s"} of `profile`'s training step in a fresh process (bench.step_process).

    env: variables to set (str) or remove (None) in the child, e.g. {"OMP_WAIT_POLICY": None}. The child
    starts with the memory allocator that POSE3D_ALLOCATOR (there, after `env`) chooses (engine/allocator.py).
    """
    cmd = [sys.executable, "-m", "pose3dlib.tools.bench.step_process", "--profile", profile, "--threads", str(threads),
           "--warmup", str(warmup), "--repeats", str(repeats)]
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for key, value in (env or {}).items():
        if value is None:
            child_env.pop(key, None)
        else:
            child_env[key] = value
    child_env = allocator.launch_env(child_env, allocator.library())
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=child_env)
    if proc.returncode != 0:
        raise Pose3DError(f"bench subprocess failed ({' '.join(cmd)}): {proc.stderr.strip()[-800:]}")
    return {k: float(v) for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}


# ----------------------------------------------------------------------------- CUDA, data included

def cuda_end_to_end_images_per_s(cfg: Config, batch_size: int, steps: int, *, warmup: int,
                                 device: torch.device, switches: SpeedSwitches, num_workers: int) -> float:
    """Training images/s on CUDA with the real data pipeline: DataLoader workers, pinned copies, step.

    cfg's dataset folders must exist. The sampler draws with replacement so any number of
    steps runs on a small set; every sample is still decoded and augmented. Time from the
    first timed batch request to the last step's completion (data waits included).
    """
    ds = train_dataset(cfg)
    ds.set_epoch(0)
    total = (warmup + steps) * batch_size
    loader = DataLoader(ds, batch_size=batch_size, drop_last=True, num_workers=num_workers,
                        pin_memory=device.type == "cuda",
                        sampler=RandomSampler(ds, replacement=True, num_samples=total,
                                              generator=torch.Generator().manual_seed(cfg.seed)),
                        persistent_workers=False, prefetch_factor=4 if num_workers > 0 else None)
    torch.manual_seed(cfg.seed)
    step = make_train_step(build_model(cfg.model), cfg, device, switches)
    batches = iter(loader)
    for _ in range(warmup):
        step({k: v.to(device, non_blocking=True) for k, v in next(batches).items()})
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step({k: v.to(device, non_blocking=True) for k, v in next(batches).items()})
    synchronize(device)
    return steps * batch_size / (time.perf_counter() - start)


def fed_train_images_per_s(cfg: Config, batch_size: int, steps: int, num_workers: int, *, warmup: int,
                           device: torch.device = CPU, switches: SpeedSwitches | None = None, seed: int = 0) -> float:
    """Training img/s of the trainer's own step fed by the training DataLoader as `fit` feeds it: `epoch_loader`
    with `num_workers` processes (pinned memory on CUDA), each batch copied to `device` with non_blocking, the
    wait for the loader included; `warmup` steps first (the loader's workers start there). Between the step
    alone (`train_images_per_s`) and the trainer's own steps (timing.jsonl), it tells the feeding's cost from
    the trainer's. cfg's folders must exist; the bench stage's loss weights, as `make_train_step`."""
    if switches is None:
        switches = SpeedSwitches.for_training(cfg.train, device)
    torch.manual_seed(seed)
    step = make_train_step(build_model(cfg.model), cfg, device, switches)
    ds = train_dataset(cfg)
    ds.set_epoch(0)
    order = torch.randint(len(ds), ((warmup + steps) * batch_size,), generator=torch.Generator().manual_seed(seed))
    batches = iter(epoch_loader(ds, batch_size, order.tolist(), num_workers, pin_memory=device.type == "cuda"))

    def one() -> None:
        step({k: v.to(device, non_blocking=True) for k, v in next(batches).items()})

    return batch_size / median_seconds(one, warmup=warmup, repeats=1, device=device, calls_per_repeat=steps)


def loader_samples_per_s(cfg: Config, batch_size: int, steps: int, num_workers: int) -> float:
    """Samples/s the DataLoader alone delivers with `num_workers` processes (no model): the data bound."""
    ds = train_dataset(cfg)
    ds.set_epoch(0)
    warm = 2
    loader = DataLoader(ds, batch_size=batch_size, drop_last=True, num_workers=num_workers,
                        sampler=RandomSampler(ds, replacement=True, num_samples=(warm + steps) * batch_size,
                                              generator=torch.Generator().manual_seed(cfg.seed)),
                        prefetch_factor=4 if num_workers > 0 else None)
    batches = iter(loader)
    for _ in range(warm):
        next(batches)
    start = time.perf_counter()
    for _ in range(steps):
        next(batches)
    return steps * batch_size / (time.perf_counter() - start)

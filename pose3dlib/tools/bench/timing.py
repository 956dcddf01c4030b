"""Wall-clock timing: warm-up calls, then the median of repeated calls."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

CPU = torch.device("cpu")


def synchronize(device: torch.device) -> None:
    """Wait for queued work on `device` (CUDA kernels run asynchronously; a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], *, warmup: int, repeats: int,
                   device: torch.device = CPU, calls_per_repeat: int = 1) -> float:
    """Median wall-clock seconds of one `fn()` call.

    Args:
        fn: the work to time (its result is ignored).
        warmup: untimed calls first (allocator, oneDNN primitive caches, compilation).
        repeats: timed repeats (>= 1); the median is robust to a repeat disturbed by other load.
        device: synchronised before and after each repeat so CUDA work is included.
        calls_per_repeat: calls per timed repeat (raises the resolution for fast calls).
    Returns:
        median over repeats of (repeat seconds / calls_per_repeat).
    """
    if repeats < 1 or calls_per_repeat < 1 or warmup < 0:
        raise ValueError(f"median_seconds: need repeats >= 1, calls_per_repeat >= 1, warmup >= 0; got "
                         f"{repeats}, {calls_per_repeat}, {warmup}")
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls_per_repeat):
            fn()
        synchronize(device)
        times.append((time.perf_counter() - start) / calls_per_repeat)
    return statistics.median(times)

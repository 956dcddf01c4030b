"""Measuring the data pipeline: samples per second of load + augment + targets on one core."""
from __future__ import annotations

import time

import numpy as np

from ..engine.device import opencv_threads


def measure_throughput(dataset, num_samples: int = 256, warmup: int = 8, epoch: int = 0) -> dict[str, float]:
    """Samples/s of `dataset[i]` (image decode, crop, augmentation, heatmaps, depth) in this process.

    OpenCV is limited to one thread while measuring, so the number is per core. Returns
    {"samples_per_s", "seconds", "num_samples", "input_size"}.
    """
    n = min(num_samples, len(dataset))
    if n == 0:
        raise ValueError("measure_throughput: empty dataset")
    with opencv_threads(1):
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        for i in range(min(warmup, n)):
            dataset[i]
        rows = np.arange(n)
        t0 = time.perf_counter()
        for i in rows:
            sample = dataset[int(i)]
        seconds = time.perf_counter() - t0
    return {"samples_per_s": n / seconds, "seconds": seconds, "num_samples": float(n),
            "input_size": float(sample["image"].shape[-1])}

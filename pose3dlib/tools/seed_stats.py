"""Mean and spread of a metric over seeds, for the sweep's and the ablation's tables and figures.

A diverged run's metric is nan in its metrics.csv (`evaluate` writes what it measured), and
`statistics.stdev` fails on nan, so the values that are not finite are left out of the mean and
the spread here and counted apart, for the caller to name.
"""
from __future__ import annotations

import math
import statistics


def finite_mean_sd(values: list[float]) -> tuple[float, float, int]:
    """(mean, sample sd (0 for one value), count) of the finite values; (nan, nan, 0) without any."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan, 0
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else 0.0, len(finite)

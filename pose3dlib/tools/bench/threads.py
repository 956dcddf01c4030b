"""OpenMP wait policy: what the benchmark compares.

With the libgomp default, a torch thread that reaches a barrier spins for a while before
sleeping. On an idle 2-core machine that is the fastest choice (cpu-profile training about
2 x faster than OMP_WAIT_POLICY=PASSIVE, docs/benchmarks.md); when the cores are shared
with other busy processes, spinning threads can wait whole scheduler slices, and PASSIVE
(sleep at once) is the safer choice. pose3d sets neither: the benchmark runs with
whatever the environment says and measures PASSIVE in a subprocess
(`train_cpu_omp_passive_img_s`) for comparison.
"""
from __future__ import annotations

import os

OMP_WAIT_ENV = "OMP_WAIT_POLICY"
PASSIVE = "PASSIVE"


def wait_policy() -> str:
    """The OMP_WAIT_POLICY of this process's environment ("" when unset: libgomp's default)."""
    return os.environ.get(OMP_WAIT_ENV, "")

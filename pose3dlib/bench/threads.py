"""OpenMP wait policy of the benchmark process (set before torch is imported).

With the libgomp default, a torch thread that reaches a barrier spins; when the two cores
are shared with any other process, its partner is often descheduled and every parallel
region waits a scheduler time slice: measured 10-100 x slower small operations on this
2-core machine. PASSIVE makes waiting threads sleep instead. `make bench` runs with
PASSIVE unless OMP_WAIT_POLICY is already set, and measures the libgomp default in a
subprocess (`train_cpu_omp_default_img_s`) for comparison.
"""
from __future__ import annotations

import os

OMP_WAIT_ENV = "OMP_WAIT_POLICY"
BENCH_WAIT_POLICY = "PASSIVE"


def set_default_wait_policy() -> str:
    """Set OMP_WAIT_POLICY=PASSIVE unless already set; return the policy in effect ("" = libgomp default).

    Only effective before torch (and so libgomp) is loaded into the process.
    """
    return os.environ.setdefault(OMP_WAIT_ENV, BENCH_WAIT_POLICY)


def wait_policy() -> str:
    """The OMP_WAIT_POLICY of this process's environment ("" when unset: libgomp's default)."""
    return os.environ.get(OMP_WAIT_ENV, "")

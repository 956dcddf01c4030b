"""Subprocess behind `peak_rss_mb`: run a few training steps of a profile, print peak RSS as JSON.

    python -m pose3dlib.bench.peak_rss --profile paper --threads 2 --steps 2
    -> {"peak_rss_mb": 1234.5}

Only the model, optimiser, one random batch and the steps live in this process, so its
peak resident set size (getrusage ru_maxrss) is the training step's memory plus the
Python/torch runtime.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys

import torch

KIB_PER_MIB = 1024  # Linux reports ru_maxrss in KiB


def main(argv: list[str] | None = None) -> int:
    from ..config import load_config
    from ..model import build_model
    from .measure import StepSwitches, make_train_step, random_batch

    parser = argparse.ArgumentParser(prog="python -m pose3dlib.bench.peak_rss", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="paper", help="configs/<profile>.yaml (default: paper)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--steps", type=int, default=2, help="training steps to run (>= 1)")
    args = parser.parse_args(argv)
    if sys.platform != "linux":
        print(f"peak_rss: ru_maxrss units are only known on Linux, not {sys.platform}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    cfg = load_config(f"configs/{args.profile}.yaml")
    device = torch.device("cpu")
    batch = random_batch(cfg, cfg.train.batch_size, device)
    step = make_train_step(build_model(cfg.model), cfg, device, StepSwitches())
    for _ in range(max(args.steps, 1)):
        step(batch)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB_PER_MIB
    print(json.dumps({"peak_rss_mb": peak}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

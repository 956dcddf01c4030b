"""Subprocess behind `peak_rss_mb` and the wait-policy switch: training steps of one profile in a fresh process.

    python -m pose3dlib.tools.bench.step_process --profile paper --threads 2 --warmup 1 --repeats 2
    -> {"peak_rss_mb": 3040.2, "images_per_s": 2.2}

Only the model, optimiser, one random batch and the steps live in this process, so its
peak resident set size (getrusage ru_maxrss) is the training step's memory plus the
Python/torch runtime; and its environment (OMP_WAIT_POLICY) can differ from the parent's.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys

KIB_PER_MIB = 1024  # Linux reports ru_maxrss in KiB


def main(argv: list[str] | None = None) -> int:
    import torch

    from ...config import load_config
    from ...engine.train import SpeedSwitches
    from ...model import build_model
    from .measure import make_train_step, random_batch, seconds_per_call

    parser = argparse.ArgumentParser(prog="python -m pose3dlib.tools.bench.step_process",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="paper", help="configs/<profile>.yaml (default: paper)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps (>= 1)")
    parser.add_argument("--repeats", type=int, default=1, help="timed repeats (>= 1)")
    args = parser.parse_args(argv)
    if sys.platform != "linux":
        print(f"step_process: ru_maxrss units are only known on Linux, not {sys.platform}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    cfg = load_config(f"configs/{args.profile}.yaml")
    device = torch.device("cpu")
    batch = random_batch(cfg, cfg.train.batch_size, device)
    step = make_train_step(build_model(cfg.model), cfg, device, SpeedSwitches.for_training(cfg.train, device))
    seconds = seconds_per_call(lambda: step(batch), warmup=max(args.warmup, 1), repeats=max(args.repeats, 1))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB_PER_MIB
    print(json.dumps({"peak_rss_mb": peak, "images_per_s": cfg.train.batch_size / seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

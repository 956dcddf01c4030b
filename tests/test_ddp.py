"""Distributed training: the train command under torchrun with two CPU processes (gloo)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch.distributed
from conftest import SMOKE

from pose3dlib.engine.checkpoint import load_checkpoint
from pose3dlib.engine.distributed import state_digest
from pose3dlib.engine.runlog import read_metrics


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="torch.distributed with gloo is not available")
@pytest.mark.parametrize("extra", [[], ["train.stage1.ema_decay=0.8"]], ids=["plain", "weight-average"])
def test_two_cpu_processes_keep_identical_weights(tmp_path, smoke_data, extra):
    run = tmp_path / "run"
    # the train command, then the names of the process's threads once it has returned
    launcher = tmp_path / "train_then_threads.py"
    launcher.write_text(
        "import os, sys\n"
        "from pose3dlib.tools.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "tasks = '/proc/self/task'  # Linux: one folder per thread, its name in comm\n"
        "names = sorted(open(f'{tasks}/{t}/comm').read().strip() for t in os.listdir(tasks)) if os.path.isdir(tasks) else ['unknown']\n"
        "print('threads after training:', ' '.join(names), flush=True)\n"
        "sys.exit(rc)\n")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(launcher), "train", "--config", SMOKE, "--stage", "1", "--run-dir", str(run)]
    # 48 samples, 2 processes, batch 4 per process: 6 steps per epoch, 2 epochs
    for o in smoke_data + ["train.batch_size=4", "train.stage1.epochs=2", "train.log_every_steps=1", *extra]:
        cmd += ["--set", o]
    r = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    # the process group is gone with its gloo threads before exit (threads still running at
    # interpreter shutdown abort the process now and then, after a finished run)
    # (counted anywhere: the two processes share stdout, and their writes interleave, even within a
    # line: "threads after training:threads after training: python python python\n python python python")
    marker = "threads after training:"
    assert r.stdout.count(marker) == 2, r.stdout[-2000:]
    thread_names = r.stdout[r.stdout.index(marker):]  # both processes' lists, however interleaved
    assert "gloo" not in thread_names, thread_names
    records = read_metrics(run / "stage1" / "metrics.jsonl")
    checks = [x for x in records if x["kind"] == "ddp_check"]
    assert len(checks) == 1 and checks[0]["world_size"] == 2
    digests = checks[0]["digests"]
    ckpt = load_checkpoint(run / "stage1" / "last.pt")
    trained = ckpt["train_model"] if extra else ckpt["model"]  # with the average, "model" is the average
    assert digests[0] == digests[1] == state_digest(trained)  # both ranks hold the saved weights
    assert ckpt["step"] == 12 and ckpt["extra"]["world_size"] == 2
    train = [x for x in records if x["kind"] == "train"]
    assert [x["step"] for x in train] == list(range(1, 13))
    timing = (run / "stage1" / "timing.jsonl").read_text().splitlines()  # rank 0's epochs only
    assert [json.loads(x)["steps"] for x in timing] == [6, 6], timing


@pytest.mark.parametrize("env, message", [
    ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two': expected a whole number >= 1"),
    ({"WORLD_SIZE": "0"}, "WORLD_SIZE='0': expected a whole number >= 1"),
    ({"WORLD_SIZE": "2"}, "WORLD_SIZE=2 is set but RANK, MASTER_ADDR, MASTER_PORT are not: launch several processes"),
    ({"WORLD_SIZE": "2", "RANK": "0"}, "WORLD_SIZE=2 is set but MASTER_ADDR, MASTER_PORT are not"),
])
def test_a_world_size_without_a_launch_is_one_line(monkeypatch, env, message):
    """A WORLD_SIZE left in the shell gave KeyError: 'RANK' (or torch's MASTER_ADDR traceback) from train."""
    from pose3dlib.engine.distributed import world_size_from_environment
    from pose3dlib.engine.errors import ConfigError

    for var in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as err:
        world_size_from_environment()
    assert str(err.value).startswith(message)
    for var, value in (("WORLD_SIZE", "1"), ("RANK", "0"), ("MASTER_ADDR", "localhost"), ("MASTER_PORT", "29500")):
        monkeypatch.setenv(var, value)
    assert world_size_from_environment() == 1
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert world_size_from_environment() == 2

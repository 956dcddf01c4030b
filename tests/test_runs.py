"""pose3dlib.engine.runs: the run-folder layout, stage status and the lock on a stage folder."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from pose3dlib.engine import runs
from pose3dlib.engine.errors import Pose3DError


def test_layout_is_stage_folders_with_last_pt(tmp_path):
    assert runs.checkpoint_path(tmp_path, 2) == tmp_path / "stage2" / "last.pt"
    assert runs.metrics_log_path(tmp_path, 3) == tmp_path / "stage3" / "metrics.jsonl"
    assert runs.eval_csv_path(tmp_path) == tmp_path / "metrics.csv"
    assert runs.default_init(tmp_path, 1) is None and runs.default_init(tmp_path, 3) == tmp_path / "stage2" / "last.pt"
    with pytest.raises(Pose3DError, match="stage must be 1, 2 or 3"):
        runs.stage_dir(tmp_path, 4)


# Holds the lock until its stdin closes or it is killed (each test kills it in `finally`): no timer
# that a slow machine could outlast, releasing the lock while the test still counts on it.
HOLD_LOCK = textwrap.dedent("""
    import sys
    from pathlib import Path
    from pose3dlib.engine.runs import stage_lock
    with stage_lock(Path(sys.argv[1])):
        print("locked", flush=True)
        sys.stdin.read()
""")


def hold_lock(stage_dir) -> subprocess.Popen:
    """A process holding the stage folder's lock until it is killed; returns once it holds it."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(stage_dir)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
    except BaseException:
        kill(holder)
        raise
    return holder


def kill(holder: subprocess.Popen) -> None:
    """SIGKILL the holder (no cleanup runs in it: its lock file stays behind) and close our pipe ends."""
    holder.kill()
    holder.wait()
    holder.stdin.close()
    holder.stdout.close()


def test_a_second_writer_gets_a_clear_error_and_a_dead_writer_leaves_no_lock(tmp_path):
    sdir = tmp_path / "stage1"
    holder = hold_lock(sdir)
    try:
        with pytest.raises(Pose3DError, match=rf"being written by another process \(PID {holder.pid}\)"):
            with runs.stage_lock(sdir):
                pass
        assert holder.poll() is None  # it held the lock all along
    finally:
        kill(holder)
    assert (sdir / runs.LOCK_NAME).exists()
    with runs.stage_lock(sdir) as path:  # the kernel dropped the dead process's lock
        assert path.read_text().strip() == str(os.getpid())


def test_train_refuses_a_stage_folder_another_process_writes(tmp_path, smoke_data, train_cli):
    sdir = tmp_path / "run" / "stage1"
    holder = hold_lock(sdir)
    try:
        r = train_cli(tmp_path / "run", 1, smoke_data)
        assert holder.poll() is None  # it held the lock all along
    finally:
        kill(holder)
    assert r.returncode == 2 and "being written by another process" in r.stderr and "stage1" in r.stderr
    assert not (sdir / "last.pt").exists()


def test_training_differences_ignore_only_the_evaluation_options():
    from pose3dlib.config import config_to_dict, load_config
    from pose3dlib.engine.runs import training_differences

    stored = config_to_dict(load_config("configs/smoke.yaml"))
    assert training_differences(stored, load_config("configs/smoke.yaml", ["eval.recrop_margin=1.25",
                                                                           "eval.recrop_max_fill=0.7",
                                                                           "eval.subpixel=log_parabola"])) == []
    diffs = training_differences(stored, load_config("configs/smoke.yaml", ["eval.flip_test=false",
                                                                            "train.stage1.lr=0.5"]))
    assert len(diffs) == 1 and diffs[0].startswith("train.stage1.lr:")
    # how a stage runs, not what it trains: worker processes (the same weights, bit for bit) and the log cadence
    assert training_differences(stored, load_config("configs/smoke.yaml", ["data.num_workers=3",
                                                                           "train.log_every_steps=7"])) == []
    assert training_differences(stored, load_config("configs/smoke.yaml", ["data.num_workers=3", "data.flip_prob=0.1"])
                                ) == [f"data.flip_prob: {stored['data']['flip_prob']} -> 0.1"]
    # a stage never reads the later stages' settings; it does read its own and the earlier ones'
    later = load_config("configs/smoke.yaml", ["train.stage3.lr=0.5", "train.stage2.epochs=7"])
    assert training_differences(stored, later, stage=1) == []
    assert [d.split(":")[0] for d in training_differences(stored, later, stage=2)] == ["train.stage2.epochs"]
    assert len(training_differences(stored, later, stage=3)) == 2 == len(training_differences(stored, later))


def test_training_differences_ignore_the_number_of_lab_test_people():
    """More synthetic lab test people change only test rows: a checkpoint stays finished, also
    one saved before the key existed; its neighbour h36m_test (which moves training rows) does not."""
    from pose3dlib.config import config_to_dict, load_config
    from pose3dlib.engine.runs import training_differences

    stored = config_to_dict(load_config("configs/smoke.yaml"))
    more = load_config("configs/smoke.yaml", ["synthetic.h36m_test_subjects=12"])
    assert training_differences(stored, more) == []
    del stored["synthetic"]["h36m_test_subjects"]  # a checkpoint from before the key
    assert training_differences(stored, more) == []
    diffs = training_differences(stored, load_config("configs/smoke.yaml", ["synthetic.h36m_test=30"]))
    assert [d.split(":")[0] for d in diffs] == ["synthetic.h36m_test"]

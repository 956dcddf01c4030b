"""Reliability of training: kill -9 and --resume, kills during checkpoint writes, and NaN/inf losses."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from pose3dlib.engine.checkpoint import atomic_torch_save, load_checkpoint, make_checkpoint, save_checkpoint
from pose3dlib.engine.distributed import state_digest
from pose3dlib.engine.train import INTERRUPT_AT_STEP_ENV, KILL_AT_STEP_ENV, PREVIOUS_NAME, InterruptGuard

# 48 MPII training samples, batch 8: 6 steps per epoch; 2 epochs = 12 steps. Checkpoints
# every 4 steps (4, 8 mid-epoch; 6, 12 at epoch ends). A kill at step 11 loses steps 9-11
# and resumes mid-epoch 2 (2 of its batches done) from the step-8 checkpoint.
RESUME_OVERRIDES = ["train.stage1.epochs=2", "train.checkpoint_every_steps=4", "train.log_every_steps=1"]
KILL_STEP = 11


@pytest.mark.parametrize("extra", [[], ["train.stage1.warmup_steps=10"], ["train.fused_adam=true"],
                                   ["train.stage1.ema_decay=0.8"]],
                         ids=["plain", "mid-warm-up", "fused-adam", "weight-average"])
def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path, smoke_data, train_cli, extra):
    """The second case resumes at step 8 of a 10-step warm-up: its rates (in metrics.jsonl) must continue it."""
    overrides = smoke_data + RESUME_OVERRIDES + extra
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    r = train_cli(whole, 1, overrides)
    assert r.returncode == 0, r.stderr[-2000:]

    r = train_cli(broken, 1, overrides, env={KILL_AT_STEP_ENV: str(KILL_STEP)})
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    partial = load_checkpoint(broken / "stage1" / "last.pt")
    assert (partial["step"], partial["epoch"], partial["extra"]["finished"]) == (8, 1, False)
    if not extra:  # the kill also cut a record short while it was appended to the wall-clock and timing logs
        for name in ("wallclock.jsonl", "timing.jsonl"):
            with open(broken / "stage1" / name, "a") as f:
                f.write('{"stage": 1, "epoch": 2, "st')

    r = train_cli(broken, 1, overrides, "--resume")
    assert r.returncode == 0, r.stderr[-2000:]
    for name in ("wallclock.jsonl", "timing.jsonl"):  # every line a whole record: the fragment was cut
        assert all(json.loads(line) for line in (broken / "stage1" / name).read_text().splitlines()), name
    a = load_checkpoint(whole / "stage1" / "last.pt")
    b = load_checkpoint(broken / "stage1" / "last.pt")
    assert b["step"] == a["step"] == 12
    assert a["optimizer"]["param_groups"][0].get("fused") is ("train.fused_adam=true" in extra or None)
    assert state_digest(a["model"]) == state_digest(b["model"])  # bit for bit
    if "train.stage1.ema_decay=0.8" in extra:  # the average and the trained weights both carried over the kill
        assert state_digest(a["train_model"]) == state_digest(b["train_model"]) != state_digest(a["model"])
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["metrics"] == b["metrics"]
    assert (whole / "stage1" / "metrics.jsonl").read_text() == (broken / "stage1" / "metrics.jsonl").read_text()
    # timing.jsonl: one record per epoch and process (6 steps an epoch); the killed process's unfinished
    # epoch wrote none, the resumed one ran the 4 steps after its checkpoint at step 8
    timing = [[json.loads(x) for x in (run / "stage1" / "timing.jsonl").read_text().splitlines()] for run in (whole, broken)]
    assert [[(t["epoch"], t["first_step"], t["steps"], t["resumed"]) for t in ts] for ts in timing] == [
        [(1, 1, 6, False), (2, 7, 6, False)], [(1, 1, 6, False), (2, 9, 4, True)]], timing


def test_ctrl_c_saves_the_step_it_stopped_at_and_resume_equals_an_uninterrupted_run(tmp_path, smoke_data, train_cli):
    """Ctrl-C after step 9 (a periodic checkpoint holds step 8): the trainer saves step 9 and says so,
    --resume says where it starts, and the run ends bit for bit as an uninterrupted one."""
    overrides = smoke_data + RESUME_OVERRIDES
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert train_cli(whole, 1, overrides).returncode == 0
    r = train_cli(broken, 1, overrides, env={INTERRUPT_AT_STEP_ENV: "9", "POSE3D_PROGRESS": ""})  # bars on
    assert r.returncode == 130, r.stderr[-2000:]
    assert f"stage 1: interrupted; {broken / 'stage1' / 'last.pt'} holds step 9 (epoch 2 of 2, step 3 of 6)" in r.stderr
    assert re.search(r"(?:^|[\r\n])stage 1: interrupted; ", r.stderr)  # on a line of its own, not after the bar
    partial = load_checkpoint(broken / "stage1" / "last.pt")
    assert (partial["step"], partial["epoch"], partial["extra"]["finished"]) == (9, 1, False)
    r = train_cli(broken, 1, overrides, "--resume")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resuming" in r.stderr and "at step 9 (epoch 2 of 2, step 3 of 6)" in r.stderr
    a, b = (load_checkpoint(run / "stage1" / "last.pt") for run in (whole, broken))
    assert b["step"] == a["step"] == 12 and state_digest(a["model"]) == state_digest(b["model"])
    assert a["metrics"] == b["metrics"]
    assert (whole / "stage1" / "metrics.jsonl").read_text() == (broken / "stage1" / "metrics.jsonl").read_text()


def test_ctrl_c_after_an_epochs_last_step_inside_the_warm_up_resumes_with_its_rate(tmp_path, smoke_data, train_cli):
    """Stopped right after step 6, the first epoch's last, of a 10-step warm-up: the resumed process has no
    step left in that epoch, and its epoch record and optimiser must keep the rate of step 6, as an
    uninterrupted run's do, not take the next step's."""
    overrides = smoke_data + RESUME_OVERRIDES + ["train.stage1.warmup_steps=10"]
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert train_cli(whole, 1, overrides).returncode == 0
    r = train_cli(broken, 1, overrides, env={INTERRUPT_AT_STEP_ENV: "6"})
    assert r.returncode == 130, r.stderr[-2000:]
    assert load_checkpoint(broken / "stage1" / "last.pt")["step"] == 6
    r = train_cli(broken, 1, overrides, "--resume")
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = (load_checkpoint(run / "stage1" / "last.pt") for run in (whole, broken))
    assert state_digest(a["model"]) == state_digest(b["model"])
    assert a["optimizer"]["param_groups"][0]["lr"] == b["optimizer"]["param_groups"][0]["lr"]
    assert (whole / "stage1" / "metrics.jsonl").read_text() == (broken / "stage1" / "metrics.jsonl").read_text()


def test_a_fresh_start_over_a_finished_stage_moves_its_checkpoint_aside_first(tmp_path, smoke_data, train_cli):
    """--overwrite killed before its first checkpoint left the old run's last.pt beside the new config.yaml
    and logs, so the folder described two runs; now the old weights move to previous.pt when the new run starts."""
    overrides = smoke_data + RESUME_OVERRIDES
    run = tmp_path / "run"
    assert train_cli(run, 1, overrides).returncode == 0
    old = state_digest(load_checkpoint(run / "stage1" / "last.pt")["model"])
    r = train_cli(run, 1, overrides + ["train.stage1.lr=0.002"], "--overwrite", env={KILL_AT_STEP_ENV: "2"})
    assert r.returncode == -signal.SIGKILL
    assert not (run / "stage1" / "last.pt").exists()
    assert state_digest(load_checkpoint(run / "stage1" / PREVIOUS_NAME)["model"]) == old  # kept, not lost
    assert "lr: 0.002" in (run / "stage1" / "config.yaml").read_text()
    r = train_cli(run, 1, overrides + ["train.stage1.lr=0.002"])  # nothing to resume or overwrite: starts
    assert r.returncode == 0, r.stderr[-2000:]


def test_the_interrupt_guard_restores_the_handler_and_leaves_an_ignored_sigint_alone():
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(RuntimeError):
        with InterruptGuard(active=True) as guard:
            assert guard.active and signal.getsignal(signal.SIGINT) == guard._handler
            raise RuntimeError("a failure inside training")
    assert signal.getsignal(signal.SIGINT) == before
    with InterruptGuard(active=False) as guard:  # several processes: Ctrl-C stops at once, as before
        assert signal.getsignal(signal.SIGINT) == before
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a background job: SIGINT stays ignored
    try:
        with InterruptGuard(active=True) as guard:
            assert not guard.active and signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_resume_refuses_another_config(tmp_path, smoke_data, train_cli):
    overrides = smoke_data + RESUME_OVERRIDES
    r = train_cli(tmp_path / "run", 1, overrides, env={KILL_AT_STEP_ENV: "5"})
    assert r.returncode == -signal.SIGKILL
    r = train_cli(tmp_path / "run", 1, overrides + ["train.stage1.lr=0.01"], "--resume")
    assert r.returncode == 2 and "train.stage1.lr" in r.stderr and "Traceback" not in r.stderr


def test_a_new_run_removes_what_killed_writes_left_in_its_stage_folder(tmp_path, smoke_data, train_cli):
    """A kill -9 during a checkpoint write leaves `.last.pt.<pid>.tmp` (weights and optimiser, full size):
    the next run of the stage removes it; a live process's own temporary file would be kept."""
    from pose3dlib.engine.atomic_io import target_of_temporary

    overrides = smoke_data + RESUME_OVERRIDES
    stage = tmp_path / "run" / "stage1"
    assert train_cli(tmp_path / "run", 1, overrides, env={KILL_AT_STEP_ENV: "5"}).returncode == -signal.SIGKILL
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    pid = int(dead.stdout)  # a process that has exited
    left = [stage / f".{name}.{pid}.tmp" for name in ("last.pt", "config.yaml", "metrics.jsonl")]
    assert [target_of_temporary(p) for p in left] == [(stage / n, pid) for n in ("last.pt", "config.yaml", "metrics.jsonl")]
    for path in left:
        path.write_bytes(b"half a file")
    assert train_cli(tmp_path / "run", 1, overrides, "--resume").returncode == 0
    assert not [p for p in left if p.exists()]


def test_resume_refuses_another_process_count_or_epoch_length_and_starts_afresh_without_a_checkpoint(
        tmp_path, smoke_data, train_cli):
    """A checkpoint from 2 processes, from data with another number of steps per epoch (a regenerated
    set), or trained in bf16 where this run would continue in float32 (another kind of CPU under
    bf16_on_cpu: auto), is refused by --resume naming both; --resume where no checkpoint is says it starts over."""
    overrides = smoke_data + RESUME_OVERRIDES
    last = tmp_path / "run" / "stage1" / "last.pt"
    assert train_cli(tmp_path / "run", 1, overrides, env={KILL_AT_STEP_ENV: "5"}).returncode == -signal.SIGKILL
    saved = load_checkpoint(last)
    assert saved["extra"]["steps_per_epoch"] == 6  # 48 samples, batch 8
    assert saved["extra"]["precision"] == {"device": "cpu", "bf16": False}  # the smoke profile: float32
    for key, value, message in (("world_size", 2, f"{last} was made by 2 process(es), this run has 1"),
                                ("steps_per_epoch", 7, f"{last} has 7 steps per epoch, the data now give 6"),
                                ("precision", {"device": "cpu", "bf16": True},
                                 f"{last}: it was trained on cpu in bf16 and would continue on cpu in float32")):
        edited = load_checkpoint(last)
        edited["extra"][key] = value
        save_checkpoint(last, edited)
        r = train_cli(tmp_path / "run", 1, overrides, "--resume")
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
        if key in ("precision", "world_size"):  # a notebook (train_or_load) starts such a stage again instead of failing
            from pose3dlib.config import load_config
            from pose3dlib.engine import runs

            cfg = load_config("configs/smoke.yaml", overrides)
            assert runs.stage_status(cfg, 1, tmp_path / "run") == "stale"
            assert runs.stale_reasons(cfg, 1, tmp_path / "run") == [
                "it was trained on cpu in bf16 and would continue on cpu in float32, mixing two numerics in one stage"
                if key == "precision" else "it was trained by 2 process(es) and would continue in 1"]
            edited["extra"]["finished"] = True  # a finished network is reused whatever it ran on
            save_checkpoint(last, edited)
            assert runs.stage_status(cfg, 1, tmp_path / "run") == "finished"
            if key == "world_size":  # and --resume of it has nothing to continue: it says so, not "process(es)"
                r = train_cli(tmp_path / "run", 1, overrides, "--resume")
                assert r.returncode == 0 and "process(es)" not in r.stderr, r.stderr[-2000:]
        save_checkpoint(last, saved)
    r = train_cli(tmp_path / "fresh", 1, overrides, "--resume")
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"stage 1: no checkpoint at {tmp_path / 'fresh' / 'stage1' / 'last.pt'}; starting the stage from the beginning" in r.stderr
    assert load_checkpoint(tmp_path / "fresh" / "stage1" / "last.pt")["step"] == 12


# ----------------------------------------------------------------------------- kill during a checkpoint write

KILL_IN_SAVE = textwrap.dedent("""
    import os, signal, sys, torch
    from pose3dlib.engine.checkpoint import make_checkpoint, save_checkpoint
    path = sys.argv[1]
    real_save = torch.save
    def half_then_die(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        f.flush()
        f.truncate(f.tell() // 2)  # half the bytes are on disk ...
        os.kill(os.getpid(), signal.SIGKILL)  # ... when the process dies
    torch.save = half_then_die
    save_checkpoint(path, make_checkpoint(model_state={"w": torch.full((1000,), 2.0)}, config={}, step=2))
""")


def test_kill_during_checkpoint_write_keeps_the_previous_one(tmp_path):
    path = tmp_path / "stage1" / "last.pt"
    save_checkpoint(path, make_checkpoint(model_state={"w": torch.full((1000,), 1.0)}, config={}, step=1))
    r = subprocess.run([sys.executable, "-c", KILL_IN_SAVE, str(path)], check=False, capture_output=True, text=True, timeout=60)
    assert r.returncode == -signal.SIGKILL, r.stderr
    leftovers = [p for p in path.parent.iterdir() if p != path]
    assert leftovers, "the killed writer should have left its half-written temporary file"
    ckpt = load_checkpoint(path)  # the previous checkpoint, intact
    assert ckpt["step"] == 1 and torch.equal(ckpt["model"]["w"], torch.full((1000,), 1.0))


def test_failed_checkpoint_write_removes_its_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    atomic_torch_save({"a": torch.ones(3)}, path)

    def disk_full(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError):
        atomic_torch_save({"a": torch.zeros(3)}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(3))


# ----------------------------------------------------------------------------- non-finite losses

def _fit_poisoned_at(step: int, poison, smoke_data, tmp_path, monkeypatch) -> tuple[str, dict]:
    """Stage 1 of the smoke run (epochs of 6 steps, checkpoints every 4) with `poison(loss, terms, outputs)
    -> (loss, terms)` applied to the total loss of step `step`; the NonFiniteLossError's message and last.pt."""
    import pose3dlib.losses
    from pose3dlib.config import load_config
    from pose3dlib.engine.train import NonFiniteLossError, fit

    real_total = pose3dlib.losses.total_loss
    calls = {"n": 0}

    def poisoned(outputs, batch, **weights):
        loss, terms = real_total(outputs, batch, **weights)
        calls["n"] += 1
        return poison(loss, dict(terms), outputs) if calls["n"] == step else (loss, terms)

    monkeypatch.setattr(pose3dlib.losses, "total_loss", poisoned)
    torch.set_num_threads(1)
    cfg = load_config("configs/smoke.yaml", smoke_data + RESUME_OVERRIDES)
    run = tmp_path / "run"
    with pytest.raises(NonFiniteLossError) as err:
        fit(cfg, 1, run)
    ckpt = load_checkpoint(run / "stage1" / "last.pt")
    assert torch.isfinite(torch.cat([v.float().flatten() for v in ckpt["model"].values()])).all()
    return str(err.value), ckpt


@pytest.mark.parametrize("bad_value, term", [(float("nan"), "depth"), (float("inf"), "heatmap")])
def test_nonfinite_loss_stops_naming_step_and_term_and_keeps_last_good_checkpoint(
        tmp_path, smoke_data, monkeypatch, bad_value, term):
    def poison(loss, terms, outputs):
        terms[term] = terms[term] + bad_value
        return loss + bad_value, terms

    bad_step = 7  # checkpoints at steps 4 and 6 (end of epoch 1) exist by then
    msg, ckpt = _fit_poisoned_at(bad_step, poison, smoke_data, tmp_path, monkeypatch)
    assert f"step {bad_step}" in msg and repr(term) in msg and "\n" not in msg
    assert ckpt["step"] == 6


def test_a_nonfinite_gradient_under_a_finite_loss_is_not_saved(tmp_path, smoke_data, monkeypatch):
    """A finite loss whose gradient overflows: the update writes NaN into the weights, and the periodic
    checkpoint right after that step must not save them (the next step's loss would come too late)."""
    def poison(loss, terms, outputs):
        t = outputs["heatmaps"][-1].sum()
        return loss + torch.sqrt(t - t.detach()), terms  # adds 0, with an infinite gradient

    bad_step = 8  # a periodic checkpoint step (every 4 steps; epochs of 6): 4 and 6 were saved before
    msg, ckpt = _fit_poisoned_at(bad_step, poison, smoke_data, tmp_path, monkeypatch)
    assert f"step {bad_step} (epoch 2)" in msg and "non-finite values in weight " in msg and "keeps step 6" in msg
    assert "\n" not in msg and ckpt["step"] == 6


def test_data_workers_leave_ctrl_c_to_the_training_process():
    """A terminal's Ctrl-C reaches every process of the job: the workers ignore it, so the trainer's own
    handler saves at the step boundary instead of the loader failing on a worker that exited."""
    import multiprocessing

    from pose3dlib.engine.train import epoch_loader, ignore_interrupt

    loader = epoch_loader(list(range(8)), 2, [0, 1, 2, 3], num_workers=1, pin_memory=False)  # what training iterates
    assert loader.worker_init_fn is ignore_interrupt and [b.tolist() for b in loader] == [[0, 1], [2, 3]]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1, initializer=ignore_interrupt, initargs=(0,)) as pool:
        assert pool.apply(signal.getsignal, (signal.SIGINT,)) == signal.SIG_IGN
    assert signal.getsignal(signal.SIGINT) != signal.SIG_IGN  # this process keeps its own handler


def test_resume_refuses_a_stage_whose_start_checkpoint_changed(tmp_path):
    """Stage 1 trained again after Stage 2 was interrupted: continuing Stage 2 would mix two starts."""
    from pose3dlib.engine.errors import ConfigError
    from pose3dlib.engine.runs import file_digest
    from pose3dlib.engine.train import _check_resumed_start

    run = tmp_path / "run"
    first = run / "stage1" / "last.pt"
    first.parent.mkdir(parents=True)
    first.write_bytes(b"stage 1, first training")
    last = run / "stage2" / "last.pt"
    ckpt = {"extra": {"init_from": str(first), "init_digest": file_digest(first)}}
    _check_resumed_start(ckpt, last, 2, run, None)  # the same start: fine
    other = tmp_path / "other.pt"
    other.write_bytes(first.read_bytes())
    _check_resumed_start(ckpt, last, 2, run, other)  # --init naming a copy of it: fine
    first.write_bytes(b"stage 1, trained again")
    with pytest.raises(ConfigError, match=r"--resume: .*stage2/last\.pt was started from .*stage1/last\.pt, not from "
                                          r".*stage1/last\.pt as it is now; resume with --init"):
        _check_resumed_start(ckpt, last, 2, run, None)
    _check_resumed_start(ckpt, last, 2, run, other)  # the checkpoint it started from, given by hand: fine
    first.unlink()
    _check_resumed_start(ckpt, last, 2, run, None)  # gone: not compared (the resumed run does not read it)
    scratch = {"extra": {"init_from": None, "init_digest": None}}  # a Stage 1 trained from scratch
    assert _check_resumed_start(scratch, run / "stage1" / "last.pt", 1, run, None) is None
    with pytest.raises(ConfigError, match=r"stage1/last\.pt was started from None, not from .*other\.pt"):
        _check_resumed_start(scratch, run / "stage1" / "last.pt", 1, run, other)  # an --init it never had


def test_restoring_a_stage_for_resume_checks_its_start(tmp_path):
    """`_restore` (what `train --resume` runs) makes the start-checkpoint check; `stale_reasons` says the same."""
    from pose3dlib.config import config_to_dict, load_config
    from pose3dlib.engine.distributed import DistInfo
    from pose3dlib.engine.errors import ConfigError
    from pose3dlib.engine.runs import file_digest, stale_reasons
    from pose3dlib.engine.train import _restore

    cfg = load_config("configs/smoke.yaml")
    run = tmp_path / "run"
    first = run / "stage1" / "last.pt"
    save_checkpoint(first, make_checkpoint(model_state={}, config=config_to_dict(cfg), stage=1, extra={"finished": True}))
    save_checkpoint(run / "stage2" / "last.pt", make_checkpoint(
        model_state={}, config=config_to_dict(cfg), stage=2, step=3,
        extra={"finished": False, "init_from": str(first), "init_digest": file_digest(first)}))
    ckpt, _, digest = _restore(cfg, 2, run, True, None, False, DistInfo())
    assert ckpt["step"] == 3 and digest == file_digest(first) and stale_reasons(cfg, 2, run) == []
    save_checkpoint(first, make_checkpoint(model_state={}, config=config_to_dict(cfg), stage=1, step=9,
                                           extra={"finished": True}))  # Stage 1 trained again
    with pytest.raises(ConfigError, match=r"stage2/last\.pt was started from .*stage1/last\.pt, not from"):
        _restore(cfg, 2, run, True, None, False, DistInfo())
    assert stale_reasons(cfg, 2, run) == [f"its start checkpoint {first} is not the one it was trained from"]


def test_a_fresh_stage_notes_a_previous_stage_trained_with_other_settings(tmp_path, capsys):
    """`train --stage N` from the run's own Stage N-1 says so when that checkpoint is not the one this
    config would train (its settings; the seed and later stages' settings left out), naming the keys,
    and still starts (per-stage --set is a way of working); --init takes a checkpoint without a note."""
    from pose3dlib.config import config_to_dict, load_config
    from pose3dlib.engine.distributed import DistInfo
    from pose3dlib.engine.train import _restore

    cfg = load_config("configs/smoke.yaml")
    run = tmp_path / "run"
    first, second = run / "stage1" / "last.pt", run / "stage2" / "last.pt"

    def trained(path, stage, *overrides):
        config = config_to_dict(load_config("configs/smoke.yaml", list(overrides)))
        save_checkpoint(path, make_checkpoint(model_state={}, config=config, stage=stage, extra={"finished": True}))

    for overrides in ((), ("seed=7",), ("train.stage2.lr=0.5", "train.stage3.epochs=9")):  # the same recipe for stage 1
        trained(first, 1, *overrides)
        assert _restore(cfg, 2, run, False, None, False, DistInfo())[1] == first
        assert capsys.readouterr().err == ""
    trained(first, 1, "train.stage1.lr=0.5")
    assert _restore(cfg, 2, run, False, None, False, DistInfo())[1] == first
    note = capsys.readouterr().err
    assert re.fullmatch(r"stage 2: note: it starts from .*stage1/last\.pt, which was trained with other settings or data "
                        r"than this config gives stage 1 \(train\.stage1\.lr: 0\.5 -> [^;]*\)\. "
                        r"If that was not meant, train stage 1 again \(.*--stage 1 .*--overwrite.*\); --init .*stage1/last\.pt "
                        r"starts from it without this note\n", note), note
    # another network: --init cannot start this config's from it either, so the note does not offer it
    trained(first, 1, "train.stage1.lr=0.5", "model.num_features=8")
    assert _restore(cfg, 2, run, False, None, False, DistInfo())[1] == first
    note = capsys.readouterr().err
    assert re.fullmatch(r"stage 2: note: it starts from .*stage1/last\.pt, which was trained with other settings or data "
                        r"than this config gives stage 1 \(model\.num_features: 8 -> \d+; train\.stage1\.lr: 0\.5 -> [^;]*\)\. "
                        r"If that was not meant, train stage 1 again \(.*--stage 1 .*--overwrite.*\)\n", note), note
    assert _restore(cfg, 2, run, False, first, False, DistInfo())[1] == first  # --init: taken as it is
    assert capsys.readouterr().err == ""
    assert _restore(cfg, 2, run, False, None, False, DistInfo(rank=1, world_size=2))[1] == first
    assert capsys.readouterr().err == ""  # said once, by the main process
    trained(second, 2, "train.stage2.lr=0.5")
    _restore(cfg, 3, run, False, None, False, DistInfo())
    assert "stage 3: note: it starts from" in (err := capsys.readouterr().err) and "train.stage2.lr: 0.5 ->" in err


def test_a_stage_gives_the_process_its_torch_settings_back(tmp_path, smoke_data):
    """fit() sets threads and deterministic mode for the stage (smoke: 1 thread, deterministic); the
    notebook's later cells, or a second stage in the process, get the settings they had before."""
    from pose3dlib.config import load_config
    from pose3dlib.engine.train import fit

    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
              torch.utils.deterministic.fill_uninitialized_memory)
    try:
        torch.set_num_threads(2)
        torch.use_deterministic_algorithms(False)
        torch.utils.deterministic.fill_uninitialized_memory = True
        cfg = load_config("configs/smoke.yaml", smoke_data + ["train.stage1.epochs=1"])
        assert cfg.train.num_threads == 1 and cfg.train.deterministic  # what the stage sets
        fit(cfg, 1, tmp_path / "run")
        assert torch.get_num_threads() == 2 and not torch.are_deterministic_algorithms_enabled()
        assert torch.utils.deterministic.fill_uninitialized_memory is True
        # and a config without deterministic mode turns it off for its stage even after one with it
        torch.use_deterministic_algorithms(True)
        from pose3dlib.engine.train import configure_torch

        configure_torch(load_config("configs/smoke.yaml", ["train.deterministic=false"]).train, torch.device("cpu"))
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1])
        torch.utils.deterministic.fill_uninitialized_memory = before[2]

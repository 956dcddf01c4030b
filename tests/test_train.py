"""pose3dlib.engine.train: schedule pieces, sharding, validation numbers, one trainer step (CPU, and CUDA
where present), and smoke runs of the three stages."""
from __future__ import annotations

import json
import math
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pose3dlib.config import StageConfig, TrainConfig, load_config
from pose3dlib.engine.distributed import shard_indices, state_digest
from pose3dlib.engine.errors import ConfigError
from pose3dlib.engine.runlog import MetricsLog, drop_torn_line, read_metrics
from pose3dlib.engine.train import (
    SpeedSwitches,
    build_optimizer,
    config_differences,
    configure_torch,
    lr_at_epoch,
    lr_at_step,
    resolve_device,
    unused_lr_drops,
)
from pose3dlib.engine.validation import depth_mpjpe_mm, pck_hits, pckh_hits, shown_metrics
from pose3dlib.model import build_model, preprocess
from pose3dlib.skeleton import DEPTH_ROOT, MPII16
from pose3dlib.tools.bench.measure import make_train_step, random_batch

PY = sys.executable


NEEDS_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


# ----------------------------------------------------------------------------- one trainer step

@pytest.mark.parametrize(("device", "switches"), [
    # the CPU case runs everywhere, so CI exercises the calls the GPU case makes (make gpu-check runs it there)
    pytest.param("cpu", SpeedSwitches(channels_last=True), id="cpu-fp32"),
    pytest.param("cuda", SpeedSwitches(channels_last=True, bf16=True), marks=NEEDS_CUDA, id="cuda-bf16"),
])
def test_trainer_steps_lower_the_loss_of_a_fixed_batch(device, switches):
    cfg = load_config("configs/smoke.yaml")
    torch.manual_seed(0)
    step = make_train_step(build_model(cfg.model), cfg, torch.device(device), switches)
    batch = random_batch(cfg, 8, torch.device(device))
    losses = [step(batch)["loss"] for _ in range(30)]
    assert all(math.isfinite(x) for x in losses), losses
    assert sum(losses[-5:]) / 5 < 0.9 * losses[0], losses


@pytest.fixture
def torch_globals_restored():
    """Put back the process-wide settings that configure_torch changes."""
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled(), torch.utils.deterministic.fill_uninitialized_memory)
    yield
    torch.set_num_threads(before[0])
    torch.use_deterministic_algorithms(before[1], warn_only=before[2])
    torch.utils.deterministic.fill_uninitialized_memory = before[3]


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16"])
def test_deterministic_training_reads_no_unwritten_memory(bf16, torch_globals_restored):
    """For one CPU training process (checked_unfilled) configure_torch keeps deterministic algorithms
    but stops filling new tensors with NaN. That is only safe if no operation of the step (forward,
    losses, backward, Adam) or of an evaluation forward reads memory before writing it: with the fill
    on, such a read would carry NaN into the weights or outputs; here both settings give
    bitwise-equal weights and eval outputs (batch 4 here; the cpu recipe's batch 16 was checked end
    to end by a fresh-clone `make reproduce`, docs/benchmarks.md)."""
    cpu = torch.device("cpu")
    cfg = load_config("configs/cpu.yaml")
    configure_torch(cfg.train, cpu)  # DDP, compile: the fill stays
    assert torch.are_deterministic_algorithms_enabled() and torch.utils.deterministic.fill_uninitialized_memory
    configure_torch(cfg.train, cpu, checked_unfilled=True)  # what one CPU training process sets
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.utils.deterministic.fill_uninitialized_memory is False
    results = {}
    for fill in (True, False):
        torch.utils.deterministic.fill_uninitialized_memory = fill
        if fill:  # with the fill on, new memory reads as NaN, so a read of it would show
            assert torch.isnan(torch.empty(8)).all()
        torch.manual_seed(0)
        model = build_model(cfg.model)
        step = make_train_step(model, cfg, cpu, SpeedSwitches(channels_last=True, bf16=bf16))
        losses = [step(random_batch(cfg, 4, cpu, seed=i))["loss"] for i in range(3)]
        model.eval()
        images = preprocess(random_batch(cfg, 2, cpu, seed=9)["image"], cfg.model.input_format)
        images = images.contiguous(memory_format=torch.channels_last)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(images)
        results[fill] = (state_digest(model.state_dict()), losses, out["heatmaps"][-1].float(), out["depth"].float())
    assert all(math.isfinite(x) for x in results[True][1])
    assert results[True][:2] == results[False][:2]
    assert torch.equal(results[True][2], results[False][2]) and torch.equal(results[True][3], results[False][3])


@pytest.mark.parametrize(("optimizer", "fused", "momentum", "bf16"), [
    ("adam", True, 0.0, False), ("adam", True, 0.0, True), ("adam", False, 0.0, False), ("rmsprop", False, 0.0, False),
    ("rmsprop", False, 0.9, False),
], ids=["adam-fused", "adam-fused-bf16", "adam-loop", "rmsprop", "rmsprop-momentum"])
def test_stage1_steps_without_the_depth_head_in_backward_train_the_same_weights(optimizer, fused, momentum, bf16,
                                                                               monkeypatch, torch_globals_restored):
    """Stage 1's losses do not read the depth, so its steps run the depth head without autograd
    (`depth_head_trains`). That is only allowed because the weights come out bitwise as from steps
    through the head: zero gradients leave Adam's and RMSprop's weights unchanged, and BatchNorm's
    statistics in the head still update. Compared here with the head forced into the backward pass."""
    import pose3dlib.engine.train as train_module
    from pose3dlib.engine.train import train_step

    cpu = torch.device("cpu")
    cfg = load_config("configs/cpu.yaml", [f"train.optimizer={optimizer}", f"train.fused_adam={fused}",
                                           f"train.momentum={momentum}"])
    configure_torch(cfg.train, cpu, checked_unfilled=True)
    weights = cfg.train.stage1.loss_weights()
    assert weights["depth"] == 0 and weights["geometric"] == 0
    torch.manual_seed(0)
    init = build_model(cfg.model).state_dict()  # the weights both runs below start from
    head_bn = "depth_head.levels.0.0.bn1.running_mean"
    real = train_module.depth_head_trains
    results = {}
    for forced in (True, False):
        torch.manual_seed(0)
        model = build_model(cfg.model).to(memory_format=torch.channels_last).train()
        optimizer_ = build_optimizer(model.parameters(), cfg.train, 1e-3)
        decisions = []

        def decide(*args, forced=forced, decisions=decisions):
            decisions.append(real(*args))
            return True if forced else decisions[-1]

        monkeypatch.setattr(train_module, "depth_head_trains", decide)
        losses = [train_step(model, optimizer_, random_batch(cfg, 4, cpu, seed=i), input_format=cfg.model.input_format,
                             switches=SpeedSwitches(channels_last=True, bf16=bf16), weights=weights) for i in range(3)]
        assert decisions == [False] * 3  # Stage 1 in one process without weight decay: no backward through the head
        state = model.state_dict()
        assert not torch.equal(state[head_bn], init[head_bn])  # the head ran forward and its statistics moved
        assert torch.equal(state["depth_head.linear.weight"], init["depth_head.linear.weight"])  # zero gradients
        results[forced] = (state_digest(state), losses)
    assert all(math.isfinite(x["loss"]) for x in results[False][1])
    assert results[True] == results[False]


def test_timing_records_each_epochs_first_step_on_its_own(tmp_path, smoke_data, monkeypatch):
    """timing.jsonl's first_step_seconds is the epoch's first train_step (where a GPU's warm-up lands), inside
    step_seconds: a first step made 0.6 s slower must show there, and not in the next epoch's first step."""
    from pose3dlib.engine import train as train_module

    real, calls = train_module.train_step, []

    def slow_first(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.6)
        return out

    monkeypatch.setattr(train_module, "train_step", slow_first)
    torch.set_num_threads(1)
    cfg = load_config("configs/smoke.yaml", [*smoke_data, "train.stage1.epochs=2"])
    train_module.fit(cfg, 1, tmp_path / "run")
    timing = [json.loads(x) for x in (tmp_path / "run" / "stage1" / "timing.jsonl").read_text().splitlines()]
    assert len(timing) == 2 and len(calls) == sum(t["steps"] for t in timing) > 2
    assert timing[0]["first_step_seconds"] >= 0.6, timing
    assert timing[1]["first_step_seconds"] < 0.6 <= timing[0]["step_seconds"], timing
    assert all(t["first_step_seconds"] <= t["step_seconds"] for t in timing), timing


def test_the_depth_head_stays_in_backward_where_a_loss_reads_it_or_its_weights_would_change():
    from pose3dlib.engine.distributed import DistInfo
    from pose3dlib.engine.train import depth_head_trains

    params = [torch.nn.Parameter(torch.zeros(2))]
    adam, decaying = torch.optim.Adam(params), torch.optim.Adam(params, weight_decay=1e-4)
    none = {"heatmap": 1.0, "depth": 0.0, "geometric": 0.0}
    eager = SpeedSwitches(channels_last=True, bf16=True)
    assert not depth_head_trains(none, adam, DistInfo(), eager)
    assert depth_head_trains({**none, "depth": 0.1}, adam, DistInfo(), eager)  # Stage 2
    assert depth_head_trains({**none, "geometric": 0.01}, adam, DistInfo(), eager)  # a geometric-only stage
    assert depth_head_trains(none, decaying, DistInfo(), eager)  # decay moves the head's weights without gradients
    assert depth_head_trains(none, torch.optim.Adam(params, eps=0.0), DistInfo(), eager)  # 0/0 with zero gradients
    assert depth_head_trains(none, adam, DistInfo(world_size=2), eager)  # DDP wants a gradient for every parameter
    assert depth_head_trains(none, adam, DistInfo(), SpeedSwitches(compile=True))  # not compared compiled
    model = build_model(load_config("configs/smoke.yaml").model).train()
    out = model(torch.zeros(2, 3, 64, 64), depth_grad=False)
    assert not out["depth"].requires_grad and out["heatmaps"][-1].requires_grad
    with torch.no_grad():  # depth_grad=True never turns autograd on where the caller has it off
        assert not model(torch.zeros(2, 3, 64, 64))["depth"].requires_grad


# ----------------------------------------------------------------------------- pure pieces

def test_lr_drops_at_the_configured_epochs():
    s = StageConfig(lr=1e-3, lr_drop_epochs=(2, 4), lr_drop_factor=0.5)
    assert [lr_at_epoch(s, e) for e in range(6)] == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4])


def test_lr_drops_that_never_come_are_named():
    """A drop at e applies from 0-based epoch e on: in a stage of N epochs a drop at N or later never comes."""
    assert unused_lr_drops(StageConfig(epochs=3, lr_drop_epochs=(2,)), 2) is None
    assert unused_lr_drops(StageConfig(epochs=3, lr_drop_epochs=()), 2) is None
    note = unused_lr_drops(StageConfig(epochs=3, lr_drop_epochs=(2, 3)), 2)
    assert note is not None and "train.stage2.lr_drop_epochs [2, 3]" in note and "epoch 3 never comes" in note
    assert "epoch 2," not in note  # the drop at 2 does come
    both = unused_lr_drops(StageConfig(epochs=1, lr_drop_epochs=(1, 25)), 3)
    assert both is not None and "epoch 1, 25 never come" in both and "a stage of 1 epoch " in both


@pytest.mark.parametrize("profile", ["smoke", "cpu", "paper"])
def test_the_shipped_schedules_have_no_drop_that_never_comes(profile):
    cfg = load_config(f"configs/{profile}.yaml")
    assert [unused_lr_drops(cfg.train.stage(n), n) for n in (1, 2, 3)] == [None, None, None]


def test_a_stage_prints_the_drops_that_never_come(tmp_path, smoke_data, capsys):
    from pose3dlib.engine.train import fit

    torch.set_num_threads(1)
    fit(load_config("configs/smoke.yaml", [*smoke_data, "train.stage1.lr_drop_epochs=[1]"]), 1, tmp_path / "late")
    assert "train.stage1.lr_drop_epochs [1]: the drop at epoch 1 never comes" in capsys.readouterr().err
    fit(load_config("configs/smoke.yaml", smoke_data), 1, tmp_path / "plain")
    assert "lr_drop_epochs" not in capsys.readouterr().err


def test_lr_warms_up_linearly_then_follows_the_epochs():
    s = StageConfig(lr=1e-3, lr_drop_epochs=(1,), warmup_steps=4)
    assert [lr_at_step(s, 0, k) for k in range(6)] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
    assert lr_at_step(s, 1, 2) == pytest.approx(1e-4 * 3 / 4)  # a warm-up longer than an epoch scales the drop too
    assert lr_at_step(s, 1, 4) == pytest.approx(1e-4)
    none = StageConfig(lr=1e-3, lr_drop_epochs=(1,))
    assert [lr_at_step(none, e, k) for e, k in ((0, 0), (1, 0))] == pytest.approx([1e-3, 1e-4])


def test_cosine_schedule_decays_from_lr_to_its_floor_over_the_stage():
    s = StageConfig(epochs=2, lr=1e-3, lr_schedule="cosine")
    got = [lr_at_step(s, k // 4, k, 4) for k in range(9)]
    assert got[0] == pytest.approx(1e-3) and got[4] == pytest.approx(5e-4)  # halfway: half the rate
    assert got[2] == pytest.approx(1e-3 * (1 + math.cos(math.pi / 4)) / 2)
    assert got[8] == pytest.approx(0.0, abs=1e-15)  # after the last step: the floor
    assert all(a > b for a, b in zip(got, got[1:], strict=False))  # falls at every step, across the epoch boundary
    floor = StageConfig(epochs=1, lr=1e-3, lr_schedule="cosine", lr_min_factor=0.1)
    assert lr_at_step(floor, 0, 10, 10) == pytest.approx(1e-4)
    assert lr_at_step(floor, 0, 5, 10) == pytest.approx(1e-4 + 9e-4 / 2)
    warm = StageConfig(epochs=1, lr=1e-3, lr_schedule="cosine", warmup_steps=4)
    assert lr_at_step(warm, 0, 1, 100) == pytest.approx(1e-3 * (1 + math.cos(math.pi / 100)) / 2 * 2 / 4)  # warm-up x cosine
    with pytest.raises(ValueError, match="steps per epoch"):
        lr_at_step(s, 0, 0)


def test_cosine_schedule_settings_are_checked_against_each_other():
    with pytest.raises(ConfigError, match=r"'train.stage2.lr_drop_epochs': expected \[\] with train.stage2.lr_schedule 'cosine'"):
        load_config("configs/cpu.yaml", ["train.stage2.lr_schedule=cosine"])
    with pytest.raises(ConfigError, match="train.stage1.lr_schedule"):
        load_config("configs/cpu.yaml", ["train.stage1.lr_schedule=linear"])
    with pytest.raises(ConfigError, match="'train.stage3.lr_min_factor': expected 0 with train.stage3.lr_schedule 'step'"):
        load_config("configs/cpu.yaml", ["train.stage3.lr_min_factor=0.1"])  # read by the cosine only: not ignored silently
    cfg = load_config("configs/cpu.yaml", ["train.stage2.lr_schedule=cosine", "train.stage2.lr_drop_epochs=[]",
                                           "train.stage2.lr_min_factor=0.1"])
    assert cfg.train.stage2.lr_schedule == "cosine" and cfg.train.stage1.lr_schedule == "step"


def test_a_cosine_stage_trains_at_the_schedules_rate(tmp_path, smoke_data, torch_globals_restored):
    """Every logged step of a two-epoch cosine stage used lr_at_step's rate for that step."""
    from pose3dlib.engine.train import fit

    torch.set_num_threads(1)
    cfg = load_config("configs/smoke.yaml", [*smoke_data, "train.stage1.epochs=2", "train.stage1.lr_schedule=cosine"])
    fit(cfg, 1, tmp_path / "cos")
    train = [r for r in read_metrics(tmp_path / "cos" / "stage1" / "metrics.jsonl") if r["kind"] == "train"]
    per_epoch = sum(1 for r in train if r["epoch"] == 1)
    assert per_epoch >= 2 and len(train) == 2 * per_epoch  # the smoke profile logs every step
    expected = [lr_at_step(cfg.train.stage1, r["epoch"] - 1, r["step"] - 1, per_epoch) for r in train]
    assert [r["lr"] for r in train] == pytest.approx(expected, rel=1e-12)
    assert train[0]["lr"] == pytest.approx(cfg.train.stage1.lr) and train[-1]["lr"] < 0.05 * cfg.train.stage1.lr


def test_optimizers_follow_the_config():
    params = [torch.nn.Parameter(torch.zeros(3))]
    rms = build_optimizer(params, TrainConfig(), 2.5e-4)
    assert isinstance(rms, torch.optim.RMSprop)
    g = rms.param_groups[0]
    assert (g["lr"], g["alpha"], g["eps"], g["momentum"], g["weight_decay"]) == (2.5e-4, 0.99, 1e-8, 0.0, 0.0)
    assert isinstance(build_optimizer(params, TrainConfig(optimizer="adam"), 1e-3), torch.optim.Adam)
    with pytest.raises(ConfigError, match="train.fused_adam"):
        build_optimizer(params, TrainConfig(optimizer="rmsprop", fused_adam=True), 1e-3)  # the fused kernel is Adam's only
    with pytest.raises(ConfigError, match="train.fused_adam.*rmsprop"):
        load_config(Path(__file__).parents[1] / "configs" / "paper.yaml", ["train.fused_adam=true"])


def test_fused_adam_is_the_same_algorithm_as_the_loop():
    """train.fused_adam changes the rounding, not the update: after 20 steps on a small regression
    the weights agree with the per-tensor loop's to float32 precision."""
    def run(cfg: TrainConfig) -> torch.Tensor:
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        opt = build_optimizer(net.parameters(), cfg, 1e-2)
        assert opt.defaults["fused"] is (True if cfg.fused_adam else None)
        x, y = torch.randn(64, 5), torch.randn(64, 1)
        for _ in range(20):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
            opt.step()
        return torch.cat([p.detach().flatten() for p in net.parameters()])
    loop, fused = run(TrainConfig(optimizer="adam")), run(TrainConfig(optimizer="adam", fused_adam=True))
    torch.manual_seed(0)
    start = torch.cat([p.detach().flatten() for p in torch.nn.Sequential(
        torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).parameters()])
    assert (loop - start).abs().max() > 0.05  # the steps moved the weights
    torch.testing.assert_close(fused, loop, rtol=1e-5, atol=1e-6)


def test_device_auto_is_cpu_without_cuda():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


def test_devices_this_machine_lacks_are_named_before_any_work(monkeypatch):
    with pytest.raises(ConfigError, match=r"^--device: 'mps': pose3d runs on the CPU or CUDA only"):
        resolve_device("mps", key="--device")
    with pytest.raises(ConfigError, match=r"^train.device: 'gpu0' is not a device"):
        resolve_device("gpu0")
    # A CUDA index past the machine's devices (pretend one GPU, so this runs without one).
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match=re.escape("train.device is 'cuda:1' but this machine has 1 CUDA device (cuda:0)")):
        resolve_device("cuda:1")
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda")


def test_config_differences_names_dotted_keys():
    a = {"train": {"batch_size": 8, "stage1": {"lr": 1e-3}}, "seed": 0}
    b = {"train": {"batch_size": 8, "stage1": {"lr": 2e-3}}, "seed": 1}
    assert config_differences(a, b) == ["seed: 0 -> 1", "train.stage1.lr: 0.001 -> 0.002"]
    assert config_differences(a, a) == []


@pytest.mark.parametrize("n, world", [(10, 1), (10, 2), (11, 2), (7, 3), (2, 3)])
def test_shards_cover_the_dataset_evenly_and_deterministically(n, world):
    shards = [shard_indices(n, seed=3, stage=1, epoch=2, rank=r, world_size=world) for r in range(world)]
    assert len({len(s) for s in shards}) == 1  # same count on every rank
    assert len(shards[0]) == math.ceil(n / world)
    assert set().union(*map(set, shards)) == set(range(n))  # every sample seen
    if n % world == 0:
        assert sorted(sum(shards, [])) == list(range(n))  # each exactly once
    assert shards == [shard_indices(n, seed=3, stage=1, epoch=2, rank=r, world_size=world) for r in range(world)]
    other = shard_indices(n, seed=3, stage=1, epoch=3, rank=0, world_size=world)
    assert n < 5 or other != shards[0]  # a new epoch reshuffles


def test_state_digest_sees_every_byte():
    a = {"w": torch.arange(6.0).reshape(2, 3), "n": torch.tensor(3)}
    b = {"w": a["w"].clone(), "n": torch.tensor(3)}
    assert state_digest(a) == state_digest(b)
    b["w"][1, 2] = torch.nextafter(b["w"][1, 2], torch.tensor(100.0))
    assert state_digest(a) != state_digest(b)


def test_metrics_log_resume_drops_records_after_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path)
    for step in range(1, 6):
        log.write("train", step=step, loss=1.0 / step)
    with open(path, "a") as f:
        f.write('{"kind": "train", "st')  # torn line from a kill mid-write
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3, 4, 5]
    MetricsLog(path, resume_step=3)
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3]
    MetricsLog(path)  # a fresh run starts an empty log
    assert read_metrics(path) == []


class _FakeSummaryWriter:
    """Stands in for torch.utils.tensorboard.SummaryWriter (the tensorboard package is an optional extra)."""

    made: list = []

    def __init__(self, log_dir, purge_step=None):
        self.log_dir, self.purge_step, self.scalars, self.closed = log_dir, purge_step, [], False
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        _FakeSummaryWriter.made.append(self)

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def close(self):
        self.closed = True


def test_tensorboard_curves_follow_the_records_fresh_resumed_and_absent(tmp_path, monkeypatch):
    """A fresh run clears the old curves; a resumed one keeps them and purges the steps after its
    checkpoint; scalars other than step/stage/epoch and booleans go to `<kind>/<name>`; without the
    tensorboard package (or on another rank) nothing is written and the folder is left alone."""
    import types

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=_FakeSummaryWriter))
    monkeypatch.setattr(_FakeSummaryWriter, "made", [])
    tb = tmp_path / "tb"
    tb.mkdir()
    (tb / "events.old").write_text("an older run's curves")
    log = MetricsLog(tmp_path / "metrics.jsonl", tensorboard_dir=tb)
    fresh = _FakeSummaryWriter.made[-1]
    assert not (tb / "events.old").exists() and (fresh.log_dir, fresh.purge_step) == (str(tb), None)
    log.write("train", step=5, stage=1, epoch=1, loss=0.25, lr=2, finite=True, name="x")
    assert fresh.scalars == [("train/loss", 0.25, 5), ("train/lr", 2, 5)]
    log.close()
    assert fresh.closed

    (tb / "events.kept").write_text("curves up to the checkpoint")
    MetricsLog(tmp_path / "metrics.jsonl", tensorboard_dir=tb, resume_step=250)
    assert (tb / "events.kept").exists() and _FakeSummaryWriter.made[-1].purge_step == 251

    MetricsLog(tmp_path / "metrics.jsonl", tensorboard_dir=tb, enabled=False)  # another rank
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # `import` raises ImportError
    quiet = MetricsLog(tmp_path / "metrics.jsonl", tensorboard_dir=tb)
    quiet.write("train", step=6, loss=0.5)
    assert len(_FakeSummaryWriter.made) == 2 and (tb / "events.kept").exists()
    assert [r["loss"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [0.5]


def test_a_torn_last_line_is_cut_and_whole_files_are_left_alone(tmp_path):
    path = tmp_path / "wallclock.jsonl"
    assert drop_torn_line(path) is False and not path.exists()  # no file: nothing made
    path.write_bytes(b"")
    assert drop_torn_line(path) is False and path.read_bytes() == b""
    whole = b'{"step": 1}\n{"step": 2}\n'
    path.write_bytes(whole)
    assert drop_torn_line(path) is False and path.read_bytes() == whole
    path.write_bytes(whole + b'{"st')
    assert drop_torn_line(path) is True and path.read_bytes() == whole
    path.write_bytes(b'{"st')  # the first record itself torn
    assert drop_torn_line(path) is True and path.read_bytes() == b""


def test_pck_hits_counts_valid_joints_within_a_tenth_of_the_crop():
    gt = torch.zeros(1, 16, 2)
    pred = gt.clone()
    pred[0, :, 0] = torch.linspace(0.0, 0.3, 16)  # errors 0 .. 0.3 normalised units
    valid = torch.ones(1, 16, dtype=torch.bool)
    valid[0, 0] = False
    expected = int(((pred[0, :, 0] < 0.2) & valid[0]).sum())  # 0.1 x crop side (2 units)
    assert pck_hits(pred, gt, valid) == (expected, 15)


def test_depth_mpjpe_is_zero_for_true_depth_and_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    gt_mm = torch.tensor(rng.normal(0, 300, (4, 16, 3)), dtype=torch.float32)
    s = 0.002  # weak perspective: normalised units per mm
    j2d = gt_mm[..., :2] * s + 0.1
    depth = (gt_mm[..., 2] - gt_mm[:, DEPTH_ROOT : DEPTH_ROOT + 1, 2]) * s
    assert depth_mpjpe_mm(j2d, depth, gt_mm).max() < 1e-2
    zero = torch.zeros_like(depth)
    # independent: flat skeleton (z = 0) scaled so its bone sum equals the GT's
    g = (gt_mm - gt_mm[:, DEPTH_ROOT : DEPTH_ROOT + 1]).numpy().astype(np.float64)
    flat = g.copy()
    flat[..., 2] = 0
    def bones(x):
        return sum(np.linalg.norm(x[:, a] - x[:, b], axis=-1) for a, b in MPII16.edges)
    flat *= (bones(g) / bones(flat))[:, None, None]
    expected = np.linalg.norm(flat - g, axis=-1).mean(-1)
    np.testing.assert_allclose(depth_mpjpe_mm(j2d, zero, gt_mm).numpy(), expected, rtol=1e-4)


# ----------------------------------------------------------------------------- command line

def _records(run_dir: Path, stage: int, kind: str) -> list[dict]:
    return [r for r in read_metrics(run_dir / f"stage{stage}" / "metrics.jsonl") if r["kind"] == kind]


def test_bad_set_key_exits_2_with_one_line(tmp_path, train_cli):
    r = train_cli(tmp_path / "run", 1, ["train.stage1.no_such_key=3"])
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no_such_key" in lines[0] and "Traceback" not in r.stderr


def test_stage2_without_stage1_names_the_missing_checkpoint(tmp_path, smoke_data, train_cli):
    r = train_cli(tmp_path / "run", 2, smoke_data)
    assert r.returncode == 2
    assert str(tmp_path / "run" / "stage1" / "last.pt") in r.stderr and "--stage 1" in r.stderr
    assert not (tmp_path / "run").exists()  # nothing written: no folder left holding only .lock


def test_a_missing_init_checkpoint_is_named_as_init_and_leaves_no_folder(tmp_path, smoke_data, train_cli):
    missing = tmp_path / "missing" / "file.pt"
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    r = train_cli(tmp_path / "run", 2, smoke_data, "--init", str(missing))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines == [f"error: --init {missing}: checkpoint not found"], r.stderr
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["notes.txt"]  # the run folder was there before
    r = train_cli(tmp_path / "new" / "run", 2, smoke_data, "--init", str(tmp_path))
    assert r.returncode == 2 and "--init" in r.stderr and "a folder" in r.stderr
    assert not (tmp_path / "new").exists()


def test_three_stages_chain_lower_their_loss_and_save_loadable_checkpoints(tmp_path, smoke_data, train_cli):
    from pose3dlib.config import config_from_dict
    from pose3dlib.engine.checkpoint import load_checkpoint
    from pose3dlib.model import load_model

    run = tmp_path / "run"
    overrides = smoke_data + ["train.log_every_steps=1", "train.stage1.epochs=2", "train.stage2.epochs=2",
                              "train.stage3.epochs=2", "train.stage3.lr=1e-3"]
    for stage in (1, 2, 3):
        r = train_cli(run, stage, overrides)
        assert r.returncode == 0, r.stderr[-2000:]
        ckpt = load_checkpoint(run / f"stage{stage}" / "last.pt")
        assert ckpt["stage"] == stage and ckpt["extra"]["finished"]
        cfg = config_from_dict(ckpt["config"])
        assert cfg.train.stage(stage).epochs == 2
        assert cfg.data.mpii_dir == str(Path(smoke_data[1].split("=", 1)[1]))
        model, _ = load_model(run / f"stage{stage}" / "last.pt")
        epochs = _records(run, stage, "epoch")
        assert len(epochs) == cfg.train.stage(stage).epochs
        assert epochs[-1]["loss"] < epochs[0]["loss"], (stage, [e["loss"] for e in epochs])
        vals = _records(run, stage, "val")
        assert vals[0]["step"] == 0 and vals[-1]["step"] == epochs[-1]["step"]
        timing = [json.loads(x) for x in (run / f"stage{stage}" / "timing.jsonl").read_text().splitlines()]
        assert [(t["epoch"], t["first_step"], t["resumed"]) for t in timing] == [
            (1, 1, False), (2, timing[0]["steps"] + 1, False)]
        assert sum(t["steps"] for t in timing) == ckpt["step"] and timing[0]["steps"] > 0
        # measured seconds: recorded for every part, finite and non-negative (their sizes are the benchmarks' business)
        seconds = [t[k] for t in timing for k in ("data_seconds", "step_seconds", "callback_seconds")]
        seconds.append(ckpt["extra"]["train_seconds"])
        assert all(isinstance(x, float) and math.isfinite(x) and x >= 0 for x in seconds), seconds
        # bookkeeping, not speed: the parts are measured inside the total, so they cannot add up to more
        assert sum(seconds[:-1]) <= seconds[-1] + 0.01, seconds  # no double counting
        # the epoch's first step (warm-up) is recorded on its own and counted inside step_seconds
        assert all(0 <= t["first_step_seconds"] <= t["step_seconds"] for t in timing), timing
        if stage > 1:  # started from the previous stage's weights
            prev = load_checkpoint(run / f"stage{stage - 1}" / "last.pt")
            assert ckpt["extra"]["init_from"] == str(run / f"stage{stage - 1}" / "last.pt")
            first_val_prev = _records(run, stage - 1, "val")[-1]
            assert vals[0]["pck"] == pytest.approx(first_val_prev["pck"])  # same weights, same val set
            assert prev["extra"]["finished"]
    depth_terms = [e["depth"] for e in _records(run, 2, "epoch")]
    assert depth_terms[-1] < depth_terms[0]
    # a finished stage is not trained again by --resume (nor its timing.jsonl touched)
    timing = (run / "stage3" / "timing.jsonl").read_text()
    r = train_cli(run, 3, overrides, "--resume")
    assert r.returncode == 0 and "already finished" in r.stderr
    assert (run / "stage3" / "timing.jsonl").read_text() == timing
    # and a plain re-run refuses to overwrite it
    r = train_cli(run, 3, overrides)
    assert r.returncode == 2 and "--resume" in r.stderr
    # --overwrite trains it afresh: an earlier run's epochs are forgotten
    r = train_cli(run, 3, [*overrides, "train.stage3.epochs=1"], "--overwrite")
    assert r.returncode == 0, r.stderr[-2000:]
    assert [json.loads(x)["epoch"] for x in (run / "stage3" / "timing.jsonl").read_text().splitlines()] == [1]


def test_a_stages_warmup_reaches_the_optimiser(tmp_path, smoke_data, train_cli):
    """train.stageN.warmup_steps: the logged learning rate of each step climbs lr / 3, 2 lr / 3, lr, then stays."""
    overrides = smoke_data + ["train.log_every_steps=1", "train.stage1.warmup_steps=3", "train.stage1.lr=3e-3"]
    r = train_cli(tmp_path / "run", 1, overrides)
    assert r.returncode == 0, r.stderr[-2000:]
    lrs = {rec["step"]: rec["lr"] for rec in _records(tmp_path / "run", 1, "train")}
    assert [lrs[k] for k in (1, 2, 3, 4, 5)] == pytest.approx([1e-3, 2e-3, 3e-3, 3e-3, 3e-3])


def test_bf16_on_cpu_is_opt_in_and_trains(tmp_path, smoke_data, train_cli):
    """train.bf16_on_cpu turns bf16 autocast on for CPU training: finite, falling loss, other weights than fp32."""
    from pose3dlib.engine.checkpoint import load_checkpoint

    overrides = smoke_data + ["train.log_every_steps=1", "train.stage1.epochs=2"]
    weights = {}
    for name, extra in (("fp32", []), ("bf16", ["train.bf16_on_cpu=true"])):
        r = train_cli(tmp_path / name, 1, overrides + extra)
        assert r.returncode == 0, r.stderr[-2000:]
        epochs = _records(tmp_path / name, 1, "epoch")
        assert all(math.isfinite(e["loss"]) for e in epochs) and epochs[-1]["loss"] < epochs[0]["loss"]
        weights[name] = load_checkpoint(tmp_path / name / "stage1" / "last.pt")["model"]
    assert any(not torch.equal(weights["fp32"][k], weights["bf16"][k]) for k in weights["fp32"]
               if weights["fp32"][k].is_floating_point())


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path):
    """"auto" bf16 on the CPU follows the flags line: AVX512-BF16 or AMX yes, plain AVX-512 no, unreadable no."""
    from pose3dlib.engine.device import cpu_has_native_bf16, native_bf16_in_cpuinfo

    plain = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n"
    assert not native_bf16_in_cpuinfo(plain)
    assert native_bf16_in_cpuinfo(plain.replace("avx512bw", "avx512bw avx512_bf16"))
    assert native_bf16_in_cpuinfo(plain.replace("avx2", "amx_bf16 amx_tile avx2"))
    assert not native_bf16_in_cpuinfo("model name\t: avx512_bf16 in a name is not a flag\n")
    (tmp_path / "cpuinfo").write_text(plain.replace("avx2", "avx512_bf16"))
    assert cpu_has_native_bf16(tmp_path / "cpuinfo")
    assert not cpu_has_native_bf16(tmp_path / "missing")


def test_bf16_on_cpu_takes_auto_and_nothing_else():
    assert load_config("configs/cpu.yaml", ["train.bf16_on_cpu=auto"]).train.bf16_on_cpu == "auto"
    with pytest.raises(ConfigError, match=r"'train\.bf16_on_cpu'"):
        load_config("configs/cpu.yaml", ["train.bf16_on_cpu=sometimes"])


def test_a_stages_loose_crop_prob_reaches_only_its_2d_training_loader(smoke_data):
    """train.stageN.loose_crop_prob frames that stage's 2D-only training samples loosely; other stages keep 0."""
    from pose3dlib.engine.train import build_datasets

    cfg = load_config("configs/smoke.yaml", [*smoke_data, "train.stage2.loose_crop_prob=0.5"])
    probs = {stage: build_datasets(cfg, stage, cfg.train.stage(stage))[0].ds_2d.loose_crop_prob for stage in (1, 2, 3)}
    assert probs == {1: 0.0, 2: 0.5, 3: 0.0}
    with pytest.raises(ConfigError, match="loose_crop_prob"):
        load_config("configs/smoke.yaml", ["train.stage2.loose_crop_prob=1.5"])


def test_the_stage_summary_marks_percentages():
    """Training validation gives PCK and PCKh in percent, evaluation's CSV a fraction: the summary says which."""
    line = shown_metrics({"val_pck": 75.4321, "val_pckh": 63.03, "val_mpjpe_mm": 406.2, "train_loss": 0.012, "steps": 3750})
    assert line == "val_pck=75.43%, val_pckh=63.03%, val_mpjpe_mm=406.2, train_loss=0.012, steps=3750"


def test_validation_pckh_counts_a_joint_at_the_threshold_as_metrics_pckh_does():
    """An error of exactly threshold x head size is correct in both PCKh implementations (<=)."""
    from pose3dlib import metrics

    pred = torch.tensor([[[0.25, 0.0], [0.5, 0.0]]])  # normalised: 0.25 x 64 / 2 = 8 px, 16 px
    gt = torch.zeros(1, 2, 2)
    valid = torch.ones(1, 2, dtype=torch.bool)
    assert pckh_hits(pred, gt, valid, torch.tensor([16.0]), input_size=64) == (1, 2)  # 8 <= 0.5 x 16
    px = pred.numpy() * 32.0
    assert metrics.pckh(px, gt.numpy(), np.array([16.0]), valid.numpy()) == 0.5


def test_the_weight_average_moves_a_fraction_of_the_way_each_step_and_leaves_integer_counters():
    from pose3dlib.engine.averaging import WeightAverage

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    average = WeightAverage(model, decay=0.75)
    for _ in range(2):
        with torch.no_grad():
            for v in model.state_dict().values():
                v.add_(1.0 if v.is_floating_point() else 1)
        average.update(model)
    got = average.average_model.state_dict()
    for k, v in start.items():
        if v.is_floating_point():  # a <- 0.75 a + 0.25 w, with w = start + 1, then start + 2
            expected = 0.75 * (0.75 * v + 0.25 * (v + 1)) + 0.25 * (v + 2)
            assert torch.allclose(got[k], expected), k
        else:  # BatchNorm's num_batches_tracked: as it started
            assert torch.equal(got[k], v), k
    assert not any(p.requires_grad for p in average.average_model.parameters())
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(model, decay=1.0)


def test_a_stage_with_ema_decay_saves_the_average_as_its_output_and_trains_exactly_as_without(tmp_path, smoke_data):
    """train.stageN.ema_decay: the optimiser's weights ("train_model") are bitwise those of the same stage
    without it; "model" (what evaluation and the next stage read) and validation are the average's."""
    from pose3dlib.engine.checkpoint import load_checkpoint
    from pose3dlib.engine.train import fit

    torch.set_num_threads(1)
    base = [*smoke_data, "train.stage1.epochs=2"]
    fit(load_config("configs/smoke.yaml", base), 1, tmp_path / "plain")
    fit(load_config("configs/smoke.yaml", [*base, "train.stage1.ema_decay=0.9"]), 1, tmp_path / "ema")
    plain = load_checkpoint(tmp_path / "plain" / "stage1" / "last.pt")
    ema = load_checkpoint(tmp_path / "ema" / "stage1" / "last.pt")
    assert "train_model" not in plain
    assert state_digest(ema["train_model"]) == state_digest(plain["model"])
    assert state_digest(ema["model"]) != state_digest(plain["model"])
    weights = [k for k, v in ema["model"].items() if v.is_floating_point()]
    assert all(torch.isfinite(ema["model"][k]).all() for k in weights)
    val = [r for r in read_metrics(tmp_path / "ema" / "stage1" / "metrics.jsonl") if r["kind"] == "val"]
    val_plain = [r for r in read_metrics(tmp_path / "plain" / "stage1" / "metrics.jsonl") if r["kind"] == "val"]
    assert val[0] == val_plain[0]  # before the first step the average is the starting weights
    assert val[-1] != val_plain[-1]  # at the end validation scores the average, not the trained weights
    # the next stage starts from the average: its first validation equals the average's last
    fit(load_config("configs/smoke.yaml", [*base, "train.stage1.ema_decay=0.9"]), 2, tmp_path / "ema")
    first_2 = [r for r in read_metrics(tmp_path / "ema" / "stage2" / "metrics.jsonl") if r["kind"] == "val"][0]
    assert first_2["pck"] == val[-1]["pck"]
    with pytest.raises(ConfigError, match="ema_decay"):
        load_config("configs/smoke.yaml", ["train.stage3.ema_decay=1"])

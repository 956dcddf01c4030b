"""pose3dlib.tools.bench: FLOP counting, bench.json and the markdown.

The loop form of the geometric loss (tools/bench/loop_loss.py) is the reference of tests/test_losses.py,
which checks it against the loss and on a hand example.

No timing assertions: timings depend on the machine and its load. Only cheap measurements
run here (smoke-size network, small matrices), to check that they produce positive numbers.
"""
from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
import torch
from torch import nn

from pose3dlib.config import ModelConfig, load_config
from pose3dlib.engine import allocator
from pose3dlib.engine import device as device_module
from pose3dlib.engine.errors import Pose3DError
from pose3dlib.engine.paths import PROJECT_ROOT
from pose3dlib.engine.train import SpeedSwitches
from pose3dlib.model import build_model
from pose3dlib.tools.bench import measure
from pose3dlib.tools.bench.flops import count_forward_flops, model_forward_flops
from pose3dlib.tools.bench.report import (
    BEGIN_MARK,
    END_MARK,
    METRICS,
    render_block,
    update_document,
    write_json,
)

# ----------------------------------------------------------------------------- FLOPs

def test_flop_counter_matches_a_hand_count():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, kernel_size=3, stride=2, padding=1),  # 16x16 -> 8x8
        nn.BatchNorm2d(8), nn.ReLU(),  # not counted
        nn.Conv2d(8, 8, kernel_size=1, groups=2),  # grouped 1x1
        nn.Flatten(),
        nn.Linear(8 * 8 * 8, 10),
    )
    # multiply-adds by hand, for one 16x16 image:
    conv1 = (8 * 8 * 8) * (3 * 3 * 3)  # output elements x (C_in x k x k) = 512 x 27 = 13,824
    conv2 = (8 * 8 * 8) * (8 // 2)  # 512 outputs x 4 inputs per group = 2,048
    linear = 10 * 512  # 5,120
    assert count_forward_flops(net, (1, 3, 16, 16)) == 2 * (conv1 + conv2 + linear) == 41_984
    # linear in the batch, and the module's training flag is restored
    net.train()
    assert count_forward_flops(net, (3, 3, 16, 16)) == 3 * 41_984
    assert net.training


def test_paper_network_counts_about_32_3_gflops():
    flops = model_forward_flops(ModelConfig(), 256)  # built on the meta device: no compute
    assert abs(flops / 1e9 - 32.3) < 0.1  # docs/paper.md "Network": about 32.3 GFLOPs forward per 256x256 image


def test_stem_conv_alone_by_hand():
    # the 7x7/2 stem convolution of the paper network: 3 -> 64 channels, 256 -> 128 px
    conv = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3)
    assert count_forward_flops(conv, (1, 3, 256, 256)) == 2 * 128 * 128 * 64 * 3 * 49


# ----------------------------------------------------------------------------- cheap measurements

def _finite_float(x) -> bool:
    return isinstance(x, float) and math.isfinite(x)


def test_cheap_measurements_give_finite_numbers(monkeypatch):
    # what each measurement returns, not how fast anything is: speeds are the benchmarks' business
    monkeypatch.setattr(measure, "MIN_REPEAT_S", 0.01)  # no grouping of calls: keep the test short
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        smoke = load_config("configs/smoke.yaml")
        timing = {"warmup": 1, "repeats": 1}
        assert _finite_float(measure.matmul_peak_gflops(128, **timing))
        assert _finite_float(measure.conv_peak_gflops(1, **timing))
        for step in (measure.train_images_per_s(smoke, **timing), measure.infer_images_per_s(smoke, 2, **timing)):
            assert isinstance(step, measure.StepTiming), step
            assert _finite_float(step.images_per_s) and _finite_float(step.first_call_s), step
        assert _finite_float(measure.geometric_loss_speedup(4, **timing))
    finally:
        torch.set_num_threads(threads)


def test_random_batch_has_the_sample_dict_shapes():
    smoke = load_config("configs/smoke.yaml")
    b = measure.random_batch(smoke, 3, torch.device("cpu"))
    s, h = smoke.data.input_size, smoke.data.heatmap_size
    assert b["image"].dtype == torch.uint8 and b["image"].shape == (3, 3, s, s)
    assert b["heatmaps"].shape == (3, 16, h, h)
    assert b["valid"].dtype == torch.bool and b["valid"].shape == (3, 16)
    assert b["joints_2d"].shape == (3, 16, 2) and b["depth"].shape == (3, 16)
    assert b["has_depth"].tolist() == [True, False, True]


# ----------------------------------------------------------------------------- JSON and markdown

METRICS_EXAMPLE = {
    "matmul_peak_gflops": 100.0, "train_paper_img_s": 2.5, "train_paper_gflops": 242.5,
    "train_paper_peak_ratio": 2.425, "train_cpu_peak_ratio": 0.4, "geometric_loss_speedup": 120.0,
    "infer_paper_ms": 250.0, "some_new_metric": 7.0,
}


def test_bench_json_is_a_flat_name_to_number_object(tmp_path):
    path = write_json(dict(METRICS_EXAMPLE), tmp_path / "bench" / "bench.json")
    data = json.loads(path.read_text())
    assert data == METRICS_EXAMPLE
    assert all(isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in data.items())
    for bad in ({"x": float("nan")}, {"x": {"nested": 1.0}}, {"x": True}, {"x": "fast"}):
        with pytest.raises(Pose3DError, match="'x'"):
            write_json(bad, tmp_path / "bad.json")


def test_markdown_renders_targets_and_keeps_the_prose(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Benchmarks\n\nprose before\n\n{BEGIN_MARK}\nold numbers\n{END_MARK}\n\nprose after\n")
    when = datetime(2025, 1, 2, 3, 4, tzinfo=UTC)
    block = render_block(METRICS_EXAMPLE, {"cpu": "TestCPU, 2 logical cores"}, when=when)
    update_document(doc, block)
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nprose before\n") and text.endswith("\n\nprose after\n")
    assert "old numbers" not in text and "2025-01-02 03:04 UTC" in text and "TestCPU" in text
    rows = {line.split("|")[1].strip().strip("`"): [c.strip() for c in line.split("|")[2:-1]]
            for line in text.splitlines() if line.startswith("| `")}
    assert rows["train_paper_peak_ratio"][:4] == ["2.42", "-", ">= 0.8", "met"]
    assert rows["train_cpu_peak_ratio"][3] == "not met"  # 0.4 < 0.5
    assert rows["infer_paper_ms"][3] == "not met"  # 250 > 200
    assert rows["geometric_loss_speedup"][3] == "met"
    assert rows["data_over_train_ratio"][:4] == ["-", "-", ">= 3", "not measured"]  # targets always listed
    assert rows["some_new_metric"][0] == "7"  # unknown metrics still shown
    assert "peak_rss_mb" not in rows  # no target, not measured: left out
    update_document(doc, block)  # idempotent
    assert doc.read_text() == text


def test_update_document_requires_the_markers(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# no markers\n")
    with pytest.raises(Pose3DError, match="markers"):
        update_document(doc, "x")
    with pytest.raises(Pose3DError, match="not found"):
        update_document(tmp_path / "missing.md", "x")


def test_bench_names_a_document_without_markers_before_it_measures(tmp_path, monkeypatch):
    """`bench --doc FILE` with a FILE that cannot take the block fails before minutes of benchmarks, not after."""
    import argparse

    from pose3dlib.tools.bench import command

    ran = []
    monkeypatch.setattr(command, "run_benchmarks", lambda *a, **k: ran.append(1) or {"x": 1.0})
    doc = tmp_path / "notes.md"
    doc.write_text("# my notes, no markers\n")
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--doc", str(doc), "--out", str(tmp_path / "bench.json")])
    with pytest.raises(Pose3DError, match=r"notes\.md: lacks the generated-block markers"):
        command.run(args)
    assert ran == [] and not (tmp_path / "bench.json").exists()
    doc.write_text(f"# notes\n{BEGIN_MARK}\nold\n{END_MARK}\n")  # with the markers it runs and writes
    assert command.run(args) == 0 and ran == [1] and "old" not in doc.read_text()


def test_repository_doc_has_the_markers_and_every_target_metric_is_known():
    text = (PROJECT_ROOT / "docs" / "benchmarks.md").read_text()
    assert text.index(BEGIN_MARK) < text.index(END_MARK)
    targets = {m.name for m in METRICS if m.target}
    assert targets == {"train_paper_peak_ratio", "train_cpu_peak_ratio", "geometric_loss_speedup",
                       "data_over_train_ratio", "infer_paper_ms", "train_paper_img_s_cuda"}


def test_data_rate_on_a_tiny_generated_set(tmp_path):
    smoke = load_config("configs/smoke.yaml")
    rows = {"h36m_train": 16, "h36m_test": 4, "mpii_train": 16, "mpii_val": 4, "wild_test": 4}
    cfg = measure.bench_data(smoke, tmp_path / "data", rows)
    assert (Path(cfg.data.mpii_dir) / "train.h5").is_file() and cfg.synthetic.mpii_train == 16  # read as sized
    assert measure.data_samples_per_s(cfg, 8) > 0
    # the end-to-end path the `_cuda` metrics use, run on the CPU (no GPU in CI)
    assert measure.loader_samples_per_s(cfg, batch_size=4, steps=2, num_workers=0) > 0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert measure.cuda_end_to_end_images_per_s(cfg, 4, 2, warmup=1, device=torch.device("cpu"),
                                                    switches=SpeedSwitches(), num_workers=0) > 0
    finally:
        torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- switches

def test_bench_times_the_switches_training_applies(monkeypatch):
    """The main training rows must time what `fit` runs: channels_last on CPU, bf16 only on CUDA."""
    cpu_cfg = load_config("configs/cpu.yaml", ["train.bf16_on_cpu=false"])  # the cpu profile opts in; test the default
    on_cpu = SpeedSwitches.for_training(cpu_cfg.train, torch.device("cpu"))
    assert on_cpu == SpeedSwitches(channels_last=True, bf16=False, compile=False)
    on_cuda = SpeedSwitches.for_training(load_config("configs/paper.yaml").train, torch.device("cuda"))
    assert on_cuda.channels_last and on_cuda.bf16
    opt_in = load_config("configs/cpu.yaml", ["train.bf16_on_cpu=true"]).train
    assert SpeedSwitches.for_training(opt_in, torch.device("cpu")).bf16
    both_off = load_config("configs/cpu.yaml", ["train.bf16_on_cpu=true", "train.bf16=false"]).train
    assert not SpeedSwitches.for_training(both_off, torch.device("cpu")).bf16
    auto = load_config("configs/cpu.yaml", ["train.bf16_on_cpu=auto"]).train
    for native in (True, False):  # "auto": bf16 exactly where the CPU has native bf16
        monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda native=native: native)
        assert SpeedSwitches.for_training(auto, torch.device("cpu")).bf16 is native
        assert SpeedSwitches.for_training(opt_in, torch.device("cpu")).bf16  # true stays true
    seen, stages = [], []
    real = measure.make_train_step

    def spy(model, cfg, device, switches, **kw):
        seen.append(switches)
        stages.append(kw.get("stage"))
        return real(model, cfg, device, switches, **kw)

    monkeypatch.setattr(measure, "make_train_step", spy)
    smoke = load_config("configs/smoke.yaml", ["train.channels_last=false"])
    measure.train_images_per_s(smoke, warmup=0, repeats=1)
    measure.train_images_per_s(load_config("configs/smoke.yaml"), warmup=0, repeats=1)
    assert seen == [SpeedSwitches(), on_cpu]
    measure.train_images_per_s(smoke, warmup=0, repeats=1, stage=1)
    assert stages == [measure.BENCH_STAGE, measure.BENCH_STAGE, 1]  # the stage reaches the step


def test_the_bench_task_of_the_stage1_row_times_stage1(monkeypatch, tmp_path):
    from pose3dlib.tools.bench.command import cpu_tasks

    calls = []

    def timed(cfg, **kw):
        calls.append(kw.get("stage"))
        return measure.StepTiming(images_per_s=90.0, first_call_s=1.0)

    monkeypatch.setattr(measure, "train_images_per_s", timed)
    m: dict[str, float] = {"train_cpu_img_s": 100.0}
    dict(cpu_tasks(measure.QUICK_PLAN, tmp_path, m))["train cpu stage 1"]()
    assert calls == [1] and m["train_cpu_stage1_img_s"] == 90.0 and m["train_cpu_stage1_over_stage3"] == 0.9


def test_the_stage1_step_trains_like_the_trainers_stage1():
    """`make bench`'s Stage 1 row times stage 1's step: its loss weights (heatmap only), and so no
    gradient through the depth head; the default (stage 3) step trains the head."""
    cfg = load_config("configs/smoke.yaml")
    batch = measure.random_batch(cfg, 2, torch.device("cpu"))
    grads = {}
    for stage in (1, 3):
        torch.manual_seed(0)
        model = build_model(cfg.model)
        step = measure.make_train_step(model, cfg, torch.device("cpu"), SpeedSwitches(), stage=stage)
        losses = step(batch)
        grads[stage] = [p.grad for p in model.depth_head.parameters()]
        only_heatmap = losses["loss"] == pytest.approx(cfg.train.stage(stage).heatmap_weight * losses["heatmap"])
        assert only_heatmap is (stage == 1), (stage, losses)  # stage 3 adds its depth and geometric terms
    assert all(g is None for g in grads[1]), "stage 1's step must not backpropagate through the depth head"
    assert all(g is not None and g.abs().sum() > 0 for g in grads[3])


def test_a_failing_compile_switch_is_recorded_and_the_run_goes_on(monkeypatch, tmp_path, capsys):
    """torch.compile can fail inside inductor on some CPUs: its row says so; other failures still stop the run."""
    from pose3dlib.tools.bench.command import cpu_tasks

    def inductor_error(cfg, switches=None, **timing):
        assert switches.compile
        raise torch._inductor.exc.InductorError(AssertionError("codegen failed"), None)

    monkeypatch.setattr(measure, "train_images_per_s", inductor_error)
    m: dict[str, float] = {}
    tasks = dict(cpu_tasks(measure.QUICK_PLAN, tmp_path, m))
    tasks["cpu compile"]()
    assert m == {"train_cpu_compile_failed": 1.0}
    assert "torch.compile failed" in capsys.readouterr().err
    block = render_block({**m, "threads": 2.0}, {"cpu": "x"})
    assert "| `train_cpu_compile_failed` | 1 | - |  |  | 1: torch.compile raised an error" in block

    def broken(cfg, switches=None, **timing):
        raise RuntimeError("not a compile problem")  # without compile, any error ends the run

    monkeypatch.setattr(measure, "train_images_per_s", broken)
    with pytest.raises(RuntimeError, match="not a compile problem"):
        tasks["cpu NCHW"]()


def test_host_speed_prints_the_matmul_peak_and_writes_nothing(monkeypatch, tmp_path, capsys):
    """`bench --host-speed` (the line `make reproduce` ends with) measures matmul_peak_gflops only."""
    from pose3dlib.tools.bench import command

    calls = []

    def fake_peak(size, *, warmup, repeats, **kw):
        calls.append((size, torch.get_num_threads()))
        return 123.4

    monkeypatch.setattr(measure, "matmul_peak_gflops", fake_peak)
    monkeypatch.setattr(command, "run_benchmarks", lambda *a, **k: pytest.fail("--host-speed ran the benchmarks"))
    threads = torch.get_num_threads()
    torch.set_num_threads(3)  # not the default and not what the plan asks for: restored afterwards?
    out, doc = tmp_path / "bench.json", tmp_path / "doc.md"
    try:
        assert command.main(["--quick", "--threads", "1", "--host-speed", "--out", str(out), "--doc", str(doc)]) == 0
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(threads)
    line = capsys.readouterr().out.strip()
    assert line == ("host speed: 123 GFLOP/s (matmul_peak_gflops of make bench: fp32 2048 x 2048 matmul, "
                    f"torch threads 1); memory allocator: {allocator.loaded()}")
    assert calls == [(measure.QUICK_PLAN.matmul_size, 1)]
    assert not out.exists() and not doc.exists()
    assert command.main(["--host-speed", "--threads", "0"]) == 2  # a one-line error, not a traceback
    assert "bench threads must be >= 1, got 0" in capsys.readouterr().err


def test_host_speed_line_measures_a_positive_speed(monkeypatch):
    from dataclasses import replace

    from pose3dlib.tools.bench.command import host_speed_line

    monkeypatch.setattr(measure, "MIN_REPEAT_S", 0.01)
    line = host_speed_line(replace(measure.QUICK_PLAN, matmul_size=64, threads=1))
    gflops = float(line.split()[2])
    assert gflops > 0 and line.startswith("host speed: ") and "64 x 64" in line


def test_a_quick_run_never_replaces_the_committed_record(monkeypatch, tmp_path, capsys):
    """`BENCH_QUICK=1 make bench` passes the record's paths; the quick plan writes elsewhere and leaves the doc."""
    from pose3dlib.tools.bench import command

    written, updated = [], []
    monkeypatch.setattr(command, "run_benchmarks", lambda plan, work_dir, **k: {"matmul_peak_gflops": 1.0})
    monkeypatch.setattr(command, "write_json", lambda metrics, path: written.append(path) or path)
    monkeypatch.setattr(command, "update_document", lambda path, block: updated.append(path) or path)
    monkeypatch.setattr(command, "render_block", lambda *a, **k: "block")
    assert command.main(["--quick", "--out", command.RECORD_JSON, "--doc", command.RECORD_DOC]) == 0
    assert written == [command.resolve(command.QUICK_JSON)] and updated == []
    assert "not the committed runs/bench/bench.json" in capsys.readouterr().out
    # elsewhere, a quick run writes where it is told; `--doc ''` still means no document
    (tmp_path / "d.md").write_text(f"{BEGIN_MARK}\n{END_MARK}\n")  # a document that can take the block
    assert command.main(["--quick", "--out", str(tmp_path / "b.json"), "--doc", str(tmp_path / "d.md")]) == 0
    assert written[-1] == tmp_path / "b.json" and updated == [tmp_path / "d.md"]
    assert command.main(["--out", str(tmp_path / "c.json"), "--doc", ""]) == 0
    assert written[-1] == tmp_path / "c.json" and len(updated) == 1


def test_a_stage_without_3d_samples_is_timed_on_2d_samples_only(monkeypatch):
    """Stage 1 (ratio_3d 0) trains on MPII-format 2D samples only: its bench batch has no 3D sample."""
    cfg = load_config("configs/smoke.yaml")
    cpu = torch.device("cpu")
    assert not measure.random_batch(cfg, 4, cpu, with_3d=False)["has_depth"].any()
    assert measure.random_batch(cfg, 4, cpu)["has_depth"].tolist() == [True, False, True, False]
    made, real = [], measure.random_batch
    monkeypatch.setattr(measure, "random_batch", lambda *a, **kw: made.append(kw["with_3d"]) or real(*a, **kw))
    monkeypatch.setattr(measure, "MIN_REPEAT_S", 0.01)
    for stage in (1, 3):
        measure.train_images_per_s(cfg, warmup=0, repeats=1, batch_size=2, stage=stage)
    assert cfg.train.stage(1).ratio_3d == 0 < cfg.train.stage(3).ratio_3d and made == [False, True]

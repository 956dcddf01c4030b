"""`make gpu-check`: its dry run end to end, its imports on a GPU machine's package set, its arithmetic and report."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from pose3dlib.config import load_config
from pose3dlib.engine.errors import Pose3DError
from pose3dlib.engine.paths import PROJECT_ROOT
from pose3dlib.tools.bench.gpu_report import (
    GPU_BEGIN_MARK,
    GPU_END_MARK,
    recipe_minutes,
    recipe_samples,
    render_block,
    scaled_lr,
    splice_block,
)

# Installed here, absent on the GPU machines (they have torch, numpy, h5py, OpenCV, PyYAML,
# tqdm, scipy, matplotlib, onnxruntime and pytest): the check must never import these.
NOT_ON_GPU_MACHINES = ("plotly", "papermill", "cdflib", "jupyter", "jupyter_client", "jupyter_core", "jupyterlab",
                       "nbformat", "nbclient", "nbval", "ipykernel", "IPython", "ipywidgets", "pandas", "tensorboard")
BLOCKER = textwrap.dedent(f"""\
    # sitecustomize: the packages a GPU machine lacks look absent, in this process and its children
    import sys
    BLOCKED = {NOT_ON_GPU_MACHINES!r}

    class _Hide:
        # wraps a finder: blocked names are not found (find_spec None), as when not installed
        def __init__(self, finder):
            self.finder = finder

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                return None
            return self.finder.find_spec(name, path, target)

        def __getattr__(self, attr):
            return getattr(self.finder, attr)

    sys.meta_path[:] = [_Hide(f) for f in sys.meta_path]
""")
GPU_CHECK_MODULES = ("pose3dlib.tools.bench.gpu_check", "pose3dlib.tools.cli", "pose3dlib.engine.train", "pose3dlib.data.fusion",
                     "pose3dlib.data.h36m", "pose3dlib.data.mpii", "pose3dlib.synthetic.generator", "pose3dlib.engine.validation",
                     "pose3dlib.engine.checkpoint", "pose3dlib.model", "pose3dlib.losses")


def blocked_env(tmp_path: Path) -> dict[str, str]:
    """Environment whose Python processes cannot import NOT_ON_GPU_MACHINES (a sitecustomize on PYTHONPATH)."""
    folder = tmp_path / "blocker"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(BLOCKER)
    path = os.pathsep.join([str(folder), str(PROJECT_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1")


def test_the_gpu_check_path_imports_without_the_packages_gpu_machines_lack(tmp_path):
    code = textwrap.dedent(f"""
        import importlib, sys
        try:
            import plotly
        except ModuleNotFoundError:
            pass
        else:
            sys.exit("the blocker does not block")
        for name in {GPU_CHECK_MODULES!r}:
            importlib.import_module(name)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {NOT_ON_GPU_MACHINES!r})
        print("loaded:", loaded)
        sys.exit(1 if loaded else 0)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=tmp_path,
                       env=blocked_env(tmp_path), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]


def _measured(value) -> bool:
    """A measured speed or time as gpu_check.json holds it: a finite, non-negative number (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


@pytest.mark.slow
def test_dry_run_writes_the_json_and_the_block_and_leaves_no_checkpoints(tmp_path):
    # The dry plan end to end in a process that cannot import notebook packages (the trainer
    # subprocesses inherit the blocker); the test step and torchrun are left to
    # `GPU_CHECK_DRY=1 make gpu-check` and tests/test_ddp.py, to keep this test short.
    out, work = tmp_path / "out", tmp_path / "work"
    cmd = [sys.executable, "-m", "pose3dlib.tools.bench.gpu_check", "--dry", "--skip", "tests,ddp", "--no-time-limits",
           "--out", str(out), "--work-dir", str(work)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=PROJECT_ROOT, env=blocked_env(tmp_path), timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["gpu_check.json", "gpu_check.log", "gpu_check.md"]
    assert not list(work.rglob("*.pt"))  # the trainer's checkpoints are removed after the run
    res = json.loads((out / "gpu_check.json").read_text())
    assert res["errors"] == {}, res["errors"]
    assert res["dry"] is True and res["torch_version"] == torch.__version__ and "CPU" in res["device"]
    assert {s: res["steps"][s]["status"] for s in ("tests", "ddp", "train_step_compile")} == {
        "tests": "skipped", "ddp": "skipped", "train_step_compile": "skipped"}
    assert all(res["steps"][s]["status"] == "ok"
               for s in ("environment", "peak", "train_step", "inference", "data", "train_fed", "fit"))
    assert [row["batch"] for row in res["train_rows"]] == [2, 4, 8]
    # measured speeds and times: only their presence, type and finiteness (a test never compares speeds)
    assert all(_measured(row["img_s"]) for row in res["train_rows"])
    assert res["train_paper_img_s"] == max(row["img_s"] for row in res["train_rows"] if row["batch"] == 8)
    assert res["data_workers"] == 1
    for key in ("data_img_s", "jpeg_1280x720_decode_ms", "jpeg_256_decode_ms", "data_img_s_full_jpeg_estimate",
                "infer_b1_ms", "infer_big_img_s", "fit_epoch_step_s", "fit_epoch_data_s", "fit_epoch_callback_s",
                "fit_epoch_first_step_s", "fit_steady_img_s", "train_fed_img_s"):
        assert _measured(res[key]), (key, res[key])
    first, last = res["train_loss_first"], res["train_loss_last"]
    assert math.isfinite(first) and math.isfinite(last) and 0 < last < first and res["fit_loss_falls"]
    assert res["fit_resume_ok"] is True and res["fit_steps"] >= 16
    # the killed process's first stage 2 epoch: half the fit's steps, every part of its time recorded
    assert res["fit_epoch_steps"] == res["fit_steps"] // 2
    assert res["recipe_samples"] == 3_114_440
    assert res["recipe_minutes"] == pytest.approx(
        3_114_440 / min(res["train_paper_img_s"], res["data_img_s"]) / 60)
    assert (res["train_fed_batch"], res["train_fed_workers"]) == (4, 0)  # the fit step's batch and workers
    assert res["ddp_ok"] is None  # not run here
    block = (out / "gpu_check.md").read_text()
    assert block.startswith(GPU_BEGIN_MARK) and block.rstrip().endswith(GPU_END_MARK) and "Dry run" in block
    # a dry run is never spliced into the docs
    r = subprocess.run([sys.executable, "-m", "pose3dlib.tools.bench.gpu_check", "--from-json", str(out / "gpu_check.json"),
                        "--doc", str(tmp_path / "doc.md")], capture_output=True, text=True, check=False, cwd=PROJECT_ROOT)
    assert r.returncode == 2 and "dry run" in r.stderr


def test_the_epoch_split_separates_the_first_step_and_rates_the_others(tmp_path):
    """fit_steady_img_s leaves out the epoch's first step (warm-up); a record without it (older runs) gives None."""
    from pose3dlib.tools.bench.gpu_check import _first_epoch_timing

    stage = tmp_path / "stage2"
    stage.mkdir()
    record = {"stage": 2, "epoch": 1, "first_step": 1, "steps": 11, "resumed": False, "data_seconds": 0.5,
              "step_seconds": 12.0, "callback_seconds": 0.25, "first_step_seconds": 2.0}
    later = {**record, "epoch": 2, "first_step": 12, "step_seconds": 99.0, "first_step_seconds": 9.0}
    resumed = {**record, "resumed": True, "steps": 3, "step_seconds": 1.0, "first_step_seconds": 0.5}
    (stage / "timing.jsonl").write_text("".join(json.dumps(x) + "\n" for x in (resumed, record, later)))
    got = _first_epoch_timing(stage, batch=32)
    assert got == {"fit_epoch_steps": 11, "fit_epoch_data_s": 0.5, "fit_epoch_step_s": 12.0,
                   "fit_epoch_callback_s": 0.25, "fit_epoch_first_step_s": 2.0,
                   "fit_steady_img_s": pytest.approx(32 * 10 / 10.0)}
    record.pop("first_step_seconds")
    (stage / "timing.jsonl").write_text(json.dumps(record) + "\n")
    got = _first_epoch_timing(stage, batch=32)
    assert got["fit_epoch_first_step_s"] is None and got["fit_steady_img_s"] is None
    block = render_block({"fit_batch": 32, "fit_epoch_first_step_s": 2.0, "fit_steady_img_s": 32.0,
                          "train_rows": [{"batch": 32, "compile": c, "img_s": v, "peak_fraction": 0.05,
                                          "first_call_s": 7.0} for c, v in ((True, 500.0), (False, 381.5))]})
    assert "| that epoch's other steps (the training step alone at batch 32: 381.5) | 32.0 | img/s |" in \
        block.replace("|   ", "| ")
    assert "| that epoch's first step alone (cuDNN autotuning, first allocations) | 2.0 | s |" in block.replace("|   ", "| ")
    for text in ("", json.dumps({**record, "resumed": True}) + "\n"):  # none, or only a resumed epoch's rest
        (stage / "timing.jsonl").write_text(text)
        with pytest.raises(Pose3DError, match="no timing of a whole epoch"):
            _first_epoch_timing(stage, batch=32)
    # a one-step epoch, or a first step that took all the epoch's step time: no rate for the other steps
    for odd in ({"steps": 1, "step_seconds": 2.0}, {"step_seconds": 2.0}):
        (stage / "timing.jsonl").write_text(json.dumps({**record, "first_step_seconds": 2.0, **odd}) + "\n")
        assert _first_epoch_timing(stage, batch=32)["fit_steady_img_s"] is None, odd


def test_recipe_samples_counts_the_papers_three_stages():
    paper = load_config("configs/paper.yaml")
    mpii = 22_246  # MPII train.h5 rows; Human3.6M samples per epoch match them (ratio_3d 1)
    assert recipe_samples(paper) == 60 * mpii + 30 * 2 * mpii + 10 * 2 * mpii
    assert recipe_minutes(3_000_000, 2_500.0) == pytest.approx(20.0)
    assert math.isnan(recipe_minutes(1, 0.0))


def test_scaled_lr_rules():
    assert scaled_lr(2.5e-4, 24, "sqrt") == pytest.approx(5e-4)
    assert scaled_lr(2.5e-4, 24, "linear") == pytest.approx(1e-3)
    assert scaled_lr(2.5e-4, 24, "none") == 2.5e-4
    assert scaled_lr(2.5e-4, 6) == 2.5e-4
    with pytest.raises(ValueError, match="lr rule"):
        scaled_lr(1e-3, 32, "cubic")
    with pytest.raises(ValueError, match="batch sizes"):
        scaled_lr(1e-3, 0)


def test_the_block_marks_missing_numbers_and_splices_between_the_markers(tmp_path):
    result = {"device": "NVIDIA H200 (140 GiB) x 1", "train_paper_img_s": 3000.0, "train_paper_batch": 128,
              "data_img_s": 3000.0, "data_over_train_ratio": 1.0, "recipe_minutes": 17.3,
              "errors": {"ddp": "Pose3DError: boom"}, "train_rows": []}
    block = render_block(result)
    assert "| met |" in block and "| missed |" in block  # training met, data / training 1.0 < 1.2 missed
    assert "not measured" in block and "`ddp`: Pose3DError: boom" in block and "Dry run" not in block
    assert "second run" not in block
    assert "\nFit and tests: a second run.\n" in render_block({**result, "note": "Fit and tests: a second run."})
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Benchmarks\nbefore\n{GPU_BEGIN_MARK}\npending\n{GPU_END_MARK}\nafter\n")
    splice_block(doc, result)
    text = doc.read_text()
    assert text.startswith("# Benchmarks\nbefore\n") and text.endswith("\nafter\n") and "pending" not in text
    assert text.count(GPU_BEGIN_MARK) == 1 and "3,000.0" in text


def test_from_json_names_a_file_that_is_not_a_gpu_check_result(tmp_path, capsys):
    """--from-json of a missing, non-JSON or other JSON file: one line naming it, and the document's block
    is not replaced by a table of '?' (it used to be, for `{}`)."""
    from pose3dlib.tools.bench.gpu_check import main

    doc = tmp_path / "doc.md"
    doc.write_text(f"{GPU_BEGIN_MARK}\ncommitted\n{GPU_END_MARK}\n")
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "other.json").write_text("{}")
    for name, message in (("missing.json", "not found"), ("bad.json", "not a JSON text file"),
                          ("other.json", "not a gpu-check result (it lacks command, date, dry, steps")):
        assert main(["--from-json", str(tmp_path / name), "--doc", str(doc)]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("error: --from-json ") and name in err and message in err, err
        assert "committed" in doc.read_text()
    with pytest.raises(Pose3DError, match=r"other\.json: not a gpu-check result"):
        from pose3dlib.tools.bench.gpu_check import read_result
        read_result(tmp_path / "other.json")


def test_the_docs_hold_the_gpu_block_markers():
    text = (PROJECT_ROOT / "docs" / "benchmarks.md").read_text()
    assert text.index(GPU_BEGIN_MARK) < text.index(GPU_END_MARK)


def test_the_full_checks_pytest_targets_exist_and_collect():
    """A renamed test file or test would only show on a GPU machine: collect the full plan's targets here."""
    from pose3dlib.tools.bench.gpu_check import FULL_PLAN

    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           *FULL_PLAN.test_files], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    collected = [line for line in proc.stdout.splitlines() if "::" in line]
    for target in FULL_PLAN.test_files:
        assert any(line.startswith(target) for line in collected), (target, proc.stdout)


def test_the_fit_step_is_sized_to_end_within_its_budget_at_the_trainer_speeds_seen():
    """At the bench-step rates measured on an H200 (batch 32) and the slowest trainer share seen there (0.64 of
    the step), three process starts plus the planned steps fit the step's budget; a dry run keeps its floor."""
    from pose3dlib.tools.bench.gpu_check import DRY_PLAN, FIT_PROCESS_S, FIT_WORK_PER_STEP, FULL_PLAN, fit_steps

    for step_img_s in (337.6, 377.8):  # the two checks' batch-32 rows
        steps = fit_steps(FULL_PLAN, step_img_s)
        assert steps % 8 == 0 and steps >= 16
        seconds = 3 * FIT_PROCESS_S + steps * FIT_WORK_PER_STEP * FULL_PLAN.fit_batch / (0.64 * step_img_s)
        assert seconds <= FULL_PLAN.budgets_s["fit"], (step_img_s, steps, seconds)
        assert seconds >= 0.6 * FULL_PLAN.budgets_s["fit"], (step_img_s, steps, seconds)  # not sized far too short
    assert fit_steps(DRY_PLAN, 0.1) == 16


def test_the_compile_step_is_skipped_without_time_for_a_cold_compile(tmp_path):
    import time

    from pose3dlib.tools.bench.gpu_check import FULL_PLAN, GpuCheck, StepSkipped

    check = GpuCheck(FULL_PLAN, tmp_path / "out", tmp_path / "work", "make gpu-check")
    with pytest.raises(StepSkipped, match="a cold compile needs about 160"):
        check.train_step_compile(time.perf_counter() + FULL_PLAN.compile_min_s - 30)


def test_make_gpu_check_dry_writes_apart_from_the_committed_record(make_n):
    dry, full = make_n("gpu-check", "GPU_CHECK_DRY=1"), make_n("gpu-check")
    assert dry.returncode == 0 and full.returncode == 0, (dry.stderr, full.stderr)
    assert "--dry --out runs/gpu-check/dry" in dry.stdout and "--doc" not in dry.stdout
    assert "--out runs/gpu-check --doc docs/benchmarks.md" in full.stdout and "--dry" not in full.stdout


def test_the_full_check_without_a_gpu_stops_before_touching_the_committed_record(tmp_path, monkeypatch, capsys):
    """`make gpu-check` on a machine without CUDA (GPU_CHECK_DRY left out) used to delete the record, fail
    every step and write an all-error record in its place, exit 0: now exit 2, the record untouched."""
    from pose3dlib.tools.bench import gpu_check

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv(gpu_check.DRY_ENV, raising=False)
    out = tmp_path / "record"
    out.mkdir()
    (out / "gpu_check.json").write_text('{"committed": true}')
    assert gpu_check.main(["--out", str(out), "--work-dir", str(tmp_path / "work")]) == 2
    assert "no CUDA device here" in capsys.readouterr().err
    assert (out / "gpu_check.json").read_text() == '{"committed": true}' and not (tmp_path / "work").exists()
    # a --doc that cannot take the numbers, or a dry run given one, is named before any step runs
    (tmp_path / "notes.md").write_text("no markers\n")
    assert gpu_check.main(["--out", str(out), "--work-dir", str(tmp_path / "work"), "--doc", str(tmp_path / "notes.md")]) == 2
    assert "notes.md: lacks the generated-block markers" in capsys.readouterr().err
    assert gpu_check.main(["--dry", "--out", str(out), "--work-dir", str(tmp_path / "work"), "--doc", "docs/benchmarks.md"]) == 2
    assert "--doc with a dry run" in capsys.readouterr().err
    assert (out / "gpu_check.json").read_text() == '{"committed": true}' and not (tmp_path / "work").exists()

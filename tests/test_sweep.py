"""pose3dlib.tools.sweep: the summary table and figure built from sweep.csv rows, the swept key's checks and the
output folder per profile and key (no notebooks run here)."""
from __future__ import annotations

import re
import shutil
import subprocess

import matplotlib
import pytest

matplotlib.use("Agg")

from pose3dlib.engine.errors import ConfigError, Pose3DError
from pose3dlib.engine.runs import sweep_dir
from pose3dlib.tools.seed_stats import finite_mean_sd
from pose3dlib.tools.sweep import (
    SUMMARY_COLUMNS,
    parse_seeds,
    parse_values,
    read_sweep_csv,
    run_sweep,
    stage_plan,
    summarize,
    sweep_curve,
    sweep_table,
    write_sweep_csv,
)


def _rows(values: dict[str, dict[tuple[str, str], float]], seed: int | None = None) -> list[dict]:
    rows = []
    tag = {"seed": "" if seed is None else str(seed)}
    for v, cells in values.items():
        for (split, protocol), mm in cells.items():
            common = {"param_value": v, **tag, "split": split, "protocol": protocol}
            rows.append({**common, "stage": "stage3", "action": "all", "value": mm})
            # a per-action row and another stage must not leak into the summary
            rows.append({**common, "stage": "stage3", "action": "Eating", "value": -1.0})
            rows.append({**common, "stage": "stage2", "action": "all", "value": -2.0})
    return rows


def test_table_puts_each_value_in_its_column_and_leaves_gaps_empty():
    rows = _rows({
        "0": {("wild_test", "p1_mpjpe"): 378.29, ("wild_test", "p1_mpjpe_gt2d"): 254.87,
              ("lab_test", "p1_mpjpe"): 237.3, ("lab_test", "p1_mpjpe_gt2d"): 124.25},
        "0.1": {("wild_test", "p1_mpjpe"): 380.92, ("lab_test", "p1_mpjpe_gt2d"): 113.24},
    })
    lines = sweep_table(rows, "geometric_weight").splitlines()
    assert lines[0].startswith("| geometric_weight | wild_test P1 (mm) | wild_test P1, GT 2D (mm)")
    assert len(lines) == 4  # header, rule, two values
    assert [c.strip() for c in lines[2].strip("|").split("|")] == ["0", "378.3", "254.9", "237.3", "124.2"]
    assert [c.strip() for c in lines[3].strip("|").split("|")] == ["0.1", "380.9", "", "", "113.2"]


def test_summarize_writes_table_and_figure_beside_the_csv(tmp_path):
    rows = _rows({v: dict.fromkeys(SUMMARY_COLUMNS, 100.0 + i) for i, v in enumerate(["0", "0.01"])})
    csv = write_sweep_csv(rows, tmp_path / "sweep.csv")
    import matplotlib.pyplot as plt

    open_figures = plt.get_fignums()
    table = summarize(csv, "geometric_weight")
    assert plt.get_fignums() == open_figures  # the figure is closed once saved
    assert (tmp_path / "sweep.md").read_text().strip() == table
    png = (tmp_path / "sweep.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert read_sweep_csv(csv) == [{**r, "value": float(f"{r['value']:.4f}")} for r in rows]


def test_a_short_row_in_a_sweep_csv_is_named(tmp_path):
    rows = _rows({"0": dict.fromkeys(SUMMARY_COLUMNS, 100.0)})
    csv = write_sweep_csv(rows, tmp_path / "sweep.csv")
    with open(csv, "a") as f:
        f.write("0.1,0,stage3,wild_test\n")  # cut short (a hand edit, or a copy interrupted)
    with pytest.raises(Pose3DError, match=rf"sweep\.csv: line {len(rows) + 2}: column 'value' is None, expected a number"):
        read_sweep_csv(csv)


def test_seeds_are_grouped_per_value_with_mean_and_sample_sd():
    col = ("wild_test", "p1_mpjpe")
    rows = []
    for seed, (a, b) in enumerate([(300.0, 200.0), (310.0, 204.0), (326.0, 190.0)]):
        rows += _rows({"0": {col: a}, "1": {col: b}}, seed=seed)
    assert sweep_curve(rows) == [("0", [300.0, 310.0, 326.0]), ("1", [200.0, 204.0, 190.0])]
    mean, sd, n = finite_mean_sd([300.0, 310.0, 326.0])
    assert mean == pytest.approx(312.0) and sd == pytest.approx(((144 + 4 + 196) / 2) ** 0.5) and n == 3
    assert finite_mean_sd([5.0]) == (5.0, 0.0, 1)
    assert finite_mean_sd([300.0, float("nan"), 310.0])[:2] == pytest.approx((305.0, 50 ** 0.5))
    lines = sweep_table(rows, "geometric_weight", columns=(col,)).splitlines()
    assert lines[0].endswith("| runs |")
    assert [c.strip() for c in lines[2].strip("|").split("|")] == ["0", f"312.0 ± {sd:.1f}", "3"]


def test_summarize_draws_a_seeded_sweep(tmp_path):
    rows = []
    for seed in (0, 1):
        rows += _rows({v: dict.fromkeys(SUMMARY_COLUMNS, 100.0 + i + seed) for i, v in enumerate(["0", "1"])},
                      seed=seed)
    table = summarize(write_sweep_csv(rows, tmp_path / "sweep.csv"), "geometric_weight")
    assert "100.5 ± 0.7" in table and (tmp_path / "sweep.png").stat().st_size > 10_000


def test_seeds_argument_is_parsed_or_rejected_by_name():
    assert parse_seeds("0, 1,2") == [0, 1, 2]
    assert parse_seeds("") == []
    with pytest.raises(Pose3DError, match="--seeds"):
        parse_seeds("0,x")
    # an empty item is a typo, not a value to drop: '0,,0.1' used to sweep 0 and 0.1 without a word
    with pytest.raises(Pose3DError, match=r"--values '0,,0\.1': item 2 of 3 is empty"):
        parse_values("0,,0.1")
    with pytest.raises(Pose3DError, match=r"--seeds '0,1,': item 3 of 3 is empty"):
        parse_seeds("0,1,")
    assert parse_values(" 0 , 0.1") == [0, 0.1]


def test_swept_key_is_checked_against_the_config_before_anything_runs(tmp_path):
    for param, values in (("train.stage3.bogus_weight", [1]), ("train.stage3.geometric_weight", ["abc"]),
                          ("train.stage3.geometric_weight", [-1])):
        with pytest.raises(ConfigError, match="geometric_weight|bogus_weight"):
            run_sweep(param, values, ["04_train_geometry"], tmp_path / "base", tmp_path / "out", "configs/smoke.yaml")
    assert not (tmp_path / "out").exists()


def test_each_profile_and_key_has_its_own_sweep_folder(tmp_path):
    a = sweep_dir(tmp_path, "smoke", "train.stage3.geometric_weight")
    b = sweep_dir(tmp_path, "cpu", "train.stage3.geometric_weight")
    c = sweep_dir(tmp_path, "cpu", "train.stage3.lr")
    assert len({a, b, c}) == 3 and a == tmp_path / "smoke" / "train.stage3.geometric_weight"
    with pytest.raises(Pose3DError, match="key"):
        sweep_dir(tmp_path, "cpu", "../escape")


class _Stop(Exception):
    pass


def _recording_execute(monkeypatch, calls: list):
    """Replace the notebook runner's execute (which run_sweep imports when it runs) by a recorder that stops."""
    from pose3dlib.tools import notebook_runner

    def execute(name, output, params, **kw):
        calls.append((name, params))
        raise _Stop

    monkeypatch.setattr(notebook_runner, "execute", execute)


def _finished_stage(run, stage: int, tag: int = 0, overrides: list[str] | None = None, data: dict | None = None):
    """A finished stage checkpoint (no weights; `tag` makes its bytes differ) at `run`/stage{N}/last.pt, of
    the smoke config with `overrides`, recording `data` as the identities of its training data and, as
    training does, the digest of the previous stage's file it started from (when there is one)."""
    from pose3dlib.config import config_to_dict, load_config
    from pose3dlib.engine.checkpoint import make_checkpoint, save_checkpoint
    from pose3dlib.engine.runs import checkpoint_path, file_digest

    path = checkpoint_path(run, stage)
    cfg = load_config("configs/smoke.yaml", overrides or [])
    previous = checkpoint_path(run, stage - 1) if stage > 1 else None
    started = {"init_digest": file_digest(previous)} if previous is not None and previous.is_file() else {}
    save_checkpoint(path, make_checkpoint(model_state={}, config=config_to_dict(cfg), stage=stage, step=tag,
                                          extra={"finished": True, **started,
                                                 **({} if data is None else {"data": data})}))
    return path


def _recorded_sweep_on_a_finished_base(base, monkeypatch) -> list:
    """A base run with all three stages finished (`_finished_stage`) and a recording execute
    (`_recording_execute`); returns the list the notebook calls go into."""
    calls: list = []
    _recording_execute(monkeypatch, calls)
    for stage in (1, 2, 3):
        _finished_stage(base, stage)
    return calls


def test_every_notebook_is_checked_before_anything_runs(tmp_path, monkeypatch):
    """A misspelled notebook is named at once, not after the notebooks before it ran for the first value."""
    calls: list = []
    _recording_execute(monkeypatch, calls)
    for stage in (1, 2):
        (tmp_path / "base" / f"stage{stage}").mkdir(parents=True)
    with pytest.raises(Pose3DError, match=r"notebook not found: .*06_eval_mpjpx\.ipynb"):
        run_sweep("train.stage3.geometric_weight", [0, 0.01], ["04_train_geometry", "06_eval_mpjpx"],
                  tmp_path / "base", tmp_path / "out", "configs/smoke.yaml")
    assert calls == [] and not (tmp_path / "out").exists()


def test_the_sweeps_parameters_pass_the_notebooks_checks(tmp_path, monkeypatch):
    """The default notebooks take the names and types of what run_sweep hands them; the first run starts."""
    calls: list = []
    _recording_execute(monkeypatch, calls)
    for stage in (1, 2):
        _finished_stage(tmp_path / "base", stage)
    with pytest.raises(_Stop):
        run_sweep("train.stage3.geometric_weight", [0, 0.01], ["04_train_geometry", "06_eval_mpjpe"],
                  tmp_path / "base", tmp_path / "out", "configs/smoke.yaml", seeds=[0])
    assert [name for name, _ in calls] == ["04_train_geometry"]
    assert calls[0][1]["overrides"] == ["train.stage3.geometric_weight=0", "seed=0"]


def test_the_stages_reused_and_scored_follow_the_swept_notebooks():
    assert stage_plan(["04_train_geometry", "06_eval_mpjpe"]) == ((1, 2), (3,))
    assert stage_plan(["03_train_depth", "04_train_geometry", "06_eval_mpjpe"]) == ((1,), (2, 3))
    assert stage_plan(["02_train_2d", "06_eval_mpjpe"]) == ((), (1,))
    assert stage_plan(["06_eval_mpjpe"]) == ((1, 2, 3), (1, 2, 3))  # an evaluation-only sweep (eval.* keys)
    with pytest.raises(Pose3DError, match="03_train_depth"):
        stage_plan(["02_train_2d", "04_train_geometry", "06_eval_mpjpe"])


def test_an_evaluation_only_sweep_links_every_stage_and_scores_them_all(tmp_path, monkeypatch):
    calls: list = []
    _recording_execute(monkeypatch, calls)
    base = [_finished_stage(tmp_path / "base", stage) for stage in (1, 2, 3)]
    (tmp_path / "base" / "stage3" / ".lock").write_text("")  # the base's own lock is not shared
    with pytest.raises(Pose3DError, match="trains nothing: every value would score"):
        run_sweep("train.stage3.lr", [1e-4, 1e-5], ["06_eval_mpjpe"], tmp_path / "base", tmp_path / "out",
                  "configs/smoke.yaml")
    with pytest.raises(Pose3DError, match="notebook not found: .*04_train_geometri.ipynb"):  # before the plan
        run_sweep("train.stage3.lr", [1e-4], ["04_train_geometri", "06_eval_mpjpe"], tmp_path / "base",
                  tmp_path / "out", "configs/smoke.yaml")
    with pytest.raises(ConfigError, match="unknown config key 'bogus'"):  # the key first, then what it trains
        run_sweep("bogus", [1], ["06_eval_mpjpe"], tmp_path / "base", tmp_path / "out", "configs/smoke.yaml")
    with pytest.raises(Pose3DError, match=r"seeds \[0, 1\] would score the same checkpoints"):
        run_sweep("eval.flip_test", [True, False], ["06_eval_mpjpe"], tmp_path / "base", tmp_path / "out",
                  "configs/smoke.yaml", seeds=[0, 1])
    with pytest.raises(_Stop):
        run_sweep("eval.flip_test", [True, False], ["06_eval_mpjpe"], tmp_path / "base", tmp_path / "out",
                  "configs/smoke.yaml")
    assert [name for name, _ in calls] == ["06_eval_mpjpe"] and calls[0][1]["stages"] == [1, 2, 3]
    for stage, path in zip((1, 2, 3), base):
        assert (tmp_path / "out" / "value=True" / f"stage{stage}" / "last.pt").read_bytes() == path.read_bytes()
    assert not (tmp_path / "out" / "value=True" / "stage3" / ".lock").exists()


def test_an_unfinished_base_stage_is_refused(tmp_path):
    from pose3dlib.config import config_to_dict, load_config
    from pose3dlib.engine.checkpoint import make_checkpoint, save_checkpoint
    from pose3dlib.engine.runs import checkpoint_path
    from pose3dlib.tools.sweep import seed_run_dir

    _finished_stage(tmp_path / "base", 1)
    save_checkpoint(checkpoint_path(tmp_path / "base", 2), make_checkpoint(
        model_state={}, config=config_to_dict(load_config("configs/smoke.yaml")), stage=2, step=4))  # interrupted
    with pytest.raises(Pose3DError, match=r"stage2/last\.pt is not a finished stage"):
        seed_run_dir(tmp_path / "base", tmp_path / "cell", (1, 2))


def _make_dry_run(make_n, *args: str) -> str:
    done = make_n(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_sweep_and_ablation_follow_profile_and_the_swept_notebooks(make_n):
    smoke = _make_dry_run(make_n, "sweep", "PROFILE=smoke")
    assert "--config configs/smoke.yaml" in smoke and "--base-run runs/smoke" in smoke
    assert "runs/smoke/.stamps/03_train_depth" in smoke and "configs/cpu.yaml" not in smoke
    evaluation_only = _make_dry_run(make_n, "sweep", "PROFILE=smoke", "SWEEP_NOTEBOOKS=06_eval_mpjpe",
                                    "SWEEP_PARAM=eval.flip_test", "SWEEP_VALUES=true,false")
    assert "runs/smoke/.stamps/04_train_geometry" in evaluation_only  # the base run needs all three stages
    assert "--profile smoke" in _make_dry_run(make_n, "ablation", "PROFILE=smoke")
    assert "configs/smoke.yaml" in _make_dry_run(make_n, "unseen-check", "PROFILE=smoke")
    assert "--config configs/cpu.yaml" in _make_dry_run(make_n, "sweep", "SWEEP_PROFILE=cpu", "PROFILE=smoke")


def test_make_sweep_of_another_key_needs_its_values(make_n):
    """Only the geometric weight has default values: another key without SWEEP_VALUES stops make."""
    done = make_n("sweep", "PROFILE=smoke", "SWEEP_PARAM=train.stage3.lr")
    assert done.returncode != 0 and "SWEEP_VALUES is empty" in done.stderr and "train.stage3.lr" in done.stderr, done
    assert "--values" not in done.stdout
    assert '--values="0,0.01"' in _make_dry_run(make_n, "sweep", "PROFILE=smoke")  # the geometric weight keeps its defaults


def test_a_cell_is_re_seeded_when_its_copy_was_cut_off_or_the_base_run_changed(tmp_path):
    import os

    from pose3dlib.tools.sweep import seed_run_dir

    base, cell = tmp_path / "base", tmp_path / "cell"
    paths = {stage: _finished_stage(base, stage) for stage in (1, 2)}
    seed_run_dir(base, cell, (1, 2))
    assert all((cell / f"stage{s}" / "last.pt").read_bytes() == paths[s].read_bytes() for s in (1, 2))
    cut = cell / "stage2" / "last.pt"
    cut.unlink()
    cut.write_bytes(paths[2].read_bytes()[:100])  # a copy interrupted part-way (not a link any more)
    (cell / "stage2" / ".last.pt.4194304.tmp").write_bytes(b"\x02")  # a killed run's temporary (pid 2**22: no process has it)
    seed_run_dir(base, cell, (1, 2))
    assert cut.read_bytes() == paths[2].read_bytes() and not (cell / "stage2" / ".last.pt.4194304.tmp").exists()
    old = paths[1].read_bytes()
    paths[1].unlink()
    retrained = _finished_stage(base, 1, tag=7)  # the base run trained again: a new file, not the linked one
    assert retrained.read_bytes() != old
    paths[2].unlink()
    paths[2] = _finished_stage(base, 2, tag=7)  # and its Stage 2 from the new Stage 1, as make reproduce does
    seed_run_dir(base, cell, (1, 2))
    assert (cell / "stage1" / "last.pt").read_bytes() == retrained.read_bytes()
    assert os.path.samefile(cell / "stage1" / "last.pt", retrained)
    assert os.path.samefile(cell / "stage2" / "last.pt", paths[2])
    assert sorted(p.name for p in (cell / "stage2").iterdir()) == ["last.pt"]


def test_a_finished_evaluation_is_skipped_until_its_checkpoint_config_data_or_library_changes(tmp_path, monkeypatch):
    from pose3dlib.config import load_config
    from pose3dlib.engine import runs
    from pose3dlib.tools.sweep import is_up_to_date

    cell = tmp_path / "value=0,seed=0"
    (cell / "stage3").mkdir(parents=True)
    (cell / "stage3" / "last.pt").write_bytes(b"weights")
    cfg = load_config("configs/smoke.yaml", ["train.stage3.geometric_weight=0"])
    assert not is_up_to_date("06_eval_mpjpe", cell, cfg, (3,))  # never run
    (cell / "06_eval_mpjpe.ipynb").write_text("{}")
    runs.eval_csv_path(cell).write_text("stage,split,protocol,action,value\n")
    runs.record_evaluation(cell, (3,), cfg)
    assert is_up_to_date("06_eval_mpjpe", cell, cfg, (3,))
    assert not is_up_to_date("06_eval_mpjpe", cell, cfg, (2, 3))  # other stages scored
    other_eval = load_config("configs/smoke.yaml", ["train.stage3.geometric_weight=0", "eval.flip_test=false"])
    assert not is_up_to_date("06_eval_mpjpe", cell, other_eval, (3,))
    runs.eval_csv_path(cell).write_text("stage,split,protocol,action,value\nrewritten\n")  # a manual evaluate since
    assert not is_up_to_date("06_eval_mpjpe", cell, cfg, (3,))
    runs.record_evaluation(cell, (3,), cfg)
    assert is_up_to_date("06_eval_mpjpe", cell, cfg, (3,))
    assert not is_up_to_date("05_demo", cell, cfg, (3,))  # no record of its own: always runs
    monkeypatch.setattr(runs, "library_digest", lambda: "0" * 64)  # the library's code changed since (a fixed metric)
    assert not is_up_to_date("06_eval_mpjpe", cell, cfg, (3,))
    monkeypatch.undo()
    assert is_up_to_date("06_eval_mpjpe", cell, cfg, (3,))
    # a test split converted again under the same config (its download changed in place): scored again
    import json

    from pose3dlib.data.convert.common import DOWNLOAD_STAMP

    wild = tmp_path / "converted_3dhp"
    wild.mkdir()
    (wild / DOWNLOAD_STAMP).write_text(json.dumps({"raw": "/downloads/3dhp", "fingerprint": "aaa"}))
    real = load_config("configs/smoke.yaml", ["train.stage3.geometric_weight=0", f"data.wild_test_dir={wild}"])
    runs.record_evaluation(cell, (3,), real)
    assert is_up_to_date("06_eval_mpjpe", cell, real, (3,))
    (wild / DOWNLOAD_STAMP).write_text(json.dumps({"raw": "/downloads/3dhp", "fingerprint": "bbb"}))
    assert not is_up_to_date("06_eval_mpjpe", cell, real, (3,))
    runs.record_evaluation(cell, (3,), cfg)
    (cell / "stage3" / "last.pt").write_bytes(b"retrained")
    assert not is_up_to_date("06_eval_mpjpe", cell, cfg, (3,))
    assert not is_up_to_date("04_train_geometry", cell, cfg, (3,))  # no executed copy


def test_a_finished_training_notebook_is_skipped_until_its_config_or_start_changes(tmp_path):
    from pose3dlib.config import config_to_dict, load_config
    from pose3dlib.engine.checkpoint import make_checkpoint, save_checkpoint
    from pose3dlib.engine.runs import checkpoint_path, file_digest
    from pose3dlib.tools.sweep import is_up_to_date

    cell = tmp_path / "value=0"
    stage2 = _finished_stage(cell, 2)
    cfg = load_config("configs/smoke.yaml", ["train.stage3.geometric_weight=0"])
    save_checkpoint(checkpoint_path(cell, 3), make_checkpoint(
        model_state={}, config=config_to_dict(cfg), stage=3, extra={"finished": True, "init_digest": file_digest(stage2)}))
    assert not is_up_to_date("04_train_geometry", cell, cfg, (3,))  # no executed notebook yet
    (cell / "04_train_geometry.ipynb").write_text("{}")
    assert is_up_to_date("04_train_geometry", cell, cfg, (3,))
    assert not is_up_to_date("04_train_geometry", cell, load_config("configs/smoke.yaml"), (3,))  # weight 0.01
    stage2.unlink()
    _finished_stage(cell, 2, tag=5)  # Stage 2 changed: Stage 3 started from another checkpoint
    assert not is_up_to_date("04_train_geometry", cell, cfg, (3,))


def test_the_library_digest_follows_every_python_file(tmp_path):
    from pose3dlib.engine.runs import library_digest

    (tmp_path / "sub").mkdir()
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    (tmp_path / "notes.txt").write_text("not code")
    first = library_digest(tmp_path)
    (tmp_path / "notes.txt").write_text("changed")
    assert library_digest(tmp_path) == first
    (tmp_path / "sub" / "b.py").write_text("y = 3\n")
    assert library_digest(tmp_path) != first
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    assert library_digest(tmp_path) == first
    (tmp_path / "sub" / "b.py").rename(tmp_path / "b.py")  # the same bytes under another name
    assert library_digest(tmp_path) != first


@pytest.mark.parametrize("args,message", [
    (("PROFILE=foo",), "PROFILE=foo: configs/foo.yaml not found; the profiles are cpu paper smoke"),
    (("PROFILE=smoke", "REAL_DATA=yes"), "REAL_DATA=yes: expected True or False"),
])
def test_make_reproduce_and_data_stop_on_a_mistyped_profile_or_real_data(make_n, args, message):
    """Without the check, a profile with no config found no rule for its stamps and reported an empty run as done."""
    for target in ("reproduce", "data"):
        done = make_n(target, *args)
        assert done.returncode != 0 and message in done.stderr, done
        assert "run-notebook" not in done.stdout and "prepare-synthetic" not in done.stdout
    assert "run-notebook 01_data_prep" in _make_dry_run(make_n, "reproduce", "PROFILE=smoke", "REAL_DATA=True")



@pytest.mark.parametrize("target, variable", [("reproduce", "PROFILE"), ("data", "PROFILE"), ("sweep", "SWEEP_PROFILE"),
                                              ("ablation", "ABLATION_PROFILE"), ("unseen-check", "UNSEEN_PROFILE")])
def test_make_stops_on_a_config_whose_profile_key_is_not_its_file_name(tmp_path, target, variable):
    """make names run folders after the config file, the commands after its `profile:` key: a copied
    config still saying `profile: smoke` made `make sweep` retrain and replace smoke's sweep."""
    from pose3dlib.engine.paths import PROJECT_ROOT

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    smoke = (PROJECT_ROOT / "configs" / "smoke.yaml").read_text()
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "mine.yaml").write_text(smoke)  # a copy, key unchanged
    (tmp_path / "configs" / "bare.yaml").write_text(smoke.replace("profile: smoke\n", ""))
    (tmp_path / "configs" / "quoted.yaml").write_text(smoke.replace("profile: smoke", '"profile" : "quoted"  # mine'))

    def make_n(name: str) -> subprocess.CompletedProcess:
        return subprocess.run(["make", "-n", "--no-print-directory", "-f", str(PROJECT_ROOT / "Makefile"), target,
                               f"{variable}={name}"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)

    done = make_n("mine")
    assert done.returncode != 0 and (f"{variable}=mine: configs/mine.yaml says profile: smoke; make names the run "
                                     "folders after the file and the commands after that key, so set `profile: mine` "
                                     "in it") in done.stderr, done
    done = make_n("bare")
    assert done.returncode != 0 and ("configs/bare.yaml has no line `profile: NAME` that make reads (a config without "
                                     "the key is the paper profile)") in done.stderr
    quoted = make_n("quoted").stderr
    assert "says profile" not in quoted and "no line `profile" not in quoted


def test_seeds_repeat_once_and_negative_seeds_name_the_option():
    assert parse_seeds("0,0,2,0") == [0, 2]
    with pytest.raises(Pose3DError, match=r"--seeds-bc '0,-1': seeds are integers >= 0, got \[-1\]"):
        parse_seeds("0,-1", "--seeds-bc")


@pytest.mark.parametrize("param, values, seeds, notebooks, message", [
    ("train.stage3.geometric_weight", [0.01, "1e-2"], None, ["04_train_geometry", "06_eval_mpjpe"],
     r"0.01 and '1e-2' are the same value of train.stage3.geometric_weight"),
    ("seed", [1, 2], [0], ["04_train_geometry", "06_eval_mpjpe"], r"a sweep of seed takes no --seeds"),
    ("train.stage2.lr", [1e-3, 1e-2], None, ["04_train_geometry", "06_eval_mpjpe"],
     r"none of them trains Stage 2, so every value would reuse the base run's Stage 2; add 03_train_depth"),
])
def test_sweeps_that_would_count_or_reuse_runs_wrongly_are_refused(tmp_path, monkeypatch, param, values, seeds,
                                                                   notebooks, message):
    calls: list = []
    _recording_execute(monkeypatch, calls)
    for stage in (1, 2):
        _finished_stage(tmp_path / "base", stage)
    with pytest.raises(Pose3DError, match=message):
        run_sweep(param, values, notebooks, tmp_path / "base", tmp_path / "out", "configs/smoke.yaml", seeds=seeds)
    assert calls == [] and not (tmp_path / "out").exists()
    # the stage's own notebook trains it: that sweep starts
    with pytest.raises(_Stop):
        run_sweep("train.stage3.lr", [1e-4], ["04_train_geometry", "06_eval_mpjpe"], tmp_path / "base",
                  tmp_path / "out", "configs/smoke.yaml")


def test_a_smaller_rerun_does_not_drop_earlier_runs_from_the_summary(tmp_path, monkeypatch):
    calls: list = []
    _recording_execute(monkeypatch, calls)
    for stage in (1, 2):
        _finished_stage(tmp_path / "base", stage)
    out = tmp_path / "out"
    out.mkdir()
    write_sweep_csv(_rows({"0": {("wild_test", "p1_mpjpe"): 1.0}, "0.01": {("wild_test", "p1_mpjpe"): 2.0}}, seed=0),
                    out / "sweep.csv")
    with pytest.raises(Pose3DError, match=r"sweep.csv holds runs this sweep would drop from its summary "
                                          r"\(value=0,seed=0\): give their values and seeds too"):
        run_sweep("train.stage3.geometric_weight", [0.01], ["04_train_geometry", "06_eval_mpjpe"], tmp_path / "base",
                  out, "configs/smoke.yaml", seeds=[0])
    assert calls == []
    with pytest.raises(_Stop):  # the same runs and more: carries on; or --replace
        run_sweep("train.stage3.geometric_weight", [0, 0.01, 0.1], ["04_train_geometry", "06_eval_mpjpe"],
                  tmp_path / "base", out, "configs/smoke.yaml", seeds=[0])
    with pytest.raises(_Stop):
        run_sweep("train.stage3.geometric_weight", [0.01], ["04_train_geometry", "06_eval_mpjpe"], tmp_path / "base",
                  out, "configs/smoke.yaml", seeds=[0], replace=True)


def test_the_summary_shows_the_last_stage_the_sweep_scored(tmp_path):
    rows = [{"param_value": "0", "seed": "", "stage": "stage2", "split": "wild_test", "protocol": "p1_mpjpe",
             "action": "all", "value": 300.0}]
    write_sweep_csv(rows, tmp_path / "sweep.csv")
    table = summarize(tmp_path / "sweep.csv", "train.stage2.lr")
    assert "300.0" in table  # Stage 2 rows, not an empty Stage 3 table


def test_make_sweep_stops_on_a_mistyped_profile_and_passes_replace(make_n):
    done = make_n("sweep", "SWEEP_PROFILE=nope")
    assert done.returncode != 0 and "SWEEP_PROFILE=nope: configs/nope.yaml not found" in done.stderr, done
    assert "--replace" in _make_dry_run(make_n, "sweep", "PROFILE=smoke", "REPLACE=True")
    assert "--replace" not in _make_dry_run(make_n, "sweep", "PROFILE=smoke")
    assert "--replace" in _make_dry_run(make_n, "ablation", "PROFILE=smoke", "REPLACE=True")
    for target, value in (("ablation", "True"), ("unseen-check", "true")):  # run on synthetic data
        done = make_n(target, "PROFILE=smoke", f"REAL_DATA={value}")
        assert done.returncode != 0 and f"REAL_DATA={value}: make ablation and make unseen-check run on " \
            "the synthetic data" in done.stderr, target
    done = make_n("sweep", "PROFILE=smoke", "REAL_DATA=yes")
    assert done.returncode != 0 and "REAL_DATA=yes: expected True or False" in done.stderr, done


def test_make_sweep_on_real_data_builds_on_the_real_data_run(make_n):
    """REAL_DATA=True: the base steps are make reproduce REAL_DATA=True's, in runs/<profile>-real (the name
    runs.run_name gives the sweep's own folder), and the sweep reads the converted downloads."""
    from pose3dlib.engine.runs import default_run_dir, run_name

    real = _make_dry_run(make_n, "sweep", "PROFILE=smoke", "REAL_DATA=True")
    assert f"--base-run runs/{run_name('smoke', real_data=True)}" in real and "--real-data" in real
    assert default_run_dir("smoke", real_data=True).name == "smoke-real"
    # the base run's steps, as make reproduce REAL_DATA=True runs them: notebook 01 converts the downloads
    assert "runs/smoke-real/.stamps/03_train_depth" in real and "real-data-overrides --config configs/smoke.yaml" in real
    assert "run-notebook 01_data_prep runs/smoke-real/01_data_prep.ipynb" in real and "use_real_data True" in real
    synthetic = _make_dry_run(make_n, "sweep", "PROFILE=smoke")
    assert "--real-data" not in synthetic and "smoke-real" not in synthetic and "--base-run runs/smoke " in synthetic


# What `real_data_overrides` gives the smoke config with a Human3.6M download: its converted set, and no
# synthetic lab validation split (so Stages 1-2 are trained on other data than the synthetic run's).
REAL_H36M = ["data.raw_h36m_dir=/downloads/h36m", "data.h36m_dir=data/converted/smoke/h36m", 'data.lab_val_dir=""']


def test_every_cell_reads_the_overrides_given_for_all_of_them_first(tmp_path, monkeypatch):
    """base_overrides (the real-data ones) come first in every cell's overrides; a base run trained without
    them is refused before anything runs; one of the swept key or, with seeds, of the seed is refused."""
    calls: list = []
    _recording_execute(monkeypatch, calls)
    for stage in (1, 2):
        _finished_stage(tmp_path / "synthetic", stage)
        _finished_stage(tmp_path / "real", stage, overrides=REAL_H36M)
    key = "train.stage3.geometric_weight"
    with pytest.raises(Pose3DError, match=r"stage1/last\.pt was trained with another config or other data than the "
                                          r"sweep's \(.*data\.h36m_dir"):
        run_sweep(key, [0, 0.01], ["04_train_geometry", "06_eval_mpjpe"], tmp_path / "synthetic", tmp_path / "out",
                  "configs/smoke.yaml", base_overrides=REAL_H36M)
    for overrides, seeds, given in (([f"{key}=1"], None, "the swept key"),
                                    (["train.stage3={geometric_weight: 1}"], None, "the swept key"),
                                    (["seed=3"], [0], r"the seed, which --seeds \[0\] set per cell")):
        with pytest.raises(Pose3DError, match=rf"sweep of {re.escape(key)}: the override '{re.escape(overrides[0])}' "
                                              rf"given for every cell sets {given}, which the cells' own overrides"):
            run_sweep(key, [0, 0.01], ["04_train_geometry", "06_eval_mpjpe"], tmp_path / "real", tmp_path / "out",
                      "configs/smoke.yaml", seeds=seeds, base_overrides=[*REAL_H36M, *overrides])
    assert calls == [] and not (tmp_path / "out").exists()
    with pytest.raises(_Stop):
        run_sweep(key, [0, 0.01], ["04_train_geometry", "06_eval_mpjpe"], tmp_path / "real", tmp_path / "out",
                  "configs/smoke.yaml", seeds=[1], base_overrides=REAL_H36M)
    assert [name for name, _ in calls] == ["04_train_geometry"]
    assert calls[0][1]["overrides"] == [*REAL_H36M, f"{key}=0", "seed=1"]
    # a seed given for every cell of a sweep without seeds is kept: there it is the cells' seed
    with pytest.raises(_Stop):
        run_sweep(key, [0], ["04_train_geometry", "06_eval_mpjpe"], tmp_path / "real", tmp_path / "out2",
                  "configs/smoke.yaml", base_overrides=[*REAL_H36M, "seed=0"])
    assert calls[1][1]["overrides"] == [*REAL_H36M, "seed=0", f"{key}=0"]


def test_a_base_stage_trained_on_an_earlier_conversion_of_the_download_is_refused(tmp_path, monkeypatch):
    """The base run's stages record the download they were trained on: converted again since (the download
    changed), the folder no longer holds it, and the sweep says so before any cell runs."""
    import json

    from pose3dlib.data.convert.common import DOWNLOAD_STAMP

    calls: list = []
    _recording_execute(monkeypatch, calls)
    converted = tmp_path / "converted_h36m"
    converted.mkdir()
    (converted / DOWNLOAD_STAMP).write_text(json.dumps({"raw": "/downloads/h36m", "fingerprint": "aaa"}))
    real = ["data.raw_h36m_dir=/downloads/h36m", f"data.h36m_dir={converted}", 'data.lab_val_dir=""']
    for stage in (1, 2):
        _finished_stage(tmp_path / "base", stage, overrides=real, data={"h36m_dir": {"download": "aaa"}, "mpii_dir": None})
    with pytest.raises(_Stop):  # the conversion it was trained on: reused
        run_sweep("train.stage3.geometric_weight", [0], ["04_train_geometry", "06_eval_mpjpe"], tmp_path / "base",
                  tmp_path / "out", "configs/smoke.yaml", base_overrides=real)
    (converted / DOWNLOAD_STAMP).write_text(json.dumps({"raw": "/downloads/h36m", "fingerprint": "bbb"}))
    with pytest.raises(Pose3DError, match=r"stage1/last\.pt was trained with another config or other data than the "
                                          r"sweep's \(data\.h36m_dir = .* was converted again since it was trained on "
                                          r"it: its download data\.raw_h36m_dir = /downloads/h36m changed"):
        run_sweep("train.stage3.geometric_weight", [0], ["04_train_geometry", "06_eval_mpjpe"], tmp_path / "base",
                  tmp_path / "out2", "configs/smoke.yaml", base_overrides=real)
    assert len(calls) == 1


def test_sweep_command_with_real_data_uses_the_real_data_run_and_its_own_folder(tmp_path, monkeypatch, capsys):
    """`sweep --real-data`: the overrides of real_data_overrides, runs/<profile>-real as the base run and
    <out>/<profile>-real/<param>/; a config naming no download is an error naming the file."""
    from pose3dlib.engine import runs
    from pose3dlib.engine.paths import PROJECT_ROOT
    from pose3dlib.tools import sweep
    from pose3dlib.tools.cli import main

    seen = {}

    def record(param, values, notebooks, base_run, out, config_file, **kw):
        seen.update(base_run=base_run, out=out, **kw)
        raise _Stop

    config = tmp_path / "with_download.yaml"
    config.write_text((PROJECT_ROOT / "configs" / "smoke.yaml").read_text()
                      .replace("data:\n", "data:\n  raw_h36m_dir: /downloads/h36m\n", 1))
    # nothing converted yet: named before anything runs, with what converts it
    assert main(["sweep", "--config", str(config), "--real-data", "--out", str(tmp_path / "sweeps")]) == 2
    assert ("data.h36m_dir = data/converted/smoke/h36m is not converted yet (data.raw_h36m_dir = /downloads/h36m): "
            "convert it first: `make sweep PROFILE=smoke REAL_DATA=True ...`" in capsys.readouterr().err)
    assert main(["sweep", "--config", str(config), "--real-data", "--param", "data.raw_h36m_dir", "--values", "a,b"]) == 2
    assert ("sweep of data.raw_h36m_dir with --real-data: every cell would read the sets converted from the config's "
            "downloads" in capsys.readouterr().err)
    from pose3dlib.data.convert import real

    monkeypatch.setattr(real, "check_converted", lambda data_cfg, hint: None)  # converted, from here on
    assert main(["sweep", "--config", str(config), "--real-data", "--param", "data.h36m_dir", "--values", "a,b"]) == 2
    assert ("the override 'data.h36m_dir=data/converted/smoke/h36m' that --real-data gives every cell sets the swept "
            "key" in capsys.readouterr().err)
    monkeypatch.setattr(sweep, "run_sweep", record)
    with pytest.raises(_Stop):
        main(["sweep", "--config", str(config), "--real-data", "--out", str(tmp_path / "sweeps")])
    assert seen["base_overrides"] == REAL_H36M[1:]  # the download itself is in this config already
    assert seen["base_run"] == runs.default_run_dir("smoke", real_data=True)
    assert seen["out"] == tmp_path / "sweeps" / "smoke-real" / "train.stage3.geometric_weight"
    with pytest.raises(_Stop):
        main(["sweep", "--config", str(config), "--out", str(tmp_path / "sweeps")])
    assert seen["base_overrides"] == [] and seen["base_run"] == runs.default_run_dir("smoke")
    assert seen["out"] == tmp_path / "sweeps" / "smoke" / "train.stage3.geometric_weight"
    assert main(["sweep", "--config", "configs/smoke.yaml", "--real-data"]) == 2
    assert "configs/smoke.yaml: no official download configured: set data.raw_h36m_dir" in capsys.readouterr().err


def test_a_path_value_names_one_folder_not_nested_ones(tmp_path, monkeypatch):
    calls = _recorded_sweep_on_a_finished_base(tmp_path / "base", monkeypatch)
    with pytest.raises(_Stop):
        run_sweep("data.wild_test_dir", ["data/synthetic/smoke/wild_test"], ["06_eval_mpjpe"], tmp_path / "base",
                  tmp_path / "out", "configs/smoke.yaml")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["value=data%2Fsynthetic%2Fsmoke%2Fwild_test"]
    assert calls[0][1]["overrides"] == ["data.wild_test_dir=data/synthetic/smoke/wild_test"]  # the value itself


def test_make_reproduce_reruns_the_steps_after_a_stage_retrained_by_hand(make_n, tmp_path):
    """Every step's stamp is up to date, but Stage 2's checkpoint is newer than the step after it
    (`python -m pose3dlib train --stage 2` by hand): notebooks 04-06 run again, 01-03 do not."""
    import os
    import time

    run = tmp_path / "run"
    now = time.time() + 1000  # later than every source file of the checkout
    steps = ["01_data_prep", "02_train_2d", "03_train_depth", "04_train_geometry", "05_demo", "06_eval_mpjpe"]
    for k, step in enumerate(steps):
        (run / ".stamps").mkdir(parents=True, exist_ok=True)
        (run / ".stamps" / step).touch()
        os.utime(run / ".stamps" / step, (now + 10 * k, now + 10 * k))
    for stage in (1, 2, 3):  # steps[stage] trains it: written between the stamps before and of that step
        path = run / f"stage{stage}" / "last.pt"
        path.parent.mkdir()
        path.touch()
        os.utime(path, (now + 10 * stage - 5, now + 10 * stage - 5))
    assert "run-notebook" not in _make_dry_run(make_n, "reproduce", "PROFILE=smoke", f"RUN_DIR={run}")
    os.utime(run / "stage2" / "last.pt", (now + 1000, now + 1000))
    ran = [s for s in steps if f"run-notebook {s}" in _make_dry_run(make_n, "reproduce", "PROFILE=smoke",
                                                                      f"RUN_DIR={run}")]
    assert ran == steps[3:]
    os.utime(run / "stage2" / "last.pt", (now + 15, now + 15))  # back in step
    (run / "stage3" / "last.pt").unlink()  # Stage 3's folder emptied by hand: trained again, and what follows
    dry = _make_dry_run(make_n, "reproduce", "PROFILE=smoke", f"RUN_DIR={run}")
    ran = [s for s in steps if f"run-notebook {s}" in dry]
    assert ran == steps[3:]
    # each step removes its old stamp before it runs: interrupted, the forced step is not taken for done
    # (the stamp outlived the interrupted run, and the unfinished last.pt then looked newer than step 05)
    for step in ran:
        assert -1 < dry.index(f"rm -f {run}/.stamps/{step}") < dry.index(f"run-notebook {step}"), step
    (run / "stage1" / "last.pt").unlink()
    ran = [s for s in steps if f"run-notebook {s}" in _make_dry_run(make_n, "reproduce", "PROFILE=smoke",
                                                                      f"RUN_DIR={run}")]
    assert ran == steps[1:]


def test_make_reproduce_reruns_every_step_after_the_synthetic_set_was_written_again(make_n, tmp_path):
    """`prepare-synthetic --seed 7` over the profile's set after a finished run: make reported the run as
    done and kept the metrics of checkpoints trained on other people than the folders held."""
    import os
    import time

    run, manifest = tmp_path / "run", tmp_path / "synthetic" / "manifest.json"
    now = time.time() + 1000  # later than every source file of the checkout
    steps = ["01_data_prep", "02_train_2d", "03_train_depth", "04_train_geometry", "05_demo", "06_eval_mpjpe"]
    (run / ".stamps").mkdir(parents=True)
    for k, step in enumerate(steps):
        (run / ".stamps" / step).touch()
        os.utime(run / ".stamps" / step, (now + 10 * k, now + 10 * k))
    for stage in (1, 2, 3):
        (run / f"stage{stage}").mkdir()
        (run / f"stage{stage}" / "last.pt").touch()
        os.utime(run / f"stage{stage}" / "last.pt", (now + 10 * stage - 5, now + 10 * stage - 5))
    manifest.parent.mkdir()
    manifest.touch()
    os.utime(manifest, (now - 5, now - 5))  # written by notebook 01, before its stamp

    def ran() -> list[str]:
        out = _make_dry_run(make_n, "reproduce", "PROFILE=smoke", f"RUN_DIR={run}", f"SYNTHETIC_MANIFEST={manifest}")
        return [s for s in steps if f"run-notebook {s}" in out]

    assert ran() == []
    os.utime(manifest, (now + 1000, now + 1000))  # written again since
    assert ran() == steps


def test_a_base_stage_of_another_recipe_is_refused_and_seeds_alone_are_not(tmp_path):
    """A base Stage 2 retrained by hand with another learning rate: the cells built Stage 3 on it while
    their config.yaml named the sweep config's rate. The cells' own seeds are not a difference."""
    from pose3dlib.config import load_config
    from pose3dlib.tools.sweep import seed_run_dir

    for stage in (1, 2):
        _finished_stage(tmp_path / "base", stage)
    cell = load_config("configs/smoke.yaml", ["train.stage3.lr=1e-4", "seed=3"])
    seed_run_dir(tmp_path / "base", tmp_path / "cell", (1, 2), cell)  # same recipe: the seed and Stage 3 may differ
    # an evaluation-only sweep reuses every stage: its own key is not a difference
    mpii = load_config("configs/smoke.yaml", ["data.mpii_dir=elsewhere"])
    seed_run_dir(tmp_path / "base", tmp_path / "cell3", (1, 2), mpii, ignored=("seed", "data.mpii_dir"))
    with pytest.raises(Pose3DError, match=r"data\.mpii_dir"):  # it is one when not the swept key
        seed_run_dir(tmp_path / "base", tmp_path / "cell4", (1, 2), mpii)
    # the wild test folder never is: no stage reads it (runs.TEST_ONLY_KEYS)
    seed_run_dir(tmp_path / "base", tmp_path / "cell5", (1, 2), load_config("configs/smoke.yaml", ["data.wild_test_dir=elsewhere"]))
    other = load_config("configs/smoke.yaml", ["train.stage2.lr=5e-4"])
    with pytest.raises(Pose3DError, match=r"stage2/last\.pt was trained with another config or other data "
                                          r"than the sweep's "
                                          r"\(train\.stage2\.lr: 0\.001 -> 0\.0005\)"):
        seed_run_dir(tmp_path / "base", tmp_path / "cell2", (1, 2), other)


def test_a_base_stage_trained_from_an_earlier_version_of_the_stage_before_is_refused(tmp_path):
    """The base run's Stage 1 trained again (same config) after its Stage 2: a cell would pair the new
    Stage 1 with a Stage 2 grown from the old one. `make sweep` retrains such a Stage 2 first; the
    command itself must not build on it."""
    from pose3dlib.tools.sweep import seed_run_dir

    for stage in (1, 2):
        _finished_stage(tmp_path / "base", stage)
    seed_run_dir(tmp_path / "base", tmp_path / "cell", (1, 2))  # in step: reused
    _finished_stage(tmp_path / "base", 1, tag=7)  # Stage 1 again, Stage 2 left as it was
    with pytest.raises(Pose3DError, match=r"stage2/last\.pt was not trained from its .*stage1/last\.pt as that "
                                          r"file is now"):
        seed_run_dir(tmp_path / "base", tmp_path / "cell2", (1, 2))
    assert not (tmp_path / "cell2").exists()
    _finished_stage(tmp_path / "base", 2)  # Stage 2 trained again from it: in step again
    seed_run_dir(tmp_path / "base", tmp_path / "cell2", (1, 2))


def test_a_sweep_is_refused_before_any_cell_trains(tmp_path, monkeypatch):
    """What only a later cell would have found: a reused stage trained with another value of the swept key,
    a sweep without the evaluation notebook, and an evaluation-only sweep of a key only training reads."""
    calls = _recorded_sweep_on_a_finished_base(tmp_path / "base", monkeypatch)
    with pytest.raises(Pose3DError, match=r"stage1/last\.pt was trained with another config or other data "
                                          r"than the sweep's "
                                          r"\(train\.batch_size: 8 -> 32\)"):  # Stage 1 reads the batch size too
        run_sweep("train.batch_size", [8, 32], ["04_train_geometry", "06_eval_mpjpe"], tmp_path / "base",
                  tmp_path / "out", "configs/smoke.yaml")
    with pytest.raises(Pose3DError, match=r"each cell's numbers come from 06_eval_mpjpe's metrics\.csv; add 06_eval"):
        run_sweep("train.stage3.lr", [1e-4], ["04_train_geometry"], tmp_path / "base", tmp_path / "out",
                  "configs/smoke.yaml")
    with pytest.raises(Pose3DError, match=r"sweep of data\.flip_prob with notebooks \['06_eval_mpjpe'\] trains nothing"):
        run_sweep("data.flip_prob", [0.0, 0.5], ["06_eval_mpjpe"], tmp_path / "base", tmp_path / "out",
                  "configs/smoke.yaml")
    assert calls == [] and not (tmp_path / "out").exists()  # nothing ran, nothing was made


def test_sweep_and_ablation_evaluations_write_the_cells_own_metrics_csv(tmp_path, monkeypatch):
    """Both score Stage 3 (or the swept stages) only, which notebook 06 would write to metrics_other.csv;
    each reads the run's metrics.csv, so they name it."""
    from pose3dlib.tools import ablation

    step = ablation.Step("c", 0, tmp_path / "c" / "seed=0", ablation.EVAL_NOTEBOOK, None)
    params = ablation.notebook_params(step, "smoke", tmp_path / "config.yaml")
    assert params["metrics_csv"] == str(tmp_path / "c" / "seed=0" / "metrics.csv") and params["stages"] == [3]
    calls: list = []
    _recording_execute(monkeypatch, calls)
    for stage in (1, 2):
        _finished_stage(tmp_path / "base", stage)
    with pytest.raises(_Stop):
        run_sweep("train.stage3.lr", [1e-4], ["04_train_geometry", "06_eval_mpjpe"], tmp_path / "base",
                  tmp_path / "out", "configs/smoke.yaml")
    assert calls and all(c[1]["metrics_csv"] == str(tmp_path / "out" / "value=0.0001" / "metrics.csv") for c in calls)


def test_the_sweep_table_says_what_it_shows_and_what_the_seeds_varied():
    from pose3dlib.tools.sweep import sweep_caption

    row = {"param_value": "0", "split": "wild_test", "protocol": "p1_mpjpe", "action": "all", "value": 1.0}
    seeded = [{**row, "stage": "stage3", "seed": s} for s in ("0", "1")]
    words = sweep_caption(seeded, "stage3")
    assert words.startswith("_Stage 3 of each run, Protocol #1 in mm; mean ± sample sd over the runs of a value")
    assert "(Stage 3); the stages before them are the base run's" in words
    two = sweep_caption([*seeded, *({**r, "stage": "stage2"} for r in seeded)], "stage3")
    assert "(Stages 2, 3)" in two
    assert sweep_caption([{**row, "stage": "stage3", "seed": ""}], "stage3") == "_Stage 3 of each run, Protocol #1 in mm._"


def test_sweep_figure_joins_only_values_that_have_an_order():
    import matplotlib.pyplot as plt

    from pose3dlib.tools.sweep import plot_sweep

    def rows(values):
        return [{"param_value": v, "seed": "", "stage": "stage3", "split": "wild_test", "protocol": "p1_mpjpe",
                 "action": "all", "value": 100.0 + i} for i, v in enumerate(values)]

    for values, style in ((["0", "0.01", "1e-1"], "-"), (["data/synthetic/a", "data/synthetic/b"], "None")):
        fig = plot_sweep(rows(values), "k", columns=[("wild_test", "p1_mpjpe")])
        try:
            assert fig.axes[0].containers[0].lines[0].get_linestyle() == style
        finally:
            plt.close(fig)


def test_a_sweep_that_trains_refuses_a_swept_key_its_reused_stages_read(tmp_path, monkeypatch):
    """The swept key is ignored on reused stages only when every stage is reused (an evaluation-only
    sweep): a sweep of data.h36m_dir that trains Stage 3 would build on Stages 1-2 of the other data."""
    calls = _recorded_sweep_on_a_finished_base(tmp_path / "base", monkeypatch)
    with pytest.raises(Pose3DError, match=r"stage1/last\.pt was trained with another config or other data "
                                          r"than the sweep's "
                                          r"\(data\.h36m_dir: "):
        run_sweep("data.h36m_dir", ["elsewhere/h36m"], ["04_train_geometry", "06_eval_mpjpe"], tmp_path / "base",
                  tmp_path / "out", "configs/smoke.yaml")
    assert calls == []
    with pytest.raises(_Stop):  # evaluation only: every stage reused, the swept key is the point
        run_sweep("data.wild_test_dir", ["elsewhere/wild_test"], ["06_eval_mpjpe"], tmp_path / "base",
                  tmp_path / "out2", "configs/smoke.yaml")


def test_sweep_figure_shows_lab_then_wild_with_the_protocols_in_words():
    """Panels in the other figures' order (lab, wild; the table keeps its columns), legends that spell the
    protocols out, and a title that says the test splits are for reporting."""
    import matplotlib.pyplot as plt

    from pose3dlib.tools.sweep import plot_sweep

    rows = _rows({v: dict.fromkeys(SUMMARY_COLUMNS, 100.0 + i) for i, v in enumerate(["0", "0.01"])})
    assert [split for split, _ in SUMMARY_COLUMNS][0] == "wild_test"
    fig = plot_sweep(rows, "geometric_weight")
    try:
        assert [ax.get_title() for ax in fig.axes] == ["stage3, lab_test", "stage3, wild_test"]
        for ax in fig.axes:
            assert [t.get_text() for t in ax.get_legend().get_texts()] == [
                "Protocol #1, predicted 2D", "Protocol #1, ground-truth 2D"]
            assert ax.get_ylabel() == "MPJPE (mm), lower is better"
        assert "on the test splits: for reporting, not for choosing a value" in fig._suptitle.get_text()
    finally:
        plt.close(fig)


def test_a_reused_base_stage_trained_on_other_synthetic_data_is_refused(tmp_path, smoke_data):
    """A sweep cell never builds on a base stage whose data were regenerated since (another generator
    version or seed): named with the data key and what changed."""
    from pose3dlib.config import config_to_dict, load_config
    from pose3dlib.engine import runs
    from pose3dlib.tools.sweep import check_base_stage

    cfg = load_config("configs/smoke.yaml", smoke_data)
    trained_on = runs.data_identities(cfg)
    ckpt = {"config": config_to_dict(cfg), "extra": {"data": trained_on}}
    check_base_stage(tmp_path / "stage1" / "last.pt", ckpt, cfg, 1)  # the same data: reused
    older = {k: {**v, "seed": v["seed"] + 3} for k, v in trained_on.items()}
    with pytest.raises(Pose3DError, match=r"stage1/last\.pt was trained with another config or other data than the "
                                          r"sweep's \(data\.h36m_dir = .* holds other synthetic data than it was "
                                          r"trained on \(generator seed 3 -> 0\)\); where the swept key itself is "
                                          r"among them, sweep the notebooks that train Stage 1 too .*; otherwise "
                                          r"train that stage again .*"
                                          r"--stage 1 --run-dir " + re.escape(str(tmp_path)) + r" --overwrite`, then "
                                          r"`make reproduce PROFILE=\.\.\.` for the stages after it; for a run on the real "
                                          r"downloads, `make reproduce PROFILE=\.\.\. REAL_DATA=True` converts them again"):
        check_base_stage(tmp_path / "stage1" / "last.pt", {**ckpt, "extra": {"data": older}}, cfg, 1)


def test_a_diverged_seed_is_counted_apart_in_the_sweep_table_not_a_crash():
    """A run whose metric is nan (evaluate writes what it measured): before, the table failed in
    statistics.stdev (AttributeError); now the cell gives the finite seeds' mean ± sd and counts it."""
    col = ("wild_test", "p1_mpjpe")
    rows = []
    for seed, value in enumerate([300.0, float("nan"), 310.0]):
        rows += _rows({"0": {col: value}}, seed=seed)
    cells = [c.strip() for c in sweep_table(rows, "geometric_weight", columns=(col,)).splitlines()[2].strip("|").split("|")]
    assert cells[1] == f"305.0 ± {50 ** 0.5:.1f} (1 not finite)"


def test_numeric_values_are_in_increasing_order_whatever_order_they_were_given_in():
    """SWEEP_VALUES=1,0,0.1: the table and figure followed the typed order, joining the points over an unsorted axis."""
    col = ("wild_test", "p1_mpjpe")
    rows = _rows({"1": {col: 300.0}, "0": {col: 200.0}, "0.1": {col: 250.0}})
    assert [v for v, _ in sweep_curve(rows)] == ["0", "0.1", "1"]
    words = _rows({"quarter": {col: 1.0}, "log_parabola": {col: 2.0}})  # not numbers: as given
    assert [v for v, _ in sweep_curve(words)] == ["quarter", "log_parabola"]


def test_notebooks_out_of_stage_order_or_given_as_paths(tmp_path, monkeypatch):
    """06 before 04 scored each cell's old Stage 3 and then trained it (the table showed the old model's
    numbers): refused before anything runs. The project's notebooks given as paths read as their names
    (before: 'add 06_eval_mpjpe (last)' though it was given, or 'trains nothing')."""
    from pose3dlib.tools.sweep import check_notebook_order, project_notebook_name

    calls: list = []
    _recording_execute(monkeypatch, calls)
    with pytest.raises(Pose3DError, match=r"in the order given, so they must follow the stages, the evaluation last: "
                                          r"04_train_geometry 06_eval_mpjpe"):
        run_sweep("train.stage3.geometric_weight", [0, 0.01], ["06_eval_mpjpe", "04_train_geometry"],
                  tmp_path / "base", tmp_path / "out", "configs/smoke.yaml")
    assert calls == [] and not (tmp_path / "out").exists()
    with pytest.raises(Pose3DError, match="03_train_depth 04_train_geometry"):
        check_notebook_order(["04_train_geometry", "03_train_depth", "06_eval_mpjpe"])
    check_notebook_order(["02_train_2d", "03_train_depth", "04_train_geometry", "06_eval_mpjpe"])
    check_notebook_order(["my_own.ipynb", "04_train_geometry", "06_eval_mpjpe"])  # a notebook of one's own: anywhere
    assert project_notebook_name("notebooks/04_train_geometry.ipynb") == "04_train_geometry"
    assert project_notebook_name("elsewhere/04_train_geometry.ipynb") == "elsewhere/04_train_geometry.ipynb"
    for stage in (1, 2):
        _finished_stage(tmp_path / "base", stage)
    with pytest.raises(_Stop):  # given as paths, planned as by name: Stage 3 trained, the evaluation found
        run_sweep("train.stage3.geometric_weight", [0, 0.01],
                  ["notebooks/04_train_geometry.ipynb", "notebooks/06_eval_mpjpe.ipynb"],
                  tmp_path / "base", tmp_path / "out", "configs/smoke.yaml", seeds=[0])
    assert [name for name, _ in calls] == ["04_train_geometry"]


def test_make_sweep_refuses_a_misspelt_notebook_before_the_base_run_and_passes_negative_values(make_n):
    """A misspelt SWEEP_NOTEBOOKS made the base run train its Stage 3 first (the step picked for it); values
    starting with a minus were read by argparse as an option ('expected one argument')."""
    done = make_n("sweep", "PROFILE=smoke", "SWEEP_NOTEBOOKS=04_train_geometyr 06_eval_mpjpe")
    assert done.returncode != 0 and "SWEEP_NOTEBOOKS: notebook not found: 04_train_geometyr" in done.stderr
    assert "stamps" not in done.stdout
    dry = _make_dry_run(make_n, "sweep", "PROFILE=smoke", "SWEEP_VALUES=-1,0",
                        "SWEEP_NOTEBOOKS=notebooks/04_train_geometry.ipynb 06_eval_mpjpe")
    assert '--values="-1,0"' in dry and "runs/smoke/.stamps/03_train_depth" in dry  # the path read as its name
    import argparse

    from pose3dlib.tools.sweep import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--config", "configs/smoke.yaml", "--param", "seed", '--values=-1,0', "--seeds="])
    assert args.values == "-1,0"


def test_the_table_lists_numeric_values_in_increasing_order_even_with_gaps():
    """Values 1, 0, 0.1 where 0 has only a lab row: the table's rows were merged in first-seen order (0.1, 1, 0)."""
    lab, wild = ("lab_test", "p1_mpjpe"), ("wild_test", "p1_mpjpe")
    rows = _rows({"1": {lab: 100.0, wild: 300.0}, "0": {lab: 90.0}, "0.1": {lab: 95.0, wild: 250.0}})
    lines = sweep_table(rows, "geometric_weight", columns=(lab, wild)).splitlines()[2:5]
    assert [line.strip("|").split("|")[0].strip() for line in lines] == ["0", "0.1", "1"]

"""pose3dlib.engine.runs: the run-folder layout, stage status and the lock on a stage folder."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

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
    # ... nor the validation and checkpoint cadence (bitwise the same weights: the test below), nor the
    # wild test folder, which training never reads
    assert training_differences(stored, load_config("configs/smoke.yaml", [
        "train.val_every=3", "train.checkpoint_every_steps=5", "data.wild_test_dir=elsewhere/wild_test"])) == []
    assert training_differences(stored, load_config("configs/smoke.yaml", ["data.num_workers=3", "data.flip_prob=0.1"])
                                ) == [f"data.flip_prob: {stored['data']['flip_prob']} -> 0.1"]
    # a stage never reads the later stages' settings; it does read its own and the earlier ones'
    later = load_config("configs/smoke.yaml", ["train.stage3.lr=0.5", "train.stage2.epochs=7"])
    assert training_differences(stored, later, stage=1) == []
    assert [d.split(":")[0] for d in training_differences(stored, later, stage=2)] == ["train.stage2.epochs"]
    assert len(training_differences(stored, later, stage=3)) == 2 == len(training_differences(stored, later))



def test_validation_and_checkpoint_cadence_change_no_weight(smoke_data, tmp_path):
    """runs.RUN_ONLY_KEYS' train.val_every and train.checkpoint_every_steps: a stage validated every
    epoch or every second one, checkpointed per epoch or every 3 steps, ends with the same weights."""
    import torch

    from pose3dlib.config import load_config
    from pose3dlib.engine.distributed import state_digest
    from pose3dlib.engine.train import fit

    threads = torch.get_num_threads()
    digests = []
    try:
        torch.set_num_threads(1)
        for i, cadence in enumerate((["train.val_every=1", "train.checkpoint_every_steps=0"],
                                     ["train.val_every=2", "train.checkpoint_every_steps=3"])):
            cfg = load_config("configs/smoke.yaml", [*smoke_data, "train.stage1.epochs=3", *cadence])
            fit(cfg, 1, tmp_path / f"run{i}")
            ckpt = torch.load(tmp_path / f"run{i}" / "stage1" / "last.pt", map_location="cpu", weights_only=False)
            digests.append((state_digest(ckpt["model"]), ckpt["step"]))
    finally:
        torch.set_num_threads(threads)
    assert digests[0] == digests[1] and digests[0][1] == 18  # three epochs of 6 steps


def test_naming_the_downloads_leaves_a_synthetic_run_alone_but_not_a_converted_one(smoke_data, tmp_path):
    """Only the converters read data.raw_*_dir. Where the training folders hold synthetic data, naming
    the downloads changes nothing a stage trains; where they hold a converted set (no identity of its
    own), another download means other training data."""
    from pose3dlib.config import config_to_dict, load_config
    from pose3dlib.engine.runs import training_differences

    downloads = ["data.raw_h36m_dir=/data/h36m", "data.raw_mpii_dir=/data/mpii", "data.raw_3dhp_dir=/data/3dhp"]
    stored = config_to_dict(load_config("configs/smoke.yaml", smoke_data))
    assert training_differences(stored, load_config("configs/smoke.yaml", [*smoke_data, *downloads])) == []
    converted = [f"data.h36m_dir={tmp_path / 'h36m'}", f"data.mpii_dir={tmp_path / 'mpii'}"]  # no generator manifest
    real = config_to_dict(load_config("configs/smoke.yaml", [*smoke_data, *converted, "data.raw_h36m_dir=/dl/A"]))
    diffs = training_differences(real, load_config("configs/smoke.yaml", [*smoke_data, *converted, *downloads]))
    assert [d.split(":")[0] for d in diffs] == ["data.raw_h36m_dir", "data.raw_mpii_dir"]  # 3DHP trains nothing


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


def _smoke_copy(smoke_data, dst) -> list[str]:
    """A copy of the session's smoke data under `dst` (its manifest included); the --set overrides for it."""
    import shutil
    from pathlib import Path

    src = Path(smoke_data[0].split("=", 1)[1]).parent
    shutil.copytree(src, dst)
    return [o.replace(str(src), str(dst)) for o in smoke_data]


def _rewrite_manifest(root, **changes) -> None:
    import json

    manifest = json.loads((root / "manifest.json").read_text())
    manifest.update({k: v for k, v in changes.items() if k != "synthetic"})
    manifest["synthetic"].update(changes.get("synthetic", {}))
    (root / "manifest.json").write_text(json.dumps(manifest))


def test_a_stage_trained_on_other_synthetic_data_is_stale_and_cannot_be_resumed(tmp_path, smoke_data, train_cli):
    """The data regenerated under the same config (a newer generator, another seed) make a finished stage
    stale, with the reason; the worker count is not part of the data; --resume on other data is refused."""
    from pose3dlib.config import load_config
    from pose3dlib.engine.checkpoint import load_checkpoint

    data = tmp_path / "data"
    overrides = _smoke_copy(smoke_data, data)
    cfg = load_config("configs/smoke.yaml", overrides)
    run = tmp_path / "run"
    assert train_cli(run, 1, overrides).returncode == 0
    recorded = load_checkpoint(runs.checkpoint_path(run, 1))["extra"]["data"]
    assert set(recorded) == set(runs.TRAINING_DATA_KEYS) and recorded["mpii_dir"]["seed"] == cfg.seed
    assert "workers" not in recorded["mpii_dir"]["synthetic"]
    assert runs.stage_status(cfg, 1, run) == "finished"

    _rewrite_manifest(data, synthetic={"workers": 7})  # how it ran, not what it wrote
    assert runs.stage_status(cfg, 1, run) == "finished"
    # regenerated with other test-only sizes (more lab test people, a larger wild test split): the
    # training rows are the same (each split has its own random streams), so nothing is trained again
    _rewrite_manifest(data, synthetic={"h36m_test_subjects": 3, "wild_test": 99})
    assert runs.stage_status(cfg, 1, run) == "finished"
    more_tests = load_config("configs/smoke.yaml", [*overrides, "synthetic.h36m_test_subjects=3", "synthetic.wild_test=99"])
    assert runs.stage_status(more_tests, 1, run) == "finished"  # and the config asking for them
    # a checkpoint that recorded more sizes of its split than count now (an older record) is compared on these
    ckpt = load_checkpoint(runs.checkpoint_path(run, 1))
    older = {k: {**v, "synthetic": {**v["synthetic"], "retired_size": 5}} for k, v in ckpt["extra"]["data"].items()}
    assert runs.data_changes({**ckpt, "extra": {**ckpt["extra"], "data": older}}, cfg) == []
    _rewrite_manifest(data, synthetic={"mpii_train": 47})  # the 2D training split itself
    assert runs.stale_reasons(cfg, 1, run) == [f"data.mpii_dir = {cfg.data.mpii_dir} holds other synthetic data than "
                                               f"it was trained on (synthetic.mpii_train {cfg.synthetic.mpii_train} -> 47)"]
    _rewrite_manifest(data, synthetic={"mpii_train": cfg.synthetic.mpii_train})
    _rewrite_manifest(data, version=recorded["mpii_dir"]["version"] + 1, seed=5)  # written anew, other people
    reasons = runs.stale_reasons(cfg, 1, run)
    assert runs.stage_status(cfg, 1, run) == "stale"
    assert reasons == [f"data.{key} = {getattr(cfg.data, key)} holds other synthetic data than it was trained on "
                       f"(generator version {recorded[key]['version']} -> {recorded[key]['version'] + 1}, generator seed 0 -> 5)"
                       for key in runs.TRAINING_DATA_KEYS]
    r = train_cli(run, 1, overrides, "--resume")
    assert r.returncode == 2 and "holds other synthetic data than it was trained on" in r.stderr, r.stderr[-2000:]


def test_data_generated_with_other_sizes_than_the_config_are_refused(tmp_path, smoke_data):
    """A config edited after its data were made: training and evaluation name the keys instead of using
    the data as they are; the worker count and, for training, the test-only keys do not count."""
    from pose3dlib.config import load_config
    from pose3dlib.engine.errors import DataError
    from pose3dlib.synthetic.generator import check_not_stale

    dirs = [o.split("=", 1)[1] for o in smoke_data]
    cfg = load_config("configs/smoke.yaml", [*smoke_data, "synthetic.wild_test=17", "synthetic.workers=3"])
    with pytest.raises(DataError, match=r"manifest\.json: the synthetic wild_test split in .* was generated with other "
                                        r"sizes than the config gives \(synthetic\.wild_test: 16 in the data, 17 in the config\)"):
        check_not_stale(*dirs, synthetic=cfg.synthetic)
    with pytest.raises(DataError, match=r"or read it as it is with --set synthetic\.wild_test=16$"):
        check_not_stale(*dirs, synthetic=cfg.synthetic)
    # each split is compared on its own sizes: the other splits of a config of other sizes pass
    h36m_and_mpii = [d for d in dirs if Path(d).name in ("h36m", "mpii")]
    check_not_stale(*h36m_and_mpii, synthetic=cfg.synthetic)
    check_not_stale(*dirs, synthetic=load_config("configs/smoke.yaml", ["synthetic.workers=3"]).synthetic)
    test_only = load_config("configs/smoke.yaml", ["synthetic.h36m_test_subjects=3"]).synthetic
    check_not_stale(*dirs, synthetic=test_only, ignore=runs.TEST_ONLY_KEYS)
    with pytest.raises(DataError, match="synthetic.h36m_test_subjects: 2 in the data, 3 in the config"):
        check_not_stale(*dirs, synthetic=test_only)


def test_a_generation_with_another_worker_count_is_complete_already(tmp_path, smoke_data):
    """The worker count does not change what the generator writes, so it is not regenerated for it."""
    from pose3dlib.config import load_config
    from pose3dlib.synthetic.generator import generate, is_complete

    data = tmp_path / "data"
    _smoke_copy(smoke_data, data)
    cfg = load_config("configs/smoke.yaml")
    other = load_config("configs/smoke.yaml", [f"synthetic.workers={cfg.synthetic.workers + 2}"]).synthetic
    before = (data / "manifest.json").stat().st_mtime_ns
    assert is_complete(data, other, cfg.seed) and generate(data, other, cfg.seed) == data
    assert (data / "manifest.json").stat().st_mtime_ns == before  # nothing rewritten
    assert not is_complete(data, load_config("configs/smoke.yaml", ["synthetic.mpii_val=17"]).synthetic, cfg.seed)


def test_a_converted_training_set_is_compared_by_the_download_it_was_converted_from(tmp_path):
    """A set `REAL_DATA=True` converted holds a download stamp: a stage trained on it records the download's
    fingerprint, and is stale once the folder holds a conversion of the download changed since, a set
    converted by hand (no stamp), or synthetic data. Where the download or the clone lies is not part of it
    (another download named is a config difference). A checkpoint that recorded no identity is not compared."""
    import json

    from pose3dlib.config import load_config
    from pose3dlib.data.convert.common import DOWNLOAD_STAMP

    folder = tmp_path / "h36m"
    folder.mkdir()

    def stamp(raw: str, fingerprint: str) -> None:
        (folder / DOWNLOAD_STAMP).write_text(json.dumps({"raw": raw, "fingerprint": fingerprint}))

    cfg = load_config("configs/smoke.yaml", [f"data.h36m_dir={folder}", f"data.mpii_dir={tmp_path / 'none'}",
                                             "data.raw_h36m_dir=/downloads/h36m"])
    stamp("/downloads/h36m", "aaa")
    assert runs.data_identities(cfg) == {"h36m_dir": {"download": "aaa"}, "mpii_dir": None}
    ckpt = {"extra": {"data": runs.data_identities(cfg)}}
    assert runs.data_changes(ckpt, cfg) == []
    stamp("/moved/clone/downloads/h36m", "aaa")  # the same download reached from elsewhere: the same data
    assert runs.data_changes(ckpt, cfg) == []
    stamp("/downloads/h36m", "bbb")
    assert runs.data_changes(ckpt, cfg) == [f"data.h36m_dir = {folder} was converted again since it was trained on "
                                            "it: its download data.raw_h36m_dir = /downloads/h36m changed (files "
                                            "added, removed or replaced, or their modification times) or the "
                                            "conversion's settings did (data.h36m_drop_damaged, how the crops are cut)"]
    assert runs.data_changes(ckpt, cfg, ignored=("data.h36m_dir",)) == []
    synthetic = {"generator": "pose3d-synthetic", "version": 1, "seed": 0, "synthetic": {}}
    assert runs.data_changes({"extra": {"data": {"h36m_dir": synthetic}}}, cfg) == [
        f"data.h36m_dir = {folder} holds a converted download where it was trained on synthetic data"]
    assert runs._download_change(ckpt["extra"]["data"]["h36m_dir"], synthetic, cfg, "h36m_dir") == \
        "holds synthetic data where it was trained on a converted download"
    by_hand = [f"data.h36m_dir = {folder} holds no record of its download (no download.json: converted by hand "
               "since?) where it was trained on a conversion of data.raw_h36m_dir = /downloads/h36m"]
    (folder / DOWNLOAD_STAMP).write_text('{"raw": "/downloads/h36m"}')  # not a stamp: no identity
    assert runs.data_identities(cfg)["h36m_dir"] is None and runs.data_changes(ckpt, cfg) == by_hand
    (folder / DOWNLOAD_STAMP).unlink()  # converted by hand
    assert runs.data_changes(ckpt, cfg) == by_hand
    stamp("/downloads/h36m", "bbb")
    assert runs.data_changes({"extra": {"data": {"h36m_dir": None, "mpii_dir": None}}}, cfg) == []  # recorded none


def test_a_stage_trained_on_other_data_than_synthetic_sets_is_named(tmp_path, smoke_data):
    """non_synthetic_training_data: a recorded conversion, or (a checkpoint that recorded no identity) a
    training folder without a synthetic set now; [] for synthetic sets, recorded or found."""
    from pose3dlib.config import config_to_dict, load_config

    cfg = load_config("configs/smoke.yaml", smoke_data)
    synthetic = {"config": config_to_dict(cfg), "extra": {"data": runs.data_identities(cfg)}}
    assert runs.non_synthetic_training_data(synthetic) == []
    assert runs.non_synthetic_training_data({"config": config_to_dict(cfg), "extra": {}}) == []  # found synthetic
    real = load_config("configs/smoke.yaml", [*smoke_data, "data.raw_h36m_dir=/downloads/h36m",
                                              f"data.h36m_dir={tmp_path / 'converted'}"])
    mpii = runs.data_identities(cfg)["mpii_dir"]
    recorded = {"config": config_to_dict(real), "extra": {"data": {"h36m_dir": {"download": "aaa"}, "mpii_dir": mpii}}}
    assert runs.non_synthetic_training_data(recorded) == [
        f"data.h36m_dir = {tmp_path / 'converted'}, converted from data.raw_h36m_dir = /downloads/h36m"]
    # recorded as other data (None: converted by hand, data of your own), whatever the folder holds now
    by_hand = {"config": config_to_dict(cfg), "extra": {"data": {"h36m_dir": None, "mpii_dir": mpii}}}
    assert runs.non_synthetic_training_data(by_hand) == [f"data.h36m_dir = {cfg.data.h36m_dir}, which held no "
                                                         "synthetic set"]
    older = {"config": config_to_dict(real), "extra": {}}  # from before identities were recorded
    assert runs.non_synthetic_training_data(older) == [f"data.h36m_dir = {tmp_path / 'converted'}, which holds no "
                                                       "synthetic set"]


def test_the_conversion_setting_leaves_a_synthetic_run_alone_and_the_mpii_message_names_no_settings(smoke_data):
    """data.h36m_drop_damaged changes what a converted Human3.6M set holds, not a synthetic one: a synthetic run is
    not stale for it (it was, every stage); MPII's conversion has no such settings, so its message names none."""
    from pose3dlib.config import config_to_dict, load_config

    smoke = load_config("configs/smoke.yaml", smoke_data)
    dropping = load_config("configs/smoke.yaml", [*smoke_data, "data.h36m_drop_damaged=true"])
    assert runs.training_differences(config_to_dict(smoke), dropping, 1) == []
    assert runs.training_differences(config_to_dict(smoke), load_config("configs/smoke.yaml", [*smoke_data, "data.sigma=2.0"]), 1)
    mpii = runs._download_change({"download": "a"}, {"download": "b"}, smoke, "mpii_dir")
    assert mpii.endswith("(files added, removed or replaced, or their modification times)")
    assert "h36m_drop_damaged" in runs._download_change({"download": "a"}, {"download": "b"}, smoke, "h36m_dir")


def test_another_profiles_own_run_folder_is_refused_for_training_and_scoring(tmp_path, monkeypatch):
    """A smoke network trained or scored into runs/cpu (papermill's -p run_dir without config_file) would replace
    the cpu run's stages or the metrics.csv the README reads: refused before anything is read or written."""
    from pose3dlib.config import load_config
    from pose3dlib.engine.train import fit
    from pose3dlib.evaluation.evaluate import evaluate_run

    project = tmp_path / "project"
    (project / "configs").mkdir(parents=True)
    for name in ("cpu", "smoke"):
        (project / "configs" / f"{name}.yaml").write_text("profile: x\n")
    monkeypatch.setattr(runs, "RUNS_DIR", project / "runs")
    monkeypatch.setattr(runs, "CONFIG_DIR", project / "configs")
    assert runs.run_dir_profile(project / "runs" / "cpu") == "cpu"
    assert runs.run_dir_profile(project / "runs" / "cpu-real") == "cpu"
    assert runs.run_dir_profile(project / "runs" / "cpu-seed1") is None  # a run folder of one's own
    assert runs.run_dir_profile(project / "runs" / "ablation" / "cpu") is None
    assert runs.run_dir_profile(project / "runs" / "mine") is None  # no configs/mine.yaml
    runs.check_run_dir_profile("cpu", project / "runs" / "cpu")
    runs.check_run_dir_profile("mine", project / "runs" / "mine")
    with pytest.raises(Pose3DError, match=r"run folder .*runs/cpu-real is the 'cpu' profile's \(configs/cpu.yaml\), but "
                                          r"the config is profile 'smoke'.*use the run folder .*runs/smoke "):
        runs.check_run_dir_profile("smoke", project / "runs" / "cpu-real")
    smoke = load_config("configs/smoke.yaml")
    with pytest.raises(Pose3DError, match="is the 'cpu' profile's"):
        fit(smoke, 1, project / "runs" / "cpu")
    with pytest.raises(Pose3DError, match="is the 'cpu' profile's"):
        evaluate_run(smoke, project / "runs" / "cpu")
    assert not (project / "runs").exists()  # nothing written
    # runs/ a link to another disk: the link's path and the real one are both that folder (before, neither matched)
    (tmp_path / "scratch" / "runs").mkdir(parents=True)
    (project / "runs").symlink_to(tmp_path / "scratch" / "runs")
    assert runs.run_dir_profile(project / "runs" / "cpu") == runs.run_dir_profile(tmp_path / "scratch" / "runs" / "cpu") == "cpu"


@pytest.mark.parametrize("run_dir, needle", [
    ("runs/my run", "RUN_DIR='runs/my run': make cannot use a run folder whose name holds a space"),
    ("/tmp/100%run", "holds % or :"), ("/tmp/a:b", "holds % or :"),
    ("runs/smoke/", "RUN_DIR=runs/smoke/: drop the trailing /"),
    ("runs/cpu", "RUN_DIR=runs/cpu is the cpu profile's own run folder, but PROFILE=smoke REAL_DATA=False runs into "
                 "runs/smoke"),
    ("runs/cpu-real", "RUN_DIR=runs/cpu-real is the cpu profile's own run folder"),
    ("runs/smoke-real", "RUN_DIR=runs/smoke-real is the smoke profile's own run folder"),  # synthetic into the real one's
])
def test_make_reproduce_refuses_a_run_folder_it_cannot_name_or_another_profiles(make_n, run_dir, needle):
    """Before: a space ran unrelated rules (the real-data check of 'runs/my'), `RUN_DIR=runs/cpu` with
    PROFILE=smoke replaced the committed cpu notebooks, figures, metrics.csv and README table with smoke ones."""
    done = make_n("reproduce", "PROFILE=smoke", f"RUN_DIR={run_dir}")
    assert done.returncode != 0 and needle in done.stderr, done.stderr[-800:]
    assert done.stdout == ""  # refused before any recipe


def test_make_reproduce_on_real_data_refuses_the_synthetic_runs_folder(make_n):
    """REAL_DATA=True RUN_DIR=runs/cpu passed the profile check (the folder's name is the profile's) and would
    have replaced the committed synthetic run and figures with the real-data run."""
    done = make_n("reproduce", "PROFILE=smoke", "REAL_DATA=True", "RUN_DIR=runs/smoke")
    assert done.returncode != 0 and "PROFILE=smoke REAL_DATA=True runs into runs/smoke-real" in done.stderr, done.stderr
    assert done.stdout == ""


def test_make_reproduce_takes_a_run_folder_of_ones_own(make_n):
    for run_dir in ("runs/smoke", "runs/cpu-seed1", "runs/ablation/cpu/x", "/tmp/elsewhere/run"):
        done = make_n("reproduce", "PROFILE=smoke", f"RUN_DIR={run_dir}")
        assert done.returncode == 0 and f"{run_dir}/02_train_2d.ipynb" in done.stdout, (run_dir, done.stderr[-800:])


def test_make_setup_makes_the_venv_again_in_a_moved_or_copied_clone(tmp_path):
    """A .venv made in another folder imports that folder's pose3dlib (its editable install) and starts that
    folder's kernel: the stamp holds the folder .venv was made in, and setup makes .venv again (venv --clear)
    only where the stamp names another folder. The recipe runs for real, with stub Pythons that log."""
    import shutil

    from pose3dlib.engine.paths import PROJECT_ROOT

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    log = tmp_path / "calls.log"
    stub = tmp_path / "python"
    stub.write_text(f"#!/bin/sh\necho \"$*\" >> {log}\n")
    stub.chmod(0o755)
    stamp = tmp_path / "installed"

    def setup(made_in: str | None) -> list[str]:
        log.write_text("")
        if made_in is None:
            stamp.unlink(missing_ok=True)
        else:
            stamp.write_text(made_in + "\n")
        done = subprocess.run(["make", "--no-print-directory", "setup", f"PY={stub}", f"PYTHON_SYS={stub}",
                               f"STAMP={stamp}", f"VENV={tmp_path / 'venv'}"], cwd=PROJECT_ROOT, capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert stamp.read_text() == f"{PROJECT_ROOT}\n"  # the folder it was made in, for the next make
        return [line for line in log.read_text().splitlines() if "--clear" in line]

    assert setup("/somewhere/else/pose3d") == [f"-m venv --clear {tmp_path / 'venv'}"]  # moved or copied
    assert setup("") == []  # a stamp from before it held the folder: installed again, not made anew
    assert setup(None) == []  # a fresh clone

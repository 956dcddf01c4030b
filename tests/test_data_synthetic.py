"""The synthetic generator: real schemas (read with plain h5py), projection, images, determinism, atomicity."""
from __future__ import annotations

import json

import cv2
import h5py
import numpy as np
import pytest

from pose3dlib import camera
from pose3dlib.config import SyntheticConfig, load_config
from pose3dlib.data.h36m import image_path
from pose3dlib.engine import atomic_io
from pose3dlib.engine.errors import DataError
from pose3dlib.synthetic import generator as synthetic
from pose3dlib.tools.cli import main

TINY = SyntheticConfig(image_size=64, h36m_train=10, h36m_test=6, mpii_train=8, mpii_val=4, wild_test=5, workers=1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return synthetic.generate(tmp_path_factory.mktemp("syn") / "out", TINY, seed=3)


def test_h36m_schema_matches_paper_facts(tiny):
    with h5py.File(tiny / "h36m" / "annot.h5", "r") as f:
        n = TINY.h36m_train + TINY.h36m_test
        shapes = {"id": (n,), "joint_2d": (n, 16, 2), "joint_3d_mono": (n, 16, 3), "bbox": (n, 4),
                  "subject": (n,), "action": (n,), "subaction": (n,), "camera": (n,), "istrain": (n,)}
        for k, shape in shapes.items():
            assert f[k].shape == shape, k
        assert set(f["subject"][f["istrain"][()] == 1]) <= {1, 5, 6, 7, 8}
        assert set(f["subject"][f["istrain"][()] == 0]) <= {9, 11}
        assert set(f["action"][()]) <= set(range(2, 17))
        assert set(f["subaction"][()]) <= {1, 2} and set(f["camera"][()]) <= {1, 2, 3, 4}
        r = 0
        folder = "s_{:02d}_act_{:02d}_subact_{:02d}_ca_{:02d}".format(
            *(int(f[k][r]) for k in ("subject", "action", "subaction", "camera")))
        assert (tiny / "h36m" / "images" / folder / f"{folder}_{int(f['id'][r]):06d}.jpg").is_file()


def test_more_lab_test_people_keep_the_training_rows(tiny, tmp_path):
    """h36m_test_subjects spreads the same test rows over more people (S9, S11, S12, ...); every
    training row, its annotation and its image bytes stay as they were (TINY's one chunk mixes
    training and test rows, the hardest case)."""
    import dataclasses

    more = synthetic.generate(tmp_path / "more", dataclasses.replace(TINY, h36m_test_subjects=4), seed=3)
    with h5py.File(tiny / "h36m" / "annot.h5", "r") as f, h5py.File(more / "h36m" / "annot.h5", "r") as g:
        train = f["istrain"][()] == 1
        assert np.array_equal(train, g["istrain"][()] == 1) and train.any()
        for k in ("id", "joint_2d", "joint_3d_mono", "bbox", "subject", "action", "subaction", "camera"):
            assert np.array_equal(f[k][()][train], g[k][()][train]), k
        assert sorted(set(g["subject"][()][~train])) == [9, 11, 12, 13]
        assert sorted(set(f["subject"][()][~train])) == [9, 11]
        assert not np.array_equal(f["joint_3d_mono"][()][~train], g["joint_3d_mono"][()][~train])
        rows = [(int(f["subject"][r]), int(f["action"][r]), int(f["subaction"][r]), int(f["camera"][r]),
                 int(f["id"][r])) for r in np.flatnonzero(train)]
    for row in rows:
        image = image_path(tiny / "h36m" / "images", *row)
        twin = more / "h36m" / "images" / image.relative_to(tiny / "h36m" / "images")
        assert image.read_bytes() == twin.read_bytes(), image
    assert synthetic.lab_test_subjects(1) == (9,) and synthetic.lab_test_subjects(3) == (9, 11, 12)


def test_mpii_schema_and_dtypes(tiny):
    for split, n in (("train", TINY.mpii_train), ("val", TINY.mpii_val)):
        with h5py.File(tiny / "mpii" / f"{split}.h5", "r") as f:
            assert f["imgname"].dtype.kind == "S" and f["imgname"].shape == (n,)
            for k, shape in {"part": (n, 16, 2), "center": (n, 2), "scale": (n,), "visible": (n, 16),
                             "normalize": (n,), "index": (n,), "person": (n,), "torsoangle": (n,)}.items():
                assert f[k].shape == shape and f[k].dtype == np.float64, k
            part, vis = f["part"][()], f["visible"][()]
            unannotated = np.all(part == 0, axis=-1)
            assert not vis[unannotated].any()  # an unannotated joint is never "visible"
            assert (tiny / "mpii" / "images" / f["imgname"][0].decode()).is_file()
            assert np.all(f["normalize"][()] > 0)


def test_projection_of_3d_lands_on_2d(tiny):
    for split in ("h36m", "wild_test"):
        with h5py.File(tiny / split / "annot.h5", "r") as f:
            uv = camera.project(f["joint_3d_mono"][()], f["intrinsics"][()])
            assert np.abs(uv - f["joint_2d"][()]).max() < 1.0
            assert np.all(f["joint_3d_mono"][:, :, 2] > 1000)  # metres away from the camera


def test_images_are_non_trivial(tiny):
    with h5py.File(tiny / "mpii" / "train.h5", "r") as f:
        name = f["imgname"][0].decode()
    img = cv2.imread(str(tiny / "mpii" / "images" / name))
    assert img.shape == (64, 64, 3) and img.std() > 10
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 200  # textured, not a few flat colours
    # lab: the person is drawn on a plain studio: pixels on the torso differ from the wall corner
    with h5py.File(tiny / "h36m" / "annot.h5", "r") as f:
        row = {k: int(f[k][0]) for k in ("subject", "action", "subaction", "camera", "id")}
        spine = f["joint_2d"][0, 7]
    folder = "s_{subject:02d}_act_{action:02d}_subact_{subaction:02d}_ca_{camera:02d}".format(**row)
    lab = cv2.imread(str(tiny / "h36m" / "images" / folder / f"{folder}_{row['id']:06d}.jpg")).astype(float)
    u, v = np.round(spine).astype(int)
    assert np.abs(lab[v, u] - lab[1, 1]).max() > 25


def test_deterministic_for_a_seed_and_skips_when_complete(tiny, tmp_path):
    again = synthetic.generate(tmp_path / "again", TINY, seed=3)
    with h5py.File(tiny / "h36m" / "annot.h5") as a, h5py.File(again / "h36m" / "annot.h5") as b:
        assert np.array_equal(a["joint_3d_mono"][()], b["joint_3d_mono"][()])
    other = synthetic.generate(tmp_path / "other", TINY, seed=4)
    with h5py.File(tiny / "h36m" / "annot.h5") as a, h5py.File(other / "h36m" / "annot.h5") as b:
        assert not np.array_equal(a["joint_3d_mono"][()], b["joint_3d_mono"][()])
    stamp = (again / "manifest.json").stat().st_mtime_ns
    synthetic.generate(again, TINY, seed=3)  # complete: nothing rewritten
    assert (again / "manifest.json").stat().st_mtime_ns == stamp
    assert json.loads((again / "manifest.json").read_text())["seed"] == 3


def test_incomplete_output_is_not_complete_and_foreign_folder_is_kept(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("user data")
    assert not synthetic.is_complete(out, TINY, 0)
    with pytest.raises(DataError, match="not written by prepare-synthetic"):
        synthetic.generate(out, TINY, 0)
    assert (out / "mine.txt").read_text() == "user data"


def test_leftovers_of_a_killed_run_are_removed_and_a_running_ones_kept(tmp_path, monkeypatch):
    out = tmp_path / "out"
    dead, alive = 4_000_000, 4_000_001  # their liveness is patched below
    monkeypatch.setattr(atomic_io, "process_alive", lambda pid: pid == alive)
    leftovers = [tmp_path / f".out.{dead}.partial", tmp_path / f".out.{dead}.old"]
    kept = [tmp_path / f".out.{alive}.partial", tmp_path / f".other.{dead}.partial", tmp_path / ".out.backup"]
    for folder in leftovers + kept:
        (folder / "h36m").mkdir(parents=True)
    synthetic.generate(out, TINY, seed=3)
    assert (out / synthetic.MANIFEST).is_file()
    assert not any(p.exists() for p in leftovers) and all(p.is_dir() for p in kept)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out"] + [p.name for p in kept])


def test_worker_count_does_not_change_output(tmp_path):
    cfg1 = SyntheticConfig(image_size=32, h36m_train=60, h36m_test=0, mpii_train=1, mpii_val=1, wild_test=1, workers=1)
    cfg2 = SyntheticConfig(**{**cfg1.__dict__, "workers": 2})
    a = synthetic._write_h36m_split(tmp_path / "a", cfg1, 0, 60, 0, wild=False)
    b = synthetic._write_h36m_split(tmp_path / "b", cfg2, 0, 60, 0, wild=False)
    assert a == b == 60
    with h5py.File(tmp_path / "a" / "annot.h5") as fa, h5py.File(tmp_path / "b" / "annot.h5") as fb:
        assert np.array_equal(fa["joint_2d"][()], fb["joint_2d"][()])


def test_render_workers_are_not_forks_of_the_caller():
    # A plain fork of a process that has run OpenCV's thread pool (an evaluation before more data
    # is written) hung now and then in the child's first OpenCV call. The workers come from a
    # fork server (or spawn), which starts from a fresh interpreter.
    assert synthetic._worker_context().get_start_method() in ("forkserver", "spawn")


def test_cli_writes_profile(tmp_path):
    out = tmp_path / "cli"
    assert main(["prepare-synthetic", "--profile", "smoke", "--out", str(out), "--seed", "1"]) == 0
    assert synthetic.is_complete(out, load_config("configs/smoke.yaml").synthetic, 1)


def test_validation_splits_are_new_people_and_leave_the_others_unchanged(tmp_path, tiny):
    cfg = SyntheticConfig(**{**TINY.__dict__, "wild_val": 4, "lab_val": 5})
    out = synthetic.generate(tmp_path / "with_val", cfg, seed=3)
    assert synthetic.is_complete(out, cfg, seed=3) and not synthetic.is_complete(tiny, cfg, seed=3)
    for split in ("h36m", "wild_test"):  # adding validation splits leaves the other splits as they were
        with h5py.File(tiny / split / "annot.h5", "r") as a, h5py.File(out / split / "annot.h5", "r") as b:
            np.testing.assert_array_equal(a["joint_3d_mono"][()], b["joint_3d_mono"][()])
    with h5py.File(out / "lab_val" / "annot.h5", "r") as f:
        assert f["istrain"].shape == (5,) and not f["istrain"][()].any()
        assert set(f["subject"][()]) <= {1, 5, 6, 7, 8}  # new frames of the training subjects
        lab_val = f["joint_3d_mono"][()]
    with h5py.File(out / "wild_val" / "annot.h5", "r") as f, h5py.File(out / "wild_test" / "annot.h5", "r") as t:
        assert f["istrain"].shape == (4,) and set(f["subject"][()]) == {0}
        assert not np.allclose(f["joint_3d_mono"][()], t["joint_3d_mono"][:4])  # not the test people
    with h5py.File(out / "h36m" / "annot.h5", "r") as f:
        train = f["joint_3d_mono"][()]
    assert min(np.abs(train - p).max(axis=(1, 2)).min() for p in lab_val) > 1.0  # no repeated frame


def test_data_from_an_older_generator_version_is_refused_by_training_and_evaluation(tiny, tmp_path):
    import shutil

    from pose3dlib.config import Config, DataConfig
    from pose3dlib.evaluation.evaluate import evaluate_run

    stale = tmp_path / "stale"
    shutil.copytree(tiny, stale)
    synthetic.check_not_stale(stale / "h36m", stale / "mpii", None)  # current version: passes
    synthetic.check_not_stale(tmp_path / "real" / "h36m")  # no manifest (real data): passes
    manifest = json.loads((stale / "manifest.json").read_text())
    (stale / "manifest.json").write_text(json.dumps({**manifest, "version": manifest["version"] - 1}))
    with pytest.raises(DataError, match=r"manifest\.json: synthetic data written by generator version"):
        synthetic.check_not_stale(stale / "h36m")
    cfg = Config(data=DataConfig(h36m_dir=str(stale / "h36m"), mpii_dir=str(stale / "mpii"),
                                 wild_test_dir=str(stale / "wild_test")))
    with pytest.raises(DataError, match="regenerate it"):  # before any checkpoint is looked for
        evaluate_run(cfg, tmp_path / "no_run")


def test_ensure_synthetic_data_generates_only_what_is_missing(tmp_path, monkeypatch):
    """One rule for notebooks 01 and 02 and the ablation: every set the config names (the validation
    sets too) in one folder, generated with the config's seed when one is missing."""
    import dataclasses

    from pose3dlib.config import load_config
    from pose3dlib.engine.errors import ConfigError
    from pose3dlib.synthetic import generator

    calls = []
    monkeypatch.setattr(generator, "generate", lambda root, syn, seed: calls.append((root, seed)) or root)
    names = {"h36m_dir": "h36m", "mpii_dir": "mpii", "wild_test_dir": "wild_test", "lab_val_dir": "lab_val",
             "wild_val_dir": "wild_val"}
    cfg = load_config("configs/smoke.yaml", [f"data.{k}={tmp_path / v}" for k, v in names.items()] + ["seed=7"])
    for folder in list(names.values())[:4]:  # wild_val missing
        (tmp_path / folder).mkdir()
    assert generator.ensure_synthetic_data(cfg) == tmp_path and calls == [(tmp_path, 7)]
    (tmp_path / "wild_val").mkdir()
    assert generator.ensure_synthetic_data(cfg) is None and len(calls) == 1  # nothing missing: nothing done
    assert generator.ensure_synthetic_data(cfg, only_missing=False) == tmp_path and len(calls) == 2
    split = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, mpii_dir=str(tmp_path / "elsewhere" / "mpii")))
    with pytest.raises(ConfigError, match=r"data\.mpii_dir=.*elsewhere.* 2 parents"):
        generator.ensure_synthetic_data(split)


def test_prepare_synthetic_generates_the_data_a_config_of_ones_own_names(tmp_path, capsys):
    """`--config` (not only the three profiles): its `synthetic:` sizes, into the folder its data.*_dir name."""
    from pose3dlib.config import config_to_dict, dump_config, load_config
    from pose3dlib.synthetic.generator import DATA_KEYS
    from pose3dlib.tools.cli import main

    mine = tmp_path / "mine"
    cfg = load_config("configs/smoke.yaml", [f"data.{k}={mine / k.removesuffix('_dir')}" for k in DATA_KEYS])
    path = dump_config(cfg, tmp_path / "mine.yaml")
    assert config_to_dict(load_config(path))["data"]["h36m_dir"] == str(mine / "h36m")
    assert main(["prepare-synthetic", "--config", str(path)]) == 0
    assert (mine / "h36m" / "annot.h5").is_file() and (mine / "mpii" / "train.h5").is_file()
    assert f"wrote: {mine}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:  # one of the two: an argparse usage error
        main(["prepare-synthetic", "--config", str(path), "--profile", "smoke"])
    assert exited.value.code == 2
    assert "error: argument --profile: not allowed with argument --config" in capsys.readouterr().err
    # a folder not named after its key would be generated beside the one the config names: refused
    renamed = dump_config(load_config(path, [f"data.h36m_dir={mine / 'lab3d'}"]), tmp_path / "renamed.yaml")
    assert main(["prepare-synthetic", "--config", str(renamed)]) == 2
    assert f"data.h36m_dir={mine / 'lab3d'} (generated as {mine / 'h36m'})" in capsys.readouterr().err


@pytest.mark.parametrize("key", ["h36m_train", "mpii_train", "mpii_val", "wild_test"])
def test_an_empty_split_is_refused_naming_its_key(tmp_path, key):
    """0 rows of a split the pipeline reads was a bare IndexError inside the generator; in a config file
    or a SyntheticConfig built in code it is refused naming the key, before anything is written."""
    import dataclasses

    from pose3dlib.config import SyntheticConfig, load_config
    from pose3dlib.engine.errors import ConfigError

    with pytest.raises(ConfigError, match=rf"synthetic\.{key}': expected a value >= 1, got 0"):
        load_config("configs/smoke.yaml", [f"synthetic.{key}=0"])
    with pytest.raises(ConfigError, match=rf"synthetic\.{key}': expected a value >= 1, got 0"):
        synthetic.generate(tmp_path / "out", dataclasses.replace(SyntheticConfig(), **{key: 0}))
    assert not (tmp_path / "out").exists()


def test_generating_in_this_process_gives_opencv_its_thread_count_back(tmp_path):
    """Rendering runs OpenCV single-threaded (one worker per core); in the caller's own process (one
    worker) the caller's thread count comes back after, also when rendering fails."""
    import cv2

    from pose3dlib.engine.device import opencv_threads

    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(3)
        synthetic.generate(tmp_path / "out", TINY, seed=4)  # workers=1: rendered here
        assert cv2.getNumThreads() == 3
        with pytest.raises(RuntimeError), opencv_threads(1):
            assert cv2.getNumThreads() == 1
            raise RuntimeError("a failed render")
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)


def test_the_renderers_scalar_helpers_compute_what_numpy_did():
    """The renderer clips colours and shades with min/max, rounds with rint and fills projections in place, for
    speed: the same float64 numbers as np.clip, np.round and np.stack, so the synthetic sets stay byte for byte."""
    from pose3dlib.synthetic import render

    rng = np.random.default_rng(4)
    for _ in range(2000):
        colour = rng.uniform(0, 255, 3) if rng.random() < 0.8 else rng.integers(0, 256, 3).astype(np.float64)
        factor = float(rng.uniform(0.0, 2.5))
        assert render._shade(colour, factor) == tuple(float(c) for c in np.clip(colour * factor, 0, 255))
    pts = rng.uniform(-50, 150, (500, 2))
    pts[:20] = np.round(pts[:20] * render.ONE) / render.ONE + 0.5 / render.ONE  # exact halves: ties to even
    assert np.array_equal(render._px(pts), np.round(pts * render.ONE).astype(np.int32))
    view = render._View(np.array([151.3, 149.7, 63.2, 64.9]), 4000.0, None, None)
    for p in (rng.uniform(-900, 900, 3) + [0, 0, 4000], rng.uniform(-900, 900, (400, 3)) + [0, 0, 4000]):
        old = np.stack([view.fx * p[..., 0] / p[..., 2] + view.cx, view.fy * p[..., 1] / p[..., 2] + view.cy], axis=-1)
        new = view.proj(p)
        assert new.dtype == old.dtype and new.shape == old.shape and np.array_equal(new, old)
    for z in rng.uniform(1000, 9000, 500):
        assert view.shade(z) == float(np.clip(1.0 + render.DEPTH_SHADE_PER_M * (view.z_ref - z) / 1000.0,
                                               *render.SHADE_RANGE))


def test_replacing_a_finished_set_of_another_seed_or_sizes_says_so(tmp_path):
    """prepare-synthetic --seed 7 over a run's own folder replaced its data without a word, leaving the
    run's stages trained on other people than its folders now hold."""
    from pose3dlib.config import config_to_dict
    from pose3dlib.synthetic.generator import GENERATOR_VERSION, MANIFEST, _manifest, _replacing_note

    cfg = load_config("configs/smoke.yaml").synthetic
    assert _replacing_note(tmp_path, cfg, 0) is None  # nothing there
    (tmp_path / MANIFEST).write_text(json.dumps({**_manifest(cfg, 0), "counts": {"h36m": 72}}))
    assert _replacing_note(tmp_path, cfg, 0) is None  # the same set (generate skips it anyway)
    note = _replacing_note(tmp_path, cfg, 7)
    assert note is not None and note.startswith("note: replacing the synthetic set in ")
    assert "(seed 0 -> 7); stages trained on the set it replaces are stale for it" in note
    for key in ("h36m_test_subjects", "lab_val"):  # test and validation splits: not what a stage trains on
        other = load_config("configs/smoke.yaml", [f"synthetic.{key}=12"]).synthetic
        note = _replacing_note(tmp_path, other, 0)
        assert f"(synthetic.{key} {getattr(cfg, key)} -> 12); its training splits stay the same" in note
    sizes = config_to_dict(load_config("configs/smoke.yaml", ["synthetic.mpii_train=64"]).synthetic)
    (tmp_path / MANIFEST).write_text(json.dumps({"generator": "pose3d-synthetic", "version": GENERATOR_VERSION, "seed": 0,
                                                 "synthetic": sizes, "counts": {}}))
    assert f"synthetic.mpii_train 64 -> {cfg.mpii_train}" in _replacing_note(tmp_path, cfg, 0)
    (tmp_path / MANIFEST).write_text(json.dumps(_manifest(cfg, 3)))  # unfinished: no counts
    assert _replacing_note(tmp_path, cfg, 0) is None

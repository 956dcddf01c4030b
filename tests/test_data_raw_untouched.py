"""No command modifies data/raw or files it did not create; re-runs are no-ops.

A read-only folder laid out like data/raw (Human3.6M- and MPII-format datasets, an original
hg3d checkpoint, a photo) is fingerprinted (path, size, SHA-256, mtime, mode of every
entry), every command that reads such inputs is run on it, writing elsewhere, and the
fingerprint must be unchanged. prepare-synthetic must refuse to write over it. A second
data generation and a second `train_or_load` of a finished stage must change nothing.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import stat
from pathlib import Path

import pytest
import torch

from pose3dlib.config import SyntheticConfig, config_to_dict, load_config
from pose3dlib.engine.checkpoint import make_checkpoint, save_checkpoint
from pose3dlib.engine.errors import DataError
from pose3dlib.engine.paths import PROJECT_ROOT
from pose3dlib.synthetic.generator import MANIFEST, generate
from pose3dlib.tools import cli

SMOKE = "configs/smoke.yaml"
TINY = SyntheticConfig(image_size=64, h36m_train=8, h36m_test=8, mpii_train=8, mpii_val=8, wild_test=8, workers=1)
HG3D_FIXTURE = PROJECT_ROOT.parent / "shared" / "fixtures" / "hg3d_tiny_state_dict.pt"


def fingerprint(root: Path) -> dict[str, tuple]:
    """Relative path -> (kind, size, sha256, mtime_ns, mode, inode) of every entry under `root` (and root)."""
    out = {}
    for p in [root, *sorted(root.rglob("*"))]:
        st = p.lstat()
        rel = str(p.relative_to(root))
        if p.is_file():
            out[rel] = ("file", st.st_size, hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mtime_ns,
                        st.st_mode, st.st_ino)
        else:
            out[rel] = ("dir", st.st_mtime_ns, st.st_mode, st.st_ino)
    return out


def make_read_only(root: Path) -> None:
    """chmod a-w everything (as root this does not stop writes; the fingerprint does)."""
    for p in [*root.rglob("*"), root]:
        p.chmod(stat.S_IMODE(p.lstat().st_mode) & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def make_writable(root: Path) -> None:
    for p in [root, *root.rglob("*")]:
        p.chmod(stat.S_IMODE(p.lstat().st_mode) | stat.S_IWUSR)


def cli_quiet(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = cli.main(argv)
    return status, err.getvalue()


@pytest.fixture
def raw(tmp_path) -> Path:
    """A data/raw-like folder: datasets in the real formats (no manifest: not ours), an hg3d file, a photo."""
    torch.set_num_threads(1)
    raw = generate(tmp_path / "raw", TINY, seed=0)
    (raw / MANIFEST).unlink()  # real datasets carry no generator manifest
    (raw / "photos").mkdir()
    shutil.copy(next((raw / "mpii" / "images").glob("*.jpg")), raw / "photos" / "person.jpg")
    if HG3D_FIXTURE.is_file():
        (raw / "hg3d").mkdir()
        shutil.copy(HG3D_FIXTURE, raw / "hg3d" / "hg3d_tiny_state_dict.pt")
    make_read_only(raw)
    yield raw
    make_writable(raw)  # let pytest clean up


def test_fingerprint_sees_a_changed_byte_and_a_new_file(tmp_path):
    """The check must be able to fail."""
    (tmp_path / "a").write_bytes(b"12345")
    before = fingerprint(tmp_path)
    os.utime(tmp_path / "a", ns=(0, before["a"][3]))  # same mtime afterwards
    (tmp_path / "a").write_bytes(b"12346")
    os.utime(tmp_path / "a", ns=(0, before["a"][3]))
    assert fingerprint(tmp_path)["a"] != before["a"]
    (tmp_path / "b").write_text("new")
    assert set(fingerprint(tmp_path)) != set(before)


def test_commands_and_loaders_leave_a_raw_folder_byte_identical(raw, tmp_path):
    from pose3dlib.data.h36m import H36MDataset
    from pose3dlib.data.mpii import MPIIDataset

    before = fingerprint(raw)
    sets = []
    for key, sub in (("h36m_dir", "h36m"), ("mpii_dir", "mpii"), ("wild_test_dir", "wild_test")):
        sets += ["--set", f"data.{key}={raw / sub}"]
    sets += ["--set", "data.lab_val_dir=''", "--set", "data.wild_val_dir=''"]  # no validation splits in raw/
    data_cfg = load_config(SMOKE).data
    for ds in (H36MDataset(raw / "h36m", "train", data_cfg, augment=True), H36MDataset(raw / "h36m", "test", data_cfg),
               H36MDataset(raw / "wild_test", "test", data_cfg), MPIIDataset(raw / "mpii", "train", data_cfg, augment=True),
               MPIIDataset(raw / "mpii", "val", data_cfg)):
        for i in range(len(ds)):
            ds[i]
    out = tmp_path / "out"
    runs = [
        ["train", "--config", SMOKE, "--stage", "1", "--run-dir", str(out / "run"), *sets],
        ["evaluate", "--config", SMOKE, "--run-dir", str(out / "run"), "--stages", "1", "--limit", "4", *sets],
        ["demo", str(raw / "photos" / "person.jpg"), "--checkpoint", str(out / "run" / "stage1" / "last.pt"),
         "--out", str(out / "demo"), "--device", "cpu"],
    ]
    if HG3D_FIXTURE.is_file():
        runs.append(["convert-hg3d", str(raw / "hg3d" / "hg3d_tiny_state_dict.pt"), str(out / "hg3d.pt")])
    for argv in runs:
        status, err = cli_quiet(argv)
        assert status == 0, f"{argv[0]}: {err[-2000:]}"
    for argv in (["prepare-synthetic", "--profile", "smoke", "--out", str(raw)],
                 ["prepare-synthetic", "--profile", "smoke", "--out", str(raw), "--force"],
                 ["prepare-synthetic", "--profile", "smoke", "--out", str(raw / "h36m"), "--force"]):
        status, err = cli_quiet(argv)
        assert status == 2 and "not written by prepare-synthetic" in err, err
    assert fingerprint(raw) == before
    assert sorted(p.name for p in raw.parent.iterdir()) == ["out", "raw"]  # no sibling temp folders left


def test_prepare_synthetic_refuses_a_foreign_folder_and_keeps_it(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my data")
    before = fingerprint(mine)
    for force in (False, True):
        with pytest.raises(DataError, match="not written by prepare-synthetic"):
            generate(mine, TINY, seed=0, force=force)
    assert fingerprint(mine) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_second_generation_changes_nothing(tmp_path):
    out = generate(tmp_path / "syn", TINY, seed=0)
    before = fingerprint(out)
    assert generate(out, TINY, seed=0) == out
    assert fingerprint(out) == before  # same inodes, bytes and mtimes: nothing rewritten
    generate(out, TINY, seed=1)  # control: another seed is a real change, and it is seen
    assert fingerprint(out) != before


def test_finished_stage_is_not_trained_again(tmp_path):
    """`train_or_load` (what notebooks 02-04 call) returns a finished stage's metrics without touching it."""
    from pose3dlib.engine.train import checkpoint_path, stage_status, train_or_load
    from pose3dlib.model import build_model

    # data paths that do not exist: any attempt to train would fail
    cfg = load_config(SMOKE, [f"data.h36m_dir={tmp_path / 'none'}", f"data.mpii_dir={tmp_path / 'none'}"])
    path = checkpoint_path(tmp_path / "run", 1)
    save_checkpoint(path, make_checkpoint(model_state=build_model(cfg.model).state_dict(), config=config_to_dict(cfg),
                                          stage=1, epoch=1, step=6, metrics={"val_pck": 0.25},
                                          extra={"finished": True}))
    before = fingerprint(path.parent)
    assert stage_status(cfg, 1, tmp_path / "run") == "finished"
    assert train_or_load(cfg, 1, tmp_path / "run") == {"val_pck": 0.25}
    assert fingerprint(path.parent) == before
    other = load_config(SMOKE, [f"data.h36m_dir={tmp_path / 'none'}", "train.stage1.lr=0.5"])
    assert stage_status(other, 1, tmp_path / "run") == "stale"  # another config is not mistaken for done
    from pose3dlib.engine.runs import stale_reasons

    assert "train.stage1.lr: 0.001 -> 0.5" in stale_reasons(other, 1, tmp_path / "run")  # what the notebook prints
    assert stale_reasons(cfg, 1, tmp_path / "run") == []
    # evaluation options do not change what a stage trains: a finished stage stays finished
    scored_otherwise = load_config(SMOKE, [f"data.h36m_dir={tmp_path / 'none'}", f"data.mpii_dir={tmp_path / 'none'}",
                                           "eval.recrop_margin=1.25", "eval.flip_test=false"])
    assert stage_status(scored_otherwise, 1, tmp_path / "run") == "finished"
    # nor do the later stages' settings (a new Stage 3 learning rate retrains Stage 3 only)
    later = load_config(SMOKE, [f"data.h36m_dir={tmp_path / 'none'}", f"data.mpii_dir={tmp_path / 'none'}",
                                "train.stage3.lr=0.5", "train.stage2.lr=0.5"])
    assert stage_status(later, 1, tmp_path / "run") == "finished"

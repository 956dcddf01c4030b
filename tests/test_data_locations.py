"""A missing data set is named by the config key that points at it, before anything loads."""
from __future__ import annotations

import dataclasses

import pytest

from pose3dlib.config import load_config
from pose3dlib.data.locations import annotation_files, require_sets
from pose3dlib.engine.errors import DataError
from pose3dlib.tools import cli


def _sets(tmp_path):
    """A config whose four data folders exist with their annotation files (empty: only presence is checked)."""
    for name in ("h36m", "wild_test", "lab_val"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "annot.h5").write_bytes(b"")
    (tmp_path / "mpii").mkdir()
    (tmp_path / "mpii" / "val.h5").write_bytes(b"")
    data = load_config("configs/smoke.yaml").data
    return dataclasses.replace(data, h36m_dir=str(tmp_path / "h36m"), wild_test_dir=str(tmp_path / "wild_test"),
                               lab_val_dir=str(tmp_path / "lab_val"), wild_val_dir="", mpii_dir=str(tmp_path / "mpii"))


def test_present_sets_pass_and_an_empty_optional_key_is_skipped(tmp_path):
    data = _sets(tmp_path)
    require_sets(data, ("h36m_dir", "wild_test_dir", "lab_val_dir", "wild_val_dir", "mpii_dir"), mpii_splits=("val",))
    assert annotation_files(data, "mpii_dir", ("train", "val")) == [tmp_path / "mpii" / "train.h5",
                                                                     tmp_path / "mpii" / "val.h5"]
    with pytest.raises(ValueError, match="not a data set key"):
        annotation_files(data, "image_dir")


def test_the_key_the_folder_and_the_missing_file_are_named(tmp_path):
    data = _sets(tmp_path)
    with pytest.raises(DataError, match=r"^data\.mpii_dir = .*: no train\.h5 there; it must hold an MPII-format set"):
        require_sets(data, ("mpii_dir",), mpii_splits=("val", "train"))
    gone = dataclasses.replace(data, wild_test_dir=str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"^data\.wild_test_dir = '.*nowhere' \(.*\): folder not found; .*Human3\.6M"):
        require_sets(gone, ("h36m_dir", "wild_test_dir"))
    (tmp_path / "lab_val" / "annot.h5").unlink()
    with pytest.raises(DataError, match=r"^data\.lab_val_dir = .*: no annot\.h5 there"):
        require_sets(data, ("h36m_dir", "lab_val_dir"))


def test_evaluate_names_the_override_that_points_nowhere(tmp_path, capsys):
    data = _sets(tmp_path)  # the other sets are there (whether or not this clone has generated its smoke data)
    status = cli.main(["evaluate", "--config", "configs/smoke.yaml", "--run-dir", str(tmp_path),
                       "--set", f"data.h36m_dir={data.h36m_dir}", "--set", f"data.mpii_dir={data.mpii_dir}",
                       "--set", f"data.wild_test_dir={tmp_path / 'nowhere'}"])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: data.wild_test_dir = ") and "folder not found" in err

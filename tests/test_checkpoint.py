"""pose3dlib.engine.checkpoint: what a checkpoint must hold to be written, and its millimetre scale."""
from __future__ import annotations

import pytest
import torch

from pose3dlib.config import Config, config_to_dict
from pose3dlib.engine.checkpoint import REQUIRED_KEYS, bone_sum_mm, load_checkpoint, make_checkpoint, save_checkpoint
from pose3dlib.engine.errors import CheckpointError


@pytest.mark.parametrize("value", [0.0, -4000.0, float("nan"), float("inf")])
def test_a_checkpoint_scale_that_is_not_a_positive_number_is_refused(value):
    """bone_sum_mm: 0, a negative scale, NaN or infinity is no millimetre scale (as a missing one)."""
    assert bone_sum_mm({"bone_sum_mm": 4123.5}) == 4123.5
    with pytest.raises(CheckpointError, match="run.pt: the checkpoint stores no millimetre scale"):
        bone_sum_mm({"bone_sum_mm": value}, "run.pt")


@pytest.mark.parametrize("key", REQUIRED_KEYS)
def test_a_checkpoint_without_a_required_entry_is_never_written(key, tmp_path):
    """save_checkpoint refuses a dict lacking format, format_version, config or model (load_checkpoint would
    refuse the file later), and leaves no file behind; the complete dict is written and loads."""
    ckpt = make_checkpoint(model_state={"w": torch.zeros(2)}, config=config_to_dict(Config()), bone_sum_mm=4000.0)
    broken = {k: v for k, v in ckpt.items() if k != key}
    with pytest.raises(CheckpointError, match=f"without key {key!r}"):
        save_checkpoint(tmp_path / "c.pt", broken)
    assert not (tmp_path / "c.pt").exists()
    assert load_checkpoint(save_checkpoint(tmp_path / "c.pt", ckpt))["bone_sum_mm"] == 4000.0

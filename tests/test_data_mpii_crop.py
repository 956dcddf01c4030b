"""MPII crop convention: Newell-format files are cropped as stored; the adjustment happens once."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from pose3dlib.config import DataConfig, SyntheticConfig, config_to_dict, load_config
from pose3dlib.data.mpii import (
    MPIIDataset,
    adjust_raw_crop,
    crop_boxes,
    read_annotations,
)
from pose3dlib.data.sample import make_sample, read_image
from pose3dlib.data.transforms import IDENTITY
from pose3dlib.engine.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from pose3dlib.engine.errors import ConfigError
from pose3dlib.engine.paths import CONFIG_DIR
from pose3dlib.model import build_model, load_model
from pose3dlib.synthetic import generator as synthetic

TINY = SyntheticConfig(image_size=64, h36m_train=2, h36m_test=2, mpii_train=24, mpii_val=12, wild_test=2, workers=1)
CFG = DataConfig(input_size=64, heatmap_size=16, sigma=1.0)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return synthetic.generate(tmp_path_factory.mktemp("syn") / "d", TINY, seed=1)


def test_newell_example_row_is_cropped_as_stored():
    # image 005808361.jpg: raw objpos (966, 340), scale 4.718488 in the .mat;
    # Newell's h5 row holds centre (966, 410.777) and scale 5.898110
    centre, scale = adjust_raw_crop(np.array([[966.0, 340.0]]), np.array([4.718488]))
    assert np.allclose(centre, [[966.0, 410.777]], atol=1e-3) and np.allclose(scale, [5.898110], atol=1e-6)
    centers, sides = crop_boxes({"center": np.array([[966.0, 410.777]]), "scale": np.array([5.898110])}, CFG)
    assert np.array_equal(centers, [[966.0, 410.777]]) and np.allclose(sides, [200 * 5.898110])


def _legacy_boxes(part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crops of the generator before the convention change, written out independently.

    The old generator stored the raw annotation (scale = joint extent / 200, objpos 15 x scale
    above the joints' midpoint) and the old reader added the shift and the 1.25 factor.
    """
    lo, hi = part.min(1), part.max(1)
    scale = (hi - lo).max(1) / 200.0
    stored_centre = (lo + hi) / 2 - np.stack([np.zeros(len(scale)), 15.0 * scale], axis=1)
    read_centre = stored_centre + np.stack([np.zeros(len(scale)), 15.0 * scale], axis=1)
    return read_centre, 200.0 * 1.25 * scale


def test_synthetic_crops_equal_the_old_convention(root):
    """Rows with all 16 joints labelled carry their full joint extent, from which the old crop follows."""
    for split in ("train", "val"):
        ann = read_annotations(root / "mpii" / f"{split}.h5")
        full = np.all(ann["part"] != 0, axis=(1, 2))
        assert full.sum() >= 3
        old_c, old_s = _legacy_boxes(ann["part"][full])
        new_c, new_s = crop_boxes(ann, CFG)
        assert np.array_equal(new_c[full], old_c)  # bit for bit
        assert np.allclose(new_s[full], old_s, rtol=4e-16, atol=0)  # at most one float64 ulp
        ds = MPIIDataset(root / "mpii", split, CFG)
        for i in np.flatnonzero(full):
            image = read_image(ds.image_path(i), i)
            new = ds[i]
            old = make_sample(image, ds.part[i], ds.annotated[i], None, old_c[full[:i].sum()],
                              float(old_s[full[:i].sum()]), IDENTITY, CFG, subject=0, action=0, index=int(i))
            for k in new:
                assert np.array_equal(new[k], old[k]), (split, i, k)


def test_person_fills_the_stored_crop(root):
    """The crop is 1.25 x the joint extent around the joints' midpoint: all joints inside, none near the edge."""
    ann = read_annotations(root / "mpii" / "train.h5")
    centers, sides = crop_boxes(ann, CFG)
    part = ann["part"]
    labelled = np.all(part != 0, axis=-1)
    rel = np.abs(part - centers[:, None]) / sides[:, None, None]  # (N, 16, 2) in box units
    assert rel[labelled].max() <= 0.5 / 1.25 + 1e-9


def test_retired_keys_error_in_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"data": {"mpii_center_shift": 15.0}}))
    with pytest.raises(ConfigError, match="mpii_center_shift.*retired.*as stored"):
        load_config(path)
    with pytest.raises(ConfigError, match="mpii_box_factor.*retired"):
        load_config(None, ["data.mpii_box_factor=1.0"])


def test_old_checkpoint_with_retired_keys_loads(tmp_path):
    cfg = load_config(CONFIG_DIR / "smoke.yaml")
    stored = config_to_dict(cfg)
    stored["data"].update(mpii_center_shift=15.0, mpii_box_factor=1.25)  # as written before the change
    model = build_model(cfg.model)
    path = save_checkpoint(tmp_path / "old.pt", make_checkpoint(model_state=model.state_dict(), config=stored))
    ckpt = load_checkpoint(path)
    assert ckpt["config"] == config_to_dict(cfg)
    assert load_model(path)[1] == cfg
    raw = make_checkpoint(model_state=model.state_dict(), config=stored)  # a dict, never through load_checkpoint
    assert load_model(raw)[1] == cfg

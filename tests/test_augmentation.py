"""The training augmentation's draws follow the paper's recipe (transforms.sample_augmentation) and
the colour jitter saturates instead of wrapping around."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from pose3dlib.config import DataConfig
from pose3dlib.data.transforms import color_jitter, sample_augmentation

N = 4000


def _draws(cfg: DataConfig, n: int = N, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [sample_augmentation(rng, cfg) for _ in range(n)]


def _normal_two_sided_tail(z: float) -> float:
    return math.erfc(z / math.sqrt(2))


def test_scale_is_two_to_a_clipped_normal():
    cfg = DataConfig()
    log2_scale = np.log2([a.scale for a in _draws(cfg)])
    assert np.abs(log2_scale).max() <= cfg.scale_clip + 1e-12
    # the clip at +-scale_clip is hit as often as a normal of sd scale_sigma leaves that band
    at_clip = np.mean(np.isclose(np.abs(log2_scale), cfg.scale_clip))
    expected = _normal_two_sided_tail(cfg.scale_clip / cfg.scale_sigma)
    assert at_clip == pytest.approx(expected, abs=4 * math.sqrt(expected / N))
    inside = log2_scale[~np.isclose(np.abs(log2_scale), cfg.scale_clip)]
    assert abs(inside.mean()) < 4 * cfg.scale_sigma / math.sqrt(N)
    assert 0.8 * cfg.scale_sigma < log2_scale.std() < cfg.scale_sigma  # a clipped normal: a little narrower


def test_rotation_and_flip_happen_with_their_probabilities():
    cfg = DataConfig()
    draws = _draws(cfg)
    rotated = np.array([a.rotation_deg != 0.0 for a in draws])
    flipped = np.array([a.flip for a in draws])
    for observed, p in ((rotated.mean(), cfg.rotation_prob), (flipped.mean(), cfg.flip_prob)):
        assert observed == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / N))
    angles = np.array([a.rotation_deg for a in draws])[rotated]
    assert np.abs(angles).max() <= cfg.rotation_clip_deg
    assert 0.8 * cfg.rotation_sigma_deg < angles.std() < 1.05 * cfg.rotation_sigma_deg
    colours = np.array([a.color_scale for a in draws])
    assert colours.min() >= cfg.color_scale_min and colours.max() <= cfg.color_scale_max
    assert np.std(colours, axis=0) == pytest.approx(np.full(3, (cfg.color_scale_max - cfg.color_scale_min) / math.sqrt(12)),
                                                    rel=0.1)  # uniform, each channel its own draw
    corr = np.corrcoef(colours.T)[np.triu_indices(3, 1)]  # independent draws: uncorrelated channels
    assert np.abs(corr).max() < 4 / math.sqrt(N)



def test_rotation_is_a_normal_clipped_at_both_signs_of_rotation_clip():
    """Each clip, -rotation_clip_deg and +rotation_clip_deg, takes the normal's tail beyond it: half
    the two-sided tail each (a rotation is as likely clockwise as counter-clockwise)."""
    cfg = dataclasses.replace(DataConfig(), rotation_prob=1.0)
    angles = np.array([a.rotation_deg for a in _draws(cfg)])
    half_tail = _normal_two_sided_tail(cfg.rotation_clip_deg / cfg.rotation_sigma_deg) / 2
    for side in (-1.0, 1.0):
        at_clip = np.mean(np.isclose(angles, side * cfg.rotation_clip_deg))
        assert at_clip == pytest.approx(half_tail, abs=4 * math.sqrt(half_tail / N))
    assert abs(angles.mean()) < 4 * cfg.rotation_sigma_deg / math.sqrt(N)

@pytest.mark.parametrize("p", [0.0, 1.0])
def test_probabilities_zero_and_one_mean_never_and_always(p):
    cfg = dataclasses.replace(DataConfig(), rotation_prob=p, flip_prob=p)
    draws = _draws(cfg, n=300)
    assert all((a.rotation_deg != 0.0) == bool(p) for a in draws)
    assert all(a.flip == bool(p) for a in draws)


def test_color_jitter_scales_each_channel_and_saturates():
    image = np.array([[[250, 100, 10]]], dtype=np.uint8)
    out = color_jitter(image, (1.2, 0.5, 1.0))
    assert out.dtype == np.uint8
    assert out[0, 0].tolist() == [255, 50, 10]  # 300 saturates at 255 instead of wrapping to 44
    assert color_jitter(image, (1.0, 1.0, 1.0)) is image


def test_a_close_up_needs_an_annotated_joint():
    """part_crop_prob = 1 but no annotated joint: no close-up is made (it would centre on an unlabelled point);
    the sample falls through to the shifted crop when that is asked for, else to the usual framing."""
    from pose3dlib.data.transforms import SHIFTED_CROP_OFFSET, Augmentation, crop_without_person

    aug = Augmentation(scale=1.3, rotation_deg=10.0, flip=True, color_scale=(0.9, 1.0, 1.1))
    centre, box = np.array([200.0, 150.0]), 80.0
    joints = np.full((16, 2), 1000.0)  # where a close-up on an unannotated joint would go
    none = np.zeros(16, bool)
    for seed in range(50):
        rng = np.random.default_rng(seed)
        only_part = dataclasses.replace(DataConfig(), part_crop_prob=1.0, shifted_crop_prob=0.0)
        assert crop_without_person(rng, only_part, aug, centre, box, joints, none) is None
        both = dataclasses.replace(DataConfig(), part_crop_prob=1.0, shifted_crop_prob=1.0)
        shifted_centre, shifted_aug = crop_without_person(rng, both, aug, centre, box, joints, none)
        assert shifted_aug == aug  # the drawn scale is kept: not a close-up's 0.3-0.5
        off = np.linalg.norm(shifted_centre - centre) / box
        assert SHIFTED_CROP_OFFSET[0] - 1e-9 <= off <= SHIFTED_CROP_OFFSET[1] + 1e-9
    # the same call with one annotated joint does make the close-up, centred on that joint
    one = none.copy()
    one[5] = True
    joints[5] = [210.0, 140.0]
    close_centre, close_aug = crop_without_person(np.random.default_rng(0), only_part, aug, centre, box, joints, one)
    assert close_centre.tolist() == [210.0, 140.0] and 0.3 <= close_aug.scale <= 0.5

"""Augmentation: crop with scale and rotation jitter, horizontal flip with left/right swap, colour jitter.

All randomness of a sample comes from `sample_rng(seed, epoch, index)`, so DataLoader
workers and resumed runs produce bit-identical samples.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import DataConfig


@dataclass(frozen=True)
class Augmentation:
    """One sample's augmentation: box scale factor, in-plane rotation, mirror, per-channel colour scale (RGB)."""

    scale: float = 1.0  # crop box side multiplier (> 1: the person looks smaller)
    rotation_deg: float = 0.0  # counter-clockwise in the image
    flip: bool = False
    color_scale: tuple[float, float, float] = (1.0, 1.0, 1.0)


IDENTITY = Augmentation()


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of all randomness of sample `index` in `epoch` (a pure function of the three)."""
    return np.random.default_rng([int(seed), int(epoch), int(index)])


def sample_augmentation(rng: np.random.Generator, cfg: DataConfig) -> Augmentation:
    """Draw an augmentation with the paper's recipe (docs/paper.md, "Training recipe"), parameters from `cfg`.

    scale 2^clip(N(0, scale_sigma^2), +-scale_clip); with probability rotation_prob a rotation
    clip(N(0, rotation_sigma^2), +-rotation_clip) degrees; flip with flip_prob; colour
    scale U[color_scale_min, color_scale_max] per channel.
    """
    scale = 2.0 ** float(np.clip(rng.normal(0.0, cfg.scale_sigma), -cfg.scale_clip, cfg.scale_clip))
    rot = 0.0
    if rng.random() < cfg.rotation_prob:
        rot = float(np.clip(rng.normal(0.0, cfg.rotation_sigma_deg), -cfg.rotation_clip_deg, cfg.rotation_clip_deg))
    flip = bool(rng.random() < cfg.flip_prob)
    colour = tuple(float(c) for c in rng.uniform(cfg.color_scale_min, cfg.color_scale_max, 3))
    return Augmentation(scale=scale, rotation_deg=rot, flip=flip, color_scale=colour)  # type: ignore[arg-type]


def color_jitter(image: np.ndarray, color_scale: tuple[float, float, float]) -> np.ndarray:
    """Scale each channel of an (S, S, 3) uint8 image and clip to [0, 255]."""
    if color_scale == (1.0, 1.0, 1.0):
        return image
    out = image.astype(np.float32) * np.asarray(color_scale, dtype=np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)

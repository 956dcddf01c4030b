"""Augmentation: crop with scale and rotation jitter, horizontal flip with left/right swap, colour jitter.

All randomness of a sample comes from `sample_rng(seed, epoch, index)`, so DataLoader
workers and resumed runs produce bit-identical samples.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

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


PART_CROP_SCALE = (0.3, 0.5)  # close-up side / the person's box side
SHIFTED_CROP_OFFSET = (0.5, 0.8)  # shifted crop: centre moved this fraction of the box side off the person's


def crop_without_person(rng: np.random.Generator, cfg: DataConfig, aug: Augmentation, centre: np.ndarray,
                        box_px: float, joints_px: np.ndarray, annotated: np.ndarray) -> tuple[np.ndarray, Augmentation] | None:
    """Maybe turn a 2D-only sample's crop into one that does not frame a whole person.

    With probability `cfg.part_crop_prob` a close-up: the crop is centred on a random
    annotated joint and its side is PART_CROP_SCALE x the person's box (the drawn
    rotation, flip and colour are kept); otherwise, with probability
    `cfg.shifted_crop_prob`, the usual crop (with its drawn scale) moved SHIFTED_CROP_OFFSET
    of the box side away from the person in a random direction. Draws from `rng` only for
    a probability above 0, so with both at 0 the sample stream is unchanged. Either crop is
    labelled as holding no whole person (all-zero heatmaps), though a close-up holds its centre
    joint and a shifted crop part of the person (at offset 0.5 and scale 1 about half of them):
    the network learns to give low peaks to parts; both are off in every shipped config.

    Args:
        centre: (2,) the person's crop centre and box_px its side, source px; joints_px (16, 2);
            annotated (16,) bool.
    Returns:
        None (frame the person as usual) or (crop centre (2,), augmentation whose `scale`
        multiplies the person's box side).
    """
    if cfg.part_crop_prob > 0 and rng.random() < cfg.part_crop_prob:
        labelled = np.flatnonzero(annotated)
        if len(labelled):
            joint = int(rng.choice(labelled))
            scale = float(rng.uniform(*PART_CROP_SCALE))
            return np.asarray(joints_px[joint], dtype=np.float64), replace(aug, scale=scale)
    if cfg.shifted_crop_prob > 0 and rng.random() < cfg.shifted_crop_prob:
        angle = float(rng.uniform(0.0, 2.0 * np.pi))
        offset = float(rng.uniform(*SHIFTED_CROP_OFFSET)) * box_px
        return np.asarray(centre, dtype=np.float64) + offset * np.array([np.cos(angle), np.sin(angle)]), aug
    return None


# A whole snapshot's framing of a person (the synthetic wild pictures are drawn with it too):
LOOSE_CROP_MARGIN = (1.35, 2.0)  # crop side / the person's joint extent
LOOSE_CROP_SHIFT = 0.8  # centre moved up to this fraction of the slack, per axis


def loose_framing(rng: np.random.Generator, prob: float, aug: Augmentation, centre: np.ndarray,
                  box_px: float, box_factor: float) -> tuple[np.ndarray, Augmentation] | None:
    """Maybe frame a 2D-only sample the way a snapshot or a user's box does: loose and off-centre.

    Annotated crops (MPII's box, 1.25 x the person) are tight and centred; whole pictures of
    a person (the wild test protocol, a user's hand-drawn box) are looser and not centred.
    With probability `prob` (a stage's `loose_crop_prob`) the crop side becomes
    U(LOOSE_CROP_MARGIN) x the person's extent (box_px / box_factor) and its centre moves
    U(-LOOSE_CROP_SHIFT, LOOSE_CROP_SHIFT) x the slack ((side - extent) / 2) along each axis,
    so the person stays inside the crop (before any rotation) when the box is centred on the
    person with side box_factor x its extent, as the synthetic data's are (real MPII boxes only
    roughly: their centre is objpos, not the joints' midpoint). The drawn rotation, flip and
    colour are kept; the drawn scale is replaced. Draws from `rng` only for a probability
    above 0, so at 0 the sample stream is unchanged.

    Args:
        centre: (2,) the person's crop centre, box_px its side (source px); box_factor: the
            dataset's box side / person extent (mpii.BOX_FACTOR).
    Returns:
        None (the usual framing) or (crop centre (2,), augmentation whose `scale` multiplies box_px).
    """
    if prob <= 0 or rng.random() >= prob:
        return None
    extent = box_px / box_factor
    side = extent * float(rng.uniform(*LOOSE_CROP_MARGIN))
    shift = rng.uniform(-LOOSE_CROP_SHIFT, LOOSE_CROP_SHIFT, 2) * (side - extent) / 2
    return np.asarray(centre, dtype=np.float64) + shift, replace(aug, scale=side / box_px)


def color_jitter(image: np.ndarray, color_scale: tuple[float, float, float]) -> np.ndarray:
    """Scale each channel of an (S, S, 3) uint8 image and clip to [0, 255]."""
    if color_scale == (1.0, 1.0, 1.0):
        return image
    out = image.astype(np.float32) * np.asarray(color_scale, dtype=np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)

"""Uncropped synthetic scenes: people of the synthetic renderer at random places and sizes in a larger picture.

    scene = make_scene(np.random.default_rng(0), (480, 640))
    scene.image            # (H, W, 3) uint8 RGB
    scene.person_boxes_px  # (P, 4) x, y, w, h of each person's rendered pixels

Used to measure how well the demo finds people without a `--bbox` (`detect.hit_rate`).
The people come from the same body model, poses, appearance and background generator as
the wild training split (`synthetic.generator`), but each is rendered straight into a wide or
tall canvas at a random position with a random height, instead of into a square crop.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import camera
from ..data.actions import H36M_ACTIONS, WILD_ACTIONS
from ..skeleton import MPII16
from . import bodies, render
from .generator import _Chunk, _posed_people, _wild_camera

SCENE_SIZES_HW = ((480, 640), (640, 480), (720, 1280), (600, 600), (768, 1024))
PERSON_HEIGHT_FRACTION = (0.2, 0.9)  # the person's pixel height / the image height


@dataclass
class Scene:
    """One uncropped picture and the ground truth of the people in it."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    person_boxes_px: np.ndarray  # (P, 4) x, y, w, h: tight box of each person's rendered pixels
    joints_2d_px: np.ndarray  # (P, 16, 2) image pixels


def _people(rng: np.random.Generator, count: int) -> tuple[dict[str, np.ndarray], list]:
    """`count` posed wild people (world frame) and a camera for each."""
    actions = rng.choice(np.array(sorted({**H36M_ACTIONS, **WILD_ACTIONS})), size=count)
    task = _Chunk(domain="wild", split_code=0, chunk_index=0, seed=0, image_size=0, paths=(),
                  actions=actions, subjects=np.zeros(count, int), cameras=np.zeros(count, int))
    people = _posed_people(rng, task)
    cams = [_wild_camera(rng, people["joints"][i, bodies.PELVIS]) for i in range(count)]
    return people, cams


def make_scene(rng: np.random.Generator, size_hw: tuple[int, int] | None = None, num_people: int = 1,
               height_fraction: tuple[float, float] = PERSON_HEIGHT_FRACTION) -> Scene:
    """Render `num_people` people (side by side, not overlapping much) into one background.

    Args:
        size_hw: (H, W) of the picture; None picks one of SCENE_SIZES_HW.
        height_fraction: range of each person's 2D joint extent as a fraction of H.
    """
    h, w = size_hw if size_hw is not None else SCENE_SIZES_HW[int(rng.integers(len(SCENE_SIZES_HW)))]
    canvas = render.wild_background(rng, max(h, w))[:h, :w].copy()
    people, cams = _people(rng, num_people)
    slots = np.linspace(0, w, num_people + 1)  # each person gets a vertical strip
    boxes, joints_2d = [], []
    for i in range(num_people):
        rot, eye, k_full = cams[i]
        cam_pts = camera.world_to_camera(people["joints"][i], rot, eye)  # (16, 3) mm
        uv = camera.project(cam_pts, k_full)  # (16, 2) on the 1000 px sensor
        lo, hi = uv.min(0), uv.max(0)
        extent = float(max(hi - lo))
        target = rng.uniform(*height_fraction) * h
        target = min(target, 0.95 * (slots[i + 1] - slots[i]) * extent / max(hi[0] - lo[0], 1e-6))
        s = target / extent
        half = (hi - lo) * s / 2
        centre = np.array([rng.uniform(slots[i] + half[0], max(slots[i] + half[0], slots[i + 1] - half[0])),
                           rng.uniform(half[1], max(half[1], h - half[1]))])
        k = np.array([k_full[0] * s, k_full[1] * s, (k_full[2] - (lo[0] + hi[0]) / 2) * s + centre[0],
                      (k_full[3] - (lo[1] + hi[1]) / 2) * s + centre[1]])
        person_labels = np.zeros((h, w), np.uint8)
        render.render_person(canvas, person_labels, cam_pts, rot @ people["face"][i], rot @ people["forward"][i],
                             rot @ people["up"][i], k, render.sample_appearance(rng))
        ys, xs = np.nonzero(person_labels)
        boxes.append([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1])
        joints_2d.append(camera.project(cam_pts, k))
    return Scene(canvas, np.asarray(boxes, np.float64), np.asarray(joints_2d).reshape(num_people, MPII16.num_joints, 2))


def make_scenes(seed: int, count: int, num_people: int = 1) -> list[Scene]:
    """`count` scenes, each a pure function of (seed, index)."""
    return [make_scene(np.random.default_rng([seed, 31, i]), num_people=num_people) for i in range(count)]


def make_pan_video(rng: np.random.Generator, num_frames: int, size_hw: tuple[int, int] = (240, 320),
                   pan_px: float = 8.0) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames (H, W, 3) of a camera panning across one scene, and the person's box (T, 4) in each."""
    h, w = size_hw
    wide = make_scene(rng, (h, w + math.ceil(pan_px * num_frames)), height_fraction=(0.5, 0.8))
    frames, boxes = [], []
    for t in range(num_frames):
        dx = int(round(pan_px * t))
        frames.append(np.ascontiguousarray(wide.image[:, dx:dx + w]))
        boxes.append(wide.person_boxes_px[0] - [dx, 0, 0, 0])
    return frames, np.asarray(boxes)

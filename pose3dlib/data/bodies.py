"""Synthetic 3D bodies: bone lengths, pose families ("actions") and forward kinematics.

Poses are built in a body frame (x the person's left, y up, z forward, mm, pelvis at the
origin) from joint angles sampled uniformly inside each family's ranges and clipped to
anatomical limits, then turned into 16 MPII-order joints by forward kinematics.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..skeleton import MPII16
from .actions import H36M_ACTIONS, WILD_ACTIONS

J = MPII16.num_joints
R_ANKLE, R_KNEE, R_HIP, L_HIP, L_KNEE, L_ANKLE, PELVIS, SPINE, NECK, HEAD_TOP = range(10)
R_WRIST, R_ELBOW, R_SHOULDER, L_SHOULDER, L_ELBOW, L_WRIST = range(10, 16)

# Mean bone lengths (mm) near the Human3.6M means (paper-facts: thigh 456.0, shin 452.1,
# upper arm 284.1, forearm 249.8); the others are typical adult values.
BONE_MM: dict[str, float] = {
    "hip": 132.0,  # pelvis -> hip, lateral
    "thigh": 456.0,
    "shin": 452.1,
    "pelvis_spine": 233.0,
    "spine_neck": 257.0,
    "neck_head": 250.0,  # upper neck -> head top
    "shoulder": 152.0,  # upper neck -> shoulder, lateral
    "upper_arm": 284.1,
    "forearm": 249.8,
}
SUBJECT_SCALE_RANGE = (0.9, 1.1)  # overall size per subject (about +-10%)
BONE_JITTER = 0.04  # extra per-bone relative variation per subject

# Anatomical limits (degrees) applied after sampling.
LIMITS_DEG: dict[str, tuple[float, float]] = {
    "trunk_pitch": (-30, 95), "trunk_roll": (-35, 35), "trunk_twist": (-50, 50),
    "head_pitch": (-40, 50), "head_yaw": (-70, 70),
    "hip_flex": (-35, 140), "hip_abd": (-15, 70), "knee": (0, 155),
    "sh_flex": (-50, 180), "sh_abd": (-15, 180), "elbow": (0, 150), "elbow_goal": (-60, 100),
    "hand_in": (0.0, 1.0),
}
PER_SIDE = ("hip_flex", "hip_abd", "knee", "sh_flex", "sh_abd", "elbow", "elbow_goal", "hand_in")
NEUTRAL: dict[str, tuple[float, float]] = {  # standing, arms down
    "trunk_pitch": (-3, 8), "trunk_roll": (-4, 4), "trunk_twist": (-8, 8),
    "head_pitch": (-10, 15), "head_yaw": (-25, 25),
    "hip_flex": (-5, 10), "hip_abd": (0, 10), "knee": (0, 12),
    "sh_flex": (-10, 20), "sh_abd": (5, 20), "elbow": (5, 30), "elbow_goal": (0, 40), "hand_in": (0.0, 0.2),
}


@dataclass(frozen=True)
class PoseFamily:
    """Angle ranges (degrees) of one pose family; keys r_*/l_* override one side.

    gait: legs swing in antiphase (l_hip_flex = -r_hip_flex) with arms opposite the legs.
    mirror: randomly swap left and right (one-handed actions happen on either side).
    """

    action: int
    ranges: dict[str, tuple[float, float]]
    gait: bool = False
    mirror: bool = True


SIT = {"hip_flex": (75, 100), "knee": (75, 105), "hip_abd": (0, 15), "trunk_pitch": (-10, 15)}
FAMILIES: dict[int, PoseFamily] = {f.action: f for f in (
    PoseFamily(2, {"r_sh_flex": (40, 100), "r_elbow": (0, 30), "r_sh_abd": (0, 40)}),  # Directions
    PoseFamily(3, {"sh_flex": (0, 40), "elbow": (40, 100), "elbow_goal": (0, 40), "hand_in": (0.0, 0.5)}),
    PoseFamily(4, {**SIT, "sh_flex": (15, 45), "elbow": (100, 145), "elbow_goal": (40, 90),
                   "hand_in": (0.3, 0.9)}),  # Eating (seated)
    PoseFamily(5, {"r_sh_abd": (60, 150), "r_sh_flex": (0, 60), "r_elbow": (20, 90), "r_elbow_goal": (60, 100)}),
    PoseFamily(6, {"r_sh_flex": (10, 40), "r_sh_abd": (10, 45), "r_elbow": (125, 150),
                   "r_elbow_goal": (60, 100), "r_hand_in": (0.5, 1.0)}),  # Phoning
    PoseFamily(7, {"sh_abd": (30, 110), "sh_flex": (-10, 60), "elbow": (0, 90), "hip_abd": (5, 25),
                   "trunk_roll": (-12, 12)}),  # Posing
    PoseFamily(8, {"trunk_pitch": (10, 35), "sh_flex": (30, 75), "elbow": (20, 70), "knee": (0, 25)}),
    PoseFamily(9, {**SIT, "sh_flex": (10, 40), "elbow": (40, 80), "hand_in": (0.2, 0.6)}),  # Sitting
    PoseFamily(10, {"trunk_pitch": (20, 50), "hip_flex": (40, 110), "knee": (40, 115),
                    "sh_flex": (20, 70), "elbow": (10, 60)}),  # SittingDown
    PoseFamily(11, {"r_sh_flex": (10, 40), "r_elbow": (120, 145), "r_elbow_goal": (50, 90),
                    "r_hand_in": (0.3, 0.8), "l_sh_flex": (-5, 20)}),  # Smoking
    PoseFamily(12, {"sh_flex": (50, 85), "sh_abd": (5, 30), "elbow": (95, 130), "elbow_goal": (50, 90),
                    "hand_in": (0.4, 1.0)}),  # TakingPhoto
    PoseFamily(13, {"sh_abd": (20, 45), "elbow": (70, 115), "elbow_goal": (-30, 10), "hand_in": (0.3, 0.8),
                    "hip_abd": (0, 15), "trunk_roll": (-8, 8)}),  # Waiting (hands on hips)
    PoseFamily(14, {"r_hip_flex": (-25, 30), "knee": (5, 45), "sh_flex": (-25, 25), "elbow": (10, 40)},
               gait=True),  # Walking
    PoseFamily(15, {"r_hip_flex": (-25, 30), "knee": (5, 45), "r_sh_flex": (20, 55), "r_elbow": (10, 40),
                    "trunk_pitch": (0, 15)}, gait=True),  # WalkingDog
    PoseFamily(16, {"r_hip_flex": (-20, 25), "knee": (5, 40), "sh_flex": (-15, 15), "elbow": (10, 30),
                    "trunk_twist": (-20, 20)}, gait=True),  # WalkTogether
    # Wild-only families (more extreme).
    PoseFamily(17, {"hip_flex": (100, 140), "knee": (110, 150), "trunk_pitch": (20, 55), "hip_abd": (5, 35),
                    "sh_flex": (20, 80), "elbow": (20, 100)}),  # Crouching
    PoseFamily(18, {"sh_flex": (140, 180), "sh_abd": (0, 60), "elbow": (0, 40), "head_pitch": (-35, 0)}),
    PoseFamily(19, {"r_sh_flex": (80, 170), "r_elbow": (0, 25), "trunk_pitch": (10, 45), "trunk_roll": (-25, 25),
                    "l_hip_flex": (-30, 10), "l_knee": (0, 60)}),  # Reaching
    PoseFamily(20, {"trunk_pitch": (50, 95), "sh_flex": (50, 110), "elbow": (0, 50), "knee": (0, 35),
                    "head_pitch": (-40, 0)}),  # Bending
    PoseFamily(21, {"r_hip_flex": (-35, 80), "knee": (30, 130), "elbow": (70, 110), "sh_flex": (-50, 60),
                    "trunk_pitch": (5, 25)}, gait=True),  # Running
    PoseFamily(22, {"sh_abd": (60, 180), "sh_flex": (-20, 120), "elbow": (0, 60), "r_hip_flex": (-20, 100),
                    "r_hip_abd": (0, 60), "r_knee": (0, 140), "trunk_roll": (-30, 30)}),  # Stretching
)}
LAB_ACTIONS: tuple[int, ...] = tuple(sorted(H36M_ACTIONS))
WILD_FAMILY_ACTIONS: tuple[int, ...] = tuple(sorted(H36M_ACTIONS)) + tuple(sorted(WILD_ACTIONS))
WILD_RANGE_WIDEN = 1.5  # wild draws the lab families with ranges widened by this factor


def sample_bone_scales(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Per-person bone lengths (mm): an overall size factor times a small per-bone jitter; each (n,)."""
    overall = rng.uniform(*SUBJECT_SCALE_RANGE, size=n)
    return {k: v * overall * (1 + rng.uniform(-BONE_JITTER, BONE_JITTER, size=n)) for k, v in BONE_MM.items()}


def sample_angles(rng: np.random.Generator, actions: np.ndarray, widen: float = 1.0) -> dict[str, np.ndarray]:
    """Joint angles (degrees; hand_in in [0, 1]) for each row's pose family; keys r_*/l_* and trunk/head, (n,)."""
    n = len(actions)
    out: dict[str, np.ndarray] = {}
    keys = [k for k in NEUTRAL if k not in PER_SIDE] + [f"{s}_{k}" for s in "rl" for k in PER_SIDE]
    for k in keys:
        out[k] = np.zeros(n)
    for action in np.unique(actions):
        rows = np.flatnonzero(actions == action)
        fam = FAMILIES[int(action)]
        for k in keys:
            base = k[2:] if k[:2] in ("r_", "l_") else k
            lo, hi = fam.ranges.get(k, fam.ranges.get(base, NEUTRAL[base]))
            mid, half = (lo + hi) / 2, (hi - lo) / 2 * widen
            out[k][rows] = rng.uniform(mid - half, mid + half, size=len(rows))
        if fam.gait:  # antiphase legs, arms opposite to legs
            out["l_hip_flex"][rows] = -out["r_hip_flex"][rows] + rng.normal(0, 4, len(rows))
            swing = out["r_hip_flex"][rows] * rng.uniform(0.4, 0.9, len(rows))
            if "r_sh_flex" not in fam.ranges:
                out["r_sh_flex"][rows] = -swing
            out["l_sh_flex"][rows] = swing
        if fam.mirror:
            swap = rows[rng.random(len(rows)) < 0.5]
            for k in PER_SIDE:
                out[f"r_{k}"][swap], out[f"l_{k}"][swap] = out[f"l_{k}"][swap].copy(), out[f"r_{k}"][swap].copy()
    for k in keys:
        base = k[2:] if k[:2] in ("r_", "l_") else k
        out[k] = np.clip(out[k], *LIMITS_DEG[base])
    return out


def _rot(axis: int, deg: np.ndarray) -> np.ndarray:
    """(n, 3, 3) rotations about body axis 0 (x), 1 (y) or 2 (z) by `deg` (n,)."""
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    r = np.zeros((len(a), 3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    r[:, axis, axis] = 1
    r[:, i, i], r[:, i, j], r[:, j, i], r[:, j, j] = c, -s, s, c
    return r


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _bend(u: np.ndarray, goal: np.ndarray, fallback: np.ndarray, deg: np.ndarray) -> np.ndarray:
    """Rotate unit vectors u (n, 3) by `deg` towards `goal` (n, 3) (towards `fallback` if parallel)."""
    w = goal - np.sum(goal * u, -1, keepdims=True) * u
    bad = np.linalg.norm(w, axis=-1) < 1e-3
    if bad.any():
        w2 = fallback - np.sum(fallback * u, -1, keepdims=True) * u
        w[bad] = w2[bad]
    w = _unit(w)
    a = np.radians(deg)[:, None]
    return np.cos(a) * u + np.sin(a) * w


def _limb_dir(flex: np.ndarray, abd: np.ndarray, side: float) -> np.ndarray:
    """Local direction (n, 3) of a limb hanging down, swung forward by `flex` and sideways by `abd`."""
    f, a = np.radians(flex), np.radians(abd)
    return np.stack([side * np.sin(a), -np.cos(a) * np.cos(f), np.cos(a) * np.sin(f)], axis=-1)


def forward_kinematics(angles: dict[str, np.ndarray], bones: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Body-frame joints (n, 16, 3) mm (x left, y up, z forward, pelvis at 0) and the face direction (n, 3)."""
    n = len(angles["trunk_pitch"])
    x_ax, y_ax, z_ax = np.eye(3)
    joints = np.zeros((n, J, 3))
    lower = _rot(0, angles["trunk_pitch"] * 0.4) @ _rot(2, angles["trunk_roll"] * 0.5)  # (n,3,3)
    upper = _rot(0, angles["trunk_pitch"]) @ _rot(2, angles["trunk_roll"]) @ _rot(1, angles["trunk_twist"])
    head = upper @ _rot(0, angles["head_pitch"]) @ _rot(1, angles["head_yaw"])
    joints[:, SPINE] = lower @ y_ax * bones["pelvis_spine"][:, None]
    joints[:, NECK] = joints[:, SPINE] + upper @ y_ax * bones["spine_neck"][:, None]
    joints[:, HEAD_TOP] = joints[:, NECK] + head @ y_ax * bones["neck_head"][:, None]
    face_dir = head @ z_ax
    drop = np.array([0.0, -25.0, 0.0])
    for side, sh, el, wr in ((-1.0, R_SHOULDER, R_ELBOW, R_WRIST), (1.0, L_SHOULDER, L_ELBOW, L_WRIST)):
        p = "r_" if side < 0 else "l_"
        joints[:, sh] = joints[:, NECK] + upper @ (side * x_ax) * bones["shoulder"][:, None] + upper @ drop
        u = np.einsum("nij,nj->ni", upper, _limb_dir(angles[p + "sh_flex"], angles[p + "sh_abd"], side))
        g = np.radians(angles[p + "elbow_goal"])
        goal_local = np.stack([-side * angles[p + "hand_in"], np.sin(g), np.cos(g)], axis=-1)
        goal = np.einsum("nij,nj->ni", upper, goal_local)
        fallback = np.broadcast_to(upper @ y_ax, goal.shape).copy()
        fore = _bend(u, goal, fallback, angles[p + "elbow"])
        joints[:, el] = joints[:, sh] + u * bones["upper_arm"][:, None]
        joints[:, wr] = joints[:, el] + fore * bones["forearm"][:, None]
    back = np.broadcast_to(-z_ax, (n, 3)).copy()
    for side, hp, kn, an in ((-1.0, R_HIP, R_KNEE, R_ANKLE), (1.0, L_HIP, L_KNEE, L_ANKLE)):
        p = "r_" if side < 0 else "l_"
        joints[:, hp] = np.stack([side * bones["hip"], np.full(n, -20.0), np.zeros(n)], axis=-1)
        thigh = _limb_dir(angles[p + "hip_flex"], angles[p + "hip_abd"], side)
        shin = _bend(thigh, back, np.broadcast_to(-y_ax, (n, 3)).copy(), angles[p + "knee"])
        joints[:, kn] = joints[:, hp] + thigh * bones["thigh"][:, None]
        joints[:, an] = joints[:, kn] + shin * bones["shin"][:, None]
    return joints, face_dir


def body_to_world(yaw_deg: np.ndarray) -> np.ndarray:
    """(n, 3, 3) rotations from the body frame (x left, y up, z forward) to a z-up world, turned by yaw."""
    b = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # columns: body x -> world x, y -> z, z -> -y
    a = np.radians(yaw_deg)
    c, s = np.cos(a), np.sin(a)
    rz = np.zeros((len(a), 3, 3))
    rz[:, 0, 0], rz[:, 0, 1], rz[:, 1, 0], rz[:, 1, 1], rz[:, 2, 2] = c, -s, s, c, 1
    return rz @ b

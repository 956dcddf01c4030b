"""Synthetic 3D bodies: bone lengths, pose families ("actions") and forward kinematics.

Poses are built in a body frame (x the person's left, y up, z forward, mm, pelvis at the
origin) from joint angles sampled uniformly inside each family's ranges and clipped to
anatomical limits, then turned into 16 MPII-order joints by forward kinematics.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.actions import H36M_ACTIONS, WILD_ACTIONS
from ..skeleton import MPII16

J = MPII16.num_joints
# Joint indices by name, from the skeleton's own order (SPINE is MPII's thorax, NECK its upper neck)
(R_ANKLE, R_KNEE, R_HIP, L_HIP, L_KNEE, L_ANKLE, PELVIS, SPINE, NECK, HEAD_TOP,
 R_WRIST, R_ELBOW, R_SHOULDER, L_SHOULDER, L_ELBOW, L_WRIST) = (MPII16.index(name) for name in (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax", "upper_neck", "head_top",
    "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist"))

# Mean bone lengths (mm) near the Human3.6M means (docs/paper.md, "Skeleton": thigh 456.0, shin 452.1,
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
    "sh_flex": (-50, 180), "sh_abd": (-15, 180), "elbow": (0, 150), "arm_twist": (-90, 100),
}
# arm_twist: rotation of the upper arm about its own axis, positive inwards (a bent forearm
# then points across the body); negative outwards (a bent forearm of a raised arm points up).
PER_SIDE = ("hip_flex", "hip_abd", "knee", "sh_flex", "sh_abd", "elbow", "arm_twist")
NEUTRAL: dict[str, tuple[float, float]] = {  # standing, arms down
    "trunk_pitch": (-3, 8), "trunk_roll": (-4, 4), "trunk_twist": (-8, 8),
    "head_pitch": (-10, 15), "head_yaw": (-25, 25),
    "hip_flex": (-5, 10), "hip_abd": (0, 10), "knee": (0, 12),
    "sh_flex": (-10, 20), "sh_abd": (5, 20), "elbow": (5, 30), "arm_twist": (-10, 30),
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
    PoseFamily(3, {"sh_flex": (0, 40), "elbow": (40, 100), "arm_twist": (0, 40)}),
    PoseFamily(4, {**SIT, "sh_flex": (15, 45), "elbow": (110, 145), "arm_twist": (20, 50)}),  # Eating (seated)
    PoseFamily(5, {"r_sh_abd": (60, 150), "r_sh_flex": (0, 60), "r_elbow": (30, 100), "r_arm_twist": (-90, -50)}),
    PoseFamily(6, {"r_sh_flex": (35, 70), "r_sh_abd": (15, 45), "r_elbow": (130, 150),
                   "r_arm_twist": (20, 50)}),  # Phoning
    PoseFamily(7, {"sh_abd": (30, 110), "sh_flex": (-10, 60), "elbow": (0, 90), "arm_twist": (-40, 40), "hip_abd": (5, 25),
                   "trunk_roll": (-12, 12)}),  # Posing
    PoseFamily(8, {"trunk_pitch": (10, 35), "sh_flex": (30, 75), "elbow": (20, 70), "arm_twist": (0, 30), "knee": (0, 25)}),
    PoseFamily(9, {**SIT, "sh_flex": (10, 40), "elbow": (40, 80), "arm_twist": (20, 50)}),  # Sitting
    PoseFamily(10, {"trunk_pitch": (20, 50), "hip_flex": (40, 110), "knee": (40, 115),
                    "sh_flex": (20, 70), "elbow": (10, 60)}),  # SittingDown
    PoseFamily(11, {"r_sh_flex": (20, 50), "r_elbow": (120, 145), "r_arm_twist": (10, 40),
                    "l_sh_flex": (-5, 20)}),  # Smoking
    PoseFamily(12, {"sh_flex": (50, 85), "sh_abd": (5, 30), "elbow": (95, 130), "arm_twist": (20, 50)}),  # TakingPhoto
    PoseFamily(13, {"sh_abd": (20, 45), "elbow": (70, 115), "arm_twist": (60, 90),
                    "hip_abd": (0, 15), "trunk_roll": (-8, 8)}),  # Waiting (hands on hips)
    PoseFamily(14, {"r_hip_flex": (-25, 30), "knee": (5, 45), "sh_flex": (-25, 25), "elbow": (10, 40)},
               gait=True),  # Walking
    PoseFamily(15, {"r_hip_flex": (-25, 30), "knee": (5, 45), "r_sh_flex": (20, 55), "r_elbow": (10, 40),
                    "trunk_pitch": (0, 15)}, gait=True),  # WalkingDog
    PoseFamily(16, {"r_hip_flex": (-20, 25), "knee": (5, 40), "sh_flex": (-15, 15), "elbow": (10, 30),
                    "trunk_twist": (-20, 20)}, gait=True),  # WalkTogether
    # Wild-only families (more extreme).
    PoseFamily(17, {"hip_flex": (100, 140), "knee": (110, 150), "trunk_pitch": (20, 55), "hip_abd": (5, 35),
                    "sh_flex": (20, 80), "elbow": (20, 100), "arm_twist": (0, 40)}),  # Crouching
    PoseFamily(18, {"sh_flex": (140, 180), "sh_abd": (0, 60), "elbow": (0, 40), "head_pitch": (-35, 0)}),
    PoseFamily(19, {"r_sh_flex": (80, 170), "r_elbow": (0, 25), "trunk_pitch": (10, 45), "trunk_roll": (-25, 25),
                    "l_hip_flex": (-30, 10), "l_knee": (0, 60)}),  # Reaching
    PoseFamily(20, {"trunk_pitch": (50, 95), "sh_flex": (50, 110), "elbow": (0, 50), "knee": (0, 35),
                    "head_pitch": (-40, 0)}),  # Bending
    PoseFamily(21, {"r_hip_flex": (-35, 80), "knee": (30, 130), "elbow": (70, 110), "sh_flex": (-50, 60), "arm_twist": (0, 30),
                    "trunk_pitch": (5, 25)}, gait=True),  # Running
    PoseFamily(22, {"sh_abd": (60, 180), "sh_flex": (-20, 120), "elbow": (0, 60), "arm_twist": (-60, 30), "r_hip_flex": (-20, 100),
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
    """Joint angles (degrees) for each row's pose family; keys r_*/l_* and trunk/head, (n,)."""
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


def forward_kinematics(angles: dict[str, np.ndarray], bones: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Body-frame joints (n, 16, 3) mm (x left, y up, z forward, pelvis at 0) and the face direction (n, 3).

    Each limb has its own frame: flexion about the lateral axis, then abduction about the
    forward axis (and, for arms, a twist about the limb); knees bend backwards and elbows
    forwards within that frame, so bends always stay in the limb's anatomical plane.
    """
    n = len(angles["trunk_pitch"])
    x_ax, y_ax, z_ax = np.eye(3)
    down = -y_ax
    joints = np.zeros((n, J, 3))
    lower = _rot(0, angles["trunk_pitch"] * 0.4) @ _rot(2, angles["trunk_roll"] * 0.5)  # (n, 3, 3)
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
        arm = upper @ _rot(2, side * angles[p + "sh_abd"]) @ _rot(0, -angles[p + "sh_flex"]) @ _rot(
            1, -side * angles[p + "arm_twist"])  # (n, 3, 3) upper-arm frame
        joints[:, el] = joints[:, sh] + arm @ down * bones["upper_arm"][:, None]
        joints[:, wr] = joints[:, el] + arm @ _rot(0, -angles[p + "elbow"]) @ down * bones["forearm"][:, None]
    for side, hp, kn, an in ((-1.0, R_HIP, R_KNEE, R_ANKLE), (1.0, L_HIP, L_KNEE, L_ANKLE)):
        p = "r_" if side < 0 else "l_"
        joints[:, hp] = np.stack([side * bones["hip"], np.full(n, -20.0), np.zeros(n)], axis=-1)
        leg = _rot(2, side * angles[p + "hip_abd"]) @ _rot(0, -angles[p + "hip_flex"])  # (n, 3, 3) thigh frame
        joints[:, kn] = joints[:, hp] + leg @ down * bones["thigh"][:, None]
        joints[:, an] = joints[:, kn] + leg @ _rot(0, angles[p + "knee"]) @ down * bones["shin"][:, None]
    return joints, face_dir


def body_to_world(yaw_deg: np.ndarray) -> np.ndarray:
    """(n, 3, 3) rotations from the body frame (x left, y up, z forward) to a z-up world, turned by yaw."""
    b = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # columns: body x -> world x, y -> z, z -> -y
    a = np.radians(yaw_deg)
    c, s = np.cos(a), np.sin(a)
    rz = np.zeros((len(a), 3, 3))
    rz[:, 0, 0], rz[:, 0, 1], rz[:, 1, 0], rz[:, 1, 1], rz[:, 2, 2] = c, -s, s, c, 1
    return rz @ b

"""The one source of truth for joint names, edges, flip pairs, bone groups and index maps.

Facts from Zhou et al., ICCV 2017 and its original release (docs/paper.md, "Skeleton" and
"Geometric loss"). Nothing else in pose3dlib restates these tables: import them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Skeleton:
    """A kinematic skeleton: joint names, bones (edges), left/right flip pairs and the root."""

    name: str
    joint_names: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    flip_pairs: tuple[tuple[int, int], ...]
    root: int

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        for a, b in self.edges + self.flip_pairs:
            if not (0 <= a < n and 0 <= b < n):
                raise ValueError(f"{self.name}: joint index out of range in pair ({a}, {b})")
        if not 0 <= self.root < n:
            raise ValueError(f"{self.name}: root {self.root} out of range")

    @property
    def num_joints(self) -> int:
        """How many joints the skeleton has (the length of `joint_names`)."""
        return len(self.joint_names)

    @property
    def parents(self) -> tuple[int, ...]:
        """Parent of each joint in the edge tree rooted at `root`.

        -1 for the root and for joints that no edge reaches (MPII16 joint 7, the thorax /
        H36M spine, is in no edge of the paper's 14).
        """
        parent = [-2] * self.num_joints
        parent[self.root] = -1
        frontier = [self.root]
        while frontier:
            j = frontier.pop()
            for a, b in self.edges:
                for u, v in ((a, b), (b, a)):
                    if u == j and parent[v] == -2:
                        parent[v] = j
                        frontier.append(v)
        return tuple(-1 if p == -2 else p for p in parent)

    @property
    def flip_permutation(self) -> np.ndarray:
        """Index array p such that joints[p] swaps left and right (an involution)."""
        perm = np.arange(self.num_joints)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    def index(self, joint_name: str) -> int:
        """Index of a joint by name (raises KeyError naming the skeleton)."""
        try:
            return self.joint_names.index(joint_name)
        except ValueError:
            raise KeyError(f"{self.name} has no joint {joint_name!r}; joints: {self.joint_names}") from None


def descent(parents: tuple[int, ...] | list[int], root: int) -> list[tuple[int, int]]:
    """(parent, child) pairs of the tree that `parents` (each joint's parent, -1 for none) describes,
    depth-first from `root`: every parent comes before its children; joints the root does not reach are left out."""
    order: list[tuple[int, int]] = []

    def visit(j: int) -> None:
        for c, p in enumerate(parents):
            if p == j:
                order.append((j, c))
                visit(c)

    visit(root)
    return order


# 16-joint MPII order: the network's output order (docs/paper.md, "Skeleton").
MPII16 = Skeleton(
    name="MPII16",
    joint_names=(
        "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax",
        "upper_neck", "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder",
        "l_elbow", "l_wrist",
    ),
    edges=(
        (0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (10, 11), (11, 12),
        (12, 8), (8, 13), (13, 14), (14, 15), (6, 8), (8, 9),
    ),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    root=6,
)

# The joints of the MPII benchmark's PCKh mean (its "Mean"/"Total" column, and the original
# release's PCKh script): every MPII16 joint but the pelvis (6) and the thorax (7).
# `metrics.pckh` scores all the joints it is given; pass these for the benchmark's mean.
PCKH_BENCHMARK_JOINTS: tuple[int, ...] = tuple(j for j in range(16) if j not in (6, 7))

# Human3.6M 17-joint order.
H36M17 = Skeleton(
    name="H36M17",
    joint_names=(
        "hip", "r_hip", "r_knee", "r_foot", "l_hip", "l_knee", "l_foot", "spine", "thorax",
        "neck_nose", "head", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow",
        "r_wrist",
    ),
    edges=(
        (0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8), (8, 9), (9, 10),
        (8, 11), (11, 12), (12, 13), (8, 14), (14, 15), (15, 16),
    ),
    flip_pairs=((1, 4), (2, 5), (3, 6), (11, 14), (12, 15), (13, 16)),
    root=0,
)

# Row k of the 16-joint order takes H36M17 joint H36M17_TO_MPII16[k]. Index 7 (thorax
# in MPII naming) holds the H36M spine; the H36M nose (9) is dropped.
H36M17_TO_MPII16: tuple[int, ...] = (3, 2, 1, 4, 5, 6, 0, 7, 8, 10, 16, 15, 14, 11, 12, 13)
# Inverse map: H36M17 joint i comes from MPII16 row MPII16_FROM_H36M17[i], or -1 (the nose).
MPII16_FROM_H36M17: tuple[int, ...] = tuple(
    H36M17_TO_MPII16.index(i) if i in H36M17_TO_MPII16 else -1 for i in range(H36M17.num_joints)
)

# Human3.6M's 32 recorded joints -> its 17-joint order (pelvis, r_hip, r_knee, r_ankle,
# l_hip, l_knee, l_ankle, spine, thorax, neck/nose, head, l_shoulder, l_elbow, l_wrist,
# r_shoulder, r_elbow, r_wrist): row i of H36M17 takes joint H36M32_TO_H36M17[i].
H36M32_TO_H36M17: tuple[int, ...] = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
H36M32_NUM_JOINTS = 32

# MPI-INF-3DHP 17-joint order: 0 head_top, 1 neck, 2 r_shoulder, 3 r_elbow, 4 r_wrist,
# 5 l_shoulder, 6 l_elbow, 7 l_wrist, 8 r_hip, 9 r_knee, 10 r_ankle, 11 l_hip, 12 l_knee,
# 13 l_ankle, 14 pelvis (root), 15 spine, 16 head. Row k of MPII16 takes joint
# MPI3DHP17_TO_MPII16[k]: upper neck <- neck, thorax (our index 7) <- spine, as the original release.
MPI3DHP17_NUM_JOINTS = 17
MPI3DHP17_HEAD = 16  # its `head` joint, between the neck and the head top; no MPII16 joint is it
MPI3DHP17_TO_MPII16: tuple[int, ...] = (10, 9, 8, 11, 12, 13, 14, 15, 1, 0, 4, 3, 2, 5, 6, 7)
# The official MPI-INF-3DHP evaluation: 14 joints in 8 groups (pelvis, spine and head
# excluded), in MPII16 indices.
MPI3DHP_EVAL_GROUPS: dict[str, tuple[int, ...]] = {
    "head_top": (9,), "neck": (8,), "shoulders": (12, 13), "elbows": (11, 14), "wrists": (10, 15),
    "hips": (2, 3), "knees": (1, 4), "ankles": (0, 5),
}

# Geometric (bone-length ratio) loss groups: (joint_a, joint_b, weight) in MPII16 indices.
# The weights are ratios of mean H36M bone lengths (thigh/shin 456.0086/452.1255,
# upper-arm/forearm 284.1253/249.7726) so that weighted lengths in a group are equal.
THIGH_OVER_SHIN = 1.0085885098415446
UPPER_ARM_OVER_FOREARM = 1.1375361376887123
BONE_GROUPS: dict[str, tuple[tuple[int, int, float], ...]] = {
    "legs": ((0, 1, THIGH_OVER_SHIN), (1, 2, 1.0), (3, 4, 1.0), (4, 5, THIGH_OVER_SHIN)),
    "arms": ((10, 11, UPPER_ARM_OVER_FOREARM), (11, 12, 1.0), (13, 14, 1.0), (14, 15, UPPER_ARM_OVER_FOREARM)),
    "hips": ((2, 6, 1.0), (3, 6, 1.0)),
    "shoulders": ((12, 8, 1.0), (13, 8, 1.0)),
}

# Depth root: we use the pelvis (MPII16 root) for training targets AND evaluation. The
# original used joint 7 (H36M spine) for training targets and the pelvis at evaluation;
# keeping one root removes that inconsistency. This is the only place that choice lives.
DEPTH_ROOT: int = MPII16.root
# Paper evaluator: joint 7 is replaced by the midpoint of these two joints (pelvis, upper neck).
PAPER_EVAL_MIDPOINT: tuple[int, int] = (6, 8)
# Paper evaluator: the predicted skeleton is rescaled so its 14 edge lengths sum to this (mm)
# (docs/paper.md, "Evaluation"; `eval.paper_bone_sum_mm` defaults to it).
PAPER_BONE_SUM_MM: float = 4296.99
SPINE_INDEX: int = 7


def h36m17_to_mpii16(joints: np.ndarray) -> np.ndarray:
    """Reorder (..., 17, D) Human3.6M joints into the (..., 16, D) network order."""
    if joints.shape[-2] != H36M17.num_joints:
        raise ValueError(f"expected (..., 17, D) H36M joints, got shape {joints.shape}")
    return joints[..., list(H36M17_TO_MPII16), :]


def h36m32_to_mpii16(joints: np.ndarray) -> np.ndarray:
    """Reorder (..., 32, D) recorded Human3.6M joints into the (..., 16, D) network order."""
    if joints.shape[-2] != H36M32_NUM_JOINTS:
        raise ValueError(f"expected (..., 32, D) Human3.6M joints, got shape {joints.shape}")
    return h36m17_to_mpii16(joints[..., list(H36M32_TO_H36M17), :])


def mpi3dhp17_to_mpii16(joints: np.ndarray) -> np.ndarray:
    """Reorder (..., 17, D) MPI-INF-3DHP joints into the (..., 16, D) network order."""
    if joints.shape[-2] != MPI3DHP17_NUM_JOINTS:
        raise ValueError(f"expected (..., 17, D) MPI-INF-3DHP joints, got shape {joints.shape}")
    return joints[..., list(MPI3DHP17_TO_MPII16), :]


def flip_joints(joints, width: float | None = None):
    """Mirror (..., 16, D) joints left-right: swap flip pairs and negate x.

    With `width` (pixels), x maps to width - 1 - x (image coordinates, pixel centres at integers);
    without, x -> -x: the mirror of root-relative or otherwise centred coordinates. Not of the crop's
    normalised coordinates (`camera.crop_px_to_normalized`, n = 2u / H - 1 on an H-pixel heatmap),
    whose mirror is n -> -n - 2 / H. Works on numpy arrays and torch tensors.
    """
    out = joints[..., MPII16.flip_permutation, :].clone() if hasattr(joints, "clone") else joints[..., MPII16.flip_permutation, :].copy()
    out[..., 0] = (width - 1 - out[..., 0]) if width is not None else -out[..., 0]
    return out

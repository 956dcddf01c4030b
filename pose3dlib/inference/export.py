"""Keypoint exports: an NPY/CSV bundle for many images or frames, and BVH motion for the 16-joint skeleton.

    write_bundle(folder, names, joints_2d_px, joints_3d_mm, confidence, boxes)
    write_bvh("clip.bvh", joints_3d_mm, fps=25)

Units as in the demo's JSON: 2D in image pixels, 3D in mm, root-relative (pelvis).
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from ..engine.atomic_io import atomic_write, atomic_write_text, building_folder, target_of_temporary
from ..engine.errors import Pose3DError
from ..skeleton import MPII16, descent

# BVH bones: the skeleton's edge tree rooted at the pelvis, plus the thorax (in no edge of the
# paper's 14) hung from the pelvis so that all 16 joints are in the file.
THORAX = MPII16.index("thorax")


BUNDLE_FILES = ("joints_2d_px.npy", "joints_3d_mm.npy", "confidence.npy", "box_center_side_px.npy", "items.txt",
                "keypoints.csv")


def write_bundle(folder: str | Path, names: list[str], joints_2d_px: np.ndarray, joints_3d_mm: np.ndarray,
                 confidence: np.ndarray, boxes: np.ndarray) -> Path:
    """Write one NPY array per quantity and a long CSV (one row per item and joint) into `folder`.

    The bundle is built in a temporary folder beside it that then replaces `folder` as a whole,
    so an interrupted run leaves the earlier bundle or the new one, never a mix of their files;
    a `folder` holding other files (BUNDLE_FILES are the bundle's) is refused with Pose3DError.

    Args:
        names: N item names (image paths relative to the folder, or frame numbers).
        joints_2d_px: (N, 16, 2); joints_3d_mm: (N, 16, 3); confidence: (N, 16);
        boxes: (N, 3) centre x, centre y, side (px).
    """
    n = len(names)
    arrays = {"joints_2d_px": (joints_2d_px, (n, 16, 2)), "joints_3d_mm": (joints_3d_mm, (n, 16, 3)),
              "confidence": (confidence, (n, 16)), "box_center_side_px": (boxes, (n, 3))}
    checked = {}
    for key, (value, shape) in arrays.items():
        checked[key] = np.asarray(value, dtype=np.float32)
        if checked[key].shape != shape:
            raise ValueError(f"{key} must have shape {shape}, got {checked[key].shape}")
    folder = Path(folder)
    check_bundle_folder(folder)
    with building_folder(folder) as filled:
        _write_bundle_files(filled, names, checked)
    return folder


def check_bundle_folder(folder: Path) -> None:
    """Pose3DError when `folder` holds files that are not a keypoint bundle's (BUNDLE_FILES): the
    bundle replaces its folder as a whole. Callers check before the work whose results it holds."""
    if folder.is_dir() and (others := sorted(f for f in os.listdir(folder) if f not in BUNDLE_FILES
                                             and target_of_temporary(folder / f) is None)):
        raise Pose3DError(f"{folder}: holds files that are not a keypoint bundle's ({', '.join(others[:3])}"
                          f"{', ...' if len(others) > 3 else ''}); the bundle replaces its folder as a whole: "
                          "give it a folder of its own")


def _write_bundle_files(folder: Path, names: list[str], arrays: dict[str, np.ndarray]) -> None:
    """The bundle's files (write_bundle) into the empty `folder`."""
    for key, value in arrays.items():
        atomic_write(folder / f"{key}.npy", lambda f, v=value: np.save(f, v), binary=True)
    atomic_write_text(folder / "items.txt", "".join(f"{name}\n" for name in names))
    joints_2d_px, joints_3d_mm, confidence = arrays["joints_2d_px"], arrays["joints_3d_mm"], arrays["confidence"]

    def rows(f) -> None:
        w = csv.writer(f)
        w.writerow(["item", "joint", "x_px", "y_px", "x_mm", "y_mm", "z_mm", "confidence"])
        for i, name in enumerate(names):
            for j, joint in enumerate(MPII16.joint_names):
                w.writerow([name, joint, *np.round(joints_2d_px[i, j], 2), *np.round(joints_3d_mm[i, j], 1),
                            round(float(confidence[i, j]), 4)])

    atomic_write(folder / "keypoints.csv", rows)


# ----------------------------------------------------------------------------- BVH

def bvh_bones() -> list[tuple[int, int]]:
    """(parent, child) joint pairs of the BVH tree in depth-first order from the pelvis."""
    parents = list(MPII16.parents)
    parents[THORAX] = MPII16.root
    return descent(parents, MPII16.root)


def bone_name(parent: int, child: int) -> str:
    """BVH joint name of the bone parent -> child, e.g. 'r_hip_to_r_knee'."""
    return f"{MPII16.joint_names[parent]}_to_{MPII16.joint_names[child]}"


def _to_bvh_axes(p: np.ndarray) -> np.ndarray:
    """Camera frame (x right, y down, z away) -> BVH frame (x right, y up, z toward the camera): a 180 deg turn about x."""
    return p * np.array([1.0, -1.0, -1.0])


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation (3, 3) taking direction a to direction b."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    v, c = np.cross(a, b), float(np.dot(a, b))
    if c < -1 + 1e-9:  # opposite: half a turn about any axis perpendicular to a
        axis = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2 * np.outer(axis, axis) - np.eye(3)
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1 + c)


def _euler_zxy_deg(r: np.ndarray) -> np.ndarray:
    """Angles (z, x, y) in degrees with r = Rz(z) @ Rx(x) @ Ry(y) (BVH channel order Zrotation Xrotation Yrotation)."""
    x = np.arcsin(np.clip(r[2, 1], -1.0, 1.0))
    if abs(r[2, 1]) < 1 - 1e-9:
        z = np.arctan2(-r[0, 1], r[1, 1])
        y = np.arctan2(-r[2, 0], r[2, 2])
    else:  # gimbal lock: fold y into z
        z, y = np.arctan2(r[1, 0], r[0, 0]), 0.0
    return np.degrees([z, x, y])


def bvh_text(joints_3d_mm: np.ndarray, fps: float) -> str:
    """A BVH file of a (T, 16, 3) root-relative mm sequence; lengths are each bone's mean over T.

    Each bone a -> c is a BVH joint named `a_to_c`, placed at joint a and rotating the bone
    (so joints where the skeleton branches, the pelvis and the upper neck, have one BVH
    joint per bone); leaf bones end in an End Site. The root `pelvis` carries the position
    (mm, BVH axes: x right, y up, z toward the camera). Every bone direction is exact in
    every frame; lengths are the sequence means (BVH cannot vary them). The rest pose is
    the first frame's bone directions.
    """
    p = _to_bvh_axes(np.asarray(joints_3d_mm, dtype=np.float64))
    if p.ndim != 3 or p.shape[1:] != (MPII16.num_joints, 3) or len(p) == 0:
        raise ValueError(f"joints_3d_mm must have shape (T, 16, 3) with T >= 1, got {np.shape(joints_3d_mm)}")
    bones = bvh_bones()
    vec = {c: p[:, c] - p[:, a] for a, c in bones}  # (T, 3) each
    length = {c: float(np.linalg.norm(v, axis=1).mean()) for c, v in vec.items()}
    rest = {c: vec[c][0] / max(np.linalg.norm(vec[c][0]), 1e-9) * length[c] for c in vec}
    children = {j: [c for a, c in bones if a == j] for j in range(MPII16.num_joints)}
    parent_of = {c: a for a, c in bones}
    names = MPII16.joint_names

    lines = ["HIERARCHY", f"ROOT {names[MPII16.root]}", "{", "  OFFSET 0.0 0.0 0.0",
             "  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"]

    def joint_block(c: int, depth: int) -> None:
        pad = "  " * depth
        a = parent_of[c]
        lines.extend([f"{pad}JOINT {bone_name(a, c)}", f"{pad}{{"])
        off = rest[a] if a != MPII16.root else np.zeros(3)  # the end of the parent bone, i.e. joint a
        lines.append(f"{pad}  OFFSET {off[0]:.4f} {off[1]:.4f} {off[2]:.4f}")
        lines.append(f"{pad}  CHANNELS 3 Zrotation Xrotation Yrotation")
        for g in children[c]:
            joint_block(g, depth + 1)
        if not children[c]:
            e = rest[c]
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {e[0]:.4f} {e[1]:.4f} {e[2]:.4f}",
                          f"{pad}  }}"])
        lines.append(f"{pad}}}")

    for c in children[MPII16.root]:
        joint_block(c, 1)
    lines.append("}")
    lines += ["MOTION", f"Frames: {len(p)}", f"Frame Time: {1.0 / fps:.6f}"]
    order = [c for _, c in bones]
    for t in range(len(p)):
        glob = {c: _rotation_between(rest[c], vec[c][t]) for c in order}  # world rotation of each bone joint
        values = [*p[t, MPII16.root], 0.0, 0.0, 0.0]
        for c in order:
            a = parent_of[c]
            local = glob[c] if a == MPII16.root else glob[a].T @ glob[c]
            values += list(_euler_zxy_deg(local))
        lines.append(" ".join(f"{v:.4f}" for v in values))
    return "\n".join(lines) + "\n"


def write_bvh(path: str | Path, joints_3d_mm: np.ndarray, fps: float = 30.0) -> Path:
    """Write `bvh_text` of a (T, 16, 3) mm sequence atomically; returns the path."""
    return atomic_write_text(path, bvh_text(joints_3d_mm, fps))

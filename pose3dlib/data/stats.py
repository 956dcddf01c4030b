"""Summary statistics of 3D pose sets (for comparing the lab and wild domains)."""
from __future__ import annotations

import numpy as np

from ..skeleton import MPII16

_I = MPII16.index


def _angle_deg(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Angle at b (degrees) between b->a and b->c; inputs (N, 3)."""
    u, v = a - b, c - b
    cos = np.sum(u * v, -1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1) + 1e-9)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def pose_statistics(joints_mm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-pose statistics of (N, 16, 3) camera-frame joints; each value (N,).

    knee_flexion_deg / elbow_flexion_deg: 180 minus the inner angle, averaged over both sides;
    torso_tilt_deg: angle of pelvis->upper neck from the image's up direction (-y);
    depth_range_mm: max - min joint depth.
    """
    j = np.asarray(joints_mm, dtype=np.float64)
    knee = 180 - (_angle_deg(j[:, _I("r_hip")], j[:, _I("r_knee")], j[:, _I("r_ankle")])
                  + _angle_deg(j[:, _I("l_hip")], j[:, _I("l_knee")], j[:, _I("l_ankle")])) / 2
    elbow = 180 - (_angle_deg(j[:, _I("r_shoulder")], j[:, _I("r_elbow")], j[:, _I("r_wrist")])
                   + _angle_deg(j[:, _I("l_shoulder")], j[:, _I("l_elbow")], j[:, _I("l_wrist")])) / 2
    torso = j[:, _I("upper_neck")] - j[:, _I("pelvis")]
    tilt = np.degrees(np.arccos(np.clip(-torso[:, 1] / (np.linalg.norm(torso, axis=-1) + 1e-9), -1, 1)))
    return {"knee_flexion_deg": knee, "elbow_flexion_deg": elbow, "torso_tilt_deg": tilt,
            "depth_range_mm": np.ptp(j[:, :, 2], axis=1)}

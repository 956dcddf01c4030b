"""Exports: the NPY/CSV bundle and BVH motion (read back by forward kinematics)."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from pose3dlib.engine.errors import Pose3DError
from pose3dlib.inference import export
from pose3dlib.skeleton import MPII16


def _rot_z(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])


def _euler(z: float, x: float, y: float) -> np.ndarray:
    """Rz @ Rx @ Ry from degrees (BVH channel order Zrotation Xrotation Yrotation)."""
    z, x, y = np.radians([z, x, y])
    rz = np.array([[np.cos(z), -np.sin(z), 0], [np.sin(z), np.cos(z), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    return rz @ rx @ ry


def read_bvh_positions(text: str) -> np.ndarray:
    """Forward kinematics of a BVH file -> (T, J, 3) positions of every joint and end site, in file order."""
    lines = [ln.strip() for ln in text.splitlines()]
    motion = lines.index("MOTION")
    nodes, stack = [], []  # node: [parent index, offset, number of channels]
    for ln in lines[:motion]:
        word = ln.split()[0] if ln else ""
        if word in ("ROOT", "JOINT", "End"):
            nodes.append([stack[-1] if stack else -1, None, 0])
            pending = len(nodes) - 1
        elif word == "{":
            stack.append(pending)
        elif word == "}":
            stack.pop()
        elif word == "OFFSET":
            nodes[pending][1] = np.array([float(v) for v in ln.split()[1:]])
        elif word == "CHANNELS":
            nodes[pending][2] = int(ln.split()[1])
    frames = np.array([[float(v) for v in ln.split()] for ln in lines[motion + 3:] if ln])
    out = np.zeros((len(frames), len(nodes), 3))
    for t, values in enumerate(frames):
        k, rot = 0, {}
        for n, (parent, offset, nch) in enumerate(nodes):
            vals = values[k:k + nch]
            k += nch
            local = _euler(*vals[-3:]) if nch else np.eye(3)
            if parent < 0:
                out[t, n], rot[n] = vals[:3] + offset, local
            else:
                out[t, n] = out[t, parent] + rot[parent] @ offset
                rot[n] = rot[parent] @ local
    return out


def test_bvh_reproduces_a_moving_skeleton_with_fixed_bones():
    rng = np.random.default_rng(0)
    rest = rng.normal(scale=300.0, size=(16, 3))
    rest -= rest[MPII16.root]
    seq = np.stack([rest @ _rot_z(20.0 * t).T for t in range(5)])  # rigid motion: bone lengths fixed
    seq[2:, MPII16.index("r_wrist")] = seq[2:, MPII16.index("r_elbow")] + (  # and a forearm that moves on its own
        seq[2:, MPII16.index("r_wrist")] - seq[2:, MPII16.index("r_elbow")]) @ _rot_z(40.0).T
    text = export.bvh_text(seq, fps=25)
    assert "Frames: 5" in text and "Frame Time: 0.040000" in text
    pos = read_bvh_positions(text)  # (T, nodes, 3): BVH nodes sit at bone starts; end sites at leaf joints
    bvh_axes = seq * np.array([1.0, -1.0, -1.0])
    # every skeleton joint is the start of some bone node or an end site: match by nearest node
    for t in range(5):
        d = np.linalg.norm(pos[t][:, None] - bvh_axes[t][None], axis=-1)  # (nodes, 16)
        assert d.min(0).max() < 0.01, f"frame {t}: joints missing from the BVH by {d.min(0).max():.4f} mm"
    # a broken exporter (rest pose every frame) would not follow the motion
    frozen = read_bvh_positions(export.bvh_text(seq[:1].repeat(5, 0), fps=25))
    assert np.abs(frozen[4] - pos[4]).max() > 10


def test_bvh_names_every_bone_and_rejects_bad_shapes():
    text = export.bvh_text(np.random.default_rng(1).normal(size=(2, 16, 3)) * 200, fps=30)
    for parent, child in export.bvh_bones():
        assert export.bone_name(parent, child) in text
    assert len(export.bvh_bones()) == 15  # 14 edges + the thorax hung from the pelvis
    with pytest.raises(ValueError, match=r"\(T, 16, 3\)"):
        export.bvh_text(np.zeros((3, 15, 3)), fps=30)


def test_bundle_arrays_and_csv(tmp_path):
    rng = np.random.default_rng(2)
    j2, j3, conf, box = rng.random((3, 16, 2)), rng.random((3, 16, 3)), rng.random((3, 16)), rng.random((3, 3))
    export.write_bundle(tmp_path, ["a.jpg", "sub/b.png", "c.jpg"], j2, j3, conf, box)
    np.testing.assert_allclose(np.load(tmp_path / "joints_3d_mm.npy"), j3, atol=1e-6)
    assert np.load(tmp_path / "joints_2d_px.npy").shape == (3, 16, 2)
    assert (tmp_path / "items.txt").read_text().splitlines() == ["a.jpg", "sub/b.png", "c.jpg"]
    rows = list(csv.DictReader((tmp_path / "keypoints.csv").open()))
    assert len(rows) == 48 and rows[17]["item"] == "sub/b.png" and rows[17]["joint"] == MPII16.joint_names[1]
    assert float(rows[17]["z_mm"]) == pytest.approx(j3[1, 1, 2], abs=0.06)
    with pytest.raises(ValueError, match="joints_2d_px"):
        export.write_bundle(tmp_path, ["a"], j2, j3[:1], conf[:1], box[:1])


def test_an_interrupted_bundle_leaves_the_earlier_one_whole(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    j2, j3, conf, box = rng.random((2, 16, 2)), rng.random((2, 16, 3)), rng.random((2, 16)), rng.random((2, 3))
    folder = tmp_path / "keypoints"
    export.write_bundle(folder, ["a.jpg", "b.jpg"], j2, j3, conf, box)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert sorted(before) == sorted(export.BUNDLE_FILES)
    real = export.atomic_write

    def killed_at_the_csv(path, write, **kw):
        if path.name == "keypoints.csv":
            raise KeyboardInterrupt  # Ctrl-C after the new arrays and items.txt were written
        return real(path, write, **kw)

    monkeypatch.setattr(export, "atomic_write", killed_at_the_csv)
    with pytest.raises(KeyboardInterrupt):
        export.write_bundle(folder, ["c.jpg"], j2[:1] + 1, j3[:1], conf[:1], box[:1])
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # not the new arrays beside the old CSV
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keypoints"]  # no temporary folder left
    monkeypatch.setattr(export, "atomic_write", real)
    export.write_bundle(folder, ["c.jpg"], j2[:1], j3[:1], conf[:1], box[:1])
    assert (folder / "items.txt").read_text() == "c.jpg\n" and np.load(folder / "confidence.npy").shape == (1, 16)


def test_a_bundle_never_replaces_a_folder_of_other_files(tmp_path):
    rng = np.random.default_rng(4)
    (tmp_path / "photo.jpg").write_bytes(b"mine")
    with pytest.raises(Pose3DError, match=r"holds files that are not a keypoint bundle's \(photo\.jpg\)"):
        export.write_bundle(tmp_path, ["a"], rng.random((1, 16, 2)), rng.random((1, 16, 3)), rng.random((1, 16)),
                            rng.random((1, 3)))
    assert (tmp_path / "photo.jpg").read_bytes() == b"mine"

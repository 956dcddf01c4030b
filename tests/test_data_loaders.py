"""Loaders, augmentation and targets: real-format files, flip consistency, heatmap peaks, bad input."""
from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest

from pose3dlib import camera
from pose3dlib.config import DataConfig, SyntheticConfig
from pose3dlib.data import targets
from pose3dlib.data.fusion import FusionDataset
from pose3dlib.data.h36m import H36MDataset
from pose3dlib.data.mpii import MPIIDataset, read_annotations
from pose3dlib.data.sample import make_sample
from pose3dlib.data.transforms import Augmentation
from pose3dlib.engine.errors import DataError
from pose3dlib.skeleton import DEPTH_ROOT, MPII16, flip_joints
from pose3dlib.synthetic import generator as synthetic

TINY = SyntheticConfig(image_size=64, h36m_train=10, h36m_test=4, mpii_train=8, mpii_val=3, wild_test=4, workers=1)
CFG = DataConfig(input_size=64, heatmap_size=16, sigma=1.0)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return synthetic.generate(tmp_path_factory.mktemp("syn") / "d", TINY, seed=0)


def _write_mpii(path, n=3, **override):
    """An MPII-format file with the release's dtypes (bytes imgname, float64 arrays)."""
    rng = np.random.default_rng(0)
    data = {"imgname": np.array([b"005808361.jpg", b"015601864.jpg", b"015599452.jpg"][:n]),
            "part": rng.uniform(10, 300, (n, 16, 2)), "center": rng.uniform(100, 200, (n, 2)),
            "scale": rng.uniform(1, 3, n), "visible": np.ones((n, 16)), "normalize": rng.uniform(20, 60, n),
            "index": np.arange(n, dtype=np.float64), "person": np.ones(n), "torsoangle": np.zeros(n)}
    data["part"][0, 3] = 0.0  # unannotated
    data.update(override)
    with h5py.File(path, "w") as f:
        for k, v in data.items():
            if v is not None:
                f[k] = v
    return data


def test_read_annotations_real_format(tmp_path):
    data = _write_mpii(tmp_path / "train.h5")
    a = read_annotations(tmp_path / "train.h5")
    assert list(a["imgname"]) == ["005808361.jpg", "015601864.jpg", "015599452.jpg"]
    for k in ("part", "center", "scale", "visible", "normalize"):
        assert np.array_equal(a[k], data[k])


def test_bad_schema_names_keys_and_shapes(tmp_path):
    _write_mpii(tmp_path / "a.h5", center=None)
    with pytest.raises(DataError, match="center"):
        read_annotations(tmp_path / "a.h5")
    _write_mpii(tmp_path / "b.h5", part=np.zeros((3, 14, 2)))
    with pytest.raises(DataError, match=r"part \(3, 14, 2\).*\(3, 16, 2\)"):
        read_annotations(tmp_path / "b.h5")
    bad = np.ones((3, 16, 2))
    bad[1, 5, 0] = np.nan
    _write_mpii(tmp_path / "c.h5", part=bad)
    with pytest.raises(DataError, match="part.*NaN.*row 1"):
        read_annotations(tmp_path / "c.h5")
    _write_mpii(tmp_path / "d.h5", scale=np.array([1.0, np.inf, 1.0]))
    with pytest.raises(DataError, match="scale"):
        read_annotations(tmp_path / "d.h5")


def test_missing_image_names_file_and_index(tmp_path):
    (tmp_path / "images").mkdir()
    _write_mpii(tmp_path / "train.h5")
    ds = MPIIDataset(tmp_path, "train", CFG)
    assert not ds.annotated[0, 3] and ds.annotated[0, 4]  # (0, 0) means "no label"
    with pytest.raises(DataError, match=r"sample 1 .*015601864\.jpg"):
        ds[1]


def test_h36m_missing_file_and_keys(tmp_path, root):
    with pytest.raises(DataError, match="not found"):
        H36MDataset(tmp_path, "train", CFG)
    with h5py.File(root / "h36m" / "annot.h5") as src, h5py.File(tmp_path / "annot.h5", "w") as dst:
        for k in src:
            if k not in ("istrain", "joint_3d_mono"):
                dst[k] = src[k][()]
    with pytest.raises(DataError, match="istrain.*joint_3d_mono|joint_3d_mono.*istrain"):
        H36MDataset(tmp_path, "train", CFG)


def test_sample_dict_contract(root):
    h = H36MDataset(root / "h36m", "test", CFG)
    m = MPIIDataset(root / "mpii", "train", CFG)
    assert len(h) == TINY.h36m_test and len(m) == TINY.mpii_train
    for s, depth in ((h[0], True), (m[0], False)):
        assert s["image"].dtype == np.uint8 and s["image"].shape == (3, 64, 64)
        assert s["heatmaps"].dtype == np.float32 and s["heatmaps"].shape == (16, 16, 16)
        assert s["valid"].dtype == bool and s["joints_2d"].shape == (16, 2) and s["crop"].shape == (2, 3)
        assert bool(s["has_depth"]) is depth and s["depth"].shape == (16,)
        assert s["index"].dtype == np.int64
    s = h[0]
    assert np.allclose(s["joints_3d_mm"], h.joints_3d_mm[0], atol=1e-3)
    assert s["joints_3d_mm"][DEPTH_ROOT].tolist() == [0.0, 0.0, 0.0]
    # the crop affine maps the stored 2D to the sample's normalised joints
    crop_px = camera.apply_affine(h.joints_2d_px[0], s["crop"].astype(np.float64))
    assert np.allclose(camera.crop_px_to_normalized(crop_px, 64, 16), s["joints_2d"], atol=1e-4)
    assert np.allclose(h.crops[0], s["crop"])


def test_depth_target_independent_formula(root):
    h = H36MDataset(root / "h36m", "train", CFG)
    s = h[2]
    j2, j3 = s["joints_2d"].astype(np.float64), s["joints_3d_mm"].astype(np.float64)
    num = sum(np.hypot(*(j2[a] - j2[b])) for a, b in MPII16.edges)
    den = sum(np.hypot(*(j3[a, :2] - j3[b, :2])) for a, b in MPII16.edges)
    assert np.allclose(s["depth"], (j3[:, 2] - j3[DEPTH_ROOT, 2]) * num / den, atol=1e-5)
    # weak perspective: the normalised 2D equal the scaled 3D xy up to a translation (small error)
    rel2 = j2 - j2[DEPTH_ROOT]
    assert np.abs(rel2 - j3[:, :2] * num / den).max() < 0.08



def test_depth_target_is_root_relative_whatever_the_3d_origin():
    """depth_j = (z_j - z_root) * s: the same target for a skeleton moved along any camera axis
    (the samples pass root-relative joints, so only a direct call sees the root's own depth)."""
    rng = np.random.default_rng(4)
    j3 = rng.normal(0, 300, (16, 3))
    j3 -= j3[DEPTH_ROOT]
    j2 = j3[:, :2] / 900.0 + rng.normal(0, 0.01, (16, 2))
    num = sum(np.hypot(*(j2[a] - j2[b])) for a, b in MPII16.edges)
    den = sum(np.hypot(*(j3[a, :2] - j3[b, :2])) for a, b in MPII16.edges)
    for shift in ([0.0, 0.0, 0.0], [0.0, 0.0, 4500.0], [120.0, -80.0, 3000.0]):
        depth = targets.depth_target(j2, j3 + shift)
        assert depth[DEPTH_ROOT] == 0.0
        np.testing.assert_allclose(depth, j3[:, 2] * num / den, rtol=1e-5, atol=1e-6)


def test_unannotated_joints_carry_no_coordinates():
    """make_sample: an unannotated joint's joints_2d is zero (its stored position, here far off, is no label);
    the annotated ones are their source pixels through the crop, in normalised units."""
    image = np.zeros((100, 120, 3), np.uint8)
    rng = np.random.default_rng(2)
    joints = rng.uniform(30, 70, (16, 2))
    annotated = np.ones(16, bool)
    annotated[[3, 9]] = False
    joints[[3, 9]] = [[-1.0, -1.0], [500.0, 7.0]]  # what a file holds for a missing label
    s = make_sample(image, joints, annotated, None, np.array([50.0, 50.0]), 60.0, Augmentation(), CFG,
                    subject=0, action=0, index=0)
    assert (s["joints_2d"][[3, 9]] == 0).all() and not s["valid"][[3, 9]].any()
    expected = camera.crop_px_to_normalized(camera.apply_affine(joints, camera.crop_affine([50.0, 50.0], 60.0, 0.0, 64)), 64, 16)
    np.testing.assert_allclose(s["joints_2d"][annotated], expected[annotated], atol=1e-5)

def test_heatmap_peaks_at_joints():
    joints = np.array([[3.0, 5.0], [10.25, 7.5], [0.0, 0.0]])
    maps = targets.gaussian_heatmaps(joints, np.array([True, True, False]), 16, 1.75)
    assert np.unravel_index(maps[0].argmax(), maps[0].shape) == (5, 3) and maps[0].max() == pytest.approx(1.0)
    assert maps[0][5, 4] == pytest.approx(np.exp(-1 / (2 * 1.75**2)))  # the original's 0.8494
    assert maps[0][5, 4] == pytest.approx(0.8494, abs=1e-3)
    assert np.unravel_index(maps[1].argmax(), maps[1].shape) == (7, 10)
    assert maps[1][7, 10] == pytest.approx(maps[1][8, 10])  # symmetric about y = 7.5
    assert not maps[2].any()


def test_flip_consistency(root):
    """A flipped sample's joints equal the flip of the un-flipped sample's joints."""
    h = H36MDataset(root / "h36m", "train", CFG)
    image, row = np.ascontiguousarray(np.zeros((64, 64, 3), np.uint8)), 0
    centre, box = np.array([31.5, 31.5]), 64.0
    args = (image, h.joints_2d_px[row], np.ones(16, bool), h.joints_3d_cam[row], centre, box)
    kw = {"subject": 1, "action": 2, "index": 0}
    plain = make_sample(*args, Augmentation(scale=1.2, rotation_deg=15.0), CFG, **kw)
    flip = make_sample(*args, Augmentation(scale=1.2, rotation_deg=15.0, flip=True), CFG, **kw)
    # a mirror about the crop's centre line: normalised x -> -x - 2/H (centre-aligned grids) and L/R swap
    expect = flip_joints(plain["joints_2d"].astype(np.float64))
    expect[:, 0] -= 2.0 / 16
    assert np.allclose(flip["joints_2d"], expect, atol=1e-5)
    assert np.allclose(flip["joints_3d_mm"], flip_joints(plain["joints_3d_mm"]), atol=1e-3)
    assert np.allclose(flip["depth"], plain["depth"][MPII16.flip_permutation], atol=1e-5)
    assert np.allclose(flip["heatmaps"], plain["heatmaps"][MPII16.flip_permutation][:, :, ::-1], atol=1e-5)


def test_augmented_samples_deterministic_per_seed_epoch_index(root):
    cfg = dataclasses.replace(CFG, rotation_prob=1.0)
    a = MPIIDataset(root / "mpii", "train", cfg, augment=True, seed=5)
    b = MPIIDataset(root / "mpii", "train", cfg, augment=True, seed=5)
    b.set_epoch(0)
    assert np.array_equal(a[2]["image"], b[2]["image"])
    b.set_epoch(1)
    assert not np.array_equal(a[2]["image"], b[2]["image"])
    assert not np.array_equal(a[2]["image"], MPIIDataset(root / "mpii", "train", cfg)[2]["image"])


def test_unannotated_joints_are_masked(root):
    m = MPIIDataset(root / "mpii", "train", CFG)
    for i in range(len(m)):
        s = m[i]
        assert not s["valid"][~m.annotated[i]].any()
        assert not s["heatmaps"][~s["valid"]].any()


def test_fusion_ratio_and_epoch_draws(root):
    m = MPIIDataset(root / "mpii", "train", CFG)
    h = H36MDataset(root / "h36m", "train", CFG)
    f = FusionDataset(m, h, ratio_3d=0.5, samples_2d=6, seed=1)
    assert len(f) == 6 + 3
    has = [bool(f[i]["has_depth"]) for i in range(len(f))]
    assert has == [False] * 6 + [True] * 3
    rows_2d, rows_3d = f.rows_2d.copy(), f.rows_3d.copy()
    # 6 of 8 MPII rows and 3 of the H36M rows are drawn anew each epoch, both from (seed, epoch)
    f.set_epoch(1)
    assert not np.array_equal(f.rows_2d, rows_2d)
    assert not np.array_equal(f.rows_3d, rows_3d)
    f.set_epoch(0)
    assert np.array_equal(f.rows_2d, rows_2d)
    assert np.array_equal(f.rows_3d, rows_3d)
    assert len(FusionDataset(m, None, 0.0)) == len(m)


def test_h36m_nan_rejected(tmp_path, root):
    with h5py.File(root / "h36m" / "annot.h5") as src, h5py.File(tmp_path / "annot.h5", "w") as dst:
        for k in src:
            v = src[k][()]
            if k == "joint_3d_mono":
                v[2, 4, 1] = np.inf
            dst[k] = v
    with pytest.raises(DataError, match="joint_3d_mono.*row 2"):
        H36MDataset(tmp_path, "train", CFG)


@pytest.mark.parametrize("key, value, needle", [
    ("id", np.nan, r"'id' has NaN or infinite values in 1 rows \(first: row 3\)"),
    ("subject", 9.5, r"'subject' holds fractions in 1 rows \(first: row 3, \[9\.5\]\); expected whole numbers"),
])
def test_h36m_ids_stored_as_floats_must_be_whole_numbers(tmp_path, root, key, value, needle):
    """An id or index stored as a float must be a whole number: cast to an index, a NaN or 9.5 would
    name another image, or fail later without naming its key."""
    with h5py.File(root / "h36m" / "annot.h5") as src, h5py.File(tmp_path / "annot.h5", "w") as dst:
        for k in src:
            v = src[k][()]
            if k == key:
                v = v.astype(np.float64)
                v[3] = value
            dst[k] = v
    with pytest.raises(DataError, match=needle):
        H36MDataset(tmp_path, "train", CFG)


def test_mpii_crops_map_parts_to_sample_joints(root):
    m = MPIIDataset(root / "mpii", "val", CFG)
    for i in range(len(m)):
        s = m[i]
        crop_px = camera.apply_affine(m.part[i], m.crops[i].astype(np.float64))
        norm = camera.crop_px_to_normalized(crop_px, CFG.input_size, CFG.heatmap_size)
        assert np.allclose(norm[m.annotated[i]], s["joints_2d"][m.annotated[i]], atol=1e-4)
        assert m.normalize is not None and m.normalize[i] > 0


def test_the_release_224_px_human36m_crops_load_like_any_other_crop_size(root, tmp_path):
    # The original release shipped 224 x 224 Human3.6M crops with joint_2d in their pixels; the
    # converter writes 256 px, the generator TINY.image_size. The loader takes the whole image as
    # the crop, so the same people at 224 px give the same normalised joints and 3D labels.
    import shutil

    import cv2

    release = tmp_path / "h36m"
    shutil.copytree(root / "h36m", release)
    scale = 224 / TINY.image_size
    for path in (release / "images").rglob("*.jpg"):
        image = cv2.imread(str(path))
        assert image.shape[:2] == (TINY.image_size, TINY.image_size)
        cv2.imwrite(str(path), cv2.resize(image, (224, 224), interpolation=cv2.INTER_LINEAR))
    with h5py.File(release / "annot.h5", "r+") as f:
        # pixel centres: x_224 = (x + 0.5) * scale - 0.5, the same point of the picture
        f["joint_2d"][...] = (f["joint_2d"][()] + 0.5) * scale - 0.5
    ours, theirs = H36MDataset(root / "h36m", "test", CFG), H36MDataset(release, "test", CFG)
    assert len(ours) == len(theirs) == TINY.h36m_test
    for i in range(len(ours)):
        a, b = ours[i], theirs[i]
        assert b["image"].shape == a["image"].shape == (3, CFG.input_size, CFG.input_size)
        assert np.allclose(a["joints_2d"], b["joints_2d"], atol=1e-4), i  # normalised units
        assert np.array_equal(a["joints_3d_mm"], b["joints_3d_mm"]) and np.allclose(a["depth"], b["depth"])
        assert np.abs(a["image"].astype(int) - b["image"].astype(int)).mean() < 4  # resampled, same picture


def test_loose_framing(root):
    """Loose framing: side 1.35-2.0 x the person's extent, shifted but around the whole person; the drawn stream kept at 0."""
    from pose3dlib.data.mpii import BOX_FACTOR
    from pose3dlib.data.transforms import LOOSE_CROP_MARGIN, loose_framing

    plain = MPIIDataset(root / "mpii", "train", CFG, augment=True, seed=3)
    ds = MPIIDataset(root / "mpii", "train", CFG, augment=True, seed=3, loose_crop_prob=1.0)
    upright = MPIIDataset(root / "mpii", "train", dataclasses.replace(CFG, rotation_prob=0.0), augment=True, seed=3,
                          loose_crop_prob=1.0)
    sides, offsets = [], []
    for i in range(len(ds)):
        s, p = ds[i], plain[i]
        side = 64 / np.linalg.norm(s["crop"][0, :2])  # source pixels the crop spans
        extent = ds.box_px[i] / BOX_FACTOR
        sides.append(side / extent)
        assert LOOSE_CROP_MARGIN[0] - 1e-6 <= side / extent <= LOOSE_CROP_MARGIN[1] + 1e-6
        centre_px = camera.apply_affine(ds.centre[i][None], s["crop"].astype(np.float64))[0]
        offsets.append(np.abs(centre_px - 31.5).max() / 64 * side)  # source px off the crop's centre
        assert s["heatmaps"].any() and not np.array_equal(s["crop"], p["crop"])
        # unrotated, the whole person stays inside the crop: every annotated joint is a valid target
        u = upright[i]
        assert u["valid"].sum() == ds.annotated[i].sum() and np.array_equal(u["heatmap_valid"], u["valid"])
    assert np.ptp(sides) > 0.05 and max(offsets) > 0.5  # drawn, not fixed
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    assert loose_framing(rng_a, 0.0, Augmentation(), np.zeros(2), 50.0, BOX_FACTOR) is None
    assert rng_a.random() == rng_b.random()


def test_crops_without_a_whole_person(root):
    """Close-ups and shifted boxes: all heatmaps zero and supervised, no joint valid, the crop where it was drawn."""
    from pose3dlib.data.transforms import PART_CROP_SCALE, SHIFTED_CROP_OFFSET, crop_without_person

    plain = MPIIDataset(root / "mpii", "train", CFG, augment=True, seed=3)
    for key in ("part_crop_prob", "shifted_crop_prob"):
        ds = MPIIDataset(root / "mpii", "train", dataclasses.replace(CFG, **{key: 1.0}), augment=True, seed=3)
        for i in range(len(ds)):
            s, p = ds[i], plain[i]
            assert not s["valid"].any() and s["heatmap_valid"].all() and not s["heatmaps"].any()
            assert not s["joints_2d"].any() and not bool(s["has_depth"])
            assert p["valid"].any() and np.array_equal(p["heatmap_valid"], p["valid"])
            # where the drawn crop lies: the person's crop centre in crop pixels, and the crop's scale
            centre_px = camera.apply_affine(ds.centre[i][None], s["crop"].astype(np.float64))[0]
            side = 64 / np.linalg.norm(s["crop"][0, :2])  # source pixels the crop spans
            off = np.linalg.norm(centre_px - 31.5) / 64 * side / ds.box_px[i]  # in person-box sides
            if key == "part_crop_prob":
                assert PART_CROP_SCALE[0] - 1e-6 <= side / ds.box_px[i] <= PART_CROP_SCALE[1] + 1e-6
            else:
                assert SHIFTED_CROP_OFFSET[0] - 1e-6 <= off <= SHIFTED_CROP_OFFSET[1] + 1e-6
    # with both probabilities 0 nothing is drawn: the sample stream is the plain one, bit for bit
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    assert crop_without_person(rng_a, CFG, Augmentation(), np.zeros(2), 50.0, np.zeros((16, 2)), np.ones(16, bool)) is None
    assert rng_a.random() == rng_b.random()
    # a 3D sample cannot be turned into a crop without a person
    h = H36MDataset(root / "h36m", "train", CFG)
    with pytest.raises(DataError, match="without a whole person"):
        make_sample(np.zeros((64, 64, 3), np.uint8), h.joints_2d_px[0], np.ones(16, bool), h.joints_3d_cam[0],
                    np.array([31.5, 31.5]), 64.0, Augmentation(), CFG, subject=1, action=0, index=0,
                    frames_person=False)

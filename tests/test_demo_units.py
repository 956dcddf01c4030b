"""The demo's per-image pieces with a stand-in network: flip testing in estimate_pose, the low-confidence warning."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pose3dlib import decode
from pose3dlib.config import load_config
from pose3dlib.inference import demo, detect
from pose3dlib.skeleton import MPII16

BONE_SUM_MM = 3000.0
HM = 16  # the smoke profile's heatmap side (input 64 px)
RNG = np.random.default_rng(0)
# heatmap peaks (u column, v row) in the left part of the grid, so their mirrors (15 - u) are far from them
PEAKS = np.stack([RNG.integers(2, 6, 16), RNG.integers(2, 14, 16)], axis=1)
DEPTH = RNG.uniform(-0.5, 0.5, 16)


def mirror_joint(j: int) -> int:
    """The joint a horizontal mirror turns joint j into, from the names alone (r_x <-> l_x)."""
    name = MPII16.joint_names[j]
    if name[:2] in ("r_", "l_"):
        name = ("l_" if name[:2] == "r_" else "r_") + name[2:]
    return MPII16.joint_names.index(name)


class SidedModel(torch.nn.Module):
    """Stand-in network whose every heatmap has one peak at PEAKS[j], whatever the picture, of height
    gain * (0.25 + the left half's share of the picture's brightness); its depth is that height times DEPTH.

    A picture dark on the left gives height 0.25 gain; its mirror image, bright on the left, 1.25 gain.
    """

    def __init__(self, gain: float = 1.0):
        super().__init__()
        self.gain = gain
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):  # (B, 3, S, S)
        s = x.shape[-1]
        left, right = x[..., : s // 2].mean(dim=(1, 2, 3)), x[..., s // 2:].mean(dim=(1, 2, 3))
        height = self.gain * (0.25 + left / (left + right))  # (B,)
        hm = torch.zeros(x.shape[0], 16, HM, HM)
        for j, (u, v) in enumerate(PEAKS):
            hm[:, j, v, u] = height
        return {"heatmaps": [hm], "depth": height[:, None] * torch.as_tensor(DEPTH, dtype=torch.float32)}


@pytest.fixture(scope="module")
def cfg():
    smoke = load_config("configs/smoke.yaml")
    assert (smoke.data.input_size, smoke.data.heatmap_size) == (64, HM)
    return dataclasses.replace(smoke, train=dataclasses.replace(smoke.train, bone_sum_mm=BONE_SUM_MM))


def half_dark_image() -> np.ndarray:
    """64 x 64, black on the left half, white on the right: the whole-image crop is the picture itself."""
    image = np.zeros((64, 64, 3), np.uint8)
    image[:, 32:] = 255
    return image


def heatmap_px_to_image_px(uv: np.ndarray) -> np.ndarray:
    """Heatmap pixel centres -> the 64 px crop (= the picture here): p = (u + 0.5) * 64 / 16 - 0.5."""
    return (uv + 0.5) * 4.0 - 0.5


def test_flip_test_averages_the_mirrored_pass_mapped_back(cfg):
    """flip_test=True: each joint's heatmap is the mean of the plain pass and the mirrored picture's pass,
    mirrored back (column u -> 15 - u) with left and right joints swapped; depth likewise (swap only).

    The mirrored picture is bright on the left, so its pass peaks 5 x higher (1.25 against 0.25): averaged,
    joint j's maximum, 1.25 / 2 = 0.625, lies where the mirrored pass put joint mirror(j), mirrored back
    (the plain pass's 0.25 / 2 is elsewhere); without flip testing the plain peaks are found."""
    image = half_dark_image()
    swap = [mirror_joint(j) for j in range(16)]
    assert swap[0] == 5 and swap[10] == 15 and swap[6] == 6  # r_ankle <-> l_ankle, r_wrist <-> l_wrist, pelvis
    mirrored = np.stack([HM - 1 - PEAKS[swap, 0], PEAKS[swap, 1]], axis=1)  # heatmap px of each joint's flipped peak
    assert (np.abs(mirrored[:, 0] - PEAKS[:, 0]) > 1).all()  # never next to the plain peak: no sub-pixel shift

    plain = demo.estimate_pose(SidedModel(), cfg, image, flip_test=False, whole_image=True)
    np.testing.assert_allclose(plain["joints_2d_px"], heatmap_px_to_image_px(PEAKS), atol=0.006)
    np.testing.assert_allclose(plain["confidence"], np.full(16, 0.25), atol=1e-4)

    flipped = demo.estimate_pose(SidedModel(), cfg, image, flip_test=True, whole_image=True)
    np.testing.assert_allclose(flipped["joints_2d_px"], heatmap_px_to_image_px(mirrored), atol=0.006)
    np.testing.assert_allclose(flipped["confidence"], np.full(16, 0.625), atol=1e-4)
    assert flipped["score"] == pytest.approx(0.625, abs=1e-4)
    # 3D: the averaged depth 0.5 (0.25 DEPTH[j] + 1.25 DEPTH[mirror(j)]) with the 2D above, scaled to BONE_SUM_MM
    depth = 0.5 * (0.25 * DEPTH + 1.25 * DEPTH[swap])
    expected_3d = decode.reconstruct_3d((2.0 * mirrored / HM - 1.0)[None], depth[None], BONE_SUM_MM)[0]
    np.testing.assert_allclose(flipped["joints_3d_mm"], expected_3d, atol=0.06)


def _record(score: float, side: float = 64.0) -> dict:
    return {"box": {"center_px": [31.5, 31.5], "side_px": side, "source": "test", "score": None}, "score": score}


def test_no_confident_person_warning_fires_below_min_score_only(cfg):
    """The warning says the person is barely seen when the mean joint confidence is below detect.MIN_SCORE
    (strictly), naming the score; a box of a sensible size warns of nothing else."""
    below = demo.warnings_for(_record(detect.MIN_SCORE - 0.01), (64, 64))
    assert below == [f"no confident person: mean joint confidence {detect.MIN_SCORE - 0.01:.3f} < {detect.MIN_SCORE}"]
    assert demo.warnings_for(_record(detect.MIN_SCORE), (64, 64)) == []
    assert demo.warnings_for(_record(0.9), (64, 64)) == []
    # end to end: heatmap maxima of 0.4 x 0.25 = 0.1 on every joint (no flip test) -> score 0.1, warned
    weak = demo.estimate_pose(SidedModel(gain=0.4), cfg, half_dark_image(), flip_test=False, whole_image=True)
    assert weak["score"] == pytest.approx(0.1, abs=1e-4)
    assert weak["warnings"] == [f"no confident person: mean joint confidence 0.100 < {detect.MIN_SCORE}"]
    strong = demo.estimate_pose(SidedModel(), cfg, half_dark_image(), flip_test=False, whole_image=True)
    assert strong["score"] == pytest.approx(0.25, abs=1e-4) and strong["warnings"] == []


def test_a_file_name_that_is_not_utf8_is_written_or_refused_never_a_crash(tmp_path):
    """OpenCV's conversion of a name that is not valid UTF-8 (a Latin-1 'café.png': Python holds the byte 0xe9 as a
    surrogate escape) was a segmentation fault in the demo's cv2.imwrite and cv2.VideoCapture: pictures are now
    encoded by OpenCV and written by Python, and a video's name is a DataError naming it."""
    import os

    from pose3dlib.engine.errors import DataError
    from pose3dlib.inference import media

    image = np.zeros((8, 10, 3), np.uint8)
    image[2:5, 3:7] = (200, 40, 10)
    path = tmp_path / os.fsdecode(b"caf\xe9.png")
    media.write_image_rgb(path, image)
    assert np.array_equal(media.read_image_rgb(path), image)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    video = tmp_path / os.fsdecode(b"v\xe9.mp4")
    with pytest.raises(DataError, match=r"v\\udce9.mp4'?: the file name is not valid UTF-8"):
        media.VideoWriter(video, 10.0, (10, 8))
    video.write_bytes(b"\x00" * 64)
    with pytest.raises(DataError, match="not valid UTF-8"):
        list(media.read_video_frames(video))

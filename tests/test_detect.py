"""Person search without a box: windows, the coarse-to-fine search, the hit criterion, synthetic scenes."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pose3dlib.config import load_config
from pose3dlib.inference import detect
from pose3dlib.synthetic.scenes import make_scene

IDEAL_FILL = 1 / detect.REFINE_MARGIN  # stand-in: the marker's extent / window side it likes best


class MarkerModel(torch.nn.Module):
    """Stand-in network that 'sees' a pure red square: it frames the red pixels like a person.

    Joints spread over the red pixels' box (so refinement re-centres on it) and every joint's
    heatmap maximum is highest when that box spans IDEAL_FILL of the crop, falling off when
    the crop is too large (the marker is small in it) or too small (the marker overflows it)
    and when the red pixels fill their box poorly (two markers in one crop).
    """

    def __init__(self, heatmap_size: int):
        super().__init__()
        self.hm = heatmap_size
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):  # x: (B, 3, S, S) RGB / 255
        b, _, s, _ = x.shape
        red = (x[:, 0] > 0.8) & (x[:, 1] < 0.2) & (x[:, 2] < 0.2)  # (B, S, S)
        hm = torch.zeros(b, 16, self.hm, self.hm)
        for i in range(b):
            ys, xs = torch.nonzero(red[i], as_tuple=True)
            if len(xs) == 0:
                continue
            lo = torch.stack([xs.min(), ys.min()]).float()
            hi = torch.stack([xs.max(), ys.max()]).float()
            fill = float((hi - lo).max() + 1) / s
            touches = bool(lo.min() <= 0 or hi.max() >= s - 1)  # cut by the crop: overflowing
            density = len(xs) / float(torch.prod(hi - lo + 1))  # one square fills its box; two apart do not
            value = min(fill / IDEAL_FILL, IDEAL_FILL / fill) * (0.5 if touches else 1.0) * density
            for j in range(16):
                t = j / 15.0
                p = (lo + (hi - lo) * torch.tensor([t, 1 - t])) * self.hm / s
                u, v = (int(c) for c in p.clamp(0, self.hm - 1))
                hm[i, j, v, u] = value
        return {"heatmaps": [hm], "depth": torch.zeros(b, 16)}


@pytest.fixture(scope="module")
def smoke_cfg():
    return load_config("configs/smoke.yaml")


def test_windows_cover_the_image_at_every_scale():
    h, w = 240, 400
    win = detect.candidate_windows((h, w))
    sides = np.unique(np.round(win[:, 2], 3))
    assert sides.max() == pytest.approx(max(h, w)) and sides.min() >= detect.MIN_SIDE_FRACTION * min(h, w) * 0.999
    assert sides.min() < detect.MIN_SIDE_FRACTION * min(h, w) * 2 ** (1 / detect.SCALES_PER_OCTAVE)
    for side in sides[sides < min(h, w)]:  # every pixel lies in some window of each scale that fits
        at = win[np.isclose(win[:, 2], side)]
        xs = np.arange(0, w, 7)[:, None]
        ys = np.arange(0, h, 7)[:, None]
        assert np.all(np.any(np.abs(xs - at[:, 0]) <= side / 2, axis=1))
        assert np.all(np.any(np.abs(ys - at[:, 1]) <= side / 2, axis=1))


@pytest.mark.parametrize("hw", [(50, 1000), (1000, 64), (64, 640)])
def test_long_narrow_pictures_keep_the_window_count_bounded(hw):
    win = detect.candidate_windows(hw)
    sides = np.unique(np.round(win[:, 2], 3))
    assert len(win) <= detect.MAX_WINDOWS and sides.max() == pytest.approx(max(hw))
    # what is left out is only the smallest scales: all kept ones are those of an unbounded search, largest first
    unbounded = detect.candidate_windows(hw, max_windows=10**9)
    assert len(unbounded) > detect.MAX_WINDOWS
    assert np.array_equal(win, unbounded[:len(win)])


@pytest.mark.parametrize("centre, extent", [((300.0, 80.0), 60), ((70.0, 170.0), 110), ((200.0, 120.0), 36)])
def test_search_finds_an_off_centre_marker(smoke_cfg, centre, extent):
    image = np.full((240, 400, 3), 90, np.uint8)
    image[::9] = 200  # some texture that is not red
    x0, y0 = int(centre[0] - extent / 2), int(centre[1] - extent / 2)
    image[y0:y0 + extent, x0:x0 + extent] = (255, 0, 0)
    box = detect.find_people(MarkerModel(smoke_cfg.data.heatmap_size), smoke_cfg, image)[0]
    assert box.source == "heatmap search"
    assert detect.hit(box, np.array([x0, y0, extent, extent], float))
    assert np.linalg.norm(box.center_px - centre) < 0.2 * extent
    assert 1.0 < box.side_px / extent < 2.0


def test_all_people_finds_two_markers(smoke_cfg):
    image = np.full((240, 480, 3), 90, np.uint8)
    image[40:120, 40:120] = (255, 0, 0)
    image[130:200, 330:400] = (255, 0, 0)
    boxes = detect.find_people(MarkerModel(smoke_cfg.data.heatmap_size), smoke_cfg, image, max_people=4)
    assert len(boxes) == 2
    markers = [np.array([40, 40, 80, 80.0]), np.array([330, 130, 70, 70.0])]
    hits = np.array([[detect.hit(b, m) for m in markers] for b in boxes])
    # a hit needs the box centre inside the marker: one box per marker, each box on one marker
    assert hits.sum(axis=0).tolist() == [1, 1] and hits.sum(axis=1).tolist() == [1, 1], hits


def test_hit_criterion():
    person = np.array([100.0, 50.0, 40.0, 100.0])  # x, y, w, h; larger side 100
    assert detect.hit(detect.Box(np.array([120.0, 100.0]), 150.0, 1.0, "t"), person)
    assert not detect.hit(detect.Box(np.array([90.0, 100.0]), 150.0, 1.0, "t"), person)  # centre beside the person
    assert not detect.hit(detect.Box(np.array([120.0, 100.0]), 45.0, 1.0, "t"), person)  # < 0.5 x
    assert not detect.hit(detect.Box(np.array([120.0, 100.0]), 260.0, 1.0, "t"), person)  # > 2.5 x


def test_scene_ground_truth_matches_the_rendered_person():
    a = make_scene(np.random.default_rng(3), (300, 500))
    b = make_scene(np.random.default_rng(3), (300, 500))
    np.testing.assert_array_equal(a.image, b.image)  # a pure function of the generator
    assert a.image.shape == (300, 500, 3) and a.image.dtype == np.uint8
    x, y, w, h = a.person_boxes_px[0]
    assert 0 <= x and 0 <= y and x + w <= 500 and y + h <= 300
    j = a.joints_2d_px[0]
    inside = (j[:, 0] >= x - 2) & (j[:, 0] <= x + w + 2) & (j[:, 1] >= y - 2) & (j[:, 1] <= y + h + 2)
    assert inside.all()
    two = make_scene(np.random.default_rng(4), (300, 600), num_people=2)
    assert two.person_boxes_px.shape == (2, 4)
    assert two.person_boxes_px[0, 0] + two.person_boxes_px[0, 2] <= two.person_boxes_px[1, 0] + 1  # side by side


def test_person_search_command_reports_a_hit_rate(tmp_path):
    import json
    import subprocess
    import sys

    from pose3dlib.config import config_to_dict
    from pose3dlib.engine.checkpoint import make_checkpoint, save_checkpoint
    from pose3dlib.model import build_model

    cfg = load_config("configs/smoke.yaml")
    ckpt = tmp_path / "c.pt"
    save_checkpoint(ckpt, make_checkpoint(model_state=build_model(cfg.model).state_dict(), config=config_to_dict(cfg), stage=1,
                                          extra={"finished": True}))
    for flags, recentre in (((), True), (("--no-recentre",), False)):
        r = subprocess.run([sys.executable, "-m", "pose3dlib", "person-search", str(ckpt), "--scenes", "2",
                            "--out", str(tmp_path / "hits.json"), *flags], check=False, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stderr
        result = json.loads((tmp_path / "hits.json").read_text())
        assert len(result["rows"]) == 2 and "person found in" in r.stdout
        assert all(r["side_ratio"] > 0 and isinstance(r["hit"], bool) for r in result["rows"])
        assert result["recentre"] is recentre
    from pose3dlib.tools.cli import main

    assert main(["person-search", str(ckpt), "--scenes", "2", "--seed", "-1"]) == 2  # a traceback before


def test_refine_reports_the_best_window_re_centred_on_its_joints(smoke_cfg):
    """A window beside the person can score as high as a centred one (a network trained on
    loose, off-centre crops barely cares); the reported box is centred on the joints found."""
    centre, extent = np.array([200.0, 120.0]), 40
    image = np.full((240, 400, 3), 90, np.uint8)
    x0, y0 = int(centre[0] - extent / 2), int(centre[1] - extent / 2)
    image[y0:y0 + extent, x0:x0 + extent] = (255, 0, 0)
    model = MarkerModel(smoke_cfg.data.heatmap_size)
    beside = np.array([[centre[0] + 9.0, centre[1] - 9.0, extent / IDEAL_FILL]])  # marker inside, off-centre
    kept, kept_score = detect.refine(model, smoke_cfg, image, beside, recentre=False)
    box, score = detect.refine(model, smoke_cfg, image, beside)
    assert np.allclose(kept, beside)  # no re-centred window scored higher: the off-centre one is the best
    assert score == pytest.approx(kept_score)
    assert np.linalg.norm(box[0, :2] - centre) < 0.1 * extent < np.linalg.norm(kept[0, :2] - centre)
    assert 1.0 < box[0, 2] / extent < 2.0


def test_a_box_inside_a_better_one_is_the_same_person_for_all_people():
    whole, part, other = np.array([100., 100., 100.]), np.array([100., 120., 40.]), np.array([300., 100., 40.])
    assert detect.square_cover(part, whole) == 1.0
    assert detect.square_cover(whole, part) == pytest.approx(0.16)
    assert detect.square_iou(part, whole) == pytest.approx(0.16)  # below SAME_PERSON_IOU: overlap alone keeps it
    assert detect.square_iou(part, whole) < detect.SAME_PERSON_IOU
    windows, scores = np.stack([whole, part, other]), np.array([0.9, 0.8, 0.7])
    assert detect.distinct(windows, scores, 3) == [0, 1, 2]
    assert detect.distinct(windows, scores, 3, cover=detect.SAME_PERSON_COVER) == [0, 2]
    half_out = np.array([150., 100., 40.])  # half of it outside the better box: another person
    assert detect.square_cover(half_out, whole) == pytest.approx(0.5)
    assert detect.distinct(np.stack([whole, half_out]), scores[:2], 2, cover=detect.SAME_PERSON_COVER) == [0, 1]


def _box(score: float, x: float, side: float = 40.0) -> detect.Box:
    return detect.Box(np.array([x, 50.0]), side, score, "test")


@pytest.mark.parametrize("tracked, found, search, expected", [
    (0.50, 0.72, False, "tracked"),  # no search asked for: the track stands, nothing else runs
    (0.50, 0.72, True, "found"),  # a search finds a clearly better box: the wrong lock is corrected
    (0.50, 0.54, True, "tracked"),  # a near tie (< SWITCH_MARGIN higher) keeps the track
    (0.10, 0.12, False, "found"),  # the track is lost (below MIN_SCORE): searched, whatever the score
])
def test_follow_corrects_a_wrong_lock_and_keeps_a_good_track(monkeypatch, tracked, found, search, expected):
    calls = []
    monkeypatch.setattr(detect, "track", lambda *a, **k: _box(tracked, 10.0))

    def fake_find(*a, **k):
        calls.append("search")
        return [_box(found, 90.0)]

    monkeypatch.setattr(detect, "find_people", fake_find)
    box = detect.follow(None, None, np.zeros((100, 80, 3), np.uint8), _box(0.6, 10.0), search=search)
    assert box.center_px[0] == (90.0 if expected == "found" else 10.0)
    assert calls == (["search"] if search or expected == "found" else [])


def test_a_followed_box_stays_within_the_frame_and_its_largest_size(monkeypatch):
    """Re-centring on scattered joints must not grow a followed box frame after frame (it reached 30 x the frame)."""
    frame = np.zeros((120, 200, 3), np.uint8)
    grown = np.array([[260.0, -40.0, 900.0]])  # centre off the frame, side 4.5 x its longer side
    monkeypatch.setattr(detect, "refine", lambda *a, **k: (grown, np.array([0.4])))
    box = detect.track(None, None, frame, _box(0.5, 100.0, 300.0))
    assert box.side_px == detect.max_side(frame.shape[:2]) == 400.0
    assert box.center_px.tolist() == [199.0, 0.0] and box.score == 0.4
    monkeypatch.setattr(detect, "refine", lambda *a, **k: (np.array([[50.0, 60.0, 80.0]]), np.array([0.4])))
    box = detect.track(None, None, frame, _box(0.5, 100.0))
    assert box.side_px == 80.0 and box.center_px.tolist() == [50.0, 60.0]  # a box inside the limits is kept


def test_a_box_reads_back_from_its_json():
    box = detect.Box(np.array([120.456, 99.5]), 150.25, 0.61234, "heatmap search")
    back = detect.Box.from_json(box.as_json())
    assert back.center_px.tolist() == [120.46, 99.5] and back.side_px == 150.25
    assert back.score == 0.6123 and back.source == "heatmap search"
    unscored = detect.Box.from_json(detect.Box(np.zeros(2), 10.0, float("nan"), "whole image").as_json())
    assert math.isnan(unscored.score) and detect.hit(back, np.array([45.0, 10.0, 150.0, 180.0]))

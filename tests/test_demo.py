"""The demo: any image mode, crops from a box or the whole image, outputs that open."""
from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from pose3dlib.config import config_to_dict, load_config
from pose3dlib.engine.checkpoint import make_checkpoint, save_checkpoint
from pose3dlib.inference import demo, media
from pose3dlib.model import build_model
from pose3dlib.skeleton import MPII16

BONE_SUM_MM = 3210.5  # the test checkpoint's millimetre scale


class PeakModel(torch.nn.Module):
    """Stand-in network whose heatmaps peak at fixed heatmap pixels, for geometry checks."""

    def __init__(self, peaks_uv: np.ndarray, size: int):
        super().__init__()
        self.peaks, self.size = peaks_uv, size
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        b = x.shape[0]
        hm = torch.zeros(b, 16, self.size, self.size)
        for j, (u, v) in enumerate(self.peaks):
            hm[:, j, v, u] = 1.0
        return {"heatmaps": [hm], "depth": torch.zeros(b, 16)}


@pytest.fixture(scope="module")
def smoke_cfg():
    return load_config("configs/smoke.yaml")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, smoke_cfg):
    torch.manual_seed(0)
    model = build_model(smoke_cfg.model)
    path = tmp_path_factory.mktemp("ckpt") / "stage3.pt"
    save_checkpoint(path, make_checkpoint(model_state=model.state_dict(), config=config_to_dict(smoke_cfg), stage=3,
                                          bone_sum_mm=BONE_SUM_MM, extra={"finished": True}))
    return path


def test_joints_map_back_to_original_pixels(smoke_cfg):
    rng = np.random.default_rng(1)
    hm = smoke_cfg.data.heatmap_size
    s = smoke_cfg.data.input_size
    peaks = rng.integers(2, hm - 2, size=(16, 2))
    image = np.zeros((200, 300, 3), np.uint8)
    for bbox in [(50.0, 40.0, 80.0, 120.0), None]:
        cfg = dataclasses.replace(smoke_cfg, train=dataclasses.replace(smoke_cfg.train, bone_sum_mm=BONE_SUM_MM))
        res = demo.estimate_pose(PeakModel(peaks, hm), cfg, image, bbox, flip_test=False, whole_image=bbox is None)
        if bbox is None:
            center, side = np.array([149.5, 99.5]), 300.0
        else:
            x, y, w, h = bbox
            center, side = np.array([x + w / 2 - 0.5, y + h / 2 - 0.5]), max(w, h) * 1.25
        crop_px = (peaks + 0.5) * (s / hm) - 0.5  # heatmap pixel centre -> crop pixel
        expected = center + (crop_px - (s - 1) / 2) * (side / s)
        np.testing.assert_allclose(np.array(res["joints_2d_px"]), expected, atol=0.02)
        assert np.array(res["joints_3d_mm"]).shape == (16, 3)


@pytest.mark.parametrize("mode", ["rgb_jpg", "grey_png", "rgba_png", "rgb16_png"])
def test_read_image_modes(tmp_path, mode):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, size=(37, 53, 3), dtype=np.uint8)
    if mode == "rgb_jpg":
        path, data = tmp_path / "a.jpg", base
    elif mode == "grey_png":
        path, data = tmp_path / "a.png", base[..., 0]
    elif mode == "rgba_png":  # opaque left third, transparent middle, half-transparent right
        alpha = np.full(base.shape[:2], 255, np.uint8)
        alpha[:, 18:36], alpha[:, 36:] = 0, 128
        path, data = tmp_path / "a.png", np.dstack([base, alpha])
    else:
        path, data = tmp_path / "a.png", base.astype(np.uint16) * 257
    cv2.imwrite(str(path), data)
    img = demo.read_image_rgb(path)
    assert img.shape == (37, 53, 3) and img.dtype == np.uint8
    if mode == "rgb16_png":  # lossless: exact RGB (cv2 stores BGR)
        np.testing.assert_array_equal(img, base[..., ::-1])
    if mode == "rgba_png":  # composited over white, as a viewer shows it: opaque kept, transparent white
        rgb = base[..., ::-1].astype(int)
        np.testing.assert_array_equal(img[:, :18], rgb[:, :18])
        assert (img[:, 18:36] == 255).all()
        half = (rgb[:, 36:] * 128 + 255 * 127 + 127) // 255  # round(c * 128/255 + 255 * 127/255)
        assert np.abs(img[:, 36:].astype(int) - half).max() <= 1
    if mode == "grey_png":
        np.testing.assert_array_equal(img[..., 0], base[..., 0])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_read_image_composites_alpha_on_the_upright_picture(tmp_path, orientation):
    """A cut-out PNG carrying an EXIF orientation: colour and alpha turned alike (against Pillow's
    exif_transpose), the transparent band white wherever the turn puts it."""
    from PIL import Image, ImageOps

    rng = np.random.default_rng(orientation)
    rgba = rng.integers(0, 255, size=(30, 60, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[:, :10, 3] = 0  # a transparent band on the stored left edge
    exif = Image.new("RGB", (1, 1)).getexif()
    exif[0x0112] = orientation
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cut.png", exif=exif.tobytes())
    img = demo.read_image_rgb(tmp_path / "cut.png")
    upright = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "cut.png")).convert("RGBA"))
    assert img.shape == upright.shape[:2] + (3,)
    opaque = upright[..., 3] == 255
    np.testing.assert_array_equal(img[opaque], upright[..., :3][opaque])
    assert (img[~opaque] == 255).all() and (~opaque).sum() == 10 * 30


@pytest.mark.parametrize("kind", ["palette_png", "grey_alpha_png", "rgba16_png", "rgba_webp"])
def test_read_image_composites_every_alpha_kind_over_white(tmp_path, kind):
    """Left half transparent, right half opaque grey level 100 (or its colour): white | the colour."""
    from PIL import Image

    h, w = 6, 8
    if kind == "palette_png":  # a transparent palette index (tRNS), no alpha channel as such
        index = np.ones((h, w), np.uint8)
        index[:, : w // 2] = 0
        im = Image.fromarray(index, "P")
        im.putpalette([7, 7, 7, 100, 100, 100] + [0] * 762)
        im.save(tmp_path / "x.png", transparency=0)
        path = tmp_path / "x.png"
    elif kind == "grey_alpha_png":
        la = np.zeros((h, w, 2), np.uint8)
        la[..., 0], la[:, w // 2:, 1] = 100, 255
        Image.fromarray(la, "LA").save(tmp_path / "x.png")
        path = tmp_path / "x.png"
    elif kind == "rgba16_png":
        bgra = np.zeros((h, w, 4), np.uint16)
        bgra[..., :3], bgra[:, w // 2:, 3] = 100 * 257, 65535
        cv2.imwrite(str(tmp_path / "x.png"), bgra)
        path = tmp_path / "x.png"
    else:
        rgba = np.zeros((h, w, 4), np.uint8)
        rgba[..., :3], rgba[:, w // 2:, 3] = 100, 255
        Image.fromarray(rgba, "RGBA").save(tmp_path / "x.webp", lossless=True)
        path = tmp_path / "x.webp"
    img = demo.read_image_rgb(path)
    assert img.shape == (h, w, 3)
    assert (img[:, : w // 2] == 255).all() and (img[:, w // 2:] == 100).all()


def test_read_image_leaves_a_tiff_as_opencv_decodes_it(tmp_path):
    """TIFF alpha is not composited (libtiff hands OpenCV colours already multiplied by alpha)."""
    from PIL import Image

    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "x.tif")
    expected = cv2.cvtColor(cv2.imread(str(tmp_path / "x.tif"), cv2.IMREAD_ANYCOLOR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(demo.read_image_rgb(tmp_path / "x.tif"), expected)
    assert (expected[..., 0] < 200).all()  # not white-composited (that would be 227)


def test_read_image_turns_a_photo_upright_as_its_exif_orientation_says(tmp_path):
    from PIL import Image

    stored = np.zeros((30, 60, 3), np.uint8)  # stored on its side: 60 wide, the white band on the left
    stored[:, :10] = 255
    exif = Image.new("RGB", (1, 1)).getexif()
    exif[0x0112] = 6  # EXIF orientation 6: shown rotated 90 degrees clockwise, as a phone held upright writes it
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    img = demo.read_image_rgb(tmp_path / "phone.jpg")
    assert img.shape == (60, 30, 3)  # upright: 30 wide, 60 tall
    assert img[:8].mean() > 200 and img[12:].mean() < 30  # the band is now at the top
    Image.fromarray(stored).save(tmp_path / "plain.jpg", quality=95)  # no tag: as stored
    assert demo.read_image_rgb(tmp_path / "plain.jpg").shape == (30, 60, 3)


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pose3dlib", *args], check=False, capture_output=True, text=True, cwd=cwd, timeout=300)


def test_demo_cli_writes_json_png_html(tmp_path, checkpoint):
    rng = np.random.default_rng(0)
    images = []
    for name, shape in [("wide.jpg", (120, 260, 3)), ("grey.png", (90, 70)), ("alpha.png", (64, 64, 4))]:
        p = tmp_path / name
        cv2.imwrite(str(p), rng.integers(0, 255, size=shape, dtype=np.uint8))
        images.append(p)
    out = tmp_path / "out"
    r = _cli("demo", *map(str, images), "--checkpoint", str(checkpoint), "--out", str(out))
    assert r.returncode == 0, r.stderr
    for p in images:
        meta = json.loads((out / f"{p.stem}.json").read_text())
        assert meta["joint_names"] == list(MPII16.joint_names)
        assert np.array(meta["joints_2d_px"]).shape == (16, 2)
        assert np.array(meta["joints_3d_mm"]).shape == (16, 3)
        png = cv2.imread(str(out / f"{p.stem}_2d.png"))
        h, w = cv2.imread(str(p), cv2.IMREAD_UNCHANGED).shape[:2]
        zoom = demo.overlay_canvas(np.zeros((h, w, 3), np.uint8))[1]  # small pictures: drawn enlarged
        assert png.shape[:2] == (h * zoom, w * zoom)
        assert meta["units"] == {"2d": "px", "3d": "mm"} and meta["root"] == "pelvis" and meta["root_relative"] is True
        assert meta["edges"] == [list(e) for e in MPII16.edges] and meta["checkpoint"] == str(checkpoint)
        assert meta["box"]["source"] == "heatmap search" and len(meta["confidence"]) == 16
        html = (out / f"{p.stem}_3d.html").read_text()
        assert re.search(r'<script[^>]*src="plotly.min.js"', html) and len(html) < 200_000  # shared, not inlined
        assert cv2.imread(str(out / f"{p.stem}_3d.png")) is not None  # static 3D beside the HTML
    assert (out / "plotly.min.js").stat().st_size > 1_000_000
    assert "synthetic" in r.stdout and "convert-hg3d" in r.stdout  # honest expectations in the output
    # with a box
    r = _cli("demo", str(images[0]), "--checkpoint", str(checkpoint), "--bbox", "10,5,60,100", "--out", str(out))
    assert r.returncode == 0, r.stderr
    meta = json.loads((out / f"{images[0].stem}.json").read_text())
    assert meta["box"] == {"center_px": [39.5, 54.5], "side_px": 125.0, "source": "--bbox enlarged by 1.25", "score": None}


def test_folder_with_a_bad_image_still_runs_and_writes_a_bundle(tmp_path, checkpoint):
    rng = np.random.default_rng(1)
    folder = tmp_path / "shots"
    (folder / "sub").mkdir(parents=True)
    cv2.imwrite(str(folder / "a.jpg"), rng.integers(0, 255, size=(80, 120, 3), dtype=np.uint8))
    cv2.imwrite(str(folder / "sub" / "b.png"), rng.integers(0, 255, size=(90, 60, 3), dtype=np.uint8))
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    r = _cli("demo", str(folder), "--checkpoint", str(checkpoint), "--whole-image", "--all-people", "--out", str(out))
    assert r.returncode == 1, r.stderr  # some inputs skipped: written, and a script can tell
    assert "broken.jpg" in r.stderr and "skipped" in r.stderr
    assert "warning: 2 of 3 inputs done, 1 skipped (warnings above)" in r.stderr
    for stem in ("shots/a", "shots/sub/b"):
        meta = json.loads((out / f"{stem}.json").read_text())
        assert len(meta["people"]) == 1 and meta["people"][0]["joints_2d_px"] == meta["joints_2d_px"]
    assert (out / "shots" / "keypoints" / "items.txt").read_text().split() == ["a.jpg", "sub/b.png"]
    assert np.load(out / "shots" / "keypoints" / "joints_3d_mm.npy").shape == (2, 16, 3)
    html = (out / "shots" / "sub" / "b_3d.html").read_text()
    assert 'src="../../plotly.min.js"' in html and not list(out.rglob("*/plotly.min.js"))  # one shared copy
    # nothing usable: exit 2
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jpg").write_bytes(b"nope")
    (bad / "y.png").write_bytes(b"")
    r = _cli("demo", str(bad), "--checkpoint", str(checkpoint), "--out", str(out))
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: none of the 2 inputs")


def test_folder_without_images_is_a_one_line_error(tmp_path, checkpoint):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    r = _cli("demo", str(tmp_path / "empty"), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "no images or videos" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_video_gives_one_record_per_frame_and_an_animated_figure(tmp_path, checkpoint):
    from pose3dlib.inference.media import write_video

    rng = np.random.default_rng(2)
    frames = [np.roll(rng.integers(0, 255, size=(96, 128, 3), dtype=np.uint8), 4 * t, axis=1) for t in range(12)]
    write_video(tmp_path / "clip.mp4", frames, fps=12)
    out = tmp_path / "out"
    r = _cli("demo", str(tmp_path / "clip.mp4"), "--checkpoint", str(checkpoint), "--bvh", "--out", str(out))
    assert r.returncode == 0, r.stderr
    meta = json.loads((out / "clip.json").read_text())
    assert meta["num_frames"] == 12 and [f["index"] for f in meta["frames"]] == list(range(12))
    assert meta["units"] == {"2d": "px", "3d": "mm"} and meta["fps"] == pytest.approx(12)
    assert meta["frames"][0]["box"]["source"] == "heatmap search"
    assert all(np.array(f["joints_3d_mm"]).shape == (16, 3) for f in meta["frames"])
    html = (out / "clip_3d.html").read_text()
    assert html.count('"name":"11"') >= 1 and '"sliders"' in html and '"play"' in html
    cap = cv2.VideoCapture(str(out / "clip_overlay.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    cap.release()
    assert np.load(out / "clip_keypoints" / "joints_2d_px.npy").shape == (12, 16, 2)
    assert "Frames: 12" in (out / "clip.bvh").read_text()


def test_video_searches_the_whole_frame_about_once_a_second(tmp_path, checkpoint, monkeypatch):
    """Between searches the person is followed (detect.follow); every RESEARCH_EVERY_S it searches again."""
    from pose3dlib.inference import detect
    from pose3dlib.inference.media import write_video

    write_video(tmp_path / "c.mp4", [np.full((96, 128, 3), 100, np.uint8)] * 9, fps=4)
    flags = []

    def fake_follow(model, cfg, frame, previous, search, device=None):
        flags.append(search)
        return previous

    monkeypatch.setattr(detect, "follow", fake_follow)
    model, cfg = demo.load_demo_model(checkpoint)
    (tmp_path / "out").mkdir()
    demo.run_video(model, cfg, tmp_path / "c.mp4", tmp_path / "out", "c", header={"schema": demo.SCHEMA})
    assert detect.RESEARCH_EVERY_S == 1.0
    assert flags == [False, False, False, True, False, False, False, True]  # frames 1-8 at 4 fps: 4 and 8 search


def test_empty_video_is_a_one_line_error(tmp_path, checkpoint):
    (tmp_path / "empty.mp4").write_bytes(b"")
    r = _cli("demo", str(tmp_path / "empty.mp4"), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "empty.mp4" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_parse_bbox_reads_four_finite_numbers():
    """x,y,w,h in pixels; NaN, inf, a missing or extra value, or a side <= 0 is named."""
    assert demo.parse_bbox(None) is None
    assert demo.parse_bbox(" 10, 5.5,60,100") == (10.0, 5.5, 60.0, 100.0)
    for text, needle in (("1,nan,3,4", "four finite numbers"), ("1,2,inf,4", "four finite numbers"),
                         ("1,2,3", "four numbers"), ("1,2,3,4,5", "four numbers"), ("1,2,0,4", "positive")):
        with pytest.raises(demo.Pose3DError, match=needle):
            demo.parse_bbox(text)


@pytest.mark.parametrize("args, needle", [
    (["--bbox", "1,2,3"], "--bbox"),
    (["--bbox", "0,0,-5,10"], "positive"),
    (["--checkpoint", "nope.pt"], "nope.pt"),
    (["--bbox", "0,0,5,5", "--whole-image"], "--bbox and --whole-image both say where the person is"),
    (["--bbox", "0,0,5,5", "--all-people"], "--bbox and --all-people both say where the person is"),
])
def test_demo_cli_errors_are_one_line(tmp_path, checkpoint, args, needle):
    img = tmp_path / "x.png"
    cv2.imwrite(str(img), np.zeros((10, 10, 3), np.uint8))
    if "--checkpoint" not in args:
        args = [*args, "--checkpoint", str(checkpoint)]
    r = _cli("demo", str(img), *args, "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert needle in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_demo_missing_image_and_corrupt_image(tmp_path, checkpoint):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    for path in [tmp_path / "missing.jpg", bad]:
        r = _cli("demo", str(path), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "o"))
        assert r.returncode == 2 and path.name in r.stderr and "Traceback" not in r.stderr


def test_default_checkpoint_is_the_newest_finished_non_smoke_run(tmp_path, monkeypatch, capsys):
    import os

    from pose3dlib.config import Config, config_to_dict
    from pose3dlib.engine import runs
    from pose3dlib.engine.checkpoint import make_checkpoint, save_checkpoint

    root = tmp_path / "runs"
    with pytest.raises(demo.Pose3DError, match="no finished stage-3 checkpoint"):
        runs.newest_finished_checkpoint(3, root)
    for i, (profile, finished) in enumerate([("cpu", True), ("paper", True), ("wip", False), ("smoke", True)]):
        ckpt = root / profile / "stage3" / "last.pt"
        cfg = config_to_dict(Config(profile=profile))
        save_checkpoint(ckpt, make_checkpoint(model_state={}, config=cfg, stage=3, extra={"finished": finished}))
        os.utime(ckpt, (1000 + i, 1000 + i))
    # wip is newer but unfinished, smoke is newest but a test run: paper wins
    assert runs.newest_finished_checkpoint(3, root) == root / "paper" / "stage3" / "last.pt"
    monkeypatch.setattr(runs, "RUNS_DIR", root)
    assert demo.default_checkpoint() == root / "paper" / "stage3" / "last.pt"
    # A damaged run checkpoint the user never named is passed over, with a warning, not the end of the demo.
    damaged = root / "zz" / "stage3" / "last.pt"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"cut short")
    unreadable: list[str] = []
    assert runs.newest_finished_checkpoint(3, root, unreadable) == root / "paper" / "stage3" / "last.pt"
    assert len(unreadable) == 1 and unreadable[0].startswith(f"{damaged}: not a pose3d checkpoint")
    assert demo.default_checkpoint() == root / "paper" / "stage3" / "last.pt"
    assert f"warning: passed over: {damaged}: not a pose3d checkpoint" in capsys.readouterr().err
    for run in ("cpu", "paper", "wip", "smoke"):
        (root / run / "stage3" / "last.pt").unlink()
    with pytest.raises(demo.Pose3DError, match=rf"no finished stage-3 checkpoint .*unreadable: {re.escape(str(damaged))}"):
        runs.newest_finished_checkpoint(3, root)


def test_demo_3d_has_the_checkpoints_mm_scale_and_refuses_a_checkpoint_without_one(tmp_path, checkpoint, smoke_cfg):
    from pose3dlib.decode import bone_length_sum

    image = tmp_path / "person.png"
    cv2.imwrite(str(image), np.full((120, 90, 3), 128, np.uint8))
    r = _cli("demo", str(image), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    joints = np.array(json.loads((tmp_path / "o" / "person.json").read_text())["joints_3d_mm"])
    assert float(bone_length_sum(joints[None])[0]) == pytest.approx(BONE_SUM_MM, abs=2.0)
    bare = tmp_path / "bare.pt"
    save_checkpoint(bare, make_checkpoint(model_state=build_model(smoke_cfg.model).state_dict(),
                                          config=config_to_dict(smoke_cfg), stage=3))
    r = _cli("demo", str(image), "--checkpoint", str(bare), "--out", str(tmp_path / "o2"))
    assert r.returncode == 2 and "bone_sum_mm" in r.stderr and "bare.pt" in r.stderr


def test_an_unfinished_checkpoint_is_named_on_the_terminal_and_in_every_json(tmp_path, smoke_cfg, capsys):
    """A stage stopped before its last epoch (the trainer's last.pt after Ctrl-C) is a partly trained network:
    the demo, export-onnx and every JSON say so, with its epoch and step."""
    from pose3dlib.tools import cli

    path = tmp_path / "part.pt"
    save_checkpoint(path, make_checkpoint(model_state=build_model(smoke_cfg.model).state_dict(),
                                          config=config_to_dict(smoke_cfg), stage=3, epoch=1, step=7,
                                          bone_sum_mm=BONE_SUM_MM, extra={"finished": False}))
    epochs = smoke_cfg.train.stage3.epochs  # `epoch` counts completed epochs, as the trainer's Ctrl-C message
    caveat = f"{path} is unfinished: its stage stopped after 1 of {epochs} epochs (step 7), so the network is partly"
    demo.load_demo_model(path)
    assert f"warning: {caveat}" in capsys.readouterr().err
    header = demo.output_header(dataclasses.replace(smoke_cfg, train=dataclasses.replace(
        smoke_cfg.train, bone_sum_mm=BONE_SUM_MM)), path)
    assert [w.startswith(caveat) for w in header["checkpoint_warnings"]] == [True]
    assert cli.main(["export-onnx", str(path), str(tmp_path / "part.onnx")]) == 0
    assert f"warning: {caveat}" in capsys.readouterr().err


def test_a_missing_checkpoint_says_how_to_get_one(tmp_path):
    """Notebook 05 on a run not trained yet said only 'checkpoint not found'."""
    with pytest.raises(demo.CheckpointError, match=r"checkpoint not found: .*nosuch.pt; train the run first "
                                                   r"\(`make reproduce`"):
        demo.load_demo_model(tmp_path / "nosuch.pt")


def test_a_stage_1_checkpoint_warns_that_its_3d_means_nothing(tmp_path, smoke_cfg, capsys):
    torch.manual_seed(0)
    for stage, warned in ((1, True), (2, False), (3, False), (0, False)):  # 0: a converted hg3d checkpoint
        path = tmp_path / f"s{stage}.pt"
        save_checkpoint(path, make_checkpoint(model_state=build_model(smoke_cfg.model).state_dict(),
                                              config=config_to_dict(smoke_cfg), stage=stage, bone_sum_mm=BONE_SUM_MM,
                                              extra={"finished": True}))
        demo.load_demo_model(path)
        err = capsys.readouterr().err
        assert (f"warning: {path} is a Stage 1 checkpoint (2D only): its depth branch is untrained" in err) == warned
        # and every JSON says so too, not only the terminal
        header = demo.output_header(dataclasses.replace(smoke_cfg, train=dataclasses.replace(
            smoke_cfg.train, bone_sum_mm=BONE_SUM_MM)), path)
        assert [w.startswith(f"{path} is a Stage 1 checkpoint") for w in header["checkpoint_warnings"]] == (
            [True] if warned else [])
    model, cfg = demo.load_demo_model(tmp_path / "s1.pt")
    cv2.imwrite(str(tmp_path / "p.png"), np.full((64, 48, 3), 128, np.uint8))
    demo.run_inputs(model, cfg, tmp_path / "s1.pt", media.collect_inputs([tmp_path / "p.png"]), tmp_path / "o",
                    whole_image=True, quiet=True)
    warnings = json.loads((tmp_path / "o" / "p.json").read_text())["warnings"]
    assert warnings[0].startswith(f"{tmp_path / 's1.pt'} is a Stage 1 checkpoint")


def test_notebook_inputs_are_the_listed_files_or_a_folder_of_examples(tmp_path):
    """Notebook 05's `images`: the listed files alone (not the rest of their folder), a missing one named; a
    video, or two pictures with one stem, refused with their names."""
    from pose3dlib.inference.demo import notebook_inputs

    shots = tmp_path / "shots"
    shots.mkdir()
    picture = np.full((40, 60, 3), 128, np.uint8)
    for name in ("a.jpg", "b.png", "c.jpg"):
        cv2.imwrite(str(shots / name), picture)
    (shots / "notes.txt").write_text("not a picture")
    items = notebook_inputs([str(shots / "b.png")], tmp_path / "unused", tmp_path / "examples")
    with pytest.raises(demo.Pose3DError, match=r"images: \[''\] holds an empty path"):  # not the project's root folder
        notebook_inputs([""], tmp_path / "unused", tmp_path / "examples")
    # papermill's `-p images /abs/photo.png` passes a text: read letter by letter its first "path" was "/"
    with pytest.raises(demo.Pose3DError, match=r"images: '.*b.png' is not a list of image paths .*-y 'images: \["):
        notebook_inputs(str(shots / "b.png"), tmp_path / "unused", tmp_path / "examples")
    assert [(i.path.name, i.kind, i.folder) for i in items] == [("b.png", "image", None)]
    assert not (tmp_path / "examples").exists()  # no examples made when images are listed
    with pytest.raises(FileNotFoundError, match="nosuch.jpg"):
        notebook_inputs([str(shots / "a.jpg"), str(shots / "nosuch.jpg")], tmp_path / "unused", tmp_path / "examples")
    # the notebook names its results by stem and shows stills: colliding stems and videos are refused, named
    cv2.imwrite(str(shots / "a.png"), picture)
    with pytest.raises(demo.Pose3DError, match=r"a\.jpg and .*a\.png share a name"):
        notebook_inputs([str(shots / "a.jpg"), str(shots / "b.png"), str(shots / "a.png")], tmp_path / "unused",
                        tmp_path / "examples")
    with pytest.raises(demo.Pose3DError, match=r"a\.jpg and .*a\.png share a name"):
        notebook_inputs([str(shots)], tmp_path / "unused", tmp_path / "examples")  # a listed folder too
    (shots / "a.png").unlink()
    (shots / "clip.mp4").write_bytes(b"")
    with pytest.raises(demo.Pose3DError, match=r"clip\.mp4 is a video; notebook 05 shows still pictures"):
        notebook_inputs([str(shots / "c.jpg"), str(shots / "clip.mp4")], tmp_path / "unused", tmp_path / "examples")
    examples = notebook_inputs([], shots, tmp_path / "examples")  # cut from the source's JPEGs, as one folder
    assert [i.path.name for i in examples] == sorted(p.name for p in (tmp_path / "examples").iterdir())
    assert len(examples) == 2 and {i.folder for i in examples} == {(tmp_path / "examples").resolve()}


def test_all_people_on_a_video_says_it_follows_one_person(tmp_path, checkpoint):
    from pose3dlib.inference.media import write_video

    rng = np.random.default_rng(3)
    write_video(tmp_path / "clip.mp4", [rng.integers(0, 255, size=(64, 64, 3), dtype=np.uint8) for _ in range(2)], fps=2)
    r = _cli("demo", str(tmp_path / "clip.mp4"), "--checkpoint", str(checkpoint), "--all-people", "--out",
             str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert "warning: --all-people applies to images; a video follows one person:" in r.stderr
    assert "clip.mp4" in r.stderr and "people" not in json.loads((tmp_path / "out" / "clip.json").read_text())


def test_all_people_warnings_name_their_person():
    good = {"box": {"center_px": [50.0, 50.0], "side_px": 80.0}, "score": 0.5}
    small = {"box": {"center_px": [20.0, 20.0], "side_px": 12.0}, "score": 0.5}
    image = np.zeros((100, 120, 3), np.uint8)
    result = demo.image_result([good, small], image, all_people=True)
    assert result["warnings"] == [f"person 2: person too small: box side 12 px < {demo.MIN_PERSON_PX} px"]
    assert result["people"] == [good, small] and result["box"] == good["box"]
    assert demo.image_result([good, small], image, all_people=False)["warnings"] == []  # the best person's only
    assert demo.image_result([small], image, all_people=True)["warnings"] == [
        f"person too small: box side 12 px < {demo.MIN_PERSON_PX} px"]


def test_a_video_s_bundle_never_shares_a_folder_with_other_results(tmp_path):
    """photos/clip.mp4 beside photos/clip_keypoints/a.jpg, and `demo clip.mp4 clip_keypoints/`: before, the
    video's bundle and the pictures' results went into one folder (and a second run refused the video)."""
    from pose3dlib.inference.demo import bundle_names, folder_labels, output_stem, video_bundles
    from pose3dlib.inference.media import Item

    photos, loose = tmp_path / "photos", tmp_path / "clip_keypoints"
    items = [Item("video", photos / "clip.mp4", photos), Item("image", photos / "clip_keypoints" / "a.jpg", photos),
             Item("image", photos / "b.jpg", photos), Item("video", tmp_path / "clip.mp4", None),
             Item("image", loose / "c.jpg", loose), Item("video", tmp_path / "walk.mp4", None)]
    labels, bundle_dirs, used = folder_labels(items), bundle_names(items), set()
    stems = [output_stem(item, used, labels) for item in items]
    assert stems == ["photos/clip", "photos/clip_keypoints/a", "photos/b", "clip", "clip_keypoints/c", "walk"]
    assert video_bundles(items, stems, labels, bundle_dirs) == {
        0: "photos/clip_keypoints_2", 3: "clip_keypoints_2", 5: "walk_keypoints"}


def test_an_interrupted_item_counts_as_the_demo_s_so_a_run_without_bvh_removes_its_old_bvh(tmp_path):
    """A run with --bvh wrote long.json and long.bvh; a run without --bvh was interrupted after removing the
    JSON (its in-progress record left); before, the next run without --bvh kept the first run's long.bvh
    beside its own new JSON, since only a JSON counted as an earlier run's."""
    from pose3dlib.inference.demo import partial_record, start_item, write_or_remove_bvh

    json_path, bvh = tmp_path / "long.json", tmp_path / "long.bvh"
    bvh.write_text("HIERARCHY\n")
    partial_record(json_path).touch()  # what the interrupted run left
    earlier = start_item(json_path, [bvh])
    assert earlier is True
    write_or_remove_bvh({}, bvh, None, 25.0, bvh=False, earlier=earlier)
    assert not bvh.exists()
    fresh = tmp_path / "new.json"
    assert start_item(fresh, [tmp_path / "new.bvh"]) is False  # nothing of an earlier run: nothing to remove


@pytest.mark.parametrize("suffix, ext", [(".mp4", ".jpg"), (".avi", ".png"), (".mov", ".webp")])
def test_a_photo_with_a_video_s_suffix_is_named_not_run_as_a_one_frame_video(tmp_path, suffix, ext):
    """Before: a JPEG renamed photo.mp4 ran as a one-frame video at a made-up 25 fps, without a word."""
    from pose3dlib.engine.errors import DataError
    from pose3dlib.inference import media

    picture = tmp_path / f"p{ext}"
    assert cv2.imwrite(str(picture), np.full((32, 32, 3), 90, np.uint8))
    renamed = tmp_path / f"photo{suffix}"
    renamed.write_bytes(picture.read_bytes())
    with pytest.raises(DataError, match=rf"photo\{suffix}: a (JPEG|PNG|WebP) image with a video's suffix"):
        media.video_info(renamed)
    assert media.image_signature(picture) is not None
    video = tmp_path / "real.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 32))
    writer.write(np.zeros((32, 32, 3), np.uint8))
    writer.release()
    assert media.image_signature(video) is None and media.video_info(video)[0] == 10.0  # a video stays one

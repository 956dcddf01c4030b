"""The demo's user-facing behaviour: videos checked like images, --out inside an input folder,
progress on long runs, warnings on their own line, failed runs leaving nothing, converted checkpoints."""
from __future__ import annotations

import argparse
import json
import re
import sys

import cv2
import numpy as np
import pytest
import torch

from pose3dlib.config import config_to_dict, load_config
from pose3dlib.engine.checkpoint import make_checkpoint, save_checkpoint
from pose3dlib.engine.errors import CheckpointError, Pose3DError
from pose3dlib.engine.paths import PROJECT_ROOT
from pose3dlib.engine.progress import progress_bar
from pose3dlib.inference import demo, media
from pose3dlib.model import build_model

FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    cfg = load_config("configs/smoke.yaml")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "stage3.pt"
    save_checkpoint(path, make_checkpoint(model_state=build_model(cfg.model).state_dict(), config=config_to_dict(cfg),
                                          stage=3, bone_sum_mm=3210.5, extra={"finished": True}))
    return path


@pytest.fixture(scope="module")
def loaded(checkpoint):
    return demo.load_demo_model(checkpoint)


@pytest.fixture()
def bars_on(monkeypatch):
    monkeypatch.delenv("POSE3D_PROGRESS", raising=False)


def _video(path, n=4, size=(128, 128)):
    rng = np.random.default_rng(0)
    media.write_video(path, [rng.integers(0, 255, size=(*size, 3), dtype=np.uint8) for _ in range(n)], fps=4)
    return path


def _run(args: list[str]) -> int:
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    return demo.run(parser.parse_args(args))


def test_video_bbox_outside_is_the_image_error_and_leaves_no_out(tmp_path, loaded):
    model, cfg = loaded
    clip = _video(tmp_path / "clip.mp4")
    items = media.collect_inputs([clip])
    with pytest.raises(Pose3DError, match=r"^--bbox 500,500,10,10 lies outside .*clip\.mp4 \(128x128 px\)$"):
        demo.run_inputs(model, cfg, None, items, tmp_path / "o", bbox=(500.0, 500.0, 10.0, 10.0), quiet=True)
    assert not (tmp_path / "o").exists()


def test_video_warnings_are_printed_and_in_the_json(tmp_path, loaded, monkeypatch, capsys):
    model, cfg = loaded
    clip = _video(tmp_path / "clip.mp4", n=4)
    info = media.video_info
    monkeypatch.setattr(media, "video_info", lambda p: (info(p)[0], 5))  # the container claims 5: a truncated file
    demo.run_inputs(model, cfg, None, media.collect_inputs([clip]), tmp_path / "o", whole_image=True)
    err = capsys.readouterr().err
    warnings = json.loads((tmp_path / "o" / "clip.json").read_text())["warnings"]
    assert warnings[0] == "only the first 4 of 5 frames could be read"
    records = json.loads((tmp_path / "o" / "clip.json").read_text())["frames"]
    assert warnings[1:] == demo.frame_warnings(records, (128, 128))  # the image path's per-person checks, summed over frames
    for w in warnings:
        assert f"warning: {clip}: {w}" in err


def test_frame_warnings_sum_each_kind_over_the_frames():
    good = {"box": {"side_px": 100.0}, "score": 0.9}
    small = {"box": {"side_px": 10.0}, "score": 0.9}
    assert demo.frame_warnings([good, small, small], (120, 160)) == [
        f"person too small in 2 of 3 frames (first: frame 1, box side 10 px < {demo.MIN_PERSON_PX} px)"]
    huge = {"box": {"side_px": 340.0}, "score": 0.9}  # above 2 x the 160 px longer side
    assert demo.frame_warnings([good, huge], (120, 160)) == [
        "box larger than the picture in 1 of 2 frames (first: frame 1, side 340 px = 2.1 x its longer side "
        "(no clear person was found; 2D and 3D are unreliable))"]
    assert demo.frame_warnings([good, {"box": {"side_px": 320.0}, "score": 0.9}], (120, 160)) == []  # 2 x: kept
    given = {"box": {"side_px": 340.0, "source": "--bbox enlarged by 1.25"}, "score": 0.9}  # no search ran: not "no person found"
    assert demo.warnings_for(given, (120, 160)) == [
        "box larger than the picture: side 340 px = 2.1 x its longer side (the --bbox given; 2D and 3D are unreliable)"]


def test_a_bbox_far_larger_than_the_picture_an_empty_input_and_repeated_inputs(tmp_path, checkpoint, monkeypatch, capsys):
    """A mistyped --bbox size is one error line before any work; '' is not the current folder; an input
    given again (itself, or inside a folder given too) is run once, with a warning."""
    monkeypatch.setenv("POSE3D_PROGRESS", "off")
    monkeypatch.chdir(tmp_path)
    photo = tmp_path / "shots" / "a.png"
    photo.parent.mkdir()
    cv2.imwrite(str(photo), np.full((60, 80, 3), 90, np.uint8))
    cv2.imwrite(str(tmp_path / "shots" / "b.png"), np.full((60, 80, 3), 90, np.uint8))
    common = ["--checkpoint", str(checkpoint), "--out"]
    assert _run([str(photo), "--bbox", "10,5,800,100", *common, "o1"]) == 0  # 10 x the longer side: kept
    with pytest.raises(Pose3DError, match=r"^--bbox 10,5,1e\+09,1e\+09 is 1\.25e\+07 x the longer side of .*a\.png "
                                          r"\(80x60 px\), more than 10 x; the box is the person's"):
        _run([str(photo), "--bbox", "10,5,1e9,1e9", *common, "o2"])
    assert not (tmp_path / "o2").exists()
    with pytest.raises(SystemExit):
        _run(["", *common, "o3"])
    assert "argument INPUT: empty path" in capsys.readouterr().err and not (tmp_path / "o3").exists()
    (tmp_path / "shots" / "alias.png").symlink_to("a.png")  # a link in the folder: a picture of its own
    assert _run(["shots", str(photo), "shots/", "./shots/b.png", "--whole-image", *common, "o4"]) == 0
    err = capsys.readouterr().err
    assert (f"warning: 3 inputs given more than once (itself, or inside an input folder) and read once: {photo}, shots, "
            "shots/b.png\n") in err
    assert "skipped" not in err
    assert (tmp_path / "o4" / "shots" / "keypoints" / "items.txt").read_text().split() == ["a.png", "alias.png", "b.png"]
    assert sorted(p.name for p in (tmp_path / "o4" / "shots").glob("*.json")) == ["a.json", "alias.json", "b.json"]


def test_out_inside_an_input_folder_is_not_read_back(tmp_path, checkpoint, monkeypatch, capsys):
    shots = tmp_path / "shots"
    shots.mkdir()
    cv2.imwrite(str(shots / "a.png"), np.full((64, 48, 3), 90, np.uint8))
    (shots / "list.csv").write_text("a.png\n")
    (shots / "out" / "old").mkdir(parents=True)
    cv2.imwrite(str(shots / "out" / "old" / "x.png"), np.zeros((8, 8, 3), np.uint8))
    assert [i.path for i in media.collect_inputs([shots], skip=shots / "out")] == [shots / "a.png"]
    assert len(media.collect_inputs([shots])) == 2  # without skip the old output is an input
    with pytest.raises(Pose3DError, match="is also an input folder"):  # its outputs would be inputs next time
        media.collect_inputs([shots / "out"], skip=shots / "out")
    monkeypatch.setenv("POSE3D_PROGRESS", "off")
    for _ in range(2):  # the second run must not process the first run's shots/out/shots/a_2d.png ...
        assert _run([str(shots), "--checkpoint", str(checkpoint), "--whole-image", "--out", str(shots / "out")]) == 0
    assert not (shots / "out" / "shots" / "out").exists()
    assert (shots / "out" / "shots" / "keypoints" / "items.txt").read_text().split() == ["a.png"]
    err = capsys.readouterr().err
    assert err.count("warning: left out 1 file of the input folders") == 2 and str(shots / "list.csv") in err


def test_linked_folders_a_folder_search_does_not_follow_are_named(tmp_path):
    """Before: photos in a symbolically linked folder inside an input folder were skipped without a word."""
    shots, mixed = tmp_path / "shots", tmp_path / "mixed"
    shots.mkdir()
    mixed.mkdir()
    cv2.imwrite(str(shots / "a.png"), np.full((64, 48, 3), 90, np.uint8))
    cv2.imwrite(str(mixed / "b.png"), np.full((64, 48, 3), 90, np.uint8))
    (shots / "mixlink").symlink_to(mixed, target_is_directory=True)
    (shots / "loop").symlink_to(shots, target_is_directory=True)  # a loop: not followed, and read anyway
    linked: list = []
    assert [i.path for i in media.collect_inputs([shots], linked=linked)] == [shots / "a.png"]
    assert linked == [shots / "mixlink"]  # not the loop: it is the input folder itself
    line = media.describe_linked(linked)
    assert line.startswith("did not follow 1 symbolic link to a folder") and str(shots / "mixlink") in line
    assert media.describe_linked(linked * 2).startswith("did not follow 2 symbolic links")
    assert [i.path for i in media.collect_inputs([shots / "mixlink"])] == [shots / "mixlink" / "b.png"]  # given: read
    linked.clear()
    both = media.collect_inputs([shots, shots / "mixlink"], linked=linked)  # given too: read, and no warning
    assert [i.path for i in both] == [shots / "a.png", shots / "mixlink" / "b.png"] and linked == []


def test_files_a_folder_search_does_not_read_are_named(tmp_path):
    shots = tmp_path / "shots"
    (shots / "day2").mkdir(parents=True)
    cv2.imwrite(str(shots / "a.png"), np.full((64, 48, 3), 90, np.uint8))
    for name in ("b.HEIC", "day2/c.heic", "notes.txt", "README", ".DS_Store", "day2/.hidden.txt"):
        (shots / name).write_bytes(b"x")
    (shots / "._a.png").write_bytes(b"x")  # macOS's resource-fork twin: hidden, not an unreadable photo
    (shots / ".thumbnails").mkdir()
    cv2.imwrite(str(shots / ".thumbnails" / "a.png"), np.full((8, 8, 3), 90, np.uint8))  # a hidden folder's image
    left_out: list = []
    assert [i.path for i in media.collect_inputs([shots], left_out=left_out)] == [shots / "a.png"]
    assert sorted(f.relative_to(shots).as_posix() for f in left_out) == ["README", "b.HEIC", "day2/c.heic", "notes.txt"]
    line = media.describe_left_out(left_out)
    assert line.startswith("left out 4 files") and "2 .heic, 1 .txt, 1 no suffix" in line and ".png" in line
    assert "left out 1 file of" in media.describe_left_out(left_out[:1])
    (shots / "notes.txt").unlink()
    left_out.clear()
    media.collect_inputs([shots / "a.png"], left_out=left_out)  # a file given by name is not a search
    assert left_out == []


def test_a_file_given_by_name_needs_a_suffix_the_demo_reads(tmp_path):
    """A phone's .heic named on the command line: said so, not "corrupt image?"; other video containers are videos."""
    (tmp_path / "IMG_1.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")
    with pytest.raises(Pose3DError, match=r"IMG_1\.HEIC: \.HEIC is neither an image nor a video the demo reads "
                                          r"\(\.jpg, .*\.webm\); convert it \(a phone's \.heic photo to \.jpg"):
        media.collect_inputs([tmp_path / "IMG_1.HEIC"])
    (tmp_path / "README").write_text("x")
    with pytest.raises(Pose3DError, match=r"README: a name without a suffix is neither an image nor a video"):
        media.collect_inputs([tmp_path / "README"])
    for name in ("clip.m4v", "clip.webm", "clip.MOV"):
        (tmp_path / name).write_bytes(b"x")
        assert [i.kind for i in media.collect_inputs([tmp_path / name])] == ["video"]


def test_a_video_shows_one_bar_over_its_frames(tmp_path, loaded, bars_on, capsys):
    model, cfg = loaded
    clip = _video(tmp_path / "clip.mp4", n=3)
    demo.run_video(model, cfg, clip, tmp_path / "o", "clip", header={"schema": demo.SCHEMA}, whole_image=True)
    err = capsys.readouterr().err
    assert "clip.mp4: cropping and estimating" in err and "/3 [" in err


def test_a_video_is_estimated_a_batch_at_a_time_with_the_same_result(tmp_path, loaded, monkeypatch):
    """Memory does not grow with the video: frames go through estimate_poses BATCH at a time, as one call
    over all frames would batch them, so the records are those of a single call."""
    model, cfg = loaded
    monkeypatch.setattr(demo, "BATCH", 3)
    clip = _video(tmp_path / "clip.mp4", n=7, size=(64, 80))
    sizes, real = [], demo.estimate_poses

    def counting(model, cfg, images, boxes, **kw):
        sizes.append(len(images))
        return real(model, cfg, images, boxes, batch=3, **kw)

    monkeypatch.setattr(demo, "estimate_poses", counting)
    demo.run_video(model, cfg, clip, tmp_path / "o", "clip", header={"schema": demo.SCHEMA}, whole_image=True)
    assert sizes == [3, 3, 1]
    frames = list(media.read_video_frames(clip))
    boxes = [demo.boxes_for(model, cfg, f, whole_image=True)[0] for f in frames]
    expected = real(model, cfg, frames, boxes, batch=3)
    got = json.loads((tmp_path / "o" / "clip.json").read_text())["frames"]
    assert [r["joints_3d_mm"] for r in got] == [r["joints_3d_mm"] for r in expected]
    assert [r["confidence"] for r in got] == [r["confidence"] for r in expected]
    # float64 before rounding: two decimals in the file, not float32's 315.1000061035156
    text = (tmp_path / "o" / "clip.json").read_text()
    assert not re.search(r"\d\.\d{6,}", text.split('"frames"')[1])


def test_frame_times_come_from_the_videos_timestamps(tmp_path, loaded):
    model, cfg = loaded
    clip = _video(tmp_path / "clip.mp4", n=6, size=(64, 80))  # a constant 4 fps
    stamps: list[float] = []
    assert len(list(media.read_video_frames(clip, stamps))) == 6
    np.testing.assert_allclose(stamps, [0, 250, 500, 750, 1000, 1250], atol=1)
    demo.run_video(model, cfg, clip, tmp_path / "o", "clip", header={"schema": demo.SCHEMA}, whole_image=True)
    result = json.loads((tmp_path / "o" / "clip.json").read_text())
    assert [r["time_s"] for r in result["frames"]] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]
    assert not any("frame rate" in w or "timestamps" in w for w in result["warnings"])
    # A phone's variable frame rate: the timestamps are kept, and the constant-rate files are flagged.
    times, warning = media.frame_times([1000.0, 1033.3, 1066.7, 1200.0, 1300.0, 1400.0], fps=30)
    np.testing.assert_allclose(times, [0, 0.0333, 0.0667, 0.2, 0.3, 0.4], atol=1e-4)
    assert warning.startswith("variable frame rate: time_s are the video's own timestamps, up to 0.23 s from")
    times, warning = media.frame_times([0.0, 0.0, 0.0], fps=10)  # a container without timestamps
    np.testing.assert_allclose(times, [0, 0.1, 0.2])
    assert warning == "the video's frame timestamps could not be read: time_s is frame index / 10 fps"
    assert media.frame_times([0.0, 33.4, 66.6], fps=30)[1] is None  # rounding is not a variable rate


def test_a_long_videos_animation_shows_evenly_spaced_frames():
    from pose3dlib.plots.viz import animated_skeleton_figure, animation_frames

    assert animation_frames(5, max_frames=10).tolist() == [0, 1, 2, 3, 4]
    shown = animation_frames(1000, max_frames=50)
    assert len(shown) == 50 and shown[0] == 0 and shown[-1] == 999 and np.all(np.diff(shown) > 0)
    joints = np.random.default_rng(0).normal(0, 300, (1000, 16, 3))
    fig = animated_skeleton_figure(joints, np.arange(1000) / 25.0, max_frames=50)
    assert [f.name for f in fig.frames] == [str(t) for t in shown]
    assert [step["label"] for step in fig.layout.sliders[0].steps] == [str(t) for t in shown]
    play = fig.layout.updatemenus[0].buttons[0].args[1]["frame"]["duration"]
    assert 780 <= play <= 840  # about 20 frames at 25 fps between shown frames: the video's own pace
    assert len(animated_skeleton_figure(joints[:40]).frames) == 40
    # 900 frames at 30 fps shown as 600 (gaps of 1 and 2 frames in turn): play takes the video's 30 s, not 39.5
    fig = animated_skeleton_figure(np.zeros((900, 16, 3)), np.arange(900) / 30.0, max_frames=600)
    play = fig.layout.updatemenus[0].buttons[0].args[1]["frame"]["duration"]
    assert len(fig.frames) == 600 and abs(play * 599 / 1000 - 29.97) < 0.6


def test_an_interrupted_item_has_no_json_and_no_half_written_overlay(tmp_path, loaded, monkeypatch):
    """A JSON always describes the files beside it: an earlier run's goes before they are replaced."""
    model, cfg = loaded
    clip = _video(tmp_path / "clip.mp4", n=3)
    demo.run_video(model, cfg, clip, tmp_path / "o", "clip", header={"schema": demo.SCHEMA}, whole_image=True, bvh=True)
    earlier = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert {"clip.json", "clip_overlay.mp4", "clip.bvh"} <= set(earlier)

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "write_people_bundle", interrupted)  # after the overlay video was drawn
    with pytest.raises(KeyboardInterrupt):
        demo.run_video(model, cfg, clip, tmp_path / "o", "clip", header={"schema": demo.SCHEMA}, whole_image=True)
    left = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert "clip.json" not in left  # the earlier JSON went first: the pictures beside it are being replaced
    assert [name for name in left if name.startswith(".")] == [".clip.json.partial"]  # no temporary overlay
    assert (tmp_path / "o" / "clip_overlay.mp4").stat().st_size > 0  # the earlier overlay, whole (not replaced yet)

    cv2.imwrite(str(tmp_path / "x.png"), np.full((64, 48, 3), 90, np.uint8))
    monkeypatch.setattr(demo, "write_json", interrupted)  # an image interrupted before its JSON: none there
    with pytest.raises(KeyboardInterrupt):
        demo.run_inputs(model, cfg, None, media.collect_inputs([tmp_path / "x.png"]), tmp_path / "o2", whole_image=True,
                        quiet=True)
    assert (tmp_path / "o2" / "x_2d.png").is_file() and not (tmp_path / "o2" / "x.json").exists()
    assert (tmp_path / "o2" / media.OUTPUT_MARKER).is_file()  # files were written: the folder and its marker stay

    # into a folder of the user's (not marked), interrupted, then run again: the half-written item is the
    # demo's own (its hidden record says so), replaced, not refused as the user's files
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's")
    with pytest.raises(KeyboardInterrupt):
        demo.run_inputs(model, cfg, None, media.collect_inputs([tmp_path / "x.png"]), mine, whole_image=True,
                        quiet=True)
    assert (mine / "x_2d.png").is_file() and (mine / ".x.json.partial").is_file()
    monkeypatch.undo()
    monkeypatch.setenv("POSE3D_PROGRESS", "off")
    demo.run_inputs(model, cfg, None, media.collect_inputs([tmp_path / "x.png"]), mine, whole_image=True, quiet=True)
    assert (mine / "x.json").is_file() and not (mine / ".x.json.partial").exists()

    # a kill -9 leaves the overlay's temporary (a dead process's): the next run of the item removes it
    killed = tmp_path / "o" / ".clip_overlay.mp4.999999.tmp.mp4"
    killed.write_bytes(b"half an overlay")
    demo.run_video(model, cfg, clip, tmp_path / "o", "clip", header={"schema": demo.SCHEMA}, whole_image=True)
    assert not killed.exists() and (tmp_path / "o" / "clip.json").is_file()


def test_out_that_cannot_be_written_fails_before_any_work(tmp_path, loaded, monkeypatch):
    model, cfg = loaded
    cv2.imwrite(str(tmp_path / "x.png"), np.full((64, 48, 3), 90, np.uint8))
    (tmp_path / "afile").write_text("a file, not a folder")
    monkeypatch.setattr(demo, "boxes_for", lambda *a, **k: pytest.fail("work started before --out was checked"))
    with pytest.raises(Pose3DError, match=r"^--out .*afile/x: cannot write there \(.*afile.*Not a directory"):
        demo.run_inputs(model, cfg, None, media.collect_inputs([tmp_path / "x.png"]), tmp_path / "afile" / "x")
    with pytest.raises(Pose3DError, match=r"afile: exists and is not a folder"):
        demo.run_inputs(model, cfg, None, media.collect_inputs([tmp_path / "x.png"]), tmp_path / "afile")


def test_a_read_only_out_names_the_folder_and_the_reason_only(tmp_path, loaded, monkeypatch):
    import errno

    from pose3dlib.engine.atomic_io import temporary_sibling

    model, cfg = loaded
    cv2.imwrite(str(tmp_path / "x.png"), np.full((64, 48, 3), 90, np.uint8))

    def read_only(path, *args, **kwargs):  # what a read-only file system answers for the marker's temporary file
        raise OSError(errno.EROFS, "Read-only file system", str(temporary_sibling(path)))

    monkeypatch.setattr(demo, "atomic_write_text", read_only)
    out = tmp_path / "ro"
    out.mkdir()
    with pytest.raises(Pose3DError, match=rf"^--out {re.escape(str(out))}: cannot write there \(Read-only file system\)$"):
        demo.run_inputs(model, cfg, None, media.collect_inputs([tmp_path / "x.png"]), out)


def test_files_of_the_users_in_an_out_folder_are_never_replaced(tmp_path, loaded, monkeypatch):
    """A folder of the user's as --out: a person.json of theirs was replaced and their person.bvh deleted
    (the demo took any <stem>.json for an earlier result). Now the item is refused and the files stay;
    the demo's own results there are replaced by a later run as before."""
    model, cfg = loaded
    monkeypatch.setenv("POSE3D_PROGRESS", "off")
    photo = tmp_path / "in" / "person.jpg"
    photo.parent.mkdir()
    cv2.imwrite(str(photo), np.full((64, 48, 3), 90, np.uint8))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "person.json").write_text('{"my": "notes"}')
    (mine / "person.bvh").write_text("MY OWN BVH")
    with pytest.raises(Pose3DError, match=rf"^{re.escape(str(mine / 'person.json'))}: exists and was not written by "
                                          r"the demo \(no \"schema\": \"pose3d-demo/1\"\)"):
        demo.run_inputs(model, cfg, None, media.collect_inputs([photo]), mine, whole_image=True, quiet=True)
    assert (mine / "person.json").read_text() == '{"my": "notes"}' and (mine / "person.bvh").read_text() == "MY OWN BVH"
    (mine / "person.json").unlink()
    (mine / "person_2d.png").write_bytes(b"my picture")  # a file of the item's name, no JSON of the demo's beside it
    with pytest.raises(Pose3DError, match=rf"^{re.escape(str(mine / 'person_2d.png'))}: exists and was not written"):
        demo.run_inputs(model, cfg, None, media.collect_inputs([photo]), mine, whole_image=True, quiet=True)
    assert (mine / "person_2d.png").read_bytes() == b"my picture"
    (mine / "person_2d.png").unlink()
    with pytest.raises(Pose3DError, match=r"person\.bvh: exists and was not written"):  # even without --bvh:
        demo.run_inputs(model, cfg, None, media.collect_inputs([photo]), mine, whole_image=True, quiet=True)
    assert (mine / "person.bvh").read_text() == "MY OWN BVH"  # beside the demo's JSON a later run would remove it
    (mine / "person.bvh").unlink()
    for bvh in (True, False):  # the demo's own results are replaced by the next run, its BVH removed without --bvh
        demo.run_inputs(model, cfg, None, media.collect_inputs([photo]), mine, whole_image=True, bvh=bvh, quiet=True)
        assert json.loads((mine / "person.json").read_text())["schema"] == demo.SCHEMA
        assert (mine / "person.bvh").is_file() is bvh


def test_folder_labels_differ_without_case(tmp_path):
    """A/Shots and B/shots are one output folder on macOS and Windows: the second gets its own label,
    or its keypoint bundle would replace the first's there."""
    folders = [tmp_path / "A" / "Shots", tmp_path / "B" / "shots", tmp_path / "C" / "SHOTS", tmp_path / "D" / "other"]
    items = [media.Item("image", f / "x.png", f) for f in folders]
    assert list(demo.folder_labels(items).values()) == ["Shots", "shots_2", "SHOTS_3", "other"]


def test_folders_of_one_name_and_earlier_outputs(tmp_path, loaded, monkeypatch, capsys):
    """A/shots and B/shots get shots/ and shots_2/; an earlier --out inside an input folder is not read
    back, wherever it was written from; an earlier run's BVH goes when --bvh is not given again."""
    model, cfg = loaded
    monkeypatch.setenv("POSE3D_PROGRESS", "off")
    for name, grey in (("A", 60), ("B", 200)):
        (tmp_path / name / "shots").mkdir(parents=True)
        cv2.imwrite(str(tmp_path / name / "shots" / "x.png"), np.full((64, 48, 3), grey, np.uint8))
    items = media.collect_inputs([tmp_path / "A" / "shots", tmp_path / "B" / "shots"])
    out = tmp_path / "A" / "res"
    demo.run_inputs(model, cfg, None, items, out, whole_image=True, bvh=True, quiet=True)
    for label, source in (("shots", "A"), ("shots_2", "B")):
        assert json.loads((out / label / "x.json").read_text())["input"] == str(tmp_path / source / "shots" / "x.png")
        assert (out / label / "keypoints" / "items.txt").read_text() == "x.png\n"
        assert (out / label / "x.bvh").is_file()
    # the next run from folder A (another --out) reads A's photo, not the outputs in A/res
    assert [i.path for i in media.collect_inputs([tmp_path / "A"])] == [tmp_path / "A" / "shots" / "x.png"]
    with pytest.raises(Pose3DError, match="holds the outputs of an earlier demo run"):
        media.collect_inputs([out])
    with pytest.raises(Pose3DError, match=rf"^{re.escape(str(out / 'shots'))}: lies inside {re.escape(str(out))}, "
                                          "the outputs of an earlier demo run"):
        media.collect_inputs([out / "shots"])  # a result folder of that run: its overlays are not photos
    demo.run_inputs(model, cfg, None, media.collect_inputs([tmp_path / "A" / "shots"]), out, whole_image=True,
                    quiet=True)
    assert not (out / "shots" / "x.bvh").exists() and (out / "shots" / "x.json").is_file()

    # a folder of the user's as --out: not marked (a later search still finds the photos there), and a
    # .bvh the demo did not write there (no JSON of that item before) stops the item and is left alone
    mine = tmp_path / "mine"
    mine.mkdir()
    cv2.imwrite(str(mine / "own.png"), np.full((64, 48, 3), 120, np.uint8))
    (mine / "x.bvh").write_text("the user's own motion")
    with pytest.raises(Pose3DError, match=r"x\.bvh: exists and was not written by the demo"):
        demo.run_inputs(model, cfg, None, media.collect_inputs([tmp_path / "B" / "shots" / "x.png"]), mine,
                        whole_image=True, quiet=True)
    assert (mine / "x.bvh").read_text() == "the user's own motion" and not (mine / "x.json").exists()
    (mine / "x.bvh").rename(mine / "own.bvh")
    demo.run_inputs(model, cfg, None, media.collect_inputs([tmp_path / "B" / "shots" / "x.png"]), mine,
                    whole_image=True, quiet=True)
    assert (mine / "own.bvh").read_text() == "the user's own motion" and (mine / "x.json").is_file()
    assert not (mine / media.OUTPUT_MARKER).exists()
    assert f"warning: --out {mine}: holds files of yours, so it is not marked as demo output" in capsys.readouterr().err
    assert tmp_path / "mine" / "own.png" in [i.path for i in media.collect_inputs([tmp_path])]
    skipped: list = []
    media.collect_inputs([tmp_path], skipped=skipped)
    assert skipped == [out]  # said on the terminal by the demo command
    finder = tmp_path / "finder"  # a folder holding only hidden files (a Finder's .DS_Store) counts as empty: marked
    finder.mkdir()
    (finder / ".DS_Store").write_bytes(b"x")
    inner = out / "sub"  # a folder inside a marked one: every search skips it already
    inner.mkdir()
    (inner / "mine.txt").write_text("x")
    for target in (finder, inner):
        demo.run_inputs(model, cfg, None, media.collect_inputs([tmp_path / "B" / "shots" / "x.png"]), target,
                        whole_image=True, quiet=True)
    assert (finder / media.OUTPUT_MARKER).is_file() and not (inner / media.OUTPUT_MARKER).exists()
    assert "holds files of yours" not in capsys.readouterr().err


def test_single_image_shows_its_steps_and_bars_off_is_silent(tmp_path, loaded, bars_on, monkeypatch, capsys):
    model, cfg = loaded
    cv2.imwrite(str(tmp_path / "x.png"), np.full((64, 48, 3), 90, np.uint8))
    demo.run_inputs(model, cfg, None, media.collect_inputs([tmp_path / "x.png"]), tmp_path / "o", quiet=True)
    assert "x.png: writing" in capsys.readouterr().err
    monkeypatch.setenv("POSE3D_PROGRESS", "off")
    demo.run_inputs(model, cfg, None, media.collect_inputs([_video(tmp_path / "c.mp4", n=2)]), tmp_path / "o",
                    whole_image=True, quiet=True)
    assert capsys.readouterr().err == ""


def test_warnings_land_on_their_own_line_under_a_bar(bars_on, capsys):
    bar = progress_bar(total=2, desc="demo", file=sys.stderr)
    bar.refresh()
    demo._warn("badfolder/g.png: not an image")
    bar.close()
    err = capsys.readouterr().err
    assert "warning: badfolder/g.png: not an image" in re.split(r"[\r\n]", err)  # not appended to the bar's line


def test_checkpoint_folder_says_a_file_is_expected(tmp_path):
    with pytest.raises(CheckpointError, match=r"checkpoint .*: is a folder; expected a checkpoint file"):
        demo.load_demo_model(tmp_path)
    with pytest.raises(CheckpointError, match=re.escape(f"checkpoint {PROJECT_ROOT / 'configs'}: is a folder")):
        demo.load_demo_model("configs")  # a library caller's relative path: the project's, as everywhere


def test_out_whose_results_folder_is_the_input_folder_is_refused(tmp_path, loaded):
    """`demo photos --out .` would write photos/a.json, a_2d.png, ... among the photos, read as photos next time."""
    model, cfg = loaded
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.png"), np.full((64, 48, 3), 90, np.uint8))
    with pytest.raises(Pose3DError, match=re.escape(f"--out {tmp_path}: the results of the input folder {photos} would go "
                                                    f"into the input folder {photos} ({photos}), and a later run would "
                                                    "read them as photos")):
        demo.run_inputs(model, cfg, None, media.collect_inputs([photos]), tmp_path, whole_image=True)
    other = tmp_path / "A" / "photos"  # `demo A/photos photos --out .`: A/photos is labelled photos, the second photos_2
    other.mkdir(parents=True)
    cv2.imwrite(str(other / "b.png"), np.full((64, 48, 3), 90, np.uint8))
    with pytest.raises(Pose3DError, match=re.escape(f"the results of the input folder {other} would go into the input "
                                                    f"folder {photos} ({photos})")):
        demo.run_inputs(model, cfg, None, media.collect_inputs([other, photos]), tmp_path, whole_image=True)
    assert sorted(p.name for p in photos.iterdir()) == ["a.png"]  # nothing written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["A", "photos"]  # no --out files made
    written = demo.run_inputs(model, cfg, None, media.collect_inputs([photos]), tmp_path / "out", whole_image=True,
                              quiet=True)  # another --out: fine
    assert list(written) == [photos / "a.png"]


def test_a_subfolder_named_keypoints_keeps_its_results_apart_from_the_bundle(tmp_path, loaded):
    model, cfg = loaded
    shots = tmp_path / "shots"
    (shots / "keypoints").mkdir(parents=True)
    cv2.imwrite(str(shots / "a.png"), np.full((64, 48, 3), 90, np.uint8))
    cv2.imwrite(str(shots / "keypoints" / "b.png"), np.full((64, 48, 3), 120, np.uint8))
    out = tmp_path / "out"
    demo.run_inputs(model, cfg, None, media.collect_inputs([shots]), out, whole_image=True, quiet=True)
    assert (out / "shots" / "keypoints" / "b.json").is_file()  # the subfolder's results
    assert (out / "shots" / "keypoints_2" / "items.txt").read_text().split() == ["a.png", "keypoints/b.png"]
    assert not (out / "shots" / "keypoints" / "items.txt").exists()


def test_a_run_where_every_input_fails_leaves_no_out_folder(tmp_path, loaded, capsys):
    model, cfg = loaded
    (tmp_path / "x.jpg").write_bytes(b"nope")
    (tmp_path / "y.png").write_bytes(b"")
    with pytest.raises(Pose3DError, match="none of the 2 inputs"):
        demo.run_inputs(model, cfg, None, media.collect_inputs([tmp_path / "x.jpg", tmp_path / "y.png"]),
                        tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_header_of_a_trained_checkpoint_is_unchanged(loaded):
    header = demo.output_header(loaded[1], None)
    assert header["expectations"] == demo.EXPECTATIONS and "fixed when it was trained" in header["scale_convention"]


@pytest.mark.skipif(not (FIXTURES / "hg3d_tiny_state_dict.pt").is_file(), reason=f"hg3d fixtures not at {FIXTURES}")
def test_converted_checkpoint_gets_true_expectations_and_scale_source(tmp_path):
    from pose3dlib.original import compat

    converted = compat.convert_hg3d(FIXTURES / "hg3d_tiny_state_dict.pt", tmp_path / "hg3d.pt")
    _, cfg = demo.load_demo_model(converted)
    header = demo.output_header(cfg, converted)
    assert "original authors' weights" not in header["expectations"] and "convert-hg3d" in header["expectations"]
    assert "fixed when it was trained" not in header["scale_convention"]
    assert f"{cfg.eval.paper_bone_sum_mm:.2f} mm" in header["scale_convention"]
    assert "paper_bone_sum_mm" in header["scale_convention"]


def test_checkpoint_folder_names_the_checkpoint_inside(tmp_path, checkpoint):
    (tmp_path / "run" / "stage3").mkdir(parents=True)
    (tmp_path / "run" / "stage3" / "last.pt").write_bytes(checkpoint.read_bytes())
    with pytest.raises(CheckpointError, match=re.escape(f"here: {tmp_path / 'run' / 'stage3' / 'last.pt'}")):
        demo.load_demo_model(tmp_path / "run")


def test_files_of_one_name_never_share_outputs(tmp_path):
    """Three photo.jpg from three folders, the same file given twice, and photo.jpg/.png/.PNG each get
    their own output name (the third one of a name overwrote the second before)."""
    items = [media.Item("image", tmp_path / d / "photo.jpg", None) for d in ("A", "B", "C")]
    items += [media.Item("image", tmp_path / "A" / "photo.jpg", None)]
    items += [media.Item("image", tmp_path / "D" / f"p.{s}", None) for s in ("jpg", "png", "PNG")]
    used: set[str] = set()
    stems = [demo.output_stem(i, used) for i in items]
    assert stems == ["photo", "photo_jpg", "photo_jpg_2", "photo_jpg_3", "p", "p_png", "p_png_2"]
    assert len(set(stems)) == len(stems) == len(used)
    # names that differ in case only are one file on case-insensitive file systems
    assert demo.output_stem(media.Item("image", tmp_path / "E" / "Photo.jpg", None), used) == "Photo_jpg_4"


def test_a_small_pictures_overlay_is_drawn_enlarged_and_a_large_ones_as_it_is(tmp_path, monkeypatch):
    small = np.zeros((40, 30, 3), np.uint8)
    canvas, zoom = demo.overlay_canvas(small)
    assert zoom == 7 and canvas.shape == (280, 210, 3)  # 7 x 40 = 280 >= 256 > 6 x 40
    assert np.array_equal(canvas[::7, ::7], small)  # nearest neighbour: every pixel a 7 x 7 block
    # the write path moves each joint to its pixel's centre on the enlargement: (x + 0.5) * zoom - 0.5
    drawn = []
    monkeypatch.setattr("pose3dlib.plots.viz.draw_skeleton_2d", lambda image, joints: drawn.append(joints) or image)
    result = {"joints_2d_px": [[0.0, 0.0]] * 16, "joints_3d_mm": [[0.0, 0.0, 0.0]] * 16}
    monkeypatch.setattr("pose3dlib.plots.viz.write_html", lambda *a, **k: None)
    monkeypatch.setattr("pose3dlib.plots.viz.skeleton_figure_3d_png", lambda *a, **k: None)
    demo.write_outputs(result, small, tmp_path, "p", None)
    assert np.allclose(drawn[0][0], [(7 - 1) / 2] * 2)
    large = np.zeros((300, 20, 3), np.uint8)
    assert demo.overlay_canvas(large)[1] == 1 and demo.overlay_canvas(large)[0] is large


def test_the_shared_plotly_script_is_rewritten_when_cut_short(tmp_path):
    from plotly.offline import get_plotlyjs

    from pose3dlib.plots.viz import write_plotlyjs

    script = get_plotlyjs().encode("utf-8")
    path = write_plotlyjs(tmp_path)
    assert path == tmp_path / "plotly.min.js" and path.read_bytes() == script
    path.write_bytes(script[: len(script) // 2])  # a kill or a full disk during an earlier run's write
    assert write_plotlyjs(tmp_path).read_bytes() == script
    stamp = path.stat().st_mtime_ns
    write_plotlyjs(tmp_path)  # already the installed plotly's copy: left as it is
    assert path.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plotly.min.js"]  # no temporary left behind


def test_a_bundle_folder_holding_files_of_yours_is_refused_before_any_work(tmp_path, loaded, monkeypatch):
    model, cfg = loaded
    shots = tmp_path / "shots"
    shots.mkdir()
    cv2.imwrite(str(shots / "a.png"), np.full((64, 48, 3), 90, np.uint8))
    mine = tmp_path / "o" / "shots" / "keypoints" / "mine.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("my notes")
    with pytest.raises(Pose3DError, match=r"keypoints: holds files that are not a keypoint bundle's \(mine\.txt\)"):
        demo.run_inputs(model, cfg, None, media.collect_inputs([shots]), tmp_path / "o", whole_image=True, quiet=True)
    assert not (tmp_path / "o" / "shots" / "a.json").exists()  # refused before the image was run
    assert mine.read_text() == "my notes"
    clip = _video(tmp_path / "clip.mp4")
    mine = tmp_path / "o" / "clip_keypoints" / "mine.txt"  # a video's bundle folder too, before its frames are run
    mine.parent.mkdir(parents=True)
    mine.write_text("my notes")
    monkeypatch.setattr(demo, "_estimate_frames", lambda *a, **k: pytest.fail("frames estimated before the check"))
    with pytest.raises(Pose3DError, match=r"clip_keypoints: holds files that are not a keypoint bundle's \(mine\.txt\)"):
        demo.run_inputs(model, cfg, None, media.collect_inputs([clip]), tmp_path / "o", whole_image=True, quiet=True)


def test_library_calls_read_relative_paths_from_the_current_folder(tmp_path, checkpoint, loaded, monkeypatch):
    """From a script in another folder, run_inputs wrote each JSON and overlay under the current folder
    but the 3D pages and plotly.min.js under the project; load_demo_model read the checkpoint's relative
    path from the project too (load_model from the current folder)."""
    model, cfg = loaded
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.pt").write_bytes(checkpoint.read_bytes())
    mine, _ = demo.load_demo_model("mine.pt")
    assert all(torch.equal(a, b) for a, b in zip(mine.state_dict().values(), model.state_dict().values()))
    cv2.imwrite(str(tmp_path / "p.png"), np.full((96, 80, 3), 120, np.uint8))
    written = demo.run_inputs(model, cfg, "mine.pt", media.collect_inputs([tmp_path / "p.png"]), "res",
                              whole_image=True, quiet=True)  # the checkpoint as the script names it
    paths = [p for files in written.values() for p in files.values()]
    assert paths and all(p.resolve().is_relative_to(tmp_path.resolve()) and p.is_file() for p in paths), paths
    assert (tmp_path / "res" / "plotly.min.js").is_file() and not (PROJECT_ROOT / "res").exists()
    assert json.loads((tmp_path / "res" / "p.json").read_text())["checkpoint"] == "mine.pt"


def test_estimate_pose_names_an_image_that_is_not_an_rgb_uint8_array(loaded):
    model, cfg = loaded
    rgb = np.zeros((64, 48, 3), np.uint8)
    for image, expected in ((torch.zeros(64, 48, 3, dtype=torch.uint8), r"got Tensor \(a torch tensor: \.numpy\(\)"),
                            (np.zeros((3, 64, 48), np.uint8), r"got shape \(3, 64, 48\) uint8 \(channels first\?"),
                            (rgb.astype(np.float32) / 255, r"got shape \(64, 48, 3\) float32 \(float 0\.\.1"),
                            (np.zeros((0, 48, 3), np.uint8), r"got shape \(0, 48, 3\) uint8$"),
                            (np.zeros((64, 48), np.uint8), r"got shape \(64, 48\) uint8$")):
        with pytest.raises(Pose3DError, match=r"^image_rgb: expected an \(H, W, 3\) uint8 RGB .*" + expected):
            demo.estimate_pose(model, cfg, image)
    with pytest.raises(Pose3DError, match=r"^--bbox 500,500,10,10 lies outside image \(48x64 px\)$"):
        demo.estimate_pose(model, cfg, rgb, bbox=(500.0, 500.0, 10.0, 10.0))
    assert len(demo.estimate_pose(model, cfg, rgb, whole_image=True)["joints_2d_px"]) == 16


def test_predict_refuses_a_network_in_training_mode(loaded):
    """In training mode BatchNorm used the batch's statistics and overwrote its running ones."""
    from pose3dlib.evaluation.evaluate import predict

    model, cfg = loaded
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    try:
        with pytest.raises(ValueError, match=r"eval mode \(model\.eval\(\)\); it is in training mode"):
            predict(model, torch.zeros(2, 3, 64, 64, dtype=torch.uint8), cfg.model.input_format)
    finally:
        model.eval()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())

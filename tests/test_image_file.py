"""Reading one image file: whole pictures decode, cut-short ones are refused by name."""
from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from pose3dlib.data.image_file import jpeg_image_end, read_image_file
from pose3dlib.engine.errors import DataError


def _jpeg(progressive: bool = False) -> bytes:
    rng = np.random.default_rng(0)
    picture = cv2.GaussianBlur(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8), (5, 5), 0)
    ok, enc = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)])
    assert ok
    return enc.tobytes()


@pytest.mark.parametrize("progressive", [False, True])
def test_the_segment_walk_finds_the_end_of_the_picture(progressive):
    data = _jpeg(progressive)
    assert jpeg_image_end(data) == len(data)
    assert jpeg_image_end(data + b"\x00" * 5000 + b"ftypmp42") == len(data)  # a motion photo's clip after it
    assert jpeg_image_end(data[: len(data) // 2]) is None
    assert jpeg_image_end(data[:-2]) is None  # all but the end marker


@pytest.mark.parametrize("progressive", [False, True])
def test_a_motion_photo_reads_as_its_picture(tmp_path, progressive):
    """Phones append a video clip (megabytes) after the JPEG's end marker: the picture is whole."""
    data = _jpeg(progressive)
    clip = np.random.default_rng(1).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    assert b"\xff\xd9" not in clip[-1024:]  # no end marker near the file's end: the walk must find it
    (tmp_path / "plain.jpg").write_bytes(data)
    (tmp_path / "PXL_1.MP.jpg").write_bytes(data + clip)
    np.testing.assert_array_equal(read_image_file(tmp_path / "PXL_1.MP.jpg"), read_image_file(tmp_path / "plain.jpg"))


def _app1(payload: bytes) -> bytes:
    return b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload


def test_the_walk_passes_thumbnails_restart_markers_and_stray_bytes():
    data = _jpeg()
    thumbnail = b"Exif\x00\x00" + b"\xff\xd8\xff\xdb" + bytes(40) + b"\xff\xd9"  # an EXIF thumbnail's own end marker
    with_thumb = data[:2] + _app1(thumbnail) + data[2:]
    assert jpeg_image_end(with_thumb + b"\x00" * 3000) == len(with_thumb)  # not the thumbnail's end
    picture = cv2.GaussianBlur(np.random.default_rng(2).integers(0, 255, (96, 128, 3), dtype=np.uint8), (5, 5), 0)
    ok, enc = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_RST_INTERVAL, 2])
    assert ok and b"\xff\xd0" in enc.tobytes()  # restart markers inside the scan
    assert jpeg_image_end(enc.tobytes() + b"\x00" * 3000) == len(enc.tobytes())
    stray = data[:2] + b"\x00\x00\x00" + data[2:]  # bytes between segments: libjpeg skips them with a warning
    assert jpeg_image_end(stray + b"\x00" * 3000) == len(stray)


def test_a_cut_short_jpeg_is_refused_by_name(tmp_path):
    data = _jpeg()
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"half\.jpg: not a readable image: truncated JPEG"):
        read_image_file(tmp_path / "half.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.jpg: not a readable image: the file is empty"):
        read_image_file(tmp_path / "empty.jpg")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def test_a_header_opencv_refuses_is_a_data_error_naming_the_file(tmp_path):
    """A PNG header declaring 10^10 pixels: OpenCV raises cv2.error instead of returning None."""
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _chunk(b"IEND", b"")
    (tmp_path / "huge.png").write_bytes(png)
    with pytest.raises(cv2.error):
        cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)  # what OpenCV itself does with it
    with pytest.raises(DataError, match=r"huge\.png: not a readable image: OpenCV refused it"):
        read_image_file(tmp_path / "huge.png")


def test_a_pipe_named_like_an_image_is_not_called_missing(tmp_path):
    import os

    pipe = tmp_path / "pipe.jpg"
    os.mkfifo(pipe)
    with pytest.raises(DataError, match=r"pipe\.jpg: not a regular file \(a pipe or a device\?\)"):
        read_image_file(pipe)
    with pytest.raises(DataError, match=r"^image not found: .*gone\.jpg$"):
        read_image_file(tmp_path / "gone.jpg")
    with pytest.raises(DataError, match=r"\(it is a folder\)"):
        read_image_file(tmp_path)


def test_a_video_named_like_an_image_is_called_a_video(tmp_path):
    from pose3dlib.inference import media

    clip = media.write_video(tmp_path / "clip.mp4", [np.full((32, 32, 3), 90, np.uint8)] * 2, fps=4)
    renamed = tmp_path / "video_as.jpg"
    renamed.write_bytes(clip.read_bytes())
    with pytest.raises(DataError, match=r"video_as\.jpg: not a readable image: it is a video \(an MP4/MOV container\)"):
        read_image_file(renamed)
    heic = tmp_path / "IMG.jpg"  # HEIF photos with a .jpg name are not called videos, whatever their major brand
    for major in (b"heic", b"mif2", b"avif", b"heim"):
        heic.write_bytes(b"\x00\x00\x00\x18ftyp" + major + b"\x00\x00\x00\x00mif1" + major + bytes(64))
        with pytest.raises(DataError, match=r"IMG\.jpg: not a readable image \(JPEG/PNG expected; corrupt\?\)"):
            read_image_file(heic)

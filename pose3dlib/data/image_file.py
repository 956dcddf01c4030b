"""Reading one image file, with an error naming the file when it is missing, empty, truncated or corrupt.

OpenCV decodes a truncated JPEG without failing (it prints "Premature end of JPEG file" and
fills the missing rows with grey), so completeness is checked on the bytes first: a JPEG
must end with its end-of-image marker and a PNG with its IEND chunk. A JPEG may carry more
after its end marker (the video clip of a phone's "motion photo"): when the file's last bytes
hold no end marker, its segments are followed to find the one that ends the picture.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..engine.errors import DataError

JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"  # SOI / EOI markers
PNG_SIGNATURE, PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND"
HEIF_BRANDS = (b"mif1", b"msf1")  # every HEIF/AVIF picture (a phone's .heic) lists one of these brands
TAIL_BYTES = 1024  # the end marker must lie in the file's last bytes (some writers pad after it)


def jpeg_image_end(data: bytes) -> int | None:
    """Offset just past the end-of-image marker that closes the JPEG picture starting at `data`'s
    SOI, found by following its marker segments (lengths) and entropy-coded scans (where 0xFF is
    followed by a stuffed 0x00 or a restart marker); None when the bytes end first. Stray bytes
    between segments are passed over to the next 0xFF, as libjpeg does (with a warning); thumbnails
    inside APP segments are skipped with their segment."""
    n, i = len(data), len(JPEG_START)
    while i + 1 < n:
        if data[i] != 0xFF:
            i = data.find(b"\xff", i)
            if i < 0:
                return None
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
        elif marker == JPEG_END[1]:
            return i + 2
        elif marker == 0x01 or 0xD0 <= marker <= 0xD7:  # TEM, RSTn: no length
            i += 2
        else:
            if i + 4 > n:
                return None
            i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
            if marker == 0xDA:  # start of scan: entropy-coded bytes up to the next real marker
                while True:
                    j = data.find(b"\xff", i)
                    if j < 0 or j + 1 >= n:
                        return None
                    if data[j + 1] == 0x00 or 0xD0 <= data[j + 1] <= 0xD7:
                        i = j + 2
                    elif data[j + 1] == 0xFF:
                        i = j + 1
                    else:
                        i = j
                        break
    return None


def incomplete_reason(data: bytes) -> str | None:
    """Why the encoded bytes of a JPEG or PNG are not a whole image (None when they look complete)."""
    if not data:
        return "the file is empty"
    tail = data[-TAIL_BYTES:]
    if data.startswith(JPEG_START) and JPEG_END not in tail and jpeg_image_end(data) is None:
        return "truncated JPEG (no end-of-image marker)"
    if data.startswith(PNG_SIGNATURE) and PNG_END not in tail:
        return "truncated PNG (no IEND chunk)"
    return None


def is_video_container(data: bytes) -> bool:
    """Whether the bytes open an ISO base media file (MP4, MOV, M4V: an `ftyp` box) that is no HEIF or
    AVIF still picture, whose `ftyp` lists HEIF_BRANDS among its major and compatible brands."""
    if data[4:8] != b"ftyp":
        return False
    size = int.from_bytes(data[:4], "big")
    box = data[8:min(max(size, 16), len(data), 256)]  # major brand, minor version, compatible brands
    brands = {box[i:i + 4] for i in range(0, len(box) - 3, 4)}
    return not brands & set(HEIF_BRANDS)


def opencv_path(path: str | Path) -> str:
    """`path` as the text OpenCV's file functions take. A name that is not valid UTF-8 (Python holds its
    bytes as surrogate escapes, e.g. a Latin-1 'caf\\xe9.mp4') crashes OpenCV's conversion of the text
    (a segmentation fault), so it is a DataError naming the file instead."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(f"{text!r}: the file name is not valid UTF-8, which OpenCV cannot open or write; rename "
                        "it (or its folder), e.g. with `convmv -f latin1 -t utf8`") from None
    return text


def write_image_file(path: Path, image_bgr: np.ndarray) -> None:
    """Encode an OpenCV (BGR, grey or BGRA) image in the format of `path`'s suffix and write its bytes with
    Python's own file functions, so any file name works (`opencv_path`)."""
    ok, data = cv2.imencode(path.suffix or ".png", image_bgr)
    if not ok:
        raise DataError(f"{path}: could not encode the image as {path.suffix or '.png'}")
    path.write_bytes(data.tobytes())


def read_image_file(path: str | Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """Decode an image file with OpenCV `flags`; (H, W[, C]) array in OpenCV's channel order (BGR).

    Raises DataError naming the file when it is missing, a folder, empty, truncated or not
    decodable as an image.
    """
    path = Path(path)
    if not path.is_file():
        if path.exists() and not path.is_dir():  # a pipe, a socket, a device: there, but no file to read
            raise DataError(f"{path}: not a regular file (a pipe or a device?); give an image file")
        raise DataError(f"image not found: {path}" + (" (it is a folder)" if path.is_dir() else ""))
    data = path.read_bytes()
    reason = incomplete_reason(data)
    if reason is not None:
        raise DataError(f"{path}: not a readable image: {reason}")
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as e:  # e.g. a header declaring more pixels than OpenCV decodes (damaged, or a gigapixel panorama)
        raise DataError(f"{path}: not a readable image: OpenCV refused it ({str(e).strip().splitlines()[-1]})") from None
    except MemoryError:
        raise DataError(f"{path}: not a readable image: too large to decode in this machine's memory") from None
    if image is None or image.size == 0:
        if is_video_container(data):
            raise DataError(f"{path}: not a readable image: it is a video (an MP4/MOV container); give it its "
                            "video suffix (.mp4, .mov) to run it as a video")
        raise DataError(f"{path}: not a readable image (JPEG/PNG expected; corrupt?)")
    return image

"""Reading one image file, with an error naming the file when it is missing, empty, truncated or corrupt.

OpenCV decodes a truncated JPEG without failing (it prints "Premature end of JPEG file" and
fills the missing rows with grey), so completeness is checked on the bytes first: a JPEG
must end with its end-of-image marker and a PNG with its IEND chunk.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..engine.errors import DataError

JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"  # SOI / EOI markers
PNG_SIGNATURE, PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND"
TAIL_BYTES = 1024  # the end marker must lie in the file's last bytes (some writers pad after it)


def incomplete_reason(data: bytes) -> str | None:
    """Why the encoded bytes of a JPEG or PNG are not a whole image (None when they look complete)."""
    if not data:
        return "the file is empty"
    tail = data[-TAIL_BYTES:]
    if data.startswith(JPEG_START) and JPEG_END not in tail:
        return "truncated JPEG (no end-of-image marker)"
    if data.startswith(PNG_SIGNATURE) and PNG_END not in tail:
        return "truncated PNG (no IEND chunk)"
    return None


def read_image_file(path: str | Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """Decode an image file with OpenCV `flags`; (H, W[, C]) array in OpenCV's channel order (BGR).

    Raises DataError naming the file when it is missing, a folder, empty, truncated or not
    decodable as an image.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image not found: {path}" + (" (it is a folder)" if path.is_dir() else ""))
    data = path.read_bytes()
    reason = incomplete_reason(data)
    if reason is not None:
        raise DataError(f"{path}: not a readable image: {reason}")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None or image.size == 0:
        raise DataError(f"{path}: not a readable image (JPEG/PNG expected; corrupt?)")
    return image

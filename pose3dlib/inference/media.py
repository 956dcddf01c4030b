"""Demo inputs and outputs on disk: images of any mode, folders of them, videos (OpenCV).

    read_image_rgb("photo.png")            # (H, W, 3) uint8 RGB
    collect_inputs(["a.jpg", "shots/"])    # [Item(kind, path, group), ...]
    for index, frame in read_video_frames("clip.mp4"): ...
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..data.image_file import opencv_path, read_image_file, write_image_file
from ..engine.atomic_io import temporary_sibling
from ..engine.errors import DataError, Pose3DError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".m4v", ".avi", ".mov", ".mkv", ".webm")
VIDEO_KINDS = ", ".join(s[1:] for s in VIDEO_SUFFIXES)  # for messages
OUTPUT_MARKER = ".pose3d-demo-output"  # written into every demo --out: a folder search never reads it as input
# Formats whose alpha channel is composited (read_image_rgb). Not TIFF: OpenCV reads an RGBA TIFF through
# libtiff, whose colours come already multiplied by alpha (and a grey + alpha TIFF as plain grey), so a TIFF
# is used as OpenCV decodes it; nor BMP, whose 32-bit alpha is rarely meant as transparency.
ALPHA_SUFFIXES = (".png", ".webp")
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")  # Pillow modes with an alpha channel
ALPHA_BACKGROUND = 255  # the grey level a transparent pixel becomes (white, as image viewers show cut-outs)
OVERLAY_FOURCC = "mp4v"  # MPEG-4 part 2: written by the ffmpeg inside opencv-python wheels, played everywhere


@dataclass(frozen=True)
class Item:
    """One thing to run the demo on: an image or a video, and the folder argument it came from (or None)."""

    kind: str  # "image" or "video"
    path: Path
    folder: Path | None  # the folder given on the command line that holds it


def marked_folder(path: Path) -> Path | None:
    """The nearest of `path` and the folders above it that holds OUTPUT_MARKER (an earlier demo run's
    --out), or None."""
    return next((d for d in (path, *path.parents) if (d / OUTPUT_MARKER).is_file()), None)


def read_image_rgb(path: str | Path) -> np.ndarray:
    """Read any JPEG/PNG (RGB, RGBA, grey, 16-bit) as (H, W, 3) uint8 RGB, turned upright as its EXIF
    orientation says (a phone photo taken upright is stored on its side). The alpha channel of a PNG or
    WebP is composited over white (ALPHA_BACKGROUND), as image viewers show a cut-out: the colour stored
    under a transparent pixel is often black or arbitrary, and the network would see it."""
    path = Path(path)
    # ANYDEPTH | ANYCOLOR: 16-bit and grey kept as stored, and, unlike IMREAD_UNCHANGED, the EXIF orientation
    # applied; it drops an alpha channel, which IMREAD_UNCHANGED reads (below)
    img = _to_uint8(read_image_file(path, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR), path)  # DataError naming a bad file
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] != 3:
        raise DataError(f"{path}: {img.shape[2]} channels; expected grey, RGB or RGBA")
    if path.suffix.lower() in ALPHA_SUFFIXES:
        alpha, orientation = pillow_header(path)
        if alpha:  # decoded a second time only when the header declares alpha
            raw = _to_uint8(read_image_file(path, cv2.IMREAD_UNCHANGED), path)
            if raw.ndim == 3 and raw.shape[2] == 4:  # BGRA (grey + alpha too), as stored: not upright
                img = _as_oriented(composite_alpha(raw), raw[..., :3], img, orientation, path)
    return np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


def _to_uint8(img: np.ndarray, path: Path) -> np.ndarray:
    if img.dtype == np.uint16:
        return (img / 257.0).round().astype(np.uint8)
    if img.dtype != np.uint8:
        raise DataError(f"{path}: unsupported pixel type {img.dtype} (8- or 16-bit images expected)")
    return img


# EXIF orientation tag value -> the turn that makes the stored pixels upright (numpy on (H, W, C))
EXIF_ORIENTATION_TAG = 0x0112
_UPRIGHT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],                            # mirrored left-right
    3: lambda a: a[::-1, ::-1],                         # turned 180 degrees
    4: lambda a: a[::-1],                               # mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),                  # mirrored about the main diagonal
    6: lambda a: np.rot90(a, k=-1),                     # shown turned 90 degrees clockwise
    7: lambda a: np.rot90(a, k=2).transpose(1, 0, 2),   # mirrored about the other diagonal
    8: lambda a: np.rot90(a, k=1),                      # shown turned 90 degrees counter-clockwise
}


def pillow_header(path: Path) -> tuple[bool, int]:
    """From one read of the file's header (Pillow decodes no pixels): whether it declares an alpha
    channel or a transparent colour, and its EXIF orientation tag (1-8; 1 when absent or not a valid
    value). (True, 1) when Pillow cannot read it: the caller then decodes the alpha to find out, and
    `_as_oriented` checks the unturned picture against OpenCV's, naming the file when they differ."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            alpha = im.mode in ALPHA_MODES or "transparency" in im.info
            orientation = int(im.getexif().get(EXIF_ORIENTATION_TAG, 1))
    except Exception:  # any Pillow failure (incl. its decompression-bomb guard): let OpenCV decide
        return True, 1
    return alpha, orientation if orientation in _UPRIGHT else 1


def _as_oriented(image: np.ndarray, stored: np.ndarray, oriented: np.ndarray, orientation: int,
                 path: Path) -> np.ndarray:
    """`image` (pixels as stored) turned upright the way OpenCV turned `stored` into `oriented`: by
    the EXIF `orientation`, checked on the decoded colours (the same pixels); as stored where
    OpenCV ignored the tag."""
    for turn in dict.fromkeys((_UPRIGHT[orientation], _UPRIGHT[1])):
        moved = turn(stored)
        if moved.shape == oriented.shape and np.array_equal(moved, oriented):
            return np.ascontiguousarray(turn(image))
    raise DataError(f"{path}: its alpha channel could not be matched to the upright picture (EXIF orientation); "
                    "save it without alpha (or without the orientation tag)")


def composite_alpha(rgba: np.ndarray, background: int = ALPHA_BACKGROUND) -> np.ndarray:
    """(H, W, 4) uint8 colour + alpha (any channel order with alpha last) -> (H, W, 3) uint8 over a
    uniform `background` grey level (default white): out = alpha * colour + (1 - alpha) * background,
    rounded."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    out = rgba[..., :3].astype(np.float32) * alpha + float(background) * (1.0 - alpha)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def kind_of(path: Path) -> str:
    """'video' for the video suffixes, else 'image' (reading it says whether it is one)."""
    return "video" if path.suffix.lower() in VIDEO_SUFFIXES else "image"


def _searched(entry: Path, folder: Path, inside_skip: Path | None, outputs: list[Path]) -> bool:
    """Whether a search of `folder` reads `entry`: not hidden below it, not in `inside_skip` (the demo's --out
    where it lies inside the folder) and not in an earlier run's output folder (`outputs`)."""
    return (not any(part.startswith(".") for part in entry.relative_to(folder).parts)
            and not (inside_skip is not None and entry.parent.resolve().is_relative_to(inside_skip))
            and not any(entry.is_relative_to(o) for o in outputs))


def collect_inputs(paths: list[str | Path], skip: str | Path | None = None,
                   skipped: list[Path] | None = None, left_out: list[Path] | None = None,
                   repeated: list[Path] | None = None, linked: list[Path] | None = None) -> list[Item]:
    """Files as given (Pose3DError for a suffix that is neither an image's nor a video's); folders
    searched recursively for images and videos (sorted), leaving out hidden
    files and folders (a name starting with '.': macOS's ._photo.jpg, .thumbnails/).

    `skip`: a folder (the demo's --out) whose files a folder search leaves out when it lies
    inside the searched folder, so a second run does not read the first run's outputs; `skip`
    equal to an input folder is a Pose3DError. Folders holding OUTPUT_MARKER (any earlier demo
    --out, wherever it was) are left out of a folder search too, and appended to `skipped` when
    given (for the caller to say so). Files of a searched folder whose suffix is neither an
    image's nor a video's (a .heic, a .txt) are appended to `left_out` when
    given, so the caller can say what was not read; so are the symbolic links to folders that a folder search
    does not follow (a loop would never end), to `linked`. A file or folder given again (itself, or a file
    inside a folder given before it) is read once, where it is first met (`demo a.png .` reads a.png as
    a single file, `demo . a.png` as one of the folder's); the later mentions are appended to `repeated`
    when given. Paths are compared as written (made absolute, links not followed), so a link inside a
    folder is a picture of its own. Raises Pose3DError naming a folder that holds neither,
    FileNotFoundError for a missing path.
    """
    items: list[Item] = []
    skip = None if skip is None else Path(skip).resolve()
    seen: set[str] = set()  # absolute paths of the files and folders already taken

    def first_time(path: Path) -> bool:
        key = os.path.abspath(path)
        if key in seen:
            if repeated is not None:
                repeated.append(path)
            return False
        seen.add(key)
        return True

    given = {Path(q).resolve() for q in paths if str(q)}  # a linked folder given as an input is read, not named
    for p in map(Path, paths):
        if p.is_dir():
            if not first_time(p):
                continue
            if skip is not None and skip == p.resolve():
                raise Pose3DError(f"--out {p}: is also an input folder; its outputs would be read as inputs "
                                  "by the next run: choose another --out (e.g. a folder inside it)")
            if (marked := marked_folder(p.resolve())) is not None:  # the folder itself, or one above it
                own = marked == p.resolve()
                what = "holds the outputs" if own else f"lies inside {marked}, the outputs"
                raise Pose3DError(f"{p}: {what} of an earlier demo run ({OUTPUT_MARKER}), not photos or videos to run it "
                                  f"on (if it holds photos of yours too, delete {(p if own else marked) / OUTPUT_MARKER})")
            inside_skip = skip if skip is not None and skip.is_relative_to(p.resolve()) else None  # --out below it
            entries = list(p.rglob("*"))  # one walk: the markers, the files and the linked folders
            outputs = [e.parent for e in entries if e.name == OUTPUT_MARKER]  # earlier runs' --out folders inside
            if skipped is not None:
                skipped += [o for o in outputs if not (skip is not None and o.resolve() == skip)]
            searched = sorted(f for f in entries if f.is_file() and _searched(f, p, inside_skip, outputs))
            found = [f for f in searched if f.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES]
            if linked is not None:  # but those given as inputs too
                linked += sorted(d for d in entries if d.is_symlink() and d.is_dir()
                                 and _searched(d, p, inside_skip, outputs) and d.resolve() not in given)
            if left_out is not None:
                left_out += [f for f in searched if f.suffix.lower() not in IMAGE_SUFFIXES + VIDEO_SUFFIXES]
            if not found:
                raise Pose3DError(f"{p}: folder holds no images or videos ({', '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)})"
                                  + (f" besides earlier demo outputs in {', '.join(map(str, outputs[:3]))}" if outputs else ""))
            items += [Item(kind_of(f), f, p) for f in found if first_time(f)]
        elif p.exists():
            if p.suffix.lower() not in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
                raise Pose3DError(f"{p}: {p.suffix or 'a name without a suffix'} is neither an image nor a video "
                                  f"the demo reads ({', '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)}); convert it "
                                  "(a phone's .heic photo to .jpg, for example) or give it one of these suffixes")
            if first_time(p):
                items.append(Item(kind_of(p), p, None))
        else:
            raise FileNotFoundError(f"{kind_of(p) if p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES else 'input'} "
                                    f"not found: {p}")
    return items


def _first_few(paths: list[Path], examples: int) -> str:
    """'a, b, c' of the first `examples` paths, ', ...' after them when there are more."""
    return ", ".join(map(str, paths[:examples])) + (", ..." if len(paths) > examples else "")


def describe_repeated(paths: list[Path], examples: int = 3) -> str:
    """One line on the inputs `collect_inputs` met more than once (its `repeated`): how many, a few of them."""
    return (f"{len(paths)} input{'s' if len(paths) != 1 else ''} given more than once (itself, or inside an input "
            f"folder) and read once: {_first_few(paths, examples)}")


def describe_linked(folders: list[Path], examples: int = 3) -> str:
    """One line on the linked folders a folder search did not follow (`collect_inputs`' linked)."""
    return (f"did not follow {len(folders)} symbolic link{'s' if len(folders) != 1 else ''} to a folder inside the "
            f"input folders: {_first_few(folders, examples)}; give {'them' if len(folders) != 1 else 'it'} as "
            f"{'inputs' if len(folders) != 1 else 'an input'} to read {'their' if len(folders) != 1 else 'its'} pictures")


def describe_left_out(files: list[Path], examples: int = 3) -> str:
    """One line on the files a folder search did not read (`collect_inputs`' left_out): how many,
    by suffix, a few of them, and the suffixes that are read."""
    by_suffix: dict[str, int] = {}
    for f in files:
        by_suffix[f.suffix.lower() or "no suffix"] = by_suffix.get(f.suffix.lower() or "no suffix", 0) + 1
    kinds = ", ".join(f"{n} {suffix}" for suffix, n in sorted(by_suffix.items(), key=lambda kv: (-kv[1], kv[0])))
    return (f"left out {len(files)} file{'s' if len(files) != 1 else ''} of the input folders that "
            f"{'are' if len(files) != 1 else 'is'} neither an image nor a video by the suffix ({kinds}: "
            f"{_first_few(files, examples)}); "
            f"read are {', '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)}")


# The first bytes of the still-image formats OpenCV reads: an image with a video's suffix opens as a
# one-frame "video" through FFmpeg's image demuxers, with a made-up frame rate
IMAGE_SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG", b"GIF8": "GIF",
                    b"II*\x00": "TIFF", b"MM\x00*": "TIFF"}


def image_signature(path: Path) -> str | None:
    """The still-image format whose signature the file starts with ('JPEG', 'PNG', 'WebP', ...), else None."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[:2] == b"BM" and head[6:10] == b"\x00\x00\x00\x00":  # "BM", the file size, 4 reserved zero bytes
        return "BMP"
    return next((kind for magic, kind in IMAGE_SIGNATURES.items() if head.startswith(magic)), None)


def video_info(path: Path) -> tuple[float, int]:
    """(frames per second, frame count the container claims) of a video; DataError when empty or unopenable,
    or when the file is a still image with a video's suffix."""
    if path.is_file() and path.stat().st_size == 0:  # checked first: FFmpeg would print its own complaint
        raise DataError(f"{path}: empty file, not a video")
    if (still := image_signature(path)) is not None:
        raise DataError(f"{path}: a {still} image with a video's suffix ({path.suffix}); give it an image's "
                        f"suffix to read it as a photo")
    cap = cv2.VideoCapture(opencv_path(path))
    try:
        if not cap.isOpened():
            raise DataError(f"{path}: OpenCV cannot open this video ({VIDEO_KINDS} expected)")
        return float(cap.get(cv2.CAP_PROP_FPS) or 0.0), int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()


def read_video_frames(path: Path, times_ms: list[float] | None = None) -> Iterator[np.ndarray]:
    """Yield the frames of a video as (H, W, 3) uint8 RGB until the first unreadable one.

    `times_ms`: when given, each frame's timestamp in the container (milliseconds, as OpenCV
    reports it after reading the frame) is appended to it as the frame is yielded.
    """
    cap = cv2.VideoCapture(opencv_path(path))
    if not cap.isOpened():
        raise DataError(f"{path}: OpenCV cannot open this video ({VIDEO_KINDS} expected)")
    try:
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                return
            if times_ms is not None:
                times_ms.append(float(cap.get(cv2.CAP_PROP_POS_MSEC)))
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def frame_times(times_ms: list[float], fps: float) -> tuple[np.ndarray, str | None]:
    """Seconds of each frame from the first, from the container's timestamps (`read_video_frames`),
    and a warning or None.

    A phone's video often has a variable frame rate: its timestamps are then the true times, and
    the warning says that files played at the constant `fps` (the overlay, BVH) drift from them.
    Where the timestamps are unusable (not finite, or not increasing) the times are frame index /
    `fps`, and the warning says so.
    """
    nominal = np.arange(len(times_ms)) / fps
    stamps = np.asarray(times_ms, dtype=np.float64) / 1000.0
    if len(stamps) < 2:
        return nominal, None
    if not np.all(np.isfinite(stamps)) or np.any(np.diff(stamps) <= 0):
        return nominal, f"the video's frame timestamps could not be read: time_s is frame index / {fps:g} fps"
    stamps = stamps - stamps[0]
    drift = float(np.max(np.abs(stamps - nominal)))
    if drift > 1.5 / fps:
        return stamps, (f"variable frame rate: time_s are the video's own timestamps, up to {drift:.2f} s from "
                        f"frame index / {fps:g} fps, at which the overlay video and BVH play")
    return stamps, None


def write_image_rgb(path: Path, image_rgb: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 RGB image (format from the suffix) under a temporary name, then rename it."""
    tmp = temporary_sibling(path, suffix=path.suffix)
    try:
        write_image_file(tmp, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


class VideoWriter:
    """Write (H, W, 3) uint8 RGB frames to an mp4 file (context manager)."""

    def __init__(self, path: Path, fps: float, size_wh: tuple[int, int]):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.writer = cv2.VideoWriter(opencv_path(path), cv2.VideoWriter_fourcc(*OVERLAY_FOURCC), fps, size_wh)
        if not self.writer.isOpened():
            raise Pose3DError(f"{path}: OpenCV cannot write {OVERLAY_FOURCC} video here")

    def write(self, frame_rgb: np.ndarray) -> None:
        self.writer.write(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.writer.release()


def write_video(path: Path, frames_rgb: list[np.ndarray], fps: float) -> Path:
    """Write frames (all the same size) as an mp4 video; returns the path."""
    h, w = frames_rgb[0].shape[:2]
    with VideoWriter(path, fps, (w, h)) as out:
        for f in frames_rgb:
            out.write(f)
    return path

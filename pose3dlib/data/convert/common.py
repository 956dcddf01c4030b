"""What the three converters share: output-folder checks, person crops, resumable parts, the annotation file."""
from __future__ import annotations

import hashlib
import json
import os
import struct
import sys
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import h5py
import numpy as np

from ... import camera
from ...engine.atomic_io import atomic_write, atomic_write_text, temporary_sibling
from ...engine.errors import DataError
from ...engine.paths import resolve
from ..image_file import opencv_path

CROP_PX = 256  # side of the written person crops (the network's input size: no resampling later)
CROP_MARGIN = 1.3  # crop side / larger extent of the person's 2D joints
JPEG_QUALITY = 95
# How `write_crop` resamples a frame: bilinear from its halving at which the crop shrinks it by at most 2 x
# (camera.ImagePyramid), since one bilinear step from a 1000-2048 px frame to 256 px (2-7 x) aliases.
# Recorded with every converted part and in the fingerprint of a converted download
# (real.download_fingerprint), so crops cut another way before are cut again.
CROP_RESAMPLING = "pyramid-bilinear"
PARTS_DIR = ".parts"  # finished sequences: one .npz of annotation rows each (resume markers)


# What readers (h5py, cdflib, scipy.io) raise for a damaged file (truncated, flipped bytes): each
# reader turns these into one DataError naming the file; a DataError of its own passes unchanged.
DAMAGED_FILE_ERRORS = (OSError, ValueError, KeyError, IndexError, TypeError, RuntimeError, EOFError,
                       OverflowError, MemoryError, zlib.error, struct.error)


# The smallest plausible median extent of one person's joints (the larger of the x / y / z spans):
# a standing adult spans about 1,700 mm and a crouching one still over 500, so a pose below 100
# "mm" is in metres; a person below 4 "px" is in normalised or crop units, not the frame's pixels.
MIN_PERSON_EXTENT = {"mm": 100.0, "px": 4.0}


def check_person_units(points: np.ndarray, unit: str, source: str) -> None:
    """DataError naming `source` unless the median person extent of `points` (N, J, D) is plausible in `unit`."""
    pts = np.asarray(points, dtype=np.float64)
    if not len(pts):
        return
    extent = float(np.median((pts.max(axis=1) - pts.min(axis=1)).max(axis=1)))
    least = MIN_PERSON_EXTENT[unit]
    if extent < least:
        hint = "metres instead of millimetres?" if unit == "mm" else "normalised or crop coordinates instead of the frame's pixels?"
        raise DataError(f"{source}: a person's joints span {extent:.3g} units (median over {len(pts)} frames), "
                        f"expected {unit} (at least {least:g}): {hint}")


class ConversionWarning(UserWarning):
    """Something in a download was skipped (a missing or unreadable file); the conversion goes on."""


def _one_line(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def warn(message: str) -> None:
    """Warn with a ConversionWarning (catchable and filterable as any warning), shown on stderr
    as the one line `warning: <message>`, without Python's source path and code line. A progress bar
    drawn on the terminal at the time is cleared first and drawn again below it, so the warning
    starts its own line instead of being glued to the bar's."""
    from tqdm import tqdm

    previous = warnings.formatwarning
    warnings.formatwarning = _one_line  # only for this warning: others keep their format
    try:
        with tqdm.external_write_mode(file=sys.stderr):
            warnings.warn(message, ConversionWarning, stacklevel=2)
    finally:
        warnings.formatwarning = previous


# In a set converted by `real.prepare_real_data` (make reproduce REAL_DATA=True): which download, in which
# state, it was converted from, with the release's settings. A converter that rewrites the set's
# annotations removes it first (`drop_download_stamp`), so a set converted since by hand (other
# settings, another download) is never taken for that one.
DOWNLOAD_STAMP = "download.json"


def prepare_output(raw: Path, out: Path) -> Path:
    """Resolve and check `out`, refusing any place inside the raw download (or the download inside it).

    The folder itself is made by the first file written into it, so a download that stops the
    converter with an error before anything is converted leaves no empty output folder behind.
    """
    raw, out = resolve(raw).resolve(), resolve(out).resolve()
    if out == raw or raw in out.parents or out in raw.parents:
        raise DataError(f"output folder {out} overlaps the raw download {raw}; converters never write into "
                        "the raw folder: choose an output outside it")
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} exists and is not a folder; choose another output")
    return out


def download_stamp(out: str | Path) -> dict | None:
    """The DOWNLOAD_STAMP of the converted set in `out` (a JSON object of `raw`, the download's path, and
    `fingerprint`, its state when converted), or None where there is none or the file is not one."""
    try:
        stamp = json.loads((resolve(out) / DOWNLOAD_STAMP).read_text())
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) and set(stamp) == {"raw", "fingerprint"} else None


def drop_download_stamp(out: Path) -> None:
    """Remove `out`'s DOWNLOAD_STAMP (when it is one, `download_stamp`) before a converter rewrites the
    set's annotations: the set is then no longer the one the stamp describes."""
    if download_stamp(out) is not None:
        (resolve(out) / DOWNLOAD_STAMP).unlink(missing_ok=True)


def person_crop(joints_px: np.ndarray) -> tuple[np.ndarray, float]:
    """Square crop (centre (2,) px, side px) around (J, 2) joints: their box midpoint, CROP_MARGIN x the larger extent."""
    lo, hi = joints_px.min(0), joints_px.max(0)
    return (lo + hi) / 2, float(max(max(hi - lo), 1.0) * CROP_MARGIN)


def write_crop(image_bgr: np.ndarray, centre: np.ndarray, side: float, path: Path) -> np.ndarray:
    """Write the CROP_PX crop of `image_bgr` (black outside the image) to `path`; return its affine (2, 3)."""
    affine = camera.crop_affine(centre, side, 0.0, CROP_PX)
    crop = camera.ImagePyramid(image_bgr).warp(affine, CROP_PX)  # CROP_RESAMPLING
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path, suffix=".jpg")
    try:
        if not cv2.imwrite(opencv_path(tmp), crop, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise DataError(f"could not write image {path}")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return affine


def hash_file_stats(h, root: str | os.PathLike) -> None:
    """Feed `h` one line per file under `root` (links followed; `root` itself when it is a file): its
    path relative to `root` (its name for a file), size and modification time. A dangling link's name
    still counts. What the download and sequence fingerprints are made of."""
    root = os.fspath(root)
    if os.path.isfile(root):
        walk = [(os.path.dirname(root), [], [os.path.basename(root)])]
        base = os.path.dirname(root)
    else:
        walk, base = os.walk(root, followlinks=True), root
    for folder, dirs, files in walk:
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            try:
                st = os.stat(path)
            except OSError:  # a dangling link: its name still counts
                st = None
            h.update(f"{os.path.relpath(path, base)}\0{st and st.st_size}\0{st and st.st_mtime_ns}\n".encode())


def files_fingerprint(*paths: Path | None, root: Path | None = None) -> str:
    """SHA-256 over `hash_file_stats` of each of `paths` (None and missing paths count as absent). A
    part's settings carry it, so a source file replaced, added or removed after the part was saved (a
    re-downloaded video, restored images) converts that sequence again instead of reusing the old rows.
    `root`: each path is named relative to it (where it lies inside it), not as given, so a download
    moved or renamed as a whole (its files' sizes and times kept) keeps its fingerprints."""
    h = hashlib.sha256()
    for path in paths:
        named = path.relative_to(root) if root is not None and path is not None and path.is_relative_to(root) else path
        h.update(f"{named}\0".encode())
        if path is None or not path.exists():
            h.update(b"absent\n")
        else:
            hash_file_stats(h, path)
    return h.hexdigest()


def absolute_path_settings(settings: dict, *paths: Path | None) -> Callable[[], dict]:
    """`load_part`'s `legacy`: a part's settings as converters recorded them before the fingerprint named
    files inside the download (`files_fingerprint` of `paths` by absolute path), computed when called."""
    return lambda: {**settings, "files": files_fingerprint(*paths)}


def part_path(out: Path, name: str) -> Path:
    return out / PARTS_DIR / f"{name}.npz"


def load_part(out: Path, name: str, settings: dict, images: Path | None = None,
              legacy: Callable[[], dict] | None = None) -> dict[str, np.ndarray] | None:
    """The rows of a finished sequence converted with the same settings, else None (convert it again).

    `images`: the release's image folder of the rows (subject, action, subaction, camera, id); a
    part any of whose crops is gone there (a deleted images/ folder) is converted again too.
    `legacy`: the settings as an older converter recorded them (called only when the stored ones
    differ from `settings`); a part recorded so is kept, and recorded again with `settings`.
    """
    path = part_path(out, name)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            stored = json.loads(str(z["settings"]))
            if stored != settings and (legacy is None or stored != legacy()):
                return None
            rows = {k: z[k] for k in z.files if k != "settings"}
        keys = [rows[k] for k in ("subject", "action", "subaction", "camera", "id")]
        if images is not None and not crops_present(images, *keys):
            return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # a damaged marker (empty, cut short), or one without the release's row keys: convert again
    if stored != settings:
        save_part(out, name, settings, rows)
    return rows


def crops_present(images: Path, subject, action, subaction, camera, ids) -> bool:
    """Whether the release's crop of every row (arrays of subject, action, subaction, camera, id) lies in `images`.

    Each sequence folder is listed once instead of one `stat` per crop (a sequence of the release
    has thousands): a name listed there counts, a link only when its target exists."""
    from ..h36m import image_name, sequence_folder

    ids = np.asarray(ids)
    sequences = np.stack([np.asarray(k) for k in (subject, action, subaction, camera)], axis=1).reshape(len(ids), 4)
    for key in np.unique(sequences, axis=0):
        folder = sequence_folder(*(int(k) for k in key))
        names = _present_names(images / folder)
        if names is None or any(image_name(folder, int(i)) not in names for i in ids[(sequences == key).all(1)]):
            return False
    return True


def _present_names(folder: Path) -> set[str] | None:
    """The names in `folder` that exist (a dangling link left out); None when it cannot be listed."""
    try:
        with os.scandir(folder) as entries:
            return {e.name for e in entries if not e.is_symlink() or os.path.exists(e.path)}
    except OSError:
        return None


def save_part(out: Path, name: str, settings: dict, rows: dict[str, np.ndarray]) -> None:
    """Mark a sequence finished (atomically) with its annotation rows."""
    path = part_path(out, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: np.savez(f, settings=json.dumps(settings, sort_keys=True), **rows), binary=True)


def write_release_annotations(out: Path, parts: list[dict[str, np.ndarray]], file_name: str = "annot.h5") -> int:
    """Concatenate sequence parts into the release's annotation HDF5 (atomically); return its row count."""
    parts = [p for p in parts if len(p["id"])]
    if not parts:
        return 0
    keys = list(parts[0])
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in keys}

    def write(f) -> None:
        with h5py.File(f, "w") as h:
            for k, v in arrays.items():
                h[k] = v.astype(np.float64) if v.dtype.kind == "f" else v.astype(np.int64)

    atomic_write(out / file_name, write, binary=True)
    return len(arrays["id"])


def write_report(out: Path, report: dict) -> Path:
    """`conversion.json` in the output: what was found, converted and missing (notebook 01 shows it)."""
    return atomic_write_text(out / "conversion.json", json.dumps(report, indent=2, sort_keys=True))


def finish(out: Path, parts: list[dict[str, np.ndarray]], report: dict) -> dict:
    """Write the release annotation file from the sequence parts and the report; return the report.

    When no rows were converted nothing is written (as convert-mpii, and convert-h36m without a
    subject folder): the caller reports the missing files from the returned report.
    """
    if any(len(p["id"]) for p in parts):
        drop_download_stamp(out)
    report["rows"] = write_release_annotations(out, parts)
    if report["rows"]:
        write_report(out, report)
    return report


# The lists a conversion report may carry of what it could not use.
REPORT_LISTS = ("subjects_missing", "missing", "skipped", "damaged_dropped", "missing_images", "damaged_images",
                "val_not_found", "sequences_missing")


def shown_items(items: list, limit: int) -> str:
    """'a, b, c' of the first `limit` items, with the count when there are more."""
    return ", ".join(str(x) for x in items[:limit]) + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def report_items(report: dict, key: str) -> list[str]:
    """A conversion report's list `key` as it is shown to people: subjects by their folder names (S6, not
    6), as the warnings and notebook 01 name them; every other item as it is."""
    return [f"S{m}" if key == "subjects_missing" else str(m) for m in report.get(key) or []]


def print_report(report: dict, out: str) -> int:
    """Print a one-screen summary of a conversion report; exit status 0 when rows were written."""
    for key in REPORT_LISTS:
        items = report_items(report, key)
        if items:
            print(f"{key.replace('_', ' ')}: {shown_items(items, 8)}")
    counts = {why: n for why, n in (report.get("skipped_people") or {}).items() if n}
    if counts:  # MPII: annotated rectangles that give no row, by reason
        print("people without a row: " + ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in counts.items()))
    if not report["rows"]:
        raise DataError(f"nothing was converted from {report['raw']} (see the missing files above)")
    print(f"wrote {report['rows']} rows to {out}")
    return 0

"""MPII Human Pose official annotations (`mpii_human_pose_v1_u12_1.mat`) -> Newell-schema `train.h5` / `val.h5`.

    python -m pose3dlib convert-mpii MAT IMAGES OUT [--val-from valid.h5]

Every annotated person of a training image (`img_train` 1) becomes a row: part (16, 2)
in the .mat's own 1-based pixels (unannotated joints (0, 0)), visible, center and scale
adjusted once (`data.mpii.adjust_raw_crop`), normalize = 0.6 x the head-box diagonal,
imgname, index (0-based image), person (0-based annorect), torsoangle 0 (not computed).
Validation people come from `--val-from` (the `index` / `person` datasets of Newell's
`valid.h5` or any h5 with them), else from VAL_EVERY_NTH_IMAGE; images that hold a
validation person are left out of training. `OUT/images` links to IMAGES (never written).
A person whose image is missing, empty or a truncated JPEG is left out and listed in the report
(`missing_images`, `damaged_images`).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import h5py
import numpy as np

from ...engine.atomic_io import atomic_write, temporary_sibling
from ...engine.errors import DataError
from ...engine.paths import PROJECT_ROOT, CommandLinePath, resolve
from ...engine.progress import progress_bar
from ..mpii import adjust_raw_crop
from . import common

ANNOTATION_FILE = "mpii_human_pose_v1_u12_1.mat"  # the release's annotations (MATLAB v5)
NUM_JOINTS = 16  # MPII joint ids 0..15 are already the network order
HEAD_SIZE_FACTOR = 0.6  # PCKh normaliser: 0.6 x the head-box diagonal
# Without --val-from: the people of every 8th training image with an annotated person
# (images in .mat order) form the validation set (about the size of the standard split).
VAL_EVERY_NTH_IMAGE = 8
# Why an annorect of a training image gives no row (conversion.json's "skipped_people" counts each)
SKIPPED_NO_JOINTS = "no_joints"  # no annopoints: a person marked (box, scale) but without joints
SKIPPED_NO_BOX = "no_scale_or_objpos"  # joints but no scale or objpos, so no crop to cut
# A JPEG ends with its end-of-image marker FF D9; a download cut short does not. Looked for in the
# file's last bytes (a few encoders pad after it).
JPEG_START, JPEG_END, JPEG_TAIL_BYTES = b"\xff\xd8", b"\xff\xd9", 1024


def damaged_image(path: Path) -> str | None:
    """Why the image file at `path` cannot be a whole image, or None: empty, or (a .jpg/.jpeg) without
    the JPEG start marker or the end marker near its end (a truncated copy). Reads 2 + 1024 bytes,
    not the picture."""
    size = path.stat().st_size
    if size == 0:
        return "empty file"
    if path.suffix.lower() not in (".jpg", ".jpeg"):
        return None
    with open(path, "rb") as f:
        if f.read(2) != JPEG_START:
            return "not a JPEG (no start marker)"
        f.seek(max(0, size - JPEG_TAIL_BYTES))
        if JPEG_END not in f.read():
            return "truncated JPEG (no end marker)"
    return None


def _value(v):
    """A MATLAB field as a Python scalar: None for an empty array, numbers from '0'/'1' strings."""
    if isinstance(v, np.ndarray):
        if v.size == 0:
            return None
        if v.size == 1:
            v = v.reshape(()).item()
        else:
            return v
    if isinstance(v, str):
        v = v.strip()
        if not v:
            return None
        try:
            return float(v)
        except ValueError:
            return v
    return v


def _items(v) -> list:
    """A struct field that may hold one struct, an array of them, or an empty array, as a list."""
    if v is None:
        return []
    if isinstance(v, np.ndarray):
        return list(v.ravel())
    return [v]


def check_annotation_path(mat: Path) -> None:
    """DataError unless `mat` is a file: a folder given in its place is named as such (with the file inside it)."""
    if mat.is_dir():
        inside = mat / ANNOTATION_FILE
        hint = f": pass {inside}" if inside.is_file() else ""
        raise DataError(f"{mat} is a folder; expected the annotation file {ANNOTATION_FILE}{hint}")
    if not mat.is_file():
        raise DataError(f"MPII annotation file not found: {mat}")


def read_release(mat: Path):
    """RELEASE of the MPII .mat (scipy, MATLAB v5); DataError naming the file when unreadable."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    check_annotation_path(mat)
    try:
        release = loadmat(str(mat), struct_as_record=False, squeeze_me=True)["RELEASE"]
    except KeyError:
        raise DataError(f"{mat}: no 'RELEASE' variable; is this mpii_human_pose_v1_u12_1.mat?") from None
    except NotImplementedError:  # scipy's answer to a MATLAB v7.3 (HDF5) file
        raise DataError(f"{mat}: a MATLAB v7.3 (HDF5) file; the official download is MATLAB v5, which this reads: "
                        "use the file as downloaded (or re-save it in MATLAB with save(..., '-v7'))") from None
    except (MatReadError, OSError, ValueError, TypeError, IndexError) as e:  # IndexError: a short text file (a saved login page)
        raise DataError(f"{mat}: not a readable MATLAB v5 file ({type(e).__name__}: {e})") from None
    for field in ("annolist", "img_train"):
        if not hasattr(release, field):
            raise DataError(f"{mat}: RELEASE has no field {field!r}")
    return release


def _person(rect, mat: Path, i: int, r: int) -> dict | str:
    """One annotated person as Newell-schema values, or why it is not one: SKIPPED_NO_JOINTS (no points)
    or SKIPPED_NO_BOX (no scale or no objpos, so no crop)."""
    def struct(name: str):  # an absent field and an empty array both mean "not annotated"
        v = getattr(rect, name, None)
        return None if isinstance(v, np.ndarray) else v

    annopoints, objpos = struct("annopoints"), struct("objpos")
    points = _items(getattr(annopoints, "point", None)) if annopoints is not None else []
    scale = _value(getattr(rect, "scale", None))
    ox, oy = (_value(getattr(objpos, "x", None)), _value(getattr(objpos, "y", None))) if objpos is not None \
        else (None, None)
    if not points:
        return SKIPPED_NO_JOINTS
    if scale is None or ox is None or oy is None:
        return SKIPPED_NO_BOX
    where = f"{mat}: annolist({i + 1}).annorect({r + 1})"
    if not _number(scale, f"{where}.scale") > 0:
        raise DataError(f"{where}.scale is {scale}, expected > 0 (the person's height / 200 px)")
    part = np.zeros((NUM_JOINTS, 2))
    visible = np.zeros(NUM_JOINTS)
    for pt in points:
        j, x, y = _value(getattr(pt, "id", None)), _value(getattr(pt, "x", None)), _value(getattr(pt, "y", None))
        if j is None or x is None or y is None:
            continue
        j = _number(j, f"{where}.annopoints.point id")
        if not (j == int(j) and 0 <= int(j) < NUM_JOINTS):
            raise DataError(f"{where} has joint id {j}, expected 0..15")
        j = int(j)
        part[j] = (_number(x, f"{where} joint {j} x"), _number(y, f"{where} joint {j} y"))
        vis = _value(getattr(pt, "is_visible", None))
        if vis is None:
            visible[j] = 1.0  # empty: annotated, visibility not given
        elif isinstance(vis, str):  # `_value` already read the digits '0' / '1' as numbers
            raise DataError(f"{where} joint {j} has is_visible {vis!r}, expected 0, 1 or empty")
        else:
            visible[j] = float(_number(vis, f"{where} joint {j} is_visible") != 0)
    head = [_value(getattr(rect, k, None)) for k in ("x1", "y1", "x2", "y2")]
    if any(h is None for h in head):
        raise DataError(f"{mat}: annolist({i + 1}).annorect({r + 1}) has joints but no head box x1, y1, x2, y2")
    x1, y1, x2, y2 = (float(h) for h in head)
    centre, adj_scale = adjust_raw_crop(np.array([[float(ox), float(oy)]]), np.array([float(scale)]))
    return {"part": part, "visible": visible, "center": centre[0], "scale": float(adj_scale[0]),
            "normalize": HEAD_SIZE_FACTOR * float(np.hypot(x2 - x1, y2 - y1)), "index": float(i), "person": float(r),
            "torsoangle": 0.0}


def _number(value, what: str) -> float:
    """A finite float from an annotation field, else DataError naming the field (`what`)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{what} is {value!r}, expected a number") from None
    if not np.isfinite(number):
        raise DataError(f"{what} is {number}, expected a finite number")
    return number


def read_val_pairs(path: Path) -> set[tuple[int, int]]:
    """(image index, person index) pairs, 0-based, from the `index` / `person` datasets of an h5 file."""
    if not path.is_file():
        raise DataError(f"--val-from file not found: {path}")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ("index", "person") if k not in f]
            if missing:
                raise DataError(f"{path}: no datasets {missing}; --val-from needs 'index' and 'person' (0-based)")
            index, person = np.asarray(f["index"][()]).ravel(), np.asarray(f["person"][()]).ravel()
    except DataError:
        raise
    except common.DAMAGED_FILE_ERRORS as e:
        raise DataError(f"{path}: not a readable HDF5 file ({type(e).__name__}: {e})") from None
    if index.shape != person.shape:
        raise DataError(f"{path}: 'index' {index.shape} and 'person' {person.shape} differ in length")
    return {(int(i), int(p)) for i, p in zip(index, person)}


def _write_split(path: Path, rows: list[dict], names: list[str]) -> None:
    def write(f) -> None:
        with h5py.File(f, "w") as h:
            h["imgname"] = np.array([n.encode() for n in names], dtype="S")
            for k in ("part", "center", "scale", "visible", "normalize", "index", "person", "torsoangle"):
                h[k] = np.asarray([r[k] for r in rows], dtype=np.float64)

    atomic_write(path, write, binary=True)


def convert_mpii(mat: str | Path, images: str | Path, out: str | Path, *, val_from: str | Path | None = None,
                 progress: bool = True) -> dict:
    """Write OUT/train.h5 and OUT/val.h5 (Newell's schema) and link OUT/images; return the report."""
    mat, images = resolve(mat), resolve(images)
    check_annotation_path(mat)  # before the output checks, which compare the output with mat's folder
    out = common.prepare_output(images, resolve(out))
    common.prepare_output(mat.parent, out)
    release = read_release(mat)
    annolist = _items(release.annolist)
    img_train = np.asarray(release.img_train).ravel()
    if len(img_train) != len(annolist):
        raise DataError(f"{mat}: RELEASE.img_train has {len(img_train)} entries, annolist {len(annolist)}")
    people: dict[int, list[tuple[str, dict]]] = {}
    skipped = {SKIPPED_NO_JOINTS: 0, SKIPPED_NO_BOX: 0}  # people of training images that give no row
    for i, anno in enumerate(progress_bar(annolist, desc="convert-mpii", unit="img", disable=not progress)):
        if int(img_train[i]) != 1:
            continue
        name = _value(getattr(getattr(anno, "image", None), "name", None))
        if not isinstance(name, str):
            raise DataError(f"{mat}: annolist({i + 1}).image.name is missing")
        for r, rect in enumerate(_items(getattr(anno, "annorect", None))):
            person = _person(rect, mat, i, r)
            if isinstance(person, str):
                skipped[person] += 1
            else:
                people.setdefault(i, []).append((name, person))
    if val_from is not None:
        val_pairs = read_val_pairs(resolve(val_from))
    else:
        val_images = sorted(people)[::VAL_EVERY_NTH_IMAGE]
        val_pairs = {(i, int(p["person"])) for i in val_images for _, p in people[i]}
    val_image_set = {i for i, _ in val_pairs}
    report = {"dataset": "mpii", "raw": str(mat), "images": str(images), "val_rule": str(val_from or
              f"every {VAL_EVERY_NTH_IMAGE}th training image"), "val_not_found": [], "missing_images": [],
              "damaged_images": [], "skipped_people": skipped}
    split_rows: dict[str, tuple[list, list]] = {"train": ([], []), "val": ([], [])}
    found = set()
    checked: dict[str, str | None] = {}  # image name -> damaged_image's answer (an image holds several people)
    for i in progress_bar(sorted(people), desc="convert-mpii: checking images", unit="img", disable=not progress):
        for name, p in people[i]:  # each image is stat'ed and its end read once: minutes on a cold or network disk
            key = (i, int(p["person"]))
            split = "val" if key in val_pairs else ("train" if i not in val_image_set else None)
            if split is None:
                continue  # a training person on an image with a validation person
            if not (images / name).is_file():
                report["missing_images"].append(name)
                continue
            if name not in checked:
                checked[name] = damaged_image(images / name)
            if checked[name] is not None:
                report["damaged_images"].append(f"{name} ({checked[name]})")
                continue
            if split == "val":
                found.add(key)
            split_rows[split][0].append(p)
            split_rows[split][1].append(name)
    if val_from is not None and val_pairs and not found:
        raise DataError(f"none of the {len(val_pairs)} validation people in --val-from {val_from} is an annotated "
                        f"training person of {mat.name} with its image: another release's file, or 1-based indices? "
                        "('index' and 'person' are 0-based)")
    report["val_not_found"] = sorted(f"{i},{p}" for i, p in val_pairs - found)
    report["missing_images"] = sorted(set(report["missing_images"]))
    report["damaged_images"] = sorted(set(report["damaged_images"]))
    for split, (rows, _) in split_rows.items():
        report[f"{split}_rows"] = len(rows)
    report["rows"] = report["train_rows"] + report["val_rows"]
    if not report["rows"]:
        example = (report["missing_images"] + report["damaged_images"] + ["-"])[0]
        raise DataError(f"no image of {mat.name} found in {images} (e.g. {example}); expected the MPII images "
                        "folder (images/ of the download)")
    common.drop_download_stamp(out)
    for split, (rows, names) in split_rows.items():
        if rows:
            _write_split(out / f"{split}.h5", rows, names)
        else:  # an earlier conversion's split must not be read as this one's
            (out / f"{split}.h5").unlink(missing_ok=True)
    link_images(images, out / "images")
    common.write_report(out, report)
    return report


def link_images(images: Path, link: Path) -> None:
    """Make `link` (OUT/images) a link to the MPII images folder `images`.

    Relative when both really lie inside the project, symlinks followed (the link survives moving
    or cloning the project folder), absolute otherwise (a download elsewhere on the machine, or a
    `data/converted` that is a link to another disk). A link to another folder (an earlier
    conversion from other images) is replaced; anything else at `link` is an error naming it,
    since the converter never deletes a folder or file it did not make.
    """
    images_abs, parent_abs = Path(os.path.realpath(images)), Path(os.path.realpath(link.parent))
    root = Path(os.path.realpath(PROJECT_ROOT))
    inside = root in images_abs.parents and (parent_abs == root or root in parent_abs.parents)
    text = os.path.relpath(images_abs, parent_abs) if inside else str(images_abs)
    if link.is_symlink() and os.readlink(link) == text:
        return
    if link.exists() and not link.is_symlink():
        raise DataError(f"{link} exists and is not a link to the MPII images; move it away (the converter links "
                        f"{images} there)")
    parent_abs.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(link)
    os.symlink(text, tmp, target_is_directory=True)
    os.replace(tmp, link)  # a link to other images is replaced in one step
    if not link.is_dir():
        raise DataError(f"{link} -> {text}: the link to the MPII images does not resolve")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mat", action=CommandLinePath, help="mpii_human_pose_v1_u12_1.mat (never written)")
    parser.add_argument("images", action=CommandLinePath, help="the MPII images folder (never written)")
    parser.add_argument("out", action=CommandLinePath, help="output folder for train.h5, val.h5 and an images link")
    parser.add_argument("--val-from", action=CommandLinePath, default=None,
                        help="h5 with 'index'/'person' (0-based) of the validation people, e.g. Newell's valid.h5")


def run(args: argparse.Namespace) -> int:
    report = convert_mpii(args.mat, args.images, args.out, val_from=args.val_from)
    return common.print_report(report, args.out)

"""Which `data.*` folder of a config holds which annotation file; a missing one is named by its key.

A loader names the file it cannot read (`annot.h5 not found`); with several `--set
data.*_dir=...` overrides a user also needs to know which setting pointed there. Commands
call `require_sets` before loading anything, so the first line says
`data.wild_test_dir = '/tmp/x' (/tmp/x): no annot.h5 there ...`.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..engine.errors import DataError
from ..engine.paths import resolve

# data.* keys of Human3.6M-format sets (annotation file data.h36m_annotation_file), and the
# MPII-format one (one <split>.h5 per split)
H36M_KEYS = ("h36m_dir", "wild_test_dir", "lab_val_dir", "wild_val_dir")
MPII_KEY = "mpii_dir"
HINT = ("`make data PROFILE=<profile>` (prepare-synthetic) writes the synthetic sets, docs/data.md shows how to "
        "convert the real downloads")


def annotation_files(data, key: str, mpii_splits: Iterable[str] = ()) -> list[Path]:
    """The annotation files the set `data.<key>` must hold (resolved against the project root)."""
    root = resolve(getattr(data, key))
    if key in H36M_KEYS:
        return [root / data.h36m_annotation_file]
    if key == MPII_KEY:
        return [root / f"{split}.h5" for split in mpii_splits]
    raise ValueError(f"{key!r} is not a data set key; expected one of {[*H36M_KEYS, MPII_KEY]}")


def require_sets(data, keys: Iterable[str], mpii_splits: Iterable[str] = ()) -> None:
    """DataError naming the `data.<key>` setting whose folder or annotation file is missing.

    Keys set to "" (an optional split that is off, e.g. data.wild_val_dir) are skipped.
    """
    mpii_splits = tuple(mpii_splits)
    for key in keys:
        value = getattr(data, key)
        if not value:
            continue
        kind = "an MPII-format" if key == MPII_KEY else "a Human3.6M-format"
        root = resolve(value)
        files = annotation_files(data, key, mpii_splits)
        holds = f"{kind} set ({', '.join(f.name for f in files) or 'its annotation files'} and {data.image_dir}/)"
        if not root.is_dir():
            raise DataError(f"data.{key} = {value!r} ({root}): folder not found; it must hold {holds}; {HINT}")
        for file in files:
            if not file.is_file():
                raise DataError(f"data.{key} = {value!r} ({root}): no {file.name} there; it must hold {holds}; {HINT}")

"""Decoded training images kept in memory between epochs, up to a size limit (`data.image_cache_mb`).

A training sample starts by reading and decoding its JPEG (`sample.read_image`): on the cpu
profile's 128 px pictures that is about 0.3 of the 0.75 ms a sample takes to prepare
(docs/benchmarks.md, "decoded training images kept in memory"). Every later epoch reads the
same pictures again, so a stage of several epochs decodes each picture once and keeps it.

What a sample holds does not change: the augmentation reads the decoded picture and writes
new arrays (`sample.make_sample`), and a kept picture is read-only, so any code that tried to
change one in place would fail loudly instead of altering later epochs. The cache lives in
the process that reads the samples: with DataLoader worker processes each would keep its own
copy, so the config refuses a cache beside `data.num_workers` > 0 (`config.check_invariants`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .sample import read_image

MIB = 2**20


class ImageCache:
    """Pictures decoded by `sample.read_image`, keyed by file path, until `limit_mb` MiB are held.

    Once the limit is reached, pictures that do not fit are decoded on every read, as without
    a cache (the first ones read stay). One cache may serve several datasets (their paths differ).
    """

    def __init__(self, limit_mb: int):
        if limit_mb <= 0:
            raise ValueError(f"ImageCache needs a positive limit in MiB, got {limit_mb}")
        self.limit_bytes = int(limit_mb) * MIB
        self.bytes = 0  # held now
        self._images: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._images)

    def read(self, path: Path, index: int) -> np.ndarray:
        """`sample.read_image(path, index)`, decoded once while the limit allows; (H, W, 3) uint8 RGB,
        read-only when kept (errors as `read_image`'s: a missing or corrupt file is never kept)."""
        key = str(path)
        image = self._images.get(key)
        if image is not None:
            return image
        image = read_image(path, index)
        if self.bytes + image.nbytes <= self.limit_bytes:
            image.flags.writeable = False
            self._images[key] = image
            self.bytes += image.nbytes
        return image


def read_with(cache: ImageCache | None, path: Path, index: int) -> np.ndarray:
    """A training sample's picture: through `cache` when the dataset has one, else `sample.read_image`."""
    return cache.read(path, index) if cache is not None else read_image(path, index)

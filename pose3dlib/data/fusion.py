"""The epoch mix of 2D-only samples (MPII) and 3D samples (Human3.6M) with a float 3D ratio."""
from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset


def _draw(rng: np.random.Generator, population: int, count: int) -> np.ndarray:
    """`count` indices of range(population): without repeats while possible, then whole new permutations."""
    if count == 0:
        return np.zeros(0, np.int64)
    reps = -(-count // population)  # ceil
    return np.concatenate([rng.permutation(population) for _ in range(reps)])[:count].astype(np.int64)


class FusionDataset(Dataset):
    """An epoch of `samples_2d` (0: all) 2D samples plus round(ratio_3d x that) 3D samples.

    Which rows an epoch holds is a pure function of (seed, epoch); call `set_epoch` before
    each epoch (it is forwarded to both datasets). Index i < n_2d reads ds_2d, the rest ds_3d.
    With `mix_2d=False` the epoch keeps that length but holds no 2D-only sample: n_2d is 0
    and all its rows are drawn from ds_3d (the "3D only" arm of the ablation); ds_2d then
    only sets the length, its samples are never read.
    """

    def __init__(self, ds_2d: Dataset, ds_3d: Dataset | None, ratio_3d: float, samples_2d: int = 0, seed: int = 0,
                 mix_2d: bool = True):
        if ratio_3d < 0:
            raise ValueError(f"ratio_3d must be >= 0, got {ratio_3d}")
        if (ratio_3d > 0 or not mix_2d) and (ds_3d is None or len(ds_3d) == 0):
            raise ValueError("ratio_3d > 0 or mix_2d=False needs a non-empty 3D dataset")
        self.ds_2d, self.ds_3d, self.ratio_3d, self.seed = ds_2d, ds_3d, float(ratio_3d), int(seed)
        self.n_2d = int(samples_2d) if samples_2d > 0 else len(ds_2d)
        self.n_3d = round(self.ratio_3d * self.n_2d)
        if not mix_2d:  # the 2D-only share of the epoch becomes 3D samples
            self.n_2d, self.n_3d = 0, self.n_2d + self.n_3d
        self.mix_2d = bool(mix_2d)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        for ds in (self.ds_2d, self.ds_3d):
            if ds is not None and hasattr(ds, "set_epoch"):
                ds.set_epoch(epoch)
        full = self.n_2d == len(self.ds_2d)
        self.rows_2d = np.arange(self.n_2d) if full else _draw(
            np.random.default_rng([self.seed, self.epoch, 0]), len(self.ds_2d), self.n_2d)
        self.rows_3d = _draw(np.random.default_rng([self.seed, self.epoch, 1]), len(self.ds_3d), self.n_3d) \
            if self.n_3d else np.zeros(0, np.int64)

    def __len__(self) -> int:
        return self.n_2d + self.n_3d

    def __getitem__(self, i: int) -> dict:
        i = int(i)
        if i < 0 or i >= len(self):
            raise IndexError(f"FusionDataset index {i} out of range ({len(self)})")
        if i < self.n_2d:
            return self.ds_2d[int(self.rows_2d[i])]
        return self.ds_3d[int(self.rows_3d[i - self.n_2d])]

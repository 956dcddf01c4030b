"""Decoded training pictures kept between epochs: the same samples and weights, one decode per picture, a limit."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pose3dlib.config import load_config
from pose3dlib.data import image_cache
from pose3dlib.data.h36m import H36MDataset
from pose3dlib.data.image_cache import ImageCache
from pose3dlib.data.mpii import MPIIDataset
from pose3dlib.engine.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def data_cfg(smoke_data):
    """The smoke profile's data section, pointing at the session's smoke-size synthetic sets."""
    return load_config("configs/smoke.yaml", smoke_data).data


@pytest.fixture
def decodes(monkeypatch):
    """Count the decodes the cache asks for, by path."""
    real, counts = image_cache.read_image, {}

    def counted(path, index):
        counts[str(path)] = counts.get(str(path), 0) + 1
        return real(path, index)

    monkeypatch.setattr(image_cache, "read_image", counted)
    return counts


def _datasets(d):
    return [MPIIDataset(d.mpii_dir, "train", d, augment=True, seed=3, loose_crop_prob=0.5),
            H36MDataset(d.h36m_dir, "train", d, augment=True, seed=3)]


def _epochs(ds, epochs=2):
    out = []
    for e in range(epochs):
        ds.set_epoch(e)
        out += [ds[i] for i in range(len(ds))]
    return out


def test_cached_datasets_give_the_same_samples_and_decode_each_picture_once(data_cfg, decodes):
    for plain, cached in zip(_datasets(data_cfg), _datasets(data_cfg)):
        decodes.clear()
        cached.image_cache = ImageCache(64)
        want = _epochs(plain)
        assert set(decodes.values()) == {2}  # without a cache: a decode per epoch
        decodes.clear()
        got = _epochs(cached)
        assert len(want) == len(got) == 2 * len(plain)
        for a, b in zip(want, got):
            assert a.keys() == b.keys()
            for k in a:
                assert np.array_equal(a[k], b[k]) and a[k].dtype == b[k].dtype, k
        pictures = {str(cached.image_path(i)) for i in range(len(cached))}
        assert len(cached.image_cache) == len(pictures) and set(decodes) >= pictures
        assert all(decodes[p] == 1 for p in pictures), decodes  # two epochs, one decode each


def test_a_kept_picture_is_read_only_and_the_limit_holds(data_cfg, decodes):
    ds = MPIIDataset(data_cfg.mpii_dir, "train", data_cfg)
    paths = [ds.image_path(i) for i in range(3)]
    one = image_cache.read_image(paths[0], 0).nbytes
    decodes.clear()
    cache = ImageCache(1)  # 1 MiB
    cache.limit_bytes = 2 * one  # room for two of the three pictures
    first = [cache.read(p, i) for i, p in enumerate(paths)]
    again = [cache.read(p, i) for i, p in enumerate(paths)]
    assert again[0] is first[0] and again[1] is first[1] and again[2] is not first[2]
    assert np.array_equal(again[2], first[2])
    assert [decodes[str(p)] for p in paths] == [1, 1, 2]  # the one that did not fit is decoded at every read
    assert len(cache) == 2 and cache.bytes == 2 * one <= cache.limit_bytes
    with pytest.raises(ValueError, match="read-only"):
        first[0][0, 0, 0] = 1  # a change in place would alter every later epoch's sample
    assert first[2].flags.writeable  # not kept: the caller's own array


def test_a_missing_picture_is_named_and_not_kept(tmp_path):
    cache = ImageCache(8)
    with pytest.raises(DataError, match="sample 5.*nothing.jpg"):
        cache.read(tmp_path / "nothing.jpg", 5)
    assert len(cache) == 0 and cache.bytes == 0
    with pytest.raises(ValueError, match="positive"):
        ImageCache(0)


def test_the_config_refuses_a_cache_beside_worker_processes():
    with pytest.raises(ConfigError, match=r"data\.image_cache_mb.*num_workers=2"):
        load_config("configs/smoke.yaml", ["data.image_cache_mb=64", "data.num_workers=2"])
    assert load_config("configs/smoke.yaml", ["data.image_cache_mb=64"]).data.image_cache_mb == 64


def test_the_cache_changes_no_weight_and_no_training_difference(tmp_path, smoke_data, decodes):
    from pose3dlib.config import config_to_dict
    from pose3dlib.engine import train as train_module
    from pose3dlib.engine.distributed import state_digest
    from pose3dlib.engine.runs import training_differences

    digests, caches, reads = {}, {}, {}
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        for mb in (0, 64):
            cfg = load_config("configs/smoke.yaml", [*smoke_data, "train.stage1.epochs=2", f"data.image_cache_mb={mb}"])
            train_ds = train_module.build_datasets(cfg, 1, cfg.train.stage1)[0]
            caches[mb] = (train_ds.ds_2d.image_cache, train_ds.ds_3d.image_cache)
            pictures = {str(train_ds.ds_2d.image_path(i)) for i in range(len(train_ds.ds_2d))}
            decodes.clear()
            train_module.fit(cfg, 1, tmp_path / f"run{mb}")
            reads[mb] = {decodes.get(p, 0) for p in pictures}  # the training pictures' decodes in the stage
            ckpt = torch.load(tmp_path / f"run{mb}" / "stage1" / "last.pt", map_location="cpu", weights_only=False)
            digests[mb] = state_digest(ckpt["model"])
    finally:
        torch.set_num_threads(threads)
    assert caches[0] == (None, None)
    assert isinstance(caches[64][0], ImageCache) and caches[64][0] is caches[64][1]  # one limit for both sets
    assert reads == {0: {2}, 64: {1}}  # two epochs: decoded in each, or once
    assert digests[0] == digests[64]
    stored = config_to_dict(load_config("configs/smoke.yaml"))
    assert training_differences(stored, load_config("configs/smoke.yaml", ["data.image_cache_mb=64"])) == []


def test_a_one_epoch_stage_and_the_bench_keep_no_pictures(smoke_data):
    from pose3dlib.engine import train as train_module
    from pose3dlib.tools.bench import measure

    cfg = load_config("configs/smoke.yaml", [*smoke_data, "data.image_cache_mb=64", "train.stage1.epochs=1"])
    assert train_module.build_datasets(cfg, 1, cfg.train.stage1)[0].ds_2d.image_cache is None
    two = load_config("configs/smoke.yaml", [*smoke_data, "data.image_cache_mb=64", "train.stage1.epochs=2",
                                             "train.stage3.epochs=2"])
    assert train_module.build_datasets(two, 1, two.train.stage1)[0].ds_2d.image_cache is not None
    bench = measure.train_dataset(two)  # times a new sample's cost; its loaders may have workers
    assert bench.ds_2d.image_cache is None and bench.ds_3d.image_cache is None

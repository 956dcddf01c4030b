"""Original hg3d checkpoints: both fixture formats, the key map, Python-2 pickles, refusing unsafe pickles."""
from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch

from pose3dlib.config import ModelConfig
from pose3dlib.engine.errors import CheckpointError
from pose3dlib.engine.paths import PROJECT_ROOT
from pose3dlib.model import build_model, load_model
from pose3dlib.original import compat

torch.set_num_threads(1)
FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures"
FIXTURE_FILES = ["hg3d_tiny_state_dict.pt", "hg3d_tiny_model_legacy.pth"]
# every fixture file the tests read: a partial ../shared skips them all, instead of erroring
needs_fixtures = pytest.mark.skipif(
    not all((FIXTURES / f).is_file() for f in ["hg3d_tiny_io.pt", "hg3d_full_keys.txt", *FIXTURE_FILES]),
    reason=f"fixtures of the original release not (all) found at {FIXTURES}")
TOLERANCE = 1e-5  # outputs within 1e-5 of the original network's


def _assert_matches_reference(model: torch.nn.Module) -> None:
    io = torch.load(FIXTURES / "hg3d_tiny_io.pt", weights_only=True)
    with torch.no_grad():
        out = model(io["input"])
    assert len(out["heatmaps"]) == len(io["heatmaps"])
    for ours, theirs in zip(out["heatmaps"], io["heatmaps"]):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=TOLERANCE)
    torch.testing.assert_close(out["depth"], io["depth"], rtol=0, atol=TOLERANCE)


@needs_fixtures
@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_fixture_loads_and_reproduces_the_original_outputs(name):
    model, cfg = compat.load_hg3d_with_config(FIXTURES / name)
    io_cfg = torch.load(FIXTURES / "hg3d_tiny_io.pt", weights_only=True)["config"]
    assert not model.training
    assert (cfg.model.num_stacks, cfg.model.num_modules, cfg.model.num_features, cfg.model.num_reg_modules,
            cfg.model.num_joints) == (io_cfg["nStack"], io_cfg["nModules"], io_cfg["nFeats"],
                                      io_cfg["nRegModules"], io_cfg["nJoints"])
    assert cfg.model.input_format == "bgr256"
    _assert_matches_reference(model)


@needs_fixtures
def test_legacy_plain_torch_load_fails_but_we_read_the_original_names():
    with pytest.raises(Exception, match="models"):
        torch.load(FIXTURES / "hg3d_tiny_model_legacy.pth", weights_only=False)
    from_legacy = compat.hg3d_state_dict(FIXTURES / "hg3d_tiny_model_legacy.pth")
    reference = torch.load(FIXTURES / "hg3d_tiny_state_dict.pt", weights_only=True)
    assert list(from_legacy) == list(reference)
    assert all(torch.equal(from_legacy[k], reference[k]) for k in reference)


@needs_fixtures
def test_state_dict_without_num_batches_tracked(tmp_path):
    state = torch.load(FIXTURES / "hg3d_tiny_state_dict.pt", weights_only=True)
    old = OrderedDict((k, v) for k, v in state.items() if not k.endswith("num_batches_tracked"))
    assert len(old) < len(state)
    torch.save(old, tmp_path / "old.pth", _use_new_zipfile_serialization=False)  # legacy format, like 0.x
    _assert_matches_reference(compat.load_hg3d(tmp_path / "old.pth"))


@needs_fixtures
def test_key_map_covers_the_full_paper_network():
    lines = [line.split(" ", 1) for line in (FIXTURES / "hg3d_full_keys.txt").read_text().splitlines()
             if line and not line.startswith("#")]
    shapes = {name: tuple(int(n) for n in text.strip("()").split(",") if n.strip()) for name, text in lines}
    key_map = compat.hg3d_key_map(ModelConfig())
    assert set(key_map) == set(shapes)
    ours = build_model(ModelConfig()).state_dict()
    assert set(key_map.values()) == set(ours)
    assert all(tuple(ours[key_map[k]].shape) == shape for k, shape in shapes.items())
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    n_params = sum(torch.Size(s).numel() for k, s in shapes.items() if not k.endswith(buffers))
    assert n_params == 14_429_104


def test_a_data_parallel_state_dict_reads_with_the_original_names(tmp_path):
    cfg = ModelConfig(num_stacks=2, num_modules=1, num_features=32, num_reg_modules=1, num_joints=16)
    model_state = build_model(cfg).state_dict()
    state = {orig: model_state[ours] for orig, ours in compat.hg3d_key_map(cfg).items()}
    torch.save({"module." + k: v for k, v in state.items()}, tmp_path / "wrapped.pth")
    read = compat.hg3d_state_dict(tmp_path / "wrapped.pth")
    assert set(read) == set(state) and all(torch.equal(read[k], state[k]) for k in state)
    assert compat.infer_hg3d_config(read).num_features == 32


def test_inferred_config_of_a_state_dict_with_original_names():
    cfg = ModelConfig(num_stacks=3, num_modules=2, num_features=64, num_reg_modules=2, num_joints=16)
    model_state = build_model(cfg).state_dict()
    state = {orig: model_state[ours] for orig, ours in compat.hg3d_key_map(cfg).items()}
    inferred = compat.infer_hg3d_config(state)
    assert inferred == ModelConfig(num_stacks=3, num_modules=2, num_features=64, num_reg_modules=2,
                                   num_joints=16, input_format="bgr256")
    del state["reg_.3.conv1.weight"]
    with pytest.raises(CheckpointError, match="reg_"):
        compat.convert_hg3d_state_dict(state)


def test_a_tensor_of_the_wrong_shape_is_named_by_its_original_name():
    """Loading is strict; a shape that does not fit is named as the original file names it."""
    cfg = ModelConfig(num_stacks=2, num_modules=1, num_features=32, num_reg_modules=1, num_joints=16)
    model_state = build_model(cfg).state_dict()
    state = {orig: model_state[ours] for orig, ours in compat.hg3d_key_map(cfg).items()}
    state["tmpOut_.0.weight"] = torch.zeros(32, 17, 1, 1)  # remaps 17 heatmaps where the network has 16
    with pytest.raises(CheckpointError, match=r"wrapped\.pth: tmpOut_\.0\.weight has shape \(32, 17, 1, 1\), "
                                              r"expected \(32, 16, 1, 1\)"):
        compat.convert_hg3d_state_dict(state, "wrapped.pth")


def test_a_network_pose3d_cannot_build_is_refused_before_anything_is_written(tmp_path):
    """A 17-joint variant: refused with the config check's reason, and convert_hg3d writes no file."""
    cfg = ModelConfig(num_stacks=2, num_modules=1, num_features=32, num_reg_modules=1, num_joints=17)
    model_state = build_model(cfg).state_dict()
    state = {orig: model_state[ours] for orig, ours in compat.hg3d_key_map(cfg).items()}
    torch.save(state, tmp_path / "j17.pth")
    with pytest.raises(CheckpointError, match=r"j17\.pth: an hg3d network pose3d cannot build \(.*num_joints"):
        compat.convert_hg3d(tmp_path / "j17.pth", tmp_path / "j17.pt")
    assert not (tmp_path / "j17.pt").exists()


def test_legacy_reader_handles_shared_storages_and_offsets(tmp_path):
    base = torch.arange(20, dtype=torch.float32)
    obj = OrderedDict(a=base[2:8].view(2, 3), b=base[10:].view(5, 2).t(), c=torch.arange(3), d=base)
    torch.save(obj, tmp_path / "x.pth", _use_new_zipfile_serialization=False)
    loaded = compat.read_legacy(tmp_path / "x.pth")
    assert list(loaded) == list(obj)
    assert all(torch.equal(loaded[k], obj[k]) and loaded[k].dtype == obj[k].dtype for k in obj)


def _py2_legacy_file(path, values: list[float]) -> None:
    """A legacy file as PyTorch 0.1.12 under Python 2 wrote it: byte strings, CUDA storage, _rebuild_tensor."""
    def s(text: bytes) -> bytes:  # SHORT_BINSTRING: a Python-2 str
        return b"U" + bytes([len(text)]) + text

    obj = (b"\x80\x02}(" + s(b"note") + s(b"caf\xe9")  # a non-ASCII byte string (UnicodeDecodeError in py3)
           + s(b"state_dict") + b"ccollections\nOrderedDict\n)R(" + s(b"w")
           + b"ctorch._utils\n_rebuild_tensor\n("
           + b"(" + s(b"storage") + b"ctorch.cuda\nFloatStorage\n" + s(b"140021") + s(b"cuda:0")
           + b"K" + bytes([len(values)]) + b"NtQ"  # persistent id ('storage', type, key, location, size, None)
           + b"K\x00K\x02K\x02\x86K\x02K\x01\x86tR"  # (offset 0, size (2, 2), stride (2, 1))
           + b"uu.")
    keys = b"\x80\x02](" + s(b"140021") + b"e."  # [key]
    sys_info = pickle.dumps({"protocol_version": 1001, "little_endian": True,
                             "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2)
    with open(path, "wb") as f:
        f.write(pickle.dumps(compat.LEGACY_MAGIC_NUMBER, protocol=2) + pickle.dumps(1001, protocol=2) + sys_info)
        f.write(obj + keys + struct.pack("<q", len(values)) + struct.pack(f"<{len(values)}f", *values))


def test_python2_pickle_with_cuda_storage_and_latin1_strings(tmp_path):
    _py2_legacy_file(tmp_path / "py2.pth", [1.0, 2.0, 3.0, 4.0])
    loaded = compat.read_legacy(tmp_path / "py2.pth")
    assert loaded["note"] == "caf\xe9"
    assert torch.equal(loaded["state_dict"]["w"], torch.tensor([[1.0, 2.0], [3.0, 4.0]]))


def test_truncated_legacy_file_is_a_clear_error(tmp_path):
    _py2_legacy_file(tmp_path / "py2.pth", [1.0, 2.0, 3.0, 4.0])
    data = (tmp_path / "py2.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[:-6])
    with pytest.raises(CheckpointError, match="truncated"):
        compat.read_legacy(tmp_path / "cut.pth")


class _Evil:
    """Unpickling this would run a shell command that creates a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_files(tmp_path):
    marker = tmp_path / "pwned"
    evil = _Evil(marker)
    paths = {"legacy": tmp_path / "evil_legacy.pth", "zip": tmp_path / "evil_zip.pth",
             "bare": tmp_path / "evil_bare.pkl", "nested": tmp_path / "evil_nested.pth"}
    torch.save({"state_dict": OrderedDict(w=torch.zeros(2)), "x": evil}, paths["nested"],
               _use_new_zipfile_serialization=False)
    torch.save(evil, paths["legacy"], _use_new_zipfile_serialization=False)
    torch.save(evil, paths["zip"])
    paths["bare"].write_bytes(pickle.dumps(evil, protocol=2))  # in the magic-number position
    return marker, paths


def test_malicious_pickles_are_refused_and_nothing_runs(tmp_path):
    marker, paths = _evil_files(tmp_path)
    for path in paths.values():
        with pytest.raises(CheckpointError, match=r"refused to unpickle (posix|nt|os)\.system"):
            compat.load_hg3d(path)
    assert not marker.exists()


def _convert(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pose3dlib", "convert-hg3d", *args], cwd=PROJECT_ROOT,
                          check=False, capture_output=True, text=True, timeout=120)


def test_convert_command_refuses_a_malicious_pickle(tmp_path):
    marker, paths = _evil_files(tmp_path)
    result = _convert(str(paths["legacy"]), str(tmp_path / "out.pt"))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "refused" in lines[0]
    assert not marker.exists() and not (tmp_path / "out.pt").exists()


@needs_fixtures
def test_convert_command_writes_a_checkpoint_that_load_model_accepts(tmp_path):
    out = tmp_path / "converted.pt"
    result = _convert(str(FIXTURES / "hg3d_tiny_model_legacy.pth"), str(out))
    assert result.returncode == 0, result.stderr
    assert "input_format bgr256" in result.stdout
    model, cfg = load_model(out)
    assert cfg.model.input_format == "bgr256" and cfg.model.num_features == 32
    _assert_matches_reference(model)
    again = _convert(str(FIXTURES / "hg3d_tiny_state_dict.pt"), str(out))  # no silent overwrite
    assert again.returncode == 2 and "--force" in again.stderr


@needs_fixtures
def test_demo_command_accepts_a_converted_checkpoint(tmp_path):
    import cv2
    import numpy as np

    converted = compat.convert_hg3d(FIXTURES / "hg3d_tiny_state_dict.pt", tmp_path / "hg3d.pt")
    image = (np.random.default_rng(0).random((240, 180, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "person.jpg"), image)
    result = subprocess.run([sys.executable, "-m", "pose3dlib", "demo", str(tmp_path / "person.jpg"),
                             "--checkpoint", str(converted), "--out", str(tmp_path / "out"), "--device", "cpu",
                             "--whole-image"],  # the checkpoint is the point here, not the person search
                            cwd=PROJECT_ROOT, check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert any((tmp_path / "out").iterdir())


@needs_fixtures
def test_folders_and_a_truncated_zip_checkpoint_get_messages_that_say_so(tmp_path):
    """Before: a folder as INPUT was 'checkpoint not found', a folder as OUTPUT 'exists; pass --force' (and
    then 'Is a directory'), and a zip checkpoint cut short an UnpicklingError about persistent IDs."""
    from pose3dlib.tools.cli import main

    with pytest.raises(CheckpointError, match="is a folder, where a checkpoint file is needed"):
        compat.read_torch_file(tmp_path)
    cut = tmp_path / "cut.pt"
    data = (FIXTURES / "hg3d_tiny_state_dict.pt").read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="a zip archive .* that cannot be read: truncated or corrupt"):
        compat.read_torch_file(cut)
    (tmp_path / "out").mkdir()
    assert main(["convert-hg3d", str(FIXTURES / "hg3d_tiny_state_dict.pt"), str(tmp_path / "out"), "--force"]) == 2
    assert list((tmp_path / "out").iterdir()) == []

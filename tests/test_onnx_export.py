"""ONNX export: onnxruntime and PyTorch agree within 1e-4 at several batch sizes and input sizes."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from pose3dlib.config import config_to_dict, load_config
from pose3dlib.engine.checkpoint import make_checkpoint, save_checkpoint
from pose3dlib.inference.onnx_export import export_onnx, onnx_session, run_onnx
from pose3dlib.model import build_model, load_model


@pytest.fixture(scope="module", params=["smoke", "shallow"])
def checkpoint(tmp_path_factory, request):
    # "shallow": depth-2 hourglasses and a two-level depth head (its grid is S/16, not S/64).
    layout = [] if request.param == "smoke" else ["model.hourglass_depth=2", "model.depth_head_levels=2"]
    cfg = load_config("configs/smoke.yaml", layout)
    torch.manual_seed(0)
    model = build_model(cfg.model)
    with torch.no_grad():  # non-trivial batch-norm statistics, as after training
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp("ckpt") / "stage3.pt"
    save_checkpoint(path, make_checkpoint(model_state=model.state_dict(), config=config_to_dict(cfg), stage=3,
                                          extra={"finished": True}))
    return path


def test_onnxruntime_matches_pytorch(checkpoint, tmp_path):
    path = export_onnx(checkpoint, tmp_path / "net.onnx")
    model, _ = load_model(checkpoint)
    session = onnx_session(path)
    rng = np.random.default_rng(0)
    for batch, side in [(1, 64), (3, 128), (2, 192)]:  # dynamic batch, any multiple of 64
        x = rng.random((batch, 3, side, side), dtype=np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x))
        got = run_onnx(session, x)
        assert got["heatmaps"].shape == (batch, 16, side // 4, side // 4)
        np.testing.assert_allclose(got["heatmaps"], ref["heatmaps"][-1].numpy(), atol=1e-4, rtol=0)
        np.testing.assert_allclose(got["depth"], ref["depth"].numpy(), atol=1e-4, rtol=0)
        assert np.abs(ref["depth"].numpy()).max() > 1e-3  # compared something non-trivial


def test_heatmap_sides_have_their_own_symbolic_name(checkpoint, tmp_path, monkeypatch):
    """The heatmaps are a quarter of the input side: one shared name would claim they are equal. (Written
    through a relative path, which a library call reads from the current folder, as `open` does.)"""
    import onnx

    monkeypatch.chdir(tmp_path)
    written = export_onnx(checkpoint, "net.onnx")
    assert written == tmp_path / "net.onnx" and written.is_file()
    graph = onnx.load(str(written)).graph
    dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in (*graph.input, *graph.output)}
    assert dims["heatmaps"][2:] == ["heatmap_side", "heatmap_side"]
    assert dims[graph.input[0].name][2:] == ["side", "side"]


def test_the_file_says_how_to_feed_it_and_how_to_read_it(checkpoint, tmp_path):
    """The exported file carries its input convention, mm scale and joint order: a converted hg3d
    network (BGR / 256) fed like a pose3d one (RGB / 255) would give wrong poses without an error."""
    from pose3dlib.engine.checkpoint import load_checkpoint
    from pose3dlib.inference.onnx_export import METADATA, onnx_metadata
    from pose3dlib.skeleton import MPII16

    ckpt = load_checkpoint(checkpoint)
    meta = onnx_metadata(export_onnx(checkpoint, tmp_path / "plain.onnx"))
    assert meta["pose3d.input_format"] == "rgb" and meta["pose3d.preprocess"].startswith("RGB channel order, uint8 values / 255")
    assert meta["pose3d.input_size"] == str(ckpt["config"]["data"]["input_size"])
    assert meta["pose3d.joints"].split(",") == list(MPII16.joint_names) and meta["pose3d.heatmap_stride"] == "4"
    assert "pose3d.bone_sum_mm" not in meta  # this checkpoint stores no mm scale: none is made up

    ckpt["config"]["model"]["input_format"] = "bgr256"
    ckpt["bone_sum_mm"] = 4296.99
    save_checkpoint(tmp_path / "bgr.pt", ckpt)
    path = export_onnx(tmp_path / "bgr.pt", tmp_path / "bgr.onnx")
    meta = onnx_metadata(path)
    assert set(meta) == set(METADATA)
    assert meta["pose3d.input_format"] == "bgr256" and meta["pose3d.preprocess"].startswith("BGR channel order, uint8 values / 256")
    assert float(meta["pose3d.bone_sum_mm"]) == 4296.99
    assert onnx_session(path).get_modelmeta().custom_metadata_map == meta  # what onnxruntime users read
    assert meta["pose3d.depth"].startswith("relative to joint 6 (pelvis)")  # trained by pose3d: its root
    ckpt["extra"] = {**ckpt.get("extra", {}), "converter": "pose3dlib.original.compat"}  # as convert-hg3d writes it
    save_checkpoint(tmp_path / "converted.pt", ckpt)
    converted = onnx_metadata(export_onnx(tmp_path / "converted.pt", tmp_path / "converted.onnx"))
    assert converted["pose3d.depth"].startswith("relative to joint 7 (thorax, the original release's training root)")


def test_export_onnx_command(checkpoint, tmp_path):
    out = tmp_path / "cli.onnx"
    r = subprocess.run([sys.executable, "-m", "pose3dlib", "export-onnx", str(checkpoint), str(out)],
                       check=False, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 10_000 and "dynamic" not in r.stderr.lower()
    bad = subprocess.run([sys.executable, "-m", "pose3dlib", "export-onnx", str(checkpoint), str(out), "--input-size", "100"],
                         check=False, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "multiple of 64" in bad.stderr
    for size in ("-64", "0"):  # a traceback (negative) or silently the default (0) before
        from pose3dlib.tools.cli import main

        assert main(["export-onnx", str(checkpoint), str(out), "--input-size", size]) == 2


def test_a_missing_onnx_package_is_one_line_not_a_traceback(monkeypatch):
    """A broken install without onnx ended `export-onnx` in a ModuleNotFoundError traceback."""
    import builtins

    from pose3dlib.engine.errors import Pose3DError
    from pose3dlib.inference import onnx_export

    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx":
            raise ModuleNotFoundError("No module named 'onnx'", name="onnx")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    with pytest.raises(Pose3DError, match=r"^ONNX export needs the onnx package \(missing: 'onnx'\), pinned in pyproject\.toml"):
        onnx_export.onnx_metadata("whatever.onnx")

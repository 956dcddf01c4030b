"""CUDA code paths: checkpoints across devices, NCCL.

The training switches on a CUDA device (SpeedSwitches.for_training) need no GPU: test_bench.py checks them.

Every test here skips without a CUDA device; `make gpu-check` runs this file on a GPU
machine (with test_train.py, whose trainer-step test runs bf16 + channels_last on CUDA there
and fp32 on the CPU everywhere, and test_resume.py, whose smoke runs go to CUDA there).
"""
from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist

from pose3dlib.config import config_to_dict, load_config
from pose3dlib.engine.checkpoint import make_checkpoint, save_checkpoint
from pose3dlib.model import build_model, is_channels_last, load_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")
SMOKE = "configs/smoke.yaml"


def test_a_checkpoint_of_cuda_weights_loads_on_the_cpu_with_the_same_outputs(tmp_path):
    cfg = load_config(SMOKE)
    torch.manual_seed(0)
    model = build_model(cfg.model).to(CUDA).to(memory_format=torch.channels_last).eval()
    x = torch.rand(2, 3, cfg.data.input_size, cfg.data.input_size)
    with torch.no_grad():
        ref = model(x.to(CUDA).contiguous(memory_format=torch.channels_last))["depth"].cpu()
    path = save_checkpoint(tmp_path / "cuda.pt", make_checkpoint(model_state=model.state_dict(),
                                                                config=config_to_dict(cfg)))
    loaded, _ = load_model(path, map_location="cpu")
    assert is_channels_last(loaded) and next(loaded.parameters()).device.type == "cpu"
    with torch.no_grad():
        out = loaded(x.contiguous(memory_format=torch.channels_last))["depth"]
    torch.testing.assert_close(out, ref, rtol=1e-3, atol=1e-3)  # cuDNN and oneDNN sum in other orders


@pytest.mark.skipif(not dist.is_available() or not dist.is_nccl_available(), reason="torch built without NCCL")
def test_nccl_all_reduce_in_one_process():
    with socket.socket() as s:  # a free local port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.cuda.set_device(0)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        t = torch.arange(4.0, device=CUDA)
        dist.all_reduce(t)
        assert t.tolist() == [0.0, 1.0, 2.0, 3.0]
    finally:
        dist.destroy_process_group()

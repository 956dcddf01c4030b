"""Forward FLOPs of a network, counted from its Conv2d and Linear layers.

Convention (the one behind the paper network's "about 32.3 GFLOPs"): a multiply-add is
2 FLOPs; only convolutions and linear layers are counted (bias adds, batch norm, ReLU,
pooling, upsampling and the residual additions are ignored: < 1 % at 256 px). A training
step (forward, backward for activations and for weights) is taken as 3 x the forward.
"""
from __future__ import annotations

import torch
from torch import nn

from ...config import ModelConfig
from ...model import build_model

TRAIN_FLOPS_PER_FORWARD = 3  # forward + grad wrt activations + grad wrt weights


def layer_flops(module: nn.Module, output: torch.Tensor) -> int:
    """FLOPs (2 x multiply-adds) of one Conv2d or Linear call that produced `output`; 0 for other layers.

    Conv2d: 2 * numel(output) * (C_in / groups) * k_h * k_w; Linear: 2 * numel(output) * in_features.
    """
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return 2 * output.numel() * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return 2 * output.numel() * module.in_features
    return 0


def count_forward_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass of `model` on a zero input of `input_shape`, e.g. (1, 3, 256, 256).

    Runs the forward in eval mode under no_grad on the model's device (a model on the
    "meta" device costs nothing) and restores the training flag. Counts every call, so a
    layer used twice counts twice.
    """
    total = 0

    def hook(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += layer_flops(module, output)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    device = next(model.parameters()).device
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(input_shape, device=device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total


def model_forward_flops(model_cfg: ModelConfig, input_size: int) -> int:
    """Forward FLOPs per image of HourglassNet3D(model_cfg) at `input_size` px (built on the meta device)."""
    with torch.device("meta"):
        model = build_model(model_cfg)
    return count_forward_flops(model, (1, 3, input_size, input_size))

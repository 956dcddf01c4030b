"""Choosing the torch device from a config value: the one place 'auto' is interpreted."""
from __future__ import annotations

import torch

from .errors import ConfigError


def resolve_device(name: str = "auto", key: str = "train.device") -> torch.device:
    """'auto' -> CUDA if available, else CPU; otherwise the named device, checked.

    `key` names the config key or option the value came from, for the error message.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{key}: {name!r} is not a device (auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key} is {name!r} but CUDA is not available; use 'auto' or 'cpu'")
    return device

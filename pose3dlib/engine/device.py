"""Choosing the torch device from a config value, what the CPU can do natively, and thread counts."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

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
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"{key}: {name!r}: pose3d runs on the CPU or CUDA only (auto, cpu, cuda, cuda:N)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key} is {name!r} but CUDA is not available; use 'auto' or 'cpu'")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise ConfigError(f"{key} is {name!r} but this machine has {count} CUDA device{'s' if count != 1 else ''} "
                          f"(cuda:0{f' to cuda:{count - 1}' if count > 1 else ''})")
    return device


# CPU flags (as Linux lists them in /proc/cpuinfo) that give native bf16 matrix arithmetic.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")


def cpuinfo_field(text: str, key: str) -> str | None:
    """The value of the first `key : value` line of a /proc/cpuinfo text, or None."""
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() == key:
            return value.strip()
    return None


def read_cpuinfo(path: Path = CPUINFO) -> str:
    """The text of /proc/cpuinfo, or "" where it cannot be read (not Linux)."""
    try:
        return path.read_text()
    except OSError:
        return ""


def native_bf16_in_cpuinfo(text: str) -> bool:
    """True when a /proc/cpuinfo text lists one of NATIVE_BF16_FLAGS on its `flags` line."""
    return bool(set((cpuinfo_field(text, "flags") or "").split()) & set(NATIVE_BF16_FLAGS))


def cpu_has_native_bf16(cpuinfo: Path = CPUINFO) -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX).

    Without them oneDNN emulates bf16 and autocast is slower than float32: on a 2-core
    AVX-512 Xeon without AVX512-BF16 the cpu-profile training step ran at 53 img/s in bf16
    against 83 in float32 (docs/benchmarks.md). Where /proc/cpuinfo cannot be read (not
    Linux) the answer is False, so "auto" keeps float32.
    """
    return native_bf16_in_cpuinfo(read_cpuinfo(cpuinfo))


def cpu_bf16(setting: bool | str) -> bool:
    """train.bf16_on_cpu -> whether CPU training uses bf16 autocast: True, False, or "auto" (native bf16 only)."""
    if setting == "auto":
        return cpu_has_native_bf16()
    return bool(setting)


@contextlib.contextmanager
def opencv_threads(n: int) -> Iterator[None]:
    """OpenCV's thread count set to `n` meanwhile, and given back after (the caller's own setting)."""
    import cv2

    threads = cv2.getNumThreads()
    cv2.setNumThreads(n)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)


def training_bf16(train_cfg, device: torch.device) -> bool:
    """Whether training on `device` runs in bf16 autocast: on CUDA when train.bf16, on CPU only when
    train.bf16_on_cpu says so as well (`cpu_bf16`)."""
    return bool(train_cfg.bf16) and (device.type == "cuda" or (device.type == "cpu" and cpu_bf16(train_cfg.bf16_on_cpu)))


def training_precision(train_cfg, device: torch.device) -> dict:
    """What a checkpoint records of how its steps ran, and --resume must continue with: the device kind
    and whether in bf16 (`training_bf16`)."""
    return {"device": device.type, "bf16": training_bf16(train_cfg, device)}

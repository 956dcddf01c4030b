"""HourglassNet3D: a stacked hourglass with a depth-regression head (Zhou et al., ICCV 2017).

    model = build_model(ModelConfig())          # the paper's network, 14,429,104 parameters
    x = preprocess(images_uint8, cfg.model.input_format)   # (B, 3, S, S) float
    out = model(x)   # {"heatmaps": [(B, 16, S/4, S/4)] * num_stacks, "depth": (B, 16)}

Layout (docs/paper.md, "Network"): a stem that brings the image to S/4, `num_stacks`
hourglasses of recursion depth 4 each followed by a head that predicts heatmaps and feeds
features and heatmaps back into the running features, then a depth head of 4 x
(residuals + max-pool) and a Linear layer on the flattened 4 x 4 grid.

`model.hourglass_depth` and `model.depth_head_levels` (both 4, the paper's, unless a profile
says otherwise; 1..4) set the hourglasses' recursion depth and the depth head's levels;
`model.stem_res_channels` (the paper's 128) the channels of the stem's first two residuals.

Input sizes: any S that is a multiple of 64 works. After the depth head's four
poolings the grid is (S/64, S/64) (S/4 / 2^levels in general); it is brought to the paper's 4 x 4 grid with adaptive
average pooling (an identity at S = 256, so the paper network is unchanged; at S = 128
or 64 each cell is repeated, at 512 cells are averaged). The parameter count therefore
does not depend on S and a checkpoint runs at any input size.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .config import INPUT_SIZE_MULTIPLE, MAX_LAYOUT_LEVELS, Config, ModelConfig, config_from_dict, migrate_config_dict
from .engine.errors import CheckpointError, ConfigError, DataError

# The paper's layout (docs/paper.md, "Network"), which ModelConfig's defaults hold; the original release's
# converter reads these two.
HOURGLASS_DEPTH = ModelConfig().hourglass_depth  # recursion levels of each hourglass
DEPTH_HEAD_LEVELS = ModelConfig().depth_head_levels  # (residuals + max-pool) levels of the depth head
DEPTH_GRID = 4  # side of the grid the depth head's Linear reads (4 x 4 at 256 px input)
STEM_CHANNELS = 64  # output of the 7x7 stem convolution
INPUT_MULTIPLE = INPUT_SIZE_MULTIPLE  # the stem (/4) and the hourglass (/16) need S divisible by 64 (config checks it too)

# input_format -> (reverse channel order?, divisor). "rgb": ours; "bgr256": original release.
INPUT_FORMATS: dict[str, tuple[bool, float]] = {
    "rgb": (False, 255.0),
    "bgr256": (True, 256.0),
}


def preprocess(images: torch.Tensor, input_format: str) -> torch.Tensor:
    """Turn a uint8 RGB batch into the network's float input, on the images' device.

    Args:
        images: uint8 (B, 3, S, S), RGB channel order.
        input_format: "rgb" -> RGB / 255 (ours); "bgr256" -> BGR / 256, no mean or std
            (the original release, which fed OpenCV images divided by 256).
    Returns:
        float32 (B, 3, S, S), same device and memory format as `images`.
    """
    if input_format not in INPUT_FORMATS:
        raise ConfigError(
            f"model.input_format: unknown value {input_format!r}; expected one of {sorted(INPUT_FORMATS)}"
        )
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise DataError(
            f"preprocess expects uint8 images of shape (B, 3, S, S), got {images.dtype} {tuple(images.shape)}"
        )
    flip_channels, divisor = INPUT_FORMATS[input_format]
    if flip_channels:
        images = images.flip(1)  # RGB -> BGR
    return images.float() / divisor


class Residual(nn.Module):
    """Pre-activation bottleneck: BN-ReLU-1x1(C/2)-BN-ReLU-3x3(C/2)-BN-ReLU-1x1(C), plus a skip.

    The skip is the identity when in_channels == out_channels, else a 1x1 convolution of
    the (un-normalised) input. Spatial size is preserved.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid = out_channels // 2
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, mid, kernel_size=1)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, kernel_size=3, padding=1)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_channels, kernel_size=1)
        self.skip = nn.Conv2d(in_channels, out_channels, kernel_size=1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, Cin, H, W) -> (B, Cout, H, W)
        """The bottleneck branch plus the (projected) input."""
        y = self.conv1(F.relu(self.bn1(x), inplace=True))  # (B, C/2, H, W)
        y = self.conv2(F.relu(self.bn2(y), inplace=True))  # (B, C/2, H, W)
        y = self.conv3(F.relu(self.bn3(y), inplace=True))  # (B, Cout, H, W)
        return y + (x if self.skip is None else self.skip(x))


def residuals(channels: int, count: int) -> nn.Sequential:
    """`count` Residual(channels -> channels) blocks in sequence."""
    return nn.Sequential(*[Residual(channels, channels) for _ in range(count)])


class Hourglass(nn.Module):
    """One hourglass level (recursive): out = skip(x) + upsample2(up(inner(down(pool(x))))).

    `skip` keeps the resolution; `down` runs at half resolution before the inner level
    (another Hourglass, or residuals at the bottom); `up` runs after it. Channels constant.
    """

    def __init__(self, depth: int, channels: int, num_modules: int) -> None:
        super().__init__()
        self.skip = residuals(channels, num_modules)
        self.down = residuals(channels, num_modules)
        self.inner = Hourglass(depth - 1, channels, num_modules) if depth > 1 else residuals(channels, num_modules)
        self.up = residuals(channels, num_modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, H, W)
        """The skip branch at this resolution plus the upsampled result of the level below."""
        low = self.up(self.inner(self.down(F.max_pool2d(x, 2))))  # (B, C, H/2, W/2)
        return self.skip(x) + F.interpolate(low, scale_factor=2, mode="nearest")


class Stem(nn.Module):
    """Image to hourglass features: conv7x7/2-BN-ReLU, Residual(64->R), pool/2, Residual(R->R), Residual(R->F).

    R is `res_channels` (the paper's 128).
    """

    def __init__(self, num_features: int, res_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, STEM_CHANNELS, kernel_size=7, stride=2, padding=3)
        self.bn = nn.BatchNorm2d(STEM_CHANNELS)
        self.res1 = Residual(STEM_CHANNELS, res_channels)
        self.res2 = Residual(res_channels, res_channels)
        self.res3 = Residual(res_channels, num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, S, S) -> (B, F, S/4, S/4)
        """The image at a quarter of its resolution, with the hourglass's feature count."""
        x = self.res1(F.relu(self.bn(self.conv(x)), inplace=True))  # (B, R, S/2, S/2)
        return self.res3(self.res2(F.max_pool2d(x, 2)))


class Stack(nn.Module):
    """One hourglass and its head: heatmaps, plus features and heatmaps mapped back to F channels."""

    def __init__(self, num_features: int, num_modules: int, num_joints: int, depth: int) -> None:
        super().__init__()
        self.hourglass = Hourglass(depth, num_features, num_modules)
        self.residuals = residuals(num_features, num_modules)
        self.features = nn.Sequential(
            nn.Conv2d(num_features, num_features, kernel_size=1),
            nn.BatchNorm2d(num_features),
            nn.ReLU(inplace=True),
        )
        self.heatmaps = nn.Conv2d(num_features, num_joints, kernel_size=1)
        self.remap_features = nn.Conv2d(num_features, num_features, kernel_size=1)
        self.remap_heatmaps = nn.Conv2d(num_joints, num_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, F, H, W) running features -> (next running features (B, F, H, W), heatmaps (B, J, H, W))."""
        feats = self.features(self.residuals(self.hourglass(x)))  # (B, F, H, W)
        heatmaps = self.heatmaps(feats)  # (B, J, H, W)
        return x + self.remap_features(feats) + self.remap_heatmaps(heatmaps), heatmaps


class DepthHead(nn.Module):
    """Running features -> per-joint depth: `levels` x (residuals + max-pool/2), 4x4 grid, Linear."""

    def __init__(self, num_features: int, num_reg_modules: int, num_joints: int, levels: int) -> None:
        super().__init__()
        self.levels = nn.Sequential(*[
            nn.Sequential(*[Residual(num_features, num_features) for _ in range(num_reg_modules)],
                          nn.MaxPool2d(2))
            for _ in range(levels)
        ])
        self.linear = nn.Linear(num_features * DEPTH_GRID * DEPTH_GRID, num_joints)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, F, S/4, S/4) -> (B, J)
        """One depth per joint from the final features (pooled down to the linear layer's grid)."""
        x = self.levels(x)  # (B, F, S/(4 * 2^levels), S/(4 * 2^levels)): S/64 with the paper's 4 levels
        if x.shape[-2:] != (DEPTH_GRID, DEPTH_GRID):
            x = F.adaptive_avg_pool2d(x, DEPTH_GRID)  # (B, F, 4, 4); identity at S = 256, so skipped
        return self.linear(torch.flatten(x, 1))  # flatten in (C, H, W) order, like the original


class HourglassNet3D(nn.Module):
    """Stacked hourglass with a depth-regression head; `ModelConfig()` is the paper's network."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        for name in ("num_stacks", "num_modules", "num_features", "num_reg_modules", "num_joints"):
            if getattr(cfg, name) < 1:
                raise ConfigError(f"model.{name} must be >= 1, got {getattr(cfg, name)}")
        for name in ("hourglass_depth", "depth_head_levels"):
            if not 1 <= getattr(cfg, name) <= MAX_LAYOUT_LEVELS:
                raise ConfigError(f"model.{name} must be 1..{MAX_LAYOUT_LEVELS} (inputs are multiples of 64), "
                                  f"got {getattr(cfg, name)}")
        for name in ("num_features", "stem_res_channels"):
            if getattr(cfg, name) % 2:
                raise ConfigError(f"model.{name} must be even (bottleneck uses C/2), got {getattr(cfg, name)}")
        if cfg.input_format not in INPUT_FORMATS:
            raise ConfigError(
                f"model.input_format: unknown value {cfg.input_format!r}; expected one of {sorted(INPUT_FORMATS)}"
            )
        self.cfg = cfg
        self.stem = Stem(cfg.num_features, cfg.stem_res_channels)
        self.stacks = nn.ModuleList([Stack(cfg.num_features, cfg.num_modules, cfg.num_joints, cfg.hourglass_depth)
                                     for _ in range(cfg.num_stacks)])
        self.depth_head = DepthHead(cfg.num_features, cfg.num_reg_modules, cfg.num_joints, cfg.depth_head_levels)

    def forward(self, x: torch.Tensor, depth_grad: bool = True) -> dict[str, Any]:
        """Predict heatmaps and depths.

        Args:
            x: float (B, 3, S, S), S a multiple of 64, as produced by `preprocess`.
            depth_grad: False runs the depth head without autograd (its output then has no
                gradient; BatchNorm statistics update as usual in train mode). For a training
                step whose losses do not read the depth (`train.depth_head_trains`).
        Returns:
            {"heatmaps": list of num_stacks tensors (B, J, S/4, S/4) (the last is the final
            prediction), "depth": (B, J) root-relative depth in normalised units}.
        """
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != x.shape[3] or x.shape[2] % INPUT_MULTIPLE:
            raise DataError(
                f"HourglassNet3D expects input (B, 3, S, S) with S a multiple of {INPUT_MULTIPLE}, "
                f"got {tuple(x.shape)}"
            )
        feats = self.stem(x)  # (B, F, S/4, S/4)
        heatmaps = []
        for stack in self.stacks:
            feats, h = stack(feats)  # (B, F, S/4, S/4), (B, J, S/4, S/4)
            heatmaps.append(h)
        with torch.set_grad_enabled(depth_grad and torch.is_grad_enabled()):
            depth = self.depth_head(feats)  # (B, J)
        return {"heatmaps": heatmaps, "depth": depth}


def build_model(cfg: ModelConfig) -> HourglassNet3D:
    """A freshly initialised HourglassNet3D (PyTorch's default initialisation)."""
    return HourglassNet3D(cfg)


def is_channels_last(model: nn.Module) -> bool:
    """True when the model's first convolution keeps its weight in channels_last (NHWC) memory format.

    Inference (`evaluate.predict`) then feeds it NHWC input too, as training does.
    """
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None or conv.weight.dim() != 4:
        return False
    w = conv.weight
    return w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameter elements (buffers excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def load_model(path_or_checkpoint: str | Path | dict, map_location: str | torch.device = "cpu", *,
               source: str | None = None) -> tuple[HourglassNet3D, Config]:
    """Build the model a pose3d checkpoint describes and load its weights, in eval() mode.

    Args:
        path_or_checkpoint: a checkpoint file (loaded safely with weights_only) or an
            already loaded checkpoint dict (see pose3dlib.engine.checkpoint).
        map_location: device for the weights and the returned model.
        source: how errors name a checkpoint given as a dict (e.g. the file it was read from).
    Returns:
        (model on `map_location` in eval mode, in channels_last memory format when the
        checkpoint's config says train.channels_last, the checkpoint's full Config). The config's
        `train.bone_sum_mm` is the training config's (0: measured on the data when training started);
        the millimetre scale the checkpoint stores is `engine.checkpoint.bone_sum_mm(ckpt)`, which
        `inference.demo.load_demo_model` puts into the config it returns.
    """
    from .engine.checkpoint import load_checkpoint  # checkpoint imports torch.save machinery only when needed

    if isinstance(path_or_checkpoint, dict):
        ckpt, where = path_or_checkpoint, source or "checkpoint dict"
        if "config" not in ckpt or "model" not in ckpt:
            raise CheckpointError(f"{where}: lacks 'config' or 'model' (keys: {sorted(ckpt)})")
    else:
        ckpt, where = load_checkpoint(path_or_checkpoint, map_location=map_location), str(path_or_checkpoint)
    try:
        cfg = config_from_dict(migrate_config_dict(ckpt["config"]))
    except ConfigError as e:
        raise CheckpointError(f"{where}: stored config is invalid: {e}") from None
    model = build_model(cfg.model)
    try:
        result = model.load_state_dict(ckpt["model"], strict=False)
    except RuntimeError as e:  # shape mismatches
        raise CheckpointError(f"{where}: weights do not fit model config {cfg.model}: "
                              f"{' '.join(str(e).split())[:400]}") from None
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{where}: weights do not match model config {cfg.model}: missing {result.missing_keys[:5]}"
            f"{' ...' if len(result.missing_keys) > 5 else ''}, unexpected {result.unexpected_keys[:5]}"
            f"{' ...' if len(result.unexpected_keys) > 5 else ''}"
        )
    model = model.to(map_location)
    if cfg.train.channels_last:  # the memory format training used; 1.3-2.4 x faster CPU inference
        model = model.to(memory_format=torch.channels_last)
    return model.eval(), cfg

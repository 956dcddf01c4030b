"""Export the network to ONNX for deployment: `python -m pose3dlib export-onnx CKPT OUT.onnx`.

The graph is the network as is: input `image`, float32 (B, 3, S, S) already preprocessed
(`model.preprocess` for the checkpoint's `model.input_format`), B dynamic and S any
multiple of 64; outputs `heatmaps` (B, 16, S/4, S/4) of the last stack and `depth`
(B, 16) root-relative depth in normalised units. Decoding (argmax, flip test, 2D + depth ->
mm) stays in pose3dlib.decode. TorchScript-based exporter (dynamo=False, no onnxscript);
the onnx package then writes into the file what a deployment needs to use it right
(`METADATA`, read back with `onnx_metadata`): the input convention, which differs between
pose3d's networks (RGB / 255) and converted hg3d weights (BGR / 256), the millimetre scale
and the joint order.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..engine.atomic_io import atomic_write
from ..engine.checkpoint import bone_sum_mm, checkpoint_caveats, load_checkpoint
from ..engine.errors import CheckpointError, Pose3DError
from ..engine.paths import CommandLinePath, from_current_folder, refuse_overwriting_an_input, resolve
from ..model import DEPTH_GRID, INPUT_FORMATS, INPUT_MULTIPLE, load_model
from ..original.compat import CONVERTER
from ..skeleton import DEPTH_ROOT, MPII16, SPINE_INDEX

OPSET = 17
INPUT_NAME, OUTPUTS = "image", ("heatmaps", "depth")
# Keys of the exported file's metadata (ONNX metadata_props; onnxruntime: get_modelmeta().custom_metadata_map)
METADATA = ("pose3d.input_format", "pose3d.preprocess", "pose3d.input_size", "pose3d.heatmap_stride",
            "pose3d.joints", "pose3d.depth", "pose3d.bone_sum_mm")


def _pooling_matrix(k: torch.Tensor, out: int) -> torch.Tensor:
    """(out, k) matrix whose rows average PyTorch's adaptive-pooling bins [floor(i k/out), ceil((i+1) k/out))."""
    i = torch.arange(out).unsqueeze(1)  # (out, 1)
    j = torch.arange(k).unsqueeze(0)  # (1, k)
    start, end = (i * k) // out, ((i + 1) * k + out - 1) // out
    mask = ((j >= start) & (j < end)).float()  # (out, k)
    return mask / mask.sum(1, keepdim=True)


class _Exportable(torch.nn.Module):
    """The network with its output dict flattened to (last heatmaps, depth).

    The depth head's adaptive average pooling to a 4x4 grid is written as two matrix
    products whose bins follow the input size, because the exporter cannot express
    adaptive pooling of a size it does not know (S/64 x S/64 for an S-pixel input).
    """

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # (B, 3, S, S)
        feats = self.net.stem(x)  # (B, F, S/4, S/4)
        heatmaps = None
        for stack in self.net.stacks:
            feats, heatmaps = stack(feats)  # heatmaps (B, J, S/4, S/4)
        head = self.net.depth_head
        g = head.levels(feats)  # (B, F, S/64, S/64) with the paper's four levels
        pool = _pooling_matrix(torch.tensor(g.shape[-1]), DEPTH_GRID)  # (4, S/64)
        g = pool @ g @ pool.transpose(0, 1)  # (B, F, 4, 4)
        return heatmaps, head.linear(torch.flatten(g, 1))


def metadata(cfg, scale_mm: float | None, depth_root: int = DEPTH_ROOT) -> dict[str, str]:
    """The METADATA an exported network carries (strings, as ONNX stores them); `scale_mm` None
    (a checkpoint without a millimetre scale) leaves pose3d.bone_sum_mm out. `depth_root`: the joint the
    network's depth is relative to (pose3d's DEPTH_ROOT; a converted release model's is SPINE_INDEX)."""
    flip, divisor = INPUT_FORMATS[cfg.model.input_format]
    meta = {
        "pose3d.input_format": cfg.model.input_format,
        "pose3d.preprocess": f"{'BGR' if flip else 'RGB'} channel order, uint8 values / {divisor:g}, no mean or std",
        "pose3d.input_size": str(cfg.data.input_size),  # the side the network was trained at
        "pose3d.heatmap_stride": "4",  # heatmap pixel (u + 0.5) * 4 - 0.5 = input pixel
        "pose3d.joints": ",".join(MPII16.joint_names),
        "pose3d.depth": f"relative to joint {depth_root} ({MPII16.joint_names[depth_root]}"
                        + (", the original release's training root" if depth_root != DEPTH_ROOT else "")
                        + "), normalised units: "
                        "pose3dlib.decode.reconstruct_3d(joints_2d, depth, bone_sum_mm) gives millimetres",
    }
    if scale_mm is not None:
        meta["pose3d.bone_sum_mm"] = repr(float(scale_mm))
    return meta


def _import_onnx():
    """The onnx package, or Pose3DError saying how to get it (a pinned dependency; a broken install lacks it)."""
    try:
        import onnx
    except ModuleNotFoundError as e:
        raise Pose3DError(f"ONNX export needs the onnx package (missing: {e.name!r}), pinned in pyproject.toml: "
                          "`make setup` installs it (or `pip install -e .` in your environment)") from None
    return onnx


def onnx_metadata(path: str | Path) -> dict[str, str]:
    """The pose3d.* metadata of an exported file (empty for a file written by another tool)."""
    onnx = _import_onnx()

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props
            if p.key.startswith("pose3d.")}


def export_onnx(checkpoint: str | Path, out: str | Path, input_size: int | None = None,
                warn: Callable[[str], None] | None = None) -> Path:
    """Write the checkpoint's network as ONNX (dynamic batch and input side) with its METADATA;
    returns the path. Relative paths are read from the current folder, as `open` reads them.
    `warn` receives the checkpoint's caveats (`checkpoint_caveats`: Stage 1, unfinished), if any."""
    import io

    onnx = _import_onnx()
    ckpt = load_checkpoint(from_current_folder(os.fspath(checkpoint)))
    for caveat in checkpoint_caveats(ckpt, str(checkpoint)) if warn is not None else ():
        warn(caveat)
    model, cfg = load_model(ckpt, source=str(checkpoint))
    try:
        scale_mm = bone_sum_mm(ckpt, str(checkpoint))
    except CheckpointError:  # a network without a millimetre scale still exports; the metadata says none
        scale_mm = None
    model = model.to(memory_format=torch.contiguous_format).float().eval()
    if input_size is not None and input_size <= 0:
        raise Pose3DError(f"--input-size {input_size}: expected a positive multiple of {INPUT_MULTIPLE} "
                          "(or no --input-size: the checkpoint's data.input_size)")
    size = cfg.data.input_size if input_size is None else input_size
    if size % INPUT_MULTIPLE:
        raise Pose3DError(f"input size {size} is not a multiple of {INPUT_MULTIPLE}")
    example = torch.zeros(1, 3, size, size)
    out = Path(from_current_folder(os.fspath(out)))
    dims = {0: "batch", 2: "side", 3: "side"}
    heatmap_dims = {0: "batch", 2: "heatmap_side", 3: "heatmap_side"}  # side / 4: its own name, not "side"

    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the tracer warns about g.shape, which the graph does keep symbolic
        warnings.simplefilter("ignore")
        torch.onnx.export(_Exportable(model), (example,), buffer, input_names=[INPUT_NAME], output_names=list(OUTPUTS),
                          dynamic_axes={INPUT_NAME: dims, "heatmaps": heatmap_dims, "depth": {0: "batch"}},
                          opset_version=OPSET, dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    # a converted release model, not trained since, keeps the release's depth root (docs/migrating-from-hg3d.md)
    converted = ckpt.get("extra", {}).get("converter") == CONVERTER
    for key, value in metadata(cfg, scale_mm, SPINE_INDEX if converted else DEPTH_ROOT).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return atomic_write(out, lambda f: f.write(proto.SerializeToString()), binary=True)


def onnx_session(path: str | Path, threads: int = 0):
    """An onnxruntime CPU session for an exported file (threads 0: onnxruntime's default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(session, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run an exported network on a float32 (B, 3, S, S) batch -> {"heatmaps", "depth"}."""
    return dict(zip(OUTPUTS, session.run(list(OUTPUTS), {INPUT_NAME: np.ascontiguousarray(x, np.float32)})))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", action=CommandLinePath, help="pose3d checkpoint (e.g. runs/cpu/stage3/last.pt)")
    parser.add_argument("out", action=CommandLinePath, help="ONNX file to write")
    parser.add_argument("--input-size", type=int, default=None,
                        help="side of the example input used for tracing (default: the config's data.input_size)")


def run(args: argparse.Namespace) -> int:
    refuse_overwriting_an_input(args.out, "OUT", {"checkpoint": args.checkpoint})
    if Path(args.out).is_dir():
        raise Pose3DError(f"OUT {args.out}: is a folder; give the ONNX file's name (e.g. {Path(args.out) / 'pose3d.onnx'})")
    path = export_onnx(resolve(args.checkpoint), args.out, args.input_size,
                       warn=lambda caveat: print(f"warning: {caveat}", file=sys.stderr))
    print(f"wrote {path}: input '{INPUT_NAME}' float32 (batch, 3, side, side), side a multiple of {INPUT_MULTIPLE}, "
          "already preprocessed (pose3dlib.model.preprocess for the checkpoint's model.input_format: the crop's "
          f"RGB / 255, or BGR / 256 for converted hg3d weights; this file's own convention, mm scale and joint "
          f"order are in its metadata, {', '.join(METADATA[:2])} ...); outputs {', '.join(OUTPUTS)}")
    return 0


def time_backends(config_path: str | Path, batch: int = 1, repeats: int = 5, threads: int = 2) -> dict:
    """CPU latency of one forward pass (median of `repeats`, ms) of a profile's network: PyTorch vs onnxruntime.

    Untrained weights (speed does not depend on their values); PyTorch runs as `load_model`
    returns it (channels_last when the profile trains that way), both with `threads` threads.
    """
    import tempfile
    import time

    from ..config import config_to_dict, load_config
    from ..engine.checkpoint import make_checkpoint, save_checkpoint
    from ..model import build_model

    cfg = load_config(config_path)
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "net.pt"
        save_checkpoint(ckpt, make_checkpoint(model_state=build_model(cfg.model).state_dict(),
                                              config=config_to_dict(cfg), stage=3))
        session = onnx_session(export_onnx(ckpt, Path(tmp) / "net.onnx"), threads=threads)
        model, _ = load_model(ckpt)
    size = cfg.data.input_size
    x = torch.rand(batch, 3, size, size)
    fmt = torch.channels_last if cfg.train.channels_last else torch.contiguous_format

    def median_ms(fn) -> float:
        fn()  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(1000 * (time.perf_counter() - t0))
        return float(np.median(times))

    with torch.no_grad():
        torch_ms = median_ms(lambda: model(x.contiguous(memory_format=fmt)))
    ort_ms = median_ms(lambda: run_onnx(session, x.numpy()))
    return {"profile": cfg.profile, "input_px": size, "batch": batch, "threads": threads,
            "pytorch_ms": round(torch_ms, 1), "onnxruntime_ms": round(ort_ms, 1),
            "pytorch_img_per_s": round(1000 * batch / torch_ms, 1), "onnxruntime_img_per_s": round(1000 * batch / ort_ms, 1)}

"""Load checkpoints of the original hg3d release safely and convert them to pose3d checkpoints.

    model = load_hg3d("hgreg-3d.pth")                  # HourglassNet3D in eval() mode
    model, cfg = load_hg3d_with_config("hgreg-3d.pth")  # cfg.model.input_format == "bgr256"
    python -m pose3dlib convert-hg3d hgreg-3d.pth runs/hg3d/model.pt

Accepted inputs:
  (a) a state dict with the original parameter names (with or without the
      `num_batches_tracked` buffers that PyTorch 0.1.x did not have);
  (b) a whole pickled network (`torch.save(model)`), which refers to the original classes
      `models.hg_3d.HourglassNet3D`, `models.hg_3d.Hourglass`,
      `models.layers.Residual.Residual` and standard torch.nn layers.
Both in torch's legacy (non-zip) format, including Python-2 pickles (strings decoded as
latin-1), or in the zip format of PyTorch >= 1.6.

Safety: every pickle in the file is read by `RestrictedUnpickler`, whose `find_class`
answers only from an allow-list of inert stand-ins (`_ALLOWED`): module classes become
attribute bags, tensor-rebuild functions are our own. Nothing is imported from, and no
callable named by, the file ever runs; anything else raises CheckpointError naming the
class. The network's layout (stacks, modules, features, depth-head modules, joints) is
inferred from the weights; the original's input convention (BGR / 256) is recorded as
`model.input_format = "bgr256"`.

Legacy format (torch.save with the pre-1.6 serialiser): five things written back to back,
    pickle(magic number) pickle(protocol 1001) pickle(sys info: byte order, type sizes)
    pickle(object; storages as persistent ids) pickle([storage keys])
followed, for each key in that list, by an int64 element count and the storage's raw bytes.
Persistent ids are ("storage", storage type, key, location, numel[, view]) and, for
module classes, ("module", class, source file, source).
"""
from __future__ import annotations

import argparse
import io
import os
import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import torch

from ..config import Config, ModelConfig, config_from_dict, config_to_dict
from ..engine.checkpoint import FORMAT as POSE3D_FORMAT
from ..engine.checkpoint import make_checkpoint, save_checkpoint
from ..engine.errors import CheckpointError, ConfigError
from ..engine.paths import CommandLinePath, refuse_overwriting_an_input
from ..model import DEPTH_GRID, DEPTH_HEAD_LEVELS, HOURGLASS_DEPTH, HourglassNet3D, build_model, load_model

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # first pickle of torch's legacy format
LEGACY_PROTOCOL_VERSION = 1001  # second pickle of torch's legacy format
HG3D_INPUT_FORMAT = "bgr256"  # original release: OpenCV BGR image / 256, no mean/std
CONVERTER = "pose3dlib.original.compat"  # `extra["converter"]` of a converted checkpoint (not trained since)
CONVERTED_PROFILE = "hg3d"  # Config.profile recorded in converted checkpoints

# Storage class names (in modules `torch` and `torch.cuda`) -> element dtype.
STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


# ----------------------------------------------------------------------------- inert stand-ins

class ModuleStub:
    """Stand-in for a pickled nn.Module: pickle fills `__dict__` (`_modules`, `_parameters`, ...)."""

    qualified_name = "?"

    def __repr__(self) -> str:
        return f"<{self.qualified_name} (stand-in)>"


class _ParameterStub:
    """Stand-in for torch.nn.Parameter as pickled by PyTorch < 0.4 (NEWOBJ + BUILD)."""

    def __new__(cls, data: Any = None, requires_grad: bool = True) -> _ParameterStub:
        obj = super().__new__(cls)
        obj.data = data
        return obj

    def __setstate__(self, state: Any) -> None:  # (requires_grad, volatile, hooks): not needed
        pass


class _StorageType:
    """Marker for a storage class such as torch.FloatStorage (only ever used in persistent ids)."""

    def __init__(self, qualified_name: str, dtype: torch.dtype) -> None:
        self.qualified_name, self.dtype = qualified_name, dtype


def _module_stub(qualified_name: str) -> type:
    return type(qualified_name.rsplit(".", 1)[-1], (ModuleStub,), {"qualified_name": qualified_name})


def _check_ints(values: Any, what: str) -> tuple[int, ...]:
    if not isinstance(values, (tuple, list)) or not all(isinstance(v, int) and v >= 0 for v in values):
        raise CheckpointError(f"malformed tensor in checkpoint: {what} {values!r} is not a tuple of ints >= 0")
    return tuple(values)


def _rebuild_tensor(storage: Any, storage_offset: int, size: Any, stride: Any, *_ignored: Any) -> torch.Tensor:
    """Our version of torch._utils._rebuild_tensor(_v2): a strided view of a storage tensor."""
    if not isinstance(storage, torch.Tensor) or storage.dim() != 1:
        raise CheckpointError(f"malformed tensor in checkpoint: storage is a {type(storage).__name__}")
    size, stride = _check_ints(size, "size"), _check_ints(stride, "stride")
    if len(size) != len(stride) or not isinstance(storage_offset, int) or storage_offset < 0:
        raise CheckpointError(f"malformed tensor in checkpoint: size {size}, stride {stride}, offset {storage_offset}")
    extent = storage_offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if all(size) else 0
    if extent > storage.numel():
        raise CheckpointError(f"malformed tensor in checkpoint: size {size} stride {stride} exceeds its storage "
                              f"of {storage.numel()} elements")
    return storage.as_strided(size, stride, storage.storage_offset() + storage_offset)


def _rebuild_parameter(data: Any, *_ignored: Any) -> torch.Tensor:
    """Our version of torch._utils._rebuild_parameter(_with_state): the parameter's tensor."""
    if not isinstance(data, torch.Tensor):
        raise CheckpointError(f"malformed parameter in checkpoint: data is a {type(data).__name__}")
    return data


def _no_backend() -> None:
    """Stand-in for the THNN backend object PyTorch 0.1-0.3 stored in every module."""
    return None


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {}
    torch_nn = {
        "torch.nn.modules.conv": ("Conv2d",),
        "torch.nn.modules.batchnorm": ("BatchNorm2d",),
        "torch.nn.modules.activation": ("ReLU",),
        "torch.nn.modules.pooling": ("MaxPool2d",),
        "torch.nn.modules.upsampling": ("Upsample", "UpsamplingNearest2d"),
        "torch.nn.modules.container": ("Sequential", "ModuleList"),
        "torch.nn.modules.linear": ("Linear",),
        # the original release's own classes
        "models.hg_3d": ("HourglassNet3D", "Hourglass"),
        "models.layers.Residual": ("Residual",),
    }
    for module, names in torch_nn.items():
        for name in names:
            allowed[(module, name)] = _module_stub(f"{module}.{name}")
    for module in ("torch", "torch.cuda"):
        for name, dtype in STORAGE_DTYPES.items():
            allowed[(module, name)] = _StorageType(f"{module}.{name}", dtype)
    allowed.update({
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch.nn.parameter", "Parameter"): _ParameterStub,
        ("torch.nn.backends.thnn", "_get_thnn_function_backend"): _no_backend,
        ("torch", "Size"): tuple,
        ("collections", "OrderedDict"): OrderedDict,
        ("builtins", "set"): set,
        ("__builtin__", "set"): set,  # Python 2 name
    })
    return allowed


_ALLOWED = _allowed_globals()


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves globals only from `_ALLOWED` and storages through a callback.

    Args:
        file: binary file positioned at a pickle.
        persistent_load: called with each persistent id tuple; returns the object it names.
        source: file name used in error messages.
    """

    def __init__(self, file: BinaryIO, persistent_load: Callable[[Any], Any] | None, source: str) -> None:
        super().__init__(file, encoding="latin1")  # Python-2 str -> str via latin-1
        self._persistent_load, self._source = persistent_load, source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise CheckpointError(
                f"{self._source}: refused to unpickle {module}.{name}: not one of the classes an hg3d "
                "checkpoint needs (nothing from the file was imported or run)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent_load is None:
            raise CheckpointError(f"{self._source}: unexpected persistent id {str(pid)[:80]!r}")
        return self._persistent_load(pid)


def _unpickle(f: BinaryIO, source: str, persistent_load: Callable[[Any], Any] | None = None,
              problem: str = "not a readable pickle (truncated or corrupt?)") -> Any:
    try:
        return RestrictedUnpickler(f, persistent_load, source).load()
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, struct.error, UnicodeDecodeError, RuntimeError) as e:
        raise CheckpointError(f"{source}: {problem}: {type(e).__name__}: {str(e)[:200]}") from None


def _storage_dtype(storage_type: Any, source: str) -> torch.dtype:
    if not isinstance(storage_type, _StorageType):
        raise CheckpointError(f"{source}: malformed storage id: storage type is {type(storage_type).__name__}")
    return storage_type.dtype


# ----------------------------------------------------------------------------- file readers

def read_legacy(path: str | os.PathLike) -> Any:
    """Read a file in torch's legacy (non-zip) serialisation format, with RestrictedUnpickler.

    Returns the saved object with tensors in place of storages and `ModuleStub`s in place of
    modules. Raises CheckpointError naming the file when it is not that format, is truncated,
    or names a class outside the allow-list.
    """
    path = Path(path)
    source = str(path)
    size_bytes = path.stat().st_size
    storages: dict[str, torch.Tensor] = {}  # root key -> flat tensor, filled after the object pickle

    def persistent_load(pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid:
            raise CheckpointError(f"{source}: malformed persistent id {str(pid)[:80]!r}")
        if pid[0] == "module" and len(pid) >= 2:
            if not (isinstance(pid[1], type) and issubclass(pid[1], ModuleStub)):
                raise CheckpointError(f"{source}: malformed module id {str(pid)[:80]!r}")
            return pid[1]
        if pid[0] == "storage" and len(pid) == 6:
            _, storage_type, key, _location, numel, view = pid
            dtype = _storage_dtype(storage_type, source)
            if not isinstance(numel, int) or not 0 <= numel * torch.empty((), dtype=dtype).element_size() <= size_bytes:
                raise CheckpointError(f"{source}: storage {key!r} claims {numel!r} elements, more than the file holds")
            if key not in storages:
                storages[key] = torch.empty(numel, dtype=dtype)
            root = storages[key]
            if view is None:
                return root
            _view_key, offset, view_numel = view
            if not (isinstance(offset, int) and isinstance(view_numel, int) and 0 <= offset
                    and offset + view_numel <= root.numel()):
                raise CheckpointError(f"{source}: storage view {view!r} outside storage {key!r}")
            return root[offset:offset + view_numel]
        raise CheckpointError(f"{source}: unknown persistent id {str(pid)[:80]!r}")

    with open(path, "rb") as f:
        if f.read(2) == b"\x1f\x8b" or _is_tar(path):
            raise CheckpointError(f"{source}: a tar or gzip archive (torch < 0.1.10 format), not supported")
        f.seek(0)
        magic = _unpickle(f, source, problem="not a torch checkpoint (neither the zip nor the legacy format)")
        if magic != LEGACY_MAGIC_NUMBER:
            raise CheckpointError(f"{source}: not a torch legacy-format file (magic number {str(magic)[:40]!r})")
        protocol = _unpickle(f, source)
        if protocol != LEGACY_PROTOCOL_VERSION:
            raise CheckpointError(f"{source}: unsupported legacy protocol version {protocol!r}")
        sys_info = _unpickle(f, source)
        if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
            raise CheckpointError(f"{source}: only little-endian legacy files are supported (sys info {sys_info!r})")
        obj = _unpickle(f, source, persistent_load)
        keys = _unpickle(f, source)
        if not isinstance(keys, list) or set(keys) != set(storages):
            raise CheckpointError(f"{source}: storage key list does not match the storages the object uses")
        for key in keys:
            root = storages[key]
            header = f.read(8)
            if len(header) != 8:
                raise CheckpointError(f"{source}: truncated before the data of storage {key!r}")
            (numel,) = struct.unpack("<q", header)
            if numel != root.numel():
                raise CheckpointError(f"{source}: storage {key!r} has {numel} elements, expected {root.numel()}")
            nbytes = numel * root.element_size()
            data = f.read(nbytes)
            if len(data) != nbytes:
                raise CheckpointError(f"{source}: truncated in the data of storage {key!r}")
            if numel:
                root.copy_(torch.frombuffer(bytearray(data), dtype=root.dtype))
    return obj


def _is_tar(path: Path) -> bool:
    import tarfile

    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def read_zip(path: str | os.PathLike) -> Any:
    """Read a file in torch's zip serialisation format (PyTorch >= 1.6) with RestrictedUnpickler."""
    path = Path(path)
    source = str(path)
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise CheckpointError(f"{source}: not a readable zip checkpoint: {e}") from None
    with zf:
        pkl = [n for n in zf.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
        if len(pkl) != 1:
            raise CheckpointError(f"{source}: a zip file without exactly one data.pkl; not a torch checkpoint")
        prefix = pkl[0][: -len("data.pkl")]
        if prefix + "byteorder" in zf.namelist() and zf.read(prefix + "byteorder").strip() != b"little":
            raise CheckpointError(f"{source}: only little-endian checkpoints are supported")
        storages: dict[str, torch.Tensor] = {}

        def persistent_load(pid: Any) -> Any:
            if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
                raise CheckpointError(f"{source}: unknown persistent id {str(pid)[:80]!r}")
            _, storage_type, key, _location, numel = pid
            dtype = _storage_dtype(storage_type, source)
            if key not in storages:
                try:
                    data = zf.read(f"{prefix}data/{key}")
                except KeyError:
                    raise CheckpointError(f"{source}: missing storage record data/{key}") from None
                flat = torch.frombuffer(bytearray(data), dtype=dtype) if data else torch.empty(0, dtype=dtype)
                if flat.numel() != numel:
                    raise CheckpointError(f"{source}: storage {key!r} has {flat.numel()} elements, expected {numel}")
                storages[key] = flat
            return storages[key]

        with zf.open(pkl[0]) as f:
            return _unpickle(io.BytesIO(f.read()), source, persistent_load)


def read_torch_file(path: str | os.PathLike) -> Any:
    """Read a torch.save file of either format safely (see `read_legacy`, `read_zip`)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, where a checkpoint file is needed")
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if zipfile.is_zipfile(path):
        return read_zip(path)
    with open(path, "rb") as f:
        if f.read(4) == b"PK\x03\x04":  # a zip archive's first entry, but no readable end: cut short or damaged
            raise CheckpointError(f"{path}: a zip archive (torch's checkpoint format) that cannot be read: "
                                  "truncated or corrupt (copy or download it again)")
    return read_legacy(path)


# ----------------------------------------------------------------------------- state dicts

def _tensor(value: Any, name: str, source: str) -> torch.Tensor:
    if isinstance(value, _ParameterStub):
        value = value.data
    if not isinstance(value, torch.Tensor):
        raise CheckpointError(f"{source}: {name} is a {type(value).__name__}, expected a tensor")
    return value


def _module_state(module: ModuleStub, prefix: str, source: str, out: dict[str, torch.Tensor]) -> None:
    """Collect a module stand-in's parameters and persistent buffers under dotted names."""
    state = module.__dict__
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if value is not None and name not in skip:
                out[prefix + name] = _tensor(value, prefix + name, source).clone()
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, ModuleStub):
            raise CheckpointError(f"{source}: submodule {prefix + name} is a {type(child).__name__}")
        _module_state(child, f"{prefix}{name}.", source, out)


def _state_from_object(obj: Any, source: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, ModuleStub):
        out: dict[str, torch.Tensor] = {}
        _module_state(obj, "", source, out)
        return out
    if isinstance(obj, Mapping):
        if obj.get("format") == POSE3D_FORMAT:
            raise CheckpointError(f"{source}: already a pose3d checkpoint; load it with pose3dlib.model.load_model")
        if obj and all(isinstance(k, str) for k in obj) and all(
                isinstance(v, (torch.Tensor, _ParameterStub)) for v in obj.values()):
            return {k: _tensor(v, k, source).clone() for k, v in obj.items()}
        for key in ("state_dict", "model"):  # {"epoch": .., "state_dict": {...}} wrappers
            if key in obj:
                return _state_from_object(obj[key], source)
        raise CheckpointError(f"{source}: a mapping with keys {sorted(map(str, obj))[:8]} is neither a state "
                              "dict nor holds one under 'state_dict' or 'model'")
    raise CheckpointError(f"{source}: holds a {type(obj).__name__}, not an hg3d network or its state dict")


WRAPPER_PREFIX = "module."  # what nn.DataParallel / DistributedDataParallel put before every name


def hg3d_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The original parameter and buffer names -> tensors (CPU) of an hg3d checkpoint of any accepted kind.

    A state dict saved from a wrapped network (every name starting with `module.`, as
    nn.DataParallel writes them) reads as the network's own names."""
    state = _state_from_object(read_torch_file(path), str(path))
    if state and all(k.startswith(WRAPPER_PREFIX) for k in state):
        state = {k[len(WRAPPER_PREFIX):]: v for k, v in state.items()}
    return state


def infer_hg3d_config(state: Mapping[str, torch.Tensor], source: str = "state dict") -> ModelConfig:
    """ModelConfig (input_format "bgr256") of an original state dict, from its names and shapes."""
    for key in ("r5.conv3.weight", "tmpOut.0.weight", "hourglass.0.up1_.0.conv1.weight", "reg_.0.conv1.weight",
                "reg.weight"):
        if key not in state:
            raise CheckpointError(f"{source}: not an hg3d HourglassNet3D: missing parameter {key!r}")

    def count(pattern: str) -> int:
        n = 0
        while pattern.format(n) in state:
            n += 1
        return n

    num_features = int(state["r5.conv3.weight"].shape[0])
    num_joints = int(state["tmpOut.0.weight"].shape[0])
    num_reg = count("reg_.{}.conv1.weight")
    if num_reg % DEPTH_HEAD_LEVELS:
        raise CheckpointError(f"{source}: {num_reg} depth-head residuals (reg_.*) is not a multiple of "
                              f"{DEPTH_HEAD_LEVELS}")
    expected_in = num_features * DEPTH_GRID * DEPTH_GRID
    if tuple(state["reg.weight"].shape) != (num_joints, expected_in):
        raise CheckpointError(f"{source}: reg.weight has shape {tuple(state['reg.weight'].shape)}, expected "
                              f"({num_joints}, {expected_in}) (a network for 256 px input)")
    return ModelConfig(
        num_stacks=count("tmpOut.{}.weight"),
        num_modules=count("hourglass.0.up1_.{}.conv1.weight"),
        num_features=num_features,
        num_reg_modules=num_reg // DEPTH_HEAD_LEVELS,
        num_joints=num_joints,
        input_format=HG3D_INPUT_FORMAT,
    )


_RESIDUAL_PARTS = (("bn", "bn1", "bn"), ("conv1", "conv1", "conv"), ("bn1", "bn2", "bn"),
                   ("conv2", "conv2", "conv"), ("bn2", "bn3", "bn"), ("conv3", "conv3", "conv"))
_LEAVES = {"conv": ("weight", "bias"), "linear": ("weight", "bias"),
           "bn": ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}


def hg3d_key_map(cfg: ModelConfig) -> dict[str, str]:
    """Original state-dict name -> our name, for every parameter and buffer of the network `cfg` describes."""
    pairs: list[tuple[str, str, str]] = []  # (original module, our module, kind)

    def residual(orig: str, ours: str, has_skip: bool) -> None:
        pairs.extend((f"{orig}.{a}", f"{ours}.{b}", kind) for a, b, kind in _RESIDUAL_PARTS)
        if has_skip:
            pairs.append((f"{orig}.conv4", f"{ours}.skip", "conv"))

    def hourglass(orig: str, ours: str, depth: int) -> None:
        for j in range(cfg.num_modules):
            residual(f"{orig}.up1_.{j}", f"{ours}.skip.{j}", False)
            residual(f"{orig}.low1_.{j}", f"{ours}.down.{j}", False)
            residual(f"{orig}.low3_.{j}", f"{ours}.up.{j}", False)
            if depth == 1:
                residual(f"{orig}.low2_.{j}", f"{ours}.inner.{j}", False)
        if depth > 1:
            hourglass(f"{orig}.low2", f"{ours}.inner", depth - 1)

    f = cfg.num_features
    pairs += [("conv1_", "stem.conv", "conv"), ("bn1", "stem.bn", "bn")]
    residual("r1", "stem.res1", True)
    residual("r4", "stem.res2", False)
    residual("r5", "stem.res3", f != 128)
    for i in range(cfg.num_stacks):
        s = f"stacks.{i}"
        hourglass(f"hourglass.{i}", f"{s}.hourglass", HOURGLASS_DEPTH)
        for j in range(cfg.num_modules):
            residual(f"Residual.{i * cfg.num_modules + j}", f"{s}.residuals.{j}", False)
        pairs += [(f"lin_.{i}.0", f"{s}.features.0", "conv"), (f"lin_.{i}.1", f"{s}.features.1", "bn"),
                  (f"tmpOut.{i}", f"{s}.heatmaps", "conv"), (f"ll_.{i}", f"{s}.remap_features", "conv"),
                  (f"tmpOut_.{i}", f"{s}.remap_heatmaps", "conv")]
    for level in range(DEPTH_HEAD_LEVELS):
        for j in range(cfg.num_reg_modules):
            residual(f"reg_.{level * cfg.num_reg_modules + j}", f"depth_head.levels.{level}.{j}", False)
    pairs.append(("reg", "depth_head.linear", "linear"))
    return {f"{orig}.{leaf}": f"{ours}.{leaf}" for orig, ours, kind in pairs for leaf in _LEAVES[kind]}


def convert_hg3d_state_dict(state: Mapping[str, torch.Tensor], source: str = "state dict",
                            ) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """Rename an original state dict to ours; missing `num_batches_tracked` buffers become 0.

    Returns (our state dict, inferred ModelConfig). Raises CheckpointError listing
    unexpected or missing names, naming the first original tensor whose shape does not fit the
    inferred network, or saying why pose3d cannot use that network (its config's checks).
    """
    cfg = infer_hg3d_config(state, source)
    try:
        config_from_dict(config_to_dict(Config(profile=CONVERTED_PROFILE, model=cfg)))
    except ConfigError as e:
        raise CheckpointError(f"{source}: an hg3d network pose3d cannot build ({e})") from None
    key_map = hg3d_key_map(cfg)
    unexpected = sorted(set(state) - set(key_map))
    missing = sorted(k for k in set(key_map) - set(state) if not k.endswith(".num_batches_tracked"))
    if unexpected or missing:
        raise CheckpointError(f"{source}: does not match an hg3d network {cfg}: unexpected {unexpected[:5]}, "
                              f"missing {missing[:5]}")
    with torch.device("meta"):  # shapes only: no weights allocated or initialised
        expected = build_model(cfg).state_dict()
    for orig, new in key_map.items():
        if orig in state and tuple(state[orig].shape) != tuple(expected[new].shape):
            raise CheckpointError(f"{source}: {orig} has shape {tuple(state[orig].shape)}, expected "
                                  f"{tuple(expected[new].shape)} for an hg3d network {cfg}")
    ours = {key_map[k]: v for k, v in state.items()}
    for orig, new in key_map.items():
        if orig not in state:  # PyTorch 0.1.x had no num_batches_tracked buffers
            ours[new] = torch.zeros((), dtype=torch.long)
    return ours, cfg


def _converted(path: str | os.PathLike) -> tuple[HourglassNet3D, Config]:
    source = str(path)
    state, model_cfg = convert_hg3d_state_dict(hg3d_state_dict(path), source)
    model = build_model(model_cfg)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{source}: weights do not fit {model_cfg}: {' '.join(str(e).split())[:400]}") from None
    return model.eval(), Config(profile=CONVERTED_PROFILE, model=model_cfg)


def load_hg3d_with_config(path: str | os.PathLike) -> tuple[HourglassNet3D, Config]:
    """(model in eval() mode, Config with the inferred layout and `model.input_format="bgr256"`)."""
    return _converted(path)


def load_hg3d(path: str | os.PathLike) -> HourglassNet3D:
    """An original hg3d checkpoint (state dict or whole pickled network) as our HourglassNet3D, eval() mode.

    Feed it `preprocess(images, "bgr256")` to get the original network's outputs.
    """
    return _converted(path)[0]


def convert_hg3d(in_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Write a pose3d checkpoint (config records input_format "bgr256") for an original hg3d file."""
    model, cfg = _converted(in_path)
    ckpt = make_checkpoint(model_state=model.state_dict(), config=config_to_dict(cfg),
                           # finished: a trained model, so `train --init` may start from it
                           extra={"converted_from": str(in_path), "converter": CONVERTER, "finished": True},
                           # no training split to measure: the paper evaluator's Human3.6M skeleton size
                           bone_sum_mm=cfg.eval.paper_bone_sum_mm)
    return save_checkpoint(out_path, ckpt)


# ----------------------------------------------------------------------------- command

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `python -m pose3dlib convert-hg3d IN OUT`."""
    parser.add_argument("input", action=CommandLinePath, type=Path, help="original hg3d checkpoint (state dict or pickled model, any torch format)")
    parser.add_argument("output", action=CommandLinePath, type=Path, help="pose3d checkpoint to write")
    parser.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")


def run(args: argparse.Namespace) -> int:
    """Convert, check that the result loads, and print one line describing the network."""
    refuse_overwriting_an_input(args.output, "OUTPUT", {"original checkpoint": args.input},
                                checkpoints_too=False)  # --force replaces an earlier conversion
    if args.output.is_dir():
        raise CheckpointError(f"{args.output} is a folder; OUTPUT names the checkpoint file to write "
                              f"(e.g. {args.output / 'hg3d.pt'})")
    if args.output.exists() and not args.force:
        raise CheckpointError(f"{args.output} exists; pass --force to overwrite")
    out = convert_hg3d(args.input, args.output)
    _, cfg = load_model(out)  # check that the written checkpoint loads the way every command loads it
    m = cfg.model
    print(f"wrote {out}: {m.num_stacks} stacks, {m.num_modules} modules, {m.num_features} features, "
          f"{m.num_reg_modules} depth-head modules, {m.num_joints} joints, input_format {m.input_format}")
    return 0

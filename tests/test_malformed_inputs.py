"""A corpus of malformed inputs across every command and loader.

Each case writes one malformed input under its own folder, runs a command in-process
(`pose3dlib.tools.cli.main(argv)`, which returns the exit status) or calls a loader, and is
classified:

- handled: the command exits with status 2 and prints exactly one line, `error: ...`,
  naming the file or key (`Case.needle`), with no traceback (argparse usage errors:
  status 2 and an `error:` line); a loader raises one of the documented error types
  (pose3dlib.engine.errors: ConfigError, DataError, CheckpointError) with a one-line message
  naming the file or key;
- unhandled: anything else (another exception escaped, another exit status, a
  traceback, several lines, a message that names neither file nor key, malformed input
  silently accepted, or a malicious checkpoint's code ran).

The test asserts that every case is handled. `python tests/test_malformed_inputs.py --table`
runs the corpus and writes the outcome table into docs/reliability.md.
"""
from __future__ import annotations

import contextlib
import io
import logging
import pickle
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from pose3dlib.config import SyntheticConfig, config_to_dict, load_config
from pose3dlib.engine.atomic_io import replace_marked_block
from pose3dlib.engine.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from pose3dlib.engine.errors import Pose3DError
from pose3dlib.engine.paths import PROJECT_ROOT
from pose3dlib.model import build_model, load_model
from pose3dlib.synthetic.generator import synthetic_overrides
from pose3dlib.tools import cli

# the converter cases' downloads lack subjects on purpose: the warnings saying so are not what they test
pytestmark = pytest.mark.filterwarnings("ignore::pose3dlib.data.convert.common.ConversionWarning")

SMOKE = "configs/smoke.yaml"
TINY = SyntheticConfig(image_size=64, h36m_train=8, h36m_test=8, mpii_train=8, mpii_val=8, wild_test=8, workers=1)
DOC = PROJECT_ROOT / "docs" / "reliability.md"
TABLE_START, TABLE_END = "<!-- malformed:start -->", "<!-- malformed:end -->"


# ----------------------------------------------------------------------------- shared inputs

@dataclass(frozen=True)
class Env:
    """Well-formed inputs the cases start from (never modified by a case)."""

    data: Path  # tiny synthetic data root (h36m/, mpii/, wild_test/)
    ckpt: Path  # a valid pose3d checkpoint of the smoke network, finished
    image: Path  # a valid JPEG
    ckpt3: Path  # the same weights as a Stage 3 checkpoint (the demo warns about Stage 1 ones)
    official: Path  # tiny synthetic downloads in the official layouts (h36m/, mpii/, mpi_inf_3dhp_test_set/)

    def sets(self, root: Path | None = None) -> list[str]:
        """`--set` arguments pointing the config at `root` (default: the pristine data)."""
        root = root or self.data
        out = []
        for key, sub in (("h36m_dir", "h36m"), ("mpii_dir", "mpii"), ("wild_test_dir", "wild_test")):
            out += ["--set", f"data.{key}={root / sub}"]
        out += [arg for o in synthetic_overrides(TINY) for arg in ("--set", o)]  # its sizes
        return out + ["--set", "data.lab_val_dir=''", "--set", "data.wild_val_dir=''"]  # validation: the test rows

    def data_copy(self, d: Path) -> Path:
        """A private copy of the data that a case may damage."""
        return Path(shutil.copytree(self.data, d / "data"))

    def ckpt_dict(self) -> dict:
        return torch.load(self.ckpt, weights_only=True)


def make_env(root: Path) -> Env:
    from pose3dlib.synthetic.generator import generate
    from pose3dlib.synthetic.official import generate_official

    torch.set_num_threads(1)
    data = generate(root / "data", TINY, seed=0)
    cfg = load_config(SMOKE)
    torch.manual_seed(0)
    ckpt = save_checkpoint(root / "good.pt", make_checkpoint(
        model_state=build_model(cfg.model).state_dict(), config=config_to_dict(cfg), stage=1,
        extra={"finished": True}, bone_sum_mm=4296.99))
    ckpt3 = save_checkpoint(root / "good3.pt", {**torch.load(ckpt, weights_only=True), "stage": 3})
    image = next((data / "h36m" / "images").rglob("*.jpg"))
    return Env(data=data, ckpt=ckpt, image=image, ckpt3=ckpt3, official=generate_official(root / "official", seed=0))


class Evil:
    """A pickle whose loading would create `marker` (a stand-in for any code a stranger's file could run)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code from the checkpoint ran')",))


MARKER = "CODE_RAN"


# ----------------------------------------------------------------------------- small writers

def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def truncated(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    return write(dst, data[: int(len(data) * fraction)])


def flipped(src: Path, dst: Path, count: int = 64) -> Path:
    """A copy of a torch zip archive with `count` bytes inverted in the middle of its largest entry's data."""
    import zipfile

    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as z:
        big = max(z.infolist(), key=lambda i: i.file_size)
    name_len, extra_len = int.from_bytes(data[big.header_offset + 26:big.header_offset + 28], "little"), \
        int.from_bytes(data[big.header_offset + 28:big.header_offset + 30], "little")
    start = big.header_offset + 30 + name_len + extra_len + big.file_size // 2
    data[start:start + count] = bytes(255 - b for b in data[start:start + count])
    return write(dst, bytes(data))


def ckpt_variant(env: Env, dst: Path, **changes) -> Path:
    """The valid checkpoint with some entries replaced (None removes an entry)."""
    ckpt = env.ckpt_dict()
    for k, v in changes.items():
        if v is None:
            ckpt.pop(k)
        else:
            ckpt[k] = v
    torch.save(ckpt, dst)
    return dst


def h5_variant(src: Path, dst: Path, edit: Callable[[dict], None]) -> Path:
    """Rewrite an annotation HDF5 file with its datasets edited in a dict."""
    with h5py.File(src, "r") as f:
        arrays = {k: f[k][()] for k in f}
    edit(arrays)
    dst.unlink(missing_ok=True)
    with h5py.File(dst, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
    return dst


def demo(env: Env, d: Path, *extra: str, image: Path | None = None, ckpt: Path | None = None) -> list[str]:
    return ["demo", str(image or env.image), "--checkpoint", str(ckpt or env.ckpt3), "--out", str(d / "out"),
            "--device", "cpu", *extra]


def train(env: Env, d: Path, *extra: str, config: str = SMOKE, data: Path | None = None) -> list[str]:
    return ["train", "--config", config, "--stage", "1", "--run-dir", str(d / "run"), *env.sets(data), *extra]


def evaluate(env: Env, d: Path, *extra: str, config: str = SMOKE, data: Path | None = None, stages: str = "1") -> list[str]:
    return ["evaluate", "--config", config, "--run-dir", str(d / "run"), "--stages", stages, "--limit", "2",
            *env.sets(data), *extra]


def run_dir_with(d: Path, ckpt_bytes: bytes) -> None:
    write(d / "run" / "stage1" / "last.pt", ckpt_bytes)


def readme_with_block(d: Path) -> Path:
    return write(d / "README.md", "# x\n<!-- results:start -->\n<!-- results:end -->\n")


METRICS_HEADER = "stage,split,protocol,action,value\n"


# ----------------------------------------------------------------------------- the corpus

@dataclass(frozen=True)
class Case:
    """One malformed input: `build(d, env)` writes it under `d` and returns (argv or loader call, needle)."""

    id: str
    target: str  # the command or loader it is given to
    malformed: str  # what is wrong with it
    build: Callable[[Path, Env], tuple[list[str] | Callable[[], object], str]]


def _h36m_loader(root: Path, split: str = "train") -> Callable[[], object]:
    from pose3dlib.data.h36m import H36MDataset

    return lambda: H36MDataset(root / "h36m", split, load_config(SMOKE).data)[0]


def _mpii_loader(root: Path, split: str = "train") -> Callable[[], object]:
    from pose3dlib.data.mpii import MPIIDataset

    return lambda: MPIIDataset(root / "mpii", split, load_config(SMOKE).data)[0]


def _damaged(env: Env, d: Path, pattern: str, damage: Callable[[Path], object]) -> Path:
    """A private data copy with `damage` applied to every file matching `pattern`; returns its root."""
    root = env.data_copy(d)
    for path in sorted(root.glob(pattern)):
        damage(path)
    return root


def _h36m_annot(env: Env, d: Path, edit: Callable[[dict], None]) -> tuple[Callable[[], object], Path]:
    root = env.data_copy(d)
    path = root / "h36m" / "annot.h5"
    h5_variant(path, path, edit)
    return _h36m_loader(root), path


def _mpii_annot(env: Env, d: Path, edit: Callable[[dict], None],
                split: str = "train") -> tuple[Callable[[], object], Path]:
    root = env.data_copy(d)
    path = root / "mpii" / f"{split}.h5"
    h5_variant(path, path, edit)
    return _mpii_loader(root, split), path


def _set(arrays: dict, key: str, fn: Callable[[np.ndarray], np.ndarray]) -> None:
    arrays[key] = fn(arrays[key])


def _nan_at(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64).copy()
    a.flat[5] = np.nan
    return a


def _evil_zip(d: Path, env: Env) -> Path:
    ckpt = env.ckpt_dict()
    ckpt["extra"] = {"note": Evil(d / MARKER)}  # a pose3d checkpoint with one malicious object inside
    torch.save(ckpt, d / "evil.pt")
    return d / "evil.pt"


def _legacy_state_dict(d: Path) -> Path:
    torch.save({"w": torch.zeros(1000)}, d / "old.pth", _use_new_zipfile_serialization=False)
    return d / "old.pth"


def _h36m_download(env: Env, d: Path, *, metadata: bool = True) -> tuple[Path, Path, Path]:
    """A private copy of the official Human3.6M fake holding S9 alone; returns (its folder, the 3D and the 2D
    pose file of its first sequence and camera)."""
    root = Path(shutil.copytree(env.official / "h36m", d / "h36m", ignore=shutil.ignore_patterns(
        "S1", "S5", "S11", *(() if metadata else ("metadata.xml",)))))
    f3d = sorted((root / "S9").rglob("D3_Positions_mono/*.cdf"))[0]
    return root, f3d, f3d.parent.parent / "D2_Positions" / f3d.name


def _pose_file(env: Env, d: Path, variable: str, edit: Callable[[np.ndarray], np.ndarray],
               which: int = 3) -> tuple[Callable[[], object], Path]:
    """convert_h36m on a download whose first 3D (`which` 3) or 2D (2) pose file holds `edit` of its poses
    (1, N, 32 x D) under the name `variable`; returns (the call, the file)."""
    from cdflib.cdfwrite import CDF

    from pose3dlib.data.convert.h36m import convert_h36m, read_pose_cdf

    root, f3d, f2d = _h36m_download(env, d)
    path = f3d if which == 3 else f2d
    data = edit(read_pose_cdf(path, which).reshape(1, -1, 32 * which))
    path.unlink()
    cdf = CDF(str(path), cdf_spec={"Majority": "row_major"})
    cdf.write_var({"Variable": variable, "Data_Type": CDF.CDF_DOUBLE, "Num_Elements": 1, "Rec_Vary": True,
                   "Dim_Sizes": list(data.shape[1:])}, var_data=data)
    cdf.close()
    return partial(convert_h36m, root, d / "out", progress=False), path


def _mpii_release_without(env: Env, d: Path, field: str) -> Path:
    """The official MPII fake's .mat saved again without RELEASE's `field`."""
    from scipy.io import loadmat, savemat

    release = loadmat(str(env.official / "mpii" / "mpii_human_pose_v1_u12_1.mat"))["RELEASE"]
    mat = d / "mpii" / "mpii_human_pose_v1_u12_1.mat"
    mat.parent.mkdir(parents=True)
    savemat(str(mat), {"RELEASE": {k: release[k][0, 0] for k in release.dtype.names if k != field}})
    return mat


def _3dhp_download(env: Env, d: Path, edit: Callable[[h5py.File], None]) -> Callable[[], object]:
    """convert_3dhp on a copy of the official MPI-INF-3DHP fake whose TS1/annot_data.mat is edited."""
    from pose3dlib.data.convert.mpi3dhp import convert_3dhp

    root = Path(shutil.copytree(env.official / "mpi_inf_3dhp_test_set", d / "mpi_inf_3dhp_test_set"))
    with h5py.File(root / "TS1" / "annot_data.mat", "a") as f:
        edit(f)
    return partial(convert_3dhp, root, d / "out", progress=False)


def _replace(key: str, fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        value = fn(f[key][()])
        del f[key]
        if value is not None:
            f[key] = value
    return edit


CASES: list[Case] = [
    # ---- checkpoints
    Case("ckpt_truncated", "demo --checkpoint", "checkpoint cut in half",
         lambda d, e: (demo(e, d, ckpt=truncated(e.ckpt, d / "half.pt")), "half.pt")),
    Case("ckpt_flipped_bytes", "demo --checkpoint", "64 bytes inside a weight tensor inverted (the zip still opens)",
         lambda d, e: (demo(e, d, ckpt=flipped(e.ckpt, d / "flip.pt")), "flip.pt: damaged")),
    Case("ckpt_zero_bytes", "train --init", "empty checkpoint file",
         lambda d, e: (train(e, d, "--init", str(write(d / "empty.pt", b""))), "empty.pt")),
    Case("ckpt_random_bytes", "evaluate (run folder)", "stage checkpoint of random bytes",
         lambda d, e: (run_dir_with(d, np.random.default_rng(0).bytes(4096)) or evaluate(e, d), "last.pt")),
    Case("ckpt_resume_truncated", "train --resume", "last.pt truncated (a kill outside the atomic writer)",
         lambda d, e: (run_dir_with(d, e.ckpt.read_bytes()[:3000]) or train(e, d, "--resume"), "last.pt")),
    Case("ckpt_not_pose3d", "demo --checkpoint", "torch file holding a list, not a checkpoint dict",
         lambda d, e: (torch.save([1, 2], d / "list.pt") or demo(e, d, ckpt=d / "list.pt"), "list.pt")),
    Case("ckpt_unknown_config_key", "train --init", "stored config has an unknown key",
         lambda d, e: (train(e, d, "--init", str(ckpt_variant(e, d / "c.pt", config={**e.ckpt_dict()["config"],
                                                                                      "bogus": 1}))), "bogus")),
    Case("ckpt_config_wrong_type", "demo --checkpoint", "stored config: model.num_stacks is a string",
         lambda d, e: (demo(e, d, ckpt=ckpt_variant(e, d / "c.pt", config={"model": {"num_stacks": "two"}})),
                       "model.num_stacks")),
    Case("ckpt_config_not_mapping", "demo --checkpoint", "stored config is an int",
         lambda d, e: (demo(e, d, ckpt=ckpt_variant(e, d / "c.pt", config=3)), "'config'")),
    Case("ckpt_missing_config_key", "load_checkpoint", "checkpoint without its 'config' entry",
         lambda d, e: (partial(load_checkpoint, ckpt_variant(e, d / "c.pt", config=None)), "config")),
    Case("ckpt_model_not_state_dict", "load_model", "'model' entry is a tensor",
         lambda d, e: (partial(load_model, ckpt_variant(e, d / "c.pt", model=torch.zeros(3))), "'model'")),
    Case("ckpt_wrong_weight_shapes", "demo --checkpoint", "weights of the wrong shapes for the stored config",
         lambda d, e: (demo(e, d, ckpt=ckpt_variant(e, d / "c.pt", model={k: torch.zeros(1) for k in
                                                                           e.ckpt_dict()["model"]})), "c.pt")),
    Case("ckpt_format_version_text", "load_model", "format_version is a string",
         lambda d, e: (partial(load_model, ckpt_variant(e, d / "c.pt", format_version="1")), "format_version")),
    Case("ckpt_newer_format", "train --init", "format_version from a future pose3dlib",
         lambda d, e: (train(e, d, "--init", str(ckpt_variant(e, d / "c.pt", format_version=99))), "format_version")),
    Case("ckpt_is_directory", "demo --checkpoint", "a folder instead of a checkpoint file",
         lambda d, e: (demo(e, d, ckpt=d), str(d))),
    Case("ckpt_folder_load", "load_checkpoint", "a run's stage folder instead of its last.pt",
         lambda d, e: (partial(load_checkpoint, d), "is a folder; expected a checkpoint file")),
    Case("ckpt_missing", "demo --checkpoint", "checkpoint path that does not exist",
         lambda d, e: (demo(e, d, ckpt=d / "nope.pt"), "nope.pt")),
    Case("ckpt_malicious_demo", "demo --checkpoint", "pose3d checkpoint with a pickled object that runs code",
         lambda d, e: (demo(e, d, ckpt=_evil_zip(d, e)), "evil.pt")),
    Case("hg3d_truncated", "convert-hg3d", "legacy-format torch file cut in half",
         lambda d, e: (["convert-hg3d", str(truncated(_legacy_state_dict(d), d / "half.pth")), str(d / "o.pt")],
                       "half.pth")),
    Case("hg3d_malicious_pickle", "convert-hg3d", "bare pickle whose __reduce__ runs code",
         lambda d, e: (["convert-hg3d", str(write(d / "evil.pkl", pickle.dumps(Evil(d / MARKER), protocol=2))),
                        str(d / "o.pt")], "evil.pkl")),
    Case("hg3d_not_hourglass", "convert-hg3d", "state dict of some other network",
         lambda d, e: (torch.save({"w": torch.zeros(3)}, d / "other.pt") or
                       ["convert-hg3d", str(d / "other.pt"), str(d / "o.pt")], "other.pt")),
    Case("hg3d_given_pose3d", "convert-hg3d", "a pose3d checkpoint instead of an original one",
         lambda d, e: (["convert-hg3d", str(e.ckpt), str(d / "o.pt")], "good.pt")),
    Case("hg3d_output_exists", "convert-hg3d", "output file exists (no --force)",
         lambda d, e: (["convert-hg3d", str(e.ckpt), str(write(d / "exists.pt", b"x"))], "exists.pt")),
    # ---- images
    Case("image_truncated_jpeg", "demo", "JPEG cut in half",
         lambda d, e: (demo(e, d, image=truncated(e.image, d / "half.jpg")), "half.jpg")),
    Case("image_zero_byte_png", "demo", "empty .png file",
         lambda d, e: (demo(e, d, image=write(d / "empty.png", b"")), "empty.png")),
    Case("image_not_an_image", "demo", "text file named .jpg",
         lambda d, e: (demo(e, d, image=write(d / "notes.jpg", "not an image\n")), "notes.jpg")),
    Case("image_missing", "demo", "image path that does not exist",
         lambda d, e: (demo(e, d, image=d / "nope.jpg"), "nope.jpg")),
    Case("image_is_directory", "demo", "a folder instead of an image",
         lambda d, e: (demo(e, d, image=d), str(d))),
    Case("bbox_three_numbers", "demo --bbox", "'1,2,3'", lambda d, e: (demo(e, d, "--bbox", "1,2,3"), "--bbox")),
    Case("bbox_nan", "demo --bbox", "'nan,0,10,10'", lambda d, e: (demo(e, d, "--bbox", "nan,0,10,10"), "--bbox")),
    Case("bbox_negative_size", "demo --bbox", "'0,0,-5,10'", lambda d, e: (demo(e, d, "--bbox", "0,0,-5,10"), "--bbox")),
    Case("bbox_outside_image", "demo --bbox", "box far outside the image",
         lambda d, e: (demo(e, d, "--bbox", "1e9,1e9,10,10"), "--bbox")),
    Case("bbox_far_too_large", "demo --bbox", "a size of 1e9 px (mistyped)",
         lambda d, e: (demo(e, d, "--bbox", "0,0,1e9,1e9"), "--bbox")),
    Case("demo_empty_input", "demo", "'' as the input (an unset shell variable)",
         lambda d, e: (["demo", "", "--checkpoint", str(e.ckpt3), "--out", str(d / "out")], "empty path")),
    Case("export_onnx_over_checkpoint", "export-onnx", "the output named as the checkpoint it reads",
         lambda d, e: (["export-onnx", str(d / "c.pt"), str(shutil.copy(e.ckpt3, d / "c.pt"))], "c.pt")),
    Case("export_onnx_over_another_checkpoint", "export-onnx", "the output named as another run's checkpoint",
         lambda d, e: (["export-onnx", str(e.ckpt3), str(shutil.copy(e.ckpt, d / "other.pt"))],
                       "other.pt: is a PyTorch checkpoint")),
    Case("person_search_out_over_checkpoint", "person-search --out", "the JSON named as a stage checkpoint",
         lambda d, e: (["person-search", str(e.ckpt3), "--scenes", "1", "--out", str(shutil.copy(e.ckpt, d / "keep.pt"))],
                       "keep.pt: is a PyTorch checkpoint")),
    Case("export_onnx_out_is_folder", "export-onnx", "OUT an existing folder",
         lambda d, e: (["export-onnx", str(e.ckpt3), str(d)], "is a folder; give the ONNX file's name")),
    Case("train_init_unfinished", "train --init", "a stage checkpoint stopped before its last epoch",
         lambda d, e: (["train", "--config", SMOKE, "--stage", "2", "--run-dir", str(d / "run"), *e.sets(), "--init",
                        str(ckpt_variant(e, d / "part.pt", extra={"finished": False}, epoch=0, step=3))],
                       "part.pt: stage 1 is unfinished: it stopped after 0 of")),
    Case("evaluate_out_over_checkpoint", "evaluate --out", "the CSV named as a stage checkpoint",
         lambda d, e: (evaluate(e, d, "--out", str(shutil.copy(e.ckpt, d / "keep.pt"))), "keep.pt: is a PyTorch checkpoint")),
    Case("ckpt_other_stage", "evaluate (run folder)", "a Stage 1 checkpoint copied into stage2/",
         lambda d, e: (write(d / "run" / "stage2" / "last.pt", e.ckpt.read_bytes()) and evaluate(e, d, stages="2"),
                       "holds a Stage 1 checkpoint, not Stage 2")),
    Case("train_resume_and_overwrite", "train", "--resume and --overwrite together",
         lambda d, e: (train(e, d, "--resume", "--overwrite"), "--overwrite")),
    Case("demo_unknown_device", "demo --device", "'gpu0'",
         lambda d, e: (demo(e, d, "--device", "gpu0"), "gpu0")),
    Case("demo_device_not_cpu_or_cuda", "demo --device", "'mps' (Apple's GPU) on a machine that has none",
         lambda d, e: (demo(e, d, "--device", "mps"), "mps")),
    Case("demo_heic_photo", "demo", "an iPhone .heic photo named on the command line",
         lambda d, e: (demo(e, d, image=write(d / "IMG_0001.HEIC", b"\x00\x00\x00\x18ftypheic")), "IMG_0001.HEIC")),
    Case("demo_out_is_file", "demo --out", "output folder path is an existing file",
         lambda d, e: (["demo", str(e.image), "--checkpoint", str(e.ckpt3), "--out", str(write(d / "f", "x"))], str(d / "f"))),
    Case("dataset_image_truncated", "H36MDataset[i]", "training JPEG cut in half",
         lambda d, e: (_h36m_loader(_damaged(e, d, "h36m/images/*/*.jpg", lambda p: truncated(p, p))), ".jpg")),
    Case("dataset_image_missing", "MPIIDataset[i]", "an image listed in train.h5 is gone",
         lambda d, e: (_mpii_loader(_damaged(e, d, "mpii/images/*.jpg", Path.unlink)), ".jpg")),
    # ---- HDF5 annotations
    Case("h5_truncated", "H36MDataset", "annot.h5 cut in half",
         lambda d, e: (_h36m_loader(_damaged(e, d, "h36m/annot.h5", lambda p: truncated(p, p))), "annot.h5")),
    Case("h5_zero_bytes", "train (MPII train.h5)", "empty train.h5",
         lambda d, e: (train(e, d, data=_damaged(e, d, "mpii/train.h5", lambda p: write(p, b""))), "train.h5")),
    Case("h5_not_hdf5", "evaluate (wild_test annot.h5)", "text file in place of annot.h5",
         lambda d, e: (run_dir_with(d, e.ckpt.read_bytes()) or evaluate(
             e, d, data=_damaged(e, d, "wild_test/annot.h5", lambda p: write(p, "id,joint_2d\n"))), "annot.h5")),
    Case("h5_missing_key", "H36MDataset", "annot.h5 without joint_3d_mono",
         lambda d, e: (_h36m_annot(e, d, lambda a: a.pop("joint_3d_mono"))[0], "joint_3d_mono")),
    Case("h5_wrong_shape", "H36MDataset", "joint_2d of shape (N, 17, 2)",
         lambda d, e: (_h36m_annot(e, d, lambda a: _set(a, "joint_2d", lambda x: np.zeros((len(x), 17, 2))))[0],
                       "joint_2d")),
    Case("h5_nan_3d", "H36MDataset", "NaN in joint_3d_mono",
         lambda d, e: (_h36m_annot(e, d, lambda a: _set(a, "joint_3d_mono", _nan_at))[0], "joint_3d_mono")),
    Case("h5_nan_2d_mpii", "MPIIDataset", "NaN in part",
         lambda d, e: (_mpii_annot(e, d, lambda a: _set(a, "part", _nan_at))[0], "part")),
    Case("h5_inf_center", "MPIIDataset", "inf in center",
         lambda d, e: (_mpii_annot(e, d, lambda a: _set(a, "center", lambda x: x * np.inf))[0], "center")),
    Case("h5_text_in_numeric", "MPIIDataset", "part stored as strings",
         lambda d, e: (_mpii_annot(e, d, lambda a: _set(a, "part", lambda x: np.full(x.shape, b"1.0")))[0], "part")),
    Case("h5_scalar_dataset", "MPIIDataset", "scale stored as one scalar",
         lambda d, e: (_mpii_annot(e, d, lambda a: _set(a, "scale", lambda x: np.float64(1.0)))[0], "scale")),
    Case("h5_nonpositive_scale", "MPIIDataset", "scale of 0",
         lambda d, e: (_mpii_annot(e, d, lambda a: _set(a, "scale", np.zeros_like))[0], "scale")),
    Case("h5_zero_head_size", "MPIIDataset('val')", "normalize (PCKh head size) of 0 in val.h5",
         lambda d, e: (_mpii_annot(e, d, lambda a: _set(a, "normalize", np.zeros_like), split="val")[0],
                       "'normalize'")),
    Case("h5_zero_head_size_train", "train (MPII val.h5)", "normalize (PCKh head size) of 0 in val.h5",
         lambda d, e: (train(e, d, data=_damaged(e, d, "mpii/val.h5", lambda p: h5_variant(
             p, p, lambda a: _set(a, "normalize", np.zeros_like)))), "val.h5: 'normalize'")),
    Case("h5_3d_in_metres", "H36MDataset", "joint_3d_mono in metres instead of millimetres",
         lambda d, e: (_h36m_annot(e, d, lambda a: _set(a, "joint_3d_mono", lambda x: x / 1000.0))[0],
                       "'joint_3d_mono'")),
    Case("h5_istrain_not_0_1", "H36MDataset", "istrain 2 where 1 is meant",
         lambda d, e: (_h36m_annot(e, d, lambda a: _set(a, "istrain", lambda x: x * 2))[0], "'istrain' holds {2}")),
    Case("h5_no_test_rows", "H36MDataset('test')", "istrain is 1 on every row",
         lambda d, e: (_h36m_loader(_h36m_annot(e, d, lambda a: _set(a, "istrain", np.ones_like))[1].parent.parent,
                                    split="test"), "istrain")),
    Case("h5_sequence_short", "H36MDataset", "a converted 3DHP annot.h5 whose 'sequence' has one row too few",
         lambda d, e: (_h36m_annot(e, d, lambda a: a.update(sequence=np.ones(len(a["id"]) - 1, np.int64)))[0],
                       "sequence")),
    Case("h5_sequence_not_3dhp", "H36MDataset", "'sequence' 7, which no MPI-INF-3DHP test sequence is",
         lambda d, e: (_h36m_annot(e, d, lambda a: a.update(sequence=np.full(len(a["id"]), 7, np.int64)))[0],
                       "'sequence' holds [7]")),
    Case("h5_intrinsics_wrong_shape", "H36MDataset", "synthetic 'intrinsics' of shape (N, 3, 3)",
         lambda d, e: (_h36m_annot(e, d, lambda a: a.update(intrinsics=np.zeros((len(a["id"]), 3, 3))))[0],
                       "intrinsics")),
    Case("h5_zero_rows", "train (MPII train.h5)", "train.h5 with every dataset empty",
         lambda d, e: (train(e, d, data=_damaged(e, d, "mpii/train.h5", lambda p: h5_variant(
             p, p, lambda a: a.update({k: v[:0] for k, v in a.items()})))), "train.h5")),
    Case("data_dir_missing", "evaluate", "data.h36m_dir points nowhere",
         lambda d, e: (run_dir_with(d, e.ckpt.read_bytes()) or evaluate(e, d, data=d / "nowhere"), "annot.h5")),
    # ---- configs and overrides
    Case("config_unknown_key", "train --config", "YAML with an unknown key",
         lambda d, e: (train(e, d, config=str(write(d / "c.yaml", "profile: x\nbogus: 1\n"))), "bogus")),
    Case("config_wrong_type", "evaluate --config", "seed: abc",
         lambda d, e: (evaluate(e, d, config=str(write(d / "c.yaml", "seed: abc\n"))), "seed")),
    Case("config_not_mapping", "train --config", "YAML list at the top level",
         lambda d, e: (train(e, d, config=str(write(d / "c.yaml", "- 1\n- 2\n"))), "c.yaml")),
    Case("config_section_not_mapping", "train --config", "train: 3",
         lambda d, e: (train(e, d, config=str(write(d / "c.yaml", "train: 3\n"))), "'train'")),
    Case("config_invalid_yaml", "train --config", "unclosed bracket",
         lambda d, e: (train(e, d, config=str(write(d / "c.yaml", "seed: [\n"))), "c.yaml")),
    Case("config_not_utf8", "evaluate --config", "binary bytes",
         lambda d, e: (evaluate(e, d, config=str(write(d / "c.yaml", b"\xff\xfe\x00\x01"))), "c.yaml")),
    Case("config_missing", "train --config", "config path that does not exist",
         lambda d, e: (train(e, d, config=str(d / "nope.yaml")), "nope.yaml")),
    Case("set_unknown_key", "train --set", "train.bogus=1",
         lambda d, e: (train(e, d, "--set", "train.bogus=1"), "train.bogus")),
    Case("set_wrong_type", "train --set", "train.stage1.epochs=abc",
         lambda d, e: (train(e, d, "--set", "train.stage1.epochs=abc"), "train.stage1.epochs")),
    Case("set_no_equals", "evaluate --set", "eval.flip_test",
         lambda d, e: (evaluate(e, d, "--set", "eval.flip_test"), "eval.flip_test")),
    Case("set_invalid_yaml", "train --set", "train.stage1.lr=[",
         lambda d, e: (train(e, d, "--set", "train.stage1.lr=["), "train.stage1.lr")),
    Case("set_batch_size_zero", "train --set", "train.batch_size=0",
         lambda d, e: (train(e, d, "--set", "train.batch_size=0"), "train.batch_size")),
    Case("evaluate_bad_stages", "evaluate --stages", "'1,x'",
         lambda d, e: (evaluate(e, d, "--stages", "1,x"), "--stages")),
    Case("evaluate_repeated_stage", "evaluate --stages", "'1,2,3,3'",
         lambda d, e: (evaluate(e, d, "--stages", "1,2,3,3"), "--stages")),
    # ---- notebooks and sweeps
    Case("notebook_unknown_parameter", "run-notebook", "-p bogus 1",
         lambda d, e: (["run-notebook", "01_data_prep", str(d / "o.ipynb"), "-p", "bogus", "1"], "bogus")),
    Case("notebook_parameter_not_yaml", "run-notebook", "-p stages '[' (a list parameter; text ones take any text)",
         lambda d, e: (["run-notebook", "06_eval_mpjpe", str(d / "o.ipynb"), "-p", "stages", "["], "stages")),
    Case("notebook_missing", "run-notebook", "notebook name that does not exist",
         lambda d, e: (["run-notebook", "99_nope", str(d / "o.ipynb")], "99_nope")),
    Case("notebook_not_json", "run-notebook", "a .ipynb that is not JSON",
         lambda d, e: (["run-notebook", str(write(d / "bad.ipynb", "{cells: ")), str(d / "o.ipynb")], "bad.ipynb")),
    Case("sweep_unknown_parameter", "sweep --param", "a key the config does not have",
         lambda d, e: (["sweep", "--param", "bogus", "--values", "1", "--notebooks", "06_eval_mpjpe",
                        "--out", str(d / "sweep")], "bogus")),
    Case("sweep_no_values", "sweep --values", "','",
         lambda d, e: (["sweep", "--values", ",", "--out", str(d / "sweep")], "--values")),
    Case("sweep_values_not_yaml", "sweep --values", "'0,[1'",
         lambda d, e: (["sweep", "--param", "train.stage3.lr", "--values", "0,[1", "--notebooks", "06_eval_mpjpe",
                        "--out", str(d / "sweep")], "--values")),
    Case("sweep_seeds_not_integers", "sweep --seeds", "'0,x'",
         lambda d, e: (["sweep", "--param", "train.stage3.lr", "--values", "2", "--seeds", "0,x", "--notebooks", "06_eval_mpjpe",
                        "--out", str(d / "sweep")], "--seeds")),
    Case("sweep_values_empty_item", "sweep --values", "'0,,0.1' (a value dropped by a typo)",
         lambda d, e: (["sweep", "--param", "train.stage3.lr", "--values", "0.1,,0.2", "--notebooks", "06_eval_mpjpe",
                        "--out", str(d / "sweep")], "--values '0.1,,0.2': item 2 of 3 is empty")),
    Case("ablation_set_arm_key", "ablation --set", "the geometric weight set on every arm (arm c becomes arm b)",
         lambda d, e: (["ablation", "--profile", "smoke", "--seeds-bc", "0", "--seeds-a", "0", "--out", str(d / "abl"),
                        "--set", "train.stage3.geometric_weight=0"], "train.stage3.geometric_weight")),
    Case("sweep_value_out_of_bounds", "sweep --values", "a value below the key's bound",
         lambda d, e: (["sweep", "--param", "train.stage3.lr", "--values", "-1", "--notebooks", "06_eval_mpjpe",
                        "--out", str(d / "sweep")], "train.stage3.lr")),
    Case("sweep_missing_base_run", "sweep --base-run", "base run folder that does not exist",
         lambda d, e: (["sweep", "--param", "train.stage3.lr", "--values", "0.001", "--notebooks", "04_train_geometry",
                        "06_eval_mpjpe", "--base-run", str(d / "nobase"), "--out", str(d / "sweep")],
                       "nobase")),
    # ---- report
    Case("report_metrics_missing", "report --metrics", "metrics CSV that does not exist",
         lambda d, e: (["report", "--metrics", str(d / "nope.csv"), "--readme", str(readme_with_block(d))], "nope.csv")),
    Case("report_metrics_columns", "report --metrics", "CSV with other columns",
         lambda d, e: (["report", "--metrics", str(write(d / "m.csv", "a,b\n1,2\n")), "--readme",
                        str(readme_with_block(d))], "m.csv")),
    Case("report_metrics_value", "report --metrics", "value column holds text",
         lambda d, e: (["report", "--metrics", str(write(d / "m.csv", METRICS_HEADER + "stage1,lab_test,p1_mpjpe,all,n/a\n")),
                        "--readme", str(readme_with_block(d))], "m.csv")),
    Case("report_metrics_negative", "report --metrics", "a negative millimetre value",
         lambda d, e: (["report", "--metrics", str(write(d / "m.csv", METRICS_HEADER + "stage1,lab_test,p1_mpjpe,all,-5\n")),
                        "--readme", str(readme_with_block(d))], "m.csv: line 2")),
    Case("report_metrics_nan", "report --metrics", "a nan value going into the README",
         lambda d, e: (["report", "--metrics", str(write(d / "m.csv", METRICS_HEADER + "stage1,lab_test,p1_mpjpe,all,nan\n")),
                        "--readme", str(readme_with_block(d))], "m.csv: 1 value(s) are nan")),
    Case("report_readme_no_block", "report --readme", "README without the results markers",
         lambda d, e: (["report", "--metrics", str(write(d / "m.csv", METRICS_HEADER + "stage1,lab_test,p1_mpjpe,all,1\n")),
                        "--readme", str(write(d / "R.md", "# no block\n"))], "R.md")),
    # ---- prepare-synthetic
    Case("prepare_out_is_file", "prepare-synthetic --out", "output path is an existing file",
         lambda d, e: (["prepare-synthetic", "--profile", "smoke", "--out", str(write(d / "f", "x"))], str(d / "f"))),
    Case("prepare_foreign_folder", "prepare-synthetic --out", "folder with someone else's files",
         lambda d, e: (["prepare-synthetic", "--profile", "smoke", "--out",
                        str(write(d / "mine" / "notes.txt", "mine").parent)], "mine")),
    Case("prepare_negative_seed", "prepare-synthetic --seed", "-1",
         lambda d, e: (["prepare-synthetic", "--profile", "smoke", "--out", str(d / "s"), "--seed", "-1"], "seed")),
    # ---- command line
    Case("cli_unknown_command", "python -m pose3dlib", "command 'frobnicate'",
         lambda d, e: (["frobnicate"], "frobnicate")),
    Case("cli_missing_argument", "train", "no --stage",
         lambda d, e: (["train", "--config", SMOKE], "--stage")),
    # ---- checkpoint entries of the wrong type (appended: the table's earlier rows keep their numbers)
    Case("ckpt_stage_bool", "load_checkpoint", "'stage' is True (a bool where an int is expected)",
         lambda d, e: (partial(load_checkpoint, ckpt_variant(e, d / "c.pt", stage=True)),
                       "checkpoint entry 'stage' is a bool, expected an int")),
    Case("ckpt_model_values_not_tensors", "load_model", "'model' maps parameter names to lists, not tensors",
         lambda d, e: (partial(load_model, ckpt_variant(e, d / "c.pt", model={
             k: v.tolist() for k, v in e.ckpt_dict()["model"].items()})),
                       "checkpoint entry 'model' must map parameter names to tensors")),
    Case("ckpt_newer_format_new_key", "load_checkpoint", "a future pose3dlib's checkpoint, its config with a key "
         "this one does not know",
         lambda d, e: (partial(load_checkpoint, ckpt_variant(e, d / "c.pt", format_version=99, config={
             **e.ckpt_dict()["config"], "future": {"knob": 1}})), "format_version 99 is newer than this pose3dlib")),
    # ---- the converters of the official downloads (appended: the table's earlier rows keep their numbers)
    Case("h36m_metadata_missing", "convert-h36m", "a download without metadata.xml",
         lambda d, e: (["convert-h36m", str(_h36m_download(e, d, metadata=False)[0]), str(d / "out")], "metadata.xml")),
    Case("h36m_metadata_truncated", "convert-h36m", "metadata.xml cut in half",
         lambda d, e: (["convert-h36m", str(truncated(e.official / "h36m" / "metadata.xml",
                                                      _h36m_download(e, d)[0] / "metadata.xml").parent), str(d / "out")],
                       f"{d / 'h36m' / 'metadata.xml'}: not a readable metadata.xml")),
    Case("h36m_subject_not_in_download", "convert-h36m --subjects", "'9 6' where the download has no S6/",
         lambda d, e: (["convert-h36m", str(_h36m_download(e, d)[0]), str(d / "out"), "--subjects", "9", "6"],
                       "no S6/")),
    Case("h36m_cdf_without_pose", "convert_h36m", "a D3_Positions_mono CDF whose variable is 'Positions', not 'Pose'",
         lambda d, e: (lambda call, path: (call, f"{path}: no variable 'Pose'"))(
             *_pose_file(e, d, "Positions", lambda a: a))),
    Case("h36m_cdf_wrong_shape", "convert_h36m", "3D 'Pose' of 31 joints, (1, N, 93)",
         lambda d, e: (lambda call, path: (call, f"{path}: 'Pose' has shape (1, 3, 93), expected (1, N, 96)"))(
             *_pose_file(e, d, "Pose", lambda a: a[:, :, :93]))),
    Case("h36m_2d_frames_differ", "convert_h36m", "a D2_Positions CDF one frame shorter than its 3D file",
         lambda d, e: (lambda call, path: (call, f"{path} holds 2 frames"))(
             *_pose_file(e, d, "Pose", lambda a: a[:, :-1], which=2))),
    Case("mpii_mat_truncated", "convert-mpii", "mpii_human_pose_v1_u12_1.mat cut in half",
         lambda d, e: (["convert-mpii", str(truncated(e.official / "mpii" / "mpii_human_pose_v1_u12_1.mat",
                                                      d / "mpii" / "mpii_human_pose_v1_u12_1.mat")),
                        str(e.official / "mpii" / "images"), str(d / "out")],
                       "mpii_human_pose_v1_u12_1.mat: not a readable MATLAB v5 file")),
    Case("mpii_release_without_img_train", "convert-mpii", "RELEASE without its img_train field",
         lambda d, e: (["convert-mpii", str(_mpii_release_without(e, d, "img_train")), str(e.official / "mpii" / "images"),
                        str(d / "out")], "img_train")),
    Case("3dhp_without_univ_annot3", "convert_3dhp", "TS1/annot_data.mat without univ_annot3",
         lambda d, e: (_3dhp_download(e, d, _replace("univ_annot3", lambda a: None)), "'univ_annot3'")),
    Case("3dhp_annot2_16_joints", "convert_3dhp", "TS1 annot2 of 16 joints, (n, 1, 16, 2)",
         lambda d, e: (_3dhp_download(e, d, _replace("annot2", lambda a: a[..., :16, :])), "expected n x 17 x 2")),
]


# ----------------------------------------------------------------------------- running and classifying

@dataclass(frozen=True)
class Outcome:
    handled: bool
    how: str  # "exit 2", "DataError", ... or what went wrong
    message: str  # the one line the user sees (or the escaped exception)


def classify(call: list[str] | Callable[[], object], needle: str, marker: Path) -> Outcome:
    """Run one malformed input and classify the result (see the module docstring)."""
    out, err = io.StringIO(), io.StringIO()
    escaped: BaseException | None = None
    status = None
    log_to_stderr = logging.StreamHandler(err)  # library warnings reach the user's terminal too
    log_to_stderr.setLevel(logging.WARNING)
    logging.getLogger().addHandler(log_to_stderr)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            if isinstance(call, list):
                status = cli.main(call)
            else:
                call()
    except SystemExit as e:  # argparse usage errors
        status = e.code
    except Exception as e:
        escaped = e
    finally:
        logging.getLogger().removeHandler(log_to_stderr)
    if marker.exists():
        return Outcome(False, "code from the file RAN", marker.read_text())
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    if isinstance(call, list):
        if escaped is not None:
            return Outcome(False, f"{type(escaped).__name__} escaped", " ".join(str(escaped).split())[:300])
        text = lines[-1] if lines else ""
        one_line = len(lines) == 1 and text.startswith("error: ")
        argparse_usage = bool(lines) and lines[0].startswith("usage:") and ": error: " in text
        ok = status == 2 and (one_line or argparse_usage) and "Traceback" not in err.getvalue() and needle in text
        return Outcome(ok, f"exit {status}" + ("" if ok else f", {len(lines)} stderr lines"), text)
    if escaped is None:
        return Outcome(False, "accepted", "no error for malformed input")
    message = str(escaped)
    ok = isinstance(escaped, Pose3DError) and "\n" not in message and needle in message
    return Outcome(ok, type(escaped).__name__, " ".join(message.split())[:300])


def run_case(case: Case, d: Path, env: Env) -> Outcome:
    """Build the case and classify it; a case whose own build raises is unhandled (a broken case proves nothing)."""
    d.mkdir(parents=True, exist_ok=True)
    try:
        call, needle = case.build(d, env)
    except Exception as e:
        return Outcome(False, f"the case's build raised {type(e).__name__}", " ".join(str(e).split())[:300])
    return classify(call, needle, d / MARKER)


# ----------------------------------------------------------------------------- tests

@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Env:
    return make_env(tmp_path_factory.mktemp("malformed_env"))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_input_is_handled(case: Case, env: Env, tmp_path):
    outcome = run_case(case, tmp_path / case.id, env)
    assert outcome.handled, f"{case.id} ({case.target}: {case.malformed}): {outcome.how}: {outcome.message}"


def test_corpus_covers_every_command_and_loader():
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)
    targets = " ".join(c.target for c in CASES)
    for command in ("prepare-synthetic", "train", "evaluate", "demo", "convert-hg3d", "report", "sweep",
                    "run-notebook", "convert-h36m", "convert-mpii", "convert_3dhp"):
        assert command in targets, f"no malformed input for `{command}`"
    for loader in ("H36MDataset", "MPIIDataset", "load_checkpoint", "load_model"):
        assert loader in targets


def test_pristine_inputs_are_accepted(env: Env, tmp_path):
    """The classifier must be able to fail: the unmodified inputs run (exit 0 / no error)."""
    assert cli.main(demo(env, tmp_path)) == 0
    assert load_model(env.ckpt)[1].profile == "smoke"
    sample = _h36m_loader(env.data)()
    assert sample["image"].shape == (3, 64, 64)
    unhandled = classify(lambda: None, "x", tmp_path / MARKER)
    assert not unhandled.handled and unhandled.how == "accepted"
    escaped = classify(lambda: {}["key"], "key", tmp_path / MARKER)
    assert not escaped.handled and escaped.how == "KeyError"


def test_the_converter_cases_start_from_fakes_that_convert(env: Env, tmp_path):
    """The converter cases' builders, with nothing edited, give downloads that convert: what their cases
    change is what the converters refuse, not a fake the builders broke."""
    call, _ = _pose_file(env, tmp_path / "h36m3", "Pose", lambda a: a)
    assert call()["rows"] > 0
    call, _ = _pose_file(env, tmp_path / "h36m2", "Pose", lambda a: a, which=2)
    assert call()["rows"] > 0
    assert sum(_3dhp_download(env, tmp_path / "3dhp", lambda f: None)()["frames"].values()) > 0
    mat = _mpii_release_without(env, tmp_path / "mpii", "no_such_field")
    assert cli.main(["convert-mpii", str(mat), str(env.official / "mpii" / "images"), str(tmp_path / "mpii" / "out")]) == 0


def test_a_case_whose_build_raises_is_unhandled(env: Env, tmp_path):
    """A broken case proves nothing: its build error is never counted as handled, even a one-line DataError."""
    from pose3dlib.engine.errors import DataError

    def broken(d: Path, e: Env):
        raise DataError("one line, as a loader would raise")

    outcome = run_case(Case("broken", "H36MDataset", "none: the case itself is broken", broken), tmp_path, env)
    assert not outcome.handled and outcome.how == "the case's build raised DataError"


def test_debug_flag_shows_the_exception_instead(env: Env, tmp_path):
    from pose3dlib.engine.errors import DataError

    argv = demo(env, tmp_path, image=truncated(env.image, tmp_path / "half.jpg"))
    with pytest.raises(DataError, match="half.jpg"):
        cli.main([*argv, "--debug"])


def _edited_copy(env: Env, d: Path, name: str, edit: Callable[[dict], None]) -> Path:
    """A private data copy whose file `name` (e.g. "mpii/val.h5") has its datasets edited; returns its root."""
    root = env.data_copy(d)
    h5_variant(root / name, root / name, edit)
    return root


def _at_row(key: str, row: int, value) -> Callable[[dict], None]:
    def edit(arrays: dict) -> None:
        arrays[key] = arrays[key].astype(np.float64)
        arrays[key][row] = value
    return edit


def test_val_head_sizes_must_be_positive_on_the_rows_pckh_scores(env: Env, tmp_path):
    from pose3dlib.data.mpii import MPIIDataset
    from pose3dlib.engine.errors import DataError

    cfg = load_config(SMOKE).data
    root = _edited_copy(env, tmp_path / "neg", "mpii/val.h5", _at_row("normalize", 2, -3.5))
    path = root / "mpii" / "val.h5"
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: 'normalize' \(the PCKh head size\) is -3.5 in row 2 "
                                        r"\(1 of \d+ rows\); expected a head size in px, > 0 and finite$"):
        MPIIDataset(root / "mpii", "val", cfg)
    # training never reads normalize: a train.h5 with head sizes of 0 still loads
    root = _edited_copy(env, tmp_path / "train", "mpii/train.h5", lambda a: _set(a, "normalize", np.zeros_like))
    assert len(MPIIDataset(root / "mpii", "train", cfg)) == TINY.mpii_train

    def unannotated_row_without_head(arrays: dict) -> None:  # PCKh never scores a person without joints
        _at_row("normalize", 1, 0.0)(arrays)
        arrays["part"] = arrays["part"].astype(np.float64)
        arrays["part"][1] = 0.0
    root = _edited_copy(env, tmp_path / "empty_row", "mpii/val.h5", unannotated_row_without_head)
    assert not MPIIDataset(root / "mpii", "val", cfg).annotated[1].any()


def test_evaluate_names_a_zero_head_size(env: Env, tmp_path, capsys):
    """Before: a bare `ValueError: head_size must be positive` from metrics.py, naming no file."""
    root = _edited_copy(env, tmp_path, "mpii/val.h5", _at_row("normalize", 0, 0.0))
    run_dir_with(tmp_path, env.ckpt.read_bytes())
    assert cli.main(evaluate(env, tmp_path, data=root)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith(
        f"error: {root / 'mpii' / 'val.h5'}: 'normalize' (the PCKh head size) is 0 in row 0 ")


def test_h36m_joints_in_metres_are_refused(env: Env, tmp_path, monkeypatch):
    from pose3dlib.data import h36m
    from pose3dlib.engine.errors import DataError

    root = _edited_copy(env, tmp_path, "h36m/annot.h5", lambda a: _set(a, "joint_3d_mono", lambda x: x / 1000.0))
    path = root / "h36m" / "annot.h5"
    match = rf"^{re.escape(str(path))}: 'joint_3d_mono': a person's joints span [\d.]+ units .*expected mm .*metres instead of millimetres"
    with pytest.raises(DataError, match=match):
        h36m.H36MDataset(root / "h36m", "test", load_config(SMOKE).data)
    monkeypatch.setattr(h36m, "UNITS_SAMPLE_ROWS", 3)  # a large file: only an evenly spaced sample is measured
    with pytest.raises(DataError, match=r"median over [3-5] frames"):
        h36m.read_annotations(path)
    assert len(h36m.read_annotations(env.data / "h36m" / "annot.h5")["id"]) == TINY.h36m_train + TINY.h36m_test


def test_smoke_data_still_load(smoke_data):
    """The smoke-size data the generator writes (the session's copy, as `prepare-synthetic --profile smoke`
    writes the project's) passes every check above: each split loads with the sizes the smoke profile asks for."""
    from pose3dlib.data.h36m import H36MDataset
    from pose3dlib.data.mpii import MPIIDataset

    smoke = load_config(SMOKE, smoke_data)
    cfg, sizes = smoke.data, smoke.synthetic
    assert [len(H36MDataset(cfg.h36m_dir, split, cfg)) for split in ("train", "test")] == [sizes.h36m_train,
                                                                                          sizes.h36m_test]
    assert len(H36MDataset(cfg.wild_test_dir, "test", cfg)) == sizes.wild_test
    assert len(MPIIDataset(cfg.mpii_dir, "val", cfg)) == sizes.mpii_val


def test_istrain_other_than_0_or_1_is_named(env: Env, tmp_path):
    from pose3dlib.data.h36m import H36MDataset
    from pose3dlib.engine.errors import DataError

    root = _edited_copy(env, tmp_path, "h36m/annot.h5", lambda a: _set(a, "istrain", lambda x: x * 2))
    path = root / "h36m" / "annot.h5"
    for split in ("train", "test"):  # the test split has its 0 rows: the 2s were silently left out of both
        with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: 'istrain' holds \{{2\}}; expected 0 or 1$"):
            H36MDataset(root / "h36m", split, load_config(SMOKE).data)


# ----------------------------------------------------------------------------- the table in docs/reliability.md

def outcome_table(outcomes: list[tuple[Case, Outcome]], tmp: Path) -> str:
    """Markdown table of the corpus outcomes (temporary paths shown as <tmp>, a pickled storage's key, a
    memory address that changes from run to run, as <key>, so the table changes only when an outcome does)."""
    def clean(text: str) -> str:
        text = text.replace(str(tmp), "<tmp>").replace(str(PROJECT_ROOT), "<repo>").replace("|", "\\|")
        text = re.sub(r"storage '\d+'", "storage '<key>'", text)
        return text if len(text) <= 140 else text[:137] + "..."

    handled = sum(o.handled for _, o in outcomes)
    lines = [f"{len(outcomes)} malformed inputs, {handled} handled, **{len(outcomes) - handled} unhandled**.", "",
             "| # | case | given to | malformed input | outcome | what the user sees |", "|---:|---|---|---|---|---|"]
    for i, (case, o) in enumerate(outcomes, 1):
        verdict = ("handled, " if o.handled else "**UNHANDLED**, ") + o.how
        lines.append(f"| {i} | `{case.id}` | `{case.target}` | {clean(case.malformed)} | {verdict} | `{clean(o.message)}` |")
    return "\n".join(lines)


def write_table(doc: Path = DOC) -> int:
    """Run the corpus and replace the table between the markers in `doc`; returns the unhandled count."""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name).resolve()
        env = make_env(tmp / "env")
        outcomes = [(c, run_case(c, tmp / "cases" / c.id, env)) for c in CASES]
        table = outcome_table(outcomes, tmp)
    replace_marked_block(doc, TABLE_START, TABLE_END, f"{TABLE_START}\n{table}\n{TABLE_END}")
    unhandled = sum(not o.handled for _, o in outcomes)
    print(f"{doc}: {len(outcomes)} cases, {unhandled} unhandled")
    return unhandled


if __name__ == "__main__":
    if sys.argv[1:] != ["--table"]:
        raise SystemExit("usage: python tests/test_malformed_inputs.py --table")
    raise SystemExit(1 if write_table() else 0)


def test_a_val_split_without_head_sizes_is_named(tmp_path):
    """PCKh needs `normalize`; without it evaluate crashed with a TypeError deep in the metric."""
    import h5py

    from pose3dlib.config import load_config
    from pose3dlib.data.mpii import MPIIDataset

    root = tmp_path / "mpii"
    root.mkdir()
    rng = np.random.default_rng(0)
    with h5py.File(root / "val.h5", "w") as f:
        f["imgname"] = np.array([b"a.jpg", b"b.jpg"])
        f["part"] = rng.uniform(10, 50, (2, 16, 2))
        f["center"] = np.full((2, 2), 30.0)
        f["scale"] = np.ones(2)
        f["visible"] = np.ones((2, 16))
    with pytest.raises(Pose3DError, match=r"val\.h5: no .normalize. \(the PCKh head size per row"):
        MPIIDataset(root, "val", load_config("configs/smoke.yaml").data)

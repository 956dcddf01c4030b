"""Every checkpoint load is safe.

A source scan checks that every `torch.load` in the library (and the notebooks) passes
`weights_only=True` and that no other deserialiser that can run code is used, except the
allow-list unpickler of pose3dlib.original.compat. Then malicious checkpoints (pickles whose
`__reduce__` would create a marker file) are given to every command and API that takes a
checkpoint: each must refuse with exit status 2 and one line, and the marker never appears.
"""
from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from pose3dlib.config import SyntheticConfig, config_to_dict, load_config
from pose3dlib.engine.checkpoint import load_checkpoint, make_checkpoint
from pose3dlib.engine.errors import CheckpointError
from pose3dlib.engine.paths import NOTEBOOKS_DIR, PROJECT_ROOT
from pose3dlib.model import build_model, load_model
from pose3dlib.original import compat
from pose3dlib.tools import cli

LIBRARY = PROJECT_ROOT / "pose3dlib"
SMOKE = "configs/smoke.yaml"
TINY = SyntheticConfig(image_size=64, h36m_train=8, h36m_test=8, mpii_train=8, mpii_val=8, wild_test=8, workers=1)

# Calls that deserialise with the power to run code; none may appear in the library.
FORBIDDEN_CALLS = {
    ("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"), ("torch.jit", "load"), ("jit", "load"),
    ("yaml", "load"), ("yaml", "unsafe_load"), ("yaml", "full_load"), ("yaml", "load_all"), ("marshal", "loads"),
    ("marshal", "load"), ("joblib", "load"), ("dill", "load"), ("dill", "loads"), ("shelve", "open"),
    ("serialization", "add_safe_globals"), ("serialization", "safe_globals"),
}


# ----------------------------------------------------------------------------- source scan

def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else "?"


def unsafe_loads(source: str, where: str) -> list[str]:
    """Findings in Python source: torch.load without weights_only=True, code-running deserialisers,
    np.load(allow_pickle=True), eval/exec, and Unpickler subclasses other than compat's."""
    findings = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                if _dotted(base).endswith("Unpickler") and not (where.endswith("compat.py")
                                                                 and node.name == "RestrictedUnpickler"):
                    findings.append(f"{where}:{node.lineno}: class {node.name}({_dotted(base)})")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        keywords = {k.arg: k.value for k in node.keywords}
        if name.endswith("torch.load") or name == "load" and "weights_only" in keywords:
            w = keywords.get("weights_only")
            if not (isinstance(w, ast.Constant) and w.value is True):
                findings.append(f"{where}:{node.lineno}: {name}(...) without weights_only=True")
        module, _, attr = name.rpartition(".")
        if (module.rpartition(".")[2], attr) in FORBIDDEN_CALLS or (module, attr) in FORBIDDEN_CALLS:
            findings.append(f"{where}:{node.lineno}: {name}(...)")
        if name.endswith(("np.load", "numpy.load")):
            a = keywords.get("allow_pickle")
            if a is not None and not (isinstance(a, ast.Constant) and a.value is False):
                findings.append(f"{where}:{node.lineno}: {name}(allow_pickle=...)")
        if name in ("eval", "exec", "__import__"):
            findings.append(f"{where}:{node.lineno}: {name}(...)")
    return findings


def test_scanner_finds_unsafe_loads():
    """The scan must be able to fail."""
    bad = ("import torch, pickle, yaml, numpy as np\n"
           "torch.load('a')\ntorch.load('a', weights_only=False)\npickle.loads(b'')\nyaml.load('x')\n"
           "np.load('a', allow_pickle=True)\ntorch.serialization.add_safe_globals([])\n"
           "class U(pickle.Unpickler): pass\n")
    assert len(unsafe_loads(bad, "x.py")) == 7
    assert unsafe_loads("import torch\ntorch.load('a', weights_only=True)\nyaml.safe_load('x')\n", "x.py") == []


def test_every_load_in_the_library_and_notebooks_is_safe():
    findings = []
    for path in sorted(LIBRARY.rglob("*.py")):
        findings += unsafe_loads(path.read_text(), str(path.relative_to(PROJECT_ROOT)))
    for nb in sorted(NOTEBOOKS_DIR.glob("*.ipynb")):
        for i, cell in enumerate(json.loads(nb.read_text())["cells"]):
            if cell["cell_type"] == "code":
                src = "".join(cell["source"])
                src = "\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!")))
                findings += unsafe_loads(src, f"{nb.name} cell {i}")
    assert findings == []


def test_compat_allow_list_holds_only_inert_stand_ins():
    """RestrictedUnpickler resolves names only to our stand-ins and a few plain containers."""
    plain = {OrderedDict, set, tuple, compat._ParameterStub}
    ours = {compat._rebuild_tensor, compat._rebuild_parameter, compat._no_backend}
    for (module, name), obj in compat._ALLOWED.items():
        ok = (obj in plain or obj in ours or isinstance(obj, compat._StorageType)
              or (isinstance(obj, type) and issubclass(obj, compat.ModuleStub)))
        assert ok, f"{module}.{name} -> {obj!r} is not an inert stand-in"
        assert getattr(obj, "__module__", "pose3dlib") in ("pose3dlib.original.compat", "collections", "builtins"), (module, name)


# ----------------------------------------------------------------------------- malicious files

class EvilExec:
    """`exec` a line of Python that writes the marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


class EvilSystem:
    """Run a shell command that creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def write_payload(kind: str, path: Path, marker: Path, good: dict) -> Path:
    """A malicious checkpoint file of one of four kinds (see PAYLOADS)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "pose3d_dict_with_object":  # a real pose3d checkpoint with one malicious entry
        torch.save({**good, "extra": {"finished": True, "note": EvilExec(marker)}}, path)
    elif kind == "zip_object":
        torch.save(EvilSystem(marker), path)
    elif kind == "legacy_object":  # torch's pre-1.6 format, as the original release wrote
        torch.save({"state_dict": EvilExec(marker)}, path, _use_new_zipfile_serialization=False)
    elif kind == "bare_pickle":
        path.write_bytes(pickle.dumps(EvilSystem(marker), protocol=2))
    else:
        raise ValueError(kind)
    return path


PAYLOADS = ("pose3d_dict_with_object", "zip_object", "legacy_object", "bare_pickle")


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    """Tiny data, a valid checkpoint dict, and the --set overrides pointing at the data."""
    from pose3dlib.synthetic.generator import generate, synthetic_overrides

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("safe_env")
    data = generate(root / "data", TINY, seed=0)
    cfg = load_config(SMOKE)
    good = make_checkpoint(model_state=build_model(cfg.model).state_dict(), config=config_to_dict(cfg), stage=1,
                           extra={"finished": True})
    sets = []
    for key, sub in (("h36m_dir", "h36m"), ("mpii_dir", "mpii"), ("wild_test_dir", "wild_test")):
        sets += ["--set", f"data.{key}={data / sub}"]
    sets += [arg for o in synthetic_overrides(TINY) for arg in ("--set", o)]  # its sizes
    image = next((data / "h36m" / "images").rglob("*.jpg"))
    return {"good": good, "sets": sets, "image": image}


def command_for(name: str, evil: Path, d: Path, env: dict) -> list[str]:
    """argv giving the malicious file to one command (placing it in a run folder where needed)."""
    run = d / "run"
    train = ["train", "--config", SMOKE, "--run-dir", str(run), *env["sets"]]
    if name in ("train_resume", "train_stage2_default_init", "evaluate"):
        stage = 1
        (run / f"stage{stage}").mkdir(parents=True, exist_ok=True)
        shutil.copy(evil, run / f"stage{stage}" / "last.pt")
    return {
        "train_init": train + ["--stage", "1", "--init", str(evil)],
        "train_resume": train + ["--stage", "1", "--resume"],
        "train_stage2_default_init": train + ["--stage", "2"],
        "evaluate": ["evaluate", "--config", SMOKE, "--run-dir", str(run), "--stages", "1", "--limit", "2",
                     *env["sets"]],
        "demo": ["demo", str(env["image"]), "--checkpoint", str(evil), "--out", str(d / "out"), "--device", "cpu"],
        "convert_hg3d": ["convert-hg3d", str(evil), str(d / "converted.pt")],
    }[name]


COMMANDS = ("train_init", "train_resume", "train_stage2_default_init", "evaluate", "demo", "convert_hg3d")


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("command", COMMANDS)
def test_malicious_checkpoint_runs_nothing_in_any_command(command, payload, env, tmp_path):
    marker = tmp_path / "MARKER"
    evil = write_payload(payload, tmp_path / "evil.pt", marker, env["good"])
    argv = command_for(command, evil, tmp_path, env)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = cli.main(argv)
    lines = err.getvalue().strip().splitlines()
    assert not marker.exists(), f"{command} ran code from a {payload} checkpoint"
    assert status == 2 and len(lines) == 1 and lines[0].startswith("error: "), err.getvalue()
    assert "evil.pt" in lines[0] or "last.pt" in lines[0]
    assert not (tmp_path / "converted.pt").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_malicious_checkpoint_runs_nothing_through_the_python_api(payload, env, tmp_path):
    from pose3dlib.engine.train import stage_status, train_or_load

    marker = tmp_path / "MARKER"
    evil = write_payload(payload, tmp_path / "run" / "stage1" / "last.pt", marker, env["good"])
    cfg = load_config(SMOKE)
    loaders = [load_checkpoint, load_model, compat.load_hg3d, compat.read_torch_file,
               lambda p: stage_status(cfg, 1, tmp_path / "run"), lambda p: train_or_load(cfg, 1, tmp_path / "run")]
    for load in loaders:
        with pytest.raises(CheckpointError, match="refused|not a pose3d checkpoint|not a readable"):
            load(evil)
    assert not marker.exists()


@pytest.mark.parametrize("command", ["demo", "convert-hg3d"])
def test_malicious_checkpoint_from_the_shell(command, env, tmp_path):
    """As a user runs it: `python -m pose3dlib demo|convert-hg3d` in a fresh process."""
    marker = tmp_path / "MARKER"
    evil = write_payload("legacy_object" if command == "convert-hg3d" else "pose3d_dict_with_object",
                         tmp_path / "evil.pt", marker, env["good"])
    args = ({"demo": ["demo", str(env["image"]), "--checkpoint", str(evil), "--out", str(tmp_path / "out")],
             "convert-hg3d": ["convert-hg3d", str(evil), str(tmp_path / "converted.pt")]})[command]
    r = subprocess.run([sys.executable, "-m", "pose3dlib", *args], cwd=PROJECT_ROOT, check=False, capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, OMP_NUM_THREADS="1"))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "refused" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not marker.exists()


def test_the_payloads_would_run_code_if_loaded_unsafely(env, tmp_path):
    """Control: the same files do create the marker under an unsafe load, so the tests above can fail."""
    for payload in ("pose3d_dict_with_object", "zip_object"):
        marker = tmp_path / f"MARKER_{payload}"
        evil = write_payload(payload, tmp_path / f"{payload}.pt", marker, env["good"])
        torch.load(evil, weights_only=False)  # what an unsafe loader would do
        assert marker.exists(), payload

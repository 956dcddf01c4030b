"""The library's layout by role: public import paths, the method's imports, the module map."""
import ast
import importlib
import re

import pytest

from pose3dlib.engine.paths import PROJECT_ROOT

LIBRARY = PROJECT_ROOT / "pose3dlib"
METHOD = ("skeleton", "camera", "model", "losses", "decode", "metrics")
# what the method modules may import from the package besides each other: the config, the
# error types, and (model.load_model, inside the function) the checkpoint format
METHOD_MAY_IMPORT = {"pose3dlib.config", "pose3dlib.engine.errors", "pose3dlib.engine.checkpoint"}


def library_modules() -> list[str]:
    """Every .py file of the library as a path relative to pose3dlib/ (package markers left out)."""
    return sorted(p.relative_to(LIBRARY).as_posix() for p in LIBRARY.rglob("*.py")
                  if "__pycache__" not in p.parts and p.name != "__init__.py")


@pytest.mark.parametrize(("module", "names"), [
    ("pose3dlib.config", ["load_config", "Config"]),
    ("pose3dlib.model", ["load_model", "HourglassNet3D"]),
    ("pose3dlib.metrics", ["mpjpe", "pa_mpjpe", "pckh"]),
    ("pose3dlib.skeleton", ["MPII16", "DEPTH_ROOT"]),
    ("pose3dlib.decode", ["heatmaps_to_joints", "reconstruct_3d"]),
    ("pose3dlib.data.mpii", ["read_annotations", "MPIIDataset"]),
    ("pose3dlib.data.h36m", ["read_annotations", "H36MDataset"]),
])
def test_public_entry_points_keep_their_import_paths(module, names):
    mod = importlib.import_module(module)
    missing = [n for n in names if not hasattr(mod, n)]
    assert not missing, f"{module} lacks {missing}"


def test_every_cli_command_module_exists_and_has_its_two_functions():
    from pose3dlib.tools.cli import COMMANDS

    for name, (module, _) in COMMANDS.items():
        mod = importlib.import_module(module)
        assert callable(getattr(mod, "add_arguments", None)) and callable(getattr(mod, "run", None)), name


def _imports_of(path) -> set[str]:
    """Absolute names of the pose3dlib modules that `path` imports (relative imports resolved)."""
    package = ["pose3dlib", *path.relative_to(LIBRARY).parent.parts]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found.add(target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {n for n in found if n.split(".")[0] == "pose3dlib"}


def test_the_method_modules_import_only_the_method_the_config_and_the_error_types():
    allowed = {f"pose3dlib.{m}" for m in METHOD} | METHOD_MAY_IMPORT
    for m in METHOD:
        extra = _imports_of(LIBRARY / f"{m}.py") - allowed
        assert not extra, f"pose3dlib/{m}.py imports {sorted(extra)}"


def test_the_import_check_resolves_relative_imports():
    # the checker itself: engine/train.py reaches the config with `from ..config import ...`
    imports = _imports_of(LIBRARY / "engine" / "train.py")
    assert "pose3dlib.config" in imports and "pose3dlib.engine.checkpoint" in imports


def test_architecture_doc_maps_every_module():
    doc = (PROJECT_ROOT / "docs" / "architecture.md").read_text()
    rows = [line for line in doc.splitlines() if line.startswith("| `")]
    mapped = set()
    for row in rows:
        first_cell = row.split("|")[1]
        # a folder row ("`tools/bench/`") maps everything under it
        mapped.update(re.findall(r"`([\w/]+(?:\.py|/))`", first_cell))
    missing = []
    for rel in library_modules():
        folders = [rel.rsplit("/", k)[0] + "/" for k in range(1, rel.count("/") + 1)]
        if rel not in mapped and not any(f in mapped for f in folders) and rel != "__main__.py":
            missing.append(rel)
    assert not missing, f"docs/architecture.md has no row for {missing}"
    assert "__main__.py" in mapped


def test_top_level_holds_only_the_method_and_the_config():
    top = sorted(p.stem for p in LIBRARY.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert top == sorted([*METHOD, "config"])

"""Fixtures shared by the test files: smoke-size synthetic data and the train command."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pose3dlib.config import load_config

SMOKE = "configs/smoke.yaml"


def make_smoke_data(root: Path) -> list[str]:
    """Write smoke-size synthetic data under `root` once; return the --set overrides pointing at it."""
    from pose3dlib.synthetic.generator import generate

    if not (root / "done").exists():
        cfg = load_config(SMOKE)
        generate(root, cfg.synthetic, cfg.seed)
        (root / "done").write_text("ok")
    return [f"data.h36m_dir={root / 'h36m'}", f"data.mpii_dir={root / 'mpii'}", f"data.wild_test_dir={root / 'wild_test'}",
            f"data.lab_val_dir={root / 'lab_val'}", f"data.wild_val_dir={root / 'wild_val'}"]


def run_train_cli(run_dir: Path, stage: int, overrides: list[str], *extra: str, env: dict | None = None,
                  config: str = SMOKE) -> subprocess.CompletedProcess:
    """`python -m pose3dlib train ...` in a subprocess (1 thread)."""
    cmd = [sys.executable, "-m", "pose3dlib", "train", "--config", config, "--stage", str(stage),
           "--run-dir", str(run_dir), *extra]
    for o in overrides:
        cmd += ["--set", o]
    full_env = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run(cmd, check=False, capture_output=True, text=True, env=full_env, timeout=300)


@pytest.fixture(scope="session", autouse=True)
def _in_the_project_folder():
    """Run every test from the project folder, wherever pytest was started: the tests pass the
    project's relative paths (configs/smoke.yaml) to commands, which read typed paths from the
    current folder."""
    from pose3dlib.engine.paths import PROJECT_ROOT

    before = os.getcwd()
    os.chdir(PROJECT_ROOT)
    yield
    os.chdir(before)


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory) -> list[str]:
    """Smoke-size synthetic data, written once per session; the --set overrides pointing at it."""
    return make_smoke_data(tmp_path_factory.getbasetemp() / "smoke_data")


@pytest.fixture(scope="session")
def train_cli():
    """The `python -m pose3dlib train` subprocess runner (see run_train_cli)."""
    return run_train_cli


@pytest.fixture
def make_n():
    """`make -n` of the project's Makefile (skipped without make): a function of make's arguments -> the finished process."""
    from pose3dlib.engine.paths import PROJECT_ROOT

    if shutil.which("make") is None:
        pytest.skip("make is not installed")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["make", "-n", "--no-print-directory", *args], check=False, cwd=PROJECT_ROOT,
                              capture_output=True, text=True, timeout=60)

    return run

"""pyproject.toml and environment.yml describe the same pinned environment."""
from __future__ import annotations

import re
import tomllib
from importlib import metadata

import pytest
import yaml
from packaging.markers import Marker

from pose3dlib.engine.paths import PROJECT_ROOT

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)\s*(?:;\s*(.+))?$")  # name==version[; marker]


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pins(requirements: list[str], where: str, markers: dict[str, str] | None = None) -> dict[str, str]:
    """['torch==2.13.0', ...] -> {'torch': '2.13.0'}; every entry must be an exact pin. An environment
    marker ('name==1.0; sys_platform == "linux"') goes into `markers` (name -> marker, quotes unified)."""
    pins: dict[str, str] = {}
    for req in requirements:
        m = PIN.match(req.strip())
        assert m, f"{where}: {req!r} is not an exact 'name==version' pin"
        name = canonical(m.group(1))
        assert name not in pins, f"{where}: {name} pinned twice"
        pins[name] = m.group(2)
        if m.group(3) and markers is not None:
            markers[name] = " ".join(m.group(3).replace("'", '"').split())
    return pins


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def conda_env() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())


def conda_pip_section(env: dict) -> list[str]:
    sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, "environment.yml needs exactly one pip: section"
    return sections[0]


def test_both_files_pin_the_same_packages(pyproject, conda_env) -> None:
    pp_markers, env_markers = {}, {}
    pp = parse_pins(pyproject["project"]["dependencies"], "pyproject.toml", pp_markers)
    env = parse_pins(conda_pip_section(conda_env), "environment.yml pip section", env_markers)
    assert env == pp
    assert env_markers == pp_markers


def test_required_packages_are_pinned(pyproject) -> None:
    pins = parse_pins(pyproject["project"]["dependencies"], "pyproject.toml")
    assert pins.get("torch") == "2.13.0"
    required = {"jupyterlab", "papermill", "matplotlib", "plotly", "h5py", "nbval", "tqdm", "pyyaml", "pytest"}
    assert required <= set(pins), f"missing pins: {required - set(pins)}"
    assert {"opencv-python-headless", "opencv-python"} & set(pins)
    for extra, reqs in pyproject["project"].get("optional-dependencies", {}).items():
        parse_pins(reqs, f"pyproject.toml extra {extra!r}")  # extras are exact pins too
    assert "tensorboard" in pyproject["project"]["optional-dependencies"]


def test_conda_python_and_channel(pyproject, conda_env) -> None:
    assert conda_env["channels"] == ["conda-forge"]
    conda_deps = [d for d in conda_env["dependencies"] if isinstance(d, str)]
    assert "python=3.11" in conda_deps and "pip" in conda_deps
    assert pyproject["project"]["requires-python"].startswith(">=3.11")


def test_installed_versions_match_pins(pyproject) -> None:
    """The running environment is the pinned one (what `make setup` installs)."""
    wrong = {}
    markers: dict[str, str] = {}
    pins = parse_pins(pyproject["project"]["dependencies"], "pyproject.toml", markers)
    for name, version in pins.items():
        if name in markers and not Marker(markers[name]).evaluate():
            continue  # not for this platform
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed is None or installed.split("+")[0] != version:
            wrong[name] = (version, installed)
    assert not wrong, f"pinned vs installed (run `make setup`): {wrong}"


def test_make_browser_warns_outside_ci_when_chromium_cannot_be_installed(tmp_path):
    """`make test` installs Debian's chromium for the browser test; where that is impossible (no apt-get,
    no sudo) it warns and goes on outside CI, fails in CI, and accepts Ubuntu's chromium-browser."""
    import os
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for tool in ("id", "cut", "dirname"):  # what the recipe and make's own lines need besides bash
        if shutil.which(tool):
            (stubs / tool).symlink_to(shutil.which(tool))
    failing = "#!/bin/bash\nexit 1\n"
    for tool in ("apt-get", "sudo"):
        (stubs / tool).write_text(failing)
        (stubs / tool).chmod(0o755)

    def browser(**env):
        outer = ("CI", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")  # make test CI=1 would pass CI on
        full = {k: v for k, v in os.environ.items() if k not in outer} | {"PATH": str(stubs)} | env
        return subprocess.run([shutil.which("make"), "--no-print-directory", "browser"], cwd=PROJECT_ROOT, env=full,
                              capture_output=True, text=True, timeout=60, check=False)

    r = browser()
    assert r.returncode == 0 and "warning: chromium could not be installed" in r.stdout, r.stdout + r.stderr
    assert browser(CI="1").returncode != 0
    (stubs / "chromium-browser").write_text(failing)
    (stubs / "chromium-browser").chmod(0o755)
    r = browser(CI="1")
    assert r.returncode == 0 and "installing" not in r.stdout, r.stdout + r.stderr

"""`make lab`: JupyterLab serves the notebooks with the project's kernel registered."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pose3dlib.engine.paths import PROJECT_ROOT

JUPYTER = Path(sys.executable).with_name("jupyter")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


@pytest.mark.skipif(not JUPYTER.exists(), reason="jupyter is not installed next to this python")
def test_jupyterlab_serves_notebooks_with_project_kernel(tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"), JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"))
    proc = subprocess.Popen(
        [str(JUPYTER), "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={PROJECT_ROOT}",
         "--ServerApp.open_browser=False", *(["--allow-root"] if os.geteuid() == 0 else [])],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180  # only guards a hang: a loaded machine can take a minute to start it
        while True:
            try:
                status = _get_json(f"{base}/api/status?token={token}")
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    out = proc.stdout.read().decode(errors="replace") if proc.poll() is not None else ""
                    pytest.fail(f"JupyterLab did not start on port {port}: {out[-2000:]}")
                time.sleep(0.5)
        assert "started" in status
        listing = _get_json(f"{base}/api/contents/notebooks?token={token}")
        served = {item["name"] for item in listing["content"]}
        on_disk = {p.name for p in (PROJECT_ROOT / "notebooks").glob("*.ipynb")}
        assert on_disk and on_disk <= served
        # the lab page itself is served
        with urllib.request.urlopen(f"{base}/lab?token={token}", timeout=10) as r:
            assert r.status == 200 and b"JupyterLab" in r.read()
        # the project's kernel is registered, and it is this environment's python
        specs = _get_json(f"{base}/api/kernelspecs?token={token}")["kernelspecs"]
        assert "pose3d" in specs, f"kernel 'pose3d' not registered (run `make setup`); have {sorted(specs)}"
        argv0 = specs["pose3d"]["spec"]["argv"][0]
        kernel_python = shutil.which(argv0) or argv0
        # A venv's python is a symlink to the base interpreter, so resolved paths cannot tell them
        # apart: ask the kernel's python which environment (sys.prefix) it runs in.
        prefix = subprocess.run([kernel_python, "-c", "import sys; print(sys.prefix)"], capture_output=True,
                                text=True, timeout=120, check=True).stdout.strip()
        assert Path(prefix).resolve() == Path(sys.prefix).resolve(), f"kernel 'pose3d' runs {argv0} ({prefix})"
        # every committed notebook asks for that kernel
        for nb in (PROJECT_ROOT / "notebooks").glob("*.ipynb"):
            assert json.loads(nb.read_text())["metadata"]["kernelspec"]["name"] == "pose3d", nb.name
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()

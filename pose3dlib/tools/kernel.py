"""The Jupyter kernel that `make setup` registers ("pose3d"): ipykernel, started with the chosen memory allocator.

    python -m pose3dlib.tools.kernel -f {connection_file}     (what the kernel's kernel.json runs)
    python -c 'from pose3dlib.tools.kernel import register; register()'     (registers it; make setup does)

The same as `python -m ipykernel_launcher`, except that the process first starts again with
mimalloc preloaded (engine/allocator.py; POSE3D_ALLOCATOR=system keeps the C library's), so a
notebook trains as fast in JupyterLab, under papermill and under nbval as `python -m pose3dlib train`.
"""
import json
import sys
from pathlib import Path

NAME = "pose3d"  # the kernel every notebook's metadata and run-notebook ask for
DISPLAY_NAME = "Python (pose3d)"
IPYKERNEL_MODULE = "ipykernel_launcher"  # what `ipykernel install` writes into kernel.json's argv


def register(name: str = NAME, display_name: str = DISPLAY_NAME) -> Path:
    """Register kernel `name` in this Python environment (as `ipykernel install --sys-prefix` does),
    started through this module instead of ipykernel_launcher; returns its kernel.json."""
    from ipykernel.kernelspec import install

    spec_file = Path(install(kernel_name=name, display_name=display_name, prefix=sys.prefix)) / "kernel.json"
    spec = json.loads(spec_file.read_text())
    argv = spec["argv"]
    argv[argv.index(IPYKERNEL_MODULE)] = __spec__.name  # this module
    spec_file.write_text(json.dumps(spec, indent=1) + "\n")
    return spec_file


if __name__ == "__main__":
    from ..engine.allocator import exec_with_allocator
    from ..engine.errors import ConfigError

    try:
        exec_with_allocator()
    except ConfigError as e:  # POSE3D_ALLOCATOR mistyped: the kernel does not start, and says why
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]  # as ipykernel_launcher: the kernel adds the working folder back itself
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()

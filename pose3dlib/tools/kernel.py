"""The Jupyter kernel that `make setup` registers ("pose3d"): ipykernel, started with the chosen memory allocator.

    python -m pose3dlib.tools.kernel -f {connection_file}     (what the kernel's kernel.json runs)
    python -c 'from pose3dlib.tools.kernel import register; register()'     (registers it; make setup does)

The same as `python -m ipykernel_launcher`, except that the process first starts again with
mimalloc preloaded (engine/allocator.py; POSE3D_ALLOCATOR=system keeps the C library's), so a
notebook trains as fast in JupyterLab and under papermill (`make reproduce`, the sweep, the ablation)
as `python -m pose3dlib train`. POSE3D_ALLOCATOR is read when the kernel starts: export it before
starting JupyterLab.
"""
import sys
from pathlib import Path

NAME = "pose3d"  # the kernel every notebook's metadata and run-notebook ask for
DISPLAY_NAME = "Python (pose3d)"
IPYKERNEL_MODULE = "ipykernel_launcher"  # what `ipykernel install` writes into kernel.json's argv


def register(name: str = NAME, display_name: str = DISPLAY_NAME, prefix: str | None = None) -> Path:
    """Register kernel `name` in this Python environment (under `prefix`, default sys.prefix, as
    `ipykernel install --sys-prefix` does), started through this module instead of ipykernel_launcher;
    returns its kernel.json."""
    import json

    from ipykernel.kernelspec import install

    from ..engine.atomic_io import atomic_write_text

    spec_file = Path(install(kernel_name=name, display_name=display_name, prefix=prefix or sys.prefix)) / "kernel.json"
    spec = json.loads(spec_file.read_text())
    argv = spec["argv"]
    if IPYKERNEL_MODULE not in argv:
        raise RuntimeError(f"{spec_file}: ipykernel wrote no {IPYKERNEL_MODULE!r} into the kernel's argv {argv}; "
                           "this ipykernel is not the pinned one (pyproject.toml)")
    argv[argv.index(IPYKERNEL_MODULE)] = __spec__.name  # this module
    atomic_write_text(spec_file, json.dumps(spec, indent=1) + "\n")
    return spec_file


def main() -> None:
    """Start the kernel: with the chosen allocator (the process may start again), then as ipykernel_launcher."""
    from ..engine.allocator import exec_with_allocator, loaded
    from ..engine.errors import ConfigError

    try:
        exec_with_allocator()
    except ConfigError as e:  # POSE3D_ALLOCATOR mistyped: a kernel that exits would be restarted over and over
        print(f"pose3d: warning: {e}; the kernel starts with the allocator it has ({loaded()})", file=sys.stderr)
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]  # as ipykernel_launcher, before pose3d's imports: the kernel adds the working folder back
    main()

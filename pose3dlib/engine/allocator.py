"""The C memory allocator of pose3d's processes: mimalloc where it is installed (Linux), else the C library's.

PyTorch takes every CPU tensor from malloc. On the 2-core hosts a cpu-profile training step took
1.16-1.27 x as long with glibc's allocator as with mimalloc (docs/benchmarks.md, "Speed
switches", row "mimalloc"), and the trained weights were the same to the bit: an allocator decides where memory
comes from, never what a kernel computes with it. A running process cannot change its allocator,
so the choice is made where a process starts, by preloading the library (LD_PRELOAD):

- `python -m pose3dlib ...` starts itself once more with the library preloaded
  (`exec_with_allocator`, the first thing `pose3dlib.__main__` does);
- the Jupyter kernel that `make setup` registers starts through `pose3dlib.tools.kernel`, which does
  the same, so notebooks in JupyterLab, `make reproduce`, the sweep and the ablation train alike
  (nbval's `--nbval-current-env` kernel, which `make test` uses, starts ipykernel directly).

The preloaded library and its settings stay in the environment, so the processes these start (a
notebook's `!` commands, git, ffmpeg) run with mimalloc too.

POSE3D_ALLOCATOR=system keeps the C library's allocator (to compare, or should mimalloc misbehave
somewhere); POSE3D_ALLOCATOR=mimalloc (the default) uses mimalloc. The library comes with the pinned
`cmeel-mimalloc` package (pyproject.toml, Linux only); where it is missing on Linux, a command says so
once and runs with the C library's allocator.
"""
from __future__ import annotations

import functools
import os
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigError

SWITCH_ENV = "POSE3D_ALLOCATOR"
CHOICES = ("mimalloc", "system")
DEFAULT = "mimalloc"
PRELOAD_ENV = "LD_PRELOAD"
PRELOAD_SEPARATORS = " :"  # the dynamic loader splits LD_PRELOAD on spaces and colons
# ... and LD_LIBRARY_PATH on colons and semicolons: a library in a folder with a space is preloaded by its
# name, found through LD_LIBRARY_PATH (a project in "My Projects"); one under a colon cannot be given at all
LIBRARY_PATH_ENV = "LD_LIBRARY_PATH"
LIBRARY_PATH_SEPARATORS = ":;"
# Where the cmeel-mimalloc wheel puts the shared library, under site-packages.
LIBRARY_IN_SITE_PACKAGES = Path("cmeel.prefix", "lib", "libmimalloc.so.3")
LIBRARY_STEM = "libmimalloc"
# mimalloc's own settings, set unless the environment already gives them. MIMALLOC_PURGE_DELAY=-1 keeps
# freed memory for the next training step instead of returning it to the system: steps took 0.79-0.86 x
# glibc's time with it and 0.86-0.96 x without (docs/benchmarks.md, row "mimalloc").
SETTINGS = {"MIMALLOC_PURGE_DELAY": "-1"}
# Set in the environment of the process started again by `exec_with_allocator`, so it never starts a third time.
RESTARTED_ENV = "POSE3D_ALLOCATOR_RESTARTED"


def choice(environ: Mapping[str, str] | None = None) -> str:
    """The allocator POSE3D_ALLOCATOR asks for ("mimalloc" when unset or empty); ConfigError naming the
    variable and the choices for any other value."""
    environ = os.environ if environ is None else environ
    value = environ.get(SWITCH_ENV, "").strip().lower() or DEFAULT
    if value not in CHOICES:
        raise ConfigError(f"{SWITCH_ENV}={environ.get(SWITCH_ENV)!r}: expected one of {', '.join(CHOICES)}")
    return value


def library() -> Path | None:
    """The mimalloc shared library of this Python environment (the cmeel-mimalloc package), or None:
    not installed, or not Linux (where preloading works as used here)."""
    if not _on_linux():
        return None
    for key in ("purelib", "platlib"):
        path = Path(sysconfig.get_paths()[key]) / LIBRARY_IN_SITE_PACKAGES
        if path.is_file():
            return path
    return None


def _on_linux() -> bool:
    return sys.platform.startswith("linux")


def unpreloadable(lib: Path) -> bool:
    """Whether the dynamic loader cannot be given `lib` at all: LD_PRELOAD is split on PRELOAD_SEPARATORS and
    LD_LIBRARY_PATH on LIBRARY_PATH_SEPARATORS, with no way to escape them. A folder holding a space is taken
    through LD_LIBRARY_PATH (`launch_env`); one holding a colon or semicolon, or a file name holding a
    separator, is refused."""
    return (any(c in str(lib.parent) for c in LIBRARY_PATH_SEPARATORS)
            or any(c in lib.name for c in PRELOAD_SEPARATORS + LIBRARY_PATH_SEPARATORS))


def _preloads(value: str) -> list[str]:
    """The entries of an LD_PRELOAD value, split as the dynamic loader splits it (PRELOAD_SEPARATORS)."""
    return value.replace(":", " ").split()


def launch_env(environ: Mapping[str, str], lib: Path | None) -> dict[str, str]:
    """The environment a pose3d process should start with, from `environ` (a copy; `environ` is not changed).

    With mimalloc chosen (`choice`) and `lib` given: `lib` first in LD_PRELOAD (other entries kept)
    and SETTINGS where unset; a `lib` whose folder holds a space goes in by its file name, its folder
    first in LD_LIBRARY_PATH. With POSE3D_ALLOCATOR=system: every mimalloc entry removed from
    LD_PRELOAD (one a parent process added), the rest kept. Without `lib`, or with one the loader
    cannot be given (`unpreloadable`): unchanged.
    """
    env = dict(environ)
    others = [p for p in _preloads(env.get(PRELOAD_ENV, "")) if LIBRARY_STEM not in Path(p).name]
    if choice(environ) == "mimalloc":
        if lib is None or unpreloadable(lib):
            return env
        entry = str(lib)
        if any(c in entry for c in PRELOAD_SEPARATORS):  # the loader finds a bare name along LD_LIBRARY_PATH
            entry = lib.name
            env[LIBRARY_PATH_ENV] = ":".join(p for p in (str(lib.parent), env.get(LIBRARY_PATH_ENV, "")) if p)
        env[PRELOAD_ENV] = " ".join([entry, *others])
        for key, value in SETTINGS.items():
            env.setdefault(key, value)
    elif others:
        env[PRELOAD_ENV] = " ".join(others)
    else:
        env.pop(PRELOAD_ENV, None)
    return env


@functools.cache  # a running process never changes its allocator: /proc/self/maps is read once
def loaded() -> str:
    """The allocator this process runs with: "mimalloc" when the library is mapped into it, else "system"."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:  # not Linux
        return "system"
    return "mimalloc" if f"/{LIBRARY_STEM}." in maps else "system"


def exec_with_allocator(argv: list[str] | None = None) -> None:
    """Start this process again, with the same command line, when its allocator is not the one chosen.

    Called before anything else is imported or done (pose3dlib.__main__, pose3dlib.tools.kernel): the
    process is replaced (same process id, same standard streams), so the caller never notices.
    Returns without doing anything when the allocator is already right, when the library is missing
    (one line on stderr on Linux, where it should be installed), or in the process started again
    (RESTARTED_ENV: a library the loader refused is not retried forever; one line says so).
    `argv`: the interpreter's command line (default sys.orig_argv).
    """
    wanted = choice()  # a mistyped value is an error on every platform
    if not _on_linux():
        return
    if os.environ.pop(RESTARTED_ENV, None):  # this is the process started again; its children check for themselves
        if wanted != loaded():
            print(f"pose3d: warning: could not switch to the {wanted} allocator ({PRELOAD_ENV}="
                  f"{os.environ.get(PRELOAD_ENV, '')!r}); running with {loaded()}", file=sys.stderr)
        return
    if wanted == loaded():
        return
    lib = library()
    if wanted == "mimalloc" and (lib is None or unpreloadable(lib)):
        why = ("is not installed in this environment (`make setup` installs it)" if lib is None else
               f"cannot be preloaded from {lib} (a colon or semicolon in the path)")
        print(f"pose3d: note: mimalloc {why}; running with the C library's allocator, CPU training steps about 1.2 x "
              f"slower ({SWITCH_ENV}=system silences this)", file=sys.stderr)
        return
    env = launch_env(os.environ, lib)
    env[RESTARTED_ENV] = "1"
    argv = list(sys.orig_argv if argv is None else argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *argv[1:]], env)

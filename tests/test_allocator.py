"""pose3dlib.engine.allocator: which memory allocator pose3d's processes start with, and that it changes no number."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from pose3dlib.engine import allocator
from pose3dlib.engine.errors import ConfigError

LIB = Path("/site/cmeel.prefix/lib/libmimalloc.so.3")


def test_choice_defaults_to_mimalloc_and_names_the_variable_for_a_typo():
    assert allocator.choice({}) == "mimalloc"
    assert allocator.choice({allocator.SWITCH_ENV: ""}) == "mimalloc"
    assert allocator.choice({allocator.SWITCH_ENV: " System "}) == "system"
    with pytest.raises(ConfigError) as e:
        allocator.choice({allocator.SWITCH_ENV: "jemalloc"})
    assert str(e.value) == "POSE3D_ALLOCATOR='jemalloc': expected one of mimalloc, system"


def test_launch_env_puts_mimalloc_first_and_keeps_the_users_preloads_and_settings():
    given = {"LD_PRELOAD": "/a/libfoo.so:/b/libbar.so", "MIMALLOC_PURGE_DELAY": "250", "HOME": "/h"}
    env = allocator.launch_env(given, LIB)
    assert env["LD_PRELOAD"] == f"{LIB} /a/libfoo.so /b/libbar.so"
    assert env["MIMALLOC_PURGE_DELAY"] == "250"  # the user's own value wins
    assert env["HOME"] == "/h"
    assert given["LD_PRELOAD"] == "/a/libfoo.so:/b/libbar.so"  # a copy: the argument is untouched
    fresh = allocator.launch_env({}, LIB)
    assert fresh["LD_PRELOAD"] == str(LIB) and fresh["MIMALLOC_PURGE_DELAY"] == allocator.SETTINGS["MIMALLOC_PURGE_DELAY"]
    # a parent's mimalloc (another environment's) is replaced, not preloaded twice
    assert allocator.launch_env({"LD_PRELOAD": "/old/libmimalloc.so.2"}, LIB)["LD_PRELOAD"] == str(LIB)
    assert allocator.launch_env({"LD_PRELOAD": "/a/libfoo.so"}, None) == {"LD_PRELOAD": "/a/libfoo.so"}  # not installed


def test_launch_env_with_the_system_allocator_removes_only_mimalloc():
    off = {allocator.SWITCH_ENV: "system"}
    assert allocator.launch_env({**off, "LD_PRELOAD": f"{LIB} /a/libfoo.so"}, LIB)["LD_PRELOAD"] == "/a/libfoo.so"
    assert "LD_PRELOAD" not in allocator.launch_env({**off, "LD_PRELOAD": str(LIB)}, LIB)
    assert "MIMALLOC_PURGE_DELAY" not in allocator.launch_env(off, LIB)


@pytest.fixture
def execs(monkeypatch):
    """os.execve replaced by a recorder (the test process is never replaced); on Linux, as allocator requires."""
    calls = []
    monkeypatch.setattr(allocator.sys, "platform", "linux")
    monkeypatch.setattr(allocator.os, "execve", lambda path, argv, env: calls.append((path, argv, env)))
    for key in (allocator.SWITCH_ENV, allocator.RESTARTED_ENV):
        monkeypatch.delenv(key, raising=False)
    return calls


def test_a_process_without_the_chosen_allocator_starts_again_with_it(execs, monkeypatch):
    monkeypatch.setattr(allocator, "library", lambda: LIB)
    monkeypatch.setattr(allocator, "loaded", lambda: "system")
    allocator.exec_with_allocator(["python", "-m", "pose3dlib", "train", "--stage", "1"])
    [(path, argv, env)] = execs
    assert path == sys.executable and argv == [sys.executable, "-m", "pose3dlib", "train", "--stage", "1"]
    assert env["LD_PRELOAD"].split()[0] == str(LIB) and env[allocator.RESTARTED_ENV] == "1"
    # the system allocator chosen in a process that inherited mimalloc: started again without it
    execs.clear()
    monkeypatch.setattr(allocator, "loaded", lambda: "mimalloc")
    monkeypatch.setenv(allocator.SWITCH_ENV, "system")
    monkeypatch.setenv("LD_PRELOAD", str(LIB))
    allocator.exec_with_allocator(["python", "-m", "pose3dlib"])
    assert len(execs) == 1 and "LD_PRELOAD" not in execs[0][2]


def test_no_restart_when_the_allocator_is_right_or_after_one_restart(execs, monkeypatch, capsys):
    monkeypatch.setattr(allocator, "library", lambda: LIB)
    monkeypatch.setattr(allocator, "loaded", lambda: "mimalloc")
    allocator.exec_with_allocator(["python"])
    assert execs == [] and capsys.readouterr().err == ""
    # the loader refused the library in the restarted process: one warning, no third start, and the
    # marker is gone so that this process's own children check for themselves
    monkeypatch.setattr(allocator, "loaded", lambda: "system")
    monkeypatch.setenv(allocator.RESTARTED_ENV, "1")
    allocator.exec_with_allocator(["python"])
    assert execs == [] and allocator.RESTARTED_ENV not in os.environ
    assert "warning: could not switch to the mimalloc allocator" in capsys.readouterr().err


def test_a_missing_library_is_said_once_and_the_command_runs_on(execs, monkeypatch, capsys):
    monkeypatch.setattr(allocator, "library", lambda: None)
    monkeypatch.setattr(allocator, "loaded", lambda: "system")
    allocator.exec_with_allocator(["python"])
    err = capsys.readouterr().err
    assert execs == [] and "mimalloc is not installed" in err and "POSE3D_ALLOCATOR=system" in err
    monkeypatch.setenv(allocator.SWITCH_ENV, "system")  # asked for: silent
    allocator.exec_with_allocator(["python"])
    assert execs == [] and capsys.readouterr().err == ""
    # a mimalloc inherited from elsewhere (not this environment's) is still taken out, without the note
    monkeypatch.setattr(allocator, "loaded", lambda: "mimalloc")
    monkeypatch.setenv("LD_PRELOAD", "/other/env/libmimalloc.so.3")
    allocator.exec_with_allocator(["python"])
    assert len(execs) == 1 and "LD_PRELOAD" not in execs[0][2] and capsys.readouterr().err == ""


def test_a_library_path_the_loader_cannot_take_is_said_and_not_preloaded(execs, monkeypatch, capsys):
    """LD_LIBRARY_PATH is split on colons and semicolons: a project under "a:b" runs on without mimalloc."""
    coloned = Path("/home/u/a:b/.venv/cmeel.prefix/lib/libmimalloc.so.3")
    monkeypatch.setattr(allocator, "library", lambda: coloned)
    monkeypatch.setattr(allocator, "loaded", lambda: "system")
    allocator.exec_with_allocator(["python"])
    assert execs == [] and "cannot be preloaded from /home/u/a:b" in capsys.readouterr().err
    assert allocator.launch_env({}, coloned) == {}
    assert allocator.unpreloadable(Path("/a;b/libmimalloc.so.3")) and not allocator.unpreloadable(LIB)


def test_a_library_in_a_folder_with_a_space_is_preloaded_by_name(execs, monkeypatch, capsys, tmp_path):
    """LD_PRELOAD is split on spaces: a project under "My Projects" printed a note on every command and ran
    without mimalloc. The library goes in by name, its folder first in LD_LIBRARY_PATH, and the loader takes it."""
    import shutil
    import subprocess

    real = allocator.library()  # this environment's, before it is replaced below
    spaced = Path("/home/u/My Projects/.venv/cmeel.prefix/lib/libmimalloc.so.3")
    assert not allocator.unpreloadable(spaced)
    assert allocator.launch_env({"LD_LIBRARY_PATH": "/opt/x", "LD_PRELOAD": "/opt/y.so"}, spaced) == {
        "LD_PRELOAD": "libmimalloc.so.3 /opt/y.so", "LD_LIBRARY_PATH": "/home/u/My Projects/.venv/cmeel.prefix/lib:/opt/x",
        **allocator.SETTINGS}
    monkeypatch.setattr(allocator, "library", lambda: spaced)
    monkeypatch.setattr(allocator, "loaded", lambda: "system")
    allocator.exec_with_allocator(["python"])
    assert len(execs) == 1 and capsys.readouterr().err == ""
    if real is None:
        pytest.skip("mimalloc is not installed here")
    folder = tmp_path / "My Projects" / "lib"
    folder.mkdir(parents=True)
    shutil.copy(real, folder / real.name)
    env = allocator.launch_env({**os.environ, "POSE3D_ALLOCATOR": "mimalloc"}, folder / real.name)
    maps = subprocess.run([sys.executable, "-c", "print(open('/proc/self/maps').read())"], env=env,
                          capture_output=True, text=True, timeout=60, check=True).stdout
    assert str(folder / real.name) in maps  # mapped from the folder with a space


def test_a_mistyped_choice_is_an_error_on_every_platform(execs, monkeypatch):
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    monkeypatch.setenv(allocator.SWITCH_ENV, "mimaloc")
    with pytest.raises(ConfigError, match="POSE3D_ALLOCATOR='mimaloc'"):
        allocator.exec_with_allocator(["python"])
    assert execs == []


def test_register_points_the_kernel_at_the_launcher(tmp_path):
    from pose3dlib.tools.kernel import register

    spec_file = register("pose3d-test", "Python (test)", prefix=str(tmp_path))
    assert spec_file.is_relative_to(tmp_path)
    argv = json.loads(spec_file.read_text())["argv"]
    assert argv[argv.index("-m") + 1] == "pose3dlib.tools.kernel" and "ipykernel_launcher" not in argv
    assert "{connection_file}" in argv


def _need_mimalloc() -> None:
    from importlib import metadata

    if allocator.library() is None:
        try:
            metadata.version("cmeel-mimalloc")
        except metadata.PackageNotFoundError:
            pass
        else:  # installed, yet not where library() looks: the wheel's layout changed
            pytest.fail(f"cmeel-mimalloc is installed but {allocator.LIBRARY_IN_SITE_PACKAGES} is not in site-packages")
        if os.environ.get("CI") and sys.platform.startswith("linux"):
            pytest.fail("mimalloc is not installed in CI: `make setup` installs cmeel-mimalloc (pyproject.toml)")
        pytest.skip("mimalloc is not installed here (cmeel-mimalloc, Linux only)")


@pytest.mark.slow
def test_training_with_either_allocator_gives_the_same_weights_to_the_bit(tmp_path, smoke_data, train_cli):
    """The allocator decides where memory comes from, never what is computed: Stages 1 and 2 (bf16 where
    the CPU has it, as the cpu profile) trained by `python -m pose3dlib train` under each allocator, which
    each process records in its timing.jsonl."""
    from pose3dlib.engine.checkpoint import load_checkpoint
    from pose3dlib.engine.distributed import state_digest

    _need_mimalloc()
    overrides = [*smoke_data, "train.bf16_on_cpu=auto"]
    digests = {}
    for name in allocator.CHOICES:
        run = tmp_path / name
        for stage in (1, 2):
            r = train_cli(run, stage, overrides, env={allocator.SWITCH_ENV: name})
            assert r.returncode == 0, r.stderr[-2000:]
            timing = [json.loads(x) for x in (run / f"stage{stage}" / "timing.jsonl").read_text().splitlines()]
            assert {t["allocator"] for t in timing} == {name}
        digests[name] = [state_digest(load_checkpoint(run / f"stage{s}" / "last.pt")["model"]) for s in (1, 2)]
    assert digests["mimalloc"] == digests["system"]


def test_the_registered_kernel_starts_with_the_chosen_allocator():
    """make setup registers the pose3d kernel through pose3dlib.tools.kernel, which honours POSE3D_ALLOCATOR."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    from jupyter_client.manager import KernelManager

    from pose3dlib.tools.kernel import NAME

    _need_mimalloc()
    try:
        spec = KernelSpecManager().get_kernel_spec(NAME)
    except NoSuchKernel:
        if os.environ.get("CI"):
            pytest.fail("no 'pose3d' Jupyter kernel in CI: `make test` should have registered it (make setup)")
        pytest.skip("no 'pose3d' Jupyter kernel: run `make setup`")
    assert "pose3dlib.tools.kernel" in spec.argv and "ipykernel_launcher" not in spec.argv, spec.argv
    seen = {}
    for name in allocator.CHOICES:
        km = KernelManager(kernel_name=NAME)
        km.start_kernel(env={**os.environ, allocator.SWITCH_ENV: name})
        try:
            client = km.blocking_client()
            client.start_channels()
            client.wait_for_ready(timeout=60)
            out: list[str] = []
            client.execute_interactive("from pose3dlib.engine.allocator import loaded; print(loaded())", timeout=60,
                                       output_hook=lambda msg, out=out: out.append(msg["content"].get("text", "")))
            client.stop_channels()
        finally:
            km.shutdown_kernel(now=True)
        seen[name] = "".join(out).strip()
    assert seen == {"mimalloc": "mimalloc", "system": "system"}


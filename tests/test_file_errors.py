"""A failed file operation reads as one line naming the file the user asked for.

Writers build their output under a hidden temporary name beside it (`temporary_sibling`);
an error while creating or filling that name must report the output, not the temporary
name, and a failed write that names no file (a full disk) must still say which file it was.
"""
from __future__ import annotations

import errno
import os
import shutil

import pytest

from pose3dlib.engine import atomic_io
from pose3dlib.engine.atomic_io import (
    atomic_write_text,
    describe_os_error,
    target_of_temporary,
    temporary_sibling,
)
from pose3dlib.engine.paths import PROJECT_ROOT
from pose3dlib.tools import cli


@pytest.mark.parametrize("kind,suffix", [("tmp", ""), ("tmp", ".ipynb"), ("tmp", ".jpg"), ("partial", ""), ("old", "")])
def test_a_temporary_name_maps_back_to_its_output(tmp_path, kind, suffix):
    out = tmp_path / "stage3.last.pt"  # dots in the output's own name
    tmp = temporary_sibling(out, kind, suffix)
    assert tmp.parent == out.parent and tmp.name.startswith(".stage3.last.pt.") and tmp.name.endswith(kind + suffix)
    assert target_of_temporary(tmp) == (out, os.getpid())


@pytest.mark.parametrize("name", ["stage3.pt", ".hidden", ".x.tmp", ".x.12.bak", ".x.12.tmp.ipynb~", "x.12.tmp",
                                  ".data.20240101.old", ".x.4194305.tmp", ".x.0.tmp"])
def test_other_names_are_not_temporary(tmp_path, name):
    assert target_of_temporary(tmp_path / name) is None


def test_an_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="tmp, partial or old"):
        temporary_sibling(tmp_path / "x", "temp")


def test_describe_names_the_output_behind_a_temporary_file(tmp_path):
    out = tmp_path / "model.onnx"
    tmp = temporary_sibling(out)
    msg = describe_os_error(FileNotFoundError(errno.ENOENT, "No such file or directory", str(tmp)))
    assert msg == f"cannot write {out}: No such file or directory (creating {tmp})"
    assert describe_os_error(PermissionError(errno.EACCES, "Permission denied", "a.h5")) == "a.h5: Permission denied"
    assert describe_os_error(OSError(errno.EXDEV, "Invalid cross-device link", "a", None, "b")) == \
        "a -> b: Invalid cross-device link"
    assert describe_os_error(FileNotFoundError("no checkpoint here")) == "no checkpoint here"
    assert describe_os_error(OSError(errno.EBADF, "Bad file descriptor", 7)) == "7: Bad file descriptor"


def test_a_folder_wanted_where_a_file_is_is_named_as_such(tmp_path):
    """`--out afile/m.csv` said only `afile: File exists`."""
    (tmp_path / "afile").write_text("a file of the user's")
    for out in (tmp_path / "afile" / "m.csv", tmp_path / "afile" / "sub" / "m.csv"):
        with pytest.raises(OSError) as raised:
            atomic_io.atomic_write_text(out, "x")
        assert describe_os_error(raised.value).startswith(f"{tmp_path / 'afile'}: is a file, where a folder is needed (")
    assert describe_os_error(FileExistsError(errno.EEXIST, "File exists", str(tmp_path / "nothing"))) == \
        f"{tmp_path / 'nothing'}: File exists"


def test_the_generators_older_partial_folders_are_still_recognised(tmp_path):
    assert target_of_temporary(tmp_path / ".cpu.partial-31888") == (tmp_path / "cpu", 31888)


@pytest.mark.skipif(os.name != "posix", reason="process ids are probed on POSIX only")
def test_only_a_gone_writers_own_leftovers_are_removed(tmp_path, monkeypatch):
    out = tmp_path / "out.csv"
    dead = tmp_path / ".out.csv.4194304.tmp"  # pid 2**22: no process has it
    live = tmp_path / f".out.csv.{os.getppid()}.tmp"
    other_output = tmp_path / ".other.csv.4194304.tmp"
    for f in (dead, live, other_output):
        f.write_text("x")
    assert atomic_io.remove_stale_temporaries(out) == [dead]
    assert not dead.exists() and live.exists() and other_output.exists()
    assert atomic_io.process_alive(os.getpid()) and not atomic_io.process_alive(4_194_304)
    assert atomic_io.process_alive(10**30)  # not a process id this system can have: never taken for a dead one
    if os.getuid() == 0:  # root can give a file away: another user's leftover is theirs to remove
        foreign = tmp_path / ".out.csv.4194303.tmp"
        foreign.write_text("x")
        os.chown(foreign, 12345, -1)
        monkeypatch.setattr(atomic_io, "process_alive", lambda pid: False)
        assert foreign not in atomic_io.remove_stale_temporaries(out) and foreign.exists()


def test_a_full_disk_during_a_write_names_the_file_and_leaves_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "metrics.csv"
    target.write_text("old\n")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")  # what a write to a full disk raises: no filename

    monkeypatch.setattr(atomic_io.os, "fsync", full)
    with pytest.raises(OSError) as info:
        atomic_write_text(target, "new\n")
    assert info.value.errno == errno.ENOSPC and target_of_temporary(info.value.filename) == (target, os.getpid())
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]


def test_the_command_line_reports_it_in_one_line(tmp_path, monkeypatch, capsys):
    readme = tmp_path / "README.md"
    shutil.copy(PROJECT_ROOT / "README.md", readme)
    monkeypatch.setattr(atomic_io.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    status = cli.main(["report", "--metrics", str(PROJECT_ROOT / "runs" / "cpu" / "metrics.csv"), "--readme", str(readme)])
    err = capsys.readouterr().err.strip()
    assert status == 2 and err.startswith(f"error: cannot write {readme}: No space left on device (creating ")
    assert "\n" not in err and "Traceback" not in err


def test_an_os_error_about_no_file_keeps_its_traceback(monkeypatch):
    import pose3dlib.evaluation.report as report

    def broken(args):
        raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")  # not about a file: a bug to see

    monkeypatch.setattr(report, "run", broken)
    with pytest.raises(ConnectionResetError):
        cli.main(["report"])


def test_a_failed_append_to_a_log_names_the_log(tmp_path, monkeypatch):
    """metrics.jsonl / timing.jsonl appends: a full disk (an OSError naming no file) names the log."""
    import builtins

    from pose3dlib.engine import runlog

    log = tmp_path / "metrics.jsonl"
    runlog.append_line(log, '{"a": 1}')
    real_open = builtins.open

    class FullDisk:
        def __init__(self, *args, **kwargs):
            self.f = real_open(*args, **kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self):
            pass

    monkeypatch.setattr(builtins, "open", FullDisk)
    with pytest.raises(OSError) as caught:
        runlog.append_line(log, '{"b": 2}')
    assert caught.value.filename == str(log) and caught.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert log.read_text() == '{"a": 1}\n'


def test_a_checkpoint_that_cannot_be_read_is_not_called_corrupt(tmp_path, monkeypatch):
    """A checkpoint the user may not read (another user's run, mode 600) used to be reported as 'truncated,
    corrupt or in an older format' with advice to delete it: zipfile.is_zipfile swallows the PermissionError.
    (The open is made to fail here: tests may run as root, whom file modes do not stop.)"""
    from pathlib import Path

    from pose3dlib.engine.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
    from pose3dlib.engine.errors import CheckpointError

    path = save_checkpoint(tmp_path / "theirs.pt", make_checkpoint(model_state={}, config={}, extra={"finished": True}))
    real_open = Path.open

    def refuse(self, *args, **kwargs):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    assert str(e.value) == f"checkpoint {path}: cannot be read (Permission denied); check its permissions"
    monkeypatch.setattr(Path, "open", real_open)
    assert load_checkpoint(path)["extra"] == {"finished": True}  # readable again: it loads


def test_a_full_disk_during_a_checkpoint_save_is_the_os_error_naming_the_checkpoint(tmp_path, monkeypatch):
    """torch's zip writer turns a failed write into `RuntimeError: [enforce fail ...] unexpected pos`, the
    OSError only in its context: 45 lines of traceback and no reason. The save raises the OSError, naming the
    checkpoint (through its temporary name), and leaves neither the temporary file nor a partial checkpoint."""
    from pose3dlib.engine import checkpoint

    def full_disk(obj, f):
        f.write(b"some bytes")
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 894144 vs 894036") from None

    monkeypatch.setattr(checkpoint.torch, "save", full_disk)
    target = tmp_path / "stage1" / "last.pt"
    with pytest.raises(OSError) as e:
        checkpoint.atomic_torch_save({"x": 1}, target)
    assert e.value.errno == errno.ENOSPC and target_of_temporary(e.value.filename)[0] == target
    assert "No space left on device" in describe_os_error(e.value) and str(target) in describe_os_error(e.value)
    assert list((tmp_path / "stage1").iterdir()) == []

    def other_failure(obj, f):
        raise RuntimeError("not an I/O error")

    monkeypatch.setattr(checkpoint.torch, "save", other_failure)
    with pytest.raises(RuntimeError, match="not an I/O error"):  # anything else stays as it was
        checkpoint.atomic_torch_save({"x": 1}, target)

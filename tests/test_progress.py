"""pose3dlib.engine.progress: bars refresh rarely off a terminal and can be turned off."""
from __future__ import annotations

import io

from pose3dlib.engine import progress


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_refresh_interval_is_long_unless_stderr_is_a_terminal():
    assert progress.refresh_interval_s(io.StringIO()) == progress.LOG_REFRESH_S >= 5.0
    assert progress.refresh_interval_s(FakeTTY()) == progress.TERMINAL_REFRESH_S < 1.0


def test_a_log_gets_few_refreshes_for_many_updates(monkeypatch):
    """Off a terminal a bar redraws once per LOG_REFRESH_S, however many updates come. The clock tqdm
    reads is faked (and its monitor thread, which reads it too, is off), so the machine's speed does not matter."""
    import tqdm
    import tqdm.std

    monkeypatch.delenv(progress.ENV, raising=False)
    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 0)

    def refreshes(seconds_per_update: float) -> int:
        now = [1000.0]
        monkeypatch.setattr(tqdm.std, "time", lambda: now[0])
        log = io.StringIO()
        for _ in progress.progress_bar(range(20_000), file=log, desc="many"):
            now[0] += seconds_per_update
        return log.getvalue().count("\r")

    # 20 s in all, under LOG_REFRESH_S: one line at the start and one at the end, none per update
    assert refreshes(1e-3) == 2
    # 200 s in all: the start, the end and one every LOG_REFRESH_S between them
    assert abs(refreshes(1e-2) - 2 - 200 / progress.LOG_REFRESH_S) < 1
    tty = FakeTTY()
    bar = progress.progress_bar(total=3, file=tty)
    assert bar.mininterval == progress.TERMINAL_REFRESH_S
    bar.close()


def test_bars_can_be_turned_off(monkeypatch):
    monkeypatch.setenv(progress.ENV, "off")
    log = io.StringIO()
    for _ in progress.progress_bar(range(100), file=log):
        pass
    assert log.getvalue() == ""


def test_every_bar_of_the_library_goes_through_progress_bar():
    # a bare tqdm(...) ignores POSE3D_PROGRESS and the log refresh rule (tqdm.write is fine)
    import re

    from pose3dlib.engine.paths import PROJECT_ROOT

    offenders = []
    for path in sorted((PROJECT_ROOT / "pose3dlib").rglob("*.py")):
        if path.name == "progress.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), start=1):
            if re.search(r"(?<![\w.])tqdm\(", line):
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{n}")
    assert not offenders, offenders


def test_a_progress_file_takes_the_bars_instead_of_stderr(monkeypatch, tmp_path, capsys):
    path = tmp_path / "progress.log"
    monkeypatch.setenv(progress.ENV, f"file:{path}")
    assert progress.progress_file() == str(path) and progress.bars_enabled()
    bar = progress.progress_bar(range(3), desc="stage 1 epoch 1/3")
    assert bar.mininterval == progress.FILE_REFRESH_S
    for _ in bar:
        pass
    assert "stage 1 epoch 1/3" in path.read_text() and "3/3" in path.read_text()
    assert capsys.readouterr().err == ""
    monkeypatch.setenv(progress.ENV, "file:")  # no path: bars stay on stderr
    assert progress.progress_file() is None


def test_the_echo_shows_the_newest_bar_state_once(tmp_path, capsys):
    from pose3dlib.tools.notebook_runner import ProgressEcho

    path = tmp_path / "progress.log"
    echo = ProgressEcho(path, "02_train_2d", poll_s=0.05, echo_s=0.0)
    assert echo.poll() is None  # no file yet
    path.write_text("\rstage 1:   0%| 0/10\rstage 1:  50%| 5/10")
    assert echo.poll() == "stage 1:  50%| 5/10"
    assert echo.poll() is None  # nothing new
    with path.open("a") as f:
        f.write("\rstage 1: 100%| 10/10\n")
    assert echo.poll() == "stage 1: 100%| 10/10"
    with path.open("a") as f:
        f.write("\rPCKh:   0%| 0/1\r" + " " * 20 + "\r")  # a bar that cleared itself when done
    assert echo.poll() is None
    with ProgressEcho(path, "02_train_2d", poll_s=0.05, echo_s=60.0):
        with path.open("a") as f:
            f.write("\revaluation: 1/2")
    err = capsys.readouterr().err
    assert "02_train_2d: evaluation: 1/2" in err and "stage 1" not in err  # read from the start, newest shown


def test_nested_bars_write_no_cursor_escapes_off_a_terminal(monkeypatch):
    # tqdm places a bar opened inside another on a line of its own, reached with ESC[A; a log
    # (or the progress file run-notebook echoes) would show those as "[A" garbage
    monkeypatch.delenv(progress.ENV, raising=False)
    log = io.StringIO()
    for _ in progress.progress_bar(range(2), file=log, desc="outer"):
        with progress.progress_bar(total=3, file=log, desc="inner", leave=False) as bar:
            bar.update(3)
    assert "inner" in log.getvalue() and "outer" in log.getvalue()
    assert "\x1b" not in log.getvalue(), repr(log.getvalue()[:300])
    tty = FakeTTY()  # on a terminal tqdm keeps its own placement
    outer = progress.progress_bar(total=2, file=tty, desc="outer")
    inner = progress.progress_bar(total=3, file=tty, desc="inner", leave=False)
    inner.close()
    outer.close()
    assert "\x1b[A" in tty.getvalue()

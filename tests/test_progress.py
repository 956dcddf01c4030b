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
    monkeypatch.delenv(progress.ENV, raising=False)
    log = io.StringIO()
    for _ in progress.progress_bar(range(20_000), file=log, desc="many"):
        pass
    # one line at the start and one at the end, none per update
    assert 1 <= log.getvalue().count("\r") <= 3, log.getvalue()[:300]
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

"""The timed fresh clones of `make reproduce`, read from docs/fresh-clone-timings.md.

That page is the one record of the runs: its "Every timed run" table has a row per counted clone
(written from the run's time-stamped log and `timing.jsonl`, as its "How a run is timed" says) and its
"In short" table sums them up by kind of host. This module reads both tables, so the figure drawn from
them (`plots.timings`) and the check that the summary still agrees with the rows cannot drift from
the page: `python -m pose3dlib bench --fresh-clones` prints the check and draws the figure.

Pure functions of the markdown text; no timing happens here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ...engine.errors import DataError

TIMINGS_DOC = "docs/fresh-clone-timings.md"
TARGET_MINUTES = 20.0  # the cpu profile's target for `make reproduce` from a fresh clone, setup included

# The header cells of the two tables (how the parser finds them)
RUNS_HEADER = ("clone", "date (UTC)", "minutes", "training, Stages 1 / 2 / 3 (all)", "load", "host GFLOP/s")
SUMMARY_HEADER = ("host", "fresh clones timed", "minutes", "training minutes", "20 minutes met")

_ORDINAL = re.compile(r"(\d+)(?:st|nd|rd|th)\b")
_RANGE_OF_ORDINALS = re.compile(r"(\d+)(?:st|nd|rd|th) to (\d+)(?:st|nd|rd|th)\b")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


@dataclass(frozen=True)
class CloneRun:
    """One row of the "Every timed run" table."""
    clone: int                    # its ordinal (1 for the 1st)
    date: str                     # YYYY-MM-DD (UTC)
    minutes: float                # `make reproduce` from the fresh clone, setup included
    training: tuple[float, ...]   # training minutes of Stages 1, 2, 3
    training_total: float         # the row's own total (the sum of the three, rounded)
    rounding: float               # how far the three stages' sum may be from the total (their rounding and the total's)
    host_gflops: tuple[float, ...]  # the host speeds measured around the run (may be empty)
    label: str                    # the first cell, as written

    @property
    def cpu(self) -> str:
        return "Intel Xeon" if "Intel Xeon" in self.label else "AMD EPYC"

    @property
    def met(self) -> bool:
        return self.minutes <= TARGET_MINUTES


@dataclass(frozen=True)
class SummaryRow:
    """One row of the "In short" table, with the clones its first cell names (None: all of them)."""
    host: str
    clones: tuple[int, ...] | None
    count: int
    minutes: tuple[float, float]
    training: tuple[float, float]
    met: int


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _table(text: str, header: tuple[str, ...], where: str) -> list[list[str]]:
    """The body rows (lists of cells) of the markdown table whose header row is `header`."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and tuple(_cells(line)) == header:
            rows = []
            for body in lines[i + 2:]:  # past the |---| line
                if not body.startswith("|"):
                    break
                cells = _cells(body)
                if len(cells) != len(header):
                    raise DataError(f"{where}: a row of the table headed {' | '.join(header)!r} has "
                                    f"{len(cells)} cells, expected {len(header)}: {body.strip()[:80]!r}")
                rows.append(cells)
            if not rows:
                raise DataError(f"{where}: the table headed {' | '.join(header)!r} has no rows")
            return rows
    raise DataError(f"{where}: no table headed | {' | '.join(header)} |")


def _number(cell: str, what: str, where: str) -> float:
    m = _NUMBER.search(cell.replace("*", ""))
    if m is None:
        raise DataError(f"{where}: {what} {cell!r} is not a number")
    return float(m.group())


def _span(cell: str, what: str, where: str) -> tuple[float, float]:
    """'17.5-32.4' -> (17.5, 32.4); '19.6' -> (19.6, 19.6)."""
    numbers = [float(x) for x in _NUMBER.findall(cell)]
    if len(numbers) not in (1, 2):
        raise DataError(f"{where}: {what} {cell!r} is neither a number nor a range 'a-b'")
    return numbers[0], numbers[-1]


def _rounding(numbers) -> float:
    """The largest total rounding error of numbers written as given ('6.6' -> 0.05, '9.61' -> 0.005)."""
    return sum(0.5 * 10.0 ** -len(x.partition(".")[2]) for x in numbers)


def named_clones(text: str) -> tuple[int, ...]:
    """The clone ordinals a summary row's first cell names in its parentheses, e.g.
    'Intel Xeon (31st to 36th, 39th to 42nd)' -> (31, ..., 36, 39, ..., 42); () when it names none."""
    m = re.search(r"\(([^()]*)\)\s*$", text)
    if m is None:
        return ()
    inside, found = m.group(1), []
    for a, b in _RANGE_OF_ORDINALS.findall(inside):
        found.extend(range(int(a), int(b) + 1))
    found.extend(int(x) for x in _ORDINAL.findall(_RANGE_OF_ORDINALS.sub("", inside)))
    return tuple(sorted(set(found)))


def parse_runs(text: str, where: str = TIMINGS_DOC) -> list[CloneRun]:
    """The rows of the "Every timed run" table, in the page's order."""
    runs = []
    for cells in _table(text, RUNS_HEADER, where):
        label, date, minutes, training, _load, host = cells
        m = _ORDINAL.match(label)
        if m is None:
            raise DataError(f"{where}: clone {label[:40]!r} does not start with an ordinal such as '12th'")
        parts = re.fullmatch(r"\s*([\d.]+) / ([\d.]+) / ([\d.]+) \(([\d.]+)\)\s*", training)
        if parts is None:
            raise DataError(f"{where}: the {m.group()} clone's training {training!r} is not 'a / b / c (total)'")
        runs.append(CloneRun(clone=int(m.group(1)), date=date, minutes=_number(minutes, "minutes", where),
                             training=tuple(float(x) for x in parts.groups()[:3]),
                             training_total=float(parts.group(4)),
                             rounding=_rounding(parts.groups()[:3]) + _rounding([parts.group(4)]),
                             host_gflops=tuple(float(x) for x in _NUMBER.findall(host) if float(x) >= 10),
                             label=label))
    return runs


def parse_summary(text: str, where: str = TIMINGS_DOC) -> list[SummaryRow]:
    """The rows of the "In short" table; a row that names no clones (the "all" row) stands for every run."""
    rows = []
    for host, count, minutes, training, met in _table(text, SUMMARY_HEADER, where):
        clones = named_clones(host)
        rows.append(SummaryRow(host=host, clones=clones or None, count=int(_number(count, "count", where)),
                               minutes=_span(minutes, "minutes", where),
                               training=_span(training, "training minutes", where),
                               met=int(_number(met, "20 minutes met", where))))
    return rows


def summarise(runs: list[CloneRun], clones: tuple[int, ...] | None) -> tuple[int, tuple[float, float],
                                                                         tuple[float, float], int]:
    """(count, minutes range, training range, runs within the target) of the runs among `clones`
    (None: all). Clones named but not in the table (left out as timings of other load) are skipped."""
    chosen = [r for r in runs if clones is None or r.clone in clones]
    if not chosen:
        return 0, (float("nan"), float("nan")), (float("nan"), float("nan")), 0
    minutes = [r.minutes for r in chosen]
    training = [r.training_total for r in chosen]
    return (len(chosen), (min(minutes), max(minutes)), (min(training), max(training)),
            sum(r.met for r in chosen))


def disagreements(text: str, where: str = TIMINGS_DOC) -> list[str]:
    """Every way the page's tables disagree with themselves, one line each (empty: they agree):
    `table_disagreements` of its two tables."""
    return table_disagreements(parse_runs(text, where), parse_summary(text, where))


def table_disagreements(runs: list[CloneRun], summary: list[SummaryRow]) -> list[str]:
    """Checked: each run's training total against the sum of its three stages (to rounding), clone
    ordinals given once and in order, every run named by a host row (where the summary has any), and
    each "In short" row's count, minutes range, training range and number within the target against
    the runs it names."""
    problems = []
    ordinals = [r.clone for r in runs]
    if ordinals != sorted(set(ordinals)):
        problems.append(f"clones out of order or repeated: {ordinals}")
    named = {c for row in summary if row.clones is not None for c in row.clones}
    if named and (unnamed := [r.clone for r in runs if r.clone not in named]):
        problems.append(f"clones in no host row of the summary: {', '.join(map(str, unnamed))}")
    for r in runs:
        if abs(sum(r.training) - r.training_total) > r.rounding + 1e-9:
            problems.append(f"{r.clone}: training {' + '.join(f'{t:g}' for t in r.training)} = "
                            f"{sum(r.training):.2f}, the row says {r.training_total:g}")
    for row in summary:
        count, minutes, training, met = summarise(runs, row.clones)
        stated = (row.count, row.minutes, row.training, row.met)
        if (count, minutes, training, met) != stated:
            problems.append(f"'{row.host}': the runs give {count} clones, {minutes[0]:g}-{minutes[1]:g} min, "
                            f"training {training[0]:g}-{training[1]:g}, {met} within {TARGET_MINUTES:g}; the row says "
                            f"{row.count}, {row.minutes[0]:g}-{row.minutes[1]:g}, {row.training[0]:g}-"
                            f"{row.training[1]:g}, {row.met}")
    return problems


def read(path: str | Path) -> str:
    """The page's text (a missing page is a one-line error naming it)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (the record of timed fresh clones, {TIMINGS_DOC} in the repository)") from None

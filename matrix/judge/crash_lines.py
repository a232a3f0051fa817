"""The C probe's crash lines (docs/probe-document.md, "stderr lines"), read: the records
of threads, events, watched objects, crashes, maps dumps and backtraces in the order they were
written, and the part of a run's stderr that a cell file keeps. The lines may come from a
results file written anywhere: anything malformed is skipped, never a traceback."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MARKERS = (
    "fips-probe-thread",
    "fips-probe-event",
    "fips-probe-object",
    "fips-probe-crash",
    "fips-probe-maps-begin",
    "fips-probe-maps-end",
    "fips-probe-backtrace",
)
MAPS_LINE = re.compile(
    r"^([0-9a-f]{1,16})-([0-9a-f]{1,16}) ([rwxsp-]{4}) ([0-9a-f]{1,16}) \S+ \d+ *(.*)$"
)
HEX = re.compile(r"^0x[0-9a-f]{1,16}$")
KEPT_CHARS = 512 * 2**10  # of one run's lines, in a cell file

Record = dict[str, Any]


# --- the lines --------------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    start: int
    end: int  # exclusive
    perms: str
    offset: int  # file offset
    path: str  # "" for an anonymous mapping

    def holds(self, address: int) -> bool:
        return self.start <= address < self.end


@dataclass(frozen=True)
class Seen:
    """A watched object as one fips-probe-object line saw it."""

    index: int  # position in the run's lines: only lines before the crash count
    pid: int
    name: str  # fips, libcrypto, canary
    path: str
    state: str  # mapped, unmapped
    generation: int | None
    step: str
    base: int | None
    ranges: tuple[Range, ...]


@dataclass
class Trace:
    """One run's lines, parsed: every record in order (index, marker, object), the maps
    dump of each process's first crash, and the watched objects' sightings."""

    records: list[tuple[int, str, Record]] = field(default_factory=list)
    maps: dict[int, list[Range]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def of(self, marker: str, pid: int | None = None) -> list[tuple[int, Record]]:
        return [
            (i, r) for i, m, r in self.records if m == marker and (pid is None or r["pid"] == pid)
        ]

    @property
    def main_pid(self) -> int | None:
        """The probe's own process: the first to write a line (a forked child writes later)."""
        return self.records[0][2]["pid"] if self.records else None


def kept_lines(stderr: str) -> list[str]:
    """What of a run's stderr is kept with its result: the marker lines and the maps dump,
    at most KEPT_CHARS (the crash's own lines, the last, are kept first)."""
    lines: list[str] = []
    in_maps = False
    for line in stderr.splitlines():
        marker = line.partition(" ")[0]
        if marker in MARKERS:
            lines.append(line)
            in_maps = marker == "fips-probe-maps-begin"
        elif in_maps and MAPS_LINE.match(line):
            lines.append(line)
    if sum(len(line) + 1 for line in lines) <= KEPT_CHARS:
        return lines
    crash = next(
        (i for i, line in enumerate(lines) if line.startswith("fips-probe-crash ")), len(lines)
    )
    tail, budget = lines[crash:], KEPT_CHARS
    for line in tail:
        budget -= len(line) + 1
    head: list[str] = []
    for line in lines[:crash]:
        budget -= len(line) + 1
        if budget < 0:
            break
        head.append(line)
    return head + [line for line in tail if len(line) < KEPT_CHARS]


def parse(lines: Iterable[Any]) -> Trace:
    """The lines as docs/probe-document.md describes them; a line that is not one of them
    (damaged, cut, of another program) is skipped."""
    trace = Trace()
    maps_of: int | None = None
    for index, line in enumerate(lines):
        if not isinstance(line, str):
            continue
        marker, _, rest = line.partition(" ")
        if marker not in MARKERS:
            found = MAPS_LINE.match(line) if maps_of is not None else None
            if found is not None and maps_of is not None:
                start, end, perms, offset, path = found.groups()
                trace.maps[maps_of].append(
                    Range(int(start, 16), int(end, 16), perms, int(offset, 16), path.strip())
                )
            continue
        record = _record(rest)
        if record is None:
            continue
        maps_of = None
        if marker == "fips-probe-maps-begin" and record["pid"] not in trace.maps:
            maps_of = record["pid"]
            trace.maps[maps_of] = []
        trace.records.append((index, marker, record))
        if marker == "fips-probe-object":
            seen = _seen(index, record)
            if seen is not None:
                trace.seen.append(seen)
    return trace


def _record(text: str) -> Record | None:
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict):
        return None
    if not all(as_int(record.get(key)) is not None for key in ("pid", "tid")):
        return None
    return record


def _seen(index: int, r: Record) -> Seen | None:
    ranges = []
    mappings = r.get("mappings")
    for m in mappings if isinstance(mappings, list) else []:
        if not isinstance(m, dict):
            continue
        start, end, offset = (hexnum(m.get(k)) for k in ("start", "end", "offset"))
        if start is None or end is None or offset is None:
            continue
        ranges.append(Range(start, end, as_text(m.get("perms")), offset, as_text(r.get("path"))))
    if not ranges or not as_text(r.get("path")).startswith("/"):
        return None
    return Seen(
        index,
        r["pid"],
        as_text(r.get("object")),
        as_text(r.get("path")),
        as_text(r.get("state")),
        as_int(r.get("generation")),
        as_text(r.get("step")),
        hexnum(r.get("base")),
        tuple(ranges),
    )


def hexnum(value: Any) -> int | None:
    """An address as the lines write it ("0x7f29..."), or None."""
    return int(value, 16) if isinstance(value, str) and HEX.match(value) else None


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else ""

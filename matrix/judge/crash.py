"""A probe run that died by a signal, attributed from the C probe's stderr lines alone
(docs/probe-document.md, "stderr lines" and "Attributing an address"): in which object, and
which generation of it (one unloaded earlier in the run included), the faulting instruction
and the fault address lie, what the thread was doing, and the finding in one sentence.

Pure: the kept lines and the function names resolved after the run (matrix/execute/
symbolize.py, from the cell image's copies of the objects) go in, so `fips-matrix report`
attributes a stored crash again without an engine. The lines may come from a results file
written anywhere: anything malformed is skipped, never a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
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
CALLERS = 5  # frames named in the sentence (twice as many stack words in the evidence)
SIGNAL_NAMES = {4: "SIGILL", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 11: "SIGSEGV"}

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
    if not all(_int(record.get(key)) is not None for key in ("pid", "tid")):
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
        ranges.append(Range(start, end, _text(m.get("perms")), offset, _text(r.get("path"))))
    if not ranges or not _text(r.get("path")).startswith("/"):
        return None
    return Seen(
        index,
        r["pid"],
        _text(r.get("object")),
        _text(r.get("path")),
        _text(r.get("state")),
        _int(r.get("generation")),
        _text(r.get("step")),
        hexnum(r.get("base")),
        tuple(ranges),
    )


def hexnum(value: Any) -> int | None:
    """An address as the lines write it ("0x7f29..."), or None."""
    return int(value, 16) if isinstance(value, str) and HEX.match(value) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


# --- where an address lies ---------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """An address and what the lines say lies there."""

    address: int
    path: str = ""  # the file, "[heap]" and the like, "" for an anonymous mapping
    perms: str = ""
    base: int | None = None  # load base of the object (for an offset)
    generation: int | None = None  # of a watched object
    unmapped_at: str | None = None  # the step whose look found it gone (not mapped at the crash)
    # Other generations of the object, gone too, that held this address (a reload may map
    # a module at the same address again): (generation, unmapped at), oldest first. The
    # address alone cannot tell which of them ran.
    also: tuple[tuple[int, str], ...] = ()
    located: bool = False  # some mapping holds it
    function: str | None = None
    function_offset: int | None = None

    @property
    def offset(self) -> int | None:
        return self.address - self.base if self.base is not None else None

    @property
    def executable(self) -> bool:
        return "x" in self.perms

    @property
    def file(self) -> str:
        return PurePosixPath(self.path).name if self.path.startswith("/") else self.path

    def object_text(self) -> str:
        """fips.so generation 1 (unmapped at unload_a)"""
        if not self.located:
            return "no mapping"
        text = self.file or "an anonymous mapping"
        if self.also and self.generation is not None and self.unmapped_at is not None:
            gens = [str(self.generation), *(str(g) for g, _ in self.also)]
            steps = [self.unmapped_at, *(at for _, at in self.also)]
            both = "both" if len(gens) == 2 else "all"
            return (
                f"{text} generation {_either(gens, 'or')} (unmapped at {_either(steps, 'and at')}"
                f"; {both} loaded at this address)"
            )
        if self.generation is not None and (self.unmapped_at is not None or self.generation > 1):
            text += f" generation {self.generation}"
        if self.unmapped_at is not None:
            text += f" (unmapped at {self.unmapped_at})"
        return text

    def short(self) -> str:
        """clean_master_key (fips.so generation 1 +0x10d310), or libc.so.6+0x864d1."""
        where = self.file or "anonymous"
        if self.generation is not None and (self.unmapped_at is not None or self.generation > 1):
            where += f" gen {self.generation}"
        at = f"{where}+{self.offset:#x}" if self.offset is not None else where
        if not self.located:
            return f"{self.address:#x} (no mapping)"
        return f"{self.function_name()} ({at})" if self.function else at

    def function_name(self) -> str:
        name = self.function or "?"
        return f"{name}+{self.function_offset:#x}" if self.function_offset else name

    def to_json(self) -> dict[str, Any]:
        return {
            "address": f"{self.address:#x}",
            "object": self.path if self.located else None,
            "generation": self.generation,
            "mapped_at_crash": self.located and self.unmapped_at is None,
            "unmapped_at": self.unmapped_at,
            "also": [{"generation": g, "unmapped_at": at} for g, at in self.also],
            "offset": f"{self.offset:#x}" if self.offset is not None else None,
            "function": self.function,
            "function_offset": (
                f"{self.function_offset:#x}" if self.function_offset is not None else None
            ),
        }


Symbols = Mapping[tuple[str, int], tuple[str, int]]  # (object, offset) -> (function, offset in it)


def locate(trace: Trace, crash_index: int, pid: int, address: int, symbols: Symbols) -> Place:
    """The recipe of docs/probe-document.md: the maps dump at the crash first; else the latest
    sighting of a watched object before the crash whose ranges held the address (this
    process's, or its parent's before the fork)."""
    place = _in_dump(trace, pid, address) or _in_sightings(trace, crash_index, pid, address)
    if place is None:
        return Place(address)
    if place.offset is not None:
        named = symbols.get((place.path, place.offset))
        if named is not None:
            place = dataclasses.replace(place, function=named[0], function_offset=named[1])
    return place


def _in_dump(trace: Trace, pid: int, address: int) -> Place | None:
    dump = trace.maps.get(pid, [])
    hit = next((r for r in dump if r.holds(address)), None)
    if hit is None:
        return None
    if not hit.path.startswith("/"):
        return Place(address, hit.path, hit.perms, located=True)
    base = min((r.start for r in dump if r.path == hit.path and r.offset == 0), default=None)
    generation = None
    for s in trace.seen:  # the generation a watched object had when last seen mapped here
        if s.path == hit.path and s.state == "mapped" and s.base == base:
            generation = s.generation
    return Place(address, hit.path, hit.perms, base, generation, located=True)


def _in_sightings(trace: Trace, crash_index: int, pid: int, address: int) -> Place | None:
    latest: dict[int | None, tuple[Seen, Range]] = {}  # per generation, its last sighting
    pids = {pid, trace.main_pid}
    for s in trace.seen:
        if s.index > crash_index or s.pid not in pids:
            continue
        r = next((r for r in s.ranges if r.holds(address)), None)
        if r is not None:
            latest.pop(s.generation, None)
            latest[s.generation] = (s, r)
    if not latest:
        return None
    hits = sorted(latest.values(), key=lambda hit: hit[0].generation or 0)
    places = [
        (s, r, s.step if s.state == "unmapped" else f"some point after {s.step} (its last look)")
        for s, r in hits
    ]
    s, r, gone = places[0]
    also = tuple((o.generation, at) for o, _, at in places[1:] if o.generation is not None)
    return Place(address, s.path, r.perms, s.base, s.generation, gone, located=True, also=also)


# --- the crash -------------------------------------------------------------------------


@dataclass(frozen=True)
class Crash:
    """One process's first crash, attributed."""

    pid: int
    child: bool  # a forked child's, not the probe process's own
    tid: int
    thread: str | None
    signal: int
    signal_name: str
    code: int | None
    phase: str
    moment: str  # what the thread was doing, in words
    pc: Place | None
    addr: Place | None
    frames: tuple[Place, ...]  # glibc's backtrace from the interrupted frame on; () without
    no_frames_why: str
    stack: tuple[Place, ...]  # stack words that lie in executable mappings, from sp up
    stuck: bool  # the probe aborted a thread stuck in its exit
    finding: str  # a few words: "code of the unloaded fips.so ran after dlclose"
    sentence: str  # the finding in one sentence
    attributed: bool

    def facts(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "child": self.child,
            "tid": self.tid,
            "thread": self.thread,
            "signal": self.signal,
            "signal_name": self.signal_name,
            "code": self.code,
            "phase": self.phase,
            "moment": self.moment,
            "attributed": self.attributed,
            "finding": self.finding,
            "sentence": self.sentence,
            "pc": self.pc.to_json() if self.pc else None,
            "addr": self.addr.to_json() if self.addr else None,
            "frames": [f.to_json() for f in self.frames],
            "stack": [s.to_json() for s in self.stack],
        }

    def evidence(self) -> list[str]:
        who = f"thread {self.thread or 'not started by the probe'} (tid {self.tid})"
        child = f" of forked child {self.pid}" if self.child else ""
        lines = [
            f"crash{child}: {self.signal_name} (signal {self.signal}, si_code {self.code}) in "
            f"{who} during {self.moment}; pc {_addr(self.pc)}, fault address {_addr(self.addr)}"
        ]
        if self.pc is not None:
            lines.append(f"pc {self.pc.address:#x}: {_place_text(self.pc)}")
        if self.addr is not None and (self.pc is None or self.addr.address != self.pc.address):
            lines.append(f"fault address {self.addr.address:#x}: {_place_text(self.addr)}")
        if self.frames:
            shown = "; ".join(f"#{i} {f.short()}" for i, f in enumerate(self.frames))
            lines.append(f"backtrace (glibc backtrace(), from the interrupted frame): {shown}")
        elif self.no_frames_why:
            lines.append(f"no backtrace: {self.no_frames_why}")
        if self.stack:
            words = "; ".join(s.short() for s in self.stack[: CALLERS * 2])
            lines.append(
                f"stack words that point into code (possible return addresses, from sp up): {words}"
            )
        return lines


def _either(words: list[str], conjunction: str) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {conjunction} {words[-1]}"


def _addr(place: Place | None) -> str:
    return f"{place.address:#x}" if place is not None else "none (a signal sent, not a fault)"


def _place_text(place: Place) -> str:
    if not place.located:
        return "in no mapping the probe recorded"
    text = place.object_text()
    if place.offset is not None:
        text += f", offset {place.offset:#x}"
    if place.function:
        text += f" = {place.function_name()}"
    elif place.path.startswith("/") and place.offset is not None:
        text += " (no symbol names it)"
    return text


def crashes(lines: Iterable[Any], symbols: Symbols) -> list[Crash]:
    """Every process's first crash in the lines, the probe's own process first."""
    trace = parse(lines)
    out: list[Crash] = []
    done: set[int] = set()
    main = trace.main_pid
    found = trace.of("fips-probe-crash")
    found.sort(key=lambda item: item[1]["pid"] != main)
    for index, record in found:
        pid = record["pid"]
        if pid in done or record.get("first") is False:
            continue
        done.add(pid)
        out.append(_crash(trace, index, record, symbols))
    return out


def _crash(trace: Trace, index: int, r: Record, symbols: Symbols) -> Crash:
    pid, tid = r["pid"], r["tid"]
    signal = _int(r.get("signal")) or 0
    name = _text(r.get("signal_name")) or SIGNAL_NAMES.get(signal, f"signal {signal}")
    thread = r.get("thread") if isinstance(r.get("thread"), str) else None
    phase = _text(r.get("phase"))
    pc_value, addr_value = hexnum(r.get("pc")), hexnum(r.get("addr"))
    pc = locate(trace, index, pid, pc_value, symbols) if pc_value is not None else None
    addr = locate(trace, index, pid, addr_value, symbols) if addr_value is not None else None
    raw = r.get("stack")
    words = [hexnum(w) for w in raw] if isinstance(raw, list) else []
    stack = tuple(
        place
        for place in (locate(trace, index, pid, w, symbols) for w in words if w is not None)
        if place.located and place.executable
    )
    frames, why = _frames(trace, pid, pc_value, index, symbols)
    stuck = any(
        rec.get("event") == "thread-exit-stuck" and rec.get("stuck_tid") == tid
        for i, rec in trace.of("fips-probe-event", pid)
        if i < index
    )
    moment = _moment(trace, index, pid, tid, thread, phase)
    crash = Crash(
        pid=pid,
        child=pid != trace.main_pid,
        tid=tid,
        thread=thread,
        signal=signal,
        signal_name=name,
        code=_int(r.get("code")),
        phase=phase,
        moment=moment,
        pc=pc,
        addr=addr,
        frames=frames,
        no_frames_why=why,
        stack=stack,
        stuck=stuck,
        finding="",
        sentence="",
        attributed=False,
    )
    finding, sentence, attributed = _finding(crash)
    return dataclasses.replace(crash, finding=finding, sentence=sentence, attributed=attributed)


def _frames(
    trace: Trace, pid: int, pc: int | None, crash_index: int, symbols: Symbols
) -> tuple[tuple[Place, ...], str]:
    """glibc's backtrace() frames from the interrupted one on (the first frames are the
    handler's and the signal trampoline's), or why there are none."""
    lines = [rec for i, rec in trace.of("fips-probe-backtrace", pid) if i > crash_index]
    if not lines:
        return (), "no backtrace line (the handler did not get that far, or the lines were cut)"
    frames = lines[0].get("frames")
    if not isinstance(frames, list):
        return (), _text(lines[0].get("why")) or "no frames"
    values = [v for v in (hexnum(f) for f in frames) if v is not None]
    if pc in values:
        values = values[values.index(pc) :]
    return tuple(locate(trace, crash_index, pid, v, symbols) for v in values), ""


def _moment(trace: Trace, index: int, pid: int, tid: int, thread: str | None, phase: str) -> str:
    """What the crashing thread was doing, from its name, main's phase and the events."""
    events = [rec for i, rec in trace.of("fips-probe-event", pid) if i < index]
    if pid != trace.main_pid or phase in ("child", "child-cleanup"):
        frees = next(
            (_text(e.get("frees")) for e in events if e.get("event") == "child-started"), ""
        )
        return f"the end of a forked child (it freed {frees or 'B'} and returned from main)"
    if thread is None:
        return "a thread the probe did not start"
    exiting = any(e.get("event") == "worker-exiting" and e.get("tid") == tid for e in events)
    if thread != "main":
        return f"the {thread} thread's exit" if exiting else f"the {thread} thread's work"
    if phase == "main-returning":
        return "the process's exit: the atexit handlers after main returned (OpenSSL's among them)"
    if phase == "atexit":
        return "the process's exit, after every atexit handler (ELF destructors)"
    if phase == "after-document":
        return "the end of main, after the document"
    return f"step {phase}" if phase else "an unknown phase"


def _finding(c: Crash) -> tuple[str, str, bool]:
    """(a few words, the sentence, attributed)."""
    pc, addr = c.pc, c.addr
    callers = [f for f in c.frames[1:] if f.located][:CALLERS]
    if pc is not None and pc.located and pc.unmapped_at is not None:
        what = f"code of the unloaded {pc.file} ran after dlclose"
        entered = pc.function is not None and pc.function_offset == 0
        target = pc.function_name() if pc.function else f"offset {pc.offset:#x}"
        text = f"{what}: {c.moment} {'called' if entered else 'ran'} {target} of {pc.object_text()}"
        caller = c.stack[0] if entered and c.stack else (callers[0] if callers else None)
        if caller is not None:
            text += f", called from {_named(caller)}"
        return what, text, True
    if pc is not None and pc.located:
        where = f"{pc.function_name()} of {pc.file}" if pc.function else pc.short()
        if callers:
            called = f", called from {' ← '.join(_named(f) for f in callers)}"
        elif c.stack:  # no backtrace (musl): code addresses on the stack, not all callers
            words = " ← ".join(_named(s) for s in c.stack[:CALLERS])
            called = f", with return addresses on its stack in {words}"
        else:
            called = ""
        if c.stuck:
            what = "a thread's exit was stuck"
            text = (
                f"{c.moment} did not finish in 5 s: the thread was stuck in {where}{called}; "
                f"the probe aborted it ({c.signal_name})"
            )
            return what, text, True
        if addr is not None and addr.unmapped_at is not None:
            what = f"data of the unloaded {addr.file} was used after dlclose"
            text = f"{what}: during {c.moment}, {where}{called} read {addr.address:#x} in "
            return what, text + addr.object_text(), True
        what = f"{c.signal_name} in {pc.file}"
        outside = next((f.file for f in callers if f.file != pc.file), None)
        if outside is not None:  # in the C library, say, but called from libcrypto
            what += f", called from {outside}"
        text = f"{c.signal_name} during {c.moment}, in {where}{called}"
        if addr is not None and addr.address != pc.address:
            text += f", at address {addr.address:#x} ({addr.object_text()})"
        return what, text, True
    raw = ", ".join(f"{s:#x}" for s in (p.address for p in (pc, addr) if p is not None))
    what = "not attributable"
    text = (
        f"not attributable: {c.signal_name} during {c.moment}; pc and fault address "
        f"({raw or 'none recorded'}) lie in no mapping the probe recorded"
    )
    return what, text, False


def _named(place: Place) -> str:
    if place.function:
        return f"{place.function_name()} in {place.file}"
    return place.short()


# --- what to resolve -----------------------------------------------------------------------


def wanted(lines: Iterable[Any]) -> list[tuple[str, int]]:
    """(object, offset) of every address the attribution would name: pc, fault address,
    backtrace frames, stack words in executable mappings; each once, files only."""
    found: dict[tuple[str, int], None] = {}
    for c in crashes(lines, {}):
        for place in (c.pc, c.addr, *c.frames, *c.stack):
            if place is not None and place.path.startswith("/") and place.offset is not None:
                found[(place.path, place.offset)] = None
    return list(found)


def symbol_table(entries: Any) -> dict[tuple[str, int], tuple[str, int]]:
    """The stored resolved names (scenario crash "symbols"), read leniently."""
    table: dict[tuple[str, int], tuple[str, int]] = {}
    for e in entries if isinstance(entries, list) else []:
        if not isinstance(e, dict):
            continue
        offset, inside = hexnum(e.get("offset")), hexnum(e.get("function_offset"))
        name, path = e.get("function"), e.get("object")
        if isinstance(name, str) and isinstance(path, str) and offset is not None:
            table[(path, offset)] = (name, inside or 0)
    return table

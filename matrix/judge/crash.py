"""A probe run that died by a signal, attributed from the C probe's stderr lines alone
(docs/probe-document.md, "stderr lines" and "Attributing an address"): in which object, and
which generation of it (one unloaded earlier in the run included), the faulting instruction
and the fault address lie, what the thread was doing, and the finding in one sentence.

Pure: the kept lines and the function names resolved after the run (matrix/execute/probes/
symbolize.py, from the cell image's copies of the objects) go in, so `fips-matrix report`
attributes a stored crash again without an engine. The lines may come from a results file
written anywhere: anything malformed is skipped, never a traceback.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from matrix.judge.crash_lines import Record, Trace, as_int, as_text, hexnum, parse
from matrix.judge.crash_places import Place, Symbols, locate
from matrix.model.vocabulary import signal_name

CALLERS = 5  # frames named in the sentence (twice as many stack words in the evidence)


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
    signal = as_int(r.get("signal")) or 0
    name = as_text(r.get("signal_name")) or signal_name(signal)
    thread = r.get("thread") if isinstance(r.get("thread"), str) else None
    phase = as_text(r.get("phase"))
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
        code=as_int(r.get("code")),
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
        return (), as_text(lines[0].get("why")) or "no frames"
    values = [v for v in (hexnum(f) for f in frames) if v is not None]
    if pc in values:
        values = values[values.index(pc) :]
    return tuple(locate(trace, crash_index, pid, v, symbols) for v in values), ""


def _moment(trace: Trace, index: int, pid: int, tid: int, thread: str | None, phase: str) -> str:
    """What the crashing thread was doing, from its name, main's phase and the events."""
    events = [rec for i, rec in trace.of("fips-probe-event", pid) if i < index]
    if pid != trace.main_pid or phase in ("child", "child-cleanup"):
        frees = next(
            (as_text(e.get("frees")) for e in events if e.get("event") == "child-started"), ""
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

"""Where an address lies, from a probe's crash lines alone (docs/probe-document.md,
"Attributing an address"): in which object, which generation of it (one unloaded earlier in
the run included), at which offset, and the function the names resolved after the run
(matrix/execute/probes/symbolize.py) give it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from matrix.judge.crash_lines import Range, Seen, Trace, hexnum

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


def _either(words: list[str], conjunction: str) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {conjunction} {words[-1]}"


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

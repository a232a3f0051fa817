"""The run's timeline: when each part of its work started and ended (wall clock), one JSON
line per part in the results directory's phases.jsonl, written as the part ends. The
benchmark lays these beside the machine's CPU and the compiles' own times (from the build
logs) to say where the wall time above the compiles went."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PHASES_NAME = "phases.jsonl"


@dataclass(frozen=True)
class Span:
    phase: str  # base, stages, source, build, skew, distro, probe, report
    what: str  # the platform, version or cell it was for
    start: float  # seconds since the epoch
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "what": self.what,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Span:
        return cls(str(data["phase"]), str(data["what"]), float(data["start"]), float(data["end"]))


class Timeline:
    """Appends spans to a file (none: keeps them in memory only), from any worker."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.spans: list[Span] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def span(self, phase: str, what: str) -> Iterator[None]:
        start = time.time()
        try:
            yield
        finally:
            self.add(Span(phase, what, start, time.time()))

    def add(self, span: Span) -> None:
        with self._lock:
            self.spans.append(span)
            if self.path is not None:
                # the first span of the run starts the file anew: this run's timeline only
                mode = "a" if len(self.spans) > 1 else "w"
                with open(self.path, mode, encoding="utf-8") as f:
                    f.write(json.dumps(span.to_json()) + "\n")

    def seconds(self) -> dict[str, float]:
        """Seconds per phase, summed over the workers that ran it."""
        totals: dict[str, float] = {}
        with self._lock:
            for s in self.spans:
                totals[s.phase] = totals.get(s.phase, 0.0) + s.seconds
        return totals


def read_spans(path: Path) -> list[Span]:
    """A run's timeline; a line cut short by a run that died is left out."""
    spans: list[Span] = []
    if not path.exists():
        return spans
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            spans.append(Span.from_json(json.loads(line)))
    return spans

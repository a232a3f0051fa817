"""Where and when each cell was measured, so a report never passes off earlier measurements as
its run's own: probe runs reused from an earlier run (fingerprint.probe_runs_reused_from), a
cell measured before the run started (taken from an earlier run), cells of several runs
(a merge). The host is the fingerprint's kernel and engine, which a run that reuses probe
runs keeps from the run that really probed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from matrix.results.records import CellResult, Run

REUSED = "reused"  # probe runs reused from an earlier run with the same inputs
EARLIER = "earlier"  # the whole cell comes from an earlier run
MERGED = "merged"  # a cell of one of the runs a merge joined
THIS_RUN = "this run"

PHRASES = {
    REUSED: "were not probed by this run: their probe runs were reused from an earlier run",
    EARLIER: "come from an earlier run and were not measured by this one",
    MERGED: "come from the runs merged here",
    THIS_RUN: "were probed by this run",
}


@dataclass(frozen=True)
class Measured:
    when: str  # when its probe runs started (ISO 8601, UTC), "?" when unknown
    kernel: str
    engine: str
    kind: str  # REUSED, EARLIER, MERGED or THIS_RUN

    def text(self) -> str:
        where = f"on kernel {self.kernel}, engine {self.engine}"
        note = {REUSED: " (probe runs reused by this run)", EARLIER: " (by an earlier run)"}
        return f"{self.when} {where}{note.get(self.kind, '')}"


def measured(result: CellResult, run: Run) -> Measured | None:
    """None for a cell that measured nothing (skipped, not built)."""
    if not result.scenarios:
        return None
    fp = _dict(result.fingerprint)
    reused = _dict(fp.get("probe_runs_reused_from"))
    times = reused or _dict(fp.get("times"))
    when = str(times.get("started") or "?")
    if reused:
        kind = REUSED
    elif run.merged_from:
        kind = MERGED
    elif when != "?" and run.started not in ("", "?") and when < run.started:
        kind = EARLIER  # ISO 8601 UTC timestamps of one format order as strings
    else:
        kind = THIS_RUN
    kernel = str(_dict(fp.get("host")).get("kernel") or "?")
    engine = str(_dict(fp.get("engine")).get("version") or "?")
    return Measured(when, kernel, engine, kind)


@dataclass(frozen=True)
class Group:
    kind: str
    kernel: str
    engine: str
    first: str
    last: str
    cells: int

    def line(self) -> str:
        span = self.first if self.first == self.last else f"{self.first} to {self.last}"
        return (
            f"{self.cells} cells {PHRASES[self.kind]}: measured {span} on kernel "
            f"{self.kernel}, engine {self.engine}"
        )


def groups(results: Sequence[CellResult], run: Run) -> list[Group]:
    """Cells measured alike (how, kernel, engine), with the span of times; empty when every
    measured cell was probed by this run on the run's own kernel and engine."""
    found: dict[tuple[str, str, str], list[str]] = {}
    for r in results:
        m = measured(r, run)
        if m is not None:
            found.setdefault((m.kind, m.kernel, m.engine), []).append(m.when)
    own = (THIS_RUN, run.engine.kernel, run.engine.version)
    if set(found) <= {own}:
        return []
    return [
        Group(kind, kernel, engine, min(times), max(times), len(times))
        for (kind, kernel, engine), times in found.items()
    ]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}

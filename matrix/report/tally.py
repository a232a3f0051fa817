"""The figures of a run at a glance, as every report heads or ends with them: cells measured,
scenarios per status, cells skipped, builds failed, tool errors, time. One line like pytest's
last: "98 cells measured (686 scenarios: 428 STICKY, ...), 184 skipped in 1.8s"."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from matrix.model.vocabulary import LOOKS, Outcome
from matrix.report.layout import code, look_of
from matrix.results.records import CellResult, Run

# Cell outcomes the line counts apart, in this order, with their words; the others (OK, FLAKY,
# PROBE_CRASHED, TIMEOUT, DISAGREEMENT) show in their scenarios' statuses.
CELL_COUNTS = (
    (Outcome.SKIPPED, "skipped"),
    (Outcome.BUILD_FAILED, "build failures"),
    (Outcome.ERROR, "tool errors"),
)


@dataclass(frozen=True)
class Tally:
    cells: int
    measured: int  # cells with scenario results
    statuses: dict[str, int]  # scenario status -> how many, in legend order (unknown last)
    outcomes: dict[str, int]  # cell outcome -> how many
    seconds: float | None

    @property
    def scenarios(self) -> int:
        return sum(self.statuses.values())

    def count(self, outcome: str) -> int:
        return self.outcomes.get(outcome, 0)

    @property
    def severity(self) -> str:
        """ "failed" when something needs acting on, "empty" when nothing was measured,
        else "passed" (facts, whatever they are)."""
        bad = any(look_of(s).junit in ("failure", "error") for s in self.statuses)
        if bad or self.count(Outcome.BUILD_FAILED) or self.count(Outcome.ERROR):
            return "failed"
        return "passed" if self.measured else "empty"

    def parts(self) -> list[tuple[str, str]]:
        """The line's parts, each with the word whose look colours it ("" for none)."""
        statuses = ", ".join(f"{n} {code(s)}" for s, n in self.statuses.items())
        head = f"{self.measured} cells measured"
        if self.scenarios:
            head += f" ({self.scenarios} scenarios: {statuses})"
        out = [(head, "")]
        out += [(f"{self.count(o)} {word}", o) for o, word in CELL_COUNTS if self.count(o)]
        return out

    def line(self) -> str:
        text = ", ".join(part for part, _ in self.parts())
        return text + (f" in {self.seconds:.1f}s" if self.seconds is not None else "")


def tally(results: Sequence[CellResult], run: Run | None = None) -> Tally:
    statuses = Counter(s.status for r in results for s in r.scenarios)
    order = {w: i for i, w in enumerate(LOOKS)}
    return Tally(
        cells=len(results),
        measured=sum(1 for r in results if r.scenarios),
        statuses=dict(sorted(statuses.items(), key=lambda kv: order.get(kv[0], len(order)))),
        outcomes=dict(Counter(r.outcome for r in results)),
        seconds=_seconds(run.wall_seconds if run is not None else None),
    )


def _seconds(value: object) -> float | None:
    """A number from summary.json, or None for anything else it may hold."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else None  # type: ignore[arg-type]

"""The one shape every report shows (terminal, table.md, $GITHUB_STEP_SUMMARY, HTML, README):
per scenario, rows of OpenSSL version and variant, columns of platforms with the libc the
probe saw ("debian-12 (glibc 2.36)"), each cell a status's short code. Platforms and rows in
which every cell was SKIPPED are left out and their cells listed once, by reason: a row of
SKIPPED tells a reader nothing twice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from matrix.judge.fate import Fate, fate_of
from matrix.model.vocabulary import LOOKS, UNKNOWN, Look, Outcome, look
from matrix.results.records import CellResult, ScenarioResult

Row = tuple[str, str]  # (OpenSSL version, variant)
MISSING = "-"  # the cell ran, but not this scenario


@dataclass(frozen=True)
class Column:
    platform: str
    libc: str  # as the probe saw it, "glibc 2.36"; else the platform's declared libc

    @property
    def label(self) -> str:
        return f"{self.platform} ({self.libc})"


@dataclass(frozen=True)
class Layout:
    rows: list[Row]
    columns: list[Column]
    cells: dict[tuple[str, str, str], CellResult]  # (platform, version, variant) -> result

    def at(self, row: Row, column: Column) -> CellResult | None:
        return self.cells.get((column.platform, *row))


def layout(results: Sequence[CellResult]) -> Layout:
    """Rows and columns in first-seen order (the matrix's, for a run's results); a libc
    version seen by the probe beats the platform's declared libc name."""
    rows: list[Row] = []
    libcs: dict[str, str] = {}
    for r in results:
        if r.outcome == Outcome.SKIPPED:
            continue
        if (r.version, r.variant) not in rows:
            rows.append((r.version, r.variant))
        label = r.libc_label()
        if r.platform not in libcs or label != r.libc:
            libcs[r.platform] = label
    columns = [Column(p, libc) for p, libc in libcs.items()]
    return Layout(rows, columns, {(r.platform, r.version, r.variant): r for r in results})


def row_label(row: Row) -> str:
    return f"{row[0]} {row[1]}"


def scenario_of(result: CellResult, scenario: str) -> ScenarioResult | None:
    return next((s for s in result.scenarios if s.scenario == scenario), None)


def status_at(result: CellResult, scenario: str) -> str:
    """The word a table cell shows: the scenario's status; the cell's outcome where it has no
    result for any scenario (a failed build, a skip); MISSING where only this one is absent."""
    s = scenario_of(result, scenario)
    if s is not None:
        return s.status
    return result.outcome if not result.scenarios else MISSING


def look_of(word: str) -> Look:
    """The look of a status or outcome; a word this tool does not know looks UNKNOWN."""
    if word == MISSING:
        return Look(MISSING, "#ffffff", "the cell ran, but not this scenario", None, "skipped")
    return look(word) or UNKNOWN


def code(word: str) -> str:
    """The short code of a status or outcome; "?" for a word this tool does not know."""
    return look_of(word).code


def share(s: ScenarioResult | None) -> str:
    """ " k/n" where repeated runs of the scenario disagreed, else ""."""
    runs = s.facts.get("runs") if s is not None and isinstance(s.facts, dict) else None
    if not isinstance(runs, dict):
        return ""
    agree, total = runs.get("agree"), runs.get("total")
    if not (isinstance(agree, int) and isinstance(total, int)):
        return " ?/?" if agree != total else ""  # a count that is no count: not trusted
    return f" {agree}/{total}" if agree != total else ""


def fate(s: ScenarioResult | None) -> Fate | None:
    """The scenario's fate where its process died after its document in some run."""
    found = fate_of(s.facts) if s is not None and isinstance(s.facts, dict) else None
    return found if found is not None and found.died else None


def rate(s: ScenarioResult | None) -> str:
    """ " k/N" where the scenario's process died after its document in k of N runs (N > 1):
    a death is shown with how often it came; "" else."""
    died = fate(s)
    return f" {died.died}/{died.runs}" if died is not None and died.runs > 1 else ""


def cell_code(result: CellResult | None, scenario: str) -> str:
    """A table cell in a few letters: "STICKY", "DIED", "DIED 3/5" (died in 3 of 5 runs),
    "STICKY 2/3" (2 of 3 runs gave it); "" where no cell is."""
    if result is None:
        return ""
    s = scenario_of(result, scenario)
    return code(status_at(result, scenario)) + rate(s) + share(s)


def grid(shape: Layout, scenario: str) -> list[list[str]]:
    """One scenario's table as codes: a row per layout row, a cell per column."""
    return [[cell_code(shape.at(row, c), scenario) for c in shape.columns] for row in shape.rows]


def legend(words: Sequence[str] | None = None) -> list[tuple[str, Look]]:
    """(word, look) in legend order: of the words given (those a report shows), else all."""
    wanted = set(words) if words is not None else set(LOOKS)
    found = [(w, info) for w, info in LOOKS.items() if w in wanted]
    if words is not None and any(look(w) is None and w != MISSING for w in words):
        found.append(("unknown", UNKNOWN))
    return found


def words_shown(shape: Layout, scenarios: Sequence[str]) -> list[str]:
    """Every status or outcome the layout's tables show, once each."""
    words = [
        status_at(result, s)
        for row in shape.rows
        for column in shape.columns
        if (result := shape.at(row, column)) is not None
        for s in scenarios
    ]
    return list(dict.fromkeys(w for w in words if w != MISSING))


@dataclass(frozen=True)
class SkipGroup:
    reason: str  # whole, every line of it
    cells: list[str]
    what: str  # "platform alpine-3.24", "OpenSSL 3.0.9"


def skipped_groups(results: Sequence[CellResult]) -> list[SkipGroup]:
    """The skipped cells, one group per reason, each reason once and whole."""
    by_reason: dict[str, list[CellResult]] = {}
    for r in results:
        if r.outcome == Outcome.SKIPPED:
            by_reason.setdefault(r.reason.strip(), []).append(r)
    groups = []
    for reason, cells in by_reason.items():
        platforms = list(dict.fromkeys(c.platform for c in cells))
        versions = list(dict.fromkeys(c.version for c in cells))
        what = (
            f"platform {', '.join(platforms)}"
            if len(versions) > 1 or len(platforms) == 1
            else f"OpenSSL {', '.join(versions)}"
        )
        groups.append(SkipGroup(reason, [c.cell for c in cells], what))
    return groups


def clip(text: str, width: int = 60) -> str:
    first = text.splitlines()[0] if text else ""
    return first if len(first) <= width else first[: width - 1] + "…"

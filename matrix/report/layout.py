"""The one shape every report shows: per scenario, rows of platforms (with the libc the probe
saw) and columns of OpenSSL version x variant, each cell a verdict. Platforms and columns in
which every cell was SKIPPED are left out and listed once, by reason: a row of SKIPPED tells
a reader nothing twice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from matrix.model.vocabulary import Outcome, look
from matrix.results.records import CellResult

Column = tuple[str, str]  # (OpenSSL version, variant)
MISSING = "-"  # the cell ran, but not this scenario


@dataclass(frozen=True)
class Layout:
    columns: list[Column]
    rows: dict[str, str]  # platform -> its label, "debian-12 (glibc 2.36)"
    cells: dict[tuple[str, str, str], CellResult]  # (platform, version, variant) -> result

    def at(self, platform: str, column: Column) -> CellResult | None:
        return self.cells.get((platform, *column))


def layout(results: Sequence[CellResult]) -> Layout:
    """Rows and columns in first-seen order; a libc version seen by the probe beats the
    platform's declared libc name."""
    columns: list[Column] = []
    rows: dict[str, str] = {}
    for r in results:
        if r.outcome == Outcome.SKIPPED:
            continue
        if (r.version, r.variant) not in columns:
            columns.append((r.version, r.variant))
        label = r.libc_label()
        if r.platform not in rows or label != r.libc:
            rows[r.platform] = f"{r.platform} ({label})"
    return Layout(columns, rows, {(r.platform, r.version, r.variant): r for r in results})


def cell_text(result: CellResult, scenario: str, compact: bool = False) -> str:
    """A table cell: the verdict (its short code when compact), "k/n" where repeated runs
    disagreed, and a few words of cause; a cell without this scenario shows its outcome."""
    if result.outcome != Outcome.OK and not any(s.scenario == scenario for s in result.scenarios):
        if compact or not result.reason:
            return code(result.outcome) if compact else result.outcome
        return f"{result.outcome} ({clip(result.reason)})"
    for s in result.scenarios:
        if s.scenario == scenario:
            runs = s.facts.get("runs", {})
            flaky = (
                f" {runs['agree']}/{runs['total']}"
                if runs.get("agree") != runs.get("total")
                else ""
            )
            if compact:
                died = "+died" if s.facts.get("exit_after_document") else ""
                return code(s.verdict) + flaky + died
            text = f"{s.verdict}{flaky}"
            return f"{text} ({s.short})" if s.short else text
    return MISSING


def code(name: str) -> str:
    """The short code of a verdict or outcome; a word this tool does not know, as it is."""
    found = look(name)
    return found.code if found is not None else name


def skipped_lines(results: Sequence[CellResult]) -> list[str]:
    """One line per reason: which cells were skipped, grouped by platform or version."""
    by_reason: dict[str, list[str]] = {}
    for r in results:
        if r.outcome == Outcome.SKIPPED:
            by_reason.setdefault(clip(r.reason, 120), []).append(r.cell)
    lines = []
    for reason, cells in by_reason.items():
        platforms = sorted({c.split("/")[0] for c in cells})
        versions = sorted({c.split("/")[1] for c in cells})
        what = (
            f"platform {', '.join(platforms)}"
            if len(versions) > 1 or len(platforms) == 1
            else f"OpenSSL {', '.join(versions)}"
        )
        lines.append(f"SKIPPED {len(cells)} cells ({what}): {reason}")
    return lines


def clip(text: str, width: int = 60) -> str:
    first = text.splitlines()[0] if text else ""
    return first if len(first) <= width else first[: width - 1] + "…"

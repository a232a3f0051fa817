"""Comparison tables: one pivot per scenario. Rows: platform with its libc and version;
columns: OpenSSL version x variant; cells: verdict and a short cause.

Platforms and columns in which every cell was SKIPPED are left out of the pivots and
listed once below them, with the reason: a row of SKIPPED tells a reader nothing twice."""

from __future__ import annotations

from collections.abc import Sequence

from tabulate import tabulate

from matrix.results import OK, SKIPPED, CellResult

# Short forms for the terminal, where width is scarce.
CODES = {
    "CLEAN_RELOAD": "CLEAN",
    "STICKY_ERROR": "STICKY",
    "MAPPED_BUT_RECOVERED": "MAPPED-OK",
    "UNLOADED_BUT_FAILED": "UNMAPPED-FAIL",
    "INCONCLUSIVE": "INCONCL",
    "PROBE_CRASHED": "CRASH",
    "BUILD_FAILED": "BUILD-FAIL",
}


def cell_text(result: CellResult, scenario: str, compact: bool = False) -> str:
    if result.outcome not in (OK,) and not any(s.scenario == scenario for s in result.scenarios):
        if compact or not result.reason:
            return CODES.get(result.outcome, result.outcome) if compact else result.outcome
        return f"{result.outcome} ({_clip(result.reason)})"
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
                return CODES.get(s.verdict, s.verdict) + flaky + died
            text = f"{s.verdict}{flaky}"
            return f"{text} ({s.short})" if s.short else text
    return "-"


def pivots(
    results: Sequence[CellResult],
    scenarios: Sequence[str],
    compact: bool = False,
    hide_skipped: bool = True,
) -> dict[str, tuple[list[str], list[list[str]]]]:
    """scenario -> (headers, rows), rows and columns in first-seen order."""
    shown = [r for r in results if not hide_skipped or r.outcome != SKIPPED]
    columns: list[tuple[str, str]] = []
    platforms: dict[str, str] = {}
    for r in shown:
        if (r.version, r.variant) not in columns:
            columns.append((r.version, r.variant))
        label = r.libc_label()
        # a libc version seen by the probe beats the platform's declared libc name
        if r.platform not in platforms or label != r.libc:
            platforms[r.platform] = f"{r.platform} ({label})"
    by_key = {(r.platform, r.version, r.variant): r for r in results}
    out: dict[str, tuple[list[str], list[list[str]]]] = {}
    sep = "\n" if compact else " "
    for scenario in scenarios:
        headers = ["platform (libc)"] + [f"{v}{sep}{var}" for v, var in columns]
        rows = []
        for platform, label in platforms.items():
            row = [label]
            for version, variant in columns:
                result = by_key.get((platform, version, variant))
                row.append("" if result is None else cell_text(result, scenario, compact))
            rows.append(row)
        out[scenario] = (headers, rows)
    return out


def skipped_lines(results: Sequence[CellResult]) -> list[str]:
    """One line per reason: which cells were skipped, grouped by platform or version."""
    by_reason: dict[str, list[str]] = {}
    for r in results:
        if r.outcome == SKIPPED:
            by_reason.setdefault(_clip(r.reason, 120), []).append(r.cell)
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


def render(
    results: Sequence[CellResult], scenarios: Sequence[str], fmt: str, compact: bool = False
) -> str:
    parts = []
    for scenario, (headers, rows) in pivots(results, scenarios, compact).items():
        title = f"### {scenario}" if fmt == "github" else f"{scenario}:"
        parts.append(f"{title}\n\n{tabulate(rows, headers=headers, tablefmt=fmt)}\n")
    skipped = skipped_lines(results)
    if skipped:
        bullet = "- " if fmt == "github" else ""
        parts.append("\n".join(bullet + line for line in skipped) + "\n")
    return "\n".join(parts)


def _clip(text: str, width: int = 60) -> str:
    first = text.splitlines()[0] if text else ""
    return first if len(first) <= width else first[: width - 1] + "…"

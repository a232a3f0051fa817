"""The comparison tables as text: one pivot per scenario (matrix.report.layout), for the
terminal (tabulate's "simple", short codes) and for Markdown ("github")."""

from __future__ import annotations

from collections.abc import Sequence

from tabulate import tabulate

from matrix.report.layout import cell_text, layout, skipped_lines
from matrix.results.records import CellResult


def pivots(
    results: Sequence[CellResult], scenarios: Sequence[str], compact: bool = False
) -> dict[str, tuple[list[str], list[list[str]]]]:
    """scenario -> (headers, rows)."""
    shape = layout(results)
    sep = "\n" if compact else " "
    headers = ["platform (libc)"] + [f"{v}{sep}{var}" for v, var in shape.columns]
    out: dict[str, tuple[list[str], list[list[str]]]] = {}
    for scenario in scenarios:
        rows = []
        for platform, label in shape.rows.items():
            row = [label]
            for column in shape.columns:
                result = shape.at(platform, column)
                row.append("" if result is None else cell_text(result, scenario, compact))
            rows.append(row)
        out[scenario] = (list(headers), rows)
    return out


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

"""Comparison tables: one pivot per scenario. Rows: platform with its libc and version;
columns: OpenSSL version x variant; cells: verdict and a short cause."""

from __future__ import annotations

from collections.abc import Sequence

from tabulate import tabulate

from matrix.results import OK, CellResult


def cell_text(result: CellResult, scenario: str) -> str:
    if result.outcome not in (OK,) and not any(s.scenario == scenario for s in result.scenarios):
        return f"{result.outcome} ({_clip(result.reason)})" if result.reason else result.outcome
    for s in result.scenarios:
        if s.scenario == scenario:
            return f"{s.verdict} ({s.short})" if s.short else s.verdict
    return "-"


def pivots(
    results: Sequence[CellResult], scenarios: Sequence[str]
) -> dict[str, tuple[list[str], list[list[str]]]]:
    """scenario -> (headers, rows), rows and columns in first-seen order."""
    columns: list[tuple[str, str]] = []
    platforms: dict[str, str] = {}
    for r in results:
        if (r.version, r.variant) not in columns:
            columns.append((r.version, r.variant))
        label = r.libc_label()
        # a libc version seen by the probe beats the platform's declared libc name
        if r.platform not in platforms or label != r.libc:
            platforms[r.platform] = f"{r.platform} ({label})"
    by_key = {(r.platform, r.version, r.variant): r for r in results}
    out: dict[str, tuple[list[str], list[list[str]]]] = {}
    for scenario in scenarios:
        headers = ["platform (libc)"] + [f"{v} {var}" for v, var in columns]
        rows = []
        for platform, label in platforms.items():
            row = [label]
            for version, variant in columns:
                result = by_key.get((platform, version, variant))
                row.append("" if result is None else cell_text(result, scenario))
            rows.append(row)
        out[scenario] = (headers, rows)
    return out


def render(results: Sequence[CellResult], scenarios: Sequence[str], fmt: str) -> str:
    parts = []
    for scenario, (headers, rows) in pivots(results, scenarios).items():
        title = f"### {scenario}" if fmt == "github" else f"{scenario}:"
        parts.append(f"{title}\n\n{tabulate(rows, headers=headers, tablefmt=fmt)}\n")
    return "\n".join(parts)


def _clip(text: str, width: int = 60) -> str:
    first = text.splitlines()[0] if text else ""
    return first if len(first) <= width else first[: width - 1] + "…"

"""The report in Markdown: table.md (also appended to $GITHUB_STEP_SUMMARY) and the README's
generated section share these pieces: the headline figures, the recoverability table with
its legend and advice, the findings, the legend, one table per scenario in the layout's shape
(short codes), the skipped cells by reason."""

from __future__ import annotations

from collections.abc import Sequence

from tabulate import tabulate

from matrix.model.vocabulary import SCENARIOS, Outcome
from matrix.report.advice import advice
from matrix.report.answer import INTRO, TITLE, answer_grid, answer_legend
from matrix.report.findings import findings
from matrix.report.layout import (
    Layout,
    grid,
    layout,
    legend,
    row_label,
    skipped_groups,
    words_shown,
)
from matrix.report.provenance import groups
from matrix.report.tally import tally
from matrix.results.records import CellResult, Run
from matrix.visible import visible

ROW_HEAD = "OpenSSL, variant"
# Where the short form's reader finds the cells behind each line.
WHERE_NAMED = " (each line's cells and exceptions are named in `table.md` and `report.html`)"


def md(text: object) -> str:
    """A value from a results file as Markdown text: one line, no table break, no markup, no
    control character (matrix/visible.py)."""
    return visible(
        str(text)
        .replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("<", "&lt;")
        .replace("`", "'")
        .replace("\r", " ")
        .replace("\n", " ")
    )


def scenario_table(shape: Layout, scenario: str) -> str:
    """One scenario's table: rows OpenSSL version and variant, columns platforms (libc)."""
    headers = [ROW_HEAD, *(md(c.label) for c in shape.columns)]
    rows = [
        [md(row_label(row)), *map(md, codes)]
        for row, codes in zip(shape.rows, grid(shape, scenario), strict=True)
    ]
    return tabulate(rows, headers=headers, tablefmt="github")


def answer_lines(results: Sequence[CellResult], shape: Layout, named: bool = True) -> list[str]:
    """The recoverability table with its legend before it and the advice after it; named:
    each advice with the cells it stands on (the README's short form says where they are)."""
    cells = answer_grid(shape)
    legend = [
        f"- `{md(code)}`{' (mark)' if not status else ''}: {md(meaning)}"
        for status, code, meaning in answer_legend(cells)
    ]
    headers = [ROW_HEAD, *(md(c.label) for c in shape.columns)]
    rows = [
        [md(row_label(row)), *(md(c.code) if c is not None else "" for c in line)]
        for row, line in zip(shape.rows, cells, strict=True)
    ]
    made = advice(results)
    return [
        md(INTRO),
        "",
        *legend,
        "",
        tabulate(rows, headers=headers, tablefmt="github"),
        "",
        *([f"What to do, from the same cells{'' if named else WHERE_NAMED}:", ""] if made else []),
        *(f"- {md(a.line(named))}" for a in made),
        *([""] if made else []),
    ]


def legend_lines(shape: Layout, scenarios: Sequence[str]) -> list[str]:
    return [
        f"- `{info.code}` {'' if info.code == w else f'`{md(w)}` '}{md(info.meaning)}"
        for w, info in legend(words_shown(shape, scenarios))
    ]


def finding_lines(results: Sequence[CellResult], named: bool = True) -> list[str]:
    """The findings as Markdown bullets: the rules, then what was not expected; named: with
    the cells where a rule does not hold and each unexpected event (the README's short list
    counts the events and leaves them to table.md)."""
    found = findings(results)
    lines = [
        f"- {md(f.text)}: **{f.count}**"
        + (f"; not in {md('; '.join(f.exceptions))}" if f.exceptions and named else "")
        for f in found.rules
    ]
    if named:
        lines += [
            f"- **Unexpected**: {md(f.text)}, in {f.count}: {md(f.where)}" for f in found.unexpected
        ]
    elif found.unexpected:
        lines.append(
            f"- **Unexpected**: {len(found.unexpected)} events, each with the cells it happened "
            "in, are listed in `table.md`"
        )
    measured = sum(1 for r in results if r.scenarios)
    if measured and not found.unexpected:
        lines.append(f"- {md(found.nothing_unexpected(measured))}")
    return lines


def headline(results: Sequence[CellResult], run: Run, timed: bool = True) -> list[str]:
    """The figures in bold, then where earlier measurements come from; timed: with the
    run's wall time."""
    lines = [f"**{md(tally(results, run if timed else None).line())}.**", ""]
    lines += [f"> Note: {md(g.line())}." for g in groups(results, run)]
    return lines


def render_markdown(results: Sequence[CellResult], run: Run, scenarios: Sequence[str]) -> str:
    shape = layout(results)
    lines = [
        "# FIPS provider reload matrix",
        "",
        *headline(results, run),
        "",
        f"Run {md(run.id)}: {md(run.started)} to {md(run.finished or '?')}, "
        f"fips-reload-matrix {md(run.tool_version)}, matrix digest "
        f"`{md((run.matrix_digest or '?')[:16])}`, engine {md(run.engine.version)} on "
        f"kernel {md(run.engine.kernel)}. Each cell's evidence is in `cells/<cell>.json`; "
        "`report.html` has the same tables with each cell's cause and evidence a click away.",
        "",
        f"## {TITLE}",
        "",
        *answer_lines(results, shape),
        "## Findings",
        "",
        *finding_lines(results),
        "",
        "## Tables",
        "",
        "Rows: OpenSSL version and variant; columns: platforms, with the libc their probe saw.",
        "",
        *legend_lines(shape, scenarios),
        "",
    ]
    for scenario in scenarios:
        info = SCENARIOS.get(scenario)
        lines += [f"### {md(scenario)}", ""]
        lines += [f"_{md(info.note)}_", ""] if info else []
        lines += [scenario_table(shape, scenario), ""]
    lines += skipped_markdown(results)
    problems = [c for c in results if c.outcome not in (Outcome.OK, Outcome.SKIPPED)]
    if problems:
        lines += ["### Cells without a full result", ""]
        for c in problems:
            logs = ", ".join(f"{md(k)}: `{md(v)}`" for k, v in c.logs.items())
            lines.append(
                f"- `{md(c.cell)}`: {md(c.outcome)}: {md(c.reason)}"
                + (f" ({logs})" if logs else "")
            )
        lines.append("")
    return "\n".join(lines)


def skipped_markdown(results: Sequence[CellResult]) -> list[str]:
    """Each reason once and whole, in a code block under its group's line."""
    found = skipped_groups(results)
    if not found:
        return []
    lines = ["## Skipped cells", ""]
    for g in found:
        lines += [f"- **{len(g.cells)} cells** ({md(g.what)}):", "", "  ```"]
        lines += [f"  {visible(line)}".replace("```", "'''") for line in g.reason.splitlines()]
        lines += ["  ```", ""]
    return lines

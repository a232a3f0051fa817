"""The report on the terminal, after `run`, `report` and `merge`: first the recoverability
table with its legend and the advice (report/answer.py, report/advice.py), the table a person
decides from; the findings; where earlier measurements come from; the skipped cells, each
reason once and whole; where the per-scenario tables are; the files written; and last one
summary line, like pytest's. The per-scenario tables (scenarios whose tables are identical
share one, split into several tables when the platforms do not fit the terminal's width,
their legend before them) are shown on request (`report --scenario NAME`); table.md and
report.html always hold them all.

Colour only on a terminal (rich decides: none when piped or NO_COLOR is set). Every string
from a results file goes out as plain text, never as rich markup, its control characters
shown (here already where they would widen a table; the console's hook does the rest)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from matrix.report.advice import advice
from matrix.report.answer import TITLE, answer_grid, answer_legend
from matrix.report.findings import Findings, findings
from matrix.report.layout import (
    Column,
    Layout,
    grid,
    layout,
    legend,
    look_of,
    row_label,
    skipped_groups,
    words_shown,
)
from matrix.report.provenance import groups
from matrix.report.tally import Tally, tally
from matrix.results.records import CellResult, Run
from matrix.visible import visible

ROW_HEAD = "OpenSSL, variant"
SEVERITY_STYLE = {"failed": "bold red", "passed": "bold green", "empty": "bold yellow"}


def print_report(
    console: Console,
    results: Sequence[CellResult],
    run: Run,
    scenarios: Sequence[str],
    written: Mapping[str, Path] | None = None,
    detail: Sequence[str] = (),
) -> Tally:
    """Everything a person reads after a run, ending with the summary line; returns the
    figures the line was made from. `detail`: the scenarios whose tables to show too."""
    shape = layout(results)
    _answer(console, results, shape)
    shown = [s for s in scenarios if s in detail]
    if shown:
        _legend(console, words_shown(shape, shown))
    for names, rows in _identical(shape, shown):
        parts = split(shape, rows, console.width)
        for i, columns in enumerate(parts):
            part = f" ({i + 1}/{len(parts)})" if len(parts) > 1 else ""
            console.print()
            console.print(Text(", ".join(names) + part, style="bold"))
            console.print(_table(shape, rows, columns))
    _findings(console, findings(results), sum(1 for r in results if r.scenarios))
    for group in groups(results, run):
        _para(console, "note: " + group.line() + ".", "yellow")
    _skipped(console, results)
    if scenarios and not shown:
        files = [str(written[k]) for k in ("markdown", "html") if written and k in written]
        where = " and ".join(files)
        _para(
            console,
            f"per scenario ({len(scenarios)}): {where or 'table.md and report.html'}, or on the "
            "terminal with `fips-matrix report DIR --scenario NAME` (--scenario all: every one)",
            "dim",
        )
    if written:
        _para(console, "reports: " + ", ".join(str(p) for p in written.values()), "dim")
    figures = tally(results, run)
    console.print(_summary_line(figures, console.width), soft_wrap=True)  # one line, always
    return figures


def _answer(console: Console, results: Sequence[CellResult], shape: Layout) -> None:
    """First the answer: the recoverability legend, its table, the advice."""
    cells = answer_grid(shape)
    if not any(c is not None for row in cells for c in row):
        return
    console.print()
    console.print(Text(TITLE, style="bold"))
    shown = answer_legend(cells)
    width = max(len(code) for _, code, _ in shown)
    for _, code, meaning in shown:
        first = f"  {code.ljust(width)}  "
        for text in _wrap(meaning, max(console.width, 40), first, " " * len(first)):
            console.print(Text(text), soft_wrap=True)
    codes = [[c.code if c is not None else "" for c in row] for row in cells]
    styles = [[c.look.terminal if c is not None else "" for c in row] for row in cells]
    for columns in split(shape, codes, console.width):
        console.print()
        console.print(_table(shape, codes, columns, styles))
    made = advice(results)
    if made:
        console.print(Text("\nwhat to do", style="bold"))
    for line in made:
        _para(console, line.line(), "", "- ")


def split(shape: Layout, rows: list[list[str]], width: int) -> list[list[int]]:
    """The platform columns (their indexes) of each table, as many per table as fit."""
    # Each column takes its width, one space of the box's separator and one of padding on
    # its right; the last one has no padding, the row labels no separator.
    label = max([len(ROW_HEAD), *(len(visible(row_label(r))) for r in shape.rows)]) - 1
    tables: list[list[int]] = [[]]
    used = label
    for i, column in enumerate(shape.columns):
        need = _width(column, [row[i] for row in rows]) + 2
        if tables[-1] and used + need > width:
            tables.append([])
            used = label
        tables[-1].append(i)
        used += need
    return tables


def _identical(shape: Layout, scenarios: Sequence[str]) -> list[tuple[list[str], list[list[str]]]]:
    """Scenarios grouped by identical tables (same codes everywhere), in first-seen order."""
    tables: dict[tuple[tuple[str, ...], ...], list[str]] = {}
    for scenario in scenarios:
        key = tuple(tuple(row) for row in grid(shape, scenario))
        tables.setdefault(key, []).append(scenario)
    return [(names, [list(row) for row in key]) for key, names in tables.items()]


def _width(column: Column, codes: list[str]) -> int:
    shown = [column.platform, column.libc, *codes]
    return max(len(visible(text)) for text in shown)


def _table(
    shape: Layout, rows: list[list[str]], columns: list[int], styles: list[list[str]] | None = None
) -> Table:
    """The columns' table of codes; styles: each code's, else its legend word's colour."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    table.add_column(ROW_HEAD, no_wrap=True)
    for i in columns:
        column = shape.columns[i]
        width = _width(column, [row[i] for row in rows])
        head = visible(f"{column.platform}\n{column.libc}")  # as the console will show it
        table.add_column(head, no_wrap=True, min_width=width)
    for n, (row, codes) in enumerate(zip(shape.rows, rows, strict=True)):
        if not any(codes[i] for i in columns):
            continue  # a row with no cell on these platforms (a distribution's own build)
        cells = [
            Text(
                visible(codes[i]),
                style=styles[n][i] if styles else look_of(_word(codes[i])).terminal,
            )
            for i in columns
        ]
        table.add_row(Text(visible(row_label(row))), *cells)
    return table


def _word(code: str) -> str:
    """The legend word of a code shown ("STICKY 2/3" -> STICKY_ERROR), for its colour."""
    head = code.split(" ")[0]
    return next((w for w, info in legend() if info.code == head), "")


def _legend(console: Console, words: Sequence[str]) -> None:
    console.print(Text("\nlegend", style="bold"))
    shown = legend(words)
    width = max((len(info.code) for _, info in shown), default=0)
    for word, info in shown:
        name = f" ({word})" if info.code != word else ""
        first = f"  {info.code.ljust(width)}  "
        lines = _wrap(info.meaning + name, max(console.width, 40), first, " " * len(first))
        for i, text in enumerate(lines):
            line = Text(text)
            if not i:
                line.stylize(info.terminal, 2, 2 + len(info.code))
            console.print(line, soft_wrap=True)


def _findings(console: Console, found: Findings, measured: int) -> None:
    if not found.rules and not measured:
        return
    console.print(Text("\nfindings", style="bold"))
    for rule in found.rules:
        _para(console, rule.line(), "yellow" if rule.exceptions else "", "- ")
    if found.unexpected:
        console.print(Text("unexpected", style="bold red"))
        for event in found.unexpected:
            _para(console, event.line(), "red", "! ")
    elif measured:
        _para(console, found.nothing_unexpected(measured), "green")


def _skipped(console: Console, results: Sequence[CellResult]) -> None:
    skipped = skipped_groups(results)
    if not skipped:
        return
    console.print(Text("\nskipped", style="bold"))
    for group in skipped:
        _para(console, f"{len(group.cells)} cells ({group.what}):", "yellow", "- ")
        for line in group.reason.splitlines():
            _para(console, line.strip(), "", "    ", "      ")


def _para(
    console: Console, text: str, style: str, first: str = "", rest: str | None = None
) -> None:
    """A paragraph wrapped to the terminal, with a hanging indent; never rich markup."""
    indent = " " * len(first) if rest is None else rest
    width = max(console.width, 40)
    lines = _wrap(text, width, first, indent) or [first]
    for line in lines:
        console.print(Text(line, style=style), soft_wrap=True)


def _wrap(text: str, width: int, first: str, rest: str) -> list[str]:
    """Lines of at most width, words kept whole (a path or URL longer than a line stays one)."""
    return textwrap.wrap(
        text,
        width,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _summary_line(figures: Tally, width: int) -> Text:
    body = Text(" ")
    for i, (part, word) in enumerate(figures.parts()):
        body.append(", " if i else "")
        body.append(part, style=look_of(word).terminal if word else "")
    if figures.seconds is not None:
        body.append(f" in {figures.seconds:.1f}s")
    body.append(" ")
    style = SEVERITY_STYLE[figures.severity]
    if len(body.plain) + 4 > width:  # too long to frame: the line alone, as pytest does
        body.stylize(style)
        return body[1:-1]  # without the spaces that would have met the frame
    fill = width - len(body.plain)
    line = Text("=" * (fill // 2), style=style)
    line.append_text(body)
    line.append("=" * (fill - fill // 2), style=style)
    return line

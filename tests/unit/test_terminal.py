"""The report on the terminal (matrix/report/terminal.py) of the reference run: the layout's
shape, fitted to the width, a legend, the findings, the skipped reasons whole, and one
summary line; colour only where asked for, and no markup from results files."""

from __future__ import annotations

import copy
import io
import re

import pytest
from rich.console import Console
from support.made_results import ALL, measured, stopped

from matrix.model.vocabulary import LOOKS, Outcome
from matrix.report.layout import layout, skipped_groups
from matrix.report.tally import tally
from matrix.report.terminal import print_report
from matrix.results.records import CellResult, Run, scenarios_of

ANSI = re.compile(r"\x1b\[[0-9;]*m")
COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|9[0-7]|38;[0-9;]+)m")
RUN = Run.from_json({"id": "r1", "started": "2026-01-01T00:00:00+00:00", "wall_seconds": 12.5})


def shown(
    results: list[CellResult], run: Run, width: int, detail: bool = True, **console: object
) -> str:
    """The terminal's report; `detail`: with every scenario's table (report --scenario all)."""
    out = io.StringIO()
    scenarios = scenarios_of(results)
    print_report(
        Console(file=out, width=width, **console),  # type: ignore[arg-type]
        results,
        run,
        scenarios,
        detail=scenarios if detail else (),
    )
    return out.getvalue()


@pytest.mark.parametrize("width", [80, 120])
def test_the_reference_fits_the_terminal_and_ends_with_one_summary_line(
    reference: tuple[list[CellResult], Run], width: int
) -> None:
    results, run = reference
    text = shown(results, run, width)
    lines = text.splitlines()
    assert not ANSI.search(text)  # not a terminal: plain
    *body, last = lines
    for line in body:  # a word longer than a line (a URL) stays whole, nothing else overflows
        assert len(line) <= width or len(line.split()) == 1, line
    figures = tally(results, run)
    assert last.strip(" =") == figures.line()
    assert f"{figures.measured} cells measured" in last
    assert f"{figures.count(Outcome.SKIPPED)} skipped" in last
    for status, n in figures.statuses.items():
        assert f"{n} {LOOKS[status].code}" in last
    # every platform (with its libc) heads a column, every row is labelled
    shape = layout(results)
    for column in shape.columns:
        assert any(column.platform in line for line in lines)
        assert any(column.libc in line for line in lines)
    for version, variant in shape.rows:
        assert any(line.startswith(f"{version} {variant} ") for line in lines)
    # scenarios with identical tables share one; every scenario is named in a title
    for scenario in scenarios_of(results):
        assert any(scenario in line and not line.startswith(" ") for line in lines)
    # the legend names every code shown, before the first scenario's table; the findings
    assert "legend" in lines and "findings" in lines
    first = min(i for i, line in enumerate(lines) if line.startswith(scenarios_of(results)[0]))
    assert lines.index("legend") < first
    for code in {LOOKS[s].code for s in figures.statuses}:
        assert any(line.startswith(f"  {code} ") for line in lines)


def test_each_skip_reason_is_shown_once_and_whole(
    reference: tuple[list[CellResult], Run],
) -> None:
    results, run = reference
    flat = " ".join(shown(results, run, 80).split())
    groups = skipped_groups(results)
    assert groups
    for group in groups:
        whole = " ".join(group.reason.split())
        assert flat.count(whole) == 1, group.reason
        assert f"{len(group.cells)} cells ({group.what}):" in flat


def test_a_wide_matrix_is_split_into_tables_that_fit() -> None:
    results = [
        measured(f"platform-with-a-long-name-{i}/3.0.20/default", "nodelete") for i in range(6)
    ]
    narrow = shown(results, RUN, 80)
    assert "(1/3)" in narrow and "(3/3)" in narrow
    wide = shown(results, RUN, 250)
    assert "(1/" not in wide
    assert max(len(line) for line in narrow.splitlines()[:-1]) <= 80


def test_colour_on_a_terminal_only_and_no_markup_from_results() -> None:
    results = [
        measured("debian-12/3.0.20/default", "nodelete"),
        stopped("p/1/v", Outcome.SKIPPED, "[bold red]not markup[/bold red] [link=x]y[/link]"),
    ]
    coloured = shown(results, RUN, 100, force_terminal=True, color_system="standard")
    assert COLOUR.search(coloured)
    plain = ANSI.sub("", coloured)
    assert "[bold red]not markup[/bold red] [link=x]y[/link]" in plain
    assert not ANSI.search(shown(results, RUN, 100))  # piped
    assert not ANSI.search(shown(results, RUN, 100, force_terminal=True, color_system=None))


def test_the_summary_line_counts_what_needs_acting_on() -> None:
    died = measured("debian-12/3.6.3/no-pinshared", "unpinned", died=("worker-thread",))
    results = [
        died,
        measured("debian-12/3.0.20/default", "nodelete"),
        stopped("debian-12/3.5.7/default", Outcome.BUILD_FAILED, "make exited 2"),
        stopped("alpine/3.0.20/default", Outcome.SKIPPED, "no base image"),
    ]
    last = shown(results, RUN, 200).splitlines()[-1]
    assert f"2 cells measured ({2 * len(ALL)} scenarios: " in last  # every scenario of each
    assert "1 DIED" in last and "1 skipped" in last and "1 build failures" in last
    assert last.strip(" =").endswith("in 12.5s")
    assert tally(results, RUN).severity == "failed"
    facts_only = copy.deepcopy(results[1:2])
    assert tally(facts_only, RUN).severity == "passed"  # sticky is a fact, not a failure
    assert tally(results[3:], RUN).severity == "empty"


def test_after_a_run_the_terminal_shows_the_answer_not_every_scenario(
    reference: tuple[list[CellResult], Run],
) -> None:
    results, run = reference
    brief, whole = shown(results, run, 120, detail=False), shown(results, run, 120)
    lines = brief.splitlines()
    assert "findings" in lines and "skipped" in lines and "legend" not in lines
    assert not any(line.startswith("ondemand-kat") for line in lines)  # no scenario's table
    assert "fips-matrix report DIR --scenario NAME" in " ".join(brief.split())
    assert len(lines) < len(whole.splitlines()) - 100  # ten scenarios, each a table
    assert lines[-1] == whole.splitlines()[-1]  # the same summary line

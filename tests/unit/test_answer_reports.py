"""The recoverability table is the first table of every report (terminal, table.md, HTML,
the README's section), with its legend before it and the advice after it, each cell the
status the rule gives (matrix/judge/recovery.py)."""

from __future__ import annotations

import io
import re

from rich.console import Console
from test_recovery import UNLOADED, sanity

from matrix.model.vocabulary import RECOVERY_LOOKS
from matrix.report.advice import advice
from matrix.report.answer import TITLE, answer_grid, answer_legend
from matrix.report.html import render_html
from matrix.report.layout import layout
from matrix.report.readme import readme_section
from matrix.report.table import render_markdown
from matrix.report.terminal import print_report
from matrix.results.records import CellResult, Run, scenarios_of


def test_each_cell_shows_its_status_and_marks(reference: tuple[list[CellResult], Run]) -> None:
    results, _ = reference
    grid = answer_grid(layout(results))
    cells = [c for row in grid for c in row if c is not None]
    assert cells
    for c in cells:
        assert c.code.startswith(RECOVERY_LOOKS[c.judged.status].code)
        assert c.code.endswith(c.judged.marks)
    shown = {code for _, code, _ in answer_legend(grid)}
    assert {info.code for info in RECOVERY_LOOKS.values()} <= shown  # every status explained
    for c in cells:  # every status and mark shown is in the legend
        assert RECOVERY_LOOKS[c.judged.status].code in shown
        assert set(filter(None, c.judged.marks.split(","))) <= shown


def test_table_md_opens_with_the_answer(reference: tuple[list[CellResult], Run]) -> None:
    results, run = reference
    text = render_markdown(results, run, scenarios_of(results))
    answer, findings = text.index(f"## {TITLE}"), text.index("## Findings")
    first_table = text.index("| OpenSSL, variant")
    legend = text.index("- `NEVER`")
    assert answer < legend < first_table < findings < text.index("### ondemand-kat")
    for a in advice(results):
        assert a.text.replace("`", "'") in text


def test_the_terminal_opens_with_the_answer(reference: tuple[list[CellResult], Run]) -> None:
    results, run = reference
    out = io.StringIO()
    scenarios = scenarios_of(results)
    print_report(Console(file=out, width=200), results, run, scenarios, detail=scenarios)
    text = out.getvalue()
    assert text.lstrip().startswith(TITLE)
    assert text.index("NEVER N") < text.index("ondemand-kat")
    assert text.index("  NEVER ") < text.index("NEVER N")  # legend before the table
    assert re.search(r"^- Build OpenSSL with no-pinshared", text, re.M)


def test_the_html_page_opens_with_the_answer(reference: tuple[list[CellResult], Run]) -> None:
    results, run = reference
    page = render_html(results, run, scenarios_of(results))
    assert page.index('id="answer"') < page.index('id="findings"') < page.index('id="scenario-')
    assert page.index('class="legend"') < page.index('class="matrix answer"')
    assert 'data-recovery="CRASHES"' in page and ".r-crashes {" in page
    assert '<ul class="advice">' in page


def test_the_readme_section_opens_with_the_answer(reference: tuple[list[CellResult], Run]) -> None:
    results, run = reference
    text = readme_section(results, run, "results/reference")
    assert text.startswith(f"**{TITLE}**")
    table, advice = text.index("| OpenSSL, variant"), text.index("What to do")
    assert table < advice < text.index("cells measured")
    assert "fips-matrix repro " in " ".join(text.split())  # wrapped at any word


def test_a_crashing_cell_points_to_its_cause_in_the_legend(
    reference: tuple[list[CellResult], Run],
) -> None:
    results, _ = reference
    grid = answer_grid(layout(results))
    crashing = [c for row in grid for c in row if c is not None and c.causes]
    assert crashing
    legend = {code: meaning for status, code, meaning in answer_legend(grid) if not status}
    for c in crashing:
        for number, cause in zip(c.causes.split(","), c.judged.reasons, strict=True):
            assert legend[number] == f"died in {cause}"
            assert c.code.endswith(c.causes)


def test_a_death_and_its_control_of_the_same_cause_are_one_mark() -> None:
    grid = answer_grid(
        layout([sanity("debian-12-3.0.20-default"), sanity("debian-12-3.6.3-no-pinshared")])
    )
    codes = {c.result.cell: c.code for row in grid for c in row if c is not None}
    assert codes == {
        "debian-12/3.0.20/default": "NEVER N",
        "debian-12/3.6.3/no-pinshared": "CRASHES 1",
    }
    numbered = [(code, meaning) for _, code, meaning in answer_legend(grid) if code.isdigit()]
    assert numbered == [
        (
            "1",
            "died in worker-thread and its control worker-thread-no-failure (no failure "
            f"needed): {UNLOADED}",
        )
    ]

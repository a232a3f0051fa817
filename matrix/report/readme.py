"""The README's "What it measured here" section, made from the committed reference run
(assets.REFERENCE_DIR) by `fips-matrix report results/reference --readme README.md`: its
figures, the recoverability table with its legend and advice (report/answer.py), the table
of the first scenario, the legend, the findings and what was not measured.
The section sits between two marker comments; everything outside them is left as it is.
Other commands' sections (the bench's figures: matrix/bench/readme.py) are rewritten the
same way where the README has their markers.

The results are read as stored (not judged again): the README shows what the committed files
say, and tests/unit/test_readme.py fails when the two disagree."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matrix.errors import MatrixError
from matrix.model.vocabulary import SCENARIOS
from matrix.report.answer import TITLE
from matrix.report.layout import layout, skipped_groups
from matrix.report.table import (
    answer_lines,
    finding_lines,
    headline,
    legend_lines,
    md,
    scenario_table,
)
from matrix.results.records import CellResult, Run, scenarios_of
from matrix.results.store import ResultsDir

BEGIN = "<!-- BEGIN fips-matrix report --readme: made from the reference run; do not edit -->"
END = "<!-- END fips-matrix report --readme -->"


@dataclass(frozen=True)
class Section:
    """A generated part of the README: its text, between its two marker lines."""

    begin: str
    end: str
    text: str


def readme_section(results: list[CellResult], run: Run, name: str) -> str:
    """The Markdown between the markers; name: the results directory as the README names
    it (relative to the README)."""
    scenarios = scenarios_of(results)
    shape = layout(results)
    first = scenarios[0] if scenarios else ""
    info = SCENARIOS.get(first)
    lines = [
        f"From `{md(name)}/` (a real run of the default matrix: run `{md(run.id)}` of "
        f"{md(run.started[:10])}, fips-reload-matrix {md(run.tool_version)}, engine "
        f"{md(run.engine.version)} on kernel {md(run.engine.kernel)}; each cell's JSON holds "
        "its fingerprint, its evidence and both probes' documents; `table.md` and "
        "`report.html` show every scenario):",
        "",
        *headline(results, run, timed=False),
        "",
        f"**{TITLE}**",
        "",
        *answer_lines(results, shape),
        f"The `{md(first)}` scenario" + (f" ({md(info.note)})" if info else "") + ", by OpenSSL "
        "version and variant (see [Verdicts](#verdicts)):",
        "",
        scenario_table(shape, first),
        "",
        *legend_lines(shape, scenarios),
        "",
        "What the cells show, as `fips-matrix` finds it in their facts (each rule with the "
        "cells that support it, out of those it applies to):",
        "",
        *finding_lines(results),
    ]
    skipped = skipped_groups(results)
    if skipped:
        lines += ["", "Not measured here (`SKIPPED`; each reason whole in `table.md`):", ""]
        lines += [
            f"- {len(g.cells)} cells ({md(g.what)}): {md(_first_line(g.reason))}" for g in skipped
        ]
    return "\n".join(lines)


def section_of(text: str, begin: str = BEGIN, end: str = END) -> str | None:
    """The README's current section between the markers; None without both markers."""
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        return None
    return text[start + len(begin) : stop].strip("\n")


def expected_section(readme: Path, reference: Path) -> str:
    results, run = ResultsDir(reference).read_run()
    if not results:
        raise MatrixError(f"--readme: no cell results in {reference / 'cells'}")
    name = os.path.relpath(reference.resolve(), readme.resolve().parent)
    return readme_section(results, run or Run.unknown([r.cell for r in results]), name)


def rewrite_readme(readme: Path, reference: Path, others: Sequence[Section] = ()) -> bool:
    """Rewrite the results' section between its markers, and each of `others` where the
    README has its markers; False when the README already says the same."""
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError as exc:
        raise MatrixError(f"--readme: cannot read {readme}: {exc.strerror}") from exc
    if section_of(text) is None:
        raise MatrixError(f"--readme: {readme} has no section marked {BEGIN} ... {END}")
    new = text
    for part in [Section(BEGIN, END, expected_section(readme, reference)), *others]:
        if section_of(new, part.begin, part.end) is not None:
            head, tail = new[: new.index(part.begin)], new[new.index(part.end) :]
            new = f"{head}{part.begin}\n{part.text}\n{tail}"
    if new == text:
        return False
    readme.write_text(new, encoding="utf-8")
    return True


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""

"""The README's "What it measured here" section, made from the committed reference run
(assets.REFERENCE_DIR) by `fips-matrix report results/reference --readme README.md`: the
recoverability table with its legend and advice (report/answer.py) first, then the figures,
where they come from, the findings in short and how many cells were not measured. Every prose
line is wrapped for a screen (report/wrap.py); the scenario tables, the cells behind each
finding and each skipped cell's reason are in the run's table.md, which the section links.
The section sits between two marker comments; everything outside them is left as it is.
Other commands' sections (the bench's figures: matrix/bench/readme.py) are rewritten the
same way in whichever file has their markers (matrix/readme.py).

The results are read as stored (not judged again): the README shows what the committed files
say, and tests/unit/test_readme.py fails when the two disagree."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matrix.errors import MatrixError
from matrix.report.answer import TITLE
from matrix.report.layout import layout, skipped_groups
from matrix.report.table import answer_lines, finding_lines, headline, md
from matrix.report.wrap import wrap_markdown
from matrix.results.records import CellResult, Run
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
    """The Markdown between the markers, every prose line wrapped (report/wrap.py); name: the
    results directory as the README names it (relative to the README). It opens with the
    answer; the scenario tables, the cells behind each finding and each skipped cell's reason
    stay in `name`'s table.md, which it links."""
    shape = layout(results)
    figures = headline(results, run, timed=False)
    table = f"[`table.md`]({name}/table.md)"
    lines = [
        f"**{TITLE}**",
        "",
        *answer_lines(results, shape, named=False),
        *figures,
        *([""] if figures[-1] else []),
        f"From `{md(name)}/`, a real run of the default matrix (run `{md(run.id)}` of "
        f"{md(run.started[:10])}, fips-reload-matrix {md(run.tool_version)}, engine "
        f"{md(run.engine.version)} on kernel {md(run.engine.kernel)}), published for readers "
        "with `fips-matrix publish` (the build and probe logs stayed on the machine that ran "
        "it); each cell's JSON holds its fingerprint, its evidence and both probes' documents. "
        f"{table} and `report.html` show every scenario's table and name the cells behind "
        "each finding. `nox -s readme` makes this section; a test fails when it and the run "
        "disagree.",
        "",
        "What the cells show (each rule: the cells that support it, of those it applies to):",
        "",
        *finding_lines(results, named=False),
    ]
    skipped = skipped_groups(results)
    if skipped:
        kinds: dict[str, list[str]] = {}  # "platform alpine-3.23" and "platform fedora-44"
        for g in skipped:  # once as "platform alpine-3.23, fedora-44"
            kind, _, names = g.what.partition(" ")
            kinds.setdefault(kind, []).append(names)
        lines += [
            "",
            f"Not measured here: {sum(len(g.cells) for g in skipped)} cells `SKIPPED` ("
            + "; ".join(md(f"{kind} {', '.join(names)}") for kind, names in kinds.items())
            + f"); each reason whole in {table}.",
        ]
    return "\n".join(wrap_markdown(lines))


def section_of(text: str, begin: str = BEGIN, end: str = END) -> str | None:
    """The file's current section between the markers; None without both markers."""
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        return None
    return text[start + len(begin) : stop].strip("\n")


def results_section(readme: Path, reference: Path) -> Section:
    """The section from `reference`'s cell files, naming it relative to `readme`."""
    results, run = ResultsDir(reference).read_run()
    if not results:
        raise MatrixError(f"--readme: no cell results in {reference / 'cells'}")
    name = os.path.relpath(reference.resolve(), readme.resolve().parent)
    text = readme_section(results, run or Run.unknown([r.cell for r in results]), name)
    return Section(BEGIN, END, text)


def rewritten(path: Path, parts: Sequence[Section]) -> str | None:
    """`path`'s text with each of `parts` rewritten where the file has its markers; None when
    it already says the same. A file with none of their markers is refused."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MatrixError(f"--readme: cannot read {path}: {exc.strerror}") from exc
    present = [p for p in parts if section_of(text, p.begin, p.end) is not None]
    if not present:
        marked = " or ".join(f"{p.begin} ... {p.end}" for p in parts)
        raise MatrixError(f"--readme: {path} has no section marked {marked}")
    new = text
    for part in present:
        head, tail = new[: new.index(part.begin)], new[new.index(part.end) :]
        new = f"{head}{part.begin}\n{part.text}\n{tail}"
    return None if new == text else new

"""`fips-matrix report DIR`: judge a results directory's stored observations again under the
current rules, rewrite its cell files with the new verdicts, and make every report again.
Runs nothing: no engine is needed. A cell file it cannot read stops it before it writes
anything, with every such file named."""

from __future__ import annotations

import argparse

from rich.console import Console

from matrix.errors import MatrixError
from matrix.judge.cell import outcome_of, rejudge
from matrix.report.table import render
from matrix.report.write import write_reports
from matrix.results.records import Run, scenarios_of
from matrix.results.store import ResultsDir


def main(args: argparse.Namespace, console: Console) -> int:
    out = ResultsDir(args.results)
    with out.locked(create=False):
        files = out.load()
        files.refuse_unreadable("report", out.root)
        results, run = files.results, files.run
        if not results:
            raise MatrixError(f"no cell results in {out.cells_dir}")
        if files.missing:
            console.print(f"report: note: {files.missing_note()}")
        for result in results:
            if result.scenarios:
                result.scenarios = [rejudge(s) for s in result.scenarios]
                result.outcome = outcome_of(result.scenarios)
                out.write_cell(result)
        scenarios = scenarios_of(results)
        run = run or Run.unknown([r.cell for r in results])
        written = write_reports(out, results, run, scenarios)
    console.print(render(results, scenarios, "simple", compact=True))
    console.print("reports: " + ", ".join(str(p) for p in written.values()))
    return 0

"""`fips-matrix merge DIR... --results OUT`: one results directory, with every report, from
those of several jobs of a fanned-out matrix; refuses runs of different matrix definitions."""

from __future__ import annotations

import argparse

from rich.console import Console

from matrix.errors import MatrixError
from matrix.report.terminal import print_report
from matrix.report.write import write_reports
from matrix.results.merge import merge
from matrix.results.records import scenarios_of
from matrix.results.store import ResultsDir


def main(args: argparse.Namespace, console: Console) -> int:
    out = ResultsDir(args.results)
    with out.locked():
        try:
            results, run = merge(args.dirs, out)
        except OSError as exc:
            raise MatrixError(f"merge: {exc}") from exc
        written = write_reports(out, results, run, scenarios_of(results))
    console.print(
        f"merged {len(results)} cells from {len(args.dirs)} directories into {args.results}"
    )
    print_report(console, results, run, scenarios_of(results), written)
    return 0

"""`fips-matrix merge DIR... --results OUT`: one results directory, with every report, from
those of several jobs of a fanned-out matrix; refuses runs of different matrix definitions.
Every input (the --baseline too) is read and checked before OUT is made; with --baseline,
junit.xml compares with it as `run --baseline` does."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from matrix.commands import common
from matrix.errors import MatrixError
from matrix.report.diff import read_baseline
from matrix.report.terminal import print_report
from matrix.report.write import render_reports
from matrix.results.merge import merge, read_inputs
from matrix.results.records import scenarios_of
from matrix.results.store import ResultsDir


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dirs", type=Path, nargs="+", metavar="DIR", help="results directories to merge"
    )
    parser.add_argument(
        "--results", type=Path, required=True, help="the merged directory (made if missing)"
    )
    common.add(parser, common.BASELINE)


def main(args: argparse.Namespace, console: Console) -> int:
    loaded = read_inputs(args.dirs)
    baseline = read_baseline(args.baseline) if args.baseline else None
    for path, files in loaded:
        if files.missing:
            console.print(f"merge: note: {path}: {files.missing_note()}")
    out = ResultsDir(args.results)
    with out.locked():
        try:
            results, run, notes = merge(loaded, out)
        except OSError as exc:
            raise MatrixError(f"merge: {exc}") from exc
        reports = render_reports(out, results, run, scenarios_of(results), baseline=baseline)
        for r in results:  # only once every report could be made: all of them, or none
            out.write_cell(r)
        written = reports.write()
    for note in notes:
        console.print(f"merge: note: {note}")
    console.print(
        f"merged {len(results)} cells from {len(args.dirs)} directories into {args.results}"
    )
    print_report(console, results, run, scenarios_of(results), written)
    return 0

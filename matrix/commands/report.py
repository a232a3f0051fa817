"""`fips-matrix report DIR`: judge a results directory's stored observations again under the
current rules, rewrite its cell files with the new verdicts, and make every report again.
Runs nothing: no engine is needed. A cell file it cannot read stops it before it writes
anything, with every such file named; every report is made before the first file is written.

`fips-matrix report DIR --readme README.md --readme docs/speed.md` instead rewrites the
generated sections (between their markers) of each file from DIR's results as they are stored
and from its bench.json, and touches nothing in DIR."""

from __future__ import annotations

import argparse
import fnmatch
from pathlib import Path

from rich.console import Console

from matrix import readme
from matrix.commands import common
from matrix.errors import MatrixError
from matrix.judge.cell import rejudge_cell
from matrix.report.diff import read_baseline
from matrix.report.terminal import print_report
from matrix.report.write import render_reports
from matrix.results.records import CellResult, Run, scenarios_of
from matrix.results.store import ResultsDir


def arguments(parser: argparse.ArgumentParser) -> None:
    common.add(parser, common.BASELINE)
    parser.add_argument("results", type=Path, metavar="DIR", help="an existing results directory")
    parser.add_argument(
        "--readme",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="instead of the reports, rewrite FILE's generated sections (between the markers "
        "of matrix/report/readme.py and matrix/bench/readme.py) from the results, e.g. "
        "README.md and docs/speed.md from results/reference; repeatable; DIR is then left as "
        "it is (default: none: the reports are made)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME",
        help="also show this scenario's table on the terminal; repeatable, `all` for every one "
        "(default: none: the answer, the findings and the summary; table.md and report.html "
        "hold every table)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PATTERN",
        help="show only the cells whose id matches on the terminal (shell-style, repeatable); "
        "the files are made from every cell (default: every cell)",
    )


def main(args: argparse.Namespace, console: Console) -> int:
    out = ResultsDir(args.results)
    if args.readme:
        for file, changed in zip(
            args.readme, readme.update(args.readme, args.results), strict=True
        ):
            state = "rewritten" if changed else "already up to date"
            console.print(f"{file}: the sections made from {args.results} are {state}")
        return 0
    baseline = read_baseline(args.baseline) if args.baseline else None
    with out.locked(create=False):
        files = out.load()
        files.refuse_unreadable("report", out.root)
        results, run = files.results, files.run
        if not results:
            raise MatrixError(f"no cell results in {out.cells_dir}")
        if files.missing:
            console.print(f"report: note: {files.missing_note()}")
        # what the terminal is asked to show is checked before anything is rewritten
        _only(results, args.only)
        _detail(scenarios_of(results), args.scenario)
        results = [rejudge_cell(result) for result in results]
        scenarios = scenarios_of(results)
        run = run or Run.unknown([r.cell for r in results])
        # every report made before the first file is rewritten: all of them, or none
        reports = render_reports(out, results, run, scenarios, baseline=baseline)
        for result in results:
            if result.scenarios:
                out.write_cell(result)
        written = reports.write()
    shown = _only(results, args.only)
    detail = _detail(scenarios, args.scenario)
    print_report(console, shown, run, scenarios_of(shown), written, detail=detail)
    return 0


def _only(results: list[CellResult], patterns: list[str]) -> list[CellResult]:
    if not patterns:
        return results
    ids = [r.cell for r in results]
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(c, pattern) for c in ids):
            raise MatrixError(f"--only {pattern!r}: no cell of this run matches it")
    return [r for r in results if any(fnmatch.fnmatchcase(r.cell, p) for p in patterns)]


def _detail(scenarios: list[str], asked: list[str]) -> list[str]:
    if "all" in asked:
        return scenarios
    unknown = [name for name in asked if name not in scenarios]
    if unknown:
        raise MatrixError(
            f"--scenario {unknown[0]!r}: not a scenario of this run (its scenarios: "
            f"{', '.join(scenarios)}, or all)"
        )
    return asked

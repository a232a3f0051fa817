"""`fips-matrix diff OLD NEW`: which cells changed verdict between two results directories;
exit 1 when one got worse (a CI gate)."""

from __future__ import annotations

import argparse

from rich.console import Console

from matrix.errors import MatrixError
from matrix.results.diff import diff_results, format_diff
from matrix.results.store import ResultsDir


def main(args: argparse.Namespace, console: Console) -> int:
    old, _ = ResultsDir(args.old).read_run()
    new, _ = ResultsDir(args.new).read_run()
    for path, results in ((args.old, old), (args.new, new)):
        if not results:
            raise MatrixError(f"no cell results in {path / 'cells'}")
    diff = diff_results(old, new)
    console.print(format_diff(diff), markup=False)
    return 1 if diff.got_worse else 0

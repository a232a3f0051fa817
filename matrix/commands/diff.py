"""`fips-matrix diff OLD NEW`: which cells changed status (matrix/results/diff.py) between two
results directories; exit 1 when one got worse (a CI gate). A cell file that cannot be read
counts as worse."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from matrix.errors import MatrixError
from matrix.results.diff import diff_results, format_diff
from matrix.results.store import ResultsDir, RunFiles, cell_of


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", type=Path, metavar="OLD", help="the earlier results directory")
    parser.add_argument("new", type=Path, metavar="NEW", help="the later results directory")


def main(args: argparse.Namespace, console: Console) -> int:
    sides: list[RunFiles] = []
    for path in (args.old, args.new):
        if not path.is_dir():
            raise MatrixError(f"diff: {path}: no such results directory")
        files = ResultsDir(path).load()
        if not files.results and not files.unreadable:
            raise MatrixError(f"no cell results in {path / 'cells'}")
        sides.append(files)
    old, new = sides
    diff = diff_results(
        old.results,
        new.results,
        unreadable_old={_name(u.path): u.why for u in old.unreadable},
        unreadable_new={
            **{_name(u.path): u.why for u in new.unreadable},
            **{c: "named by the run's summary.json, but no file holds it" for c in new.missing},
        },
    )
    console.print(format_diff(diff))
    return 1 if diff.got_worse else 0


def _name(path: Path) -> str:
    """An unreadable file by the cell its name stands for, else by its path."""
    return cell_of(path) or str(path)

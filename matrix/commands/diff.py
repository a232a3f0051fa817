"""`fips-matrix diff OLD NEW`: which cells changed status (matrix/report/diff.py) between two
results directories; exit 1 when one got worse (a CI gate). A cell file that cannot be read
counts as worse, and so does a cell of OLD that NEW does not hold unless NEW's summary.json
shows its run did not select it."""

from __future__ import annotations

import argparse
import fnmatch
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console

from matrix.errors import MatrixError
from matrix.report.diff import diff_results, format_diff
from matrix.results.store import ResultsDir, RunFiles, cell_of


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", type=Path, metavar="OLD", help="the earlier results directory")
    parser.add_argument("new", type=Path, metavar="NEW", help="the later results directory")
    parser.add_argument(
        "--only",
        action="append",
        metavar="PATTERN",
        help="compare only the cells whose id matches (shell-style, repeatable), as a pull "
        "request's run of the cells it touched (default: every cell)",
    )


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
    only: list[str] = args.only or ["*"]  # a pull request's run holds the cells it touched

    def chosen(cell: str) -> bool:
        return any(fnmatch.fnmatchcase(cell, p) for p in only)

    def lost(files: RunFiles, missing: Mapping[str, str]) -> dict[str, str]:
        """The unreadable files of the cells asked for, and every one that is no cell's
        (summary.json): a run that cannot be read is never passed over."""
        named = {
            _name(u.path): u.why
            for u in files.unreadable
            if (cell := cell_of(u.path)) is None or chosen(cell)
        }
        return {**named, **{c: why for c, why in missing.items() if chosen(c)}}

    gone = {c: "named by the run's summary.json, but no file holds it" for c in new.missing}
    diff = diff_results(
        [r for r in old.results if chosen(r.cell)],
        [r for r in new.results if chosen(r.cell)],
        unreadable_old=lost(old, {}),
        unreadable_new=lost(new, gone),
        selected_new=new.run.cells if new.run is not None else None,
    )
    console.print(format_diff(diff))
    return 1 if diff.got_worse else 0


def _name(path: Path) -> str:
    """An unreadable file by the cell its name stands for, else by its path."""
    return cell_of(path) or str(path)

"""`fips-matrix repro CELL SCENARIO --output DIR`: a self-contained directory that reproduces
one scenario of one cell with plain docker (matrix/report/reproducer.py): a Dockerfile, one C
file and a README that says what to expect, from the cell's recorded result when the results
directory holds one (judged again under the current rules). DIR must be new, empty or an
earlier reproducer: a user's files are overwritten only with --force."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console

from matrix import assets
from matrix.errors import MatrixError
from matrix.execute.options import DEFAULT_RESULTS
from matrix.files import read_regular, write_text
from matrix.judge.cell import rejudge
from matrix.model.cells import Cell, expand
from matrix.model.definition import load_definition
from matrix.report import reproducer
from matrix.results.records import CellResult, ScenarioResult
from matrix.results.store import ResultsDir


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cell", metavar="CELL", help="the cell's id, PLATFORM/VERSION/VARIANT")
    parser.add_argument("scenario", metavar="SCENARIO", help="one of the cell's scenarios")
    parser.add_argument(
        "--output",
        type=Path,
        required=True,
        metavar="DIR",
        help="the directory written: new, empty or an earlier reproducer",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into a DIR that holds other files, overwriting its Dockerfile, repro.c and "
        "README.md",
    )
    parser.add_argument(
        "--matrix", type=Path, help="matrix file (default: the built-in matrix/default.toml)"
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=DEFAULT_RESULTS,
        metavar="DIR",
        help="results directory whose record of the cell says what to expect",
    )


def main(args: argparse.Namespace, console: Console) -> int:
    definition = load_definition(args.matrix or assets.DEFAULT_MATRIX)
    cell = _cell(expand(definition), args.cell)
    if args.scenario not in cell.scenarios:
        raise MatrixError(
            f"repro: {cell.id} does not run scenario {args.scenario!r} "
            f"(its scenarios: {', '.join(cell.scenarios)})"
        )
    recorded = _recorded(args.results, cell.id, args.scenario)
    texts = reproducer.files(cell, args.scenario, recorded)
    out: Path = args.output
    _check_output(out, texts, args.force)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            write_text(out / name, text)
    except OSError as exc:
        raise MatrixError(f"repro: cannot write {exc.filename or out}: {exc.strerror}") from None
    name = reproducer.image_name(cell, args.scenario)
    where = f"the result in {args.results}" if recorded else "no recorded result"
    console.print(f"{out}: reproducer of {cell.id} {args.scenario} ({where}); run it with")
    console.print(f"  docker build -t {name} {out}\n  docker run --rm {name}")
    return 0


def _check_output(out: Path, texts: Mapping[str, str], force: bool) -> None:
    """DIR may be new, empty or an earlier reproducer (only its files, its README a
    reproducer's); anything else only with --force. Each refusal is one line."""
    if (out.is_symlink() or out.exists()) and not out.is_dir():
        raise MatrixError(f"repro: --output {out} exists and is not a directory")
    if not out.is_dir() or force:
        return
    try:
        names = sorted(p.name for p in out.iterdir())
        earlier = bool(names) and set(names) <= set(texts) and _reproducer_readme(out)
    except OSError as exc:
        raise MatrixError(f"repro: --output {out}: {exc.strerror}") from None
    if names and not earlier:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise MatrixError(
            f"repro: --output {out} is not empty ({shown}) and is no earlier reproducer: "
            "nothing written; give a new or empty directory, or --force to overwrite "
            f"{', '.join(texts)} in it"
        )


def _reproducer_readme(out: Path) -> bool:
    """out's README.md is a regular file that a reproducer wrote (its heading)."""
    try:
        head = read_regular(out / "README.md", 4096)
    except OSError:  # missing, a link, a FIFO...: no reproducer wrote that
        return False
    return head.startswith(reproducer.README_HEADING.encode())


def _cell(cells: list[Cell], cell_id: str) -> Cell:
    found = next((c for c in cells if c.id == cell_id), None)
    if found is None:
        known = "\n  ".join(c.id for c in cells)
        raise MatrixError(f"repro: no cell {cell_id!r} in the matrix; its cells:\n  {known}")
    return found


def _recorded(
    results: Path, cell_id: str, scenario: str
) -> tuple[CellResult, ScenarioResult] | None:
    result = ResultsDir(results).read_cell(cell_id)
    if result is None:
        return None
    s = next((s for s in result.scenarios if s.scenario == scenario), None)
    return (result, rejudge(s)) if s is not None else None

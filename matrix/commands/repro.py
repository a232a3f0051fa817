"""`fips-matrix repro CELL SCENARIO --output DIR`: a self-contained directory that reproduces
one scenario of one cell with plain docker (matrix/report/reproducer.py): a Dockerfile, one C
file and a README that says what to expect, from the cell's recorded result when the results
directory holds one (judged again under the current rules)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from matrix import assets
from matrix.errors import MatrixError
from matrix.execute.options import DEFAULT_RESULTS
from matrix.files import write_text
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
        "--output", type=Path, required=True, metavar="DIR", help="the directory written"
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
    if out.exists() and not out.is_dir():
        raise MatrixError(f"repro: {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        write_text(out / name, text)
    name = reproducer.image_name(cell, args.scenario)
    where = f"the result in {args.results}" if recorded else "no recorded result"
    console.print(f"{out}: reproducer of {cell.id} {args.scenario} ({where}); run it with")
    console.print(f"  docker build -t {name} {out}\n  docker run --rm {name}")
    return 0


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

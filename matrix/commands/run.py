"""`fips-matrix run`: build and probe the selected cells of a matrix, then write every report.
Its options are resolved here, once, into RunOptions; nothing below reads argv or the
environment for them (matrix/session.py does the run). A run's reports show the cells it
measured itself, and no others (`fips-matrix merge` combines runs)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from rich.console import Console

from matrix import assets, session
from matrix.commands import common
from matrix.errors import MatrixError, NothingMeasured
from matrix.execute.options import (
    DEFAULT_BUILD_TIMEOUT,
    DEFAULT_RESULTS,
    MAX_JOBS,
    MAX_SECONDS,
    RunOptions,
)
from matrix.model.cells import Cell, select
from matrix.model.load import load_cells
from matrix.model.types import MatrixDefinition
from matrix.report.diff import read_baseline


def arguments(parser: argparse.ArgumentParser) -> None:
    common.add(parser, *common.CELLS, common.CACHE, common.SIGNERS, *common.MEASURING)
    parser.add_argument(
        "--results",
        type=Path,
        default=DEFAULT_RESULTS,
        help="results directory: this run's cells and reports only",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        help=f"make -j inside each build, 1 to {MAX_JOBS} (default: CPU count)",
    )
    parser.add_argument(
        "--build-timeout",
        type=float,
        default=DEFAULT_BUILD_TIMEOUT,
        metavar="SECONDS",
        help=f"seconds a cell's image build may take before the cell is a TIMEOUT, at most "
        f"{MAX_SECONDS:g}",
    )
    parser.add_argument("--force", action="store_true", help="rebuild and re-probe every cell")
    parser.add_argument("--list", action="store_true", help="list the selected cells and stop")
    parser.add_argument(
        "--locked",
        nargs="?",
        const=True,
        metavar="LOCK",
        help=f"refuse to run if a base image or source differs from the lock (default: not "
        f"locked; given without LOCK: {assets.LOCK_NAME} in the results directory)",
    )
    parser.add_argument(
        "--bundle",
        type=Path,
        help="take base images, cell images and sources from a bundle: no network needed "
        "(default: none; images are built or pulled, sources downloaded)",
    )


def resolve(args: argparse.Namespace) -> tuple[MatrixDefinition, list[Cell], RunOptions]:
    definition, every = load_cells(args.matrix)
    cells = select(every, args.only)
    common.check_numbers(args)
    if args.bundle and args.force:
        raise MatrixError("--bundle and --force contradict: a bundle's images are used as they are")
    if args.bundle and args.locked:
        raise MatrixError("--bundle and --locked contradict: a bundle brings its own lock")
    base = session.defaults(args.results, args.cache_dir)
    options = dataclasses.replace(
        base,
        jobs=args.jobs or base.jobs,
        parallel=args.parallel or base.parallel,
        probe_timeout=args.probe_timeout,
        build_timeout=args.build_timeout,
        force=args.force,
        offline=args.offline,
        repeat=args.repeat,
        fate_runs=args.fate_runs,
        allow_unknown_signer=args.allow_unknown_signer,
    )
    return definition, cells, options


def main(args: argparse.Namespace, console: Console) -> int:
    definition, cells, options = resolve(args)
    if args.list:
        extends = len(set(definition.origins.values())) > 1
        for cell in cells:
            # a matrix that extends another: which file each cell comes from
            origin = definition.origin(cell.platform.name, cell.source.version, cell.variant.name)
            console.print(f"{cell.id}  ({origin})" if extends else cell.id)
        return 0
    if not cells and not args.allow_empty:
        raise NothingMeasured(
            f"the selection holds no cell ({definition.path} expands to none); give "
            "--allow-empty to accept that"
        )
    baseline = read_baseline(args.baseline) if args.baseline else None
    results, _ = session.run(
        definition,
        cells,
        options,
        console,
        locked=args.locked,
        bundle=args.bundle,
        baseline=baseline,
    )
    return session.exit_status(results, args.allow_empty)

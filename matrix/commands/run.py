"""`fips-matrix run`: build and probe the selected cells of a matrix, then write every report.
Its options are resolved here, once, into RunOptions; nothing below reads argv or the
environment for them."""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from matrix import __version__, assets
from matrix.acquire.mirror import debian_mirror
from matrix.acquire.sources import default_cache_dir
from matrix.errors import MatrixError
from matrix.execute import engine
from matrix.execute.assembly import assemble
from matrix.execute.bundle import load_bundle
from matrix.execute.lockfile import Lock
from matrix.execute.options import RunOptions
from matrix.model.cells import Cell, expand, select
from matrix.model.definition import MatrixDefinition, load_definition
from matrix.model.vocabulary import Outcome
from matrix.report.table import render
from matrix.report.write import write_reports
from matrix.reporter import ConsoleReporter
from matrix.results.records import CellResult, EngineInfo, Run, now
from matrix.results.store import ResultsDir

DEFAULT_RESULTS = Path("results/latest")
DEFAULT_PROBE_TIMEOUT = 120.0


def defaults(results: Path, cache_dir: Path | None = None) -> RunOptions:
    """The options of a run nobody tuned."""
    cpus = os.cpu_count() or 1
    return RunOptions(
        results=results,
        cache_dir=cache_dir or default_cache_dir(),
        mirror=debian_mirror(),
        jobs=cpus,
        # One build more than cores: while one build is in a serial step (Configure, a
        # generator, the final link), the others keep every core busy.
        parallel=min(cpus + 1, 3),
        probe_timeout=DEFAULT_PROBE_TIMEOUT,
        force=False,
    )


def resolve(args: argparse.Namespace) -> tuple[MatrixDefinition, list[Cell], RunOptions]:
    definition = load_definition(args.matrix or assets.DEFAULT_MATRIX)
    cells = select(expand(definition), args.only)
    if args.jobs is not None and args.jobs < 1:
        raise MatrixError("--jobs must be at least 1")
    if args.parallel is not None and args.parallel < 1:
        raise MatrixError("--parallel must be at least 1")
    if args.repeat < 1:
        raise MatrixError("--repeat must be at least 1")
    if args.probe_timeout <= 0:
        raise MatrixError("--probe-timeout must be positive")
    if args.bundle and args.force:
        raise MatrixError("--bundle and --force contradict: a bundle's images are used as they are")
    if args.bundle and args.locked:
        raise MatrixError("--bundle and --locked contradict: a bundle brings its own lock")
    base = defaults(args.results, args.cache_dir)
    options = dataclasses.replace(
        base,
        jobs=args.jobs or base.jobs,
        parallel=args.parallel or base.parallel,
        probe_timeout=args.probe_timeout,
        force=args.force,
        offline=args.offline,
        repeat=args.repeat,
    )
    return definition, cells, options


def main(args: argparse.Namespace, console: Console) -> int:
    definition, cells, options = resolve(args)
    if args.list:
        for cell in cells:
            console.print(cell.id)
        return 0
    results, _ = run(definition, cells, options, console, locked=args.locked, bundle=args.bundle)
    failed = [r for r in results if r.outcome in (Outcome.BUILD_FAILED, Outcome.ERROR)]
    return 1 if failed else 0


def run(
    definition: MatrixDefinition,
    cells: Sequence[Cell],
    options: RunOptions,
    console: Console,
    *,
    locked: str | bool | None = None,
    bundle: Path | None = None,
) -> tuple[list[CellResult], ResultsDir]:
    """The run: its cells' results (also on disk, with every report) and where they are."""
    client = engine.connect()
    facts = engine.facts(client)
    lock = _lock_for(locked, options.results, definition)
    if bundle:
        console.print(f"loading {bundle} (images and sources)")
        lock = load_bundle(client, bundle, options.cache_dir)
        lock.check_matrix(definition.digest, bundle)
        # everything comes from the bundle: no pulls, no mirror
        options = dataclasses.replace(options, offline=True, mirror=None, downloads=False)
    options = dataclasses.replace(options, locked=lock)
    reporter = ConsoleReporter(len(cells), console)
    reporter.note(
        f"{len(cells)} cells from {definition.path}; "
        f"engine {facts.version} on kernel {facts.kernel}; "
        f"results in {options.results}"
    )
    record = Run(
        id=uuid.uuid4().hex[:12],
        started=now(),
        tool_version=__version__,
        matrix=str(definition.path),
        matrix_digest=definition.digest,
        cells=[c.id for c in cells],
        engine=EngineInfo(facts.version, facts.api_version, facts.kernel),
    )
    started = time.monotonic()
    parts = assemble(client, facts, definition, options, reporter)
    out = parts.out
    with out.locked():
        # A run of some cells keeps the directory's results of the others (same matrix),
        # so its reports show every cell's latest result.
        earlier = _earlier_results(out, definition, cells)
        if earlier:
            record.earlier_cells = len(earlier)
        record.cells = _in_matrix_order(definition, [*earlier, *(c.id for c in cells)])
        # Named before any cell runs: a run that dies still says which matrix it belongs to.
        out.write_summary(record)
        results = parts.run(cells)
        record.finished = now()
        record.wall_seconds = round(time.monotonic() - started, 1)
        record.phase_seconds = {k: round(v, 1) for k, v in parts.phase_seconds.items()}
        scenarios = list(definition.scenarios)
        by_id = {**earlier, **{r.cell: r for r in results}}
        shown = [by_id[c] for c in record.cells if c in by_id]
        t0 = time.monotonic()
        with parts.timeline.span("report", str(len(shown))):
            written = write_reports(out, shown, record, scenarios)
        # the reports' own time is known once they are written: summary.json gets it after
        record.phase_seconds["report"] = round(time.monotonic() - t0, 2)
        out.rewrite_run(record)
        written["lock"] = out.root / assets.LOCK_NAME
        parts.lock.write(written["lock"])
    console.print()
    console.print(render(results, scenarios, "simple", compact=True), markup=False)
    console.print(f"results: {options.results}/cells/ ({len(results)} cells)")
    console.print("reports: " + ", ".join(str(p) for p in written.values()))
    console.print(f"wall time: {time.monotonic() - started:.2f}s")
    return results, out


def _lock_for(
    locked: str | bool | None, results: Path, definition: MatrixDefinition
) -> Lock | None:
    if not locked:
        return None
    path = results / assets.LOCK_NAME if locked is True else Path(str(locked))
    lock = Lock.read(path)
    lock.check_matrix(definition.digest, path)
    return lock


def _earlier_results(
    out: ResultsDir, definition: MatrixDefinition, cells: Sequence[Cell]
) -> dict[str, CellResult]:
    """The directory's results of other cells of the same matrix, from its last run."""
    previous, run = out.read_run()
    if run is None or run.matrix_digest != definition.digest:
        return {}
    now_ids = {c.id for c in cells}
    return {r.cell: r for r in previous if r.cell not in now_ids}


def _in_matrix_order(definition: MatrixDefinition, ids: Sequence[str]) -> list[str]:
    wanted = set(ids)
    return [c.id for c in expand(definition) if c.id in wanted]

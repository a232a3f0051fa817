"""A run of cells, as `run`, `probe` and `bundle` make it: the options nobody tuned, the
engine, the bundle or lock it is held to, every cell built and probed (matrix/execute/), then
every report written and the terminal's; and what the run's exit status is. The commands
parse their arguments and call this; nothing here reads argv or the environment beyond the
run's defaults."""

from __future__ import annotations

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
from matrix.errors import NothingMeasured
from matrix.execute import engine
from matrix.execute.images.bundle import load_bundle
from matrix.execute.lockfile import Lock
from matrix.execute.options import DEFAULT_BUILD_TIMEOUT, DEFAULT_PROBE_TIMEOUT, RunOptions
from matrix.execute.probes.batch import remove_leftovers
from matrix.execute.run.assembly import assemble
from matrix.model.cells import Cell
from matrix.model.types import MatrixDefinition, matrix_label
from matrix.model.vocabulary import Outcome
from matrix.progress import ConsoleReporter
from matrix.report.diff import Baseline
from matrix.report.terminal import print_report
from matrix.report.write import write_reports
from matrix.results.records import CellResult, EngineInfo, Run, now
from matrix.results.store import ResultsDir


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
        build_timeout=DEFAULT_BUILD_TIMEOUT,
    )


def exit_status(results: Sequence[CellResult], allow_empty: bool) -> int:
    """0 when every cell produced a result (whatever the verdicts); 1 when one failed to build
    (its build failed, or ran past --build-timeout: a TIMEOUT with no scenario) or the tool
    failed on it; NothingMeasured when nothing was measured, unless allowed."""
    require_measured(results, allow_empty)
    return 1 if failed_cells(results) else 0


def failed_cells(results: Sequence[CellResult]) -> list[CellResult]:
    """The cells that failed to build (a TIMEOUT with no scenario ran past --build-timeout)
    or that the tool failed on."""
    return [
        r
        for r in results
        if r.outcome in (Outcome.BUILD_FAILED, Outcome.ERROR)
        or (r.outcome == Outcome.TIMEOUT and not r.scenarios)
    ]


def require_measured(results: Sequence[CellResult], allow_empty: bool) -> None:
    """A run that measured nothing is no result to pass a CI job on, unless asked."""
    if allow_empty or any(r.scenarios for r in results):
        return
    raise NothingMeasured(
        f"nothing was measured: none of the {len(results)} cells produced a result (see "
        "above why); give --allow-empty to accept that"
    )


def run(
    definition: MatrixDefinition,
    cells: Sequence[Cell],
    options: RunOptions,
    console: Console,
    *,
    locked: str | bool | None = None,
    bundle: Path | None = None,
    baseline: Baseline | None = None,
) -> tuple[list[CellResult], ResultsDir]:
    """The run: its cells' results (also on disk, with every report) and where they are."""
    client = engine.connect()
    facts = engine.facts(client)
    lock = _lock_for(locked, options.results, definition)
    reporter = ConsoleReporter(len(cells), console)
    remove_leftovers(client, reporter)
    if bundle:
        console.print(f"loading {bundle} (images and sources)")
        lock = load_bundle(client, bundle, options.cache_dir, definition)
        # everything comes from the bundle: no pulls, no mirror
        options = dataclasses.replace(options, offline=True, mirror=None, downloads=False)
    options = dataclasses.replace(options, locked=lock)
    reporter.note(
        f"{len(cells)} cells from {definition.path}; "
        f"engine {facts.version} on kernel {facts.kernel}; "
        f"results in {options.results}"
    )
    record = Run(
        id=uuid.uuid4().hex[:12],
        started=now(),
        tool_version=__version__,
        matrix=matrix_label(definition.path),
        matrix_digest=definition.digest,
        cells=[c.id for c in cells],
        engine=EngineInfo(facts.version, facts.api_version, facts.kernel),
    )
    started = time.monotonic()
    parts = assemble(client, facts, definition, options, reporter)
    out = parts.out
    with out.locked():
        # Named before any cell runs: a run that dies still says which matrix it belongs to.
        out.write_summary(record)
        results = parts.run(cells)
        record.finished = now()
        record.wall_seconds = round(time.monotonic() - started, 1)
        record.phase_seconds = {k: round(v, 1) for k, v in parts.phase_seconds.items()}
        scenarios = list(definition.scenarios)
        t0 = time.monotonic()
        with parts.timeline.span("report", str(len(results))):
            written = write_reports(out, results, record, scenarios, baseline=baseline)
        # the reports' own time is known once they are written: summary.json gets it after
        record.phase_seconds["report"] = round(time.monotonic() - t0, 2)
        out.rewrite_run(record)
        written["lock"] = out.root / assets.LOCK_NAME
        parts.lockfile.write(written["lock"])
    console.print()
    console.print(f"results: {options.results}/cells/ ({len(results)} cells)")
    print_report(console, results, record, scenarios, written)
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

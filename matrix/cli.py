"""Command line: `fips-matrix run` (also `python -m matrix run`) and `fips-matrix report DIR`.
Options are resolved here, once, into RunOptions; nothing below reads argv or the environment
for them."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from matrix import __version__, engine
from matrix.bundle import load_bundle, write_bundle
from matrix.cells import Cell, expand, select
from matrix.definition import MatrixDefinition, default_definition_path, load_definition
from matrix.diff import diff_results, format_diff
from matrix.errors import MatrixError
from matrix.lockfile import LOCK_NAME, Lock
from matrix.merge import merge
from matrix.mirror import debian_mirror
from matrix.progress import Progress
from matrix.report import load_run, scenarios_of, write_reports
from matrix.results import BUILD_FAILED, ERROR, CellResult, ResultsDir, write_text
from matrix.runner import Runner, RunOptions, default_cache_dir, now, outcome_of, rejudge
from matrix.table import render

DEFAULT_RESULTS = Path("results/latest")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fips-matrix",
        description="Can a process recover when the OpenSSL 3 FIPS provider fails a self-test?",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    cells = argparse.ArgumentParser(add_help=False)
    cells.add_argument("--matrix", type=Path, help="matrix file (TOML); default: the built-in one")
    cells.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PATTERN",
        help="shell-style pattern over cell ids PLATFORM/VERSION/VARIANT; repeatable",
    )

    run = sub.add_parser("run", parents=[cells], help="build and probe the cells of a matrix")
    run.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="results directory")
    run.add_argument("--cache-dir", type=Path, help="where verified sources are kept")
    run.add_argument("--jobs", type=int, help="make -j inside each build (default: CPU count)")
    run.add_argument(
        "--parallel",
        type=int,
        help="builds side by side, and probe workers beside them "
        "(default: 2 with 2 or more CPUs, else 1)",
    )
    run.add_argument(
        "--probe-timeout", type=float, default=120.0, help="seconds before a probe is killed"
    )
    run.add_argument("--force", action="store_true", help="rebuild and re-probe every cell")
    run.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run each probe N times; a scenario whose runs disagree shows k/N (FLAKY)",
    )
    run.add_argument(
        "--offline",
        action="store_true",
        help="never pull base images: cells whose base is not here and cannot be made skip",
    )
    run.add_argument("--list", action="store_true", help="list the selected cells and stop")
    run.add_argument(
        "--locked",
        nargs="?",
        const=True,
        metavar="LOCK",
        help=f"refuse to run if a base image or source differs from the lock (default: "
        f"{LOCK_NAME} in the results directory)",
    )
    run.add_argument(
        "--bundle",
        type=Path,
        help="take base images, cell images and sources from a bundle: no network needed",
    )

    plan = sub.add_parser("plan", parents=[cells], help="print the cells, for a CI job matrix")
    plan.add_argument("--format", choices=("github", "lines"), default="lines")
    plan.add_argument(
        "--per",
        choices=("cell", "platform"),
        default="cell",
        help="one job per cell, or per platform (its cells share compiles; GitHub allows "
        "at most 256 jobs in a matrix)",
    )

    merge = sub.add_parser("merge", help="merge result directories into one report")
    merge.add_argument("dirs", type=Path, nargs="+")
    merge.add_argument("--results", type=Path, required=True, help="the merged directory")

    bundle = sub.add_parser(
        "bundle",
        parents=[cells],
        help="build the cells, then write their images and verified sources into one archive",
    )
    bundle.add_argument("--output", type=Path, required=True, help="the archive (.tar)")
    bundle.add_argument("--cache-dir", type=Path, help="where verified sources are kept")

    report = sub.add_parser(
        "report", help="make every report of a results directory again (runs nothing)"
    )
    report.add_argument("results", type=Path)

    diff = sub.add_parser(
        "diff", help="cells whose verdict changed between two runs; exit 1 if one got worse"
    )
    diff.add_argument("old", type=Path)
    diff.add_argument("new", type=Path)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # SIGTERM (a CI job cancelled, `kill`) unwinds like Ctrl-C: probe containers are removed
    # and finished cells stay on disk.
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        signal.signal(signal.SIGTERM, _interrupted)
    console = Console(highlight=False, soft_wrap=True)
    try:
        if args.command == "run":
            return _run(args, console)
        if args.command == "diff":
            return _diff(args.old, args.new, console)
        if args.command == "plan":
            return _plan(args, console)
        if args.command == "merge":
            return _merge(args.dirs, args.results, console)
        if args.command == "bundle":
            return _bundle(args, console)
        return _report(args.results, console)
    except MatrixError as exc:
        console.print(f"[red]fips-matrix: error:[/red] {exc}", markup=True, highlight=False)
        return 2
    except KeyboardInterrupt:
        console.print("fips-matrix: interrupted; finished cells are kept in the results directory")
        return 130


def resolve(args: argparse.Namespace) -> tuple[MatrixDefinition, list[Cell], RunOptions]:
    definition = load_definition(args.matrix or default_definition_path())
    cells = select(expand(definition), args.only)
    if args.jobs is not None and args.jobs < 1:
        raise MatrixError("--jobs must be at least 1")
    if args.parallel is not None and args.parallel < 1:
        raise MatrixError("--parallel must be at least 1")
    if args.repeat < 1:
        raise MatrixError("--repeat must be at least 1")
    cpus = os.cpu_count() or 1
    if args.probe_timeout <= 0:
        raise MatrixError("--probe-timeout must be positive")
    if args.bundle and args.force:
        raise MatrixError("--bundle and --force contradict: a bundle's images are used as they are")
    if args.bundle and args.locked:
        raise MatrixError("--bundle and --locked contradict: a bundle brings its own lock")
    options = RunOptions(
        results=args.results,
        cache_dir=args.cache_dir or default_cache_dir(),
        mirror=debian_mirror(),
        jobs=args.jobs or cpus,
        # Two builds side by side fill the cores through each other's serial steps.
        parallel=args.parallel or min(2, cpus),
        probe_timeout=args.probe_timeout,
        force=args.force,
        offline=args.offline,
        repeat=args.repeat,
    )
    return definition, cells, options


def _lock_for(args: argparse.Namespace, definition: MatrixDefinition) -> Lock | None:
    if not args.locked:
        return None
    path = args.results / LOCK_NAME if args.locked is True else Path(args.locked)
    lock = Lock.read(path)
    lock.check_matrix(definition.digest, path)
    return lock


def _run(args: argparse.Namespace, console: Console) -> int:
    definition, cells, options = resolve(args)
    if args.list:
        for cell in cells:
            console.print(cell.id)
        return 0
    client = engine.connect()
    facts = engine.facts(client)
    locked = _lock_for(args, definition)
    if args.bundle:
        console.print(f"loading {args.bundle} (images and sources)")
        locked = load_bundle(client, args.bundle, options.cache_dir)
        locked.check_matrix(definition.digest, args.bundle)
        # everything comes from the bundle: no pulls, no mirror
        options = dataclasses.replace(options, offline=True, mirror=None, downloads=False)
    options = dataclasses.replace(options, locked=locked)
    progress = Progress(len(cells), console)
    progress.note(
        f"{len(cells)} cells from {definition.path}; "
        f"engine {facts.version} on kernel {facts.kernel}; "
        f"results in {options.results}"
    )
    run: dict[str, Any] = {
        "id": uuid.uuid4().hex[:12],
        "started": now(),
        "tool_version": __version__,
        "matrix": str(definition.path),
        "matrix_digest": definition.digest,
        "cells": [c.id for c in cells],
        "engine": {
            "version": facts.version,
            "api_version": facts.api_version,
            "kernel": facts.kernel,
        },
    }
    runner = Runner(client, facts, definition, options, progress)
    with runner.out.locked():
        # A run of some cells keeps the directory's results of the others (same matrix),
        # so its reports show every cell's latest result.
        earlier = _earlier_results(runner.out, definition, cells)
        if earlier:
            run["earlier_cells"] = len(earlier)
        run["cells"] = _in_matrix_order(definition, [*earlier, *(c.id for c in cells)])
        # Named before any cell runs: a run that dies still says which matrix it belongs to.
        write_text(runner.out.root / "summary.json", json.dumps({"schema": 1, "run": run}))
        results = runner.run(cells)
        run["finished"] = now()
        run["wall_seconds"] = round(progress.elapsed(), 1)
        run["phase_seconds"] = {k: round(v, 1) for k, v in runner.phase_seconds.items()}
        scenarios = list(definition.scenarios)
        by_id = {**earlier, **{r.cell: r for r in results}}
        shown = [by_id[c] for c in run["cells"] if c in by_id]
        t0 = time.monotonic()
        written = write_reports(runner.out, shown, run, scenarios)
        # the reports' own time is known once they are written: summary.json gets it after
        _add_report_seconds(written["summary"], time.monotonic() - t0)
        written["lock"] = runner.out.root / LOCK_NAME
        _updated_lock(runner.used, written["lock"]).write(written["lock"])
    console.print()
    console.print(render(results, scenarios, "simple", compact=True), markup=False)
    console.print(f"results: {options.results}/cells/ ({len(results)} cells)")
    console.print("reports: " + ", ".join(str(p) for p in written.values()))
    console.print(f"wall time: {progress.elapsed():.2f}s")
    failed = [r for r in results if r.outcome in (BUILD_FAILED, ERROR)]
    return 1 if failed else 0


def _add_report_seconds(summary: Path, seconds: float) -> None:
    data = json.loads(summary.read_text(encoding="utf-8"))
    data["run"].setdefault("phase_seconds", {})["report"] = round(seconds, 2)
    write_text(summary, json.dumps(data, indent=2) + "\n")


def _report(results_dir: Path, console: Console) -> int:
    """Judges the stored observations again under the current rules and makes every report
    again; runs nothing."""
    out = ResultsDir(results_dir)
    with out.locked():
        results, run = load_run(out)
        if not results:
            raise MatrixError(f"no cell results in {out.cells_dir}")
        for result in results:
            if result.scenarios:
                result.scenarios = [rejudge(s) for s in result.scenarios]
                result.outcome = outcome_of(result.scenarios)
                out.write_cell(result)
        scenarios = scenarios_of(results)
        written = write_reports(out, results, run, scenarios)
    console.print(render(results, scenarios, "simple", compact=True), markup=False)
    console.print("reports: " + ", ".join(str(p) for p in written.values()))
    return 0


def _diff(old_dir: Path, new_dir: Path, console: Console) -> int:
    """Which cells changed verdict between two results directories; 1 when one got worse."""
    old, _ = load_run(ResultsDir(old_dir))
    new, _ = load_run(ResultsDir(new_dir))
    for path, results in ((old_dir, old), (new_dir, new)):
        if not results:
            raise MatrixError(f"no cell results in {path / 'cells'}")
    diff = diff_results(old, new)
    console.print(format_diff(diff), markup=False)
    return 1 if diff.got_worse else 0


def _earlier_results(
    out: ResultsDir, definition: MatrixDefinition, cells: Sequence[Cell]
) -> dict[str, CellResult]:
    """The directory's results of other cells of the same matrix, from its last run."""
    previous, run = load_run(out)
    if run.get("matrix_digest") != definition.digest:
        return {}
    now = {c.id for c in cells}
    return {r.cell: r for r in previous if r.cell not in now}


def _in_matrix_order(definition: MatrixDefinition, ids: Sequence[str]) -> list[str]:
    wanted = set(ids)
    return [c.id for c in expand(definition) if c.id in wanted]


def _updated_lock(used: Lock, path: Path) -> Lock:
    """A run of some cells adds what it used to the lock of the same matrix, so a later
    --locked run of all cells still finds every base image and source."""
    try:
        old = Lock.read(path)
    except MatrixError:
        return used
    if old.matrix_digest != used.matrix_digest:
        return used
    return Lock(
        used.matrix_digest,
        {**old.base_images, **used.base_images},
        {**old.sources, **used.sources},
    )


def _plan(args: argparse.Namespace, console: Console) -> int:
    """The cells, one per CI job: `--format github` prints a job matrix's include list."""
    definition = load_definition(args.matrix or default_definition_path())
    cells = select(expand(definition), args.only)
    jobs = [(c.id, c.slug) for c in cells]
    if args.per == "platform":  # a pattern naming the platform's selected cells
        platforms = list(dict.fromkeys(c.platform.name for c in cells))
        jobs = [(f"{p}/*", p) for p in platforms]
        if args.only:
            raise MatrixError("--per platform takes whole platforms: leave out --only")
    if args.format == "github":
        include = [{"cell": cell, "slug": slug} for cell, slug in jobs]
        print(json.dumps({"include": include}, separators=(",", ":")))
    else:
        for cell, _ in jobs:
            print(cell)
    return 0


def _merge(dirs: Sequence[Path], results_dir: Path, console: Console) -> int:
    out = ResultsDir(results_dir)
    with out.locked():
        try:
            results, run = merge(dirs, out)
        except OSError as exc:
            raise MatrixError(f"merge: {exc}") from exc
        written = write_reports(out, results, run, scenarios_of(results))
    console.print(render(results, scenarios_of(results), "simple", compact=True), markup=False)
    console.print(f"merged {len(results)} cells from {len(dirs)} directories into {results_dir}")
    console.print("reports: " + ", ".join(str(p) for p in written.values()))
    return 0


def _bundle(args: argparse.Namespace, console: Console) -> int:
    """Runs the selected cells (building what is missing), then bundles what they used."""
    with tempfile.TemporaryDirectory(prefix="fips-matrix-bundle-") as tmp:
        run_args = ["run", "--results", tmp]
        if args.matrix:
            run_args += ["--matrix", str(args.matrix)]
        if args.cache_dir:
            run_args += ["--cache-dir", str(args.cache_dir)]
        for pattern in args.only:
            run_args += ["--only", pattern]
        status = main(run_args)
        if status not in (0, 1):
            return status
        results, _ = load_run(ResultsDir(Path(tmp)))
        lock = Lock.read(Path(tmp) / LOCK_NAME)
        counts = write_bundle(
            engine.connect(), results, lock, args.cache_dir or default_cache_dir(), args.output
        )
    console.print(
        f"bundle {args.output}: {counts['images']} images, {counts['sources']} sources "
        f"({args.output.stat().st_size / 1e6:.0f} MB)"
    )
    return 0


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())

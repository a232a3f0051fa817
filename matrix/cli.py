"""Command line: `fips-matrix COMMAND` (also `python -m matrix COMMAND`). Parses and
dispatches to matrix/commands/; prints a user error (MatrixError) without a traceback and ends
with its exit status."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console

from matrix import __version__, assets
from matrix.commands import bench, bundle, diff, merge, plan, report
from matrix.commands import run as run_command
from matrix.errors import MatrixError

Command = Callable[[argparse.Namespace, Console], int]
COMMANDS: dict[str, Command] = {
    "run": run_command.main,
    "report": report.main,
    "diff": diff.main,
    "plan": plan.main,
    "merge": merge.main,
    "bundle": bundle.main,
    "bench": bench.main,
}


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

    run_p = sub.add_parser("run", parents=[cells], help="build and probe the cells of a matrix")
    run_p.add_argument(
        "--results", type=Path, default=run_command.DEFAULT_RESULTS, help="results directory"
    )
    run_p.add_argument("--cache-dir", type=Path, help="where verified sources are kept")
    run_p.add_argument("--jobs", type=int, help="make -j inside each build (default: CPU count)")
    run_p.add_argument(
        "--parallel",
        type=int,
        help="builds side by side, and probe workers beside them "
        "(default: one more than the CPUs, at most 3)",
    )
    run_p.add_argument(
        "--probe-timeout",
        type=float,
        default=run_command.DEFAULT_PROBE_TIMEOUT,
        help="seconds before a probe is killed",
    )
    run_p.add_argument("--force", action="store_true", help="rebuild and re-probe every cell")
    run_p.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run each probe N times; a scenario whose runs disagree shows k/N (FLAKY)",
    )
    run_p.add_argument(
        "--offline",
        action="store_true",
        help="never pull base images: cells whose base is not here and cannot be made skip",
    )
    run_p.add_argument("--list", action="store_true", help="list the selected cells and stop")
    run_p.add_argument(
        "--locked",
        nargs="?",
        const=True,
        metavar="LOCK",
        help=f"refuse to run if a base image or source differs from the lock (default: "
        f"{assets.LOCK_NAME} in the results directory)",
    )
    run_p.add_argument(
        "--bundle",
        type=Path,
        help="take base images, cell images and sources from a bundle: no network needed",
    )

    plan_p = sub.add_parser("plan", parents=[cells], help="print the cells, for a CI job matrix")
    plan_p.add_argument("--format", choices=("github", "lines"), default="lines")
    plan_p.add_argument(
        "--per",
        choices=("cell", "platform"),
        default="cell",
        help="one job per cell, or per platform (its cells share compiles; GitHub allows "
        "at most 256 jobs in a matrix)",
    )

    merge_p = sub.add_parser("merge", help="merge result directories into one report")
    merge_p.add_argument("dirs", type=Path, nargs="+")
    merge_p.add_argument("--results", type=Path, required=True, help="the merged directory")

    bundle_p = sub.add_parser(
        "bundle",
        parents=[cells],
        help="build the cells, then write their images and verified sources into one archive",
    )
    bundle_p.add_argument("--output", type=Path, required=True, help="the archive (.tar)")
    bundle_p.add_argument("--cache-dir", type=Path, help="where verified sources are kept")

    report_p = sub.add_parser(
        "report", help="make every report of a results directory again (runs nothing)"
    )
    report_p.add_argument("results", type=Path)

    diff_p = sub.add_parser(
        "diff", help="cells whose verdict changed between two runs; exit 1 if one got worse"
    )
    diff_p.add_argument("old", type=Path)
    diff_p.add_argument("new", type=Path)

    bench_p = sub.add_parser(
        "bench", help="measure the matrix's cost: cold, warm, and against the plain way"
    )
    bench_p.add_argument("--results", type=Path, default=Path("results/bench"))
    bench_p.add_argument("--matrix", type=Path, help="default: the built-in matrix")
    bench_p.add_argument("--subset", action="append", help="cells for the side-by-side (repeat)")
    bench_p.add_argument(
        "--only", action="append", help="cells of the cold and warm runs (repeat; default: all)"
    )
    bench_p.add_argument(
        "--cache-dir",
        type=Path,
        help="source cache (default: a new, empty one; give the cold phase's for a later warm)",
    )
    bench_p.add_argument(
        "--phases",
        default="cold,warm,side,tests",
        help="which measurements, comma separated (cold, warm, side, tests); each is written to "
        "bench.json as soon as it is done, beside those of earlier invocations",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # SIGTERM (a CI job cancelled, `kill`) unwinds like Ctrl-C: probe containers are removed
    # and finished cells stay on disk.
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        signal.signal(signal.SIGTERM, _interrupted)
    console = Console(highlight=False, soft_wrap=True)
    try:
        return COMMANDS[args.command](args, console)
    except MatrixError as exc:
        console.print(f"[red]fips-matrix: error:[/red] {exc}", markup=True, highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        console.print("fips-matrix: interrupted; finished cells are kept in the results directory")
        return 130


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())

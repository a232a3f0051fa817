"""Command line: `fips-matrix COMMAND` (also `python -m matrix COMMAND`). Parses and
dispatches to matrix/commands/; prints a user error (MatrixError) without a traceback and ends
with its exit status. Text from users and results files is printed as it is: the console
reads no markup unless a caller asks for it."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from matrix import __version__, assets
from matrix.commands import bench, bundle, diff, merge, plan, probe, publish, report, repro
from matrix.commands import run as run_command
from matrix.errors import Abandoned, MatrixError
from matrix.judge.fate import DEFAULT_FATE_RUNS

Command = Callable[[argparse.Namespace, Console], int]
COMMANDS: dict[str, Command] = {
    "run": run_command.main,
    "probe": probe.main,
    "report": report.main,
    "diff": diff.main,
    "plan": plan.main,
    "merge": merge.main,
    "publish": publish.main,
    "bundle": bundle.main,
    "bench": bench.main,
    "repro": repro.main,
}
PIPE_CLOSED = 128 + signal.SIGPIPE  # what a shell reports for a writer whose reader left


class _Console(Console):
    """rich ends the process itself on a closed pipe (SystemExit(1)); here it is the same
    BrokenPipeError as everywhere else, so main() ends every command alike."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


class _Help(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the text already says it (an option
    whose default is computed says in words what it is)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or not action.option_strings
            or default is None
            or default is False
            or default == []
            or default is argparse.SUPPRESS
        ):
            return text
        return f"{text} (default: %(default)s)"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fips-matrix",
        description="Can a process recover when the OpenSSL 3 FIPS provider fails a self-test?",
        formatter_class=_Help,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, text: str, parents: Sequence[argparse.ArgumentParser] = ()
    ) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=text, description=text, parents=list(parents), formatter_class=_Help
        )

    cells = argparse.ArgumentParser(add_help=False)
    cells.add_argument(
        "--matrix",
        type=Path,
        help="matrix file (TOML); running one is like running its author's Makefile "
        "(default: the built-in matrix/default.toml)",
    )
    cells.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PATTERN",
        help="shell-style pattern over cell ids PLATFORM/VERSION/VARIANT; repeatable "
        "(default: every cell of the matrix)",
    )
    cache = _parent(
        "--cache-dir",
        type=Path,
        help="where verified sources are kept (default: $XDG_CACHE_HOME/fips-reload-matrix, "
        "else ~/.cache/fips-reload-matrix)",
    )
    baseline = _parent(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="a results directory (e.g. results/reference) to compare with: in junit.xml every "
        "cell and scenario whose status differs from the baseline's fails (a death counts as a "
        "rate: only a change the runs support), and a failure the baseline had as it is "
        "passes, named in a property (default: none)",
    )
    signers = _parent(
        "--allow-unknown-signer",
        action="store_true",
        help="build a tarball whose published signature was made by a key the shipped keyring "
        "does not hold, on its sha256 pin alone (default: refused)",
    )

    parallel = _parent(
        "--parallel",
        type=int,
        help=f"builds side by side, and probe workers beside them, 1 to "
        f"{run_command.MAX_PARALLEL} (default: one more than the CPUs, at most 3)",
    )
    probe_timeout = _parent(
        "--probe-timeout",
        type=float,
        default=run_command.DEFAULT_PROBE_TIMEOUT,
        metavar="SECONDS",
        help=f"seconds before a probe run is killed, at most {run_command.MAX_SECONDS:g}",
    )
    repeat = _parent(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help=f"run each probe N times (1 to {run_command.MAX_REPEAT}); a scenario whose runs "
        "disagree shows k/N (FLAKY)",
    )
    fate_runs = _parent(
        "--fate-runs",
        type=int,
        default=DEFAULT_FATE_RUNS,
        metavar="N",
        help=f"runs of the C probe in all (1 to {run_command.MAX_REPEAT}, default "
        f"{DEFAULT_FATE_RUNS}) for a scenario whose process died after its document or whose "
        "runs disagreed: the follow-ups run in one more container per cell and the fate is "
        "shown as k/N; 1 turns them off",
    )
    offline = _parent(
        "--offline",
        action="store_true",
        help="never pull images: cells whose image is not here and cannot be made skip",
    )
    allow_empty = _parent(
        "--allow-empty",
        action="store_true",
        help="exit 0 even when the selection is empty or no cell was measured (default: exit 1)",
    )
    measuring = [parallel, probe_timeout, repeat, fate_runs, offline, allow_empty, baseline]

    run_p = command(
        "run", "build and probe the cells of a matrix", [cells, cache, signers, *measuring]
    )
    run_p.add_argument(
        "--results",
        type=Path,
        default=run_command.DEFAULT_RESULTS,
        help="results directory: this run's cells and reports only",
    )
    run_p.add_argument(
        "--jobs",
        type=int,
        help=f"make -j inside each build, 1 to {run_command.MAX_JOBS} (default: CPU count)",
    )
    run_p.add_argument(
        "--build-timeout",
        type=float,
        default=run_command.DEFAULT_BUILD_TIMEOUT,
        metavar="SECONDS",
        help=f"seconds a cell's image build may take before the cell is a TIMEOUT, at most "
        f"{run_command.MAX_SECONDS:g}",
    )
    run_p.add_argument("--force", action="store_true", help="rebuild and re-probe every cell")
    run_p.add_argument("--list", action="store_true", help="list the selected cells and stop")
    run_p.add_argument(
        "--locked",
        nargs="?",
        const=True,
        metavar="LOCK",
        help=f"refuse to run if a base image or source differs from the lock (default: not "
        f"locked; given without LOCK: {assets.LOCK_NAME} in the results directory)",
    )
    run_p.add_argument(
        "--bundle",
        type=Path,
        help="take base images, cell images and sources from a bundle: no network needed "
        "(default: none; images are built or pulled, sources downloaded)",
    )

    probe_p = command(
        "probe",
        "probe existing images as they are (local, or pulled): is the process able to recover "
        "when the image's FIPS provider fails a self-test? The same tables, findings and "
        "reports as a run",
        measuring,
    )
    probe_p.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image references (name:tag, name@digest, id)"
    )
    probe_p.add_argument(
        "--results",
        type=Path,
        default=probe.DEFAULT_RESULTS,
        help="results directory: these images' cells, reports, and the matrix made of them "
        f"({probe.MATRIX_NAME})",
    )
    probe_p.add_argument(
        "--libcrypto",
        metavar="PATH",
        help="the libcrypto in the images to probe: a file, a directory or a bare soname "
        "(default: found in each image)",
    )
    probe_p.add_argument(
        "--modules",
        metavar="PATH",
        help="fips.so in the images, or the directory holding it (default: found in each image)",
    )
    probe_p.add_argument(
        "--fips-config",
        metavar="PATH",
        help="the module's configuration in the images, where --module-mac-from-image reads "
        "first (default: found in each image)",
    )
    probe_p.add_argument(
        "--module-mac-from-image",
        action="store_true",
        help="configure the module with the module-mac of the image's own configuration "
        "(default: computed from fips.so, as fipsinstall does)",
    )
    probe_p.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME",
        help="a scenario to run, repeatable (default: every scenario)",
    )
    probe_p.add_argument(
        "--force",
        action="store_true",
        help="build the portable probe again, without the cache, and probe again",
    )

    plan_p = command("plan", "print the cells, for a CI job matrix", [cells])
    plan_p.add_argument(
        "--format",
        choices=("github", "lines"),
        default="lines",
        help="lines: one job's pattern per line; github: a job matrix's include list (JSON)",
    )
    plan_p.add_argument(
        "--per",
        choices=("cell", "platform"),
        default="cell",
        help="one job per cell, or per platform (its cells share compiles; GitHub allows "
        f"at most {plan.GITHUB_MAX_JOBS} jobs in a matrix)",
    )

    merge_p = command("merge", "merge result directories into one report", [baseline])
    merge_p.add_argument(
        "dirs", type=Path, nargs="+", metavar="DIR", help="results directories to merge"
    )
    merge_p.add_argument(
        "--results", type=Path, required=True, help="the merged directory (made if missing)"
    )

    publish_p = command(
        "publish",
        "copy a run's results for readers: cell JSON, summary, tables, HTML and JUnit, without "
        "logs or this machine's paths (e.g. the committed results/reference)",
    )
    publish_p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run's results")
    publish_p.add_argument(
        "--to",
        type=Path,
        required=True,
        metavar="DIR",
        help="where the published copy goes: a new or empty directory, or an earlier "
        "publication (it holds summary.json), which is replaced whole",
    )

    bundle_p = command(
        "bundle",
        "build the cells, then write their images and verified sources into one archive",
        [cells, cache, signers],
    )
    bundle_p.add_argument("--output", type=Path, required=True, help="the archive (.tar)")

    report_p = command(
        "report",
        "judge a results directory's stored observations again under the current rules, "
        "REWRITE its cell files with the new verdicts, and make every report again (runs "
        "nothing, needs no engine)",
        [baseline],
    )
    report_p.add_argument("results", type=Path, metavar="DIR", help="an existing results directory")
    report_p.add_argument(
        "--readme",
        type=Path,
        metavar="FILE",
        help="instead of the reports, rewrite FILE's section between the markers of "
        "matrix/report/readme.py from the results (e.g. README.md from results/reference); "
        "DIR is then left as it is (default: none: the reports are made)",
    )

    diff_p = command(
        "diff",
        "cells whose status (the verdict, or DIED_AFTER_RELOAD) changed, appeared or "
        "disappeared between two runs; exit 1 if one got worse or a cell file cannot be read",
    )
    diff_p.add_argument("old", type=Path, metavar="OLD", help="the earlier results directory")
    diff_p.add_argument("new", type=Path, metavar="NEW", help="the later results directory")

    repro_p = command(
        "repro",
        "write a directory that reproduces one scenario of one cell with plain docker: a "
        "Dockerfile (pinned source, the cell's build), one C file, and a README saying what "
        "to expect",
    )
    repro_p.add_argument("cell", metavar="CELL", help="the cell's id, PLATFORM/VERSION/VARIANT")
    repro_p.add_argument("scenario", metavar="SCENARIO", help="one of the cell's scenarios")
    repro_p.add_argument(
        "--output", type=Path, required=True, metavar="DIR", help="the directory written"
    )
    repro_p.add_argument(
        "--matrix", type=Path, help="matrix file (default: the built-in matrix/default.toml)"
    )
    repro_p.add_argument(
        "--results",
        type=Path,
        default=run_command.DEFAULT_RESULTS,
        metavar="DIR",
        help="results directory whose record of the cell says what to expect",
    )

    bench_p = command("bench", "measure the matrix's cost: cold, warm, and against the plain way")
    bench_p.add_argument(
        "--results",
        type=Path,
        default=Path("results/bench"),
        help="where the cold run's results and the figures go; the cold phase removes it first, "
        "so it must be new or an earlier bench's",
    )
    bench_p.add_argument(
        "--matrix", type=Path, help="matrix file (default: the built-in matrix/default.toml)"
    )
    bench_p.add_argument(
        "--subset",
        action="append",
        metavar="CELL",
        help="cells for the side-by-side, repeatable (default: " + ", ".join(bench.SUBSET) + ")",
    )
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


def _parent(*flags: str, **spec: Any) -> argparse.ArgumentParser:
    """A parent parser holding one option that several commands share."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(*flags, **spec)
    return parent


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (`fips-matrix plan | head -1`): nothing is left to tell it.
        # Point stdout at /dev/null so that the interpreter's last flush fails no more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return PIPE_CLOSED


def _main(argv: Sequence[str] | None) -> int:
    args = parser().parse_args(argv)
    # SIGTERM (a CI job cancelled, `kill`) unwinds like Ctrl-C: probe containers are removed
    # and finished cells stay on disk.
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        signal.signal(signal.SIGTERM, _interrupted)
    # Colour only on a terminal (rich's own test); NO_COLOR: no styles at all, not even bold.
    plain = bool(os.environ.get("NO_COLOR"))
    console = _Console(
        highlight=False, soft_wrap=True, markup=False, color_system=None if plain else "auto"
    )
    try:
        code = COMMANDS[args.command](args, console)
    except MatrixError as exc:
        console.print(Text.assemble(("fips-matrix: error:", "red"), " ", str(exc)))
        code = exc.exit_code
    except KeyboardInterrupt as exc:
        what = f"{exc}; " if isinstance(exc, Abandoned) else ""
        console.print(
            f"fips-matrix: interrupted; {what}finished cells are kept in the results directory"
        )
        if _workers_left():
            # Abandoned work still runs in threads the interpreter would wait for at exit.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        code = 130
    sys.stdout.flush()  # a closed pipe shows here, inside main, not at the interpreter's exit
    return code


def _workers_left() -> bool:
    return any(
        t.is_alive() and not t.daemon
        for t in threading.enumerate()
        if t is not threading.main_thread()
    )


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())

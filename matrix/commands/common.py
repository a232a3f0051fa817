"""The options several commands share (each command adds those it takes, in the order its
help shows them), and the check of their numbers before anything runs."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from matrix.errors import MatrixError
from matrix.execute.options import (
    DEFAULT_PROBE_TIMEOUT,
    MAX_JOBS,
    MAX_PARALLEL,
    MAX_REPEAT,
    MAX_SECONDS,
    MIN_SECONDS,
)
from matrix.judge.fate import DEFAULT_FATE_RUNS

# An option: its flags and what argparse is given for it.
Option = tuple[tuple[str, ...], dict[str, Any]]


def option(*flags: str, **spec: Any) -> Option:
    return flags, spec


MATRIX = option(
    "--matrix",
    type=Path,
    help="matrix file (TOML); running one is like running its author's Makefile "
    "(default: the built-in matrix/default.toml)",
)
ONLY = option(
    "--only",
    action="append",
    default=[],
    metavar="PATTERN",
    help="shell-style pattern over cell ids PLATFORM/VERSION/VARIANT; repeatable "
    "(default: every cell of the matrix)",
)
CACHE = option(
    "--cache-dir",
    type=Path,
    help="where verified sources are kept (default: $XDG_CACHE_HOME/fips-reload-matrix, "
    "else ~/.cache/fips-reload-matrix)",
)
BASELINE = option(
    "--baseline",
    type=Path,
    metavar="DIR",
    help="a results directory (e.g. results/reference) to compare with: in junit.xml every "
    "cell and scenario whose status differs from the baseline's fails (a death counts as a "
    "rate: only a change the runs support), and a failure the baseline had as it is "
    "passes, named in a property (default: none)",
)
SIGNERS = option(
    "--allow-unknown-signer",
    action="store_true",
    help="build a tarball whose published signature was made by a key the shipped keyring "
    "does not hold, on its sha256 pin alone (default: refused)",
)
# How cells are measured: workers, probe time, repeats, pulls, what an empty run is, and the
# baseline the reports compare with.
MEASURING = (
    option(
        "--parallel",
        type=int,
        help=f"builds side by side, and probe workers beside them, 1 to {MAX_PARALLEL} "
        "(default: one more than the CPUs, at most 3)",
    ),
    option(
        "--probe-timeout",
        type=float,
        default=DEFAULT_PROBE_TIMEOUT,
        metavar="SECONDS",
        help=f"seconds before a probe run is killed, at most {MAX_SECONDS:g}",
    ),
    option(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help=f"run each probe N times (1 to {MAX_REPEAT}); a scenario whose runs disagree "
        "shows k/N (FLAKY)",
    ),
    option(
        "--fate-runs",
        type=int,
        default=DEFAULT_FATE_RUNS,
        metavar="N",
        help=f"runs of the C probe in all (1 to {MAX_REPEAT}, default {DEFAULT_FATE_RUNS}) for "
        "a scenario whose process died after its document or whose runs disagreed: the "
        "follow-ups run in one more container per cell and the fate is shown as k/N; 1 turns "
        "them off",
    ),
    option(
        "--offline",
        action="store_true",
        help="never pull images: cells whose image is not here and cannot be made skip",
    ),
    option(
        "--allow-empty",
        action="store_true",
        help="exit 0 even when the selection is empty or no cell was measured (default: exit 1)",
    ),
    BASELINE,
)
CELLS = (MATRIX, ONLY)


def add(parser: argparse.ArgumentParser, *options: Option) -> None:
    """Adds these shared options to a command's parser, in this order."""
    for flags, spec in options:
        parser.add_argument(*flags, **spec)


def check_numbers(args: argparse.Namespace) -> None:
    """Checked before anything runs: a bad number must not surface after hours of builds.
    Options a command does not have are not checked."""
    whole = (
        ("jobs", MAX_JOBS),
        ("parallel", MAX_PARALLEL),
        ("repeat", MAX_REPEAT),
        ("fate_runs", MAX_REPEAT),
    )
    for name, top in whole:
        value = getattr(args, name, None)
        if value is not None and not 1 <= value <= top:
            raise MatrixError(
                f"--{name.replace('_', '-')} must be a whole number from 1 to {top} (got {value})"
            )
    for name in ("probe_timeout", "build_timeout"):
        seconds = getattr(args, name, None)
        if seconds is not None and not (
            math.isfinite(seconds) and MIN_SECONDS <= seconds <= MAX_SECONDS
        ):
            raise MatrixError(
                f"--{name.replace('_', '-')} must be a finite number of seconds, at least "
                f"{MIN_SECONDS:g} and at most {MAX_SECONDS:g} (got {seconds:g})"
            )

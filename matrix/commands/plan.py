"""`fips-matrix plan`: the selected cells, one per CI job; `--format github` prints a job
matrix's include list. A job's `cell` is what `nox -s cell --` takes: one pattern, or the
ids of a platform's selected cells separated by spaces."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from matrix.commands import common
from matrix.errors import DefinitionError, MatrixError
from matrix.model.affected import affected
from matrix.model.cells import Cell, expand, select
from matrix.model.definition import load_definition
from matrix.model.load import load_cells

GITHUB_MAX_JOBS = 256  # GitHub Actions refuses a job matrix with more


def arguments(parser: argparse.ArgumentParser) -> None:
    common.add(parser, *common.CELLS)
    parser.add_argument(
        "--format",
        choices=("github", "lines"),
        default="lines",
        help="lines: one job's pattern per line; github: a job matrix's include list (JSON)",
    )
    parser.add_argument(
        "--per",
        choices=("cell", "platform"),
        default="cell",
        help="one job per cell, or per platform (its cells share compiles; GitHub allows "
        f"at most {GITHUB_MAX_JOBS} jobs in a matrix)",
    )
    parser.add_argument(
        "--changed",
        type=Path,
        metavar="FILE",
        help="only the cells a change reaches: FILE lists the repository paths it changed, one "
        "a line (- for standard input), as `git diff --name-only BASE...HEAD` prints them "
        "(default: every selected cell)",
    )
    parser.add_argument(
        "--matrix-before",
        type=Path,
        metavar="FILE",
        help="with --changed: the matrix file as it was before the change (a missing FILE: it "
        "is new), so that only its new or changed cells count (default: none, every cell of "
        "a changed matrix file counts)",
    )


def main(args: argparse.Namespace, console: Console) -> int:
    definition, every = load_cells(args.matrix)
    cells = select(every, args.only)
    if args.changed is not None:
        root = Path.cwd().resolve()  # the checkout: `git diff --name-only` names paths in it
        cells = affected(cells, _changed_paths(args.changed), definition, _before(args), root)
    elif args.matrix_before is not None:
        raise MatrixError("plan: --matrix-before goes with --changed")
    jobs = per_platform(every, cells) if args.per == "platform" else [(c.id, c.slug) for c in cells]
    if args.format == "github":
        if not jobs and args.changed is not None:
            return 0  # nothing to run: no output, and the workflow skips its cell jobs
        if not jobs:
            raise MatrixError(
                "plan: the selection holds no cell, and GitHub refuses an empty job matrix"
            )
        if len(jobs) > GITHUB_MAX_JOBS:
            platforms = len({c.platform.name for c in cells})
            raise MatrixError(
                f"plan: {len(jobs)} jobs, and GitHub refuses a job matrix of more than "
                f"{GITHUB_MAX_JOBS}; use --per platform ({platforms} jobs, one per platform: "
                "its cells share their compiles) or select fewer cells with --only"
            )
        include = [{"cell": cell, "slug": slug} for cell, slug in jobs]
        print(json.dumps({"include": include}, separators=(",", ":")))
    else:
        for cell, _ in jobs:
            print(cell)
    return 0


def per_platform(every: list[Cell], selected: list[Cell]) -> list[tuple[str, str]]:
    """One job per platform: `PLATFORM/*` when all its cells are selected, else the ids of
    its selected cells (a job runs exactly what was selected, nothing more)."""
    jobs = []
    for platform in dict.fromkeys(c.platform.name for c in selected):
        mine = [c.id for c in selected if c.platform.name == platform]
        whole = [c.id for c in every if c.platform.name == platform]
        jobs.append((f"{platform}/*" if mine == whole else " ".join(mine), platform))
    return jobs


def _changed_paths(source: Path) -> list[str]:
    try:
        text = sys.stdin.read() if str(source) == "-" else source.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise MatrixError(f"plan: --changed {source}: cannot read it ({exc})") from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


def _before(args: argparse.Namespace) -> list[Cell] | None:
    """The cells of the matrix as it was; None where it did not exist, or is empty, or no
    longer loads (a rule of today's it breaks): then every cell counts as new."""
    path: Path | None = args.matrix_before
    if path is None or not path.is_file() or path.stat().st_size == 0:
        return None
    try:
        return expand(load_definition(path))
    except DefinitionError:
        return None

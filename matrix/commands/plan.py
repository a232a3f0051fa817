"""`fips-matrix plan`: the selected cells, one per CI job; `--format github` prints a job
matrix's include list."""

from __future__ import annotations

import argparse
import json

from rich.console import Console

from matrix import assets
from matrix.errors import MatrixError
from matrix.model.cells import expand, select
from matrix.model.definition import load_definition


def main(args: argparse.Namespace, console: Console) -> int:
    definition = load_definition(args.matrix or assets.DEFAULT_MATRIX)
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

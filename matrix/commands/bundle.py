"""`fips-matrix bundle --output lab.tar`: run the selected cells (building what is missing),
then write their images, base images, verified sources and lock into one archive, for a lab
with no network (`fips-matrix run --bundle lab.tar`). No archive is written when a selected
cell has no image (its build failed) or nothing was measured: the lab could not run them."""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

from rich.console import Console

from matrix import assets, session
from matrix.acquire.sources import default_cache_dir
from matrix.commands import common
from matrix.execute import engine
from matrix.execute.images.bundle import write_bundle
from matrix.execute.lockfile import Lock
from matrix.model.cells import select
from matrix.model.load import load_cells


def arguments(parser: argparse.ArgumentParser) -> None:
    common.add(parser, *common.CELLS, common.CACHE, common.SIGNERS)
    parser.add_argument("--output", type=Path, required=True, help="the archive (.tar)")


def main(args: argparse.Namespace, console: Console) -> int:
    definition, every = load_cells(args.matrix)
    cells = select(every, args.only)
    cache_dir = args.cache_dir or default_cache_dir()
    with tempfile.TemporaryDirectory(prefix="fips-matrix-bundle-") as tmp:
        options = dataclasses.replace(
            session.defaults(Path(tmp), cache_dir), allow_unknown_signer=args.allow_unknown_signer
        )
        results, out = session.run(definition, cells, options, console)
        session.require_measured(results, allow_empty=False)
        failed = session.failed_cells(results)
        if failed:
            # a lab given this bundle could not run them: it has no network to build them
            console.print(
                f"bundle: {args.output} not written: {len(failed)} cell(s) have no image "
                f"(failed to build, or the tool failed on them): "
                f"{', '.join(r.cell for r in failed)}"
            )
            return 1
        lock = Lock.read(out.root / assets.LOCK_NAME)
        counts = write_bundle(engine.connect(), results, lock, cache_dir, args.output)
    console.print(
        f"bundle {args.output}: {counts['images']} images, {counts['sources']} sources "
        f"({args.output.stat().st_size / 1e6:.0f} MB)"
    )
    return 0

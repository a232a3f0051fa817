"""`fips-matrix bench` (`nox -s bench`): measures the matrix's cost and prints the figures.

1. cold: the tool's images, the build cache and the source cache removed; the full matrix.
2. warm: the same again with nothing changed.
3. side by side, on a subset: this tool against one Dockerfile per cell doing
   `./Configure enable-fips && make && make install`, each started without cache, in a
   fresh engine of their own holding only the base images (this engine stays warm).
4. tests: `nox -s tests` against a fresh engine (a dockerd of the bench's own, with an
   empty data root), as on a new machine; the engine is removed afterwards.

L, the cost of the compiles that cannot be avoided, is the CPU the build logs report for
each compile (every compile runs once in a cold run: the others are cache hits) divided by
the cores. Figures only: nothing here passes or fails. The timed runs are whole processes
(`python -m matrix run`), as a user runs them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import docker
from rich.console import Console

from matrix import assets
from matrix.bench.figures import (
    Timed,
    cell_figures,
    report,
    run_phases,
    step_figures,
)
from matrix.bench.fresh_engine import FreshEngine, fresh_engine
from matrix.bench.gap import gap_table, run_gap
from matrix.bench.plain import local_base, plain_builds
from matrix.bench.sampler import CpuSampler, machine_busy_seconds
from matrix.bench.sizes import image_sizes
from matrix.errors import MatrixError
from matrix.execute import engine
from matrix.execute.timeline import PHASES_NAME
from matrix.model.cells import Cell, select
from matrix.model.load import load_cells
from matrix.results.store import write_json

PHASES = ("cold", "warm", "side", "tests")
_SCRATCH_PARENT = "/var/tmp" if os.path.isdir("/var/tmp") else None
# pytest's last line: "304 passed, 31 skipped in 471.20s (0:07:51)"
PYTEST_SUMMARY = re.compile(r"^=+ (\d+ \w+.* in [\d.]+s.*?) =+$", re.M)
SUBSET = (  # two platforms: the tool builds them side by side, the plain way one by one
    "debian-11/3.0.20/default",
    "debian-11/3.0.20/no-pinshared",
    "debian-12/3.0.20/default",
    "debian-12/3.0.20/no-pinshared",
)


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--results",
        type=Path,
        default=Path("results/bench"),
        help="where the cold run's results and the figures go; the cold phase removes it first, "
        "so it must be new or an earlier bench's",
    )
    parser.add_argument(
        "--matrix", type=Path, help="matrix file (default: the built-in matrix/default.toml)"
    )
    parser.add_argument(
        "--subset",
        action="append",
        metavar="CELL",
        help="cells for the side-by-side, repeatable (default: " + ", ".join(SUBSET) + ")",
    )
    parser.add_argument(
        "--only", action="append", help="cells of the cold and warm runs (repeat; default: all)"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="source cache (default: a new, empty one; give the cold phase's for a later warm)",
    )
    parser.add_argument(
        "--phases",
        default="cold,warm,side,tests",
        help="which measurements, comma separated (cold, warm, side, tests); each is written to "
        "bench.json as soon as it is done, beside those of earlier invocations",
    )


def main(args: argparse.Namespace, console: Console) -> int:
    phases = set(args.phases.split(","))
    if not phases <= set(PHASES):
        unknown = ", ".join(sorted(phases - set(PHASES)))
        raise MatrixError(f"--phases: unknown {unknown} (known: {', '.join(PHASES)})")
    # everything a phase needs is checked now, before the cold phase removes anything and
    # before an hour of measuring: the Dockerfiles, unknown cell names, root and dockerd, nox
    _, cells = load_cells(args.matrix)
    select(cells, args.only or [])
    subset = select(cells, args.subset or list(SUBSET)) if "side" in phases else []
    if phases & {"side", "tests"}:
        FreshEngine.dockerd()
    if "tests" in phases:
        _nox_and_noxfile()
    root: Path = args.results
    if "cold" in phases:
        _check_removable(root)

    cores = os.cpu_count() or 1
    client = engine.connect()
    # not /tmp, a tmpfs on some systems: the fresh engines' data roots grow to gigabytes
    scratch = Path(tempfile.mkdtemp(prefix="fips-matrix-bench-", dir=_SCRATCH_PARENT))
    cache = args.cache_dir or scratch / "cache"
    matrix_args = ["--matrix", str(args.matrix)] if args.matrix else []
    # the cold and warm runs' cells (default: all), e.g. a small subset to try a change on
    run_args = [*matrix_args, *(a for pattern in args.only or () for a in ("--only", pattern))]
    figures: dict[str, Any] = {}
    if "cold" not in phases and (root / assets.BENCH_NAME).exists():
        figures = json.loads((root / assets.BENCH_NAME).read_text())
    figures.update(cores=cores, engine=engine.facts(client).__dict__)

    def save() -> None:
        root.mkdir(parents=True, exist_ok=True)
        write_json(root / assets.BENCH_NAME, figures)

    if "cold" in phases:
        console.print("cold: removing the tool's images, build cache and source cache")
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        removed = wipe(
            client,
            [
                assets.CELL_REPOSITORY,
                assets.STAGES_REPOSITORY,
                assets.BASE_REPOSITORY,
                assets.PLAIN_REPOSITORY,
            ],
        )
        with CpuSampler() as sampler:
            cold = timed_run(
                [*run_args, "--results", str(root), "--cache-dir", str(cache)],
                scratch / "cold.log",
            )
        # kept with the logs, to look at again (the warm run writes a timeline of its own)
        sampler.save(scratch / "cold-cpu.jsonl")
        shutil.copy(root / PHASES_NAME, scratch / f"cold-{PHASES_NAME}")
        gap = run_gap(root, sampler.samples, cores)
        steps = step_figures(root)
        lower = steps["compile_cpu_seconds"] / cores
        figures["cold"] = {
            "removed_images": removed,
            "wall_seconds": round(cold.wall, 1),
            "machine_cpu_seconds": round(cold.cpu, 1),
            "L_seconds": round(lower, 1),
            "wall_over_L": round(cold.wall / lower, 3) if lower else None,
            **steps,
            **cell_figures(root),
            "phase_seconds": run_phases(root),
            "gap": gap,
        }
        save()
        console.print(f"cold: {cold.wall:.0f} s wall, L = {lower:.0f} s")
        console.print(gap_table(gap), markup=False)

    if "warm" in phases:
        warm = timed_run(
            [*run_args, "--results", str(root), "--cache-dir", str(cache)], scratch / "warm.log"
        )
        figures["warm"] = {"wall_seconds": round(warm.wall, 2), **cell_figures(root)}
        figures["image_sizes_mb"] = image_sizes(client, root)
        save()
        console.print(f"warm: {warm.wall:.1f} s wall")

    if "side" in phases:
        # Both ways start from the base images alone, no cell image, no cached layer: in an
        # engine of their own with only the base images loaded, so that this engine keeps
        # its images (the next run of the matrix here is still a warm one).
        with fresh_engine(scratch / "side-engine") as fresh:
            side_client = docker.DockerClient(base_url=fresh.host, timeout=600)
            load_base_images(client, side_client, subset)
            only = [a for cell in subset for a in ("--only", cell.id)]
            where = ["--results", str(scratch / "side"), "--cache-dir", str(cache)]
            ours = timed_run(
                [*matrix_args, *only, *where],
                scratch / "side.log",
                env={"DOCKER_HOST": fresh.host},
            )
            plain, plain_sizes = plain_builds(side_client, subset, cache, cores, scratch)
        figures["side_by_side"] = {
            "cells": [c.id for c in subset],
            "tool_wall_seconds": round(ours.wall, 1),
            "tool_machine_cpu_seconds": round(ours.cpu, 1),
            "plain_wall_seconds": round(plain.wall, 1),
            "plain_machine_cpu_seconds": round(plain.cpu, 1),
            "plain_over_tool": round(plain.wall / ours.wall, 2),
            "plain_image_sizes_mb": plain_sizes,
        }
        save()
        console.print(f"side by side: plain {plain.wall:.0f} s, tool {ours.wall:.0f} s")

    if "tests" in phases:
        figures["tests_fresh_engine"] = tests_on_a_fresh_engine(scratch, console)
        save()

    console.print(report(figures), markup=False)
    if "gap" in figures.get("cold", {}) and "cold" not in phases:  # else printed above
        console.print("where the cold wall time above the compiles went:")
        console.print(gap_table(figures["cold"]["gap"]), markup=False)
    console.print(f"figures: {root / assets.BENCH_NAME}; logs: {scratch}")
    return 0


def _check_removable(root: Path) -> None:
    """The cold phase starts from an empty results directory by removing --results whole: only
    an earlier bench's (bench.json) or run's (summary.json) directory, never anything else."""
    if not root.exists():
        return
    if not root.is_dir():
        raise MatrixError(f"bench: --results {root} exists and is not a directory")
    if any(root.iterdir()) and not any(
        (root / n).is_file() for n in (assets.BENCH_NAME, "summary.json")
    ):
        raise MatrixError(
            f"bench: --results {root} is not empty and holds no bench.json or summary.json; the "
            "cold phase removes it whole, so give a new directory or an earlier bench's"
        )


def timed_run(args: Sequence[str], log: Path, env: dict[str, str] | None = None) -> Timed:
    """`fips-matrix run ARGS` as a process of its own: its wall time and the machine's CPU
    meanwhile (the builds run in the engine's processes, not the tool's)."""
    cpu0, t0 = machine_busy_seconds(), time.monotonic()
    with open(log, "w", encoding="utf-8") as out:
        done = subprocess.run(
            [sys.executable, "-m", "matrix", "run", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            check=False,
        )
    timed = Timed(time.monotonic() - t0, machine_busy_seconds() - cpu0)
    if done.returncode not in (0, 1):  # 1: some cell failed to build; its figures still count
        raise MatrixError(f"bench: fips-matrix run failed (exit {done.returncode}); see {log}")
    return timed


def tests_on_a_fresh_engine(scratch: Path, console: Console) -> dict[str, Any]:
    """`nox -s tests` (the whole suite, end-to-end tests too) against an engine with nothing
    in it, as on a new machine: its wall time and the machine's CPU meanwhile. The engine is
    stopped and its data removed afterwards."""
    nox, noxfile = _nox_and_noxfile()
    log = scratch / "tests.log"
    console.print(f"tests: nox -s tests against a fresh engine (log: {log})")
    with fresh_engine(scratch / "engine") as fresh, open(log, "w", encoding="utf-8") as out:
        cpu0, t0 = machine_busy_seconds(), time.monotonic()
        done = subprocess.run(
            # the session's venv in the scratch directory: run as root, the checkout's own
            # .nox/tests would become root's, and a later run as the user could not update it
            [nox, "-f", str(noxfile), "--envdir", str(scratch / "nox"), "-s", "tests"],
            cwd=noxfile.parent,
            env={**os.environ, "DOCKER_HOST": fresh.host},
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
        timed = Timed(time.monotonic() - t0, machine_busy_seconds() - cpu0)
    summary = PYTEST_SUMMARY.findall(log.read_text(encoding="utf-8", errors="replace"))
    figures = {
        "wall_seconds": round(timed.wall, 1),
        "machine_cpu_seconds": round(timed.cpu, 1),
        "exit_code": done.returncode,
        "pytest": summary[-1] if summary else "no pytest summary line",
    }
    console.print(f"tests: {timed.wall:.0f} s wall on a fresh engine: {figures['pytest']}")
    return figures


def _nox_and_noxfile() -> tuple[str, Path]:
    noxfile = assets.PACKAGE_DIR.parent / "noxfile.py"
    nox = shutil.which("nox")
    if not noxfile.is_file() or nox is None:
        raise MatrixError("bench: the tests phase needs a checkout (its noxfile.py) and nox")
    return nox, noxfile


def load_base_images(
    source: docker.DockerClient, target: docker.DockerClient, cells: Sequence[Cell]
) -> None:
    """The base images of these cells' platforms, from one engine into another (a platform
    whose base is not there yet gets it made in the other engine, by the run)."""
    for platform in {c.platform.name: c.platform for c in cells}.values():
        try:
            base = local_base(source, platform)
        except MatrixError:
            continue
        try:
            target.images.load(b"".join(source.images.get(base.ref).save(named=True)))
        except docker.errors.DockerException as e:  # e.g. no space left for the copy
            raise MatrixError(f"bench: could not copy {base.ref} to the fresh engine: {e}") from e


def wipe(client: docker.DockerClient, repositories: Sequence[str]) -> int:
    """Removes the tool's images of these repositories, then the dangling images that carry
    the tool's labels: its builds' own, and the intermediate stages on a base it
    debootstrapped (an image someone else built on such a base inherits that label too).
    Intermediate stages on an upstream base (alpine, fedora, ...) carry no label and stay:
    a cold bench of such platforms may find their compiles cached. Returns how many images
    were removed."""
    removed = 0
    for image in client.images.list():
        for tag in image.tags:
            if tag.rsplit(":", 1)[0] in repositories:
                client.images.remove(tag, force=True)
                removed += 1
    # a cell image whose tag moved to a newer build carries the inputs label (also from
    # versions of the tool before the tool label); the intermediate images of a build's other
    # stages carry no label of the build, but inherit the debootstrapped base's
    for label in (assets.TOOL_LABEL, assets.INPUTS_LABEL, assets.DEBOOTSTRAP_LABEL):
        client.images.prune(filters={"dangling": True, "label": label})
    return removed

"""`nox -s bench`: measures the matrix's cost and prints the figures.

1. cold: the tool's images, the build cache and the source cache removed; the full matrix.
2. warm: the same again with nothing changed.
3. side by side, on a subset: this tool against one Dockerfile per cell doing
   `./Configure enable-fips && make && make install`, each started without cache.

L, the cost of the compiles that cannot be avoided, is the CPU the build logs report for
each compile (every compile runs once in a cold run: the others are cache hits) divided by
the cores. Figures only: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
from tabulate import tabulate

from matrix import engine
from matrix.baseimages import LOCAL_REPOSITORY
from matrix.cells import expand, select
from matrix.definition import (
    BaseFallback,
    MatrixDefinition,
    default_definition_path,
    load_definition,
)
from matrix.images import DOCKERFILES_DIR, PROBES_DIR, REPOSITORY, STAGES_REPOSITORY
from matrix.results import write_json
from matrix.sources import cache_path

PLAIN_DOCKERFILE = DOCKERFILES_DIR / "plain-bench.Dockerfile"
PLAIN_REPOSITORY = "fips-matrix/plain"
SUBSET = (  # two platforms: the tool builds them side by side, the plain way one by one
    "debian-11/3.0.20/default",
    "debian-11/3.0.20/no-pinshared",
    "debian-12/3.0.20/default",
    "debian-12/3.0.20/no-pinshared",
)
# "fips-matrix-build: compile took 93 s; cpu:" then `times`: shell, then children
STEP_RE = re.compile(r"fips-matrix-build: (compile|link) took (\d+) s; cpu:\n(.*)\n(.*)\n")
TIMES_RE = re.compile(r"(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s")
ARGS_RE = re.compile(r'"CONFIGURE_OPTIONS": "([^"]*)"')


@dataclass
class Timed:
    wall: float
    cpu: float  # CPU of the whole machine meanwhile (builds run in the engine's processes)


def machine_cpu_seconds() -> float:
    """user + nice + system + irq + softirq of all CPUs, from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:8]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields)
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def timed_run(args: Sequence[str], log: Path) -> Timed:
    cpu0, t0 = machine_cpu_seconds(), time.monotonic()
    with open(log, "w", encoding="utf-8") as out:
        done = subprocess.run(
            [sys.executable, "-m", "matrix", "run", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    timed = Timed(time.monotonic() - t0, machine_cpu_seconds() - cpu0)
    if done.returncode not in (0, 1):  # 1: some cell failed to build; its figures still count
        raise SystemExit(f"fips-matrix run failed (exit {done.returncode}); see {log}")
    return timed


def wipe(client: docker.DockerClient, repositories: Sequence[str]) -> int:
    """Removes the tool's images of these repositories, then the dangling layers under them
    (the legacy builder's cache). Returns how many images were removed."""
    removed = 0
    for image in client.images.list():
        for tag in image.tags:
            if tag.rsplit(":", 1)[0] in repositories:
                client.images.remove(tag, force=True)
                removed += 1
    client.images.prune(filters={"dangling": True})
    return removed


def step_figures(results: Path) -> dict[str, Any]:
    """Compile and link wall and CPU, and cache hits, from a run's build logs. L counts each
    distinct compile (platform, version, configure options) once; a second compile of the
    same is counted apart, as redundant."""
    compile_cpu = compile_wall = link_wall = redundant_cpu = 0.0
    links = cache_hits = redundant = 0
    seen: set[tuple[str, str]] = set()
    for log in sorted((results / "cells").glob("*.build.log")):
        text = log.read_text(encoding="utf-8", errors="replace")
        cache_hits += text.count("---> Using cache")
        args = ARGS_RE.search(text)
        platform_version = log.name.split("__")[:2]
        key = ("/".join(platform_version), args[1] if args else "")
        for step, seconds, _shell, children in STEP_RE.findall(text):
            m = TIMES_RE.search(children)
            cpu = 0.0
            if m:
                cpu = int(m[1]) * 60 + float(m[2]) + int(m[3]) * 60 + float(m[4])
            if step == "link":
                links += 1
                link_wall += int(seconds)
            elif key in seen:
                redundant += 1
                redundant_cpu += cpu
            else:
                seen.add(key)
                compile_wall += int(seconds)
                compile_cpu += cpu
    return {
        "compiles": len(seen),
        "compile_cpu_seconds": round(compile_cpu, 1),
        "compile_wall_seconds_summed": compile_wall,
        "redundant_compiles": redundant,
        "redundant_compile_cpu_seconds": round(redundant_cpu, 1),
        "links": links,
        "link_wall_seconds_summed": link_wall,
        "layer_cache_hits": cache_hits,
    }


def run_phases(results: Path) -> dict[str, float]:
    """Seconds the run spent on base images, stages built ahead, sources and reports, from
    its summary.json (summed over the workers that did them)."""
    try:
        run = json.loads((results / "summary.json").read_text())["run"]
    except (OSError, ValueError, KeyError):
        return {}
    phases: dict[str, float] = run.get("phase_seconds", {})
    return phases


def cell_figures(results: Path) -> dict[str, Any]:
    cached = reused = built = 0
    image_seconds = probe_seconds = 0.0
    outcomes: dict[str, int] = {}
    for path in (results / "cells").glob("*.json"):
        data = json.loads(path.read_text())
        outcomes[data["outcome"]] = outcomes.get(data["outcome"], 0) + 1
        fp = data.get("fingerprint", {})
        image = fp.get("image")
        if image:
            cached += bool(image.get("cached"))
            built += not image.get("cached")
        reused += "probe_runs_reused_from" in fp
        times = fp.get("times", {})
        image_seconds += float(times.get("image_seconds", 0))
        probe_seconds += float(times.get("probe_seconds", 0))
    return {
        "outcomes": outcomes,
        "images_built": built,
        "images_cached": cached,
        "probe_runs_reused": reused,
        "image_phase_seconds_summed": round(image_seconds, 1),
        "probe_phase_seconds_summed": round(probe_seconds, 1),
    }


def image_sizes(client: docker.DockerClient, results: Path) -> dict[str, dict[str, float]]:
    """Runtime image size per platform (MB): smallest, largest."""
    sizes: dict[str, list[float]] = {}
    for path in (results / "cells").glob("*.json"):
        data = json.loads(path.read_text())
        image = data.get("fingerprint", {}).get("image")
        if not image:
            continue
        try:
            size = client.images.get(image["id"]).attrs["Size"] / 1e6
        except docker.errors.ImageNotFound:
            continue
        sizes.setdefault(data["platform"], []).append(size)
    return {p: {"min_mb": round(min(s), 1), "max_mb": round(max(s), 1)} for p, s in sizes.items()}


def local_base(client: docker.DockerClient, ref: str, fallback: BaseFallback | None) -> str:
    """The base image the tool used for that platform: upstream if here, else its own."""
    try:
        client.images.get(ref)
        return ref
    except docker.errors.ImageNotFound:
        if fallback is None:
            raise SystemExit(f"no base image {ref} here for the plain builds") from None
        return f"{LOCAL_REPOSITORY}:{fallback.debootstrap}"


def plain_builds(
    client: docker.DockerClient,
    definition: MatrixDefinition,
    cells: Sequence[str],
    cache_dir: Path,
    jobs: int,
    logs: Path,
) -> tuple[Timed, dict[str, float]]:
    """One Dockerfile per cell, the way the OpenSSL docs build: no cache, one after another."""
    by_id = {c.id: c for c in expand(definition)}
    sizes: dict[str, float] = {}
    cpu0, t0 = machine_cpu_seconds(), time.monotonic()
    for cell_id in cells:
        cell = by_id[cell_id]
        base = local_base(client, cell.platform.base_image, cell.platform.fallback)
        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as tar:
            tar.add(str(PLAIN_DOCKERFILE), arcname="Dockerfile")
            tar.add(str(cache_path(cell.source, cache_dir)), arcname="openssl.tar.gz")
            for probe in PROBES_DIR.glob("*.c"):
                tar.add(str(probe), arcname=f"probes/{probe.name}")
        context.seek(0)
        tag = f"{PLAIN_REPOSITORY}:{cell.slug}"
        with open(logs / f"plain-{cell.slug}.log", "w", encoding="utf-8") as log:
            for chunk in client.api.build(
                fileobj=context,
                custom_context=True,
                tag=tag,
                nocache=True,
                rm=True,
                forcerm=True,
                decode=True,
                network_mode="host",
                buildargs={
                    "BASE_IMAGE": base,
                    "OPENSSL_VERSION": cell.source.version,
                    "CONFIGURE_OPTIONS": " ".join(cell.variant.configure),
                    "MAKE_JOBS": str(jobs),
                },
            ):
                log.write(str(chunk.get("stream", "")) + str(chunk.get("error", "")))
                if "error" in chunk:
                    raise SystemExit(f"plain build of {cell_id} failed: {chunk['error']}")
        sizes[cell_id] = round(client.images.get(tag).attrs["Size"] / 1e6, 1)
    return Timed(time.monotonic() - t0, machine_cpu_seconds() - cpu0), sizes


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m matrix.bench", description=__doc__)
    p.add_argument("--results", type=Path, default=Path("results/bench"))
    p.add_argument("--matrix", type=Path, help="default: the built-in matrix")
    p.add_argument("--subset", action="append", help="cells for the side-by-side (repeat)")
    p.add_argument(
        "--cache-dir",
        type=Path,
        help="source cache (default: a new, empty one; give the cold phase's for a later warm)",
    )
    p.add_argument(
        "--phases",
        default="cold,warm,side",
        help="which measurements, comma separated (cold, warm, side); each is written to "
        "bench.json as soon as it is done, beside those of earlier invocations",
    )
    args = p.parse_args(argv)
    phases = set(args.phases.split(","))
    if not phases <= {"cold", "warm", "side"}:
        raise SystemExit(
            f"--phases: unknown {', '.join(sorted(phases - {'cold', 'warm', 'side'}))}"
        )

    cores = os.cpu_count() or 1
    client = engine.connect()
    root: Path = args.results
    scratch = Path(tempfile.mkdtemp(prefix="fips-matrix-bench-"))
    cache = args.cache_dir or scratch / "cache"
    matrix_args = ["--matrix", str(args.matrix)] if args.matrix else []
    figures: dict[str, Any] = {}
    if "cold" not in phases and (root / "bench.json").exists():
        figures = json.loads((root / "bench.json").read_text())
    figures.update(cores=cores, engine=engine.facts(client).__dict__)

    def save() -> None:
        root.mkdir(parents=True, exist_ok=True)
        write_json(root / "bench.json", figures)

    if "cold" in phases:
        print("cold: removing the tool's images, build cache and source cache", flush=True)
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        removed = wipe(client, [REPOSITORY, STAGES_REPOSITORY, LOCAL_REPOSITORY, PLAIN_REPOSITORY])
        cold = timed_run(
            [*matrix_args, "--results", str(root), "--cache-dir", str(cache)], scratch / "cold.log"
        )
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
        }
        save()
        print(f"cold: {cold.wall:.0f} s wall, L = {lower:.0f} s", flush=True)

    if "warm" in phases:
        warm = timed_run(
            [*matrix_args, "--results", str(root), "--cache-dir", str(cache)], scratch / "warm.log"
        )
        figures["warm"] = {"wall_seconds": round(warm.wall, 2), **cell_figures(root)}
        figures["image_sizes_mb"] = image_sizes(client, root)
        save()
        print(f"warm: {warm.wall:.1f} s wall", flush=True)

    if "side" in phases:
        subset = args.subset or list(SUBSET)
        definition = load_definition(args.matrix or default_definition_path())
        select(expand(definition), subset)  # unknown names fail here, before anything runs
        # Both ways start from the base images alone: no cell image, no cached layer.
        wipe(client, [REPOSITORY, STAGES_REPOSITORY, PLAIN_REPOSITORY])
        only = [a for cell in subset for a in ("--only", cell)]
        ours = timed_run(
            [*matrix_args, *only, "--results", str(scratch / "side"), "--cache-dir", str(cache)],
            scratch / "side.log",
        )
        plain, plain_sizes = plain_builds(client, definition, subset, cache, cores, scratch)
        figures["side_by_side"] = {
            "cells": subset,
            "tool_wall_seconds": round(ours.wall, 1),
            "tool_machine_cpu_seconds": round(ours.cpu, 1),
            "plain_wall_seconds": round(plain.wall, 1),
            "plain_machine_cpu_seconds": round(plain.cpu, 1),
            "plain_over_tool": round(plain.wall / ours.wall, 2),
            "plain_image_sizes_mb": plain_sizes,
        }
        save()
        print(f"side by side: plain {plain.wall:.0f} s, tool {ours.wall:.0f} s", flush=True)

    print(report(figures))
    print(f"figures: {root / 'bench.json'}; logs: {scratch}")
    return 0


def report(f: dict[str, Any]) -> str:
    rows: list[list[Any]] = []
    cold, warm, side = f.get("cold"), f.get("warm"), f.get("side_by_side")
    if cold:
        rows += [
            ["cold wall", f"{cold['wall_seconds']} s"],
            ["machine CPU during cold", f"{cold.get('machine_cpu_seconds', '?')} s"],
            ["compiles (each distinct one once)", cold["compiles"]],
            ["compile CPU", f"{cold['compile_cpu_seconds']} s"],
            ["redundant compiles (not in L)", cold.get("redundant_compiles", "?")],
            [f"L = compile CPU / {f['cores']} cores", f"{cold['L_seconds']} s"],
            ["cold wall / L", cold["wall_over_L"]],
            *(
                [f"phase {name}, summed over workers", f"{seconds} s"]
                for name, seconds in cold.get("phase_seconds", {}).items()
                if name != "report"
            ),
            ["phase compile, summed over builds", f"{cold['compile_wall_seconds_summed']} s"],
            ["phase link, summed over builds", f"{cold['link_wall_seconds_summed']} s"],
            ["phase image (all of a cell's build)", f"{cold.get('image_phase_seconds_summed')} s"],
            ["phase probe, summed over cells", f"{cold.get('probe_phase_seconds_summed', '?')} s"],
            ["phase report", f"{cold.get('phase_seconds', {}).get('report', '?')} s"],
            ["cold layer cache hits", cold["layer_cache_hits"]],
            ["cold outcomes", cold.get("outcomes", "?")],
        ]
    if warm:
        rows += [
            ["warm wall", f"{warm['wall_seconds']} s"],
            ["warm: images cached / built", f"{warm['images_cached']} / {warm['images_built']}"],
            ["warm: probe runs reused", warm["probe_runs_reused"]],
        ]
    if side:
        rows += [
            ["side by side cells", ", ".join(side["cells"])],
            ["  tool wall", f"{side['tool_wall_seconds']} s"],
            ["  plain wall", f"{side['plain_wall_seconds']} s"],
            ["  plain / tool", side["plain_over_tool"]],
            ["  plain image sizes (MB)", side["plain_image_sizes_mb"]],
        ]
    sizes = f.get("image_sizes_mb", {})
    rows += [[f"image size {p} (MB)", f"{s['min_mb']} to {s['max_mb']}"] for p, s in sizes.items()]
    return tabulate(rows, tablefmt="simple")


if __name__ == "__main__":
    sys.exit(main())

"""The benchmark's figures, read from what a run leaves: the build logs' compile and link
times (L, the compile CPU that cannot be avoided), the summary's phases, the cells' reuse and
times; and the machine's CPU from /proc/stat. (The images' sizes are the engine's:
matrix/bench/sizes.py.)"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from matrix.bench.gap import FOLLOW_UPS
from matrix.results.store import ResultsDir

# "fips-matrix-build: compile took 93 s; cpu:" then `times`: shell, then children
STEP_RE = re.compile(r"fips-matrix-build: (compile|link) took (\d+) s; cpu:\n(.*)\n(.*)\n")
TIMES_RE = re.compile(r"(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s")
ARGS_RE = re.compile(r'"CONFIGURE_OPTIONS": "([^"]*)"')


@dataclass
class Timed:
    wall: float
    cpu: float  # CPU of the whole machine meanwhile (builds run in the engine's processes)


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
    _, run = ResultsDir(results).read_run()
    return dict(run.phase_seconds) if run is not None else {}


def cell_figures(results: Path) -> dict[str, Any]:
    cached = reused = built = fate_runs = fate_cells = 0
    image_seconds = probe_seconds = fate_seconds = 0.0
    outcomes: dict[str, int] = {}
    for cell in ResultsDir(results).all_cells():
        outcomes[cell.outcome] = outcomes.get(cell.outcome, 0) + 1
        fp = cell.fingerprint
        image = fp.get("image")
        if image:
            cached += bool(image.get("cached"))
            built += not image.get("cached")
        reused += "probe_runs_reused_from" in fp
        times = fp.get("times", {})
        image_seconds += float(times.get("image_seconds", 0))
        probe_seconds += float(times.get("probe_seconds", 0))
        # the follow-up runs (--fate-runs) of scenarios whose process died or runs disagreed
        fate_runs += int(times.get("fate_runs", 0))
        fate_cells += bool(times.get("fate_runs"))
        fate_seconds += float(times.get("fate_seconds", 0))
    return {
        "outcomes": outcomes,
        "images_built": built,
        "images_cached": cached,
        "probe_runs_reused": reused,
        "image_phase_seconds_summed": round(image_seconds, 1),
        "probe_phase_seconds_summed": round(probe_seconds, 1),
        "fate_runs": fate_runs,
        "fate_cells": fate_cells,
        "fate_seconds_summed": round(fate_seconds, 1),
    }


def _follow_ups(cold: dict[str, Any]) -> list[list[Any]]:
    """What the follow-up runs (--fate-runs) cost: runs, cells, their containers' wall and
    CPU (where the gap was sampled); none for figures of a version that made none."""
    if "fate_runs" not in cold:
        return []
    cpu = cold.get("gap", {}).get("cpu_by_kind", {}).get(FOLLOW_UPS, "?")
    return [
        ["follow-up runs (--fate-runs)", f"{cold['fate_runs']} in {cold['fate_cells']} cells"],
        ["  their containers' wall, summed", f"{cold['fate_seconds_summed']} s"],
        ["  their containers' CPU", f"{cpu} s"],
    ]


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
                if name not in ("report", "probe")  # rows of their own below
            ),
            ["phase compile, summed over builds", f"{cold['compile_wall_seconds_summed']} s"],
            ["phase link, summed over builds", f"{cold['link_wall_seconds_summed']} s"],
            ["phase image (all of a cell's build)", f"{cold.get('image_phase_seconds_summed')} s"],
            ["phase probe, summed over cells", f"{cold.get('probe_phase_seconds_summed', '?')} s"],
            *_follow_ups(cold),
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
    tests = f.get("tests_fresh_engine")
    if tests:
        rows += [
            ["nox -s tests, fresh engine", f"{tests['wall_seconds']} s"],
            ["  exit code", tests["exit_code"]],
            ["  pytest", tests["pytest"]],
        ]
    sizes = f.get("image_sizes_mb", {})
    rows += [[f"image size {p} (MB)", f"{s['min_mb']} to {s['max_mb']}"] for p, s in sizes.items()]
    return tabulate(rows, tablefmt="simple")

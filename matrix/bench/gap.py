"""Where the cold run's wall time above L goes, second by second.

Three records of one run are laid side by side:
- the machine's CPU, sampled twice a second (bench/sampler.py): cores busy, and each
  container's own CPU where its cgroup can be read;
- the run's timeline (results/phases.jsonl): when each base image, stage, source, build,
  skew image, distribution cell, probe and report ran;
- the build logs' stamps: when each compile's parts (unpack, Configure, build_generated,
  make), relink and probe install ran, and which container ran each compile.

Each interval between two samples is put in a class by how many compiles ran in it (2+, 1,
0), and its CPU split into compile CPU (the compile containers' own, or, with no cgroup to
read, each compile's CPU from its log spread evenly over its time) and the rest. Then
wall x cores = compile CPU + other CPU + idle core-seconds, so wall - L = (other CPU + idle)
/ cores, and both are shared out among the phases that ran at the time: the gap, named."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from tabulate import tabulate

from matrix.assets import slug
from matrix.bench.sampler import Sample
from matrix.execute.timeline import PHASES_NAME, Span, read_spans
from matrix.results.store import ResultsDir

# "fips-matrix-build: phase compile/make 1700000000 1700000100" (bench: build script stamps)
PHASE_RE = re.compile(r"^fips-matrix-build: phase (\S+) (\d+) (\d+)$", re.M)
COMPILE_RE = re.compile(r"fips-matrix-build\.sh compile\n ---> Running in ([0-9a-f]{12})")
TIMES_RE = re.compile(
    r"fips-matrix-build: compile took \d+ s; cpu:\n.*\n(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s"
)
NONE = "(nothing of the run)"  # an interval in which no phase of the run ran


@dataclass(frozen=True)
class Compile:
    """One compile: its parts' spans, its container and its CPU (from its log)."""

    parts: tuple[Span, ...]
    container: str
    cpu: float

    @property
    def start(self) -> float:
        return min(p.start for p in self.parts)

    @property
    def end(self) -> float:
        return max(p.end for p in self.parts)


def build_log_spans(results: Path) -> tuple[list[Compile], list[Span]]:
    """The compiles, and the other stamped parts of the builds (relink, probe install),
    from the build logs of the cells and of the stages built ahead."""
    compiles: list[Compile] = []
    others: list[Span] = []
    logs = [*sorted((results / "cells").glob("*.build.log")), *(results / "stages").glob("*.log")]
    for log in logs:
        text = log.read_text(encoding="utf-8", errors="replace")
        what = log.name.removesuffix(".log").removesuffix(".build")  # a cell's slug, a platform
        spans = [Span(m[1], what, float(m[2]), float(m[3])) for m in PHASE_RE.finditer(text)]
        parts = tuple(s for s in spans if s.phase.startswith("compile/"))
        others += [s for s in spans if not s.phase.startswith("compile/")]
        if parts:
            container = COMPILE_RE.search(text)
            times = TIMES_RE.search(text)
            cpu = 0.0
            if times:
                cpu = int(times[1]) * 60 + float(times[2]) + int(times[3]) * 60 + float(times[4])
            compiles.append(Compile(parts, container[1] if container else "", cpu))
    return compiles, others


# What a build step's container did, from its instruction in the build log.
STEP_KINDS = (
    ("fips-matrix-build.sh compile", "compile"),
    ("fips-matrix-build.sh probe", "probe build"),
    ("fips-matrix-build.sh link", "relink"),
    ("fips-matrix-build.sh install", "install"),
    ("apt-get", "packages"),
    ("apk ", "packages"),
    ("dnf ", "packages"),
)
NOT_BUILT = "probes (containers of no build step)"
FOLLOW_UPS = "probes: follow-up runs (--fate-runs)"  # a cell's second probe container


def container_steps(results: Path) -> dict[str, str]:
    """Each build step's container (short id) and what it did, from the run's build logs."""
    steps: dict[str, str] = {}
    logs = [*(results / "cells").glob("*.build.log"), *(results / "stages").glob("*.log")]
    for log in logs:
        instruction = ""
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("Step "):
                instruction = line
            elif line.startswith(" ---> Running in "):
                kind = next((k for text, k in STEP_KINDS if text in instruction), "other steps")
                steps[line.split()[-1][:12]] = kind
    return steps


def follow_up_containers(results: Path) -> dict[str, str]:
    """Each cell's container of follow-up runs (short id), from the cells' times."""
    found: dict[str, str] = {}
    for cell in ResultsDir(results).all_cells():
        times = cell.fingerprint.get("times")
        container = times.get("fate_container") if isinstance(times, dict) else None
        if isinstance(container, str) and container:
            found[container[:12]] = FOLLOW_UPS
    return found


def used_in_run(
    readings: Sequence[dict[str, float]], identity: Callable[[str], str] = lambda key: key
) -> dict[str, float]:
    """Each thing's CPU during the run, from its cumulative readings: its last reading, less
    its first where it was already running when sampling began (its CPU before the run is
    not the run's). Keys of one `identity` are one thing, under its latest key."""
    last: dict[str, tuple[str, float]] = {}
    for reading in readings:
        last.update({identity(key): (key, seconds) for key, seconds in reading.items()})
    before = {identity(key): seconds for key, seconds in (readings[0] if readings else {}).items()}
    return {key: seconds - before.get(thing, 0.0) for thing, (key, seconds) in last.items()}


def containers_cpu(samples: Sequence[Sample], steps: dict[str, str]) -> dict[str, float]:
    """CPU of the containers seen, by what they did (used_in_run), then of the processes
    outside them, by name. A container that ran for less than a sampling interval may be
    missed."""
    used = used_in_run([s.containers for s in samples])
    by_kind: dict[str, float] = {}
    for container, seconds in used.items():
        kind = steps.get(container, NOT_BUILT)
        by_kind[kind] = by_kind.get(kind, 0.0) + seconds
    busy = samples[-1].busy - samples[0].busy if len(samples) > 1 else 0.0
    outside = processes_cpu(samples)
    for name, seconds in outside.items():
        by_kind[OUTSIDE + name] = seconds
    # what no reading accounts for: processes that lived between two samples, interrupts
    by_kind[OUTSIDE_UNSEEN] = busy - sum(used.values()) - sum(outside.values())
    return {k: round(v, 1) for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])}


OUTSIDE = "outside: "  # the kinds of CPU that no container's cgroup holds
OUTSIDE_UNSEEN = OUTSIDE + "unseen (processes between two samples, interrupts)"
NAMED_PROCESSES = 8  # the rest are summed as "others"


def process_group(name: str) -> str:
    """A process's name without what tells its instances apart (kworker/1:1H-kblockd is a
    kworker, containerd-shim-runc-v2 a containerd-shim)."""
    if name.startswith("containerd-shim"):
        return "containerd-shim"
    return re.split(r"[/:]", name, maxsplit=1)[0]


def processes_cpu(samples: Sequence[Sample]) -> dict[str, float]:
    """CPU of the processes outside the containers during the run, by name, the largest
    first. A process is its pid and start time: a kernel worker renames itself as it works."""
    used = used_in_run(
        [s.processes for s in samples], identity=lambda key: " ".join(key.split(" ", 2)[:2])
    )
    by_name: dict[str, float] = {}
    for key, seconds in used.items():
        group = process_group(key.split(" ", 2)[2])
        by_name[group] = by_name.get(group, 0.0) + seconds
    largest = sorted(by_name.items(), key=lambda kv: -kv[1])[:NAMED_PROCESSES]
    named = dict(largest)
    rest = sum(by_name.values()) - sum(named.values())
    if rest:
        named["others"] = rest
    return named


@dataclass
class Row:
    seconds: float = 0.0  # how long it ran (the intervals it ran in)
    by_compiles: tuple[float, float, float] = (0.0, 0.0, 0.0)  # of which with 0, 1, 2+
    busy: float = 0.0  # core-seconds the machine was busy while it ran (all of them)
    other_cpu: float = 0.0  # its share of the CPU that was not a compile's
    idle: float = 0.0  # its share of the idle core-seconds

    def add(self, dt: float, compiles: int, busy: float, other: float, idle: float) -> None:
        counts = list(self.by_compiles)
        counts[min(compiles, 2)] += dt
        self.by_compiles = (counts[0], counts[1], counts[2])
        self.seconds += dt
        self.busy += busy
        self.other_cpu += other
        self.idle += idle


def _active(spans: Iterable[Span], parts: Iterable[Span], t: float) -> Counter[str]:
    """The phases running at t, each as often as it runs. A build with a stamped part
    running (a compile's part, the relink, the probe install) counts as that part."""
    in_parts = [p for p in parts if p.start <= t < p.end]
    named = {p.what for p in in_parts}
    running = Counter(p.phase for p in in_parts)
    for s in spans:
        if s.start <= t < s.end and slug(s.what) not in named:
            running[s.phase] += 1
    return running


def _compile_cpu(
    compiles: Sequence[Compile], before: Sample, after: Sample, measured: bool
) -> float:
    """CPU the compiles used between two samples: their containers' own when measured,
    else each compile's CPU spread over its time."""
    total = 0.0
    for c in compiles:
        if measured:
            if c.container in after.containers:
                total += after.containers[c.container] - before.containers.get(c.container, 0.0)
            continue
        overlap = min(after.t, c.end) - max(before.t, c.start)
        if overlap > 0 and c.end > c.start:
            total += c.cpu * overlap / (c.end - c.start)
    return total


def attribute(
    samples: Sequence[Sample],
    spans: Sequence[Span],
    compiles: Sequence[Compile],
    others: Sequence[Span],
    cores: int,
) -> dict[str, Any]:
    """The run's intervals, classed and shared out (see the module's docstring)."""
    # The compile containers' own CPU is used only when every compile's container was seen.
    measured = bool(compiles) and all(
        any(c.container in s.containers for s in samples) for c in compiles
    )
    parts = [p for c in compiles for p in c.parts] + list(others)
    rows: dict[str, Row] = {}
    classes = [Row(), Row(), Row()]  # intervals with 0, 1, 2+ compiles
    start_idle = tail_idle = 0.0
    first = min((c.start for c in compiles), default=float("inf"))
    last = max((c.end for c in compiles), default=float("-inf"))
    compile_cpu_total = 0.0
    for before, after in pairwise(samples):
        dt = after.t - before.t
        if dt <= 0:
            continue
        mid = (before.t + after.t) / 2
        running = sum(1 for c in compiles if c.start <= mid < c.end)
        busy = min(after.busy - before.busy, cores * dt)
        compile_cpu = min(_compile_cpu(compiles, before, after, measured), busy)
        compile_cpu_total += compile_cpu
        other = busy - compile_cpu
        idle = cores * dt - busy
        if mid < first:
            start_idle += idle
        elif mid >= last:
            tail_idle += idle
        classes[min(running, 2)].add(dt, running, busy, other, idle)
        names = _active(spans, parts, mid) or Counter([NONE])
        n = sum(names.values())
        for name, k in names.items():  # each phase running gets its share of the interval
            # the cores busy while it ran; its shares of the other CPU and of the idle
            rows.setdefault(name, Row()).add(dt, running, busy, k * other / n, k * idle / n)
    wall = samples[-1].t - samples[0].t if len(samples) > 1 else 0.0
    other_cpu = sum(c.other_cpu for c in classes)
    idle = sum(c.idle for c in classes)
    return {
        "cores": cores,
        "sampled_seconds": round(wall, 1),
        "compile_cpu_from": "container cgroups" if measured else "build logs, spread evenly",
        "compile_cpu_seconds": round(compile_cpu_total, 1),
        "other_cpu_seconds": round(other_cpu, 1),
        "idle_core_seconds": round(idle, 1),
        "idle_before_first_compile": round(start_idle, 1),
        "idle_after_last_compile": round(tail_idle, 1),
        # wall - L, as the samples see it: (other CPU + idle) / cores
        "above_compiles_seconds": round((other_cpu + idle) / cores, 1),
        "by_compiles_running": {
            label: _row_json(row, cores)
            for label, row in zip(("0", "1", "2+"), classes, strict=True)
        },
        "phases": {name: _row_json(row, cores) for name, row in sorted(rows.items())},
    }


def _row_json(row: Row, cores: int) -> dict[str, float]:
    zero, one, two = row.by_compiles
    return {
        "seconds": round(row.seconds, 1),
        "with_2_compiles": round(two, 1),
        "with_1_compile": round(one, 1),
        "with_0_compiles": round(zero, 1),
        "cores_busy": round(row.busy / row.seconds, 2) if row.seconds else 0.0,
        "other_cpu": round(row.other_cpu, 1),
        "idle_core_seconds": round(row.idle, 1),
        "above_L_seconds": round((row.other_cpu + row.idle) / cores, 1),
    }


def gap_table(gap: dict[str, Any]) -> str:
    """Per phase: how long it ran with 2+, 1 or 0 compiles running, the cores busy then, and
    its share of the wall time above the compiles (its share of the CPU that was not a
    compile's, and of the idle core-seconds, over the cores)."""
    headers = [
        "phase",
        "ran s",
        "2+ compiles",
        "1 compile",
        "0 compiles",
        "cores busy",
        "other CPU s",
        "idle core-s",
        "above L s",
    ]
    rows = [
        [
            name,
            *(r[k] for k in list(r)[:5]),
            r["other_cpu"],
            r["idle_core_seconds"],
            r["above_L_seconds"],
        ]
        for name, r in sorted(gap["phases"].items(), key=lambda kv: -kv[1]["above_L_seconds"])
    ]
    rows.append(["", "", "", "", "", "", "", "", ""])
    for label, r in gap["by_compiles_running"].items():
        rows.append(
            [
                f"(any, {label} compiles)",
                r["seconds"],
                "",
                "",
                "",
                r["cores_busy"],
                r["other_cpu"],
                r["idle_core_seconds"],
                r["above_L_seconds"],
            ]
        )
    kinds = [[kind, seconds] for kind, seconds in gap.get("cpu_by_kind", {}).items()]
    lines = [
        tabulate(rows, headers=headers, tablefmt="simple"),
        tabulate(kinds, headers=["CPU, measured", "s"], tablefmt="simple") if kinds else "",
        f"compile CPU {gap['compile_cpu_seconds']} s ({gap['compile_cpu_from']}); other CPU "
        f"{gap['other_cpu_seconds']} s; idle {gap['idle_core_seconds']} core-s, of which "
        f"{gap['idle_before_first_compile']} before the first compile and "
        f"{gap['idle_after_last_compile']} after the last; above the compiles: "
        f"{gap['above_compiles_seconds']} s of wall",
    ]
    if gap.get("containers_floor_over_L"):
        lines.append(
            "the containers' CPU alone (compiles, probes, packages, ...) allows no wall / L "
            f"below {gap['containers_floor_over_L']}"
        )
    return "\n".join(lines)


def run_gap(results: Path, samples: Sequence[Sample], cores: int) -> dict[str, Any]:
    """The gap of the run whose results are in `results`, sampled meanwhile."""
    compiles, others = build_log_spans(results)
    gap = attribute(samples, read_spans(results / PHASES_NAME), compiles, others, cores)
    steps = {**container_steps(results), **follow_up_containers(results)}
    gap["cpu_by_kind"] = containers_cpu(samples, steps)
    gap["containers_floor_over_L"] = containers_floor(gap["cpu_by_kind"])
    return gap


def containers_floor(by_kind: dict[str, float]) -> float | None:
    """The lowest wall / L that the work inside the containers allows, whatever the engine,
    the tool and the schedule do: every container's CPU (the compiles, and the probes,
    package installs, relinks ... beside them) over the compiles' own, as no more than
    all the cores can be busy."""
    compile_cpu = by_kind.get("compile", 0.0)
    inside = sum(v for k, v in by_kind.items() if not k.startswith(OUTSIDE))
    return round(inside / compile_cpu, 3) if compile_cpu else None

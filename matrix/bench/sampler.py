"""The machine's CPU over time, for the benchmark's timeline: twice a second, the CPU
time all cores have spent busy (/proc/stat), and the CPU time of every container whose
cgroup can be read (the engine's builds and probes run in containers), so that the compile
steps' own CPU can be told from everything else, second by second; and the CPU of every
process outside the containers (the engine's daemons, the tool, debootstrap), by name, so
that what the containers do not account for has names too."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

CGROUP_ROOT = Path("/sys/fs/cgroup")
# A container's CPU, wherever the engine puts its cgroup: cgroup v1 (cpuacct.usage, ns) under
# any parent (--cgroup-parent), or v2 (cpu.stat usage_usec), cgroupfs or systemd driver.
_CONTAINER = re.compile(r"(?:docker-)?([0-9a-f]{64})(?:\.scope)?")
_V1 = ("cpuacct", "cpu,cpuacct")
PROCESS_EVERY = 4  # samples: the processes outside the containers are read every 2 s


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the epoch (build logs stamp the same clock)
    busy: float  # CPU seconds all cores have spent busy since boot
    containers: dict[str, float] = field(default_factory=dict)  # id[:12] -> CPU seconds
    # outside the containers: "pid starttime name" -> the process's own CPU seconds
    processes: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "t": round(self.t, 3),
            "busy": round(self.busy, 2),
            "containers": self.containers,
            "processes": self.processes,
        }


def machine_busy_seconds(stat: Path = Path("/proc/stat")) -> float:
    """user + nice + system + irq + softirq of all CPUs (idle, iowait and steal are not ours)."""
    fields = stat.read_text().splitlines()[0].split()[1:8]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields)
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def container_cpu(root: Path = CGROUP_ROOT) -> dict[str, float]:
    """CPU seconds of each running container whose cgroup is readable, by short id."""
    found: dict[str, float] = {}
    candidates: list[tuple[Path, str]] = []
    for v1 in _V1:
        candidates += [(d, "cpuacct.usage") for d in (root / v1).glob("*/*")]
    candidates += [(d, "cpu.stat") for d in root.glob("*/*")]
    for directory, name in candidates:
        m = _CONTAINER.fullmatch(directory.name)
        if m is None:
            continue
        try:
            text = (directory / name).read_text()
        except OSError:
            continue  # the container ended meanwhile
        if name == "cpuacct.usage":
            seconds = int(text) / 1e9
        else:
            usage = re.search(r"^usage_usec (\d+)$", text, re.M)
            if usage is None:
                continue
            seconds = int(usage[1]) / 1e6
        found[m[1][:12]] = round(seconds, 3)
    return found


def process_cpu(
    proc: Path = Path("/proc"), inside: dict[str, bool] | None = None
) -> dict[str, float]:
    """The own CPU seconds (user + system, children not included: each child is seen itself)
    of every process outside the containers, keyed "pid starttime name" so that a reused pid
    is another process. `inside` caches which processes are in a container's cgroup; it
    keeps only those seen now (a run starts hundreds of thousands)."""
    known = {} if inside is None else dict(inside)
    seen: dict[str, bool] = {}
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # the name is in parentheses and may hold spaces or parentheses itself
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            key = f"{entry.name} {fields[19]} {name}"  # fields[19]: starttime
            if key not in known:
                cgroup = (entry / "cgroup").read_text()
                known[key] = any(_CONTAINER.fullmatch(part) for part in re.split(r"[/\n]", cgroup))
        except (OSError, ValueError, IndexError):
            continue  # it ended meanwhile
        seen[key] = known[key]
        if not known[key]:
            found[key] = round((int(fields[11]) + int(fields[12])) / tick, 2)  # utime, stime
    if inside is not None:
        inside.clear()
        inside.update(seen)
    return found


class CpuSampler:
    """Samples in a thread of its own while the `with` block runs."""

    def __init__(self, interval: float = 0.5, cgroups: Path = CGROUP_ROOT) -> None:
        self.interval = interval
        self.cgroups = cgroups
        self.samples: list[Sample] = []
        self._inside: dict[str, bool] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fips-matrix-cpu", daemon=True)

    def sample(self, processes: bool = True) -> Sample:
        return Sample(
            time.time(),
            machine_busy_seconds(),
            container_cpu(self.cgroups),
            process_cpu(inside=self._inside) if processes else {},
        )

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            # the processes only every PROCESS_EVERY-th time: reading all of /proc costs
            # CPU of its own (a few ms), and only their totals are wanted
            self.samples.append(self.sample(processes=n % PROCESS_EVERY == 0))
            n += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(self.sample())

    def save(self, path: Path) -> None:
        path.write_text("".join(json.dumps(s.to_json()) + "\n" for s in self.samples))

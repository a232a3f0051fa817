"""The machine's CPU over time, for the benchmark's timeline: twice a second, the CPU
time all cores have spent busy (/proc/stat), and the CPU time of every container whose
cgroup can be read (the engine's builds and probes run in containers), so that the compile
steps' own CPU can be told from everything else, second by second."""

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


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the epoch (build logs stamp the same clock)
    busy: float  # CPU seconds all cores have spent busy since boot
    containers: dict[str, float] = field(default_factory=dict)  # id[:12] -> CPU seconds

    def to_json(self) -> dict[str, Any]:
        return {"t": round(self.t, 3), "busy": round(self.busy, 2), "containers": self.containers}


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


class CpuSampler:
    """Samples in a thread of its own while the `with` block runs."""

    def __init__(self, interval: float = 0.5, cgroups: Path = CGROUP_ROOT) -> None:
        self.interval = interval
        self.cgroups = cgroups
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fips-matrix-cpu", daemon=True)

    def sample(self) -> Sample:
        return Sample(time.time(), machine_busy_seconds(), container_cpu(self.cgroups))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.sample())
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

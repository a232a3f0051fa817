"""The benchmark's account of the wall time above the compiles: the build logs' stamps are
read, each sampled interval is classed by the compiles running in it, and the CPU that was
not a compile's and the idle core-seconds are shared out among the phases running then;
also the sampler's reading of container cgroups (v1 and v2 layouts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from matrix.bench.gap import (
    NONE,
    NOT_BUILT,
    Compile,
    attribute,
    build_log_spans,
    container_steps,
    containers_cpu,
    containers_floor,
    gap_table,
)
from matrix.bench.sampler import Sample, container_cpu, process_cpu
from matrix.execute.timeline import Span

T0 = 1_700_000_000.0
A = "a" * 64
B = "b" * 64

BUILD_LOG = f"""# build fips-matrix/cell:debian-12-3.0.20-default
Step 12/21 : RUN fips-matrix-build.sh compile
 ---> Running in {A[:12]}
fips-matrix-build: phase compile/unpack {T0:.0f} {T0 + 1:.0f}
fips-matrix-build: phase compile/configure {T0 + 1:.0f} {T0 + 3:.0f}
fips-matrix-build: phase compile/generated {T0 + 3:.0f} {T0 + 4:.0f}
fips-matrix-build: phase compile/make {T0 + 4:.0f} {T0 + 10:.0f}
fips-matrix-build: compile took 10 s; cpu:
0m0.000000s 0m0.000000s
0m15.000000s 0m1.000000s
Step 14/21 : RUN fips-matrix-build.sh link
fips-matrix-build: phase link/relink {T0 + 10:.0f} {T0 + 11:.0f}
"""


def test_build_logs_give_each_compile_its_parts_container_and_cpu(tmp_path: Path) -> None:
    (tmp_path / "cells").mkdir()
    (tmp_path / "cells" / "debian-12__3.0.20__default.build.log").write_text(BUILD_LOG)
    (tmp_path / "cells" / "debian-12__3.0.20__no-pinshared.build.log").write_text(
        "Step 12/21 : RUN fips-matrix-build.sh compile\n ---> Using cache\n"
    )
    compiles, others = build_log_spans(tmp_path)
    [c] = compiles
    assert [p.phase for p in c.parts] == [
        "compile/unpack",
        "compile/configure",
        "compile/generated",
        "compile/make",
    ]
    assert (c.start, c.end, c.container, c.cpu) == (T0, T0 + 10, A[:12], 16.0)
    assert [(o.phase, o.what) for o in others] == [("link/relink", "debian-12__3.0.20__default")]


def samples(busy_per_second: list[float], containers: list[dict[str, float]]) -> list[Sample]:
    out, busy = [], 0.0
    for i, b in enumerate([0.0, *busy_per_second]):
        busy += b
        out.append(Sample(T0 + i, busy, containers[i] if i < len(containers) else {}))
    return out


def test_the_gap_is_shared_out_and_adds_up() -> None:
    """Four seconds on 2 cores: a base image alone (1 core busy), then one compile with a
    probe beside it (both busy; the compile's container used 1), then the compile alone
    in its serial step (1 busy, all of it the compile's), then the report alone (0.5)."""
    compile_ = Compile(
        (Span("compile/configure", "c", T0 + 1, T0 + 2), Span("compile/make", "c", T0 + 2, T0 + 3)),
        A[:12],
        2.0,
    )
    spans = [
        Span("base", "debian-12", T0, T0 + 1),
        Span("build", "c", T0 + 1, T0 + 3),
        Span("probe", "x", T0 + 1, T0 + 2),
        Span("report", "282", T0 + 3, T0 + 4),
    ]
    cgroups = [{}, {}, {A[:12]: 1.0}, {A[:12]: 2.0}, {}]
    gap = attribute(samples([1.0, 2.0, 1.0, 0.5], cgroups), spans, [compile_], [], cores=2)
    assert gap["compile_cpu_from"] == "container cgroups"
    assert gap["compile_cpu_seconds"] == 2.0
    assert gap["other_cpu_seconds"] == 1.0 + 1.0 + 0.5  # base, probe beside the compile, report
    assert gap["idle_core_seconds"] == 1.0 + 0 + 1.0 + 1.5
    assert gap["idle_before_first_compile"] == 1.0
    assert gap["idle_after_last_compile"] == 1.5
    assert gap["above_compiles_seconds"] == (2.5 + 3.5) / 2
    phases = gap["phases"]
    # the build is named by its stamped part while that part runs
    assert "build" not in phases
    assert phases["base"]["other_cpu"] == 1.0 and phases["base"]["with_0_compiles"] == 1.0
    # the probe and the compile's configure share the second in which both ran
    assert phases["probe"]["other_cpu"] == 0.5
    assert phases["compile/configure"]["other_cpu"] == 0.5
    assert phases["compile/make"]["idle_core_seconds"] == 1.0  # one core idle beside it
    assert phases["compile/make"]["with_1_compile"] == 1.0
    assert phases["report"]["above_L_seconds"] == (0.5 + 1.5) / 2
    total = sum(p["above_L_seconds"] for p in phases.values())
    assert total == pytest.approx(gap["above_compiles_seconds"], abs=0.2)
    assert gap["by_compiles_running"]["1"]["seconds"] == 2.0
    assert "report" in gap_table(gap)


def test_without_cgroups_a_compiles_cpu_is_spread_over_its_time() -> None:
    compile_ = Compile((Span("compile/make", "c", T0, T0 + 2),), A[:12], 3.0)
    gap = attribute(samples([2.0, 2.0, 0.0], []), [], [compile_], [], cores=2)
    assert gap["compile_cpu_from"] == "build logs, spread evenly"
    assert gap["compile_cpu_seconds"] == 3.0
    assert gap["other_cpu_seconds"] == 1.0
    assert NONE in gap["phases"]  # the last second: nothing of the run ran


def test_container_cpu_reads_cgroup_v1_and_v2(tmp_path: Path) -> None:
    v1 = tmp_path / "cpuacct" / "docker" / A
    v1.mkdir(parents=True)
    (v1 / "cpuacct.usage").write_text("2500000000\n")
    v2 = tmp_path / "system.slice" / f"docker-{B}.scope"
    v2.mkdir(parents=True)
    (v2 / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1000000\n")
    (tmp_path / "cpuacct" / "docker" / "not-a-container").mkdir()
    assert container_cpu(tmp_path) == {A[:12]: 2.5, B[:12]: 1.5}


def _proc(root: Path, pid: int, name: str, start: int, utime: int, cgroup: str) -> None:
    d = root / str(pid)
    d.mkdir()
    # fields after the name: state ppid ... utime (14th) stime (15th) ... starttime (22nd)
    rest = ["S", "1", *["0"] * 9, str(utime), "5", *["0"] * 6, str(start), "0"]
    (d / "stat").write_text(f"{pid} ({name}) {' '.join(rest)}\n")
    (d / "cgroup").write_text(cgroup)


def test_process_cpu_reads_every_process_outside_the_containers(tmp_path: Path) -> None:
    import os

    tick = os.sysconf("SC_CLK_TCK")
    _proc(tmp_path, 10, "dockerd", 7, 3 * tick, "0::/system.slice/docker.service\n")
    _proc(tmp_path, 11, "odd) name (x", 8, tick, "0::/\n")  # parentheses in the name
    _proc(tmp_path, 12, "make", 9, 9 * tick, f"0::/system.slice/docker-{A}.scope\n")
    _proc(tmp_path, 13, "cc1", 9, 9 * tick, f"12:cpuacct:/docker/{B}\n")
    (tmp_path / "self").mkdir()
    (tmp_path / "14").mkdir()  # ended between the listing and the read
    inside: dict[str, bool] = {}
    found = process_cpu(tmp_path, inside)
    assert found == {"10 7 dockerd": 3 + 5 / tick, "11 8 odd) name (x": 1 + 5 / tick}
    assert inside["12 9 make"] and not inside["10 7 dockerd"]
    # only the processes seen now are remembered: the cache does not grow with the run
    for pid in ("12", "13"):
        for name in ("stat", "cgroup"):
            (tmp_path / pid / name).unlink()
        (tmp_path / pid).rmdir()
    inside["99 1 gone"] = True
    process_cpu(tmp_path, inside)
    assert set(inside) == {"10 7 dockerd", "11 8 odd) name (x"}


def test_containers_cpu_is_measured_by_what_each_container_did(tmp_path: Path) -> None:
    (tmp_path / "cells").mkdir()
    (tmp_path / "stages").mkdir()
    (tmp_path / "cells" / "c.build.log").write_text(
        BUILD_LOG + f"Step 15/21 : RUN fips-matrix-build.sh install\n ---> Running in {B[:12]}\n"
    )
    (tmp_path / "stages" / "debian-12.log").write_text(
        "Step 3/8 : RUN apt-get update && apt-get install -y gcc\n ---> Running in cccccccccccc\n"
    )
    steps = container_steps(tmp_path)
    assert steps == {A[:12]: "compile", B[:12]: "install", "cccccccccccc": "packages"}
    # running long before the run began; a kernel worker renames itself as it works
    dockerd = {"10 5 dockerd": 50.0, "30 2 kworker/u8:3-flush": 9.0}
    readings = [
        Sample(T0, 0.0, {"eeeeeeeeeeee": 100.0}, dockerd),  # so was this container
        Sample(T0 + 1, 2.0, {"cccccccccccc": 0.5, "dddddddddddd": 0.2}, {"10 5 dockerd": 50.2}),
        Sample(
            T0 + 2,
            4.0,
            {A[:12]: 1.5, "dddddddddddd": 0.4, "eeeeeeeeeeee": 100.3},
            {
                "10 5 dockerd": 50.4,
                "20 9 containerd-shim-runc-v2": 0.1,
                "30 2 kworker/u8:3-ev": 9.2,
            },
        ),
        Sample(
            T0 + 3,
            5.0,
            {A[:12]: 2.0, B[:12]: 0.5},
            # a shim of another container, and a reused pid: another process
            {"10 5 dockerd": 50.5, "21 9 containerd-shim-runc-v2": 0.2, "20 11 tar": 0.1},
        ),
    ]
    assert containers_cpu(readings, steps) == {
        "outside: dockerd": 0.5,
        "outside: containerd-shim": 0.3,
        "outside: kworker": 0.2,
        "outside: tar": 0.1,
        "outside: unseen (processes between two samples, interrupts)": round(5.0 - 3.7 - 1.1, 1),
        "compile": 2.0,
        NOT_BUILT: 0.7,  # a probe container (in no build log), and the other one's 0.3 s
        "packages": 0.5,
        "install": 0.5,
    }
    # no schedule can bring the run below all its containers' CPU over the compiles' own
    assert containers_floor(containers_cpu(readings, steps)) == round((2.0 + 0.7 + 1.0) / 2.0, 3)
    assert containers_floor({"outside: dockerd": 3.0}) is None

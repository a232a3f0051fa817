"""What the tool leaves on a shared engine, and what it lets a container or a build take: probe
containers left behind by a killed run are removed at the next start (by the tool's labels,
only when their run is over for certain), the benchmark prunes only the tool's own dangling
images, probe containers get no swap and their output is capped, builds get a time limit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import docker.errors
import pytest
from support.fakes import FakeDockerClient, FakeLeftover
from support.harness import DEBIAN_DEFAULT, DEBIAN_UNPINNED, FACTS, Harness, Notes

from matrix import assets, cli, session
from matrix.commands import bench
from matrix.commands import run as run_command
from matrix.execute import engine
from matrix.execute.options import DEFAULT_BUILD_TIMEOUT
from matrix.execute.probes import batch
from matrix.model.vocabulary import Outcome


def start_ticks(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]


def dead_pid() -> tuple[int, str]:
    """A pid and start time of a process that has ended (a run killed with kill -9)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    ticks = start_ticks(child.pid)
    child.kill()
    child.wait()
    return child.pid, ticks


def probe_labels(owner: str) -> dict[str, str]:
    return {assets.PROBE_LABEL: DEBIAN_DEFAULT, assets.OWNER_LABEL: owner}


def test_probe_containers_of_a_killed_run_are_removed_at_the_next_start(
    h: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    host = socket.gethostname()
    pid, ticks = dead_pid()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        leftovers = {
            "killed": FakeLeftover("a" * 64, probe_labels(f"{host} {pid} {ticks}")),
            "running elsewhere": FakeLeftover(
                "b" * 64, probe_labels(f"{host} {alive.pid} {start_ticks(alive.pid)}")
            ),
            "other host": FakeLeftover("c" * 64, probe_labels(f"ci-runner-7 {pid} {ticks}")),
            "pid reused": FakeLeftover("d" * 64, probe_labels(f"{host} {alive.pid} 1")),
            "older tool": FakeLeftover("e" * 64, {assets.PROBE_LABEL: DEBIAN_DEFAULT}),
            "not ours": FakeLeftover("f" * 64, {"com.example.job": "build"}),
        }
        h.client.leftovers = list(leftovers.values())
        monkeypatch.setattr(engine, "connect", lambda: h.client)
        monkeypatch.setattr(engine, "facts", lambda client: FACTS)
        argv = ["run", "--matrix", str(h.definition.path), "--results", str(h.results)]
        assert cli.main([*argv, "--only", DEBIAN_DEFAULT, "--cache-dir", str(h.tmp / "c")]) == 0
    finally:
        alive.kill()
        alive.wait()
    removed = {name for name, c in leftovers.items() if c.removed}
    # a pid that now belongs to another process is as good as gone
    assert removed == {"killed", "pid reused"}
    assert "left behind by a run that was killed" in capsys.readouterr().out
    assert h.client.batches and all(c.removed for c in h.client.batches)  # its own, as ever


def test_bench_prunes_only_the_tools_own_dangling_images(h: Harness) -> None:
    h.run(DEBIAN_DEFAULT)
    assert all(b.kwargs["labels"][assets.TOOL_LABEL] for b in h.client.builds)
    client = h.client
    client.add_image("someone-else/app:1")
    removed = bench.wipe(client, [assets.CELL_REPOSITORY])  # type: ignore[arg-type]
    assert removed == 1
    assert "someone-else/app:1" in client.images_by_ref
    assert client.prunes, "dangling images of the tool are pruned"
    for filters in client.prunes:
        assert filters["dangling"] is True
        # the tool's builds, and the intermediate images of their other stages, which carry
        # no label of the build's but inherit the debootstrapped base's
        assert filters["label"] in (
            assets.TOOL_LABEL,
            assets.INPUTS_LABEL,
            assets.DEBOOTSTRAP_LABEL,
        )


def test_a_build_past_its_time_limit_is_a_timeout(h: Harness) -> None:
    h.client.steps_before_compile_seconds = 0.5
    results = h.run(DEBIAN_DEFAULT, DEBIAN_UNPINNED, build_timeout=0.2)
    assert [r.outcome for r in results] == [Outcome.TIMEOUT, Outcome.TIMEOUT]
    reason = results[0].reason
    assert "did not finish within 0.2 s (--build-timeout)" in reason
    log = Path(results[0].logs["build"])
    assert "TIMEOUT: the build did not finish within 0.2 s" in log.read_text()
    assert not h.client.batches  # nothing probed


def test_a_build_past_its_time_limit_fails_the_run_as_a_failed_build_does(h: Harness) -> None:
    """run exits 1 when a cell failed to build: a build abandoned at --build-timeout did (a
    probe that timed out is a measurement, and exits 0 like every other)."""
    h.client.steps_before_compile_seconds = 0.5
    timed_out = h.run(DEBIAN_DEFAULT, build_timeout=0.2)
    assert [r.outcome for r in timed_out] == [Outcome.TIMEOUT] and not timed_out[0].scenarios
    assert session.exit_status(timed_out, allow_empty=True) == 1
    h.client.steps_before_compile_seconds = 0.0
    measured = h.run(DEBIAN_UNPINNED)
    assert session.exit_status([*measured, *timed_out], allow_empty=False) == 1
    assert session.exit_status(measured, allow_empty=False) == 0


def test_probe_output_kept_in_memory_is_capped(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    chunks: list[bytes] = []
    stream = iter([b"x" * 1000] * 50)
    batch._drain(stream, chunks, 2500)
    assert sum(map(len, chunks)) == 2500
    assert next(stream, None) is None  # read to its end all the same: the driver never blocks
    assert batch._tail(iter([b"a" * 70_000, b"b" * 70_000]), 65536) == b"b" * 65536

    monkeypatch.setattr(batch, "RUN_REPORT_BYTES", 64)  # far less than one probe document
    [result] = h.run(DEBIAN_DEFAULT)
    assert result.outcome == Outcome.PROBE_CRASHED
    assert "the batch report is cut" in Path(result.logs["probe"]).read_text()


def test_the_default_build_time_limit_is_an_option() -> None:
    args = cli.parser().parse_args(["run", "--build-timeout", "60"])
    assert run_command.resolve(args)[2].build_timeout == 60.0
    assert cli.parser().parse_args(["run"]).build_timeout == DEFAULT_BUILD_TIMEOUT


def test_another_hosts_containers_are_never_judged() -> None:
    assert not batch.owner_gone(f"elsewhere {os.getpid() + 1} 5")
    assert not batch.owner_gone(batch.owner())  # this very process
    assert not batch.owner_gone("")
    pid, ticks = dead_pid()
    assert batch.owner_gone(f"{socket.gethostname()} {pid} {ticks}")


def test_an_engine_that_cannot_list_containers_only_costs_a_note() -> None:
    class Refusing:
        def list(self, **_: object) -> list[object]:
            raise docker.errors.APIError("500 Server Error: listing refused")

    client = FakeDockerClient()
    client.containers = Refusing()  # type: ignore[assignment]
    notes: list[str] = []
    assert batch.remove_leftovers(client, Notes(notes)) == 0  # type: ignore[arg-type]
    assert notes == [
        "could not look for probe containers left behind: 500 Server Error: listing refused"
    ]

"""Stopping a run, as users do it: Ctrl-C (SIGINT) to the real `fips-matrix run` process while
its builds run, once and then again; and `kill -9`, after which the next run removes the probe
container the killed one left behind. The process talks to a fake engine on a unix socket
(tests/support/engine_server.py) whose builds and probes hang for as long as a test likes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.engine_server import EngineState, FakeEngine

from matrix import assets

TARBALL = b"a stand-in for an OpenSSL tarball\n" * 32
SHA = hashlib.sha256(TARBALL).hexdigest()

MATRIX = f"""schema = 1
scenarios = ["ondemand-kat"]

[platforms.gone]
dockerfile = "debian.Dockerfile"
base_image = "nowhere:1"
libc = "glibc"

[platforms.slow]
dockerfile = "debian.Dockerfile"
base_image = "fakebase:1"
libc = "glibc"

[platforms.distro]
dockerfile = "debian-distro.Dockerfile"
base_image = "fakebase:1"
libc = "glibc"
openssl = "distro"

[sources."3.0.20"]
sha256 = "{SHA}"
urls = ["https://downloads.test/openssl-3.0.20.tar.gz"]

[variants.default]
configure = []
"""


class Tool:
    """One `fips-matrix run` process, its output read as it comes."""

    def __init__(self, engine: FakeEngine, tmp: Path, *args: str) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "matrix",
                "run",
                "--matrix",
                str(tmp / "matrix.toml"),
                "--results",
                str(tmp / "results"),
                "--cache-dir",
                str(tmp / "cache"),
                "--parallel",
                "1",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "DOCKER_HOST": engine.docker_host, "COLUMNS": "200"},
            # Ctrl-C as a terminal sends it: a test run started in the background (`cmd &`
            # in a script, as the bench runs the suite) ignores SIGINT, and its children
            # would inherit that, so the tool would never hear the signal
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def ends(self, seconds: float) -> int:
        code = self.process.wait(timeout=seconds)
        self.reader.join(timeout=5)
        return code


def until(what: Callable[[], bool], seconds: float, why: str, tool: Tool | None = None) -> float:
    """Waits until `what` holds; the seconds it took. On failure the message holds what
    the tool had said by then."""
    t0 = time.monotonic()
    while not what():
        said = f"; the tool said:\n{tool.output[-3000:]}" if tool is not None else ""
        assert time.monotonic() - t0 < seconds, f"{why} did not happen within {seconds} s{said}"
        time.sleep(0.05)
    return time.monotonic() - t0


@pytest.fixture
def place(tmp_path: Path) -> Path:
    """The matrix file, and the source in the cache as an earlier run verified it."""
    (tmp_path / "matrix.toml").write_text(MATRIX)
    sources = tmp_path / "cache" / "sources"
    sources.mkdir(parents=True)
    tarball = sources / f"openssl-3.0.20-{SHA[:12]}.tar.gz"
    tarball.write_bytes(TARBALL)
    meta = {"version": "3.0.20", "sha256": SHA, "origin": "test", "signature": "verified: t"}
    tarball.with_name(tarball.name + ".json").write_text(json.dumps(meta))
    return tmp_path


@pytest.fixture
def engine() -> Iterator[FakeEngine]:
    state = EngineState()
    state.add_image("fakebase:1")
    with FakeEngine(state) as running:
        yield running


def test_ctrl_c_says_what_it_waits_for_and_a_second_abandons_it(
    place: Path, engine: FakeEngine
) -> None:
    engine.state.hang_builds = True
    tool = Tool(engine, place, "--only", "gone/*", "--only", "slow/*")
    skipped = place / "results" / "cells" / "gone__3.0.20__default.json"
    until(lambda: skipped.exists() and bool(engine.state.builds), 30, "a build under way")
    time.sleep(0.3)
    tool.process.send_signal(signal.SIGINT)
    said = until(lambda: "interrupted: waiting for" in tool.output, 5, "the first word", tool)
    assert said < 2, f"{said:.1f} s of silence after Ctrl-C"
    assert "slow/3.0.20/default (build)" in tool.output
    assert "slow (base image and stages before compile)" in tool.output
    assert "Press Ctrl-C again to abandon them" in tool.output
    time.sleep(1)
    assert tool.process.poll() is None  # it waits: the build has not ended its step

    tool.process.send_signal(signal.SIGINT)
    assert tool.ends(10) == 130
    assert "abandoned 2 unfinished job(s)" in tool.output, tool.output
    assert "Traceback" not in tool.output
    # the cell that had finished is on disk, whole; the abandoned one is not
    assert json.loads(skipped.read_text())["outcome"] == "SKIPPED"
    assert not (place / "results" / "cells" / "slow__3.0.20__default.json").exists()


def test_a_probe_container_of_a_killed_run_is_removed_when_the_next_starts(
    place: Path, engine: FakeEngine
) -> None:
    killed = Tool(engine, place, "--only", "distro/*")
    until(lambda: bool(engine.state.containers), 30, "a probe container")
    [(cid, attrs)] = engine.state.containers.items()
    labels = attrs["Config"]["Labels"]
    assert labels[assets.PROBE_LABEL] == "distro/distro/packaged"
    assert labels[assets.OWNER_LABEL].split()[1] == str(killed.process.pid)
    killed.process.kill()  # kill -9: nothing of the tool runs after it
    assert killed.ends(10) == -signal.SIGKILL
    assert engine.state.removed == []  # left behind

    # another, unrelated container of the engine, with no label of the tool's, stays
    engine.state.containers["0" * 64] = {
        "Id": "0" * 64,
        "Config": {"Labels": {"com.example.service": "db"}, "Tty": False},
    }
    after = Tool(engine, place, "--only", "gone/*", "--allow-empty")
    assert after.ends(30) == 0, after.output
    assert engine.state.removed == [cid]
    assert "left behind by a run that was killed" in after.output
    assert "0" * 64 in engine.state.containers


def test_a_cell_abandoned_during_discovery_says_it_was_interrupted(
    place: Path, engine: FakeEngine
) -> None:
    """Ctrl-C twice while an existing image's discovery runs: the run removes its probe
    container, the engine then answers 409 Conflict to the worker's own removal; the cell
    said ERROR "409 Conflict". It says it was interrupted."""
    (place / "matrix.toml").write_text(
        'schema = 1\nscenarios = ["ondemand-kat"]\n\n[platforms.app]\nimage = "app:1"\n'
    )
    engine.state.add_image("app:1")
    engine.state.add_image("debian:bullseye")  # the portable probe's builder base
    engine.state.removal_seconds = 2.0
    tool = Tool(engine, place)
    until(
        lambda: any("discover" in str(c.get("Cmd")) for c in engine.state.containers.values()),
        30,
        "discovery under way",
        tool,
    )
    time.sleep(0.3)
    tool.process.send_signal(signal.SIGINT)
    until(lambda: "interrupted: waiting for" in tool.output, 5, "the first word", tool)
    tool.process.send_signal(signal.SIGINT)
    assert tool.ends(30) == 130, tool.output
    assert "Traceback" not in tool.output
    [cell] = (place / "results" / "cells").glob("app__*.json")
    stored = json.loads(cell.read_text())
    assert stored["outcome"] == "ERROR"
    assert stored["reason"].startswith(
        "interrupted: the run was abandoned (Ctrl-C twice) while this cell was under way"
    ), stored["reason"]

"""The unit tests' run harness: a run against the fake engine (tests/support/fakes.py) with a
matrix of the default one's shape, sources faked at the imager's fetch (or found pre-placed in
the cache), and probe containers printing the real documents of fixtures/. Its fixtures are
in conftest.py."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import matrix.execute.images.imaging
from matrix.acquire.sources import FetchedSource
from matrix.errors import SourceError
from matrix.execute import engine
from matrix.execute.engine import EngineFacts
from matrix.execute.options import RunOptions
from matrix.execute.run.assembly import MatrixRun, assemble
from matrix.model.cells import Cell, expand, select
from matrix.model.definition import load_definition
from matrix.model.types import MatrixDefinition, Source
from matrix.model.vocabulary import Outcome
from matrix.progress import ConsoleReporter, Reporter
from matrix.results.records import CellResult
from matrix.results.store import ResultsDir
from support.fakes import FakeDockerClient
from support.made_results import fixture_result

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = ("ondemand-kat", "load-kat", "integrity", "leaked-ref", "no-failure")
TARBALL = b"a stand-in for openssl-3.0.20.tar.gz\n" * 64
SHA = hashlib.sha256(TARBALL).hexdigest()
MIRROR = "http://mirror.test/debian"
FACTS = EngineFacts(
    version="26.1.5+dfsg1",
    api_version="1.45",
    kernel="6.1.0-test-amd64",
    os="Debian GNU/Linux 12 (bookworm)",
    arch="x86_64",
    storage_driver="overlay2",
)
DEBIAN_DEFAULT = "debian-12/3.0.20/default"
DEBIAN_UNPINNED = "debian-12/3.0.20/no-pinshared"
MUSL_DEFAULT = "musl-debian-12/3.0.20/default"
MUSL_UNPINNED = "musl-debian-12/3.0.20/no-pinshared"
ALL_IDS = [DEBIAN_DEFAULT, DEBIAN_UNPINNED, MUSL_DEFAULT, MUSL_UNPINNED]


def matrix_toml(versions: dict[str, str]) -> str:
    """default.toml's shape; the platforms use the repo's real dockerfiles."""
    text = f"""schema = 1
scenarios = {json.dumps(list(SCENARIOS))}

[platforms.debian-12]
dockerfile = "debian.Dockerfile"
base_image = "debian:bookworm"
libc = "glibc"
fallback = {{ debootstrap = "bookworm" }}

[platforms.musl-debian-12]
dockerfile = "musl.Dockerfile"
base_image = "debian:bookworm"
libc = "musl"
fallback = {{ debootstrap = "bookworm" }}
"""
    for version, sha in versions.items():
        text += f"""
[sources."{version}"]
sha256 = "{sha}"
urls = ["https://downloads.test/openssl-{version}.tar.gz"]
debian_orig = true
"""
    return (
        text
        + """
[variants.default]
configure = []

[variants.no-pinshared]
configure = ["no-pinshared"]
"""
    )


@dataclass
class Harness:
    tmp: Path
    client: FakeDockerClient
    definition: MatrixDefinition
    tarball: Path
    origin: str = "https://downloads.test/openssl-3.0.20.tar.gz"
    fetches: list[str] = field(default_factory=list)
    source_errors: dict[str, str] = field(default_factory=dict)
    console: io.StringIO = field(default_factory=io.StringIO)  # the last runner's progress

    @property
    def results(self) -> Path:
        return self.tmp / "results"

    @property
    def out(self) -> ResultsDir:
        return ResultsDir(self.results)

    def fetch(
        self, source: Source, cache_dir: Path, mirror: str | None, reporter: Any = None, **_: Any
    ) -> FetchedSource:
        self.fetches.append(source.version)
        if source.version in self.source_errors:
            raise SourceError(self.source_errors[source.version])
        return FetchedSource(source.version, self.tarball, SHA, self.origin, "verified: OpenSSL")

    def cells(self, *patterns: str) -> list[Cell]:
        return select(expand(self.definition), list(patterns))

    def options(self, **overrides: Any) -> RunOptions:
        values: dict[str, Any] = {
            "results": self.results,
            "cache_dir": self.tmp / "cache",
            "mirror": None,
            "jobs": 2,
            "probe_timeout": 30.0,
            "force": False,
        }
        values.update(overrides)
        return RunOptions(**values)

    def runner(self, total: int, **overrides: Any) -> MatrixRun:
        self.console = io.StringIO()
        reporter = ConsoleReporter(total, Console(file=self.console, width=200, highlight=False))
        return assemble(self.client, FACTS, self.definition, self.options(**overrides), reporter)

    def run(self, *patterns: str, **overrides: Any) -> list[CellResult]:
        cells = self.cells(*patterns)
        return self.runner(len(cells), **overrides).run(cells)

    def on_disk(self, cell_id: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.out.cell_path(cell_id).read_text())
        return data


def cli_on_fake_engine(
    monkeypatch: pytest.MonkeyPatch, client: FakeDockerClient, tarball: Path
) -> None:
    """The command line's runs talk to this fake engine, and every source is this verified
    tarball (the pinned SHA)."""
    monkeypatch.setattr(engine, "connect", lambda: client)
    monkeypatch.setattr(engine, "facts", lambda c: FACTS)
    monkeypatch.setattr(
        matrix.execute.images.imaging,
        "fetch_source",
        lambda source, *a, **k: FetchedSource(source.version, tarball, SHA, "test", "verified"),
    )


def make_harness(
    tmp: Path, monkeypatch: pytest.MonkeyPatch, versions: dict[str, str] | None = None
) -> Harness:
    tarball = tmp / "openssl-3.0.20.tar.gz"
    tarball.write_bytes(TARBALL)
    path = tmp / "matrix.toml"
    path.write_text(matrix_toml(versions or {"3.0.20": SHA}))
    h = Harness(tmp, FakeDockerClient(), load_definition(path), tarball)
    monkeypatch.setattr(matrix.execute.images.imaging, "fetch_source", h.fetch)
    return h


class Notes(Reporter):
    """A reporter that keeps the notes it is given, for tests to read."""

    def __init__(self, into: list[str] | None = None) -> None:
        self.lines = into if into is not None else []

    def note(self, text: str) -> None:
        self.lines.append(text)


def write_run(root: Path, builds: dict[str, str]) -> ResultsDir:
    """A results directory of real probe documents: cell id -> fixture build."""
    out = ResultsDir(root)
    out.prepare()
    for cell_id, build in builds.items():
        platform, version, variant = cell_id.split("/")
        r = CellResult(cell_id, platform, "glibc", version, variant, Outcome.OK)
        for scenario in ("ondemand-kat", "no-failure"):
            r.scenarios.append(fixture_result(build, scenario, seconds=0.1))
        out.write_cell(r)
    run = {"id": root.name, "cells": list(builds)}
    (root / "summary.json").write_text(json.dumps({"schema": 1, "run": run}))
    return out

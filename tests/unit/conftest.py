"""Fixtures shared by the unit tests; the builders behind them are in tests/support/harness.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from support.harness import Harness, make_harness

from matrix.assets import REFERENCE_DIR
from matrix.execute.probes import symbolize
from matrix.results.records import CellResult, Run
from matrix.results.store import ResultsDir


@pytest.fixture
def h(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    return make_harness(tmp_path, monkeypatch)


@pytest.fixture(autouse=True)
def fresh_symbol_cache() -> None:
    """The fake engine's image ids repeat from test to test, its files do not."""
    symbolize.forget()


@pytest.fixture(autouse=True)
def no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """fsync is half these tests' time; the atomic temp-file-and-rename stays real."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


@pytest.fixture(scope="session")
def reference_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the committed reference run (assets.REFERENCE_DIR, a real run of the default
    matrix) without its logs: tests read and rewrite the copy, never the committed files."""
    if not any((REFERENCE_DIR / "cells").glob("*.json")):
        pytest.fail(f"no reference run committed at {REFERENCE_DIR} (cells/*.json)")
    dest = tmp_path_factory.mktemp("reference") / "reference"
    shutil.copytree(REFERENCE_DIR, dest, ignore=shutil.ignore_patterns("*.log"))
    return dest


@pytest.fixture(scope="session")
def reference(reference_copy: Path) -> tuple[list[CellResult], Run]:
    """The reference run's cells and run, as stored. Committed data is either right or a
    failure: every cell file must be readable, and the run must name them all."""
    files = ResultsDir(reference_copy).load()
    problems = [str(u) for u in files.unreadable] + [f"missing: {c}" for c in files.missing]
    assert not problems, "the committed reference run is damaged:\n" + "\n".join(problems)
    assert files.run is not None, "the reference run's summary.json names no run"
    assert len(files.results) > 200, f"the reference holds {len(files.results)} cells only"
    return files.results, files.run

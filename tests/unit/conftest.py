"""Fixtures shared by the unit tests; the builders behind them are in harness.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harness import Harness, make_harness


@pytest.fixture
def h(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    return make_harness(tmp_path, monkeypatch)


@pytest.fixture(autouse=True)
def no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """fsync is half these tests' time; the atomic temp-file-and-rename stays real."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)

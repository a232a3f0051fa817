"""Cell results for the report tests, judged by the real judge from the real probe documents
of fixtures/ (a NODELETE build, and the same objects linked without it)."""

from __future__ import annotations

from typing import Any

from matrix.judge.cell import judged
from matrix.model.vocabulary import KNOWN_SCENARIOS, Outcome
from matrix.results.records import CellResult, ScenarioResult
from support.fakes import fixture_doc

ALL = tuple(KNOWN_SCENARIOS)


def fixture_result(
    build: str,
    scenario: str,
    exit_code: int = 0,
    doc: dict[str, Any] | None = None,
    seconds: float = 0.25,
) -> ScenarioResult:
    """One scenario of a fixture build (or the document given), judged the way a run judges
    it (matrix.judge.cell.judged); exit_code > 128 after a complete document: the process
    died afterwards (the judge records exit_after_document)."""
    doc = doc if doc is not None else fixture_doc(build, scenario)
    return judged(scenario, exit_code, False, seconds, doc)


def measured(
    cell_id: str,
    build: str,
    scenarios: tuple[str, ...] = ALL,
    died: tuple[str, ...] = (),
    fingerprint: dict[str, Any] | None = None,
) -> CellResult:
    """A measured cell of PLATFORM/VERSION/VARIANT; the scenarios in died ended with
    SIGSEGV after their document."""
    platform, version, variant = cell_id.split("/")
    r = CellResult(cell_id, platform, "glibc", version, variant, Outcome.OK)
    r.scenarios = [fixture_result(build, s, 139 if s in died else 0) for s in scenarios]
    r.fingerprint = fingerprint or {
        "image": {"id": "sha256:" + "1" * 64},
        "fips_so_sha256": "2" * 64,
        "times": {"started": "2026-01-01T00:00:10+00:00"},
        "host": {"kernel": "6.1.0"},
        "engine": {"version": "26.1"},
    }
    return r


def stopped(cell_id: str, outcome: str, reason: str) -> CellResult:
    """A cell with no scenario results: skipped, not built, the tool's error."""
    platform, version, variant = cell_id.split("/")
    return CellResult(cell_id, platform, "glibc", version, variant, outcome, reason)

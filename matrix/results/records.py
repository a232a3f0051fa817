"""The records of a run, as its results files hold them: one per scenario, one per cell
(its outcome, the scenarios' verdicts with their evidence and the probes' documents, the
fingerprint), and the run itself (summary.json). Reading checks the schema; writing keeps
the files' key order, which readers and diffs of results see."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from matrix.model.cells import Cell
from matrix.model.vocabulary import Outcome, scenario_status


def now() -> str:
    """A timestamp as results files hold them."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


RESULT_SCHEMA = 2  # 2: fingerprint "sources" (a list), scenario "witness"
SUMMARY_SCHEMA = 1


@dataclass
class ScenarioResult:
    scenario: str
    verdict: str
    cause: str
    short: str
    evidence: list[str]
    facts: dict[str, Any]
    exit_code: int | None
    timed_out: bool
    seconds: float
    probe: dict[str, Any] | None  # the probe's own document, kept whole
    # The second witness (probes/fips_twin.py through cffi) in the same image: its exit code,
    # timed_out and document; None where the image has no Python and cffi.
    witness: dict[str, Any] | None = None
    # With --repeat N: every run of the C probe (exit_code, timed_out, probe); the fields
    # above are those of the first run that gave the majority verdict.
    repeats: list[dict[str, Any]] | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @property
    def status(self) -> str:
        """What the reports show: the verdict, or DIED_AFTER_RELOAD (vocabulary)."""
        return scenario_status(self.verdict, self.facts if isinstance(self.facts, dict) else {})


@dataclass
class CellResult:
    cell: str
    platform: str
    libc: str
    version: str
    variant: str
    outcome: str
    reason: str = ""
    scenarios: list[ScenarioResult] = field(default_factory=list)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)
    inputs_key: str = ""

    @classmethod
    def for_cell(cls, cell: Cell, outcome: Outcome, reason: str = "") -> CellResult:
        return cls(
            cell=cell.id,
            platform=cell.platform.name,
            libc=cell.platform.libc,
            version=cell.source.version,
            variant=cell.variant.name,
            outcome=outcome,
            reason=reason,
        )

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["schema"] = RESULT_SCHEMA
        data["scenarios"] = [s.to_json() for s in self.scenarios]
        return data

    @classmethod
    def from_json(cls, data: Any) -> CellResult:
        if not isinstance(data, dict):
            raise ValueError("a cell result must be a JSON object")
        if data.get("schema") != RESULT_SCHEMA:
            raise ValueError(f"result schema {data.get('schema')!r}, expected {RESULT_SCHEMA}")
        fields = {k: v for k, v in data.items() if k not in ("schema", "scenarios")}
        result = cls(**fields)
        result.scenarios = [ScenarioResult(**s) for s in data["scenarios"]]
        return result

    def libc_label(self) -> str:
        """libc name and version as the probe saw it, else the platform's declared libc."""
        for s in self.scenarios:
            libc = (s.probe or {}).get("libc") or {}
            if libc.get("version"):
                return f"{libc.get('name', self.libc)} {libc['version']}"
        return self.libc


def scenarios_of(results: Sequence[CellResult]) -> list[str]:
    """Every scenario the results hold, in first-seen order."""
    seen: list[str] = []
    for r in results:
        seen += [s.scenario for s in r.scenarios if s.scenario not in seen]
    return seen


@dataclass
class EngineInfo:
    version: str = "?"
    api_version: str = "?"
    kernel: str = "?"


@dataclass
class Run:
    """One run of the tool over a results directory (or a merge of several): summary.json's
    "run". Optional fields are written only when known."""

    id: str
    started: str
    tool_version: str
    matrix: str
    matrix_digest: str
    cells: list[str]
    engine: EngineInfo = field(default_factory=EngineInfo)
    merged_from: list[str] | None = None  # a merge: the runs it was made of
    earlier_cells: int | None = None  # cells shown from an earlier run of the directory
    finished: str | None = None
    wall_seconds: float | None = None
    phase_seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "started": self.started,
            "tool_version": self.tool_version,
            "matrix": self.matrix,
            "matrix_digest": self.matrix_digest,
            "cells": list(self.cells),
            "engine": dict(self.engine.__dict__),
        }
        optional = {
            "merged_from": self.merged_from,
            "earlier_cells": self.earlier_cells,
            "finished": self.finished,
            "wall_seconds": self.wall_seconds,
            "phase_seconds": self.phase_seconds or None,
        }
        data.update((k, v) for k, v in optional.items() if v is not None)
        return data

    @classmethod
    def unknown(cls, cells: Sequence[str]) -> Run:
        """The run of a results directory with no readable summary.json: its reports say
        "?" where they would name it."""
        return cls(
            id="?", started="?", tool_version="?", matrix="?", matrix_digest="", cells=list(cells)
        )

    @classmethod
    def from_json(cls, data: Any) -> Run:
        """A run from summary.json; ValueError when it is not one."""
        if not isinstance(data, dict):
            raise ValueError("the run must be a JSON object")
        engine = data.get("engine") or {}
        if not isinstance(engine, dict):
            raise ValueError("the run's engine must be a JSON object")
        cells = data.get("cells", [])
        if not isinstance(cells, list) or not all(isinstance(c, str) for c in cells):
            raise ValueError("the run's cells must be a list of cell ids")
        named = {k: str(data.get(k, "?")) for k in ("id", "started", "tool_version", "matrix")}
        known = {k: str(engine[k]) for k in ("version", "api_version", "kernel") if k in engine}
        return cls(
            **named,
            matrix_digest=str(data.get("matrix_digest", "")),
            cells=cells,
            engine=EngineInfo(**known),
            merged_from=data.get("merged_from"),
            earlier_cells=data.get("earlier_cells"),
            finished=data.get("finished"),
            wall_seconds=data.get("wall_seconds"),
            phase_seconds=dict(data.get("phase_seconds") or {}),
        )

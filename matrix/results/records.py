"""The records of a run, as its results files hold them: one per scenario, one per cell
(its outcome, the scenarios' verdicts with their evidence and the probes' documents, the
fingerprint), and the run itself (summary.json). Reading checks the schema; writing keeps
the files' key order, which readers and diffs of results see."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from matrix.model.cells import Cell
from matrix.model.vocabulary import Outcome, scenario_status


def now() -> str:
    """A timestamp as results files hold them."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


ID_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
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
    # When the C probe's run held a crash line: the stderr lines its attribution reads, and
    # the function names of its addresses, resolved after the run from the image's objects
    # (matrix/execute/probes/symbolize.py); the judge attributes the crash from these alone.
    crash: dict[str, Any] | None = None

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
        """A cell from its JSON; ValueError, saying what is wrong, for anything that is not
        a cell result of this schema with the types every reader relies on. Keys this
        version does not know are ignored (docs/results-schema.md)."""
        if not isinstance(data, dict):
            raise ValueError("not a cell result: the file holds no JSON object")
        schema = data.get("schema")
        if schema != RESULT_SCHEMA:
            raise ValueError(f"schema {schema!r}, this version reads {RESULT_SCHEMA}")
        fields: dict[str, Any] = {}
        for key in ("cell", "platform", "libc", "version", "variant", "outcome"):
            fields[key] = _typed(data, key, str, required=True)
        for key in ("reason", "inputs_key"):
            fields[key] = _typed(data, key, str, default="")
        cell = fields["cell"]
        parts = (fields["platform"], fields["version"], fields["variant"])
        if cell != "/".join(parts):
            raise ValueError(f"cell {_short(cell)} is not its PLATFORM/VERSION/VARIANT")
        if not all(ID_PART.match(part) for part in parts):
            # the id names files: nothing a path, a terminal or a page could read as more
            raise ValueError(
                f"cell {_short(cell)}: each of PLATFORM/VERSION/VARIANT must be letters, "
                "digits and ._+- (100 at most)"
            )
        fields["fingerprint"] = _typed(data, "fingerprint", dict, default={})
        for key, kind in _FINGERPRINT_SHAPES.items():
            if fields["fingerprint"].get(key) is not None:
                _typed(fields["fingerprint"], key, kind, where="fingerprint.")
        logs = _typed(data, "logs", dict, default={})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in logs.items()):
            raise ValueError("logs: want an object of strings")
        fields["logs"] = logs
        scenarios = _typed(data, "scenarios", list, default=[])
        result = cls(**fields)
        result.scenarios = [_scenario(s, i) for i, s in enumerate(scenarios)]
        if result.outcome == Outcome.OK and not result.scenarios:
            # OK means every scenario has a verdict of its own: with none, nothing was measured
            said = f" (its reason: {_short(result.reason)})" if result.reason else ""
            raise ValueError(f"outcome OK, but no scenario results: nothing was measured{said}")
        return result

    def libc_label(self) -> str:
        """libc name and version as the probe saw it, else the platform's declared libc."""
        for s in self.scenarios:
            libc = (s.probe or {}).get("libc")
            if isinstance(libc, dict) and libc.get("version"):
                return f"{libc.get('name', self.libc)} {libc['version']}"
        return self.libc


# What a reader of a cell may rely on: a field of the wrong type makes the file unreadable
# (one clear error) rather than a traceback in some report later.
_NUMBER = (int, float)
_OPTIONAL_INT = (int, type(None))
_OPTIONAL_DICT = (dict, type(None))
_FINGERPRINT_SHAPES: dict[str, type | tuple[type, ...]] = {
    "image": dict,
    "base_image": dict,
    "sources": list,
    "times": dict,
    "matrix": dict,
    "host": dict,
    "engine": dict,
    "libc": dict,
    "discovery": dict,  # an existing image's
    "portable_probe": dict,
}
_SCENARIO_SHAPES: dict[str, type | tuple[type, ...]] = {
    "scenario": str,
    "verdict": str,
    "cause": str,
    "short": str,
    "evidence": list,
    "facts": dict,
    "exit_code": _OPTIONAL_INT,
    "timed_out": bool,
    "seconds": _NUMBER,
    "probe": _OPTIONAL_DICT,
}
_RUN_SHAPES: dict[str, type | tuple[type, ...]] = {  # a witness, and each repeated run
    "exit_code": _OPTIONAL_INT,
    "timed_out": bool,
    "probe": _OPTIONAL_DICT,
}


def _typed(
    data: dict[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    *,
    required: bool = False,
    default: Any = None,
    where: str = "",
) -> Any:
    if key not in data:
        if required:
            raise ValueError(f"{where}{key} is missing")
        return default
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (_NUMBER, int)):
        raise ValueError(f"{where}{key} = {_short(value)}: want {_kind_name(kind)}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", dict: "an object", list: "an array", bool: "true or false"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    words = [names.get(k, "null" if k is type(None) else "a number") for k in kinds]
    return " or ".join(dict.fromkeys(words))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _scenario(data: Any, index: int) -> ScenarioResult:
    where = f"scenarios[{index}]."
    if not isinstance(data, dict):
        raise ValueError(f"scenarios[{index}]: want an object")
    fields = {
        key: _typed(data, key, kind, required=True, where=where)
        for key, kind in _SCENARIO_SHAPES.items()
    }
    if not all(isinstance(line, str) for line in fields["evidence"]):
        raise ValueError(f"{where}evidence: want an array of strings")
    runs = fields["facts"].get("runs")
    if runs is not None and not (
        isinstance(runs, dict) and all(isinstance(runs.get(k), int) for k in ("agree", "total"))
    ):
        raise ValueError(f"{where}facts.runs: want an object with whole numbers agree and total")
    witness = _typed(data, "witness", _OPTIONAL_DICT, where=where)
    if witness is not None and "unavailable" not in witness:
        _run_shape(witness, f"{where}witness.")
    repeats = _typed(data, "repeats", (list, type(None)), where=where)
    for i, run in enumerate(repeats or []):
        if not isinstance(run, dict):
            raise ValueError(f"{where}repeats[{i}]: want an object")
        _run_shape(run, f"{where}repeats[{i}].")
    crash = _typed(data, "crash", _OPTIONAL_DICT, where=where)
    if crash is not None:
        _typed(crash, "lines", list, required=True, where=f"{where}crash.")
        _typed(crash, "symbols", list, default=[], where=f"{where}crash.")
    return ScenarioResult(**fields, witness=witness, repeats=repeats, crash=crash)


def _run_shape(data: dict[str, Any], where: str) -> None:
    for key, kind in _RUN_SHAPES.items():
        _typed(data, key, kind, required=True, where=where)


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
        merged_from = _typed(data, "merged_from", (list, type(None)))
        if merged_from is not None and not all(isinstance(r, str) for r in merged_from):
            raise ValueError("the run's merged_from must be a list of run ids")
        phases = _typed(data, "phase_seconds", _OPTIONAL_DICT) or {}
        if not all(isinstance(v, _NUMBER) for v in phases.values()):
            raise ValueError("the run's phase_seconds must be numbers")
        finished = _typed(data, "finished", (str, type(None)))
        return cls(
            **named,
            matrix_digest=str(data.get("matrix_digest", "")),
            cells=cells,
            engine=EngineInfo(**known),
            merged_from=merged_from,
            earlier_cells=_typed(data, "earlier_cells", _OPTIONAL_INT),
            finished=finished,
            wall_seconds=_typed(data, "wall_seconds", (*_NUMBER, type(None))),
            phase_seconds=dict(phases),
        )

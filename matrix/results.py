"""The results directory: one JSON per cell (written as soon as the cell ends), logs beside
them, a summary and the Markdown table. Every file is written atomically."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matrix.cells import Cell
from matrix.errors import MatrixError
from matrix.redact import Redactor

RESULT_SCHEMA = 2  # 2: fingerprint "sources" (a list), scenario "witness"

# Cell outcomes: OK means every scenario produced a reload verdict of its own.
OK = "OK"
BUILD_FAILED = "BUILD_FAILED"
PROBE_CRASHED = "PROBE_CRASHED"
TIMEOUT = "TIMEOUT"
SKIPPED = "SKIPPED"
ERROR = "ERROR"  # the tool itself failed on this cell; the message says how
FLAKY = "FLAKY"  # with --repeat, some scenario's runs disagreed (k/N in its facts)


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
    def for_cell(cls, cell: Cell, outcome: str, reason: str = "") -> CellResult:
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


class ResultsDir:
    def __init__(self, root: Path, redact: Redactor = lambda text: text) -> None:
        self.root = root
        self.cells_dir = root / "cells"
        self.redact = redact

    def prepare(self) -> None:
        self.cells_dir.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One run at a time per results directory: a second one refuses at once."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+", encoding="utf-8") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                raise MatrixError(
                    f"{self.root} is in use by a run of fips-matrix ({holder}); wait for it to "
                    "finish, or give this run another --results directory"
                ) from None
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()}\n")
            f.flush()
            try:
                yield
            finally:
                f.seek(0)
                f.truncate()

    def cell_path(self, cell_id: str) -> Path:
        return self.cells_dir / f"{cell_id.replace('/', '__')}.json"

    def log_path(self, cell_id: str, kind: str) -> Path:
        return self.cells_dir / f"{cell_id.replace('/', '__')}.{kind}.log"

    def write_cell(self, result: CellResult) -> Path:
        path = self.cell_path(result.cell)
        write_text(path, self.redact(json.dumps(result.to_json(), indent=2) + "\n"))
        return path

    def read_cell(self, cell_id: str) -> CellResult | None:
        """A previous result, or None when missing or unreadable (never trusted half-written)."""
        path = self.cell_path(cell_id)
        try:
            return CellResult.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def all_cells(self) -> Iterator[CellResult]:
        for path in sorted(self.cells_dir.glob("*.json")):
            result = self.read_cell(path.stem.replace("__", "/"))
            if result is not None:
                yield result


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_text(path: Path, text: str) -> None:
    """Temp file in the same directory, fsync, rename: a reader sees the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide results from their readers
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

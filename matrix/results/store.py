"""The results directory: one JSON per cell (written as soon as the cell ends), logs beside
them, the run's summary.json and its reports. Every file is written atomically, and one run
at a time holds a directory. Reading a directory names every file it could not read, and
why: a results directory may come from anywhere, and nothing in it vanishes without a word."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matrix import assets
from matrix.errors import MatrixError
from matrix.files import read_regular, write_text
from matrix.results.records import SUMMARY_SCHEMA, CellResult, Run
from matrix.results.redact import Redactor, keep

SUMMARY_NAME = "summary.json"
MAX_CELL_BYTES = 64 * 2**20  # a cell's JSON is a few hundred KB; more is not a cell


class Unreadable(ValueError):
    """A results file that cannot be read: str() says which file and why."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path
        self.why = why


@dataclass
class RunFiles:
    """What a results directory holds: its run's readable cells, its run (None without a
    summary.json), the files that could not be read, and the cells the run names but no
    file holds (a run that was stopped)."""

    results: list[CellResult]
    run: Run | None
    unreadable: list[Unreadable] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def refuse_unreadable(self, command: str, root: Path) -> None:
        """MatrixError naming every unreadable file, when there is one."""
        if self.unreadable:
            lines = "\n".join(f"  {u}" for u in self.unreadable)
            raise MatrixError(
                f"{command}: {len(self.unreadable)} file(s) in {root} cannot be read, so "
                f"nothing was written:\n{lines}\nRepair or remove them (or run the cells "
                "again), then run again."
            )

    def missing_note(self) -> str:
        return (
            f"{len(self.missing)} cell(s) named by summary.json have no result file (the run "
            f"did not finish them): {', '.join(self.missing)}"
        )


def read_cell_file(path: Path) -> CellResult:
    """One cell file, a regular one, never through a symbolic link (files.read_regular);
    Unreadable saying why not."""
    try:
        data = read_regular(path, MAX_CELL_BYTES)
    except OSError as exc:
        raise Unreadable(path, exc.strerror or str(exc)) from None
    if len(data) > MAX_CELL_BYTES:
        raise Unreadable(path, f"larger than {MAX_CELL_BYTES} bytes: not a cell result")
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise Unreadable(path, f"not UTF-8 ({exc.reason})") from None
    except (ValueError, RecursionError) as exc:
        raise Unreadable(path, f"not valid JSON, cut short or damaged ({exc})") from None
    try:
        return CellResult.from_json(doc)
    except (ValueError, TypeError) as exc:
        raise Unreadable(path, str(exc)) from None


class ResultsDir:
    def __init__(self, root: Path, redact: Redactor = keep) -> None:
        self.root = root
        self.cells_dir = root / "cells"
        self.redact = redact

    def prepare(self) -> None:
        self.cells_dir.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def locked(self, create: bool = True) -> Iterator[None]:
        """One run at a time per results directory: a second one refuses at once. With
        create=False the directory must exist already (a command that only reads and
        rewrites one must not make one out of a mistyped path)."""
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        elif not self.root.is_dir():
            raise MatrixError(f"{self.root}: no such results directory")
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

    @property
    def summary_path(self) -> Path:
        return self.root / SUMMARY_NAME

    def cell_path(self, cell_id: str) -> Path:
        return self.cells_dir / f"{assets.slug(cell_id)}.json"

    def log_path(self, cell_id: str, kind: str) -> Path:
        return self.cells_dir / f"{assets.slug(cell_id)}.{kind}.log"

    def write_cell(self, result: CellResult) -> Path:
        path = self.cell_path(result.cell)
        write_text(path, self.redact(json.dumps(result.to_json(), indent=2) + "\n"))
        return path

    def read_cell(self, cell_id: str) -> CellResult | None:
        """A previous result, or None when missing or unreadable (never trusted half-written):
        for a run deciding whether to measure the cell again."""
        try:
            result = read_cell_file(self.cell_path(cell_id))
        except Unreadable:
            return None
        return result if result.cell == cell_id else None

    def scan(self) -> tuple[dict[str, CellResult], list[Unreadable]]:
        """Every cell file, checked: readable, and named after the cell it holds (a copy
        under another name is refused, naming both files)."""
        found: dict[str, CellResult] = {}
        problems: list[Unreadable] = []
        paths = sorted(self.cells_dir.glob("*.json")) if self.cells_dir.is_dir() else []
        for path in paths:
            try:
                result = read_cell_file(path)
            except Unreadable as exc:
                problems.append(exc)
                continue
            genuine = self.cell_path(result.cell)
            if path.name == genuine.name:
                found[result.cell] = result
            elif genuine.exists() or genuine.is_symlink():
                why = f"holds {result.cell}, as {genuine} does: a duplicate; remove one of them"
                problems.append(Unreadable(path, why))
            else:
                why = f"holds {result.cell}, whose file must be named {genuine.name}"
                problems.append(Unreadable(path, why))
        return found, problems

    def all_cells(self) -> list[CellResult]:
        """The readable cells, whatever run they belong to."""
        return list(self.scan()[0].values())

    def read_run(self) -> tuple[list[CellResult], Run | None]:
        """The run's readable cells and the run: for figures and tests, which may pass over
        what cannot be read. Commands use load(), which names it."""
        files = self.load()
        return files.results, files.run

    def load(self) -> RunFiles:
        """The directory's run and its cells, with every file that could not be read. When
        summary.json names the run's cells, only those are taken: cells/ may keep results
        of other, earlier runs."""
        run: Run | None = None
        problems: list[Unreadable] = []
        if self.summary_path.exists() or self.summary_path.is_symlink():
            try:
                run = _read_summary(self.summary_path)
            except Unreadable as exc:
                problems.append(exc)
        found, unreadable = self.scan()
        if run is None:
            return RunFiles(list(found.values()), None, [*problems, *unreadable])
        named = set(run.cells)
        # a cell of an earlier run that cannot be read is no concern of this run's
        mine = [u for u in unreadable if cell_of(u.path) in named or cell_of(u.path) is None]
        results = [found[c] for c in run.cells if c in found]
        unreadable_ids = {cell_of(u.path) for u in mine}
        missing = [c for c in run.cells if c not in found and c not in unreadable_ids]
        return RunFiles(results, run, [*problems, *mine], missing)

    def write_summary(self, run: Run, cells: Sequence[dict[str, Any]] | None = None) -> Path:
        """summary.json: the run, and once its cells have ended, a line of each."""
        write_text(self.summary_path, self.summary_text(run, cells))
        return self.summary_path

    def summary_text(self, run: Run, cells: Sequence[dict[str, Any]] | None = None) -> str:
        data: dict[str, Any] = {"schema": SUMMARY_SCHEMA, "run": run.to_json()}
        if cells is not None:
            data["cells"] = list(cells)
        return self.redact(json.dumps(data, indent=2) + "\n")

    def rewrite_run(self, run: Run) -> None:
        """summary.json with its run replaced and its cells kept."""
        data = json.loads(read_regular(self.summary_path, MAX_CELL_BYTES).decode("utf-8"))
        self.write_summary(run, data.get("cells"))


def _read_summary(path: Path) -> Run:
    try:
        data = json.loads(read_regular(path, MAX_CELL_BYTES).decode("utf-8"))
    except OSError as exc:
        raise Unreadable(path, exc.strerror or str(exc)) from None
    except (ValueError, RecursionError) as exc:
        raise Unreadable(path, f"not valid JSON, cut short or damaged ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SUMMARY_SCHEMA:
        schema = data.get("schema") if isinstance(data, dict) else None
        raise Unreadable(path, f"schema {schema!r}, this version reads {SUMMARY_SCHEMA}")
    try:
        return Run.from_json(data.get("run"))
    except (ValueError, TypeError) as exc:
        raise Unreadable(path, str(exc)) from None


def cell_of(path: Path) -> str | None:
    """The cell id a cell file's name stands for; None for a name that is no cell file's."""
    if path.parent.name != "cells" or not path.name.endswith(".json"):
        return None
    parts = path.name[: -len(".json")].split("__")
    return "/".join(parts) if len(parts) == 3 and all(parts) else None


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")

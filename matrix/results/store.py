"""The results directory: one JSON per cell (written as soon as the cell ends), logs beside
them, the run's summary.json and its reports. Every file is written atomically, and one run
at a time holds a directory."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from matrix import assets
from matrix.errors import MatrixError
from matrix.results.records import SUMMARY_SCHEMA, CellResult, Run
from matrix.results.redact import Redactor, keep

SUMMARY_NAME = "summary.json"


class ResultsDir:
    def __init__(self, root: Path, redact: Redactor = keep) -> None:
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

    def read_run(self) -> tuple[list[CellResult], Run | None]:
        """The directory's cells and run. When summary.json names the run's cells, only
        those are taken: cells/ may keep results of other, earlier runs."""
        run: Run | None = None
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            run = Run.from_json(json.loads(self.summary_path.read_text(encoding="utf-8"))["run"])
        results = list(self.all_cells())
        if run is not None:
            by_id = {r.cell: r for r in results}
            results = [by_id[c] for c in run.cells if c in by_id]
        return results, run

    def write_summary(self, run: Run, cells: Sequence[dict[str, Any]] | None = None) -> Path:
        """summary.json: the run, and once its cells have ended, a line of each."""
        data: dict[str, Any] = {"schema": SUMMARY_SCHEMA, "run": run.to_json()}
        if cells is not None:
            data["cells"] = list(cells)
        write_text(self.summary_path, self.redact(json.dumps(data, indent=2) + "\n"))
        return self.summary_path

    def rewrite_run(self, run: Run) -> None:
        """summary.json with its run replaced and its cells kept."""
        data = json.loads(self.summary_path.read_text(encoding="utf-8"))
        self.write_summary(run, data.get("cells"))


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

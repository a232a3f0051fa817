"""Merging result directories, as a CI job matrix produces them (one cell per job), into
one report. Runs of different matrix definitions are never mixed. The inputs are data from
elsewhere: a cell's logs are taken only from that input's own cells directory, by the name
the cell's id gives them, never through a symbolic link."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

from matrix.errors import MatrixError
from matrix.files import open_regular
from matrix.results.records import CellResult, Run
from matrix.results.store import ResultsDir, RunFiles

LOG_KIND = re.compile(r"^[a-z]+$")  # build, probe, error


def read_inputs(dirs: Sequence[Path]) -> list[tuple[Path, RunFiles]]:
    """Every input, read and checked before anything is written: a mistyped path, an
    unreadable cell file or a run without its matrix stops the merge."""
    loaded = []
    for path in dirs:
        if not path.is_dir():
            raise MatrixError(f"merge: {path}: no such results directory")
        files = ResultsDir(path).load()
        files.refuse_unreadable("merge", path)
        if not files.results:
            raise MatrixError(f"merge: no cell results in {path / 'cells'}")
        if files.run is None or not files.run.matrix_digest:
            raise MatrixError(f"merge: {path}/summary.json does not name its matrix definition")
        loaded.append((path, files))
    return loaded


def merge(
    loaded: Sequence[tuple[Path, RunFiles]], out: ResultsDir
) -> tuple[list[CellResult], Run, list[str]]:
    """The merged cells (their logs copied into `out`, their files not yet written) and
    run, and a note of each log not taken."""
    seen: dict[str, Path] = {}
    for path, files in loaded:
        for r in files.results:
            if r.cell in seen:
                raise MatrixError(f"merge: {r.cell} is in both {seen[r.cell]} and {path}")
            seen[r.cell] = path
    runs = [files.run for _, files in loaded if files.run is not None]
    digests = {r.matrix_digest for r in runs}
    if len(digests) > 1:
        raise MatrixError(
            "merge: refusing to mix runs of different matrix definitions (digests "
            + ", ".join(sorted(d[:12] for d in digests))
            + ")"
        )
    if any(out.root.resolve() == Path(p).resolve() for p, _ in loaded):
        raise MatrixError("merge: --results must be a directory of its own, not one merged")
    out.prepare()
    notes: list[str] = []
    results = [
        _moved(r, ResultsDir(path), out, notes) for path, files in loaded for r in files.results
    ]
    run = Run(
        id="merged-" + uuid.uuid4().hex[:8],
        merged_from=[r.id for r in runs],
        started=min(r.started for r in runs),
        finished=max(r.finished or "" for r in runs),
        tool_version=runs[0].tool_version,
        matrix=runs[0].matrix,
        matrix_digest=digests.pop(),
        cells=[r.cell for r in results],
        engine=runs[0].engine,
    )
    return results, run, notes


def _moved(result: CellResult, src: ResultsDir, out: ResultsDir, notes: list[str]) -> CellResult:
    """The cell's logs come along, each only from src's cells directory under the name the
    cell's id gives it; its log paths then name the merged directory."""
    logs = {}
    for kind, recorded in result.logs.items():
        if not LOG_KIND.match(kind):
            notes.append(f"{result.cell}: log kind {kind!r} not taken: not a log kind")
            continue
        source = src.log_path(result.cell, kind)
        if Path(recorded).name != source.name:
            notes.append(
                f"{result.cell}: {kind} log {recorded!r} not taken: a log is read only as "
                f"{source.name} in {src.cells_dir}"
            )
            continue
        target = out.log_path(result.cell, kind)
        why = _copy_plain_file(source, target)
        if why:
            notes.append(f"{result.cell}: {kind} log {source} not taken: {why}")
            continue
        logs[kind] = str(target)
    result.logs = logs
    return result


def _copy_plain_file(source: Path, target: Path) -> str:
    """Copies a regular file that is no symbolic link (files.open_regular); why not, or ""."""
    try:
        f = open_regular(source)
    except OSError as exc:
        return exc.strerror or str(exc)
    with f, open(target, "wb") as out:
        shutil.copyfileobj(f, out)
    return ""

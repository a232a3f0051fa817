"""Merging result directories, as a CI job matrix produces them (one cell per job), into
one report. Runs of different matrix definitions are never mixed."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

from matrix.errors import MatrixError
from matrix.results.records import CellResult, Run
from matrix.results.store import ResultsDir


def merge(dirs: Sequence[Path], out: ResultsDir) -> tuple[list[CellResult], Run]:
    loaded: list[tuple[Path, list[CellResult], Run]] = []
    seen: set[str] = set()
    for path in dirs:
        results, run = ResultsDir(path).read_run()
        if not results:
            raise MatrixError(f"merge: no cell results in {path / 'cells'}")
        if run is None or not run.matrix_digest:
            raise MatrixError(f"merge: {path}/summary.json does not name its matrix definition")
        for r in results:
            if r.cell in seen:
                raise MatrixError(f"merge: {r.cell} is in more than one directory")
            seen.add(r.cell)
        loaded.append((path, results, run))
    runs = [run for _, _, run in loaded]
    digests = {r.matrix_digest for r in runs}
    if len(digests) > 1:
        raise MatrixError(
            "merge: refusing to mix runs of different matrix definitions (digests "
            + ", ".join(sorted(d[:12] for d in digests))
            + ")"
        )
    if any(out.root.resolve() == Path(p).resolve() for p in dirs):
        raise MatrixError("merge: --results must be a directory of its own, not one merged")
    out.prepare()
    results = [_moved(r, ResultsDir(path), out) for path, rs, _ in loaded for r in rs]
    for r in results:
        out.write_cell(r)
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
    return results, run


def _moved(result: CellResult, src: ResultsDir, out: ResultsDir) -> CellResult:
    """The cell's logs come along; its log paths then name the merged directory."""
    out.cells_dir.mkdir(parents=True, exist_ok=True)
    logs = {}
    for kind, path in result.logs.items():
        source = Path(path) if Path(path).exists() else src.cells_dir / Path(path).name
        if source.exists():
            target = out.cells_dir / source.name
            shutil.copyfile(source, target)
            logs[kind] = str(target)
    result.logs = logs
    return result

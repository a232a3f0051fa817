"""`fips-matrix publish RUN_DIR --to DIR`: a run's results for readers, such as the committed
reference run (results/reference): every cell's JSON, summary.json, table.md, report.html,
junit.xml (so that a CI can compare with the reference's JUnit directly), the lock and the
bench's figures, without build or probe logs (the cells then link none)
and without this machine's paths. DIR is replaced whole, at once: so it must be new, empty
or an earlier publication, and must not hold the run."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from rich.console import Console

from matrix import assets
from matrix.errors import MatrixError
from matrix.files import umask, write_text
from matrix.report.write import write_reports
from matrix.results.publish import published_cell, published_run, redact_paths
from matrix.results.records import scenarios_of
from matrix.results.store import ResultsDir

COPIED = (assets.LOCK_NAME, assets.BENCH_NAME)  # beside the reports, when the run has them


def main(args: argparse.Namespace, console: Console) -> int:
    src = ResultsDir(args.run_dir)
    if not src.root.is_dir():
        raise MatrixError(f"publish: {src.root}: no such results directory")
    dest: Path = args.to
    if dest.resolve() == src.root.resolve():
        raise MatrixError("publish: --to must be another directory than the run's")
    _check_replaceable(dest, src.root)
    files = src.load()
    files.refuse_unreadable("publish", src.root)
    if files.run is None:
        raise MatrixError(f"publish: {src.summary_path} is missing: whose run is this?")
    if files.missing:
        raise MatrixError(f"publish: {src.root}: {files.missing_note()}; publish a whole run")
    results = [published_cell(r) for r in files.results]
    run = published_run(files.run)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        out = ResultsDir(staging)
        out.prepare()
        for r in results:
            out.write_cell(r)
        write_reports(out, results, run, scenarios_of(results), env={})
        for name in COPIED:
            if (src.root / name).is_file():
                text = (src.root / name).read_text(encoding="utf-8")
                try:
                    json.loads(text)  # only what is what it says it is
                except ValueError as exc:
                    raise MatrixError(f"publish: {src.root / name} is not JSON ({exc})") from exc
                write_text(staging / name, redact_paths(text))
        _replace(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    console.print(f"published {len(results)} cells of run {run.id} into {dest}")
    return 0


def _check_replaceable(dest: Path, run_dir: Path) -> None:
    """DIR is replaced whole, so it may only be new, empty or an earlier publication (a
    results directory: summary.json), and never hold the run being published."""
    if run_dir.resolve().is_relative_to(dest.resolve()):
        raise MatrixError(
            f"publish: --to {dest} holds the run's own directory {run_dir}, which replacing it "
            "would remove: give a directory of its own"
        )
    if dest.exists() and not dest.is_dir():
        raise MatrixError(f"publish: --to {dest} exists and is not a directory")
    if dest.is_dir() and any(dest.iterdir()) and not (dest / "summary.json").is_file():
        raise MatrixError(
            f"publish: --to {dest} is not empty and holds no summary.json, so it is no earlier "
            "publication: it is not replaced; give a new or empty directory"
        )


def _replace(staging: Path, dest: Path) -> None:
    """dest becomes staging: the old copy is moved aside first and removed after."""
    staging.chmod(0o777 & ~umask())  # mkdtemp makes 0700
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        dest.rename(old)
    staging.rename(dest)
    if old is not None:
        shutil.rmtree(old)

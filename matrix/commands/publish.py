"""`fips-matrix publish RUN_DIR --to DIR`: a run's results for readers, such as the committed
reference run (results/reference): every cell's JSON, summary.json, table.md, report.html,
junit.xml (so that a CI can compare with the reference's JUnit directly), the lock and the
bench's figures, without build or probe logs (the cells then link none)
and without this machine's paths. DIR is replaced whole, at once: so it must be new, empty
or an earlier publication holding nothing but the files it lists as its own (summary.json's
"published"), must be no symbolic link, and must not hold the run."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from rich.console import Console

from matrix import assets
from matrix.errors import MatrixError
from matrix.files import read_regular, umask, write_text
from matrix.report.write import write_reports
from matrix.results.publish import published_cell, published_run, redact_paths
from matrix.results.records import scenarios_of
from matrix.results.store import SUMMARY_NAME, ResultsDir, write_json

COPIED = (assets.LOCK_NAME, assets.BENCH_NAME)  # beside the reports, when the run has them
MAX_COPIED_BYTES = 64 * 2**20
PUBLISHED_KEY = "published"  # summary.json's list of the publication's own files


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run's results")
    parser.add_argument(
        "--to",
        type=Path,
        required=True,
        metavar="DIR",
        help="where the published copy goes: a new or empty directory, or an earlier "
        "publication holding only the files its summary.json lists, which is replaced whole "
        "(never a symbolic link)",
    )


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
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    except OSError as exc:
        raise MatrixError(f"publish: --to {dest}: {exc.filename}: {exc.strerror}") from None
    try:
        out = ResultsDir(staging)
        out.prepare()
        for r in results:
            out.write_cell(r)
        write_reports(out, results, run, scenarios_of(results), env={})
        for name in COPIED:
            if (src.root / name).is_file():
                text = _read_json_text(src.root / name)
                write_text(staging / name, redact_paths(text))
        _list_own_files(staging)
        _replace(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    console.print(f"published {len(results)} cells of run {run.id} into {dest}")
    return 0


def _read_json_text(path: Path) -> str:
    """A file copied into the publication: only a regular file, and only JSON."""
    try:
        data = read_regular(path, MAX_COPIED_BYTES)
        if len(data) > MAX_COPIED_BYTES:
            raise MatrixError(
                f"publish: {path} is over {MAX_COPIED_BYTES // 2**20} MiB: not copied"
            )
        text = data.decode("utf-8")
        json.loads(text)  # only what is what it says it is
    except OSError as exc:
        raise MatrixError(f"publish: {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise MatrixError(f"publish: {path} is not JSON ({exc})") from None
    return text


def _list_own_files(staging: Path) -> None:
    """summary.json lists every file of the publication, itself included: what a later
    publish may replace."""
    files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
    summary = staging / SUMMARY_NAME
    data = json.loads(summary.read_text(encoding="utf-8"))
    data[PUBLISHED_KEY] = files
    write_json(summary, data)


def _own_files(dest: Path) -> set[str] | None:
    """The files an earlier publication in dest says it wrote; None when dest holds no
    publication's summary.json. One written before publications listed their files is
    known by its shape: the reports and copies at the top, cell files under cells/."""
    try:
        data = json.loads(read_regular(dest / SUMMARY_NAME, MAX_COPIED_BYTES).decode("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "run" not in data:
        return None
    listed = data.get(PUBLISHED_KEY)
    if isinstance(listed, list) and all(isinstance(name, str) for name in listed):
        return set(listed)
    cells = {f"cells/{p.name}" for p in (dest / "cells").glob("*.json")}
    return cells | {SUMMARY_NAME, "table.md", "report.html", *COPIED}


def _not_own(dest: Path, own: set[str]) -> list[str]:
    """What in dest is not a regular file the publication lists, nor a directory holding
    one (links are not followed): what replacing dest would take from its owner."""
    holding = {p.as_posix() for o in own for p in PurePosixPath(o).parents if p.parts}
    found = []
    for top, dirs, files in os.walk(dest):
        for name in sorted([*dirs, *files]):
            path = Path(top, name)
            rel = path.relative_to(dest).as_posix()
            if path.is_symlink():
                found.append(f"{rel} (a symbolic link)")
            elif path.is_dir():
                found += [] if rel in holding else [rel + "/"]
            elif rel not in own or not path.is_file():
                found.append(rel)
        dirs[:] = [d for d in dirs if Path(top, d).relative_to(dest).as_posix() in holding]
    return found


def _check_replaceable(dest: Path, run_dir: Path) -> None:
    """DIR is replaced whole, so it may only be new, empty or an earlier publication holding
    only its own files, never a symbolic link (replaced, it would be the link that goes),
    and never hold the run being published."""
    if dest.is_symlink():
        raise MatrixError(
            f"publish: --to {dest} is a symbolic link: not followed, not replaced; give the "
            "directory itself"
        )
    if run_dir.resolve().is_relative_to(dest.resolve()):
        raise MatrixError(
            f"publish: --to {dest} holds the run's own directory {run_dir}, which replacing it "
            "would remove: give a directory of its own"
        )
    if dest.exists() and not dest.is_dir():
        raise MatrixError(f"publish: --to {dest} exists and is not a directory")
    above = next(p for p in dest.absolute().parents if p.exists() or p.is_symlink())
    if not above.is_dir():
        raise MatrixError(f"publish: --to {dest}: {above} is not a directory")
    if not dest.is_dir() or not any(dest.iterdir()):
        return
    own = _own_files(dest)
    if own is None:
        raise MatrixError(
            f"publish: --to {dest} is not empty and holds no summary.json of a publication, so "
            "it is no earlier publication: it is not replaced; give a new or empty directory"
        )
    others = _not_own(dest, own)
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        raise MatrixError(
            f"publish: --to {dest} holds what no publication wrote ({shown}): it is not "
            "replaced; move that away, or give a new or empty directory"
        )


def _replace(staging: Path, dest: Path) -> None:
    """dest becomes staging: the old copy is moved aside first (into a directory of a new
    name, so nothing of the user's is in the way) and removed after."""
    staging.chmod(0o777 & ~umask())  # mkdtemp makes 0700
    if not dest.exists():
        staging.rename(dest)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old.", dir=dest.parent))
    old = aside / dest.name
    dest.rename(old)
    try:
        staging.rename(dest)
    except BaseException:
        old.rename(dest)
        aside.rmdir()
        raise
    shutil.rmtree(aside)

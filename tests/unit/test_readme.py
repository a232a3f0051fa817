"""The README's "What it measured here" section is made from the committed reference run
(`fips-matrix report results/reference --readme README.md`): these tests fail when the two
disagree, and show that the check would catch a difference."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from matrix import cli
from matrix.assets import REFERENCE_DIR
from matrix.errors import MatrixError
from matrix.report.readme import BEGIN, END, readme_section, rewrite_readme, section_of
from matrix.results.records import CellResult, Run

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
NAME = os.path.relpath(REFERENCE_DIR, REPO)  # as the README names it: results/reference


def test_the_readme_says_what_the_reference_run_says(
    reference: tuple[list[CellResult], Run],
) -> None:
    results, run = reference
    written = section_of(README.read_text(encoding="utf-8"))
    assert written is not None, f"README.md lacks the markers {BEGIN} ... {END}"
    expected = readme_section(results, run, NAME)
    assert written == expected, (
        "README.md and the reference run disagree; make the section again with "
        f"`fips-matrix report {NAME} --readme README.md`"
    )


def test_a_changed_reference_no_longer_matches_and_the_command_rewrites_it(
    tmp_path: Path, reference_copy: Path
) -> None:
    root = tmp_path / "repo"
    ref = root / NAME
    shutil.copytree(reference_copy, ref)
    readme = root / "README.md"
    readme.write_text(f"# title\n\nbefore\n\n{BEGIN}\nstale\n{END}\n\nafter\n", encoding="utf-8")
    assert cli.main(["report", str(ref), "--readme", str(readme)]) == 0
    first = readme.read_text(encoding="utf-8")
    assert first.startswith("# title\n\nbefore\n\n") and first.endswith("\n\nafter\n")
    assert section_of(first) == section_of(README.read_text(encoding="utf-8"))
    assert not rewrite_readme(readme, ref)  # nothing changed: nothing written

    # one cell's ondemand-kat turns out differently: the README no longer matches
    cells = {p: json.loads(p.read_text(encoding="utf-8")) for p in (ref / "cells").glob("*.json")}
    path, cell = next(
        (p, c) for p, c in sorted(cells.items()) if c["scenarios"] and c["variant"] == "default"
    )
    cell["scenarios"][0]["verdict"] = "CLEAN_RELOAD"
    path.write_text(json.dumps(cell), encoding="utf-8")
    assert rewrite_readme(readme, ref)
    assert section_of(readme.read_text(encoding="utf-8")) != section_of(first)


def test_readme_leaves_the_results_directory_as_it_is(tmp_path: Path, reference_copy: Path) -> None:
    ref = tmp_path / "ref"
    shutil.copytree(reference_copy, ref)
    before = {p: p.stat().st_mtime_ns for p in ref.rglob("*")}
    readme = tmp_path / "README.md"
    readme.write_text(f"{BEGIN}\n{END}\n", encoding="utf-8")
    assert cli.main(["report", str(ref), "--readme", str(readme)]) == 0
    assert {p: p.stat().st_mtime_ns for p in ref.rglob("*")} == before


def test_a_readme_without_markers_is_refused(tmp_path: Path, reference_copy: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n", encoding="utf-8")
    with pytest.raises(MatrixError, match="has no section marked"):
        rewrite_readme(readme, reference_copy)
    assert readme.read_text(encoding="utf-8") == "no markers here\n"

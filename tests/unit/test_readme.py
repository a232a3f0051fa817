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
from matrix.assets import DEFAULT_MATRIX, REFERENCE_DIR
from matrix.bench import readme as speed
from matrix.errors import MatrixError
from matrix.model.cells import expand
from matrix.model.definition import load_definition
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


def test_the_reference_run_is_a_run_of_the_default_matrix_as_it_stands(
    reference: tuple[list[CellResult], Run],
) -> None:
    # The README promises that `nox -s matrix` measures what the reference shows: a change
    # to default.toml without a new reference run would break that promise unseen.
    results, run = reference
    definition = load_definition(DEFAULT_MATRIX)
    assert run.matrix_digest == definition.digest, (
        "results/reference was made from another default.toml; run `nox -s bench` and "
        "`fips-matrix publish` again"
    )
    assert sorted(r.cell for r in results) == sorted(c.id for c in expand(definition))


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


def test_the_readmes_speed_figures_are_the_reference_runs_bench_json() -> None:
    text = README.read_text(encoding="utf-8")
    written = section_of(text, speed.BEGIN, speed.END)
    assert written is not None, f"README.md lacks the markers {speed.BEGIN} ... {speed.END}"
    assert written == speed.speed_section(README, REFERENCE_DIR).text, (
        "README.md's speed figures and the reference run's bench.json disagree; make them "
        f"again with `fips-matrix report {NAME} --readme README.md`"
    )
    figures = json.loads((REFERENCE_DIR / speed.BENCH_NAME).read_text(encoding="utf-8"))
    assert f"{figures['cold']['wall_over_L']}" in written


def test_a_changed_bench_json_is_written_into_the_readme_and_other_sections_stay(
    tmp_path: Path, reference_copy: Path
) -> None:
    ref = tmp_path / "reference"
    shutil.copytree(reference_copy, ref)
    readme = tmp_path / "README.md"
    readme.write_text(
        f"{BEGIN}\n{END}\n\nspeed:\n{speed.BEGIN}\nstale\n{speed.END}\nend\n", encoding="utf-8"
    )
    assert cli.main(["report", str(ref), "--readme", str(readme)]) == 0
    first = readme.read_text(encoding="utf-8")
    assert "stale" not in first and first.endswith(f"{speed.END}\nend\n")
    bench = json.loads((ref / "bench.json").read_text(encoding="utf-8"))
    bench["cold"]["wall_over_L"] = 9.875
    (ref / "bench.json").write_text(json.dumps(bench), encoding="utf-8")
    assert rewrite_readme(readme, ref, [speed.speed_section(readme, ref)])
    again = readme.read_text(encoding="utf-8")
    assert "9.875" in again and section_of(again) == section_of(first)
    (ref / "bench.json").unlink()  # none: the section says so, it does not keep old figures
    assert rewrite_readme(readme, ref, [speed.speed_section(readme, ref)])
    assert "No readable `reference/bench.json`" in readme.read_text(encoding="utf-8")


def test_a_readme_without_markers_is_refused(tmp_path: Path, reference_copy: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n", encoding="utf-8")
    with pytest.raises(MatrixError, match="has no section marked"):
        rewrite_readme(readme, reference_copy)
    assert readme.read_text(encoding="utf-8") == "no markers here\n"

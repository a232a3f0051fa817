"""The generated sections are made from the committed reference run (`fips-matrix report
results/reference --readme README.md --readme docs/speed.md`): the README's "What it measured
here" and docs/speed.md's bench figures. These tests fail when a section and the reference run
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
from matrix.readme import sections, update
from matrix.report.readme import BEGIN, END, readme_section, section_of
from matrix.report.wrap import WIDTH
from matrix.results.records import CellResult, Run

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SPEED = REPO / "docs" / "speed.md"
NAME = os.path.relpath(REFERENCE_DIR, REPO)  # as the README names it: results/reference
COMMAND = f"fips-matrix report {NAME} --readme README.md --readme docs/speed.md"


def test_the_readme_says_what_the_reference_run_says(
    reference: tuple[list[CellResult], Run],
) -> None:
    results, run = reference
    written = section_of(README.read_text(encoding="utf-8"))
    assert written is not None, f"README.md lacks the markers {BEGIN} ... {END}"
    expected = readme_section(results, run, NAME)
    assert written == expected, (
        f"README.md and the reference run disagree; make the section again with `{COMMAND}`"
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
    assert update([readme], ref) == [False]  # nothing changed: nothing written

    # one cell's ondemand-kat turns out differently: the README no longer matches
    cells = {p: json.loads(p.read_text(encoding="utf-8")) for p in (ref / "cells").glob("*.json")}
    path, cell = next(
        (p, c) for p, c in sorted(cells.items()) if c["scenarios"] and c["variant"] == "default"
    )
    cell["scenarios"][0]["verdict"] = "CLEAN_RELOAD"
    path.write_text(json.dumps(cell), encoding="utf-8")
    assert update([readme], ref) == [True]
    assert section_of(readme.read_text(encoding="utf-8")) != section_of(first)


def test_readme_leaves_the_results_directory_as_it_is(tmp_path: Path, reference_copy: Path) -> None:
    ref = tmp_path / "ref"
    shutil.copytree(reference_copy, ref)
    before = {p: p.stat().st_mtime_ns for p in ref.rglob("*")}
    readme = tmp_path / "README.md"
    readme.write_text(f"{BEGIN}\n{END}\n", encoding="utf-8")
    assert cli.main(["report", str(ref), "--readme", str(readme)]) == 0
    assert {p: p.stat().st_mtime_ns for p in ref.rglob("*")} == before


@pytest.mark.parametrize(
    ("path", "begin", "end"),
    [(README, BEGIN, END), (SPEED, speed.BEGIN, speed.END)],
    ids=["README.md", "docs/speed.md"],
)
def test_each_files_generated_section_is_what_the_reference_run_makes(
    path: Path, begin: str, end: str
) -> None:
    text = path.read_text(encoding="utf-8")
    assert section_of(text, begin, end) is not None, f"{path.name} lacks the markers {begin}"
    made = {s.begin: s.text for s in sections(path, REFERENCE_DIR)}
    assert section_of(text, begin, end) == made[begin], (
        f"{path.name} and the reference run disagree; make it again with `{COMMAND}`"
    )


def test_the_speed_figures_are_the_bench_json_and_only_in_the_docs_page() -> None:
    written = section_of(SPEED.read_text(encoding="utf-8"), speed.BEGIN, speed.END)
    figures = json.loads((REFERENCE_DIR / speed.BENCH_NAME).read_text(encoding="utf-8"))
    assert written is not None and f"{figures['cold']['wall_over_L']}" in written
    assert "`../results/reference/bench.json`" in written  # named from where the page is
    assert section_of(README.read_text(encoding="utf-8"), speed.BEGIN, speed.END) is None


def test_the_readmes_generated_prose_fits_a_screen() -> None:
    written = section_of(README.read_text(encoding="utf-8"))
    assert written is not None
    long = [ln for ln in written.splitlines() if len(ln) > WIDTH and not ln.startswith("|")]
    assert long == []


def test_no_readme_line_but_a_table_row_is_wider_than_a_screen() -> None:
    # a Markdown table row cannot wrap; everything else can (the quick start's install line
    # is the widest: one command a reader copies whole)
    lines = README.read_text(encoding="utf-8").splitlines()
    assert [ln for ln in lines if len(ln) > 200 and not ln.startswith("|")] == []


def test_a_changed_bench_json_is_written_into_the_page_and_other_sections_stay(
    tmp_path: Path, reference_copy: Path
) -> None:
    ref = tmp_path / "reference"
    shutil.copytree(reference_copy, ref)
    readme, page = tmp_path / "README.md", tmp_path / "speed.md"
    readme.write_text(f"{BEGIN}\nstale\n{END}\n", encoding="utf-8")
    page.write_text(f"speed:\n{speed.BEGIN}\nstale\n{speed.END}\nend\n", encoding="utf-8")
    args = ["report", str(ref), "--readme", str(readme), "--readme", str(page)]
    assert cli.main(args) == 0
    first = page.read_text(encoding="utf-8")
    assert "stale" not in first and first.endswith(f"{speed.END}\nend\n")
    assert "stale" not in readme.read_text(encoding="utf-8")
    bench = json.loads((ref / "bench.json").read_text(encoding="utf-8"))
    bench["cold"]["wall_over_L"] = 9.875
    (ref / "bench.json").write_text(json.dumps(bench), encoding="utf-8")
    assert update([readme, page], ref) == [False, True]
    assert "9.875" in page.read_text(encoding="utf-8")
    (ref / "bench.json").unlink()  # none: the section says so, it does not keep old figures
    assert update([page], ref) == [True]
    assert "No readable `reference/bench.json`" in page.read_text(encoding="utf-8")


def test_one_file_without_markers_stops_every_file_unwritten(
    tmp_path: Path, reference_copy: Path
) -> None:
    readme, other = tmp_path / "README.md", tmp_path / "other.md"
    readme.write_text(f"{BEGIN}\nstale\n{END}\n", encoding="utf-8")
    other.write_text("no markers here\n", encoding="utf-8")
    with pytest.raises(MatrixError, match=r"other\.md has no section marked"):
        update([readme, other], reference_copy)
    assert readme.read_text(encoding="utf-8") == f"{BEGIN}\nstale\n{END}\n"


def test_a_readme_without_markers_is_refused(tmp_path: Path, reference_copy: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n", encoding="utf-8")
    with pytest.raises(MatrixError, match="has no section marked"):
        update([readme], reference_copy)
    assert readme.read_text(encoding="utf-8") == "no markers here\n"

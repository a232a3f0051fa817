"""`plan --changed`: a pull request runs the cells its change reaches, and only those."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from support.harness import write_run

from matrix import assets, cli

DEFAULT = assets.DEFAULT_MATRIX.read_text()


def plan(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    changed: list[str],
    *extra: str,
) -> list[str]:
    listing = tmp_path / "changed.txt"
    listing.write_text("\n".join(changed) + "\n")
    assert cli.main(["plan", "--changed", str(listing), *extra]) == 0
    return capsys.readouterr().out.split()


def test_a_dockerfile_reaches_the_platforms_built_from_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cells = plan(tmp_path, capsys, ["dockerfiles/musl.Dockerfile", "README.md"])
    assert cells and {c.split("/")[0] for c in cells} == {"musl-debian-12", "musl-debian-13"}


def test_the_probe_reaches_every_cell(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plan"]) == 0
    every = capsys.readouterr().out.split()
    assert plan(tmp_path, capsys, ["probes/fips_probe.c"]) == every


def test_the_matrix_file_reaches_its_new_and_changed_cells(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tmp_path / "before.toml"
    # before the change debian-13 had another base image and musl-debian-13 did not exist
    text = DEFAULT.replace('base_image = "debian:trixie"', 'base_image = "debian:trixie-old"', 1)
    start = text.index("[platforms.musl-debian-13]")
    end = text.index("\n[", start + 1)
    assert 'base_image = "debian:trixie-old"' in text
    before.write_text(text[:start] + text[end + 1 :])
    cells = plan(tmp_path, capsys, ["matrix/default.toml"], "--matrix-before", str(before))
    assert cells and {c.split("/")[0] for c in cells} == {"debian-13", "musl-debian-13"}


def test_a_change_that_reaches_no_cell_plans_no_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GitHub refuses an empty job matrix: nothing is printed, and the workflow skips the jobs
    assert plan(tmp_path, capsys, ["README.md", "matrix/cli.py"], "--format", "github") == []


def test_changed_paths_from_standard_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("dockerfiles/musl.Dockerfile\n"))
    assert cli.main(["plan", "--changed", "-", "--format", "github", "--per", "platform"]) == 0
    jobs = json.loads(capsys.readouterr().out)["include"]
    assert [j["slug"] for j in jobs] == ["musl-debian-12", "musl-debian-13"]


def test_diff_only_compares_the_cells_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    write_run(old, {"debian-12/3.0.20/no-pinshared": "unpinned", "debian-13/3.0.20/x": "unpinned"})
    write_run(new, {"debian-12/3.0.20/no-pinshared": "nodelete", "debian-13/3.0.20/x": "unpinned"})
    assert cli.main(["diff", str(old), str(new), "--only", "debian-13/*"]) == 0
    assert "no verdict changed" in capsys.readouterr().out
    # the cell outside the selection is still compared without --only: it got worse
    assert cli.main(["diff", str(old), str(new)]) == 1


def test_the_skew_dockerfile_reaches_the_skew_cells_and_the_portable_one_the_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cells = plan(tmp_path, capsys, ["dockerfiles/skew.Dockerfile"])
    assert cells and all("/fips-" in c for c in cells)  # the default's skew variants only
    matrix = tmp_path / "images.toml"
    matrix.write_text(
        'schema = 1\nscenarios = ["ondemand-kat"]\n\n[platforms.app]\nimage = "app:1"\n'
    )
    assert plan(
        tmp_path, capsys, ["dockerfiles/portable-probe.Dockerfile"], "--matrix", str(matrix)
    ) == ["app/image/as-is"]


def test_a_matrix_before_that_is_empty_or_no_longer_loads_counts_every_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["plan"]) == 0
    every = capsys.readouterr().out.split()
    for text in ("", "schema = 1\nnot toml ["):
        before = tmp_path / "before.toml"
        before.write_text(text)
        args = ["matrix/default.toml"]
        assert plan(tmp_path, capsys, args, "--matrix-before", str(before)) == every

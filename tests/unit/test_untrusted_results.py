"""A results directory comes from anywhere (a CI artifact, a colleague, a fanned-out job):
report, merge, diff and publish read it as data that may be hostile or broken. Nothing in it
is trusted to name files elsewhere, and nothing in it vanishes without a word."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from support.harness import write_run

from matrix import cli
from matrix.files import write_atomic
from matrix.results.store import ResultsDir

DEFAULT = "debian-12/3.0.20/default"
UNPINNED = "debian-12/3.0.20/no-pinshared"


def two_runs(tmp_path: Path) -> tuple[ResultsDir, ResultsDir]:
    """Two jobs' results of one matrix, ready to merge."""
    a = write_run(tmp_path / "a", {DEFAULT: "nodelete"})
    b = write_run(tmp_path / "b", {UNPINNED: "unpinned"})
    for out in (a, b):
        summary = json.loads(out.summary_path.read_text())
        summary["run"]["matrix_digest"] = "d" * 64
        out.summary_path.write_text(json.dumps(summary))
    return a, b


def set_logs(out: ResultsDir, cell: str, logs: dict[str, str]) -> None:
    path = out.cell_path(cell)
    data = json.loads(path.read_text())
    data["logs"] = logs
    path.write_text(json.dumps(data))


# --- merge takes logs only from the input's own cells directory ---------------------------


def test_merge_does_not_copy_a_host_file_a_cell_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = two_runs(tmp_path)
    secret = tmp_path / "host-secret.txt"
    secret.write_text("a file of the host, not of any results directory")
    set_logs(a, DEFAULT, {"probe": str(secret)})
    merged = tmp_path / "merged"
    assert cli.main(["merge", str(a.root), str(b.root), "--results", str(merged)]) == 0
    out = capsys.readouterr().out
    assert f"probe log {str(secret)!r} not taken" in out
    for path in merged.rglob("*"):
        if path.is_file():
            assert "a file of the host" not in path.read_text(errors="replace"), path
    cell = json.loads((merged / "cells" / "debian-12__3.0.20__default.json").read_text())
    assert cell["logs"] == {}
    assert "host-secret" not in (merged / "report.html").read_text()


def test_merge_takes_the_inputs_own_log_not_the_current_directorys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = two_runs(tmp_path)
    name = a.log_path(DEFAULT, "probe").name
    a.log_path(DEFAULT, "probe").write_text("the input's own log")
    here = tmp_path / "elsewhere"
    (here / "results/latest/cells").mkdir(parents=True)
    (here / "results/latest/cells" / name).write_text("the current directory's log")
    set_logs(a, DEFAULT, {"probe": f"results/latest/cells/{name}"})  # as a run records it
    monkeypatch.chdir(here)
    merged = tmp_path / "merged"
    assert cli.main(["merge", str(a.root), str(b.root), "--results", str(merged)]) == 0
    cell = json.loads((merged / "cells" / "debian-12__3.0.20__default.json").read_text())
    assert Path(cell["logs"]["probe"]).read_text() == "the input's own log"
    assert Path(cell["logs"]["probe"]).parent == merged / "cells"


def test_merge_does_not_follow_a_symbolic_link_in_the_cells_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = two_runs(tmp_path)
    secret = tmp_path / "host-secret.txt"
    secret.write_text("a file of the host")
    log = a.log_path(DEFAULT, "probe")
    log.symlink_to(secret)
    set_logs(a, DEFAULT, {"probe": str(log), "../../x": str(log)})
    merged = tmp_path / "merged"
    assert cli.main(["merge", str(a.root), str(b.root), "--results", str(merged)]) == 0
    out = capsys.readouterr().out
    assert "not taken: a symbolic link" in out and "not a log kind" in out
    assert not (merged / "cells" / log.name).exists()
    assert not any(p.is_symlink() for p in merged.rglob("*"))


# --- a cell file's name must match its cell ------------------------------------------------


def test_a_stray_copy_of_a_cell_file_is_an_error_naming_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = write_run(tmp_path / "r", {DEFAULT: "nodelete"})
    genuine = out.cell_path(DEFAULT)
    copy = json.loads(genuine.read_text())
    copy["scenarios"][0]["verdict"] = "CLEAN_RELOAD"  # a copy that says something else
    (out.cells_dir / "zzz-copy.json").write_text(json.dumps(copy))
    before = genuine.read_bytes()
    assert cli.main(["report", str(out.root)]) == 2
    text = capsys.readouterr().out
    assert "zzz-copy.json" in text and str(genuine) in text and "duplicate" in text
    assert genuine.read_bytes() == before  # nothing rewritten
    assert not (out.root / "report.html").exists()
    (out.cells_dir / "zzz-copy.json").unlink()
    (out.cells_dir / "renamed.json").write_text(genuine.read_text())
    genuine.unlink()
    assert cli.main(["report", str(out.root)]) == 2
    assert "renamed.json: holds debian-12/3.0.20/default, whose file must be named" in (
        capsys.readouterr().out
    )


# --- nothing vanishes ---------------------------------------------------------------------


def truncate(path: Path) -> None:
    path.write_text(path.read_text()[:500])


def test_report_and_merge_name_a_truncated_cell_and_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = two_runs(tmp_path)
    truncate(b.cell_path(UNPINNED))
    assert cli.main(["report", str(b.root)]) == 2
    text = capsys.readouterr().out
    assert "debian-12__3.0.20__no-pinshared.json: not valid JSON, cut short or damaged" in text
    merged = tmp_path / "merged"
    assert cli.main(["merge", str(a.root), str(b.root), "--results", str(merged)]) == 2
    assert "debian-12__3.0.20__no-pinshared.json: not valid JSON" in capsys.readouterr().out
    assert not merged.exists()  # nothing written


def test_older_schema_cells_are_named_with_their_schema_not_called_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = write_run(tmp_path / "r", {DEFAULT: "nodelete", UNPINNED: "unpinned"})
    for cell in (DEFAULT, UNPINNED):
        data = json.loads(out.cell_path(cell).read_text())
        data["schema"] = 1
        out.cell_path(cell).write_text(json.dumps(data))
    assert cli.main(["report", str(out.root)]) == 2
    text = capsys.readouterr().out
    assert "no cell results" not in text
    assert text.count("schema 1, this version reads 2") == 2


def test_diff_counts_an_unreadable_cell_as_worse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write_run(tmp_path / "old", {DEFAULT: "nodelete", UNPINNED: "unpinned"})
    new = write_run(tmp_path / "new", {DEFAULT: "nodelete", UNPINNED: "unpinned"})
    assert cli.main(["diff", str(old.root), str(new.root)]) == 0
    capsys.readouterr()
    truncate(new.cell_path(UNPINNED))
    assert cli.main(["diff", str(old.root), str(new.root)]) == 1
    text = capsys.readouterr().out
    assert f"unreadable, counted as worse: {UNPINNED} (NEW): not valid JSON" in text
    assert "cells gone" not in text
    new.cell_path(UNPINNED).unlink()  # named by the run, but gone: also worse
    assert cli.main(["diff", str(old.root), str(new.root)]) == 1
    assert "no file holds it" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["report", "diff", "merge", "publish"])
def test_a_mistyped_path_is_not_made(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_run(tmp_path / "good", {DEFAULT: "nodelete"})
    typo = tmp_path / "resluts"
    argv = {
        "report": ["report", str(typo)],
        "diff": ["diff", str(good.root), str(typo)],
        "merge": ["merge", str(typo), "--results", str(tmp_path / "merged")],
        "publish": ["publish", str(typo), "--to", str(tmp_path / "pub")],
    }[command]
    assert cli.main(argv) == 2
    assert "resluts: no such results directory" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good"]


# --- publish: what readers get ------------------------------------------------------------


def test_publish_leaves_out_logs_and_machine_paths(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", {DEFAULT: "nodelete", "debian-12/3.0.9/default": "nodelete"})
    skipped = json.loads(run.cell_path("debian-12/3.0.9/default").read_text())
    cache = "/tmp/fips-matrix-bench-x1y2/cache/sources/openssl-3.0.9-eb1ab0478147.tar.gz"
    skipped.update(outcome="SKIPPED", reason=f"source: cannot fetch; place it at {cache}")
    skipped["scenarios"] = []
    run.cell_path("debian-12/3.0.9/default").write_text(json.dumps(skipped))
    run.log_path(DEFAULT, "probe").write_text("a log")
    set_logs(run, DEFAULT, {"probe": str(run.log_path(DEFAULT, "probe"))})
    summary = json.loads(run.summary_path.read_text())
    summary["run"]["matrix"] = "/home/someone/checkout/matrix/default.toml"
    run.summary_path.write_text(json.dumps(summary))
    dest = tmp_path / "reference"
    assert cli.main(["publish", str(run.root), "--to", str(dest)]) == 0
    (dest / "stale.txt").write_text("from the last publication")  # and listed as its own:
    earlier = json.loads((dest / "summary.json").read_text())
    earlier["published"].append("stale.txt")
    (dest / "summary.json").write_text(json.dumps(earlier))

    assert cli.main(["publish", str(run.root), "--to", str(dest)]) == 0  # replaced whole
    names = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert names == [
        "cells/debian-12__3.0.20__default.json",
        "cells/debian-12__3.0.9__default.json",
        "junit.xml",  # the run's own, with no baseline: for a CI to compare with
        "report.html",
        "summary.json",
        "table.md",
    ]
    for name in names:
        text = (dest / name).read_text()
        assert "/tmp/fips-matrix-bench" not in text and "/home/someone" not in text, name
    assert "<cache>/sources/openssl-3.0.9-eb1ab0478147.tar.gz" in (dest / "table.md").read_text()
    cell = json.loads((dest / "cells/debian-12__3.0.20__default.json").read_text())
    assert cell["logs"] == {}
    assert json.loads((dest / "summary.json").read_text())["run"]["matrix"] == (
        "default.toml (built in)"
    )
    assert ".log" not in (dest / "report.html").read_text()
    junit = (dest / "junit.xml").read_text()
    assert '<testcase classname="fips-matrix.debian-12/3_0_20/default"' in junit
    assert 'name="baseline"' not in junit and ".log" not in junit
    assert cli.main(["diff", str(run.root), str(dest)]) == 0  # the same verdicts


@pytest.mark.parametrize("where", ["another directory", "a results directory holding the run"])
def test_publish_never_replaces_what_is_no_earlier_publication(
    tmp_path: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--to is replaced whole: a directory that is no results directory (a typo, a home
    directory), or one that holds the run itself, is refused and left as it was."""
    if where == "another directory":
        run = write_run(tmp_path / "run", {DEFAULT: "nodelete"})
        dest = tmp_path / "home"
        dest.mkdir()
        (dest / "notes.txt").write_text("someone's file")
        message = "holds no summary.json"
    else:
        dest = write_run(tmp_path / "outer", {UNPINNED: "unpinned"}).root
        run = write_run(dest / "inner", {DEFAULT: "nodelete"})
        message = "holds the run's own directory"
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert cli.main(["publish", str(run.root), "--to", str(dest)]) == 2
    assert message in capsys.readouterr().out
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


# --- files as the user's umask makes them, and durable ------------------------------------


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_results_files_follow_the_umask(tmp_path: Path, mask: int, mode: int) -> None:
    old = os.umask(mask)
    try:
        write_atomic(tmp_path / "f.json", b"{}")
        out = write_run(tmp_path / "r", {DEFAULT: "nodelete"})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.json").stat().st_mode) == mode
    assert stat.S_IMODE(out.cell_path(DEFAULT).stat().st_mode) == mode


def test_the_directory_is_synced_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[tuple[bool, str]] = []

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        synced.append((stat.S_ISDIR(info.st_mode), os.readlink(f"/proc/self/fd/{fd}")))

    out = write_run(tmp_path / "r", {})
    monkeypatch.setattr(os, "fsync", fsync)
    write_run(out.root, {DEFAULT: "nodelete"})  # a cell file, as a run writes it
    first_cell = next(i for i, (_, name) in enumerate(synced) if name.endswith(".tmp"))
    assert synced[first_cell][0] is False  # the file's data first
    assert synced[first_cell + 1] == (True, str(out.cells_dir))  # then its directory

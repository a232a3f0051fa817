"""Hostile inputs against the commands as a user runs them (issue 21, round three): nothing a
results directory or an image holds may delete a user's files, hang a command, drive the
terminal, break a report half-way, or pass a CI gate on what was not measured."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.fakes import FakeDockerClient, ProbePlan, discovery_bytes
from support.harness import FACTS, write_run
from support.made_results import stopped

from matrix import cli
from matrix.execute import engine
from matrix.report import write
from matrix.results.store import ResultsDir

DEFAULT = "debian-12/3.0.20/default"
UNPINNED = "debian-12/3.0.20/no-pinshared"
SPOOF = "\x1b[2J\x1b[31m FAKE"  # clears the screen, then prints in red


def one_line(out: str) -> str:
    """The command's whole output, which must be one line."""
    assert out.count("\n") == 1, out
    return out


# --- publish replaces only its own files ----------------------------------------------------


def published(tmp_path: Path) -> tuple[ResultsDir, Path]:
    run = write_run(tmp_path / "run", {DEFAULT: "nodelete"})
    dest = tmp_path / "pub"
    assert cli.main(["publish", str(run.root), "--to", str(dest)]) == 0
    return run, dest


def files_under(root: Path) -> dict[str, bytes]:
    """Every file's bytes, but for the locks commands hold while they run."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and p.name != ".lock"
    }


def test_publish_lists_its_own_files(tmp_path: Path) -> None:
    _, dest = published(tmp_path)
    listed = json.loads((dest / "summary.json").read_text())["published"]
    assert listed == sorted(files_under(dest))


@pytest.mark.parametrize("what", ["a directory", "a file", "a link among its files"])
def test_publish_refuses_a_publication_holding_what_it_did_not_write(
    tmp_path: Path, what: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run, dest = published(tmp_path)
    mine = tmp_path / "mine.txt"
    mine.write_text("the user's")
    if what == "a directory":
        (dest / "src").mkdir()
        (dest / "src" / "main.c").write_text("the user's code")
        named = "src/"
    elif what == "a file":
        (dest / "notes.txt").write_text("the user's notes")
        named = "notes.txt"
    else:
        (dest / "table.md").unlink()
        (dest / "table.md").symlink_to(mine)
        named = "table.md (a symbolic link)"
    before = files_under(tmp_path)
    capsys.readouterr()
    assert cli.main(["publish", str(run.root), "--to", str(dest)]) == 2
    out = one_line(capsys.readouterr().out)
    assert f"holds what no publication wrote ({named})" in out
    assert files_under(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt", "pub", "run"]


def test_publish_leaves_a_users_sibling_old_directory_alone(tmp_path: Path) -> None:
    run, dest = published(tmp_path)
    sibling = tmp_path / ".pub.old"
    sibling.mkdir()
    (sibling / "keep.txt").write_text("the user's")
    assert cli.main(["publish", str(run.root), "--to", str(dest)]) == 0
    assert (sibling / "keep.txt").read_text() == "the user's"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".pub.old", "pub", "run"]


def test_publish_does_not_follow_a_link_given_as_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, dest = published(tmp_path)
    link = tmp_path / "latest"
    link.symlink_to(dest)
    before = files_under(tmp_path)
    capsys.readouterr()
    assert cli.main(["publish", str(run.root), "--to", str(link)]) == 2
    assert "is a symbolic link: not followed" in one_line(capsys.readouterr().out)
    assert files_under(tmp_path) == before
    assert link.is_symlink() and sorted(p.name for p in tmp_path.iterdir()) == [
        "latest",
        "pub",
        "run",
    ]


# --- repro writes only into a directory of its own ------------------------------------------

CELL = "debian-12/3.0.20/default"


def repro(target: Path, *more: str) -> int:
    return cli.main(["repro", CELL, "ondemand-kat", "--output", str(target), *more])


def test_repro_refuses_a_directory_of_other_files_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "project"
    target.mkdir()
    (target / "README.md").write_text("# my project\n")
    (target / "Dockerfile").write_text("FROM scratch\n")
    assert repro(target) == 2
    out = one_line(capsys.readouterr().out)
    assert "is not empty (Dockerfile, README.md) and is no earlier reproducer" in out
    assert (target / "README.md").read_text() == "# my project\n"
    assert (target / "Dockerfile").read_text() == "FROM scratch\n"
    assert not (target / "repro.c").exists()
    assert repro(target, "--force") == 0
    assert (target / "README.md").read_text().startswith("# Reproducer: ")


def test_repro_writes_over_an_earlier_reproducer(tmp_path: Path) -> None:
    target = tmp_path / "r"
    assert repro(target) == 0
    (target / "repro.c").write_text("an older reproducer's")
    assert repro(target) == 0
    assert (target / "repro.c").read_text() != "an older reproducer's"


@pytest.mark.parametrize("where", ["under a file", "a file", "a dangling link"])
def test_repro_path_errors_are_one_line(
    tmp_path: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    target = {
        "under a file": a_file / "sub",
        "a file": a_file,
        "a dangling link": tmp_path / "link",
    }[where]
    if where == "a dangling link":
        target.symlink_to(tmp_path / "nowhere")
    assert repro(target) == 2
    out = one_line(capsys.readouterr().out)
    assert out.startswith("fips-matrix: error: repro: ") and str(target) in out
    assert a_file.read_text() == "x" and not (tmp_path / "nowhere").exists()


# --- a FIFO hangs nothing -------------------------------------------------------------------


@contextlib.contextmanager
def rescued_from(fifo: Path, after: float = 5.0) -> Iterator[list[bool]]:
    """Runs the body; should it still be blocked opening fifo for reading after `after`
    seconds, a writer opens and closes it, so that the test fails rather than hangs:
    rescued[0] then says so."""
    rescued = [False]
    done = threading.Event()

    def rescue() -> None:
        if done.wait(after):
            return
        while not done.is_set():
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # no reader (yet): nothing blocked on it
                done.wait(0.05)
                continue
            os.close(fd)
            rescued[0] = True

    thread = threading.Thread(target=rescue, daemon=True)
    thread.start()
    try:
        yield rescued
    finally:
        done.set()
        thread.join()


def fifo_in_place(path: Path) -> None:
    path.unlink(missing_ok=True)
    os.mkfifo(path)


@pytest.mark.parametrize("command", ["report", "diff", "merge"])
@pytest.mark.parametrize("what", ["a cell file", "summary.json"])
def test_a_fifo_in_a_results_directory_is_refused_not_waited_for(
    tmp_path: Path, command: str, what: str, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write_run(tmp_path / "old", {DEFAULT: "nodelete", UNPINNED: "unpinned"})
    new = write_run(tmp_path / "new", {DEFAULT: "nodelete", UNPINNED: "unpinned"})
    fifo = new.cell_path(UNPINNED) if what == "a cell file" else new.summary_path
    fifo_in_place(fifo)
    argv = {
        "report": ["report", str(new.root)],
        "diff": ["diff", str(old.root), str(new.root)],
        "merge": ["merge", str(new.root), "--results", str(tmp_path / "merged")],
    }[command]
    with rescued_from(fifo) as rescued:
        code = cli.main(argv)
    assert not rescued[0], "the command blocked on the FIFO"
    assert code == (1 if command == "diff" else 2)
    out = capsys.readouterr().out
    named = UNPINNED if command == "diff" and what == "a cell file" else fifo.name
    assert f"{named}{' (NEW)' if command == 'diff' else ''}: not a regular file (a FIFO)" in out


def test_a_fifo_as_a_cells_log_is_not_taken_by_merge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = write_run(tmp_path / "a", {DEFAULT: "nodelete"})
    summary = json.loads(run.summary_path.read_text())
    summary["run"]["matrix_digest"] = "d" * 64
    run.summary_path.write_text(json.dumps(summary))
    log = run.log_path(DEFAULT, "probe")
    os.mkfifo(log)
    cell = json.loads(run.cell_path(DEFAULT).read_text())
    cell["logs"] = {"probe": str(log)}
    run.cell_path(DEFAULT).write_text(json.dumps(cell))
    with rescued_from(log) as rescued:
        code = cli.main(["merge", str(run.root), "--results", str(tmp_path / "merged")])
    assert not rescued[0], "merge blocked on the FIFO"
    assert code == 0
    assert "not taken: not a regular file (a FIFO)" in capsys.readouterr().out


# --- what a person reads shows control characters, and a report is whole or not written -----


def hostile_run(tmp_path: Path, reason: str) -> ResultsDir:
    out = write_run(tmp_path / "r", {DEFAULT: "nodelete"})
    out.write_cell(stopped(UNPINNED, "BUILD_FAILED", reason))
    summary = json.loads(out.summary_path.read_text())
    summary["run"]["cells"].append(UNPINNED)
    out.summary_path.write_text(json.dumps(summary))
    return out


def test_escape_sequences_in_a_results_file_reach_no_terminal_and_no_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = hostile_run(tmp_path, f"broken {SPOOF}")
    assert cli.main(["report", str(out.root)]) == 0
    shown = capsys.readouterr().out
    assert "\x1b" not in shown
    assert "\\x1b[2J\\x1b[31m FAKE" in shown
    for name in ("table.md", "report.html"):
        text = (out.root / name).read_text()
        assert "\x1b" not in text, name
        assert "\\x1b[2J\\x1b[31m FAKE" in text, name


def test_an_error_naming_a_hostile_path_shows_its_control_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["report", str(tmp_path / f"x{SPOOF}")]) == 2
    shown = capsys.readouterr().out
    assert "\x1b" not in shown and "x\\x1b[2J" in shown


def test_the_live_lines_of_probe_show_an_images_control_characters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The discovery document comes from the image: its libcrypto's version is printed on
    the `find` line while the cell runs."""
    document = discovery_bytes("trixie-glibc").replace(
        b'"OpenSSL 3.5.9', b'"\\u001b[2J\\u001b[31m FAKE OpenSSL 3.5.9'
    )
    assert document != discovery_bytes("trixie-glibc")
    client = FakeDockerClient(("debian:bullseye", "example/bare:1"))
    client.discoveries[("example/bare", "glibc")] = ProbePlan(0, document)
    monkeypatch.setattr(engine, "connect", lambda: client)
    monkeypatch.setattr(engine, "facts", lambda c: FACTS)
    results = tmp_path / "probe"
    cli.main(["probe", "example/bare:1", "--results", str(results), "--allow-empty"])
    shown = capsys.readouterr().out
    assert "\\x1b[2J\\x1b[31m FAKE OpenSSL 3.5.9" in shown
    assert "\x1b" not in shown


def test_a_lone_surrogate_is_shown_escaped_and_every_report_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = hostile_run(tmp_path, "broken \ud800 here")
    assert cli.main(["report", str(out.root)]) == 0
    assert "broken \\ud800 here" in capsys.readouterr().out
    for name in ("table.md", "report.html"):
        assert "broken \\ud800 here" in (out.root / name).read_text(), name
    assert (out.root / "junit.xml").stat().st_size > 0
    merged = tmp_path / "merged"
    summary = json.loads(out.summary_path.read_text())
    summary["run"]["matrix_digest"] = "d" * 64
    out.summary_path.write_text(json.dumps(summary))
    assert cli.main(["merge", str(out.root), "--results", str(merged)]) == 0
    assert "broken \\ud800 here" in (merged / "table.md").read_text()
    assert (merged / "junit.xml").stat().st_size > 0


@pytest.mark.parametrize("command", ["report", "merge"])
def test_a_report_that_cannot_be_made_leaves_every_file_as_it_was(
    tmp_path: Path,
    command: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """All or nothing: the page fails to render (the last but one report made), and neither
    the cells nor summary.json nor table.md have been rewritten."""
    out = hostile_run(tmp_path, "broken")
    summary = json.loads(out.summary_path.read_text())
    summary["run"]["matrix_digest"] = "d" * 64
    out.summary_path.write_text(json.dumps(summary))
    merged = tmp_path / "merged"

    def fails(*args: object) -> str:
        raise RuntimeError("the page could not be made")

    monkeypatch.setattr(write, "render_html", fails)
    before = files_under(tmp_path)
    argv = {
        "report": ["report", str(out.root)],
        "merge": ["merge", str(out.root), "--results", str(merged)],
    }[command]
    with pytest.raises(RuntimeError, match="the page could not be made"):
        cli.main(argv)
    assert files_under(tmp_path) == before


# --- diff: a cell gone from NEW is worse unless NEW says it was not selected ---------------


def test_diff_counts_cells_missing_from_a_new_directory_without_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write_run(tmp_path / "old", {DEFAULT: "nodelete", UNPINNED: "unpinned"})
    new = write_run(tmp_path / "new", {DEFAULT: "nodelete"})
    assert cli.main(["diff", str(old.root), str(new.root)]) == 0  # NEW's run selected one
    assert f"cells gone: {UNPINNED}" in capsys.readouterr().out
    new.summary_path.unlink()  # a directory of copied cell files: nothing says what it left out
    assert cli.main(["diff", str(old.root), str(new.root)]) == 1
    shown = capsys.readouterr().out
    said = "1 cell(s) of OLD not in NEW, and no summary.json of NEW says its run left them out"
    assert f"{said}, counted as worse: {UNPINNED}" in shown


# --- an OK cell without scenario results was not measured ---------------------------------


def test_an_ok_cell_without_scenario_results_is_unreadable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write_run(tmp_path / "old", {DEFAULT: "nodelete", UNPINNED: "unpinned"})
    new = write_run(tmp_path / "new", {DEFAULT: "nodelete", UNPINNED: "unpinned"})
    cell = json.loads(new.cell_path(UNPINNED).read_text())
    cell.update(scenarios=[], reason="all measured, honest")
    new.cell_path(UNPINNED).write_text(json.dumps(cell))
    why = (
        "outcome OK, but no scenario results: nothing was measured "
        "(its reason: 'all measured, honest')"
    )
    assert cli.main(["report", str(new.root)]) == 2
    assert why in capsys.readouterr().out
    assert cli.main(["diff", str(old.root), str(new.root)]) == 1
    assert f"unreadable, counted as worse: {UNPINNED} (NEW): {why}" in capsys.readouterr().out


def test_publish_under_a_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = write_run(tmp_path / "run", {DEFAULT: "nodelete"})
    (tmp_path / "a_file").write_text("x")
    assert cli.main(["publish", str(run.root), "--to", str(tmp_path / "a_file" / "sub")]) == 2
    out = one_line(capsys.readouterr().out)
    assert f"a_file/sub: {tmp_path / 'a_file'} is not a directory" in out
    assert not (tmp_path / "a_file").is_dir()

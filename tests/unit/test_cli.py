"""The command line as a user meets it: exit statuses and messages, and the commands that
work on results directories alone (report, diff)."""

from __future__ import annotations

import argparse
import ast
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support.fakes import FakeDockerClient
from support.harness import REPO, SHA, TARBALL, cli_on_fake_engine, write_run

from matrix import assets, cli
from matrix.execute import engine
from matrix.execute.run.schedule import plan
from matrix.execute.timeline import PHASES_NAME, read_spans
from matrix.model.cells import expand
from matrix.model.definition import load_definition


def test_report_makes_every_report_again_without_an_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    write_run(tmp_path / "r", {"debian-12/3.0.20/default": "nodelete"})
    assert cli.main(["report", str(tmp_path / "r")]) == 0
    for name in ("table.md", "report.html", "junit.xml", "summary.json"):
        assert (tmp_path / "r" / name).stat().st_size > 0, name
    assert "STICKY" in capsys.readouterr().out
    html = (tmp_path / "r" / "report.html").read_text()
    assert 'data-cell="debian-12/3.0.20/default"' in html


def test_report_keeps_to_the_cells_of_the_run(tmp_path: Path) -> None:
    out = write_run(tmp_path / "r", {"debian-12/3.0.20/default": "nodelete"})
    stale = write_run(tmp_path / "old", {"debian-11/3.0.20/default": "unpinned"})
    path = stale.cell_path("debian-11/3.0.20/default")
    path.rename(out.cell_path("debian-11/3.0.20/default"))  # a cell of an earlier run
    assert cli.main(["report", str(tmp_path / "r")]) == 0
    assert "debian-11" not in (tmp_path / "r" / "table.md").read_text()


def test_diff_exit_status_is_a_ci_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(tmp_path / "good", {"debian-12/3.0.20/no-pinshared": "unpinned"})
    write_run(tmp_path / "bad", {"debian-12/3.0.20/no-pinshared": "nodelete"})
    assert cli.main(["diff", str(tmp_path / "good"), str(tmp_path / "bad")]) == 1
    out = capsys.readouterr().out
    assert "debian-12/3.0.20/no-pinshared" in out and "STICKY_ERROR" in out
    assert cli.main(["diff", str(tmp_path / "bad"), str(tmp_path / "good")]) == 0
    assert cli.main(["diff", str(tmp_path / "good"), str(tmp_path / "good")]) == 0
    assert "no verdict changed" in capsys.readouterr().out


def test_errors_are_one_message_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["report", str(tmp_path / "nothing")]) == 2
    assert "nothing: no such results directory" in capsys.readouterr().out
    assert not (tmp_path / "nothing").exists()  # a mistyped path is not made
    bad = tmp_path / "m.toml"
    bad.write_text('schema = 1\nscenarios = ["ondemand-kat"\n')
    assert cli.main(["run", "--matrix", str(bad), "--list"]) == 2
    assert f"{bad}:" in capsys.readouterr().out
    assert cli.main(["run", "--only", "nope/*", "--list"]) == 2
    assert "platforms: debian-11, debian-12," in capsys.readouterr().out  # the valid names listed
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert cli.main(["run", "--only", "debian-12/3.0.20/default"]) == 2
    assert "no Docker engine answers" in capsys.readouterr().out
    assert cli.main(["run", "--jobs", "0", "--list"]) == 2


def test_merge_joins_runs_of_one_matrix_and_refuses_two(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_run(tmp_path / "a", {"debian-12/3.0.20/default": "nodelete"})
    b = write_run(tmp_path / "b", {"debian-12/3.0.20/no-pinshared": "unpinned"})
    for out, digest in ((a, "d1"), (b, "d1")):
        summary = json.loads((out.root / "summary.json").read_text())
        summary["run"]["matrix_digest"] = digest
        (out.root / "summary.json").write_text(json.dumps(summary))
    probe_log = a.log_path("debian-12/3.0.20/default", "probe")
    probe_log.write_text("the probe's stderr")
    cell = json.loads(a.cell_path("debian-12/3.0.20/default").read_text())
    cell["logs"] = {"probe": str(probe_log)}
    a.cell_path("debian-12/3.0.20/default").write_text(json.dumps(cell))

    merged = tmp_path / "merged"
    assert cli.main(["merge", str(a.root), str(b.root), "--results", str(merged)]) == 0
    summary = json.loads((merged / "summary.json").read_text())
    assert sorted(summary["run"]["cells"]) == [
        "debian-12/3.0.20/default",
        "debian-12/3.0.20/no-pinshared",
    ]
    assert summary["run"]["merged_from"] == ["a", "b"]
    moved = json.loads((merged / "cells" / "debian-12__3.0.20__default.json").read_text())
    assert Path(moved["logs"]["probe"]).read_text() == "the probe's stderr"
    assert Path(moved["logs"]["probe"]).parent == merged / "cells"

    summary = json.loads((b.root / "summary.json").read_text())
    summary["run"]["matrix_digest"] = "d2"
    (b.root / "summary.json").write_text(json.dumps(summary))
    capsys.readouterr()
    assert cli.main(["merge", str(a.root), str(b.root), "--results", str(tmp_path / "m2")]) == 2
    assert "refusing to mix runs of different matrix definitions" in capsys.readouterr().out


def test_plan_prints_a_github_job_matrix(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plan", "--format", "github", "--only", "debian-12/3.0.20/*"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan == {
        "include": [
            {"cell": "debian-12/3.0.20/default", "slug": "debian-12__3.0.20__default"},
            {"cell": "debian-12/3.0.20/no-pinshared", "slug": "debian-12__3.0.20__no-pinshared"},
        ]
    }


def test_a_run_of_some_cells_reports_only_the_cells_it_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tarball = tmp_path / "openssl.tar.gz"
    tarball.write_bytes(TARBALL)
    matrix_file = tmp_path / "m.toml"
    text = (Path(__file__).parent / "fixtures" / "two-platforms.toml").read_text()
    matrix_file.write_text(
        text.replace("c80a01dfc70ece4dc21168932c37739042d404d46ccc81a5986dd75314ecda6f", SHA)
    )
    client = FakeDockerClient()
    cli_on_fake_engine(monkeypatch, client, tarball)
    results = tmp_path / "r"
    base = ["run", "--matrix", str(matrix_file), "--results", str(results)]
    assert cli.main([*base, "--only", "musl-debian-12/3.0.20/default"]) == 0
    assert cli.main([*base, "--only", "debian-12/3.0.20/default"]) == 0
    summary = json.loads((results / "summary.json").read_text())
    # the earlier run's cell stays on disk, but this run never shows it as its own
    assert [c["cell"] for c in summary["cells"]] == ["debian-12/3.0.20/default"]
    assert summary["run"]["cells"] == ["debian-12/3.0.20/default"]
    assert "earlier_cells" not in summary["run"]
    for report in ("table.md", "report.html", "junit.xml"):
        assert "musl-debian-12" not in (results / report).read_text(), report
    assert (results / "cells" / "musl-debian-12__3.0.20__default.json").is_file()
    assert summary["run"]["matrix"] == str(matrix_file)  # as given, never relabelled
    # the benchmark's phases: made once per run, by whichever worker, and the reports last
    phases = summary["run"]["phase_seconds"]
    assert set(phases) == {"base", "stages", "source", "build", "probe", "report"}
    assert all(isinstance(v, float | int) and v >= 0 for v in phases.values())
    # and when each ran, in the run's timeline: the reports after the cell's probe
    timeline = {s.phase: s for s in read_spans(results / PHASES_NAME)}
    assert set(timeline) == set(phases)
    assert timeline["build"].what == "debian-12/3.0.20/default"
    assert timeline["probe"].end <= timeline["report"].start
    lock = json.loads((results / "matrix.lock.json").read_text())
    assert lock["sources"] == {"3.0.20": SHA}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bundle", "x.tar", "--force"], "--bundle and --force contradict"),
        (["--bundle", "x.tar", "--locked"], "--bundle and --locked contradict"),
        (["--repeat", "0"], "--repeat must be a whole number from 1 to 100 (got 0)"),
        (["--repeat", "1000000"], "--repeat must be a whole number from 1 to 100"),
        (["--fate-runs", "0"], "--fate-runs must be a whole number from 1 to 100 (got 0)"),
        (["--fate-runs", "101"], "--fate-runs must be a whole number from 1 to 100"),
        (["--parallel", "0"], "--parallel must be a whole number from 1 to 64 (got 0)"),
        (["--jobs", "100000"], "--jobs must be a whole number from 1 to 1024"),
        (["--probe-timeout", "0"], "--probe-timeout must be a finite number of seconds"),
        (["--probe-timeout", "nan"], "--probe-timeout must be a finite number of seconds"),
        (["--probe-timeout", "inf"], "(got inf)"),
        (["--probe-timeout", "-5"], "(got -5)"),
        (["--probe-timeout", "1e9"], "at most 86400"),
        (["--probe-timeout", "1e-300"], "at least 1 and at most 86400 (got 1e-300)"),
        (["--build-timeout", "0.5"], "--build-timeout must be a finite number of seconds"),
        (["--build-timeout", "nan"], "--build-timeout must be a finite number of seconds"),
    ],
)
def test_contradictory_or_impossible_options_are_refused(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["run", "--list", *args]) == 2
    assert message in capsys.readouterr().out


def test_an_empty_selection_fails_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = tmp_path / "m.toml"
    default = (Path(cli.__file__).parent / "default.toml").read_text()
    matrix.write_text(default + '\n[[exclude]]\nplatform = "*"\nreason = "nothing at all"\n')
    assert cli.main(["run", "--matrix", str(matrix), "--results", str(tmp_path / "r")]) == 1
    assert "the selection holds no cell" in capsys.readouterr().out


def test_report_against_a_baseline_fails_what_changed_in_junit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_run(tmp_path / "base", {"debian-12/3.0.20/no-pinshared": "unpinned"})
    write_run(tmp_path / "now", {"debian-12/3.0.20/no-pinshared": "nodelete"})
    assert cli.main(["report", str(tmp_path / "now")]) == 0
    alone = (tmp_path / "now" / "junit.xml").read_text()
    assert 'failures="0"' in alone.split("\n")[1]  # sticky alone is a fact
    argv = ["report", str(tmp_path / "now"), "--baseline", str(tmp_path / "base")]
    assert cli.main(argv) == 0
    junit = (tmp_path / "now" / "junit.xml").read_text()
    assert 'failures="2"' in junit.split("\n")[1]  # ondemand-kat and no-failure changed
    assert f"changed against the baseline {tmp_path / 'base'}: CLEAN_RELOAD there" in junit
    assert cli.main(["report", str(tmp_path / "now"), "--baseline", str(tmp_path / "x")]) == 2
    assert "--baseline: no cell results" in capsys.readouterr().out


def test_no_color_means_no_escape_sequences_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_run(tmp_path / "r", {"debian-12/3.0.20/default": "nodelete"})
    monkeypatch.setenv("FORCE_COLOR", "1")  # as if on a terminal
    assert cli.main(["report", str(tmp_path / "r")]) == 0
    assert "\x1b[" in capsys.readouterr().out
    monkeypatch.setenv("NO_COLOR", "1")
    assert cli.main(["report", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out and "1 cells measured" in out.splitlines()[-1]


# --- user text is printed as it is ---------------------------------------------------------


def test_error_text_is_printed_literally(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["run", "--list", "--only", "[/x]"]) == 2  # was: rich's MarkupError
    out = capsys.readouterr().out
    assert "no cell matches '[/x]'" in out and "Traceback" not in out
    bad = tmp_path / "m.toml"
    text = (Path(__file__).parent / "fixtures" / "two-platforms.toml").read_text()
    bad.write_text(text.replace('libc = "musl"', 'libc = "musl"\nsurprise = 1', 1))
    assert cli.main(["plan", "--matrix", str(bad)]) == 2
    assert "[platforms.musl-debian-12]: unknown key 'surprise'" in capsys.readouterr().out


# --- plan ----------------------------------------------------------------------------------


def test_plan_refuses_more_jobs_than_github_takes(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plan", "--format", "github"]) == 2  # the default matrix: 282 cells
    out = capsys.readouterr().out
    assert "GitHub refuses a job matrix of more than 256" in out
    assert "use --per platform (16 jobs" in out
    assert cli.main(["plan", "--format", "github", "--per", "platform"]) == 0
    assert len(json.loads(capsys.readouterr().out)["include"]) == 16


def test_plan_per_platform_keeps_to_the_selected_cells(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "--format", "github", "--per", "platform"]
    assert cli.main([*argv, "--only", "debian-12/3.0.20/*", "--only", "musl-debian-13/*"]) == 0
    jobs = json.loads(capsys.readouterr().out)["include"]
    assert jobs == [
        {
            "cell": "debian-12/3.0.20/default debian-12/3.0.20/no-pinshared",
            "slug": "debian-12",
        },
        {"cell": "musl-debian-13/*", "slug": "musl-debian-13"},  # every cell of it
    ]
    assert cli.main(["plan", "--per", "platform", "--only", "debian-1[12]/4.0.2/deferred"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "debian-11/4.0.2/deferred",
        "debian-12/4.0.2/deferred",
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["plan"],
        ["plan", "--format", "github", "--per", "platform"],
        ["run", "--list"],
        ["--help"],
        ["run", "--help"],
    ],
)
def test_a_closed_pipe_is_no_traceback(argv: list[str]) -> None:
    """`fips-matrix plan | head -1`: the reader is gone before the tool writes."""
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "matrix", *argv],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)
    assert "Traceback" not in done.stderr and "Error" not in done.stderr, done.stderr
    # argparse's help is printed by argparse, which passes over a closed pipe and exits 0
    assert done.returncode == (0 if "--help" in argv else 128 + signal.SIGPIPE)


# --- first contact -------------------------------------------------------------------------


def options_of(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.Action, str]]:
    """(command, action, its help as printed) for every option and argument of every
    command."""
    found = []
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        formatter = sub._get_formatter()
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            help_text = formatter._expand_help(action) if action.help else ""
            found.append((name, action, help_text))
    return found


def test_every_option_and_argument_says_what_it_is_and_its_default() -> None:
    found = options_of(cli.parser())
    assert {c for c, _, _ in found} >= {"run", "report", "diff", "plan", "merge", "publish"}
    for command, action, text in found:
        what = f"{command} {'/'.join(action.option_strings) or action.dest}"
        assert text, f"{what} has no help"
        flag = isinstance(action, argparse._StoreTrueAction)
        if action.option_strings and not flag and not action.required:
            assert "default" in text, f"{what} does not say its default: {text!r}"
            assert "default: None" not in text, f"{what}: {text!r}"


def test_report_says_it_rewrites_cell_files() -> None:
    sub = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert "REWRITE its cell files" in " ".join(sub.choices["report"].format_help().split())
    listed = " ".join(cli.parser().format_help().split())
    assert "REWRITE its cell files with the new verdicts" in listed


def test_no_engine_and_no_dockerd_says_how_to_install_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.setenv("PATH", str(tmp_path))  # no dockerd anywhere on it
    monkeypatch.setattr(engine, "DOCKERD_PATHS", ())
    assert cli.main(["run", "--only", "debian-12/3.0.20/default"]) == 2
    out = capsys.readouterr().out
    assert "No Docker engine is installed here" in out and "apt-get install docker.io" in out
    fake = tmp_path / "dockerd"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert cli.main(["run", "--only", "debian-12/3.0.20/default"]) == 2
    out = capsys.readouterr().out
    assert "apt-get install" not in out and "dockerd --bridge=none &" in out


def test_every_nox_session_has_a_one_line_description() -> None:
    tree = ast.parse((REPO / "noxfile.py").read_text())
    sessions = [
        f
        for f in tree.body
        if isinstance(f, ast.FunctionDef)
        and any("session" in ast.unparse(d) for d in f.decorator_list)
    ]
    assert {f.name for f in sessions} >= {"matrix", "cell", "bench", "tests", "lint"}
    for f in sessions:
        doc = ast.get_docstring(f)
        assert doc, f"nox session {f.name} has no description"
        assert len(doc.splitlines()[0]) <= 100, f.name


def test_the_readme_quick_start_works_on_a_stock_debian_and_counts_the_compiles() -> None:
    quick = (REPO / "README.md").read_text().split("## Quick start")[1].split("\n## ")[0]
    # Debian 12's Python refuses `pip install` outside a virtual environment (PEP 668)
    assert "python3 -m pip install" not in quick
    assert "python3 -m venv" in quick and "pip install nox" in quick
    assert "apt-get install -y git python3-venv docker.io" in quick
    # "compiles OpenSSL N times": every compile group of the default matrix, all platforms
    groups = plan(expand(load_definition(assets.DEFAULT_MATRIX))).groups
    text = " ".join(quick.split())
    assert f"{len(groups)} times where every base image can be pulled" in text
    # and what the reference run's cold bench measured on this project's machine
    bench = json.loads((REPO / "results/reference/bench.json").read_text())
    assert f"{bench['cold']['compiles']} times on this project's machine" in text


def test_plan_refuses_an_empty_job_matrix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = tmp_path / "m.toml"
    default = (Path(cli.__file__).parent / "default.toml").read_text()
    matrix.write_text(default + '\n[[exclude]]\nplatform = "*"\nreason = "nothing at all"\n')
    assert cli.main(["plan", "--format", "github", "--matrix", str(matrix)]) == 2
    assert "GitHub refuses an empty job matrix" in capsys.readouterr().out


# --- commands that need no engine ----------------------------------------------------------


def test_results_commands_work_where_the_docker_sdk_cannot_be_imported(tmp_path: Path) -> None:
    """report, diff, merge and plan need only results and the matrix: with `docker` made
    unimportable (a package of that name first on the path that raises), they still work,
    while a command that talks to an engine does need it."""
    shim = tmp_path / "shim" / "docker"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('raise ImportError("no Docker SDK here (test)")\n')
    env = {**os.environ, "PYTHONPATH": str(shim.parent), "COLUMNS": "100"}
    for name, build in (("a", "nodelete"), ("b", "unpinned")):
        out = write_run(tmp_path / name, {"debian-12/3.0.20/default": build})
        summary = json.loads((out.root / "summary.json").read_text())
        summary["run"]["matrix_digest"] = "d1"  # runs of one matrix: merge takes them
        (out.root / "summary.json").write_text(json.dumps(summary))

    def fips_matrix(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "matrix", *argv],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=env,
            cwd=tmp_path,
        )

    for argv, code, expected in (
        (["report", "a"], 0, "STICKY"),
        (["diff", "b", "a"], 1, "debian-12/3.0.20/default"),  # got worse: exit 1
        (["merge", "a", "--results", "merged"], 0, "merged 1 cells from 1 directories"),
        (["plan", "--only", "debian-12/*"], 0, "debian-12/3.0.20/default"),
        (["--help"], 0, "bench"),
    ):
        done = fips_matrix(*argv)
        assert (done.returncode, done.stderr) == (code, ""), argv
        assert expected in done.stdout, (argv, done.stdout)
    engine_command = fips_matrix("run", "--list")
    assert engine_command.returncode != 0
    assert "no Docker SDK here (test)" in engine_command.stderr


def test_merge_takes_a_baseline_as_run_does(tmp_path: Path) -> None:
    """merge --baseline: junit.xml compares with it; a baseline that cannot be read stops
    the merge before its directory is made."""
    a = write_run(tmp_path / "a", {"debian-12/3.0.20/default": "nodelete"})
    summary = json.loads((a.root / "summary.json").read_text())
    summary["run"]["matrix_digest"] = "d1"
    (a.root / "summary.json").write_text(json.dumps(summary))
    merged = tmp_path / "merged"
    args = ["merge", str(a.root), "--results", str(merged), "--baseline", str(a.root)]
    assert cli.main(args) == 0
    junit = (merged / "junit.xml").read_text()
    assert '<property name="baseline" value="' + str(a.root) + '"' in junit
    gone = tmp_path / "m2"
    assert (
        cli.main(["merge", str(a.root), "--results", str(gone), "--baseline", str(tmp_path)]) == 2
    )
    assert not gone.exists()


def test_report_shows_a_scenario_s_table_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_run(
        tmp_path / "r", {"debian-12/3.0.20/default": "nodelete", "debian-13/3.0.20/x": "unpinned"}
    )
    assert cli.main(["report", str(tmp_path / "r")]) == 0
    brief = capsys.readouterr().out
    assert "--scenario NAME" in " ".join(brief.split()) and "\nondemand-kat" not in brief
    args = ["report", str(tmp_path / "r"), "--scenario", "ondemand-kat", "--only", "debian-13/*"]
    assert cli.main(args) == 0
    detail = capsys.readouterr().out
    assert "\nondemand-kat" in detail and "\nlegend" in detail
    assert "debian-13" in detail and "debian-12" not in detail  # only the cells asked for
    assert cli.main(["report", str(tmp_path / "r"), "--scenario", "nope"]) == 2
    assert "not a scenario of this run (its scenarios: ondemand-kat" in capsys.readouterr().out
    assert cli.main(["report", str(tmp_path / "r"), "--only", "debian-99/*"]) == 2


def test_a_typo_in_what_report_shows_rewrites_nothing(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", {"debian-12/3.0.20/default": "nodelete"})
    cell = next(run.cells_dir.glob("*.json"))
    before = cell.stat().st_mtime_ns, (run.root / "table.md").exists()
    assert cli.main(["report", str(run.root), "--scenario", "nope"]) == 2
    assert cli.main(["report", str(run.root), "--only", "debian-99/*"]) == 2
    assert (cell.stat().st_mtime_ns, (run.root / "table.md").exists()) == before


def test_diff_only_never_passes_over_an_unreadable_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write_run(tmp_path / "old", {"debian-12/3.0.20/default": "nodelete"})
    new = write_run(tmp_path / "new", {"debian-12/3.0.20/default": "nodelete"})
    (new.root / "summary.json").write_text("{ cut")
    args = ["diff", str(old.root), str(new.root), "--only", "debian-12/*"]
    assert cli.main(args) == 1
    assert "summary.json" in capsys.readouterr().out

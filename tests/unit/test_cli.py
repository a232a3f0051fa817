"""The command line as a user meets it: exit statuses and messages, and the commands that
work on results directories alone (report, diff)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import FakeDockerClient, fixture_doc
from harness import FACTS, SHA, TARBALL

import matrix.execute.imaging
from matrix import cli
from matrix.acquire.sources import FetchedSource
from matrix.execute import engine
from matrix.execute.timeline import PHASES_NAME, read_spans
from matrix.judge.verdict import judge
from matrix.model.vocabulary import Outcome
from matrix.results.records import CellResult, ScenarioResult
from matrix.results.store import ResultsDir


def write_run(root: Path, builds: dict[str, str]) -> ResultsDir:
    """A results directory of real probe documents: cell id -> fixture build."""
    out = ResultsDir(root)
    out.prepare()
    for cell_id, build in builds.items():
        platform, version, variant = cell_id.split("/")
        r = CellResult(cell_id, platform, "glibc", version, variant, Outcome.OK)
        for scenario in ("ondemand-kat", "no-failure"):
            doc = fixture_doc(build, scenario)
            j = judge(scenario, doc)
            r.scenarios.append(
                ScenarioResult(
                    scenario,
                    j.verdict,
                    j.cause,
                    j.short,
                    list(j.evidence),
                    j.facts,
                    0,
                    False,
                    0.1,
                    doc,
                )
            )
        out.write_cell(r)
    run = {"id": root.name, "cells": list(builds)}
    (root / "summary.json").write_text(json.dumps({"schema": 1, "run": run}))
    return out


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
    assert "no cell results" in capsys.readouterr().out
    bad = tmp_path / "m.toml"
    bad.write_text('schema = 1\nscenarios = ["ondemand-kat"\n')
    assert cli.main(["run", "--matrix", str(bad), "--list"]) == 2
    assert f"{bad}:" in capsys.readouterr().out
    assert cli.main(["run", "--only", "nope/*", "--list"]) == 2
    assert "debian-12/3.0.20/default" in capsys.readouterr().out  # the valid names listed
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


def test_a_run_of_some_cells_keeps_the_others_in_the_reports(
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
    monkeypatch.setattr(engine, "connect", lambda: client)
    monkeypatch.setattr(engine, "facts", lambda c: FACTS)
    monkeypatch.setattr(
        matrix.execute.imaging,
        "fetch_source",
        lambda source, *a, **k: FetchedSource(source.version, tarball, SHA, "test", "verified"),
    )
    results = tmp_path / "r"
    base = ["run", "--matrix", str(matrix_file), "--results", str(results)]
    assert cli.main([*base, "--only", "musl-debian-12/3.0.20/default"]) == 0
    assert cli.main([*base, "--only", "debian-12/3.0.20/default"]) == 0
    summary = json.loads((results / "summary.json").read_text())
    assert [c["cell"] for c in summary["cells"]] == [
        "debian-12/3.0.20/default",
        "musl-debian-12/3.0.20/default",
    ]
    assert summary["run"]["earlier_cells"] == 1
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
        (["--repeat", "0"], "--repeat must be at least 1"),
        (["--parallel", "0"], "--parallel must be at least 1"),
        (["--probe-timeout", "0"], "--probe-timeout must be positive"),
    ],
)
def test_contradictory_or_impossible_options_are_refused(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["run", "--list", *args]) == 2
    assert message in capsys.readouterr().out

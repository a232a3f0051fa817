"""The results directory (one JSON per cell), the comparison tables and the run's reports."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.fakes import fixture_doc
from support.made_results import fixture_result

import matrix.results.records
from matrix.errors import MatrixError
from matrix.model.vocabulary import Outcome
from matrix.report import table, write
from matrix.report.layout import grid, layout
from matrix.results.records import CellResult, Run, ScenarioResult
from matrix.results.redact import PLACEHOLDER, mirror_redactor
from matrix.results.store import ResultsDir

OK, BUILD_FAILED = Outcome.OK, Outcome.BUILD_FAILED

SCENARIOS = ["ondemand-kat", "no-failure"]


def scenario(build: str, name: str, doc: dict[str, Any] | None = None) -> ScenarioResult:
    return fixture_result(build, name, doc=doc)


def cell(
    platform: str,
    libc: str,
    variant: str,
    build: str | None,
    outcome: str = OK,
    reason: str = "",
    version: str = "3.0.20",
) -> CellResult:
    r = CellResult(
        cell=f"{platform}/{version}/{variant}",
        platform=platform,
        libc=libc,
        version=version,
        variant=variant,
        outcome=outcome,
        reason=reason,
    )
    if build is not None:
        r.scenarios = [scenario(build, s) for s in SCENARIOS]
    r.fingerprint = {"image": {"id": "sha256:abc"}, "times": {"started": "t0", "finished": "t1"}}
    r.logs = {"probe": "cells/x.probe.log"}
    r.inputs_key = "k" * 64
    return r


def musl_doc(name: str) -> dict[str, Any]:
    doc = copy.deepcopy(fixture_doc("unpinned", name))
    doc["libc"] = {"name": "musl", "version": "1.2.3"}
    return doc


@pytest.fixture
def results() -> list[CellResult]:
    musl_failed = cell(
        "musl-debian-12",
        "musl",
        "default",
        None,
        BUILD_FAILED,
        "docker build failed: The command '/bin/sh -c make' returned a non-zero code: 2; "
        "log: results/cells/musl-debian-12__3.0.20__default.build.log",
    )
    musl_failed.logs = {"build": "results/cells/musl-debian-12__3.0.20__default.build.log"}
    musl_ok = cell("musl-debian-12", "musl", "no-pinshared", None)
    musl_ok.scenarios = [scenario("unpinned", s, musl_doc(s)) for s in SCENARIOS]
    return [
        cell("debian-12", "glibc", "default", "nodelete"),
        cell("debian-12", "glibc", "no-pinshared", "unpinned"),
        musl_failed,
        musl_ok,
    ]


# --- ResultsDir --------------------------------------------------------------------------


def test_write_then_read_cell_round_trips(tmp_path: Path, results: list[CellResult]) -> None:
    out = ResultsDir(tmp_path / "r")
    out.prepare()
    for r in results:
        path = out.write_cell(r)
        assert path == tmp_path / "r" / "cells" / (r.cell.replace("/", "__") + ".json")
        assert json.loads(path.read_text())["schema"] == matrix.results.records.RESULT_SCHEMA
        back = out.read_cell(r.cell)
        assert back == r
    assert [r.cell for r in out.all_cells()] == sorted(r.cell for r in results)
    assert [p.name for p in out.cells_dir.iterdir() if p.name.startswith(".")] == []


def test_write_cell_applies_the_redactor(tmp_path: Path, results: list[CellResult]) -> None:
    out = ResultsDir(tmp_path, mirror_redactor("http://mirror.test/debian"))
    r = results[0]
    r.fingerprint["sources"] = [
        {"origin": "http://mirror.test/debian/pool/main/o/openssl/x.tar.gz"}
    ]
    text = out.write_cell(r).read_text()
    assert "mirror.test" not in text
    assert "<debian-mirror>/pool/main/o/openssl/x.tar.gz" in text


def _valid(results: list[CellResult]) -> str:
    return json.dumps(results[0].to_json())


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda t: t[: len(t) // 3], id="truncated"),
        pytest.param(lambda t: "", id="empty"),
        pytest.param(lambda t: "\x00\xff not json {", id="garbage"),
        pytest.param(lambda t: t.replace('"schema": 2', '"schema": 1'), id="other-schema"),
        pytest.param(
            lambda t: json.dumps({k: v for k, v in json.loads(t).items() if k != "outcome"}),
            id="missing-field",
        ),
        pytest.param(
            lambda t: json.dumps({**json.loads(t), "outcome": 3}),
            id="wrong-type",
        ),
        pytest.param(
            lambda t: json.dumps({**json.loads(t), "cell": "other/3.0.20/default"}),
            id="id-not-its-parts",
        ),
        pytest.param(
            lambda t: json.dumps({**json.loads(t), "scenarios": [{"scenario": "x"}]}),
            id="bad-scenario",
        ),
        pytest.param(
            lambda t: "[]",
            id="json-array",
        ),
        pytest.param(
            lambda t: "null",
            id="json-null",
        ),
    ],
)
def test_read_cell_returns_none_on_garbage(
    tmp_path: Path, results: list[CellResult], damage: Callable[[str], str]
) -> None:
    out = ResultsDir(tmp_path)
    out.prepare()
    path = out.write_cell(results[0])
    assert out.read_cell(results[0].cell) is not None
    path.write_text(damage(path.read_text()))
    assert out.read_cell(results[0].cell) is None
    assert list(out.all_cells()) == []


def test_keys_this_version_does_not_know_are_ignored(
    tmp_path: Path, results: list[CellResult]
) -> None:
    """docs/results-schema.md: adding a key is compatible; readers ignore keys they do not
    know."""
    out = ResultsDir(tmp_path)
    out.prepare()
    path = out.write_cell(results[0])
    path.write_text(json.dumps({**json.loads(path.read_text()), "surprise": 1}))
    assert out.read_cell(results[0].cell) == results[0]


def test_read_cell_of_a_missing_cell_is_none(tmp_path: Path) -> None:
    assert ResultsDir(tmp_path).read_cell("debian-12/3.0.20/default") is None


# --- tables ------------------------------------------------------------------------------


def test_layout_rows_are_versions_and_columns_platforms_with_the_probed_libc(
    results: list[CellResult],
) -> None:
    shape = layout(results)
    assert shape.rows == [("3.0.20", "default"), ("3.0.20", "no-pinshared")]
    # the first musl cell has no probe document: the later one's libc version still wins
    assert [c.label for c in shape.columns] == [
        "debian-12 (glibc 2.36)",
        "musl-debian-12 (musl 1.2.3)",
    ]
    assert grid(shape, "ondemand-kat") == [["STICKY", "BUILD-FAIL"], ["CLEAN", "CLEAN"]]
    assert grid(shape, "no-failure") == [["MAPPED-OK", "BUILD-FAIL"], ["CLEAN", "CLEAN"]]
    md = table.scenario_table(shape, "ondemand-kat").splitlines()
    assert [c.strip() for c in md[0].strip("|").split("|")] == [
        "OpenSSL, variant",
        "debian-12 (glibc 2.36)",
        "musl-debian-12 (musl 1.2.3)",
    ]
    assert [c.strip() for c in md[2].strip("|").split("|")] == [
        "3.0.20 default",
        "STICKY",
        "BUILD-FAIL",
    ]


def test_layout_leaves_missing_cells_empty_and_falls_back_to_declared_libc() -> None:
    only = [cell("musl-debian-12", "musl", "default", None, BUILD_FAILED, "boom")]
    only.append(cell("debian-12", "glibc", "no-pinshared", "unpinned", version="3.5.7"))
    shape = layout(only)
    assert [c.label for c in shape.columns] == ["musl-debian-12 (musl)", "debian-12 (glibc 2.36)"]
    assert shape.rows == [("3.0.20", "default"), ("3.5.7", "no-pinshared")]
    assert grid(shape, "ondemand-kat") == [["BUILD-FAIL", ""], ["", "CLEAN"]]


# --- reports -----------------------------------------------------------------------------


def test_write_reports_writes_summary_and_table(tmp_path: Path, results: list[CellResult]) -> None:
    out = ResultsDir(tmp_path / "r")
    out.prepare()
    for r in results:
        out.write_cell(r)
    run = Run.from_json(
        {"id": "abc123", "started": "s", "finished": "f", "engine": {"version": "26.1"}}
    )
    assert matrix.results.records.scenarios_of(results) == SCENARIOS
    step_summary = tmp_path / "step-summary.md"
    written = write.write_reports(
        out, results, run, SCENARIOS, env={"GITHUB_STEP_SUMMARY": str(step_summary)}
    )
    summary_path, table_path = written["summary"], written["markdown"]
    assert (summary_path, table_path) == (out.root / "summary.json", out.root / "table.md")
    assert written["html"].read_text().startswith("<!DOCTYPE html>")
    assert "<testsuites" in written["junit"].read_text()
    assert step_summary.read_text().strip() == table_path.read_text().strip()

    summary = json.loads(summary_path.read_text())
    assert summary["schema"] == 1 and summary["run"] == run.to_json()
    assert [c["cell"] for c in summary["cells"]] == [r.cell for r in results]
    first = summary["cells"][0]
    assert first["outcome"] == OK
    assert first["result"] == "cells/debian-12__3.0.20__default.json"
    assert (out.root / first["result"]).is_file()
    assert first["scenarios"]["ondemand-kat"]["verdict"] == "STICKY_ERROR"
    assert summary["cells"][2]["outcome"] == BUILD_FAILED
    assert summary["cells"][2]["scenarios"] == {}

    assert first["scenarios"]["ondemand-kat"]["status"] == "STICKY_ERROR"

    md = table_path.read_text()
    assert "Run abc123" in md and "engine 26.1" in md
    assert "### ondemand-kat" in md and "### no-failure" in md and "## Findings" in md
    assert "| debian-12 (glibc 2.36)" in md and "| musl-debian-12 (musl 1.2.3)" in md
    for code, word in (("STICKY", "STICKY_ERROR"), ("CLEAN", "CLEAN_RELOAD")):
        assert f"- `{code}` `{word}` " in md  # the legend
    assert "**3 cells measured (6 scenarios: " in md
    assert "### Cells without a full result" in md
    assert "- `musl-debian-12/3.0.20/default`: BUILD_FAILED: docker build failed" in md
    assert "build: `results/cells/musl-debian-12__3.0.20__default.build.log`" in md
    for r in results:
        assert r.cell in md or r.outcome == OK  # OK cells show in the tables, not the list
    assert [p for p in out.root.iterdir() if p.name.startswith(".")] == []


def test_a_second_run_on_the_same_results_directory_refuses(tmp_path: Path) -> None:
    out = ResultsDir(tmp_path / "r")
    with out.locked():
        assert (tmp_path / "r" / ".lock").read_text().startswith("pid ")
        with pytest.raises(MatrixError, match="in use by a run of fips-matrix"), out.locked():
            pass
    with out.locked():  # released: the next run goes ahead
        pass


def test_skipped_platforms_leave_the_tables_for_one_group(results: list[CellResult]) -> None:
    skipped = copy.deepcopy(results[0])
    skipped.platform, skipped.cell = "alpine-3.24", "alpine-3.24/3.0.20/default"
    skipped.outcome, skipped.scenarios = "SKIPPED", []
    skipped.reason = "base image: alpine:3.24 cannot be pulled\n  To fix: load it first"
    other = copy.deepcopy(skipped)
    other.cell, other.variant = "alpine-3.24/3.0.20/no-pinshared", "no-pinshared"
    shape = layout([*results, skipped, other])
    assert "alpine-3.24" not in {c.platform for c in shape.columns}
    text = table.skipped_markdown([*results, skipped, other])
    assert text[2] == "- **2 cells** (platform alpine-3.24):"
    assert "  base image: alpine:3.24 cannot be pulled" in text
    assert "    To fix: load it first" in text  # whole, every line of it


def test_redaction_takes_the_mirror_and_nothing_else() -> None:
    redact = mirror_redactor("http://mirror.test/debian")
    assert redact("Get:1 http://mirror.test/debian bookworm") == f"Get:1 {PLACEHOLDER} bookworm"
    assert redact("Could not resolve 'mirror.test'") == f"Could not resolve '{PLACEHOLDER}'"
    assert redact("sub.mirror.test.example") == "sub.mirror.test.example"
    short = mirror_redactor("http://deb/debian")  # a host with no dot: only the URL goes
    assert short("debian-12/3.0.20/default deb12ab http://deb/debian/pool") == (
        f"debian-12/3.0.20/default deb12ab {PLACEHOLDER}/pool"
    )

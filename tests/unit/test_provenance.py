"""Reports mark measurements this run did not make: probe runs reused from an earlier run,
cells taken from an earlier run, cells of merged runs; each with where (the fingerprint's
kernel and engine) and when it was measured."""

from __future__ import annotations

import copy
import dataclasses

from support.made_results import measured

from matrix.report.html import render_html
from matrix.report.provenance import EARLIER, MERGED, REUSED, THIS_RUN, groups
from matrix.report.table import render_markdown
from matrix.results.records import CellResult, EngineInfo, Run, scenarios_of

RUN = Run(
    id="now",
    started="2026-02-01T00:00:00+00:00",
    tool_version="0.1.0",
    matrix="m",
    matrix_digest="d",
    cells=[],
    engine=EngineInfo("27.0", "1.46", "6.6.0"),
)


def cell(cell_id: str, started: str, kernel: str = "6.6.0", engine: str = "27.0") -> CellResult:
    r = measured(cell_id, "nodelete", scenarios=("ondemand-kat",))
    r.fingerprint = {
        "times": {"started": started},
        "host": {"kernel": kernel},
        "engine": {"version": engine},
    }
    return r


def test_cells_this_run_probed_on_its_engine_need_no_note() -> None:
    assert groups([cell("p/1/a", "2026-02-01T00:00:05+00:00")], RUN) == []


def test_reused_earlier_and_merged_cells_say_where_and_when() -> None:
    own = cell("p/1/a", "2026-02-01T00:00:05+00:00")
    reused = cell("p/1/b", "2026-02-01T00:00:06+00:00", kernel="6.1.0", engine="20.10")
    reused.fingerprint["probe_runs_reused_from"] = {"started": "2026-01-05T10:00:00+00:00"}
    earlier = cell("p/1/c", "2026-01-20T09:00:00+00:00", kernel="6.1.0", engine="20.10")
    found = {g.kind: g for g in groups([own, reused, earlier], RUN)}
    assert set(found) == {THIS_RUN, REUSED, EARLIER}
    assert found[REUSED].line() == (
        "1 cells were not probed by this run: their probe runs were reused from an earlier "
        "run: measured 2026-01-05T10:00:00+00:00 on kernel 6.1.0, engine 20.10"
    )
    assert found[EARLIER].first == "2026-01-20T09:00:00+00:00"
    assert "come from an earlier run and were not measured by this one" in found[EARLIER].line()

    page = render_html([own, reused, earlier], RUN, scenarios_of([own]))
    assert found[REUSED].line() in page
    assert "2026-01-05T10:00:00+00:00 on kernel 6.1.0, engine 20.10 (probe runs reused" in page
    assert found[EARLIER].line() in render_markdown([own, earlier], RUN, ["ondemand-kat"])

    merged = dataclasses.replace(RUN, merged_from=["a", "b"], started="2026-01-01")
    other = copy.deepcopy(own)
    other.cell, other.platform = "q/1/a", "q"
    other.fingerprint["host"] = {"kernel": "5.15.0"}
    lines = [g.line() for g in groups([own, other], merged)]
    assert lines == [
        "1 cells come from the runs merged here: measured 2026-02-01T00:00:05+00:00 on "
        "kernel 6.6.0, engine 27.0",
        "1 cells come from the runs merged here: measured 2026-02-01T00:00:05+00:00 on "
        "kernel 5.15.0, engine 27.0",
    ]
    assert all(g.kind == MERGED for g in groups([own, other], merged))


def test_the_reference_run_says_its_probe_runs_were_reused(
    reference: tuple[list[CellResult], Run],
) -> None:
    results, run = reference
    reused = [r for r in results if "probe_runs_reused_from" in r.fingerprint]
    found = [g for g in groups(results, run) if g.kind == REUSED]
    assert sum(g.cells for g in found) == len(reused)
    for g in found:
        assert g.kernel in {r.fingerprint["host"]["kernel"] for r in reused}

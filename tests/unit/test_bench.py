"""The benchmark's figures are read from build logs: the parsing must find each step's
wall time and CPU, and count cache hits, in logs as the engine writes them."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.made_results import measured

from matrix import cli
from matrix.bench.figures import cell_figures, report, step_figures
from matrix.bench.gap import FOLLOW_UPS, follow_up_containers
from matrix.results.store import ResultsDir

# As a cold compile and a relink print them (dash's `times`: shell, then children).
COMPILE_LOG = """Step 10/20 : RUN fips-matrix-build.sh compile
 ---> Running in 5a1c
fips-matrix-build: compile took 165 s; cpu:
0m0.000000s 0m0.000000s
1m59.290000s 0m32.050000s
Removing intermediate container 5a1c
Step 12/20 : RUN fips-matrix-build.sh link
fips-matrix-build: link took 0 s; cpu:
0m0.000000s 0m0.000000s
0m0.210000s 0m0.200000s
"""
CACHED_LOG = """Step 10/20 : RUN fips-matrix-build.sh compile
 ---> Using cache
 ---> 3f5abe0bad84
Step 11/20 : FROM compile AS link
 ---> Using cache
"""


def test_step_figures_from_build_logs(tmp_path: Path) -> None:
    cells = tmp_path / "cells"
    cells.mkdir()
    (cells / "a.build.log").write_text(COMPILE_LOG)
    (cells / "b.build.log").write_text(CACHED_LOG)
    f = step_figures(tmp_path)
    assert f["compiles"] == 1  # the cached one compiled nothing
    assert f["compile_cpu_seconds"] == round(119.29 + 32.05, 1)
    assert f["compile_wall_seconds_summed"] == 165
    assert f["links"] == 1
    assert f["layer_cache_hits"] == 2


def test_a_compile_done_twice_counts_once_in_l(tmp_path: Path) -> None:
    cells = tmp_path / "cells"
    cells.mkdir()
    header = '# args {"CONFIGURE_OPTIONS": "", "LINK_OPTIONS": ""}\n'
    (cells / "debian-12__3.5.7__default.build.log").write_text(header + COMPILE_LOG)
    (cells / "debian-12__3.5.7__no-pinshared.build.log").write_text(header + COMPILE_LOG)
    (cells / "debian-12__3.6.3__default.build.log").write_text(header + COMPILE_LOG)
    f = step_figures(tmp_path)
    assert f["compiles"] == 2
    assert f["redundant_compiles"] == 1
    assert f["compile_cpu_seconds"] == round(2 * (119.29 + 32.05), 1)


def test_the_cold_phase_removes_only_an_earlier_bench_or_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cold phase removes --results whole: a directory of anything else (a typo, a
    checkout) is refused before anything is removed or run."""
    # no engine to reach: should the refusal ever go, the cold phase stops at the engine
    # instead of removing images of a shared engine
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    mine = tmp_path / "checkout"
    mine.mkdir()
    (mine / "notes.txt").write_text("someone's file")
    assert cli.main(["bench", "--results", str(mine), "--phases", "cold"]) == 2
    assert "holds no bench.json or summary.json" in capsys.readouterr().out
    assert (mine / "notes.txt").read_text() == "someone's file"


def test_a_mistyped_cell_is_refused_before_the_cold_phase_removes_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    earlier = tmp_path / "bench"
    earlier.mkdir()
    (earlier / "bench.json").write_text("{}")
    argv = ["bench", "--results", str(earlier), "--phases", "cold", "--only", "debain-12/*"]
    assert cli.main(argv) == 2
    assert "debain-12/*" in capsys.readouterr().out
    assert (earlier / "bench.json").read_text() == "{}"  # an earlier bench's: kept


def test_the_fresh_engine_phases_need_root_and_say_so_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    results = tmp_path / "bench"
    assert cli.main(["bench", "--results", str(results), "--phases", "cold,tests"]) == 2
    assert "needs root" in capsys.readouterr().out
    assert not results.exists()


def test_the_follow_up_runs_cost_is_counted_and_shown(tmp_path: Path) -> None:
    """bench.json and the bench's table say what the follow-up runs (--fate-runs) cost: how
    many, in how many cells, their containers' wall and (from the sampled gap) CPU."""
    out = ResultsDir(tmp_path)
    out.prepare()
    for cell_id, times in (
        (
            "debian-12/3.0.20/default",
            {"fate_runs": 8, "fate_seconds": 2.5, "fate_container": "f" * 64},
        ),
        ("debian-12/3.0.20/no-pinshared", {"fate_runs": 0, "fate_seconds": 0.0}),
        ("debian-12/3.5.7/default", {}),  # written by a version that made none
    ):
        r = measured(cell_id, "nodelete")
        r.fingerprint["times"].update(times)
        out.write_cell(r)
    cells = cell_figures(tmp_path)
    assert (cells["fate_runs"], cells["fate_cells"], cells["fate_seconds_summed"]) == (8, 1, 2.5)
    # its container's CPU is measured under a kind of its own
    assert follow_up_containers(tmp_path) == {"f" * 12: FOLLOW_UPS}
    cold = {
        "wall_seconds": 10,
        "compiles": 1,
        "compile_cpu_seconds": 8,
        "L_seconds": 4,
        "wall_over_L": 2.5,
        "compile_wall_seconds_summed": 5,
        "link_wall_seconds_summed": 1,
        "layer_cache_hits": 0,
        "gap": {"cpu_by_kind": {FOLLOW_UPS: 1.7}},
        **cells,
    }
    table = [" ".join(line.split()) for line in report({"cores": 2, "cold": cold}).splitlines()]
    assert "follow-up runs (--fate-runs) 8 in 1 cells" in table
    assert "their containers' wall, summed 2.5 s" in table
    assert "their containers' CPU 1.7 s" in table
    del cold["fate_runs"]  # an earlier bench's figures: no such rows
    assert "follow-up" not in report({"cores": 2, "cold": cold})

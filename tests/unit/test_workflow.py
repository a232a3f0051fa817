"""The GitHub workflow cannot run here; its structure can be checked: the jobs, their order and
conditions, the gate, the JUnit shown in the run, permissions, time limits, the source
cache, grouped logs, and every action pinned to a commit."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOW = Path(__file__).resolve().parents[2] / ".github/workflows/matrix.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return data


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = job["steps"]
    return found


def run_text(job: dict[str, Any]) -> str:
    return "\n".join(str(s.get("run", "")) for s in steps(job))


def test_jobs_permissions_and_time_limits(workflow: dict[str, Any]) -> None:
    assert set(workflow["jobs"]) == {"plan", "cell", "merge"}
    assert workflow["permissions"] == {"contents": "read"}  # the least, for every job
    for name, job in workflow["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), name
        assert 0 < job["timeout-minutes"] <= 360, name  # GitHub's hosted runners stop at 6 h
    assert workflow["jobs"]["merge"]["permissions"] == {"contents": "read", "checks": "write"}


def test_every_action_is_pinned_to_a_commit(workflow: dict[str, Any]) -> None:
    uses = [s["uses"] for job in workflow["jobs"].values() for s in steps(job) if "uses" in s]
    assert uses
    for use in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", use), use
    text = WORKFLOW.read_text()
    for line in text.splitlines():
        if "uses:" in line:
            assert re.search(r"# v\d+\.\d+\.\d+$", line), f"no tag beside the pin: {line}"


def test_the_plan_fans_out_per_platform_and_a_failed_plan_stops_the_rest(
    workflow: dict[str, Any],
) -> None:
    jobs = workflow["jobs"]
    assert "fips-matrix plan --format github --per platform" in run_text(jobs["plan"])
    assert jobs["cell"]["needs"] == "plan"
    assert jobs["cell"]["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.jobs) }}"
    assert jobs["cell"]["strategy"]["fail-fast"] is False
    merge = jobs["merge"]
    assert set(merge["needs"]) == {"plan", "cell"}
    # after failed cell jobs too, but never without a plan
    assert "always()" in merge["if"] and "needs.plan.result == 'success'" in merge["if"]


def test_cell_jobs_cache_verified_sources_and_group_their_long_logs(
    workflow: dict[str, Any],
) -> None:
    cell = workflow["jobs"]["cell"]
    [cache] = [s for s in steps(cell) if s.get("uses", "").startswith("actions/cache@")]
    assert cache["with"]["path"] == "~/.cache/fips-reload-matrix/sources"
    assert "hashFiles('matrix/default.toml')" in cache["with"]["key"]
    run = run_text(cell)
    assert 'nox -s cell -- "${{ matrix.cell }}"' in run
    assert run.index("::group::") < run.index("nox -s cell") < run.index("::endgroup::")
    assert "|| status=$?" in run  # a failed run still closes its group, then fails the step
    upload = next(s for s in steps(cell) if s.get("uses", "").startswith("actions/upload"))
    assert upload["if"] == "always()"


def test_merge_publishes_junit_and_gates_on_the_committed_reference(
    workflow: dict[str, Any],
) -> None:
    merge = steps(workflow["jobs"]["merge"])
    names = [s.get("uses", s.get("run", "")) for s in merge]
    merge_at = next(i for i, n in enumerate(names) if "fips-matrix merge" in n)
    junit_at = next(i for i, n in enumerate(names) if n.startswith("mikepenz/action-junit-report@"))
    gate_at = next(i for i, n in enumerate(names) if n.startswith("fips-matrix diff"))
    assert merge_at < junit_at < gate_at  # the JUnit shows even when the gate fails
    assert merge[junit_at]["if"] == "always()"
    assert merge[junit_at]["with"]["report_paths"] == "results/merged/junit.xml"
    assert names[gate_at] == "fips-matrix diff results/reference results/merged $ONLY"
    # a pull request compares the cells it planned; any other run, all of them
    assert merge[gate_at]["env"]["ONLY"] == "${{ needs.plan.outputs.only }}"
    assert (WORKFLOW.parents[2] / "results/reference/summary.json").is_file()
    assert "::group::" in names[merge_at]
    # its JUnit fails what changed against the reference, not every known death
    assert "--results results/merged --baseline results/reference" in names[merge_at]


def test_a_pull_request_runs_the_cells_its_change_reaches(workflow: dict[str, Any]) -> None:
    # PyYAML reads the key `on` as True
    trigger = workflow.get("on", workflow.get(True))
    assert set(trigger["pull_request"]["paths"]) == {
        "matrix/default.toml",
        "dockerfiles/**",
        "probes/**",
    }
    plan_step = next(s for s in steps(workflow["jobs"]["plan"]) if s.get("id") == "plan")
    assert "--changed" in plan_step["run"] and "--matrix-before" in plan_step["run"]
    assert plan_step["env"]["BASE"] == "${{ github.event.pull_request.base.sha }}"
    # nothing reached: no cell job and no merge (GitHub refuses an empty job matrix)
    assert workflow["jobs"]["cell"]["if"] == "${{ needs.plan.outputs.jobs != '' }}"
    assert "needs.plan.outputs.jobs != ''" in workflow["jobs"]["merge"]["if"]

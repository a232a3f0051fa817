"""The vocabulary (matrix/model/vocabulary.py): every word the reports can meet has its look,
and the scenario list is the one the matrix file, the C probe and the twin offer."""

from __future__ import annotations

import re
from pathlib import Path

from matrix.model.vocabulary import (
    KNOWN_SCENARIOS,
    LOOKS,
    RELOAD_VERDICTS,
    SCENARIOS,
    Outcome,
    Scenario,
    Status,
    Verdict,
    control_of,
    junit_status,
    partner_of,
    scenario_status,
)

REPO = Path(__file__).resolve().parents[2]


def test_every_verdict_status_and_outcome_but_ok_and_flaky_has_a_look() -> None:
    words = {*Verdict, *Status, *Outcome} - {Outcome.OK, Outcome.FLAKY}
    assert set(LOOKS) == words
    ranked = [w for w, info in LOOKS.items() if info.rank is not None]
    assert set(LOOKS) - set(ranked) == {Outcome.SKIPPED}  # a skip says nothing of a platform


def test_ranks_put_a_clean_reload_first_and_broken_measurements_last() -> None:
    rank = {w: LOOKS[w].rank for w in LOOKS}
    assert rank[Verdict.CLEAN_RELOAD] == 0
    assert rank[Verdict.CLEAN_RELOAD] < rank[Verdict.MAPPED_BUT_RECOVERED]
    assert rank[Verdict.MAPPED_BUT_RECOVERED] < rank[Verdict.STICKY_ERROR]
    assert rank[Verdict.STICKY_ERROR] < rank[Verdict.INCONCLUSIVE] < rank[Verdict.PROBE_CRASHED]
    # a process that died after its reload is worse than any reload verdict
    assert all(rank[v] < rank[Status.DIED_AFTER_RELOAD] for v in RELOAD_VERDICTS)
    assert rank[Status.DIED_AFTER_RELOAD] < rank[Verdict.PROBE_CRASHED]
    codes = [info.code for info in LOOKS.values()]
    colours = [LOOKS[w].colour for w in (*RELOAD_VERDICTS, Status.DIED_AFTER_RELOAD)]
    assert len(set(colours)) == len(colours)  # died has a colour of its own
    assert codes.count(LOOKS[Status.DIED_AFTER_RELOAD].code) == 1


def test_every_scenario_is_described_and_the_matrix_file_knows_them_all() -> None:
    assert set(SCENARIOS) == set(Scenario)
    assert tuple(s.value for s in Scenario) == KNOWN_SCENARIOS


def test_each_control_is_its_partner_minus_the_failure_and_named_in_one_place() -> None:
    controls = {name: info.control for name, info in SCENARIOS.items() if info.control}
    assert controls == {
        "ondemand-kat": "no-failure",
        "worker-thread": "worker-thread-no-failure",
        "worker-no-stop": "worker-no-stop-no-failure",
        "thread-pool": "thread-pool-no-failure",
    }
    for partner, control in controls.items():
        assert SCENARIOS[partner].forced_test is not None
        assert SCENARIOS[control].forced_test is None  # no failure forced, so the reload
        assert set(SCENARIOS[control].control_expects) == {  # must pass, mapped or not
            Verdict.CLEAN_RELOAD,
            Verdict.MAPPED_BUT_RECOVERED,
        }
        assert (control_of(partner), partner_of(control)) == (control, partner)
    assert control_of("exit-after-reload") is None and partner_of("ondemand-kat") is None
    assert control_of("not a scenario") is None


def test_the_c_probe_offers_the_models_scenarios_in_order() -> None:
    source = (REPO / "probes" / "fips_probe.c").read_text(encoding="utf-8")
    names = source.split("scenario_names[] = {", 1)[1].split("}", 1)[0]
    assert re.findall(r'"([a-z-]+)"', names) == [s.value for s in Scenario]


def test_junit_passes_facts_and_fails_what_needs_acting_on() -> None:
    # a reload verdict is a fact about the platform: it passes
    for verdict in RELOAD_VERDICTS:
        assert junit_status(Scenario.ONDEMAND_KAT, verdict) == "passed"
    assert junit_status(Scenario.WORKER_THREAD, Status.DIED_AFTER_RELOAD) == "failure"
    # a control passes only with what it must show
    assert junit_status(Scenario.NO_FAILURE, Verdict.MAPPED_BUT_RECOVERED) == "passed"
    assert junit_status(Scenario.LEAKED_REF, Verdict.STICKY_ERROR) == "passed"
    assert junit_status(Scenario.LEAKED_REF, Verdict.CLEAN_RELOAD) == "failure"
    assert junit_status(Scenario.LEAKED_REF, Status.DIED_AFTER_RELOAD) == "failure"
    for broken in (Verdict.INCONCLUSIVE, Verdict.PROBE_CRASHED, Verdict.DISAGREEMENT):
        assert junit_status(Scenario.ONDEMAND_KAT, broken) == "error"
    assert junit_status(Scenario.ONDEMAND_KAT, Outcome.BUILD_FAILED) == "error"
    assert junit_status(Scenario.ONDEMAND_KAT, Outcome.SKIPPED) == "skipped"
    assert junit_status(Scenario.ONDEMAND_KAT, "SOMETHING-ELSE") == "error"


def test_a_reload_whose_process_died_afterwards_has_its_own_status() -> None:
    died = {"exit_after_document": 139}
    for verdict in RELOAD_VERDICTS:
        assert scenario_status(verdict, died) == Status.DIED_AFTER_RELOAD
        assert scenario_status(verdict, {}) == verdict
        assert scenario_status(verdict, {"exit_after_document": 0}) == verdict
    # junk where the exit code belongs (a results file from elsewhere) is not a death
    for junk in ("139", None, True, [139], {"x": 1}):
        assert scenario_status(Verdict.CLEAN_RELOAD, {"exit_after_document": junk}) == (
            Verdict.CLEAN_RELOAD
        )
    # a verdict that is no reload verdict stays what it is
    assert scenario_status(Verdict.INCONCLUSIVE, died) == Verdict.INCONCLUSIVE
    assert scenario_status("<b>made up</b>", died) == "<b>made up</b>"


def test_a_death_in_any_run_is_a_death() -> None:
    """The run standing for a scenario may have survived where another run died (of a
    minority verdict): the fate counts every run, and a rare death is still a death."""
    some = {"fate": {"died": 1, "runs": 5}}
    assert scenario_status(Verdict.STICKY_ERROR, some) == Status.DIED_AFTER_RELOAD
    for junk in ({"died": 0, "runs": 5}, {"died": True}, {"died": "1"}, "1/5", None):
        assert scenario_status(Verdict.STICKY_ERROR, {"fate": junk}) == Verdict.STICKY_ERROR

"""The vocabulary (matrix/model/vocabulary.py): every word the reports can meet has its look,
and the scenario list is the one the matrix file, the C probe and the twin offer."""

from __future__ import annotations

import re
from pathlib import Path

from matrix.model.definition import KNOWN_SCENARIOS
from matrix.model.vocabulary import LOOKS, SCENARIOS, Outcome, Scenario, Verdict, junit_status

REPO = Path(__file__).resolve().parents[2]


def test_every_verdict_and_every_outcome_but_ok_and_flaky_has_a_look() -> None:
    words = {*Verdict, *Outcome} - {Outcome.OK, Outcome.FLAKY}
    assert set(LOOKS) == words
    ranked = [w for w, info in LOOKS.items() if info.rank is not None]
    assert set(LOOKS) - set(ranked) == {Outcome.SKIPPED}  # a skip says nothing of a platform


def test_ranks_put_a_clean_reload_first_and_broken_measurements_last() -> None:
    rank = {w: LOOKS[w].rank for w in LOOKS}
    assert rank[Verdict.CLEAN_RELOAD] == 0
    assert rank[Verdict.CLEAN_RELOAD] < rank[Verdict.MAPPED_BUT_RECOVERED]
    assert rank[Verdict.MAPPED_BUT_RECOVERED] < rank[Verdict.STICKY_ERROR]
    assert rank[Verdict.STICKY_ERROR] < rank[Verdict.INCONCLUSIVE] < rank[Verdict.PROBE_CRASHED]


def test_every_scenario_is_described_and_the_matrix_file_knows_them_all() -> None:
    assert set(SCENARIOS) == set(Scenario)
    assert tuple(s.value for s in Scenario) == KNOWN_SCENARIOS


def test_the_c_probe_offers_the_models_scenarios_in_order() -> None:
    source = (REPO / "probes" / "fips_probe.c").read_text(encoding="utf-8")
    names = source.split("scenario_names[] = {", 1)[1].split("}", 1)[0]
    assert re.findall(r'"([a-z-]+)"', names) == [s.value for s in Scenario]


def test_control_scenarios_pass_junit_only_with_their_expected_verdicts() -> None:
    assert junit_status(Scenario.NO_FAILURE, Verdict.MAPPED_BUT_RECOVERED) == "passed"
    assert junit_status(Scenario.LEAKED_REF, Verdict.STICKY_ERROR) == "passed"
    assert junit_status(Scenario.LEAKED_REF, Verdict.CLEAN_RELOAD) == "failure"
    assert junit_status(Scenario.ONDEMAND_KAT, Verdict.STICKY_ERROR) == "failure"
    assert junit_status(Scenario.ONDEMAND_KAT, "SOMETHING-ELSE") == "error"

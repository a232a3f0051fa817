"""A scenario's fate as a rate: counted from judged runs, read back from facts of any shape,
and which scenarios want follow-up runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from matrix.judge import fate as fates
from matrix.judge.cell import majority, rejudge
from matrix.judge.fate import Fate
from matrix.results.records import ScenarioResult

FIXTURES = Path(__file__).parent / "fixtures"


def doc(scenario: str = "ondemand-kat") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"glibc-nodelete-{scenario}.json").read_text())
    return data


def test_count_names_each_death_and_leaves_out_runs_without_a_document() -> None:
    runs = [
        {"exit_after_document": 139},
        {},
        {"exit_after_document": 134},
        None,  # died before its document: not a fate
        {"exit_after_document": 139},
        {"exit_after_document": 137, "hung_after_document": True},
        {"exit_after_document": 3},
    ]
    f = fates.count(runs)
    assert (f.died, f.runs) == (5, 6)
    assert f.ends == (("SIGSEGV", 2), ("SIGABRT", 1), ("hung", 1), ("exit 3", 1))
    assert f.text() == "died 5/6 (SIGSEGV 2, SIGABRT 1, hung 1, exit 3 1)"
    assert fates.count([{}, {}]).text() == "survived 2/2"
    assert fates.count([None]).runs == 0


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "3/5",
        {"died": 3},
        {"died": 6, "runs": 5},
        {"died": -1, "runs": 5},
        {"died": True, "runs": 5},
        {"died": 0, "runs": 0},
        {"died": 1.0, "runs": 5},
    ],
)
def test_a_fate_that_is_no_count_is_no_fate(stored: Any) -> None:
    assert fates.fate_of({"fate": stored}) is None


def test_a_fate_reads_back_and_odd_ends_are_dropped() -> None:
    f = fates.count([{"exit_after_document": 139}, {}])
    assert fates.fate_of({"fate": f.to_json()}) == f
    odd = fates.fate_of({"fate": {"died": 1, "runs": 2, "ends": {"SIGSEGV": "x"}}})
    assert odd == Fate(1, 2)


@pytest.mark.parametrize(
    ("facts", "runs", "wanted"),
    [
        ({}, 1, 0),  # survived, alone: nothing to ask
        ({"exit_after_document": 139}, 1, 4),
        ({"exit_after_document": 139}, 5, 0),  # already enough runs
        ({"exit_after_document": 139}, 7, 0),  # --repeat above --fate-runs
        ({"witness_exit_after_document": 134}, 1, 4),  # the twin died
        ({"fate": {"died": 1, "runs": 3}}, 3, 2),  # --repeat 3, one of them died
        ({"runs": {"agree": 2, "total": 3}}, 3, 2),  # --repeat 3, runs disagree
        ({"runs": {"agree": 3, "total": 3}, "fate": {"died": 0, "runs": 3}}, 3, 0),
        ({"exit_after_document": 0, "witness_exit_after_document": False}, 1, 0),
    ],
)
def test_runs_wanted(facts: dict[str, Any], runs: int, wanted: int) -> None:
    assert fates.runs_wanted(facts, runs, 5) == wanted


def test_no_follow_ups_when_fate_runs_is_1() -> None:
    assert fates.runs_wanted({"exit_after_document": 139}, 1, 1) == 0


def test_the_run_standing_for_the_majority_is_one_that_died_if_any_did() -> None:
    d = doc()
    runs = [(0, False, d, ""), (None, True, None, "hung"), (139, False, d, ""), (0, False, d, "")]
    assert majority("ondemand-kat", runs) == 2
    assert majority("ondemand-kat", [(0, False, d, ""), (0, False, d, "")]) == 0


def test_rejudge_counts_the_fate_of_every_run_stored() -> None:
    d = doc()
    runs = [
        {"exit_code": 139, "timed_out": False, "probe": d},
        {"exit_code": 0, "timed_out": False, "probe": d, "follow_up": True},
        {"exit_code": 134, "timed_out": False, "probe": d, "follow_up": True},
        {"exit_code": 139, "timed_out": False, "probe": None, "follow_up": True},
    ]
    s = ScenarioResult("ondemand-kat", "?", "", "", [], {}, 139, False, 0.1, d, None, runs, None)
    judged = rejudge(s)
    assert judged.facts["fate"] == {"died": 2, "runs": 3, "ends": {"SIGSEGV": 1, "SIGABRT": 1}}
    assert judged.status == "DIED_AFTER_RELOAD"
    assert "fate of the C probe's runs: died 2/3 (SIGSEGV 1, SIGABRT 1)" in judged.evidence
    # the run that crashed before its document is a different verdict: flaky
    assert judged.facts["runs"]["agree"] == 3 and judged.facts["runs"]["total"] == 4
    alone = rejudge(ScenarioResult("ondemand-kat", "?", "", "", [], {}, 0, False, 0.1, d))
    assert alone.facts["fate"] == {"died": 0, "runs": 1, "ends": {}}
    assert not any(e.startswith("fate of") for e in alone.evidence)  # one run: nothing to say


@pytest.mark.parametrize(
    ("old", "new", "counts"),
    [
        ((0, 5), (5, 5), True),  # never, then every time: 1 in 252 by chance
        ((0, 5), (4, 5), False),  # 1 in 42: not enough
        ((0, 5), (3, 5), False),  # seen between two runs of one commit: chance
        ((0, 5), (1, 5), False),
        ((0, 10), (6, 10), True),  # more runs tell a smaller change
        ((0, 10), (4, 10), False),
        ((0, 1), (5, 5), True),  # one survival (never run again), then it died every time
        ((0, 1), (1, 1), True),  # --fate-runs 1: each side one observation, as before
        ((0, 1), (2, 5), False),  # a rare death against one survival: chance
        ((0, 3), (1, 5), False),
        ((5, 5), (0, 1), True),  # it died every time, now it did not
        ((5, 5), (0, 5), True),
        ((1, 1), (0, 1), True),
        ((2, 5), (0, 1), False),  # a rare death not seen this time
        ((2, 5), (0, 5), False),
        ((2, 5), (4, 5), False),  # deaths at any rates: the same fact
        ((5, 5), (1, 5), False),
        ((0, 5), (0, 1), False),
        ((0, 1), (0, 5), False),
    ],
)
def test_a_fate_moved_only_where_the_runs_support_it(
    old: tuple[int, int], new: tuple[int, int], counts: bool
) -> None:
    assert fates.moved(Fate(*old), Fate(*new)) is counts


def test_two_healthy_runs_rarely_tell_all_from_none() -> None:
    """What the rule leaves to chance, computed: a scenario dying at rate p shows 'all' in one
    run (its first run died, then every follow-up) and 'none' in the other (its one run
    survived) with probability p^N (1 - p), which must stay under the 7 % the docstring says
    at N = 5, and be 0 where nothing else can give a change (2 of 5 against 1 survival)."""
    worst = max((p / 1000) ** 5 * (1 - p / 1000) for p in range(1001))
    assert 0.06 < worst < 0.07
    # every pair of fates one p could give (first run survived: 0/1; else k/5, k >= 1) that
    # the rule counts is such an 'all against none'
    sides = [Fate(0, 1), *(Fate(k, 5) for k in range(1, 6))]
    counted = {(a, b) for a in sides for b in sides if fates.moved(a, b)}
    assert counted == {(Fate(0, 1), Fate(5, 5)), (Fate(5, 5), Fate(0, 1))}


def test_seen_falls_back_to_the_one_run_of_an_older_result() -> None:
    assert fates.seen({"exit_after_document": 139}) == Fate(1, 1)
    assert fates.seen({}) == Fate(0, 1)
    assert fates.seen({"fate": {"died": 2, "runs": 5}}) == Fate(2, 5)


def test_the_twins_run_counts_with_the_c_probes_where_it_ran() -> None:
    """Seen between two runs of one commit (debian-13, 3.0.20 no-pinshared,
    thread-pool-no-failure): the C probe lived 5 of 5 while its twin's process died, then
    died 5 of 5. Counting the twin, the platform's process dies on both sides: one fact."""
    before = {"fate": {"died": 0, "runs": 5}, "witness_verdict": "MAPPED_BUT_RECOVERED"}
    before["witness_exit_after_document"] = 142
    after = {"fate": {"died": 5, "runs": 5, "ends": {"SIGABRT": 5}}, "witness_verdict": "X"}
    after["witness_exit_after_document"] = 142
    assert fates.witnessed(before) == Fate(1, 6, (("SIGALRM", 1),))
    assert fates.witnessed(after) == Fate(6, 6, (("SIGABRT", 5), ("SIGALRM", 1)))
    assert not fates.moved(fates.witnessed(before), fates.witnessed(after))
    assert fates.moved(fates.seen(before), fates.seen(after))  # the C probe's alone: moved
    # a twin that lived adds a run; no twin, nothing
    assert fates.witnessed({"fate": {"died": 0, "runs": 5}, "witness_verdict": "V"}) == Fate(0, 6)
    assert fates.witnessed({"fate": {"died": 2, "runs": 5}}) == Fate(2, 5)

"""Recoverability (matrix/judge/recovery.py) over real cell documents of the reference run,
and over copies of them changed where a case needs it (a control, a rate, a missing scenario)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from matrix.assets import REFERENCE_DIR
from matrix.judge.fate import seen
from matrix.judge.recovery import (
    CONTEXT,
    FREE,
    KIND,
    LIBC_REASON,
    MARKS,
    NODELETE_REASON,
    THREADS,
    recoverability,
)
from matrix.model.vocabulary import SCENARIOS, Outcome, Recovery, ScenarioInfo, Verdict
from matrix.results.records import CellResult, ScenarioResult

WORKER_CONTROL = "worker-thread-no-failure"
CONTROLS = {"worker-thread": WORKER_CONTROL, "ondemand-kat": "no-failure"}
FIXTURES = Path(__file__).parent / "fixtures"
# the attributed cause of the worker's death in the sanity run's 3.6.3 no-pinshared cell
UNLOADED = "code of the unloaded fips.so ran after dlclose"


def sanity(name: str) -> CellResult:
    """A real cell document of a run with the control scenarios and fates as rates
    (fixtures/cell-*.json: debian-12-3.6.3-no-pinshared, debian-12-3.0.20-default)."""
    path = FIXTURES / f"cell-{name}.json"
    return CellResult.from_json(json.loads(path.read_text(encoding="utf-8")))


THREAD_CONTROLS = (
    "worker-thread-no-failure",
    "worker-no-stop-no-failure",
    "thread-pool-no-failure",
)


def cell(name: str) -> CellResult:
    """A real cell document of the reference run, read afresh (tests change their copies),
    as a run without the thread scenarios' controls: the tests here add the controls they
    are about themselves (the sanity fixtures are the real cells with them)."""
    path = REFERENCE_DIR / "cells" / f"{name}.json"
    r = CellResult.from_json(json.loads(path.read_text(encoding="utf-8")))
    return without(r, *THREAD_CONTROLS)


def scenario(r: CellResult, name: str) -> ScenarioResult:
    return next(s for s in r.scenarios if s.scenario == name)


def without(r: CellResult, *names: str) -> CellResult:
    r.scenarios = [s for s in r.scenarios if s.scenario not in names]
    return r


def survive(s: ScenarioResult) -> None:
    """Its process lived after the document, in every run (its rate goes too)."""
    for key in ("exit_after_document", "crash", "witness_exit_after_document", "fate"):
        s.facts.pop(key, None)


def control_of(s: ScenarioResult, name: str, died: bool) -> ScenarioResult:
    """A control made from its partner: the same facts, its own name, dying or not."""
    c = copy.deepcopy(s)
    c.scenario = name
    if not died:
        survive(c)
    return c


def marks(r: CellResult) -> list[str]:
    return [c.mark for c in recoverability(r).conditions]


# --- NEVER ---------------------------------------------------------------------------------


def test_a_nodelete_build_never_recovers_and_says_why() -> None:
    r = cell("debian-12__3.0.20__default")
    assert scenario(r, "ondemand-kat").facts["module_nodelete"] is True
    got = recoverability(r)
    assert got.status == Recovery.NEVER
    assert got.reasons == (NODELETE_REASON,)
    assert set(got.cited) == {"ondemand-kat", "load-kat", "integrity"}
    assert got.marks == "N"


def test_a_libc_whose_dlclose_unmaps_nothing_never_recovers_whatever_the_build() -> None:
    r = cell("musl-debian-12__3.5.7__no-pinshared")
    assert scenario(r, "ondemand-kat").facts["module_nodelete"] is False
    got = recoverability(r)
    assert (got.status, got.reasons, got.marks) == (Recovery.NEVER, (LIBC_REASON,), "L")
    both = recoverability(cell("musl-debian-12__3.5.7__default"))
    assert both.reasons == (NODELETE_REASON, LIBC_REASON) and both.marks == "N,L"


def test_never_stays_the_answer_when_a_correct_program_also_died() -> None:
    r = cell("debian-12__3.0.20__default")
    facts = scenario(r, "ondemand-kat").facts
    facts["exit_after_document"] = 139
    facts.pop("fate", None)  # its one run: the one that died
    got = recoverability(r)
    assert got.status == Recovery.NEVER
    assert any(d.scenario == "ondemand-kat" and d.correct for d in got.deaths)


def test_a_reload_that_failed_for_no_known_holder_is_never_with_its_cause() -> None:
    r = cell("debian-12__3.5.7__no-pinshared")
    for name in ("ondemand-kat", "load-kat", "integrity"):
        scenario(r, name).verdict = Verdict.UNLOADED_BUT_FAILED
    got = recoverability(r)
    assert got.status == Recovery.NEVER and got.marks == "R"
    assert "the reload failed after everything was freed" in got.reasons[0]


# --- CRASHES -------------------------------------------------------------------------------


def test_a_death_where_the_program_did_everything_right_crashes() -> None:
    r = cell("debian-12__3.6.3__no-pinshared")
    worker = scenario(r, "worker-thread")
    assert worker.facts["exit_after_document"] and not worker.facts.get(
        "threads_alive_without_thread_stop"
    )
    got = recoverability(r)
    assert got.status == Recovery.CRASHES
    assert got.cited == ("worker-thread",)
    assert got.reasons == (f"worker-thread: {worker.facts['crash']['finding']}",)
    # the deaths of the scenarios that leave a thread unstopped are recorded, not correct
    assert {d.scenario: d.correct for d in got.deaths} == {
        "worker-thread": True,
        "worker-no-stop": False,
        "thread-pool": False,
    }


def test_without_the_correct_programs_death_the_same_cell_recovers_if_threads_stop() -> None:
    r = cell("debian-12__3.6.3__no-pinshared")
    survive(scenario(r, "worker-thread"))
    got = recoverability(r)
    assert got.status == Recovery.RECOVERS_IF
    threads = next(c for c in got.conditions if c.mark == THREADS)
    assert threads.text == MARKS[THREADS]
    assert "worker-thread" in threads.scenarios and "worker-no-stop" in threads.scenarios


def test_a_death_is_separated_by_its_control() -> None:
    r = cell("debian-12__3.6.3__no-pinshared")
    worker = scenario(r, "worker-thread")
    unseparated = recoverability(r, CONTROLS).deaths[0]
    assert unseparated.control == WORKER_CONTROL and unseparated.control_died is None
    assert unseparated.separation == (
        f"whether the failure is needed is unknown: its control {WORKER_CONTROL} is not in this run"
    )

    r.scenarios.append(control_of(worker, WORKER_CONTROL, died=True))
    needs_none = next(
        d for d in recoverability(r, CONTROLS).deaths if d.scenario == worker.scenario
    )
    assert needs_none.control_died is True
    assert (
        needs_none.separation == f"no forced failure needed: its control {WORKER_CONTROL} died too"
    )

    r.scenarios[-1] = control_of(worker, WORKER_CONTROL, died=False)
    needed = recoverability(r, CONTROLS)
    assert needed.status == Recovery.CRASHES  # the failure is needed, yet the program died
    death = next(d for d in needed.deaths if d.scenario == worker.scenario)
    assert death.control_died is False
    assert (
        death.separation == f"needs the forced failure: its control {WORKER_CONTROL} survived 1/1"
    )


def test_a_dying_control_of_a_correct_program_crashes_the_cell_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a control is a program that does everything right: its death alone is a CRASHES
    monkeypatch.setitem(SCENARIOS, WORKER_CONTROL, ScenarioInfo("control", None))
    r = cell("debian-12__3.5.7__no-pinshared")
    control = control_of(scenario(r, "worker-thread"), WORKER_CONTROL, died=False)
    control.facts["exit_after_document"] = 139
    r.scenarios.append(control)
    got = recoverability(r, CONTROLS)
    assert got.status == Recovery.CRASHES and got.cited == (WORKER_CONTROL,)
    assert got.deaths[0].separation == "no forced failure needed: none was forced"


def test_a_death_is_read_as_a_rate_where_the_results_hold_one() -> None:
    r = cell("debian-12__3.5.7__no-pinshared")
    assert recoverability(r).status == Recovery.RECOVERS_IF
    facts = scenario(r, "worker-thread").facts
    facts["fate"] = {"died": 2, "runs": 5}
    assert (seen(facts).died, seen(facts).runs) == (2, 5)
    got = recoverability(r)
    assert got.status == Recovery.CRASHES and got.deaths[0].rate == "2/5"
    facts["fate"] = {"died": 0, "runs": 5}
    assert recoverability(r).status == Recovery.RECOVERS_IF
    facts["fate"] = {"died": 6, "runs": 5}  # no rate: the single run's fate is read instead
    assert (seen(facts).died, seen(facts).runs) == (0, 1)
    # the run that stands for the scenario lived (no exit status), two others died: the
    # cause says the rate, never "exit status None"
    facts["fate"] = {"died": 2, "runs": 5, "ends": {"SIGSEGV": 2}}
    (death,) = recoverability(r).deaths
    assert "None" not in death.cause and "died 2/5 (SIGSEGV 2)" in death.cause


# --- one cause, one reason: a death and its control's, over a run with controls -----------


def test_a_death_and_its_controls_of_the_same_cause_are_one_cause() -> None:
    r = sanity("debian-12-3.6.3-no-pinshared")
    for name in ("worker-thread", WORKER_CONTROL):  # both died, of the same attributed cause
        assert scenario(r, name).facts["crash"]["finding"] == UNLOADED
        assert scenario(r, name).facts["fate"]["died"] == 5
    got = recoverability(r)
    assert got.status == Recovery.CRASHES
    assert got.cited == ("worker-thread", WORKER_CONTROL)  # both are programs that died
    assert got.reasons == (
        f"worker-thread and its control {WORKER_CONTROL} (no failure needed): {UNLOADED}",
    )
    worker = next(d for d in got.deaths if d.scenario == "worker-thread")
    assert worker.separation == f"no forced failure needed: its control {WORKER_CONTROL} died too"
    assert worker.control_fate is not None and worker.control_fate.text().startswith("died 5/5")


def test_distinct_scenarios_that_died_of_one_cause_are_one_reason() -> None:
    r = sanity("debian-12-3.6.3-no-pinshared")
    ending, worker = scenario(r, "exit-after-reload"), scenario(r, "worker-thread")
    for key in ("crash", "fate", "exit_after_document"):  # it died as the worker did
        ending.facts[key] = copy.deepcopy(worker.facts[key])
    got = recoverability(r)
    assert got.reasons == (
        f"worker-thread and its control {WORKER_CONTROL} (no failure needed), "
        f"exit-after-reload: {UNLOADED}",
    )


def test_a_control_that_died_of_another_cause_is_a_cause_of_its_own() -> None:
    r = sanity("debian-12-3.0.20-default")
    got = recoverability(r)
    assert got.status == Recovery.NEVER  # NODELETE: the deaths change no decision
    nostop = next(d for d in got.deaths if d.scenario == "worker-no-stop")
    control = scenario(r, "worker-no-stop-no-failure").facts["crash"]["finding"]
    assert control != nostop.key
    assert nostop.separation == (
        "the deaths need no forced failure: its control worker-no-stop-no-failure died too, "
        f"of another cause ({control})"
    )


def test_a_death_whose_control_survived_every_run_needs_the_failure() -> None:
    r = sanity("debian-12-3.6.3-no-pinshared")
    control = scenario(r, WORKER_CONTROL)
    survive(control)
    control.facts["fate"] = {"died": 0, "runs": 5, "ends": {}}
    got = recoverability(r)
    assert got.status == Recovery.CRASHES  # the program did everything right, and died
    assert got.reasons == (f"worker-thread (needs the forced failure): {UNLOADED}",)
    worker = next(d for d in got.deaths if d.scenario == "worker-thread")
    assert worker.separation == (
        f"needs the forced failure: its control {WORKER_CONTROL} survived 5/5"
    )
    # its cffi twin died: a second sample of the same run, so the control is no survivor
    control.facts["witness_exit_after_document"] = 139
    worker = next(d for d in recoverability(r).deaths if d.scenario == "worker-thread")
    assert worker.control_died is True
    assert worker.separation == (
        "the deaths need no forced failure: its control "
        f"{WORKER_CONTROL} died too (in its cffi twin's process)"
    )


# --- RECOVERS IF and RECOVERS --------------------------------------------------------------


def test_recovery_depends_on_the_conditions_the_cell_proves() -> None:
    r = cell("debian-12__3.0.20__no-pinshared")
    got = recoverability(r)
    assert got.status == Recovery.RECOVERS_IF and got.marks == "F,C,T"
    by_mark = {c.mark: c for c in got.conditions}
    assert by_mark[FREE].scenarios == ("leaked-ref",)
    assert by_mark[CONTEXT].scenarios == ("two-contexts",)
    # the worker that never stopped kept the error state and died; the one that stopped lived
    assert set(by_mark[THREADS].scenarios) == {"worker-no-stop", "thread-pool", "worker-thread"}
    assert by_mark[THREADS].text == MARKS[THREADS]


def test_without_a_thread_that_stopped_the_call_is_not_claimed_to_be_enough() -> None:
    got = recoverability(without(cell("debian-12__3.0.20__no-pinshared"), "worker-thread"))
    threads = next(c for c in got.conditions if c.mark == THREADS)
    assert "OPENSSL_thread_stop_ex is enough was not shown" in threads.text


def test_threads_are_no_condition_where_a_thread_without_the_call_did_no_harm() -> None:
    r = cell("debian-12__3.5.7__no-pinshared")
    assert scenario(r, "worker-no-stop").facts["threads_alive_without_thread_stop"]
    assert marks(r) == [FREE, CONTEXT]


def test_a_cell_that_proves_no_condition_recovers() -> None:
    r = without(cell("debian-12__3.5.7__no-pinshared"), "leaked-ref", "two-contexts")
    got = recoverability(r)
    assert (got.status, got.conditions, got.marks) == (Recovery.RECOVERS, (), "")


def test_some_failures_recover_and_others_not() -> None:
    r = without(cell("debian-12__3.5.7__no-pinshared"), "leaked-ref", "two-contexts")
    sticky = cell("debian-12__3.5.7__default")
    r.scenarios = [
        scenario(sticky, "load-kat") if s.scenario == "load-kat" else s for s in r.scenarios
    ]
    got = recoverability(r)
    assert got.status == Recovery.RECOVERS_IF and marks(r) == [KIND]
    assert "load-kat" in got.conditions[0].text


# --- NOT MEASURED --------------------------------------------------------------------------


def test_a_skipped_cell_is_not_measured_and_says_why() -> None:
    r = cell("alpine-3.23__3.0.20__default")
    assert r.outcome == Outcome.SKIPPED
    got = recoverability(r)
    assert got.status == Recovery.NOT_MEASURED and got.reasons[0].startswith("SKIPPED: ")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda r: without(r, "ondemand-kat", "load-kat", "integrity"), "none of"),
        (lambda r: setattr(scenario(r, "load-kat"), "verdict", Verdict.INCONCLUSIVE), "INCONCL"),
    ],
)
def test_a_cell_without_the_base_scenarios_measured_is_not_measured(change: Any, why: str) -> None:
    r = cell("debian-12__3.5.7__no-pinshared")
    change(r)
    got = recoverability(r)
    assert got.status == Recovery.NOT_MEASURED and why in got.reasons[0]


def test_the_rule_reads_facts_not_names() -> None:
    r = cell("debian-12__3.0.20__no-pinshared")
    renamed = copy.deepcopy(r)
    renamed.platform, renamed.version, renamed.variant = "x", "9.9.9", "default"
    renamed.cell = "x/9.9.9/default"
    assert recoverability(renamed) == recoverability(r)

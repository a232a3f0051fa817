"""Verdicts from real probe documents (fixtures/), and from copies changed in one place."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from matrix.judge import verdict as v
from matrix.model.vocabulary import Verdict

FIXTURES = Path(__file__).parent / "fixtures"


def doc(build: str, scenario: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"glibc-{build}-{scenario}.json").read_text())
    return data


def step(d: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in d["steps"] if s["name"] == name)


@pytest.mark.parametrize("scenario", ["ondemand-kat", "load-kat", "integrity"])
def test_nodelete_build_keeps_the_error(scenario: str) -> None:
    j = v.judge(scenario, doc("nodelete", scenario))
    assert j.verdict == Verdict.STICKY_ERROR
    assert "NODELETE" in j.cause
    assert "invalid state" in j.cause  # the reason the reload gave
    assert j.facts["reload_fresh_instance"] is False


@pytest.mark.parametrize("scenario", ["ondemand-kat", "load-kat", "integrity"])
def test_unpinned_build_reloads_clean(scenario: str) -> None:
    j = v.judge(scenario, doc("unpinned", scenario))
    assert j.verdict == Verdict.CLEAN_RELOAD
    assert j.facts["mappings_after_unload"] == 0
    assert j.facts["reload_fresh_instance"] is True
    assert any("fresh instance" in e for e in j.evidence)


def test_leaked_reference_is_named_as_the_holder() -> None:
    j = v.judge("leaked-ref", doc("unpinned", "leaked-ref"))
    assert j.verdict == Verdict.STICKY_ERROR
    assert "reference is still held" in j.cause
    assert "NODELETE" not in j.cause


def test_no_failure_control_on_nodelete_is_mapped_but_recovered() -> None:
    j = v.judge("no-failure", doc("nodelete", "no-failure"))
    assert j.verdict == Verdict.MAPPED_BUT_RECOVERED
    assert "reused" in j.cause


def test_failure_that_did_not_take_effect_is_inconclusive() -> None:
    d = doc("unpinned", "ondemand-kat")
    fail = step(d, "fail_a")
    fail["ok"] = True
    fail["self_tests"]["corrupted"] = 0
    fail["self_tests"]["failed_tests"] = ""
    step(d, "refuses_a")["digest_ok"] = True
    j = v.judge("ondemand-kat", d)
    assert j.verdict == Verdict.INCONCLUSIVE
    assert "did not take effect" in j.cause


def test_module_loaded_before_the_probe_is_inconclusive() -> None:
    d = doc("unpinned", "ondemand-kat")
    d["baseline"]["mappings"] = 5
    assert v.judge("ondemand-kat", d).verdict == Verdict.INCONCLUSIVE


def test_libc_whose_dlclose_keeps_mappings_is_named() -> None:
    # musl-like: no NODELETE, yet still mapped, and the canary stayed mapped too
    d = doc("unpinned", "ondemand-kat")
    sticky = doc("nodelete", "ondemand-kat")
    d["baseline"]["libc_dlclose_unmaps"] = False
    d["steps"] = copy.deepcopy(sticky["steps"])
    j = v.judge("ondemand-kat", d)
    assert j.verdict == Verdict.STICKY_ERROR
    assert "dlclose does not unmap" in j.cause
    assert "NODELETE" not in j.cause


def test_unmapped_but_failed_reload() -> None:
    d = doc("unpinned", "ondemand-kat")
    st = step(d, "selftest_b")
    st["ok"] = False
    st["digest_ok"] = False
    assert v.judge("ondemand-kat", d).verdict == Verdict.UNLOADED_BUT_FAILED


def test_mapped_and_recovered_after_a_failure() -> None:
    d = doc("unpinned", "ondemand-kat")
    step(d, "unload_a")["mappings"] = 5
    step(d, "unload_a")["noload_loaded"] = True
    j = v.judge("ondemand-kat", d)
    assert j.verdict == Verdict.MAPPED_BUT_RECOVERED


def test_maps_and_noload_disagreeing_is_recorded() -> None:
    d = doc("unpinned", "ondemand-kat")
    step(d, "unload_a")["noload_loaded"] = True
    j = v.judge("ondemand-kat", d)
    assert any("disagree" in e for e in j.evidence)
    assert j.facts["mapped_after_unload"] is True


def test_crash_timeout_and_garbage() -> None:
    crashed = v.judge_run("ondemand-kat", 139, False, None)
    assert crashed.verdict == Verdict.PROBE_CRASHED
    assert crashed.facts["signal_name"] == "SIGSEGV"
    assert v.judge_run("ondemand-kat", None, True, None).verdict == Verdict.TIMEOUT
    garbage = v.judge_run("ondemand-kat", 0, False, None, "stdout is not one JSON document")
    assert garbage.verdict == Verdict.PROBE_CRASHED
    assert "not one JSON" in garbage.cause
    # a complete document wins over a crash at exit (after it was printed)
    late = v.judge_run("ondemand-kat", 139, False, doc("unpinned", "ondemand-kat"))
    assert late.verdict == Verdict.CLEAN_RELOAD


def test_two_contexts_other_context_shares_the_error_state() -> None:
    j = v.judge("two-contexts", doc("unpinned", "two-contexts"))
    # the state is a static in fips.so: the context that never failed is refused too
    assert j.facts["other_context_kept_working"] is False
    assert j.facts["reload_while_other_context_held_it"] is False
    # once both contexts are freed, the unpinned module leaves and the reload is clean
    assert j.verdict == Verdict.CLEAN_RELOAD
    assert any("other context still held" in e for e in j.evidence)


def test_worker_thread_observations_are_evidence() -> None:
    j = v.judge("worker-thread", doc("nodelete", "worker-thread"))
    worker = j.facts["worker"]
    assert worker["ok_before_failure"] > 0
    assert worker["failed_after_failure"] > 0 and worker["ok_after_failure"] == 0
    assert j.verdict == Verdict.STICKY_ERROR
    assert any(e.startswith("worker thread:") for e in j.evidence)


def test_exit_after_a_complete_document_is_recorded_not_a_crash() -> None:
    j = v.judge_run("worker-thread", 134, False, doc("unpinned", "worker-thread"))
    assert j.verdict == Verdict.CLEAN_RELOAD
    assert j.facts["exit_after_document"] == 134
    assert "SIGABRT" in j.evidence[-2]
    assert j.evidence[-1] == v.NO_RECORD  # a caught signal, yet no crash line kept
    assert "afterwards the process died (signal 6 (SIGABRT))" in j.cause
    assert j.short.endswith("then SIGABRT")


def test_deferred_self_tests_fail_at_first_use() -> None:
    d = json.loads((FIXTURES / "glibc402-nodelete-deferred-load-kat.json").read_text())
    assert d["module_config_extra"] == ["defer-tests=1"]
    j = v.judge("load-kat", d)
    assert j.verdict == Verdict.STICKY_ERROR
    assert "first use (deferred self-tests)" in j.evidence[0]


# ---------- the threads real programs have, and the normal end of a process ----------


def test_a_live_worker_that_never_stopped_is_named_as_what_holds_the_module() -> None:
    """3.0.20 no-pinshared, worker-no-stop: fips.so stays mapped with nothing else holding
    it, while the worker that never called OPENSSL_thread_stop_ex is still alive."""
    d = doc("unpinned", "worker-no-stop")
    j = v.judge("worker-no-stop", d)
    assert j.verdict == Verdict.STICKY_ERROR
    assert j.facts["threads_alive_without_thread_stop"] == ["worker"]
    assert j.cause.startswith("a live thread's state (worker: used the module, never called")
    assert j.short == "thread state"
    # the worker's own line says what it did, not what worker-thread's worker does
    [line] = [e for e in j.evidence if e.startswith("thread worker:")]
    assert "never called OPENSSL_thread_stop_ex" in line
    assert not any("it called OPENSSL_thread_stop_ex" in e for e in j.evidence)
    # once the worker had called it, nothing would be left to name
    for w in d["workers"]:
        w["called_thread_stop"] = True
    assert v.judge("worker-no-stop", d).cause.startswith("still mapped by an unidentified")


def test_a_known_holder_is_named_before_a_live_thread() -> None:
    j = v.judge("worker-no-stop", doc("nodelete", "worker-no-stop"))
    assert "NODELETE" in j.cause and "live thread" not in j.cause


def test_thread_pool_evidence_tells_each_worker_apart() -> None:
    j = v.judge("thread-pool", doc("unpinned", "thread-pool"))
    lines = {e.split(":")[0]: e for e in j.evidence if e.startswith("thread pool-")}
    assert set(lines) == {"thread pool-1", "thread pool-2", "thread pool-3", "thread pool-4"}
    assert "called OPENSSL_thread_stop_ex and exited before the failure" in lines["thread pool-1"]
    assert "never called OPENSSL_thread_stop_ex and exited before" in lines["thread pool-2"]
    assert "it called OPENSSL_thread_stop_ex, lived through the free" in lines["thread pool-3"]
    assert "never called OPENSSL_thread_stop_ex, lived through" in lines["thread pool-4"]
    # only pool-4 was alive at the unload without having called it
    assert j.facts["threads_alive_without_thread_stop"] == ["pool-4"]
    assert [w["name"] for w in j.facts["workers"]] == ["pool-1", "pool-2", "pool-3", "pool-4"]


def test_exit_after_reload_records_how_each_end_went() -> None:
    d = doc("unpinned", "exit-after-reload")
    j = v.judge("exit-after-reload", d)
    assert j.verdict == Verdict.CLEAN_RELOAD
    assert j.facts["exit_without_context"] == d["exit_without_context"]
    assert j.facts["exit_after_cleanup"] == d["exit_after_cleanup"]
    assert j.facts["context_alive_at_exit"] is True
    assert "a child that freed context B and returned from main: exited with status 0" in (
        j.evidence
    )
    d["exit_after_cleanup"] = {"exit_status": None, "signal": 11, "timed_out": False}
    died = v.judge("exit-after-reload", d)
    assert any(
        e.endswith("OPENSSL_cleanup() and returned from main: died with signal 11 (SIGSEGV)")
        for e in died.evidence
    )
    d["exit_after_cleanup"] = {"exit_status": "0", "signal": None, "timed_out": False}
    assert v.judge("exit-after-reload", d).verdict == Verdict.INCONCLUSIVE  # malformed


def test_malformed_workers_are_inconclusive_not_a_traceback() -> None:
    for change in (
        lambda d: d.update(workers="x"),
        lambda d: d["workers"][0].pop("called_thread_stop"),
        lambda d: d["workers"][0].update(name=None),
        lambda d: d["workers"][0].pop("first_error"),
    ):
        d = doc("unpinned", "worker-no-stop")
        change(d)
        assert v.judge("worker-no-stop", d).verdict == Verdict.INCONCLUSIVE


# ---------- the controls of the scenarios with workers: the same run, no failure ----------


@pytest.mark.parametrize("build", ["nodelete", "unpinned"])
@pytest.mark.parametrize(
    "control", ["worker-thread-no-failure", "worker-no-stop-no-failure", "thread-pool-no-failure"]
)
def test_a_worker_control_is_judged_like_its_partner_without_a_failure(
    build: str, control: str
) -> None:
    partner = control.removesuffix("-no-failure")
    d = doc(build, control)
    names = [t["name"] for t in d["steps"]]
    assert "fail_a" not in names and "refuses_a" not in names  # no failure, no refusal
    j = v.judge(control, d)
    assert j.verdict in (Verdict.CLEAN_RELOAD, Verdict.MAPPED_BUT_RECOVERED), j.cause
    assert f"no failure forced: the control of {partner}, run as it is otherwise" in j.evidence
    # the worker facts are read as the partner's
    theirs = v.judge(partner, doc(build, partner))
    assert ("worker" in j.facts, "workers" in j.facts) == (
        "worker" in theirs.facts,
        "workers" in theirs.facts,
    )
    threads = [e for e in j.evidence if e.startswith(("worker thread:", "thread "))]
    assert threads and all("with none forced" in e for e in threads)
    if "workers" in j.facts:
        alive = j.facts["threads_alive_without_thread_stop"]
        assert alive == theirs.facts["threads_alive_without_thread_stop"]


def test_a_control_that_corrupted_a_self_test_is_inconclusive() -> None:
    d = doc("unpinned", "worker-no-stop-no-failure")
    step(d, "worker_start")["self_tests"]["corrupted"] = 1
    j = v.judge("worker-no-stop-no-failure", d)
    assert j.verdict == Verdict.INCONCLUSIVE
    assert "corrupted (worker_start) in a scenario that forces no failure" in j.cause

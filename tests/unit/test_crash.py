"""Crash attribution (matrix/judge/crash.py) from real crash records (fixtures/crash-*.json:
the kept stderr lines of the C probe and the names resolved from the cell image's objects),
and from copies changed in one place: what the judge says of a crash, and of the twin's end."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matrix.judge import crash, crash_lines, crash_places
from matrix.judge import verdict as v
from matrix.judge.cell import rejudge
from matrix.model.vocabulary import Verdict
from matrix.results.records import ScenarioResult

FIXTURES = Path(__file__).parent / "fixtures"
UNLOADED = "crash-glibc402-unpinned-worker-thread.json"
LIBCRYPTO = "crash-glibc-unpinned-worker-no-stop.json"
MUSL = "crash-musl-nodelete-worker-no-stop.json"


def run(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def attributed(record: dict[str, Any]) -> crash.Crash:
    [found] = crash.crashes(record["lines"], crash_places.symbol_table(record["symbols"]))
    return found


def test_code_of_the_unloaded_module_is_the_finding() -> None:
    """4.0.2 no-pinshared: the worker's exit jumps into fips.so's text, unmapped since the
    unload; the reload mapped the module at the same address, so both generations held it."""
    c = attributed(run(UNLOADED)["crash"])
    assert (c.thread, c.signal_name, c.phase, c.child) == (
        "worker",
        "SIGSEGV",
        "after-document",
        False,
    )
    assert c.moment == "the worker thread's exit"
    assert c.pc is not None and c.addr is not None and c.pc.address == c.addr.address
    assert (c.pc.file, c.pc.generation, c.pc.unmapped_at) == ("fips.so", 1, "unload_a")
    assert c.pc.also == ((2, "free_b"),)
    assert (c.pc.function, c.pc.function_offset, c.pc.offset) == ("clean_master_key", 0, 0x10D310)
    assert c.frames == () and "no executable mapping" in c.no_frames_why
    assert c.finding == "code of the unloaded fips.so ran after dlclose" and c.attributed
    assert c.sentence == (
        "code of the unloaded fips.so ran after dlclose: the worker thread's exit called "
        "clean_master_key of fips.so generation 1 or 2 (unmapped at unload_a and at free_b; "
        "both loaded at this address), called from libc.so.6+0x864d1"
    )
    # the caller is the word at sp: the return address of the call that faulted at once
    assert c.stack[0].file == "libc.so.6" and c.stack[0].offset == 0x864D1


def test_without_names_the_offsets_still_attribute_it() -> None:
    record = run(UNLOADED)["crash"]
    c = attributed({**record, "symbols": []})
    assert c.attributed and c.finding == "code of the unloaded fips.so ran after dlclose"
    assert "ran offset 0x10d310 of fips.so generation 1 or 2" in c.sentence
    assert "(no symbol names it)" in "\n".join(c.evidence())


def test_a_fault_in_libcrypto_is_named_with_its_backtrace() -> None:
    """3.0.20 no-pinshared, worker-no-stop: the worker's exit runs libcrypto's thread-stop
    handler on the freed context; glibc's backtrace is read from the interrupted frame on."""
    c = attributed(run(LIBCRYPTO)["crash"])
    assert c.pc is not None and c.pc.unmapped_at is None and c.pc.file == "libc.so.6"
    names = [f.function for f in c.frames]
    assert names[:6] == [
        "pthread_rwlock_rdlock",
        "CRYPTO_THREAD_read_lock",
        "ossl_lib_ctx_get_data",
        "rand_delete_thread_state",
        "init_thread_stop.part.0",
        "init_thread_destructor",
    ]
    assert c.frames[0].address == c.pc.address  # the handler's own frames are left out
    assert not any(f.file == "fips_probe" for f in c.frames)
    assert c.finding == "SIGSEGV in libc.so.6, called from libcrypto.so.3"
    assert c.sentence.startswith(
        "SIGSEGV during the worker thread's exit, in pthread_rwlock_rdlock of libc.so.6, called "
        "from CRYPTO_THREAD_read_lock+0x9 in libcrypto.so.3 ← ossl_lib_ctx_get_data+0x27"
    )
    assert c.addr is not None and not c.addr.located
    evidence = "\n".join(c.evidence())
    assert "#3 rand_delete_thread_state+0x15 (libcrypto.so.3+0x" in evidence


def test_musl_has_no_backtrace_but_its_stack_words_are_named() -> None:
    c = attributed(run(MUSL)["crash"])
    assert c.frames == () and "musl" in c.no_frames_why
    named = [s.function for s in c.stack]
    assert "rand_delete_thread_state" in named and "worker_main" in named
    assert c.pc is not None and c.pc.file.startswith("ld-musl")
    assert ", with return addresses on its stack in " in c.sentence  # not "called from"


def test_a_crash_in_no_recorded_mapping_is_not_attributable_and_says_so() -> None:
    record = run(UNLOADED)["crash"]
    lines = [
        line
        for line in record["lines"]
        if not line.startswith("fips-probe-object") or '"object":"fips"' not in line
    ]
    c = attributed({"lines": lines, "symbols": record["symbols"]})
    assert not c.attributed and c.finding == "not attributable"
    assert c.sentence.startswith("not attributable: SIGSEGV during the worker thread's exit")
    assert c.pc is not None and f"{c.pc.address:#x}" in c.sentence


def test_a_forked_childs_crash_is_told_apart() -> None:
    """The lines of a child of exit-after-reload carry its own pid."""
    record = run(LIBCRYPTO)["crash"]
    parent = crash_lines.parse(record["lines"]).main_pid
    moved = []
    for line in record["lines"]:
        marker = line.partition(" ")[0]
        if marker in ("fips-probe-crash", "fips-probe-maps-begin", "fips-probe-backtrace"):
            line = line.replace(f'"pid":{parent}', '"pid":99999', 1)
        moved.append(line)
    [c] = crash.crashes(moved, crash_places.symbol_table(record["symbols"]))
    assert c.child and c.pid == 99999 and c.moment.startswith("the end of a forked child")
    # the child's maps dump is its own; its objects were seen by the parent before the fork
    assert [f.function for f in c.frames][1] == "CRYPTO_THREAD_read_lock"


def test_the_lines_kept_are_the_markers_and_the_dump_only() -> None:
    record = run(LIBCRYPTO)["crash"]
    noise = ["fips_probe: step load_a", "random text", "7f00-7f01 r-xp 0 0:0 0 /not/in/a/dump"]
    kept = crash_lines.kept_lines("\n".join(noise + record["lines"]))
    assert kept == record["lines"]
    huge = ['fips-probe-event {"pid":1,"tid":1,"event":"step","step":"' + "x" * 1000 + '"}'] * 2000
    cut = crash_lines.kept_lines("\n".join(huge + record["lines"]))
    assert sum(len(line) + 1 for line in cut) <= crash_lines.KEPT_CHARS
    tail = record["lines"][next(i for i, x in enumerate(record["lines"]) if "probe-crash" in x) :]
    assert cut[-len(tail) :] == tail  # the crash's own lines survive the cut


def test_the_judge_puts_the_finding_in_the_cause_and_the_frames_in_the_evidence() -> None:
    r = run(UNLOADED)
    j = v.judge_run(r["scenario"], r["exit_code"], False, r["probe"], crash=r["crash"])
    assert j.verdict == Verdict.CLEAN_RELOAD and j.facts["exit_after_document"] == 139
    assert j.cause.endswith(attributed(r["crash"]).sentence)
    assert "afterwards the process died (signal 11 (SIGSEGV)): code of the unloaded" in j.cause
    facts = j.facts["crash"]
    assert facts["pc"]["function"] == "clean_master_key" and facts["pc"]["generation"] == 1
    assert facts["attributed"] is True and facts["thread"] == "worker"
    assert any("= clean_master_key" in e for e in j.evidence)
    # the same run judged without its record: the process died, nothing more is claimed
    bare = v.judge_run(r["scenario"], r["exit_code"], False, r["probe"])
    assert bare.cause.endswith("afterwards the process died (signal 11 (SIGSEGV))")
    assert "crash" not in bare.facts


@pytest.mark.parametrize("name", [LIBCRYPTO, MUSL])
def test_a_controls_crash_is_attributed_as_its_partners(name: str) -> None:
    """The same real run made into its control (worker-no-stop-no-failure: no fail_a, no
    refuses_a, in the document and in the kept lines): the crash is attributed the same."""
    r = run(name)
    control = copy.deepcopy(r)
    control["scenario"] = "worker-no-stop-no-failure"
    for doc in (control["probe"], (control["witness"] or {}).get("probe") or {"steps": []}):
        doc["steps"] = [s for s in doc["steps"] if s["name"] not in ("fail_a", "refuses_a")]
    control["crash"]["lines"] = [
        line
        for line in control["crash"]["lines"]
        if '"step":"fail_a"' not in line and '"step":"refuses_a"' not in line
    ]
    ours, theirs = rejudge(scenario_result(control)), rejudge(scenario_result(r))
    assert ours.scenario == "worker-no-stop-no-failure"
    assert ours.status == theirs.status == "DIED_AFTER_RELOAD"
    assert ours.facts["crash"] == theirs.facts["crash"] and ours.facts["crash"]["thread"]
    assert ours.cause.split("; afterwards")[1] == theirs.cause.split("; afterwards")[1]


def test_a_crash_before_the_document_is_attributed_too() -> None:
    r = run(LIBCRYPTO)
    j = v.judge_run(r["scenario"], 139, False, None, crash=r["crash"])
    assert j.verdict == Verdict.PROBE_CRASHED
    assert j.cause.startswith("killed by signal 11 (SIGSEGV): SIGSEGV during the worker thread")
    assert j.facts["crash"]["frames"][1]["function"] == "CRYPTO_THREAD_read_lock"


def scenario_result(r: dict[str, Any]) -> ScenarioResult:
    return ScenarioResult(
        scenario=r["scenario"],
        verdict="?",
        cause="",
        short="",
        evidence=[],
        facts={},
        exit_code=r["exit_code"],
        timed_out=False,
        seconds=1.0,
        probe=r["probe"],
        witness=r["witness"],
        crash=r["crash"],
    )


def test_judging_again_returns_a_new_result_and_leaves_the_given_one_alone() -> None:
    """Observations in, a new judged result out: the stored record is never half-judged."""
    given = scenario_result(run(LIBCRYPTO))
    before = copy.deepcopy(given)
    s = rejudge(given)
    assert s is not given and given == before
    assert s.verdict == Verdict.STICKY_ERROR and s.evidence and s.facts
    assert (s.probe, s.witness, s.crash, s.exit_code) == (
        given.probe,
        given.witness,
        given.crash,
        given.exit_code,
    )


def test_a_twin_that_died_otherwise_is_shown_not_a_disagreement() -> None:
    """3.0.20 worker-no-stop: the C probe's process died by SIGSEGV, the twin's aborted
    (SIGABRT): the verdicts agree, the ends differ, the status stays the C probe's."""
    r = run(LIBCRYPTO)
    assert (r["exit_code"], r["witness"]["exit_code"]) == (139, 134)
    s = rejudge(scenario_result(r))
    assert s.verdict == Verdict.STICKY_ERROR and s.status == "DIED_AFTER_RELOAD"
    assert s.facts["witness_exit_after_document"] == 134
    assert (
        "after the document the cffi twin's process ended with signal 6 (SIGABRT), the C "
        "probe's with signal 11 (SIGSEGV)" in s.evidence[-1]
    )
    ended = copy.deepcopy(r)
    ended["witness"]["exit_code"] = 0  # the use after free did no visible harm there
    s = rejudge(scenario_result(ended))
    assert s.verdict == Verdict.STICKY_ERROR and s.status == "DIED_AFTER_RELOAD"
    assert s.evidence[-1].startswith(
        "the cffi twin's process ended normally after its document, the C probe's died "
        "(signal 11 (SIGSEGV)): what a use of freed or unmapped memory does is not fixed"
    )
    same = copy.deepcopy(r)
    same["witness"]["exit_code"] = 139
    assert rejudge(scenario_result(same)).evidence[-1] == (
        "the cffi twin's process died after its document too (signal 11 (SIGSEGV))"
    )
    # a different reload verdict is still a disagreement
    other = copy.deepcopy(r)
    unload = next(x for x in other["witness"]["probe"]["steps"] if x["name"] == "unload_a")
    unload["mappings"], unload["noload_loaded"] = 0, False
    assert rejudge(scenario_result(other)).verdict == Verdict.DISAGREEMENT


def test_a_twin_that_hung_after_its_document_is_a_witness_not_a_disagreement() -> None:
    """Seen on debian-13, 3.0.20 worker-no-stop: the twin printed its whole document, then
    its process hung in the worker's exit until the batch killed it at the timeout. Its
    document still witnesses the reload; the hang is how its process ended."""
    hung = copy.deepcopy(run(LIBCRYPTO))
    hung["witness"]["exit_code"], hung["witness"]["timed_out"] = None, True
    s = rejudge(scenario_result(hung))
    assert s.verdict == Verdict.STICKY_ERROR and s.status == "DIED_AFTER_RELOAD"
    assert s.facts["witness_exit_after_document"] == v.KILLED_AT_TIMEOUT
    assert s.evidence[-1].startswith(
        "after the document the cffi twin's process ended with a hang (killed at its "
        "timeout), the C probe's with signal 11 (SIGSEGV)"
    )
    # the C probe's own hang after its document: judged by the document, shown as a hang
    j = v.judge_run(hung["scenario"], None, True, hung["probe"])
    assert j.verdict == Verdict.STICKY_ERROR and j.facts["hung_after_document"] is True
    assert j.short.endswith("; then hung")
    assert "afterwards the process died (a hang: killed at its timeout)" in j.cause
    # with no complete document, a timeout is still a TIMEOUT
    assert v.judge_run(hung["scenario"], None, True, None).verdict == Verdict.TIMEOUT
    partial = {**hung["probe"], "completed": False}
    assert v.judge_run(hung["scenario"], None, True, partial).verdict == Verdict.TIMEOUT


anything = st.none() | st.booleans() | st.integers() | st.text(max_size=12)
# a crash line whose every field may be anything, beside real lines
odd_crash = st.fixed_dictionaries(
    {"pid": st.sampled_from([1, 2]), "tid": st.integers(1, 3)},
    optional={
        key: anything | st.sampled_from(["0x10", "0x7f0000001000"]) | st.lists(anything)
        for key in ("thread", "signal", "code", "addr", "pc", "phase", "first", "stack")
    },
).map(lambda d: "fips-probe-crash " + json.dumps(d))
lines = st.lists(
    st.one_of(
        st.sampled_from(run(LIBCRYPTO)["crash"]["lines"]),
        odd_crash,
        st.builds(
            lambda m, t: f"{m} {t}",
            st.sampled_from(crash_lines.MARKERS),
            st.one_of(
                st.text(max_size=40),
                st.recursive(
                    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                    lambda inner: (
                        st.dictionaries(st.text(max_size=8), inner, max_size=5)
                        | st.lists(inner, max_size=4)
                    ),
                    max_leaves=12,
                ).map(json.dumps),
            ),
        ),
        st.text(max_size=60),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(lines, st.lists(st.dictionaries(st.text(max_size=8), st.text(max_size=8)), max_size=3))
def test_any_lines_are_judged_without_a_traceback(found: list[str], symbols: Any) -> None:
    for c in crash.crashes(found, crash_places.symbol_table(symbols)):
        assert c.sentence and c.evidence()
        json.dumps(c.facts())
    r = run(LIBCRYPTO)
    j = v.judge_run(r["scenario"], 139, False, r["probe"], crash={"lines": found})
    assert j.verdict == Verdict.STICKY_ERROR

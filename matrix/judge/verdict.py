"""The verdict of one scenario: what its probe's observations mean, with the evidence and the
cause.

Only observations go in (the probe's JSON document); nothing here knows which platform or
build it is judging, so a verdict can only be as right as what was seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from matrix.judge import crash as crashes
from matrix.judge.crash_places import symbol_table
from matrix.judge.document import CHILD_ENDS, PROBE_SCHEMA, Doc, malformed
from matrix.model.vocabulary import (
    SCENARIOS,
    Scenario,
    Verdict,
    died_after_document,
    partner_of,
    signal_name,
)

KILLED_AT_TIMEOUT = 128 + 9  # the batch kills a run at its timeout with SIGKILL
CAUGHT = (4, 6, 7, 8, 11)  # the signals the C probe's crash handler reports (probe_trace.h)
NO_RECORD = (
    "no crash record with this result: the probe's stderr held no crash line (cut short, or "
    "written by a version of the tool that kept none)"
)


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    cause: str
    evidence: tuple[str, ...] = ()
    short: str = ""  # a few words for a table cell
    facts: dict[str, Any] = field(default_factory=dict)


def judge_run(
    scenario: str,
    exit_code: int | None,
    timed_out: bool,
    doc: Doc | None,
    error: str = "",
    crash: Doc | None = None,
    traced: bool = True,
) -> Judgement:
    """One probe process: its exit, its document and, when it held crash lines, its crash
    record (the kept stderr lines and the names resolved for them: matrix/judge/crash.py).
    traced: the process writes crash lines (the C probe; the cffi twin does not).

    A process that printed its whole document and then hung until its timeout (a thread
    stuck in its exit) is judged by its document: the hang is what happened afterwards, as
    a death by a signal is, and it was killed (SIGKILL) at the timeout."""
    if timed_out and (doc is None or not doc.get("completed")):
        return Judgement(
            Verdict.TIMEOUT,
            "the probe did not finish in time; its container was killed",
            short="hung",
        )
    own, children = _crashes(crash)
    if exit_code is not None and exit_code > 128 and (doc is None or not doc.get("completed")):
        sig = exit_code - 128
        facts: dict[str, Any] = {"signal": sig, "signal_name": signal_name(sig)}
        return Judgement(
            Verdict.PROBE_CRASHED,
            f"killed by signal {sig} ({signal_name(sig)})" + (f": {own.sentence}" if own else ""),
            tuple(own.evidence()) if own else ((NO_RECORD,) if traced and sig in CAUGHT else ()),
            short=signal_name(sig),
            facts={**facts, **({"crash": own.facts()} if own else {})},
        )
    if doc is None or not doc.get("completed"):
        why = error or f"exit status {exit_code}, no complete JSON document"
        return Judgement(
            Verdict.PROBE_CRASHED, why, short=f"exit {exit_code}", facts={"exit_code": exit_code}
        )
    j = judge(scenario, doc)
    if children:
        evidence = (*j.evidence, *(line for c in children for line in c.evidence()))
        facts = {**j.facts, "child_crashes": [c.facts() for c in children]}
        j = Judgement(j.verdict, j.cause, evidence, j.short, facts)
    if timed_out:
        exit_code = KILLED_AT_TIMEOUT
    if exit_code:
        # The document was complete; what happened afterwards (a worker thread leaving,
        # atexit handlers) is still a fact about the process.
        sig = exit_code - 128
        how = "a hang: killed at its timeout" if timed_out else _how(exit_code)
        evidence = (*j.evidence, f"after printing its observations the process ended with {how}")
        facts = {**j.facts, "exit_after_document": exit_code}
        if timed_out:
            facts["hung_after_document"] = True
        if own is not None:
            evidence = (*evidence, *own.evidence())
            facts["crash"] = own.facts()
        elif traced and sig in CAUGHT:
            evidence = (*evidence, NO_RECORD)
        # Not part of the reload verdict, but no reader may miss it: the process died.
        cause = f"{j.cause}; afterwards the process died ({how})"
        cause += f": {own.sentence}" if own is not None else ""
        then = "hung" if timed_out else signal_name(sig) if sig > 0 else f"exit {exit_code}"
        short = f"{j.short}; then {then}"
        return Judgement(j.verdict, cause, evidence, short, facts)
    return j


def _crashes(record: Doc | None) -> tuple[crashes.Crash | None, list[crashes.Crash]]:
    """The probe process's own crash and its forked children's, from a stored record."""
    if not isinstance(record, dict):
        return None, []
    lines = record.get("lines")
    found = crashes.crashes(
        lines if isinstance(lines, list) else [], symbol_table(record.get("symbols"))
    )
    return next((c for c in found if not c.child), None), [c for c in found if c.child]


def with_witness(primary: Judgement, twin: Judgement) -> Judgement:
    """The C probe's judgement, checked against the twin's: the same verdict stands, a
    different one is a DISAGREEMENT that shows both evidences.

    What each process did after its complete document is compared, not required to agree:
    where the C probe's process died and the twin's did not (or died by another signal),
    the evidence says so and the status stays the C probe's. Code that runs after memory was
    freed or a module unmapped does what that memory then holds, which differs between two
    processes (the twin's allocator is Python's): it may fault, spin (the twin aborts a
    stuck thread, or hangs until its timeout) or do no visible harm. A DISAGREEMENT is kept
    for what the two witnesses must see alike, the reload verdict: a bug of this tool."""
    facts = {**primary.facts, "witness_verdict": twin.verdict}
    if twin.verdict == primary.verdict:
        ended = died_after_document(twin.facts)
        if ended is not None:
            facts["witness_exit_after_document"] = ended
        evidence = (
            *primary.evidence,
            f"cffi twin agrees: {twin.verdict}",
            *_ends_compared(_end_of(primary.facts), _end_of(twin.facts)),
        )
        return Judgement(primary.verdict, primary.cause, evidence, primary.short, facts)
    evidence = (
        *(f"C probe: {e}" for e in primary.evidence),
        *(f"cffi twin: {e}" for e in twin.evidence),
    )
    cause = (
        f"C probe says {primary.verdict} ({primary.cause}); "
        f"cffi twin says {twin.verdict} ({twin.cause})"
    )
    return Judgement(Verdict.DISAGREEMENT, cause, evidence, "probe vs twin", facts)


def _end_of(facts: dict[str, Any]) -> str | None:
    """How a process ended after its complete document, in words; None: normally."""
    code = died_after_document(facts)
    if code is None:
        return None
    return "a hang (killed at its timeout)" if facts.get("hung_after_document") else _how(code)


def _ends_compared(probe: str | None, twin: str | None) -> tuple[str, ...]:
    """How the two processes ended after their documents, where that differs or matters."""
    if probe is None and twin is None:
        return ()
    not_fixed = "what a use of freed or unmapped memory does is not fixed"
    if probe is not None and twin is not None:
        if probe == twin:
            return (f"the cffi twin's process died after its document too ({twin})",)
        return (
            f"after the document the cffi twin's process ended with {twin}, the C "
            f"probe's with {probe}: {not_fixed}; the status stays the C probe's",
        )
    if probe is not None:
        return (
            f"the cffi twin's process ended normally after its document, the C probe's died "
            f"({probe}): {not_fixed}; the status stays the C probe's",
        )
    return (
        f"the cffi twin's process died after its document ({twin}), the C probe's "
        f"ended normally: {not_fixed}; the status stays the C probe's",
    )


def _how(code: int | None) -> str:
    sig = (code or 0) - 128
    return f"signal {sig} ({signal_name(sig)})" if sig > 0 else f"exit status {code}"


def judge(scenario: str, doc: Doc) -> Judgement:
    if doc.get("schema") != PROBE_SCHEMA:
        return Judgement(
            Verdict.INCONCLUSIVE,
            f"probe document schema {doc.get('schema')!r} unknown",
            short="schema",
        )
    problem = malformed(doc)
    if problem:
        return Judgement(
            Verdict.INCONCLUSIVE,
            f"the probe document is malformed: {problem}",
            short="malformed",
        )
    steps = {str(s["name"]): s for s in doc["steps"]}
    base = doc["baseline"]
    evidence: list[str] = []

    if base["mappings"] > 0 or base["noload_loaded"]:  # -1: maps unreadable, not "mapped"
        return Judgement(
            Verdict.INCONCLUSIVE,
            "fips.so was already loaded before the probe loaded it (a configuration "
            "activating fips in the default context?)",
            (f"baseline: {base['mappings']} mappings, RTLD_NOLOAD loaded={base['noload_loaded']}",),
            short="preloaded",
        )

    forced = SCENARIOS[scenario].forced_test if scenario in SCENARIOS else None
    if forced is not None:
        induced, how = _forced_failure(scenario, forced, steps)
        evidence.append(how)
        if not induced:
            return Judgement(
                Verdict.INCONCLUSIVE,
                "the forced failure did not take effect",
                tuple(evidence),
                short="no failure",
            )
    else:
        corrupted = [s["name"] for s in doc["steps"] if s["self_tests"]["corrupted"] > 0]
        if corrupted:
            # a control (no-failure, a worker scenario's) is worth only what it leaves out
            return Judgement(
                Verdict.INCONCLUSIVE,
                f"a self-test was corrupted ({', '.join(corrupted)}) in a scenario that "
                "forces no failure",
                short="failure in control",
            )
        partner = partner_of(scenario)
        if partner is not None:
            evidence.append(f"no failure forced: the control of {partner}, run as it is otherwise")

    unload = steps["unload_a"]
    mapped = unload["mappings"] > 0 or bool(unload["noload_loaded"])
    evidence.append(
        f"after unload and freeing context A: {unload['mappings']} fips.so mappings in "
        f"/proc/self/maps; dlopen(RTLD_NOLOAD) "
        f"{'finds' if unload['noload_loaded'] else 'does not find'} it"
    )
    if (unload["mappings"] > 0) != bool(unload["noload_loaded"]):
        evidence.append("/proc/self/maps and dlopen(RTLD_NOLOAD) disagree; counted as mapped")
    nodelete = base["module_nodelete"]
    canary = base["libc_dlclose_unmaps"]
    evidence.append(f"fips.so ELF flags: NODELETE {_set(nodelete)}")
    evidence.append(f"canary library: {_canary(canary)}")

    reload_ok, reload_text, fresh = _reload(steps)
    evidence.append(reload_text)
    extra_facts, extra_evidence = _scenario_extras(doc, steps, forced is not None)
    evidence.extend(extra_evidence)

    facts: dict[str, Any] = {
        "mapped_after_unload": mapped,
        "mappings_after_unload": unload["mappings"],
        "noload_after_unload": unload["noload_loaded"],
        "module_nodelete": nodelete,
        "libc_dlclose_unmaps": canary,
        "leaked_reference": doc.get("leaked_reference"),
        "reload_ok": reload_ok,
        "reload_fresh_instance": fresh,
        "reload_errors": _reasons(steps["reload_b"]),
        **extra_facts,
    }
    holders, short = _holders(doc, nodelete, canary)
    if not mapped:
        short = "unmapped"
    if mapped and reload_ok:
        verdict = Verdict.MAPPED_BUT_RECOVERED
        cause = f"still mapped ({holders}), but the reload passed" + (
            ": the mapped module was healthy and was reused" if not fresh else ""
        )
    elif mapped:
        verdict = Verdict.STICKY_ERROR
        errors = ", ".join(facts["reload_errors"]) or "no error queued"
        cause = f"{holders}: the mapped copy kept its error state ({errors})"
    elif reload_ok:
        verdict = Verdict.CLEAN_RELOAD
        cause = (
            "dlclose unmapped fips.so; the reload mapped a fresh copy that passed its self-tests"
        )
    else:
        verdict = Verdict.UNLOADED_BUT_FAILED
        errors = ", ".join(facts["reload_errors"]) or "self-test or digest failed"
        cause = f"fips.so was unmapped, yet the reload failed ({errors})"
        short = "unmapped, reload failed"
    return Judgement(verdict, cause, tuple(evidence), short, facts)


def _forced_failure(scenario: str, wanted: str, steps: dict[str, Doc]) -> tuple[bool, str]:
    step: Doc | None
    if scenario == Scenario.INTEGRITY:
        step = steps["load_a"]
    elif scenario == Scenario.LOAD_KAT:
        # with deferred self-tests the KATs run at first use, not at load
        step = steps["load_a"] if steps["load_a"]["ok"] is False else steps.get("digest_a")
    else:
        step = steps.get("fail_a")
    if step is None:
        return False, "forced failure: the first load failed, so no on-demand self-test could run"
    tests = step["self_tests"]
    failed = [t for t in str(tests["failed_tests"]).split(",") if t]
    refuses = steps.get("refuses_a", {})
    took = step["ok"] is False and wanted in failed and refuses.get("digest_ok") is not True
    if scenario != Scenario.INTEGRITY:
        took = took and tests["corrupted"] >= 1
    what = {"load_a": "load", "digest_a": "first use (deferred self-tests)"}.get(
        step["name"], "on-demand self-test"
    )
    return took, (
        f"forced failure: {what} {'failed' if step['ok'] is False else 'passed'} "
        f"(failed tests: {', '.join(failed) or 'none'}; "
        f"errors: {', '.join(_reasons(step)) or 'none'}); "
        f"afterwards status={refuses.get('status')}, SHA-256 through fips "
        f"{'refused' if refuses.get('digest_ok') is False else 'worked'}"
    )


def _reload(steps: dict[str, Doc]) -> tuple[bool, str, bool]:
    load = steps["reload_b"]
    started = int(load["self_tests"]["started"])
    fresh = started > 0
    text = (
        f"reload into a new context: load {'ok' if load['ok'] else 'failed'}, "
        f"{started} self-tests ran ({'a fresh instance' if fresh else 'a reused mapping'})"
    )
    if not load["ok"]:
        return False, f"{text}; errors: {', '.join(_reasons(load)) or 'none'}", fresh
    st = steps.get("selftest_b")
    if st is None:
        return False, f"{text}; no self-test step recorded", fresh
    ok = bool(st["ok"]) and st["digest_ok"] is True and st["status"] == 1
    text += (
        f"; on-demand self-test {'passed' if st['ok'] else 'failed'}, status={st['status']}, "
        f"SHA-256 through fips {'correct' if st['digest_ok'] else 'failed'}"
    )
    return ok, text, fresh


def _scenario_extras(
    doc: Doc, steps: dict[str, Doc], failed: bool = True
) -> tuple[dict[str, Any], list[str]]:
    """What two-contexts, the scenarios with workers and exit-after-reload observe beyond
    the reload itself. failed: a failure was forced (the workers' rounds are told around it)."""
    facts: dict[str, Any] = {}
    evidence: list[str] = []
    other = steps.get("refuses_c")
    if other is not None:
        works = other["digest_ok"] is True
        facts["other_context_kept_working"] = works
        evidence.append(
            f"the other context after the failure: status={other['status']}, "
            f"SHA-256 through fips {'worked' if works else 'refused'}"
        )
    during = steps.get("reload_while_c")
    if during is not None:
        st = steps.get("selftest_while_c")
        ok = bool(during["ok"]) and st is not None and bool(st["ok"])
        facts["reload_while_other_context_held_it"] = ok
        why = ", ".join(_reasons(during)) or "self-test failed"
        evidence.append(
            "reload while the other context still held the module: "
            + ("passed" if ok else f"failed ({why})")
        )
    worker = doc.get("worker")
    if isinstance(worker, dict):
        facts["worker"] = worker
        # worker-thread's worker calls OPENSSL_thread_stop_ex once stopped, then parks: a
        # worker that parked before the free did call it
        stopped = worker.get("stopped_before_free") is True
        evidence.append(
            f"worker thread: {_rounds(worker, failed)}; "
            + (
                "it called OPENSSL_thread_stop_ex and stopped before the free, and left after "
                "the reload"
                if stopped
                else "it had not stopped when the free began"
            )
        )
    workers = doc.get("workers")
    if isinstance(workers, list):
        facts["workers"] = workers
        facts["threads_alive_without_thread_stop"] = _alive_without_stop(doc)
        evidence.extend(f"thread {w['name']}: {_rounds(w, failed)}; {_life(w)}" for w in workers)
    ends = [(key, doc.get(key)) for key in CHILD_ENDS]
    if any(isinstance(end, dict) for _, end in ends):
        for key, end in ends:
            facts[key] = end
            if isinstance(end, dict):
                evidence.append(f"{CHILD_ENDS[key]}: {_ended(end)}")
        facts["context_alive_at_exit"] = doc.get("context_alive_at_exit")
        alive = doc.get("context_alive_at_exit") is True
        evidence.append(
            "the probe itself returned from main with context B "
            + ("still loaded: its exit status is how that ended" if alive else "not loaded")
        )
    return facts, evidence


def _rounds(w: Doc, failed: bool = True) -> str:
    if not failed:  # a control: the same counts, split where its partner forces the failure
        return (
            f"{w['ok_before_failure']} rounds of RAND+HMAC worked before the point of the "
            f"partner's failure; with none forced, afterwards {w['failed_after_failure']} "
            f"failed and {w['ok_after_failure']} worked (first error: {w['first_error']})"
        )
    return (
        f"{w['ok_before_failure']} rounds of RAND+HMAC worked before the failure; in the error "
        f"state {w['failed_after_failure']} failed and {w['ok_after_failure']} worked (first "
        f"error: {w['first_error']})"
    )


def _life(w: Doc) -> str:
    """What a worker of workers did around the free and the reload."""
    stop = (
        "it called OPENSSL_thread_stop_ex"
        if w["called_thread_stop"] is True
        else "it never called OPENSSL_thread_stop_ex"
    )
    if w["exited_before_failure"] is True:
        return f"{stop} and exited before the failure"
    return f"{stop}, lived through the free and the reload, and exited after the document"


def _ended(end: Doc) -> str:
    if end.get("timed_out") is True:
        return "did not end in 30 s and was killed"
    sig = end.get("signal")
    if isinstance(sig, int) and not isinstance(sig, bool):
        return f"died with signal {sig} ({signal_name(sig)})"
    return f"exited with status {end.get('exit_status')}"


def _alive_without_stop(doc: Doc) -> list[str]:
    """The workers that used the module, never called OPENSSL_thread_stop_ex and were still
    alive when A was freed and the module unloaded: their thread-local state was never freed."""
    workers = doc.get("workers")
    return [
        str(w["name"])
        for w in (workers if isinstance(workers, list) else [])
        if w["exited_before_failure"] is False and w["called_thread_stop"] is False
    ]


def _holders(doc: Doc, nodelete: bool | None, canary: bool | None) -> tuple[str, str]:
    """Everything observed that keeps a library mapped after dlclose: (cause, short form)."""
    found = [
        (bool(nodelete), "fips.so is linked NODELETE (-znodelete)", "NODELETE"),
        (
            canary is False,
            "this libc's dlclose does not unmap (the canary library stayed mapped)",
            "dlclose keeps",
        ),
        (
            bool(doc.get("leaked_reference")),
            "a reference is still held (an EVP_MD fetched from it was never freed)",
            "ref held",
        ),
    ]
    held = [(long, short) for seen, long, short in found if seen]
    threads = _alive_without_stop(doc)
    if not held and threads:
        # Not seen holding it, but the one thing left that could: the module stayed mapped
        # while these threads still held their per-thread state of context A.
        names = ", ".join(threads)
        return (
            f"a live thread's state ({names}: used the module, never called "
            "OPENSSL_thread_stop_ex, and was still alive at the unload)",
            "thread state",
        )
    if not held:
        return "still mapped by an unidentified holder", "held (unknown)"
    return "; ".join(c for c, _ in held), ", ".join(s for _, s in held)


def _reasons(step: Doc) -> list[str]:
    return [str(e["reason"]) for e in step.get("errors", [])]


def _set(flag: bool | None) -> str:
    return "unknown (ELF unreadable)" if flag is None else "set" if flag else "not set"


def _canary(unmaps: bool | None) -> str:
    if unmaps is None:
        return "not observed"
    return "dlclose unmapped it" if unmaps else "dlclose left it mapped"

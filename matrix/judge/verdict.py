"""The verdict of one scenario: what its probe's observations mean, with the evidence and the
cause.

Only observations go in (the probe's JSON document); nothing here knows which platform or
build it is judging, so a verdict can only be as right as what was seen.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Any

from matrix.model.vocabulary import SCENARIOS, Scenario, Verdict

PROBE_SCHEMA = 1

Doc = dict[str, Any]


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    cause: str
    evidence: tuple[str, ...] = ()
    short: str = ""  # a few words for a table cell
    facts: dict[str, Any] = field(default_factory=dict)


def judge_run(
    scenario: str, exit_code: int | None, timed_out: bool, doc: Doc | None, error: str = ""
) -> Judgement:
    """One probe process: its exit and its document."""
    if timed_out:
        return Judgement(
            Verdict.TIMEOUT,
            "the probe did not finish in time; its container was killed",
            short="hung",
        )
    if exit_code is not None and exit_code > 128 and (doc is None or not doc.get("completed")):
        sig = exit_code - 128
        return Judgement(
            Verdict.PROBE_CRASHED,
            f"killed by signal {sig} ({_signame(sig)})",
            short=_signame(sig),
            facts={"signal": sig, "signal_name": _signame(sig)},
        )
    if doc is None or not doc.get("completed"):
        why = error or f"exit status {exit_code}, no complete JSON document"
        return Judgement(
            Verdict.PROBE_CRASHED, why, short=f"exit {exit_code}", facts={"exit_code": exit_code}
        )
    j = judge(scenario, doc)
    if exit_code:
        # The document was complete; what happened afterwards (a worker thread leaving,
        # atexit handlers) is still a fact about the process.
        sig = exit_code - 128
        how = f"signal {sig} ({_signame(sig)})" if sig > 0 else f"exit status {exit_code}"
        evidence = (*j.evidence, f"after printing its observations the process ended with {how}")
        facts = {**j.facts, "exit_after_document": exit_code}
        # Not part of the reload verdict, but no reader may miss it: the process died.
        cause = f"{j.cause}; afterwards the process died ({how})"
        short = f"{j.short}; then {_signame(sig) if sig > 0 else f'exit {exit_code}'}"
        return Judgement(j.verdict, cause, evidence, short, facts)
    return j


def with_witness(primary: Judgement, twin: Judgement) -> Judgement:
    """The C probe's judgement, checked against the twin's: the same verdict stands, a
    different one is a DISAGREEMENT that shows both evidences."""
    facts = {**primary.facts, "witness_verdict": twin.verdict}
    if twin.verdict == primary.verdict:
        evidence = (*primary.evidence, f"cffi twin agrees: {twin.verdict}")
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
    extra_facts, extra_evidence = _scenario_extras(doc, steps)
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


_NONE = type(None)
_FLAG = (bool, int)  # the C probe writes true/false; older documents may hold 0/1
Shape = dict[str, type | tuple[type, ...]]
_BASELINE: Shape = {
    "mappings": int,
    "noload_loaded": _FLAG,
    "module_nodelete": (bool, _NONE),
    "libc_dlclose_unmaps": (bool, _NONE),
}
_STEP: Shape = {
    "name": str,
    "ok": (bool, _NONE),
    "errors": list,
    "self_tests": dict,
    "status": (int, _NONE),
    "digest_ok": (bool, _NONE),
    "mappings": int,
    "noload_loaded": _FLAG,
}
_SELF_TESTS: Shape = {"started": int, "corrupted": int, "failed_tests": str}
_WORKER = ("ok_before_failure", "failed_after_failure", "ok_after_failure", "first_error")
_REQUIRED_STEPS = ("load_a", "unload_a", "reload_b")


def malformed(doc: Doc) -> str:
    """What of a complete document the verdict is read from is missing or of another type
    ("" when nothing): a document from a results file may hold anything, and must come out
    INCONCLUSIVE, never as a traceback."""
    base = doc.get("baseline")
    if not isinstance(base, dict):
        return "baseline: want an object"
    problem = _wrong_keys(base, _BASELINE, "baseline")
    if problem:
        return problem
    steps = doc.get("steps")
    if not isinstance(steps, list) or not all(isinstance(step, dict) for step in steps):
        return "steps: want an array of objects"
    for i, step in enumerate(steps):
        problem = _wrong_keys(step, _STEP, f"steps[{i}]") or _wrong_keys(
            step["self_tests"], _SELF_TESTS, f"steps[{i}].self_tests"
        )
        if problem:
            return problem
        if not all(isinstance(e, dict) and "reason" in e for e in step["errors"]):
            return f"steps[{i}].errors: want objects with a reason"
    names = {step["name"] for step in steps}
    missing = [name for name in _REQUIRED_STEPS if name not in names]
    if missing:
        return f"no step {', '.join(missing)}"
    worker = doc.get("worker")
    if worker is not None and not (isinstance(worker, dict) and all(k in worker for k in _WORKER)):
        return f"worker: want an object with {', '.join(_WORKER)}"
    return ""


def _wrong_keys(data: Doc, shape: Shape, where: str) -> str:
    for key, kinds in shape.items():
        if not isinstance(data.get(key, ...), kinds):
            return f"{where}.{key}: missing, or not what it should be"
    return ""


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


def _scenario_extras(doc: Doc, steps: dict[str, Doc]) -> tuple[dict[str, Any], list[str]]:
    """What two-contexts and worker-thread observe beyond the reload itself."""
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
        evidence.append(
            f"worker thread: {worker['ok_before_failure']} rounds of RAND+HMAC worked before the "
            f"failure; in the error state {worker['failed_after_failure']} failed and "
            f"{worker['ok_after_failure']} worked (first error: {worker['first_error']}); "
            "it called OPENSSL_thread_stop_ex before the free and left after the reload"
        )
    return facts, evidence


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


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"

"""Findings (matrix/report/findings.py): the rules the cells support, with their counts and
exceptions, and what was not expected, drawn from the facts alone."""

from __future__ import annotations

import copy

from support.made_results import ALL, measured, stopped

from matrix.judge.cell import rejudge
from matrix.model.vocabulary import (
    RELOAD_VERDICTS,
    SCENARIOS,
    Outcome,
    Verdict,
    died_after_document,
)
from matrix.report.findings import Finding, Findings, findings, name_cells
from matrix.results.records import CellResult, Run, ScenarioResult

NODELETE_RULE = "Where fips.so is linked NODELETE"
FREE_RULE = "Where nothing holds fips.so"
LEAK_RULE = "A reference never freed"


def rule(found: Findings, start: str) -> Finding:
    return next(f for f in found.rules if f.text.startswith(start))


def forced(r: CellResult) -> list[tuple[str, dict[str, object], str]]:
    info = SCENARIOS
    return [
        (s.scenario, s.facts, s.verdict)
        for s in r.scenarios
        if info[s.scenario].forced_test is not None and s.verdict in RELOAD_VERDICTS
    ]


def test_the_reference_supports_each_rule_as_its_facts_say(
    reference: tuple[list[CellResult], Run],
) -> None:
    results, _ = reference
    found = findings(results)
    # counted here straight from the facts, cell by cell
    nodelete = [r for r in results if any(f["module_nodelete"] is True for _, f, _ in forced(r))]
    holding = [
        r
        for r in nodelete
        if all(v == Verdict.STICKY_ERROR for _, f, v in forced(r) if f["module_nodelete"])
    ]
    got = rule(found, NODELETE_RULE)
    assert (got.support, got.of) == (len(holding), len(nodelete)) and nodelete
    keeps = [r for r in results if any(f["libc_dlclose_unmaps"] is False for _, f, _ in forced(r))]
    musl = next(f for f in found.rules if "dlclose unmaps nothing" in f.text)
    assert musl.of == len(keeps) and keeps
    for r in keeps:
        assert r.libc_label().split(" ")[0] in musl.text  # the libc named from the probe
    leaked = [r for r in results if any(f["leaked_reference"] is True for _, f, _ in forced(r))]
    assert rule(found, LEAK_RULE).of == len(leaked)

    # every scenario whose process died after its document, each in the finding of its kind
    died = [(r, s) for r in results for s in r.scenarios if died_after_document(s.facts)]
    events = [f for f in found.unexpected if "the process died" in f.text]
    assert sum(e.support for e in events) == len(died) and died
    for r, s in died:
        # tied to the reload only where its control in the cell did not die too
        control = SCENARIOS[s.scenario].control
        twin = next((c for c in r.scenarios if c.scenario == control), None)
        survived = twin is not None and twin.verdict in RELOAD_VERDICTS
        survived = survived and died_after_document(twin.facts) is None
        survived = survived and not twin.facts.get("witness_exit_after_document")
        start = (
            f"{s.scenario}: after a {s.verdict} reload"
            if survived
            else f"{s.scenario}: the process died after its document"
        )
        assert any(
            e.text.startswith(start)
            and f"{r.version} {r.variant}" in e.where
            and r.platform in e.where
            for e in events
        ), (r.cell, s.scenario)


def test_an_exception_to_a_rule_is_named_and_counted() -> None:
    results = [
        measured("debian-12/3.0.20/default", "nodelete"),
        measured("debian-11/3.0.20/default", "nodelete"),
        measured("debian-12/3.0.20/no-pinshared", "unpinned"),
    ]
    assert rule(findings(results), NODELETE_RULE).line().endswith("— 2 of 2 cells")
    odd = results[1].scenarios[0]
    odd.verdict = Verdict.CLEAN_RELOAD  # a NODELETE module that did leave: against the rule
    got = rule(findings(results), NODELETE_RULE)
    assert (got.support, got.of) == (1, 2)
    assert got.exceptions == ("ondemand-kat CLEAN_RELOAD: 3.0.20 default on debian-11",)
    assert "not in ondemand-kat CLEAN_RELOAD: 3.0.20 default on debian-11" in got.line()
    free = rule(findings(results), FREE_RULE)
    assert (free.support, free.of) == (1, 1) and not free.exceptions


def test_rules_come_from_facts_not_names() -> None:
    results = [
        measured("debian-12/3.0.20/default", "nodelete"),
        measured("debian-12/3.0.20/no-pinshared", "unpinned"),
    ]
    renamed = copy.deepcopy(results)
    for i, r in enumerate(renamed):
        r.platform, r.version, r.variant = f"p{i}", f"v{i}", "x"
        r.cell = f"p{i}/v{i}/x"
    counts = [(f.text, f.support, f.of) for f in findings(results).rules]
    assert counts == [(f.text, f.support, f.of) for f in findings(renamed).rules]
    # and the facts decide: the pinned cell's facts swapped for the unpinned one's
    swapped = copy.deepcopy(results)
    swapped[0].scenarios = copy.deepcopy(results[1].scenarios)
    assert rule(findings(swapped), FREE_RULE).of == 2
    assert not any(f.text.startswith(NODELETE_RULE) for f in findings(swapped).rules)


def test_everything_unexpected_is_listed_with_its_cells() -> None:
    died = measured("debian-12/3.6.3/no-pinshared", "unpinned", died=("worker-thread",))
    inconclusive = measured("debian-12/3.0.20/default", "nodelete")
    inconclusive.scenarios[1].verdict = Verdict.INCONCLUSIVE
    inconclusive.scenarios[1].cause = "the forced failure did not take effect"
    control = measured("debian-11/3.0.20/no-pinshared", "unpinned")
    leak = next(s for s in control.scenarios if s.scenario == "leaked-ref")
    leak.verdict = Verdict.CLEAN_RELOAD  # the leaked reference did not hold it
    flaky = measured("debian-11/3.0.20/default", "nodelete")
    flaky.scenarios[0].facts["runs"] = {"agree": 2, "total": 3}
    results = [
        died,
        inconclusive,
        control,
        flaky,
        stopped("debian-13/3.0.20/default", Outcome.BUILD_FAILED, "make exited 2\nmore"),
        stopped("debian-13/3.5.7/default", Outcome.ERROR, "KeyError: 'steps'"),
        stopped("alpine/3.0.20/default", Outcome.SKIPPED, "no base image"),
    ]
    lines = [f.line() for f in findings(results).unexpected]
    expected = [
        "worker-thread: after a CLEAN_RELOAD reload, the process died (signal 11, SIGSEGV); "
        "its control worker-thread-no-failure survived, so the forced failure (or the reload "
        "after it) is the cause, in 1 cell: 3.6.3 no-pinshared on debian-12",
        "load-kat: INCONCLUSIVE (the forced failure did not take effect), in 1 cell: "
        "3.0.20 default on debian-12",
        "leaked-ref (a control) came out CLEAN_RELOAD, not STICKY_ERROR, in 1 cell: "
        "3.0.20 no-pinshared on debian-11",
        "ondemand-kat: repeated runs did not all give the same verdict, in 1 cell: "
        "3.0.20 default on debian-11",
        "the build failed (make exited 2), in 1 cell: 3.0.20 default on debian-13",
        "the tool failed (KeyError: 'steps'), in 1 cell: 3.5.7 default on debian-13",
    ]
    assert lines == expected
    controls = rule(findings(results), "The controls come out as they must")
    assert controls.exceptions == ("leaked-ref CLEAN_RELOAD: 3.0.20 no-pinshared on debian-11",)


def test_nothing_unexpected_says_so_and_junk_facts_do_not_break_findings() -> None:
    results = [measured("debian-12/3.0.20/default", "nodelete", scenarios=ALL)]
    found = findings(results)
    assert found.unexpected == []
    assert "Nothing unexpected in 1 measured cells" in found.nothing_unexpected(1)
    junk = copy.deepcopy(results)
    for s in junk[0].scenarios:
        s.facts = {
            "module_nodelete": "yes",
            "libc_dlclose_unmaps": [],
            "exit_after_document": "139",
            "worker": "busy",
            "runs": "many",
            "other_context_kept_working": None,
        }
    junk[0].scenarios[0].facts = "not even a dict"  # type: ignore[assignment]
    found = findings(junk)  # no exception: a results file may hold anything
    assert not any(f.text.startswith(NODELETE_RULE) for f in found.rules)


def test_cells_are_named_compactly() -> None:
    cells = [
        stopped(f"{p}/{v}/no-pinshared", Outcome.OK, "")
        for v in ("3.6.3", "4.0.2")
        for p in ("debian-11", "debian-12")
    ]
    cells.append(stopped("musl/3.0.20/default", Outcome.OK, ""))
    assert name_cells(cells) == (
        "3.6.3 no-pinshared, 4.0.2 no-pinshared on debian-11, debian-12; 3.0.20 default on musl"
    )


def test_a_live_thread_that_never_stopped_is_a_rule_of_its_own() -> None:
    """3.0.20 no-pinshared: a worker alive without OPENSSL_thread_stop_ex keeps fips.so;
    it is not an exception to the rule of nothing holding it, but a rule with its count."""
    results = [measured("debian-12/3.0.20/no-pinshared", "unpinned")]
    threads = rule(findings(results), "Where nothing else holds fips.so, a thread")
    assert (threads.support, threads.of) == (1, 1) and not threads.exceptions
    free = rule(findings(results), FREE_RULE)
    assert (free.support, free.of) == (1, 1)
    # a build where such a thread did not hold it (4.0.2 no-pinshared): an exception, named
    gone = measured("debian-12/4.0.2/no-pinshared", "unpinned")
    s = next(s for s in gone.scenarios if s.scenario == "worker-no-stop")
    s.facts["mapped_after_unload"], s.verdict = False, Verdict.CLEAN_RELOAD
    threads = rule(findings([*results, gone]), "Where nothing else holds fips.so, a thread")
    assert (threads.support, threads.of) == (1, 2)
    assert threads.exceptions == ("worker-no-stop CLEAN_RELOAD: 4.0.2 no-pinshared on debian-12",)


def test_what_a_process_died_of_is_named_when_attributed() -> None:
    died = measured("debian-12/4.0.2/no-pinshared", "unpinned", died=("worker-thread",))
    s = next(s for s in died.scenarios if s.scenario == "worker-thread")
    finding = "code of the unloaded fips.so ran after dlclose"
    s.facts["crash"] = {"attributed": True, "finding": finding}
    [line] = [f.line() for f in findings([died]).unexpected if "died" in f.text]
    assert line == (
        f"worker-thread: after a CLEAN_RELOAD reload, the process died (signal 11, SIGSEGV): "
        f"{finding}; its control worker-thread-no-failure survived, so the forced failure (or "
        "the reload after it) is the cause, in 1 cell: 4.0.2 no-pinshared on debian-12"
    )


def as_control(s: ScenarioResult) -> ScenarioResult:
    """A real failure scenario's result made into its control: the same run with the failure
    steps (fail_a, refuses_a) taken out of both probes' documents, judged again."""
    control = copy.deepcopy(s)
    control.scenario = str(SCENARIOS[s.scenario].control)
    docs = [control.probe, (control.witness or {}).get("probe")]
    for doc in (d for d in docs if isinstance(d, dict)):
        doc["scenario"] = control.scenario
        doc["steps"] = [t for t in doc["steps"] if t["name"] not in ("fail_a", "refuses_a")]
    return rejudge(control)


def deaths(results: list[CellResult], scenario: str) -> list[str]:
    return [
        f.text
        for f in findings(results).unexpected
        if f.text.startswith(f"{scenario}:") and "died" in f.text
    ]


def test_a_death_is_tied_to_the_failure_only_where_its_control_survived(
    reference: tuple[list[CellResult], Run],
) -> None:
    """A real worker-no-stop that died after its document (the reference run), beside its
    control in the same cell: dead too, alive, or absent (older results have no controls)."""
    results, _ = reference
    r, s = next(
        (r, s)
        for r in results
        for s in r.scenarios
        if s.scenario == "worker-no-stop" and died_after_document(s.facts)
    )
    cell = copy.deepcopy(r)
    cell.scenarios = [copy.deepcopy(s)]
    control = as_control(s)
    # (its reload keeps what the real failure left: only the death is what this test is of)
    assert control.verdict in RELOAD_VERDICTS, control.cause
    assert died_after_document(control.facts) == died_after_document(s.facts)

    cell.scenarios.append(control)  # the control died too: no failure needed to die
    [text] = deaths([cell], "worker-no-stop")
    assert "failure or not (control worker-no-stop-no-failure died too)" in text
    assert f"after a {s.verdict} reload" not in text and "is the cause" not in text
    # the control's own death says that no failure was forced
    [own] = deaths([cell], "worker-no-stop-no-failure")
    assert own.endswith("with no failure forced (the control of worker-no-stop)")

    control.exit_code = 0  # the control survived: only now is the failure the cause
    control.facts.pop("exit_after_document")
    control.facts.pop("witness_exit_after_document", None)  # and so did its twin
    [text] = deaths([cell], "worker-no-stop")
    assert text.startswith(f"worker-no-stop: after a {s.verdict} reload, the process died")
    assert "control worker-no-stop-no-failure survived" in text

    control.facts["witness_exit_after_document"] = 134  # only the twin's control died
    [text] = deaths([cell], "worker-no-stop")
    assert "(control worker-no-stop-no-failure died too in its cffi twin's process)" in text
    assert "is the cause" not in text
    control.facts.pop("witness_exit_after_document")

    cell.scenarios.remove(control)  # results of a run without controls: not separated
    [text] = deaths([cell], "worker-no-stop")
    assert "the cause is unseparated (control worker-no-stop-no-failure not in this run)" in text
    assert "is the cause" not in text and f"after a {s.verdict} reload" not in text

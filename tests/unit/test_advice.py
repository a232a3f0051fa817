"""The advice (matrix/report/advice.py), made from the reference run's real cells and from
subsets and changed copies of them: each line cites its cells and exceptions, and a line with
no cell behind it in the run is not made."""

from __future__ import annotations

import copy
import re

import pytest
from test_recovery import UNLOADED, sanity

from matrix.judge.recovery import recoverability
from matrix.model.vocabulary import SCENARIOS, Recovery, ScenarioInfo
from matrix.report.advice import Advice, advice, judged
from matrix.results.records import CellResult, Run

BUILD = "Build OpenSSL with no-pinshared"
LIBC = "no build recovers"
FREE = "Free every object you fetched"
CONTEXT = "Use one library context"
THREADS = "Call OPENSSL_thread_stop_ex(ctx)"
KEEP = "Keep fips.so loaded"
DEFECT = "Report this OpenSSL defect (not misuse) upstream"


def line(made: list[Advice], start: str) -> Advice:
    found = [a for a in made if start in a.text]
    assert len(found) == 1, [a.text for a in made]
    return found[0]


def has(made: list[Advice], start: str) -> bool:
    return any(start in a.text for a in made)


def status(results: list[CellResult], want: Recovery) -> list[CellResult]:
    return [r for r, j in judged(results) if j.status == want]


def base_fact(r: CellResult, name: str) -> object:
    return next(s.facts[name] for s in r.scenarios if s.scenario == "ondemand-kat")


def test_the_reference_gives_every_kind_of_advice_each_with_its_cells(
    reference: tuple[list[CellResult], Run],
) -> None:
    results, _ = reference
    made = advice(results)
    for start in (BUILD, LIBC, FREE, CONTEXT, THREADS, KEEP, DEFECT):
        assert line(made, start).cells
    assert all(f"{a.text}. " in a.line() and "Cells: " in a.line() for a in made)


def test_the_build_line_names_the_nodelete_cells_and_the_crashing_exceptions(
    reference: tuple[list[CellResult], Run],
) -> None:
    results, _ = reference
    build = line(advice(results), BUILD)
    never = [r for r in status(results, Recovery.NEVER) if base_fact(r, "module_nodelete")]
    assert never
    for r in never:
        assert r.platform in build.cells and r.variant in build.cells
    crashes = status(results, Recovery.CRASHES)
    assert crashes and len(build.exceptions) == 1 and "CRASHES" in build.exceptions[0]
    for r in crashes:
        assert r.platform in build.exceptions[0] and r.version in build.exceptions[0]


def test_a_libc_whose_dlclose_unmaps_nothing_gets_a_restart_line(
    reference: tuple[list[CellResult], Run],
) -> None:
    results, _ = reference
    keeps = [r for r in results if r.scenarios and base_fact(r, "libc_dlclose_unmaps") is False]
    assert keeps
    libc = line(advice(results), LIBC)
    assert "restart the process" in libc.text
    for r in keeps:
        assert r.libc_label().split(" ")[1] in libc.text and r.platform in libc.cells
    # without those cells, no such line
    assert not has(advice([r for r in results if r not in keeps]), LIBC)


def test_each_defect_comes_with_a_repro_command_of_a_cell_where_it_happened(
    reference: tuple[list[CellResult], Run],
) -> None:
    results, _ = reference
    defect = line(advice(results), DEFECT)
    (command,) = defect.commands
    _, _, cell, scenario = command.split(" ")
    r = next(r for r in results if r.cell == cell)
    j = recoverability(r)
    assert any(d.scenario == scenario and d.correct for d in j.deaths)
    # the scenario reproduced is named where the line says what died
    died_in = defect.text.split("died in ", 1)[1].split(" (")[0]
    assert scenario in died_in.split(" and its control ")


def test_no_advice_without_cells() -> None:
    assert advice([]) == []


def test_skipped_cells_give_no_advice(reference: tuple[list[CellResult], Run]) -> None:
    results, _ = reference
    assert advice([r for r in results if not r.scenarios]) == []


def test_a_line_whose_cells_are_not_in_the_run_is_not_made(
    reference: tuple[list[CellResult], Run],
) -> None:
    results, _ = reference
    # only NODELETE builds: nothing shows that another build recovers, so no build line
    pinned = [r for r in results if r.scenarios and base_fact(r, "module_nodelete") is True]
    made = advice(pinned)
    assert not has(made, BUILD) and not has(made, FREE) and not has(made, DEFECT)
    # without the cells where a correct program died: no defect line, no keep-loaded line
    crashing = {r.cell for r in status(results, Recovery.CRASHES)}
    rest = advice([r for r in results if r.cell not in crashing])
    assert not has(rest, DEFECT) and not has(rest, KEEP)
    assert has(rest, BUILD) and not line(rest, BUILD).exceptions


def test_a_death_without_its_control_is_said_to_be_unseparated(
    reference: tuple[list[CellResult], Run],
) -> None:
    results, _ = reference
    controls = {"worker-thread-no-failure", "worker-no-stop-no-failure", "thread-pool-no-failure"}
    before = []  # the run as one from before the controls
    for r in results:
        c = copy.deepcopy(r)
        c.scenarios = [s for s in c.scenarios if s.scenario not in controls]
        before.append(c)
    defect = line(advice(before), DEFECT)
    assert defect.evidence.startswith(
        "whether the failure is needed is unknown: this run has no controls (in "
    )


def test_advice_reads_facts_not_names(reference: tuple[list[CellResult], Run]) -> None:
    results, _ = reference
    renamed = []
    for i, r in enumerate(results):
        c = copy.deepcopy(r)
        c.platform, c.version, c.variant = f"p{i}", "1.0", "v"
        c.cell = f"p{i}/1.0/v"
        renamed.append(c)
    assert [a.text.split(" (")[0] for a in advice(renamed)] == [
        a.text.split(" (")[0] for a in advice(results)
    ]


def reference_cells(results: list[CellResult]) -> list[CellResult]:
    """Deep copies of the measured cells, for tests that change them."""
    return [copy.deepcopy(r) for r in results if r.scenarios]


def test_free_and_context_lines_name_the_cells_that_prove_them_and_the_exceptions(
    reference: tuple[list[CellResult], Run],
) -> None:
    results, _ = reference
    cells = reference_cells(results)
    made = advice(cells)
    for start, mark in ((FREE, "F"), (CONTEXT, "C")):
        proving = [r for r, j in judged(cells) if any(c.mark == mark for c in j.conditions)]
        assert proving
        got = line(made, start)
        for r in proving:
            assert r.platform in got.cells and r.variant in got.cells
        assert not got.exceptions
    # one cell whose leaked reference did not keep the error state: named as an exception
    target = next(r for r, j in judged(cells) if any(c.mark == "F" for c in j.conditions))
    leak = next(s for s in target.scenarios if s.scenario == "leaked-ref")
    leak.verdict = "CLEAN_RELOAD"
    (exception,) = line(advice(cells), FREE).exceptions
    assert exception.startswith("not needed on ") and target.platform in exception


def test_the_thread_line_names_where_the_call_saves_the_process_and_where_not(
    reference: tuple[list[CellResult], Run],
) -> None:
    results, _ = reference
    threads = line(advice(results), THREADS)
    crashes = status(results, Recovery.CRASHES)
    (exception,) = threads.exceptions
    assert "does not save the process" in exception
    for r in crashes:  # a thread that called it died there too
        assert r.platform in exception and r.version in exception
    assert "where its absence crashes: " in threads.cells
    assert "where its absence keeps the error state: " in threads.cells


def test_the_keep_loaded_line_stands_on_the_cells_where_a_stopped_thread_died(
    reference: tuple[list[CellResult], Run],
) -> None:
    results, _ = reference
    keep = line(advice(results), KEEP)
    dying = [r for r, j in judged(results) if any(d.correct and d.in_thread for d in j.deaths)]
    assert dying
    for r in dying:
        assert r.platform in keep.cells and r.variant in keep.cells
    finding = recoverability(dying[0]).deaths[0].finding
    assert finding and finding in keep.text


def test_a_restart_line_where_the_reload_fails_for_another_reason(
    reference: tuple[list[CellResult], Run],
) -> None:
    results, _ = reference
    assert not has(advice(results), "Restart the process after a failure")
    cells = reference_cells(results)
    target = next(r for r in status(cells, Recovery.RECOVERS_IF))
    for s in target.scenarios:
        if s.scenario in ("ondemand-kat", "load-kat", "integrity"):
            s.verdict = "UNLOADED_BUT_FAILED"
    restart = line(advice(cells), "Restart the process after a failure")
    assert target.platform in restart.cells and target.variant in restart.cells


def test_the_controls_separate_the_cause_of_a_defect(
    reference: tuple[list[CellResult], Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    results, _ = reference
    cells = reference_cells(results)
    control = "worker-thread-no-failure"
    # the control scenario as the vocabulary names it once the probes run it: no failure
    monkeypatch.setitem(SCENARIOS, control, ScenarioInfo("control", None))
    for r in status(cells, Recovery.CRASHES):
        worker = next(s for s in r.scenarios if s.scenario == "worker-thread")
        twin = copy.deepcopy(worker)
        twin.scenario = control  # the control died as its partner did: no failure needed
        r.scenarios.append(twin)
    made = advice(cells, {"worker-thread": control})
    # the control died of its partner's cause: one line, reproduced with the control
    defect = line(made, DEFECT)
    assert f"died in worker-thread and its control {control} (" in defect.text
    assert defect.evidence.startswith("no forced failure needed: each control died too (in ")
    assert all(c.endswith(f" {control}") for c in defect.commands)


# --- a run with the controls: one cause, one line ------------------------------------------


def test_a_death_and_its_controls_are_one_defect_line_reproduced_with_the_control() -> None:
    cells = [sanity("debian-12-3.0.20-default"), sanity("debian-12-3.6.3-no-pinshared")]
    made = advice(cells)
    defect = line(made, DEFECT)
    assert defect.text == (
        f"{DEFECT}: a program that freed everything and stopped its threads died in "
        f"worker-thread and its control worker-thread-no-failure ({UNLOADED}, in 10/10 runs)"
    )
    assert defect.evidence == (
        "no forced failure needed: its control worker-thread-no-failure died too"
    )
    assert defect.commands == (
        "fips-matrix repro debian-12/3.6.3/no-pinshared worker-thread-no-failure",
    )


def test_advice_says_what_to_do_first_and_its_evidence_in_words() -> None:
    cells = [sanity("debian-12-3.0.20-default"), sanity("debian-12-3.6.3-no-pinshared")]
    made = advice(cells)
    for a in made:
        first = a.line().split(". ")[0]
        assert first == a.text  # the first sentence says what to do
        assert not re.search(r"\(\d+\)", a.line())  # no bare counts: "(2)"
    threads = line(made, THREADS)
    assert threads.evidence == (
        "the deaths need no forced failure: each control died too, of another cause"
    )
    keep = line(made, KEEP)
    assert keep.line().endswith(
        ". No forced failure needed: its control worker-thread-no-failure died too. "
        "Cells: 3.6.3 no-pinshared on debian-12"
    )

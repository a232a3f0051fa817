"""A cell's judgement from its observations: each scenario judged under the current rules
(with the second witness and repeated runs), and the cell's outcome. Pure: observations come
in, a new judged result comes out, the records given are never changed, so `fips-matrix
report` needs no engine and no result is ever half-judged."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from matrix.judge import fate as fates
from matrix.judge.verdict import Judgement, judge_run, with_witness
from matrix.model.vocabulary import Outcome, Verdict, died_after_document
from matrix.results.records import CellResult, ScenarioResult


def judged(
    scenario: str,
    exit_code: int | None,
    timed_out: bool,
    seconds: float,
    probe: dict[str, Any] | None,
    *,
    witness: dict[str, Any] | None = None,
    repeats: list[dict[str, Any]] | None = None,
    crash: dict[str, Any] | None = None,
    why: str = "",
) -> ScenarioResult:
    """A scenario's result from its observations (the fields of ScenarioResult that probe
    runs give), judged: the way a new result is made."""
    j = _judgement(scenario, exit_code, timed_out, probe, witness, repeats, crash, why)
    return ScenarioResult(
        scenario=scenario,
        verdict=j.verdict,
        cause=j.cause,
        short=j.short,
        evidence=list(j.evidence),
        facts=j.facts,
        exit_code=exit_code,
        timed_out=timed_out,
        seconds=seconds,
        probe=probe,
        witness=witness,
        repeats=repeats,
        crash=crash,
    )


def rejudge(s: ScenarioResult, why: str = "") -> ScenarioResult:
    """A new result: s's observations judged again, so verdicts follow the current rules;
    where the twin ran, its observations are judged too and must agree. s is not changed."""
    return judged(
        s.scenario,
        s.exit_code,
        s.timed_out,
        s.seconds,
        s.probe,
        witness=s.witness,
        repeats=s.repeats,
        crash=s.crash,
        why=why,
    )


def rejudge_cell(result: CellResult) -> CellResult:
    """A new cell result: its scenarios judged again and its outcome taken from them. A cell
    with no scenarios (not built, skipped, the tool's error) has nothing to judge again."""
    if not result.scenarios:
        return result
    scenarios = [rejudge(s) for s in result.scenarios]
    return dataclasses.replace(result, scenarios=scenarios, outcome=outcome_of(scenarios))


def _judgement(
    scenario: str,
    exit_code: int | None,
    timed_out: bool,
    probe: dict[str, Any] | None,
    witness: dict[str, Any] | None,
    repeats: list[dict[str, Any]] | None,
    crash: dict[str, Any] | None,
    why: str,
) -> Judgement:
    """The judgement of one scenario's observations."""
    j = judge_run(scenario, exit_code, timed_out, probe, why, crash)
    own = j  # the C probe's own: repeated runs are counted against its verdict
    alone = j.verdict
    w = witness
    if w is not None and "unavailable" not in w:
        if completed(w.get("probe")):
            twin = judge_run(scenario, w["exit_code"], w["timed_out"], w["probe"], traced=False)
            j = with_witness(j, twin)
        else:  # a twin that crashed or hung saw nothing: no witness, not a disagreement
            how = "timed out" if w.get("timed_out") else f"exit {w.get('exit_code')}"
            note = f"cffi twin did not complete ({how}): no second witness"
            j = Judgement(j.verdict, j.cause, (*j.evidence, note), j.short, j.facts)
    if repeats:
        each = [judge_run(scenario, r["exit_code"], r["timed_out"], r["probe"]) for r in repeats]
        verdicts = [r.verdict for r in each]
        agree = verdicts.count(alone)
        runs = {"verdicts": verdicts, "agree": agree, "total": len(verdicts)}
        short = j.short if agree == len(verdicts) else f"{j.short}; flaky"
        facts = {**j.facts, "runs": runs}
        j = Judgement(j.verdict, j.cause, (*j.evidence, f"runs: {verdicts}"), short, facts)
        fate = fates.count(
            [
                r.facts if completed(run["probe"]) else None
                for r, run in zip(each, repeats, strict=True)
            ]
        )
    else:
        fate = fates.count([own.facts if completed(probe) else None])
    if fate.runs:
        facts = {**j.facts, "fate": fate.to_json()}
        evidence = (
            (*j.evidence, f"fate of the C probe's runs: {fate.text()}")
            if fate.runs > 1
            else j.evidence
        )
        j = Judgement(j.verdict, j.cause, evidence, j.short, facts)
    return j


def outcome_of(scenarios: Sequence[ScenarioResult]) -> Outcome:
    verdicts = {s.verdict for s in scenarios}
    if Verdict.DISAGREEMENT in verdicts:
        return Outcome.DISAGREEMENT
    if any(
        s.facts.get("runs", {}).get("agree", 0) < s.facts.get("runs", {}).get("total", 0)
        for s in scenarios
    ):
        return Outcome.FLAKY
    if Verdict.TIMEOUT in verdicts:
        return Outcome.TIMEOUT
    if Verdict.PROBE_CRASHED in verdicts:
        return Outcome.PROBE_CRASHED
    return Outcome.OK


def majority(scenario: str, runs: Sequence[tuple[int | None, bool, Any, str]]) -> int:
    """Of repeated runs (exit code, timed out, document, why), the index of the first that
    gave the verdict most runs gave (the first of those that died after its document, if
    any did): it stands for them all."""
    judged = [judge_run(scenario, code, hung, doc, why) for code, hung, doc, why in runs]
    verdicts = [j.verdict for j in judged]
    winner = max(verdicts, key=verdicts.count)
    # of those, one whose process died after its document if any did: a rare death is still
    # a death, and the run that stands for them must show it (its status, its crash record)
    died = [i for i, j in enumerate(judged) if j.verdict == winner and died_after_document(j.facts)]
    return died[0] if died else verdicts.index(winner)


def twin_ran(exit_code: int | None, doc: dict[str, Any] | None) -> bool:
    """Exit 127: no python3 in the image; 3 with an "error" document: the twin refused
    (another libcrypto already mapped, no cffi, ...). Neither is a witness."""
    if exit_code == 127:
        return False
    return not (exit_code == 3 and doc is not None and "error" in doc)


def completed(doc: Any) -> bool:
    """A probe document that ran to its end."""
    return isinstance(doc, dict) and bool(doc.get("completed"))

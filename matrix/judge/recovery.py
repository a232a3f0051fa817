"""Recoverability: one cell's answer to "after a FIPS self-test failure, can my process free
everything, reload the provider and go on?", drawn from all of its scenarios' facts. Pure: it
reads a cell result and writes nothing; every report shows what it returns, and the advice
(matrix/report/advice.py) is made from it.

The rule, in this order (docs/reading-results.md, "Can a process recover?", says the same):

- NOT_MEASURED: the cell has no reload verdict for a base scenario (ondemand-kat, load-kat,
  integrity: a forced failure in a program that frees everything), or one of them measured
  nothing (INCONCLUSIVE, a crashed or hung probe, probes that disagree). The reason is named.
- NEVER: every base scenario's reload failed after the program freed everything. Reasons come
  from the facts: `module_nodelete` ("fips.so linked NODELETE: build with no-pinshared"),
  `libc_dlclose_unmaps` False ("this libc's dlclose unmaps nothing"), else the cell's cause.
  NEVER stays the answer when processes also died: a restart is the only recovery either
  way; the deaths stay in `deaths` and the advice names them.
- CRASHES: a process died after its document (in any of its runs) in a scenario where the
  program did everything right: it freed every fetched object (`leaked_reference` not true)
  and left no thread alive that used the module without OPENSSL_thread_stop_ex
  (`threads_alive_without_thread_stop` empty). The facts decide which scenarios count, not
  their names: worker-thread counts, worker-no-stop and thread-pool do not.
- RECOVERS_IF: some base scenario recovered, and a scenario of the cell proves a condition:
  `F` a reference never freed kept the error state (leaked-ref); `C` a reload while a second
  context held the module failed (two-contexts); `T` a thread that used the context and never
  called OPENSSL_thread_stop_ex killed the process or kept the error state (worker-no-stop,
  thread-pool), and where a scenario whose threads all called it reloaded and survived
  (worker-thread), calling it is proven to be enough; `K` some failures recovered, others not.
- RECOVERS: the base scenarios recovered, nothing died, no condition is proven.

A death's cause is separated with its control (the same scenario with no failure forced,
vocabulary.control_of): the control died too, so the death needs no failure, and where it
died of the same cause the two are one cause (CRASHES' reasons name it once, with both
scenarios); it survived every run (its twin too), so the failure or the reload is needed; it
is not in the run (older results), so whether the failure is needed is unknown. A death is a
rate where the results hold one (k of N runs died, judge/fate.py); one run otherwise."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from matrix.judge.fate import Fate, seen
from matrix.model.vocabulary import (
    RELOAD_VERDICTS,
    SCENARIOS,
    Outcome,
    Recovery,
    Scenario,
    Verdict,
    control_of,
    died_after_document,
)
from matrix.results.records import CellResult, ScenarioResult

# A forced failure in a program that frees everything: the question itself.
BASE = (Scenario.ONDEMAND_KAT, Scenario.LOAD_KAT, Scenario.INTEGRITY)
RECOVERED = (Verdict.CLEAN_RELOAD, Verdict.MAPPED_BUT_RECOVERED)

NODELETE_REASON = "fips.so linked NODELETE: build with no-pinshared"
LIBC_REASON = "this libc's dlclose unmaps nothing"


@dataclass(frozen=True)
class Condition:
    mark: str  # one letter in the table
    text: str  # what the program must do
    scenarios: tuple[str, ...]  # the scenarios of the cell that prove it


# The conditions' marks and what they ask, each defined once.
FREE = "F"
CONTEXT = "C"
THREADS = "T"
KIND = "K"
MARKS = {
    FREE: "free every fetched object (EVP_MD, EVP_CIPHER, ...) before freeing the context",
    CONTEXT: "no second context holds the module: free every context that loaded it first",
    THREADS: "every thread that used the context calls OPENSSL_thread_stop_ex(ctx) before "
    "the context is freed",
    KIND: "only some kinds of failure recover (the others keep the error state)",
}
# NEVER's reasons, marked in the table as the conditions are.
REASON_MARKS = {NODELETE_REASON: "N", LIBC_REASON: "L"}
OTHER_REASON_MARK = "R"


# What a death's control says of its cause (Death.link).
UNFORCED = "unforced"  # the death is a control's own: no failure was forced
NO_CONTROL = "no control"  # the scenario has none
ABSENT = "absent"  # its control is not in this run (older results)
SAME = "same"  # the control died of the same cause: one cause, no failure needed
OTHER = "other"  # the control died too, of another cause (or only in its twin's process)
SURVIVED = "survived"  # every run of the control lived, the twin's too: the failure is needed


@dataclass(frozen=True)
class Death:
    """A scenario whose process died after its complete document."""

    scenario: str
    correct: bool  # the program did everything right (no leaked object, no unstopped thread)
    died: int  # runs that died
    runs: int  # runs made
    cause: str  # the attributed crash's sentence, else the exit status
    finding: str  # the attributed crash in a few words, "" when none was attributed
    in_thread: bool  # a worker thread died, not the main one
    forced: bool  # the scenario forced a failure (a control forces none)
    control: str | None  # its control scenario (no failure forced), None: it has none
    control_fate: Fate | None = None  # the control's C probe runs; None: not in this run
    control_twin_died: bool = False  # the control's cffi twin died after its document
    control_cause: str = ""  # what the control died of (its `key`), "" where it did not

    @property
    def rate(self) -> str:
        return f"{self.died}/{self.runs}"

    @property
    def key(self) -> str:
        """The cause in a few words: deaths with the same key are one cause."""
        return self.finding or self.cause

    @property
    def control_died(self) -> bool | None:
        """None: the control is not in this run, the cause unseparated."""
        if self.control_fate is None:
            return None
        return self.control_fate.died > 0 or self.control_twin_died

    @property
    def link(self) -> str:
        """What the control says of the cause: one of UNFORCED ... SURVIVED."""
        if not self.forced:
            return UNFORCED
        if self.control is None:
            return NO_CONTROL
        if self.control_fate is None:
            return ABSENT
        if not self.control_died:
            return SURVIVED
        return SAME if self.control_cause == self.key else OTHER

    @property
    def pair(self) -> str:
        """The scenario, and its control where that died of the same cause."""
        if self.link == SAME:
            return f"{self.scenario} and its control {self.control}"
        return self.scenario

    @property
    def who(self) -> str:
        """The scenario as a cause's legend names it: "worker-thread and its control
        worker-thread-no-failure (no failure needed)"."""
        if self.link == SAME:
            return f"{self.pair} (no failure needed)"
        if self.link == SURVIVED:
            return f"{self.scenario} (needs the forced failure)"
        return self.scenario

    @property
    def separation(self) -> str:
        """What the control says of the cause, in words."""
        return separation([("", self)])


def separation(deaths: Sequence[tuple[str, Death]]) -> str:
    """What the controls say of the causes of deaths (each with its cell), in words, one
    clause per kind of answer: a single death names its control, several are counted in
    cells. A control's own death beside its partner's in the same cell is its partner's."""
    partners = {(cell, d.control) for cell, d in deaths}
    kinds: dict[str, list[tuple[str, Death]]] = {}
    for cell, d in deaths:
        if d.forced or (cell, d.scenario) not in partners:
            kinds.setdefault(d.link, []).append((cell, d))
    return "; ".join(_said(link, members) for link, members in kinds.items())


def _said(link: str, members: Sequence[tuple[str, Death]]) -> str:
    deaths = [d for _, d in members]
    one = deaths[0] if len(deaths) == 1 else None
    cells = len({cell for cell, _ in members})
    where = f" (in {cells} cells)" if cells > 1 else ""
    if link == UNFORCED:
        return "no forced failure needed: none was forced" + where
    if link == NO_CONTROL:
        return "whether the failure is needed is unknown: no control separates the cause"
    if link == ABSENT:
        if one is not None:
            return (
                "whether the failure is needed is unknown: its control "
                f"{one.control} is not in this run"
            )
        return "whether the failure is needed is unknown: this run has no controls" + where
    if link == SURVIVED:
        lived = sum(d.control_fate.runs - d.control_fate.died for d in deaths if d.control_fate)
        runs = sum(d.control_fate.runs for d in deaths if d.control_fate)
        whose = f"its control {one.control}" if one is not None else "each control"
        return f"needs the forced failure: {whose} survived {lived}/{runs}" + where
    whose = f"its control {one.control} died too" if one is not None else "each control died too"
    if link == OTHER:
        twin = all(d.control_fate is not None and not d.control_fate.died for d in deaths)
        how = " (in its cffi twin's process)" if twin else ", of another cause"
        if one is not None and not twin:
            how += f" ({one.control_cause})"
        return f"the deaths need no forced failure: {whose}{how}{where}"
    return f"no forced failure needed: {whose}{where}"


def causes(deaths: Sequence[Death]) -> list[tuple[str, list[Death]]]:
    """One cell's deaths grouped by cause, first seen first; a control that died of its
    partner's cause is left out, its partner's `who` names it: one cause, one entry."""
    merged = {d.control for d in deaths if d.link == SAME}
    groups: dict[str, list[Death]] = {}
    for d in deaths:
        if d.scenario not in merged:
            groups.setdefault(d.key, []).append(d)
    return list(groups.items())


def cause_text(key: str, deaths: Sequence[Death]) -> str:
    """A cause with the scenarios that died of it: "worker-thread, thread-pool: ..."."""
    return f"{', '.join(dict.fromkeys(d.who for d in deaths))}: {key}"


@dataclass(frozen=True)
class Recoverability:
    status: Recovery
    conditions: tuple[Condition, ...] = ()  # RECOVERS_IF's, and those proven in any cell
    reasons: tuple[str, ...] = ()  # NEVER's and NOT_MEASURED's reasons; CRASHES' causes
    cited: tuple[str, ...] = ()  # the scenarios the status stands on
    deaths: tuple[Death, ...] = ()  # every death in the cell, whatever the status

    @property
    def marks(self) -> str:
        """The short marks the table shows beside the status word: "F,C,T", "N,L"."""
        if self.status == Recovery.NEVER:
            return ",".join(REASON_MARKS.get(r, OTHER_REASON_MARK) for r in self.reasons)
        if self.status == Recovery.RECOVERS_IF:
            return ",".join(c.mark for c in self.conditions)
        return ""


# --- the rule ------------------------------------------------------------------------------


def recoverability(
    result: CellResult, controls: Mapping[str, str | None] | None = None
) -> Recoverability:
    """The cell's status with its conditions, reasons, the scenarios cited and its deaths;
    controls: scenario -> its control (default: the vocabulary's)."""
    if not result.scenarios:
        why = result.reason.strip().splitlines()[0] if result.reason.strip() else ""
        return Recoverability(Recovery.NOT_MEASURED, reasons=(f"{result.outcome}: {why}",))
    if result.outcome == Outcome.DISAGREEMENT:
        return Recoverability(
            Recovery.NOT_MEASURED, reasons=("the two probes disagree on this cell",)
        )
    lookup = controls if controls is not None else {s: control_of(s) for s in _names(result)}
    by_name = {s.scenario: s for s in result.scenarios}
    deaths = tuple(_death(s, by_name, lookup) for s in result.scenarios if _died(s))
    base = [by_name[name] for name in BASE if name in by_name]
    unmeasured = [s for s in base if s.verdict not in RELOAD_VERDICTS]
    if not base or unmeasured:
        why = (
            ", ".join(f"{s.scenario}: {s.verdict}" for s in unmeasured)
            if unmeasured
            else f"none of {', '.join(BASE)} was run"
        )
        return Recoverability(Recovery.NOT_MEASURED, reasons=(why,), deaths=deaths)
    cited = tuple(s.scenario for s in base)
    failed = [s for s in base if s.verdict not in RECOVERED]
    if len(failed) == len(base):
        return Recoverability(Recovery.NEVER, (), _never_reasons(failed), cited, deaths)
    conditions = _conditions(result.scenarios, base, failed)
    fatal = [d for d in deaths if d.correct]
    if fatal:
        said = tuple(cause_text(key, members) for key, members in causes(fatal))
        return Recoverability(
            Recovery.CRASHES, conditions, said, tuple(d.scenario for d in fatal), deaths
        )
    if conditions:
        proof = tuple(dict.fromkeys(s for c in conditions for s in c.scenarios))
        return Recoverability(Recovery.RECOVERS_IF, conditions, (), (*cited, *proof), deaths)
    return Recoverability(
        Recovery.RECOVERS, (), (), tuple(s.scenario for s in result.scenarios), deaths
    )


def _names(result: CellResult) -> list[str]:
    return [s.scenario for s in result.scenarios]


def _never_reasons(failed: Sequence[ScenarioResult]) -> tuple[str, ...]:
    reasons: list[str] = []
    if any(_fact(s, "module_nodelete") is True for s in failed):
        reasons.append(NODELETE_REASON)
    if any(_fact(s, "libc_dlclose_unmaps") is False for s in failed):
        reasons.append(LIBC_REASON)
    if not reasons:
        reasons.append(f"the reload failed after everything was freed ({failed[0].cause})")
    return tuple(reasons)


def _conditions(
    scenarios: Sequence[ScenarioResult],
    base: Sequence[ScenarioResult],
    failed: Sequence[ScenarioResult],
) -> tuple[Condition, ...]:
    reloads = [s for s in scenarios if s.verdict in RELOAD_VERDICTS]
    found: list[Condition] = []
    leaked = [s for s in reloads if _fact(s, "leaked_reference") is True and _kept_error(s)]
    if leaked:
        found.append(Condition(FREE, MARKS[FREE], _scenario_names(leaked)))
    held = [
        s
        for s in reloads
        if _fact(s, "reload_while_other_context_held_it") is False
        or (isinstance(_fact(s, "other_context_kept_working"), bool) and _kept_error(s))
    ]
    if held:
        found.append(Condition(CONTEXT, MARKS[CONTEXT], _scenario_names(held)))
    unstopped = [s for s in reloads if _unstopped(s) and (_kept_error(s) or _died(s))]
    if unstopped:
        stopping = [
            s
            for s in reloads
            if _has_workers(s) and not _unstopped(s) and s.verdict in RECOVERED and not _died(s)
        ]
        text = MARKS[THREADS]
        if not stopping:  # that the call is enough, no scenario of the cell shows
            text = (
                "no thread that used the context is alive when it is freed (that "
                "OPENSSL_thread_stop_ex is enough was not shown here)"
            )
        found.append(Condition(THREADS, text, _scenario_names([*unstopped, *stopping])))
    if failed:
        kept = ", ".join(s.scenario for s in failed)
        text = f"the failure is one that recovers: after {kept} the error state stays"
        found.append(Condition(KIND, text, _scenario_names(base)))
    return tuple(found)


def _death(
    s: ScenarioResult, by_name: Mapping[str, ScenarioResult], controls: Mapping[str, str | None]
) -> Death:
    facts = _facts(s)
    ran = seen(facts)
    crash = facts.get("crash")
    crash = crash if isinstance(crash, dict) else {}
    attributed = crash.get("attributed") is True
    sentence, finding = crash.get("sentence"), crash.get("finding")
    code = died_after_document(facts)
    if attributed and isinstance(sentence, str):
        cause = sentence
    elif code is not None:
        cause = f"exit status {code}"
    else:  # the run that stands for the scenario lived; others of its runs died
        cause = f"the process {ran.text()} after its document"
    thread = crash.get("thread")
    control = controls.get(s.scenario)
    found = by_name.get(control) if control is not None else None
    partner = found if found is not None and found.verdict in RELOAD_VERDICTS else None
    return Death(
        scenario=s.scenario,
        correct=_fact(s, "leaked_reference") is not True and not _unstopped(s),
        died=ran.died,
        runs=ran.runs,
        cause=cause,
        finding=finding if attributed and isinstance(finding, str) else "",
        in_thread=isinstance(thread, str) and thread != "main",
        forced=_forced(s.scenario),
        control=control,
        control_fate=seen(_facts(partner)) if partner is not None else None,
        control_twin_died=partner is not None and _twin_died(partner),
        control_cause=_death(partner, by_name, {}).key
        if partner is not None and _died(partner)
        else "",
    )


def _forced(scenario: str) -> bool:
    info = SCENARIOS.get(scenario)
    return info is None or info.forced_test is not None  # unknown: not taken as a control


def _died(s: ScenarioResult) -> bool:
    return s.verdict in RELOAD_VERDICTS and seen(_facts(s)).died > 0


def _count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _twin_died(s: ScenarioResult) -> bool:
    """The cffi twin's process, a second sample of the same run, died after its document."""
    ended = _fact(s, "witness_exit_after_document")
    return _count(ended) and ended != 0


def _kept_error(s: ScenarioResult) -> bool:
    return s.verdict not in RECOVERED


def _unstopped(s: ScenarioResult) -> bool:
    """A thread that used the module, never called OPENSSL_thread_stop_ex, was alive."""
    return bool(_fact(s, "threads_alive_without_thread_stop"))


def _has_workers(s: ScenarioResult) -> bool:
    return isinstance(_fact(s, "worker"), dict) or bool(_fact(s, "workers"))


def _scenario_names(scenarios: Sequence[ScenarioResult]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s.scenario for s in scenarios))


def _facts(s: ScenarioResult) -> dict[str, Any]:
    return s.facts if isinstance(s.facts, dict) else {}


def _fact(s: ScenarioResult, name: str) -> Any:
    return _facts(s).get(name)

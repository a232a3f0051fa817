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
ScenarioInfo.control): the control died too, so the death needs no failure; it survived, so
the failure or the reload is needed; it is not in the run (older results), so the cause is
unseparated. A death is a rate where the results hold one (k of N runs died); one run
otherwise. Both are read by the accessors below, in one place."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from matrix.model.vocabulary import (
    RELOAD_VERDICTS,
    SCENARIOS,
    Outcome,
    Recovery,
    Scenario,
    Verdict,
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
    control_died: bool | None  # None: the control is not in this run, the cause unseparated

    @property
    def rate(self) -> str:
        return f"{self.died}/{self.runs}"

    @property
    def separation(self) -> str:
        """What the control says of the cause, in words."""
        if not self.forced:
            return "no failure needed: none was forced"
        if self.control is None:
            return "no control separates the cause"
        if self.control_died is None:
            return f"cause unseparated: its control {self.control} is not in this run"
        if self.control_died:
            return f"no failure needed: its control {self.control} died too"
        return f"the failure is needed: its control {self.control} survived"


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


# --- accessors: the facts other branches add are read here and only here -------------------


def fate(facts: Mapping[str, Any]) -> tuple[int, int]:
    """(runs that died after their document, runs made). Results with per-run fates carry
    facts["fate"] = {"died": k, "runs": n}; older ones hold one run's exit_after_document."""
    rate = facts.get("fate")
    if isinstance(rate, dict):
        died, runs = rate.get("died"), rate.get("runs")
        if _count(died) and _count(runs) and 0 <= died <= runs and runs > 0:
            return died, runs
    return (1 if died_after_document(facts) is not None else 0), 1


def control_of(scenario: str) -> str | None:
    """The scenario's control: the same program with no failure forced (ScenarioInfo.control
    where the vocabulary names one)."""
    name = getattr(SCENARIOS.get(scenario), "control", None)
    return name if isinstance(name, str) else None


def _count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


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
        causes = tuple(dict.fromkeys(f"{d.scenario}: {d.finding or d.cause}" for d in fatal))
        return Recoverability(
            Recovery.CRASHES, conditions, causes, tuple(d.scenario for d in fatal), deaths
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
    died, runs = fate(facts)
    crash = facts.get("crash")
    crash = crash if isinstance(crash, dict) else {}
    attributed = crash.get("attributed") is True
    sentence, finding = crash.get("sentence"), crash.get("finding")
    code = died_after_document(facts)
    cause = sentence if attributed and isinstance(sentence, str) else f"exit status {code}"
    thread = crash.get("thread")
    control = controls.get(s.scenario)
    partner = by_name.get(control) if control is not None else None
    return Death(
        scenario=s.scenario,
        correct=_fact(s, "leaked_reference") is not True and not _unstopped(s),
        died=died,
        runs=runs,
        cause=cause,
        finding=finding if attributed and isinstance(finding, str) else "",
        in_thread=isinstance(thread, str) and thread != "main",
        forced=_forced(s.scenario),
        control=control,
        control_died=_died(partner) if partner is not None else None,
    )


def _forced(scenario: str) -> bool:
    info = SCENARIOS.get(scenario)
    return info is None or info.forced_test is not None  # unknown: not taken as a control


def _died(s: ScenarioResult) -> bool:
    return s.verdict in RELOAD_VERDICTS and fate(_facts(s))[0] > 0


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

"""The tool's words, each defined once: the scenarios a probe runs, the verdict of one scenario,
the outcome of one cell, the status a report shows of a scenario, and for each what the
reports show of it (rank, short code, colour, meaning, JUnit status). Everything else takes
them from here; the values are the strings that results files hold."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal


class Scenario(StrEnum):
    ONDEMAND_KAT = "ondemand-kat"
    LOAD_KAT = "load-kat"
    INTEGRITY = "integrity"
    LEAKED_REF = "leaked-ref"
    NO_FAILURE = "no-failure"
    TWO_CONTEXTS = "two-contexts"
    WORKER_THREAD = "worker-thread"
    WORKER_NO_STOP = "worker-no-stop"
    THREAD_POOL = "thread-pool"
    EXIT_AFTER_RELOAD = "exit-after-reload"
    # the controls of the scenarios with workers: the same, minus the forced failure
    WORKER_THREAD_NO_FAILURE = "worker-thread-no-failure"
    WORKER_NO_STOP_NO_FAILURE = "worker-no-stop-no-failure"
    THREAD_POOL_NO_FAILURE = "thread-pool-no-failure"


# what a matrix file's `scenarios` may name, in the probe's order
KNOWN_SCENARIOS = tuple(s.value for s in Scenario)


class CellKind(StrEnum):
    """How a cell gets its OpenSSL."""

    COMPILED = "compiled"  # built here from the matrix's sources
    DISTRO = "distro"  # the distribution's own libcrypto and packaged fips.so, nothing built
    SKEW = "skew"  # libcrypto of one compiled cell, fips.so of another: nothing compiled
    IMAGE = "image"  # an existing image, probed as it is by the portable probe: nothing built


class Verdict(StrEnum):
    """One scenario of one cell: what its probe's observations mean."""

    CLEAN_RELOAD = "CLEAN_RELOAD"
    STICKY_ERROR = "STICKY_ERROR"
    MAPPED_BUT_RECOVERED = "MAPPED_BUT_RECOVERED"
    UNLOADED_BUT_FAILED = "UNLOADED_BUT_FAILED"
    INCONCLUSIVE = "INCONCLUSIVE"  # the scenario did not do what it is for
    PROBE_CRASHED = "PROBE_CRASHED"
    TIMEOUT = "TIMEOUT"
    DISAGREEMENT = "DISAGREEMENT"  # the C probe and the cffi twin disagree: a bug of this tool


class Outcome(StrEnum):
    """One cell: OK means every scenario produced a reload verdict of its own."""

    OK = "OK"
    BUILD_FAILED = "BUILD_FAILED"
    PROBE_CRASHED = "PROBE_CRASHED"
    TIMEOUT = "TIMEOUT"
    SKIPPED = "SKIPPED"
    ERROR = "ERROR"  # the tool itself failed on this cell; the message says how
    FLAKY = "FLAKY"  # with --repeat, some scenario's runs disagreed (k/N in its facts)
    DISAGREEMENT = "DISAGREEMENT"


class Status(StrEnum):
    """What a report shows of a scenario where its verdict alone would mislead: the reload
    verdict stays as judged (both probes agree on it), but the process did not survive."""

    # The probe's document was complete, then the process died (a signal, or a non-zero exit).
    DIED_AFTER_RELOAD = "DIED_AFTER_RELOAD"


RELOAD_VERDICTS = (
    Verdict.CLEAN_RELOAD,
    Verdict.STICKY_ERROR,
    Verdict.MAPPED_BUT_RECOVERED,
    Verdict.UNLOADED_BUT_FAILED,
)


@dataclass(frozen=True)
class ScenarioInfo:
    note: str  # one line for a reader of the reports
    forced_test: str | None  # the self-test it corrupts, "type/description"; None: no failure
    # a control scenario's verdicts that show the probe can be trusted on the cell
    control_expects: tuple[Verdict, ...] = ()
    # a failure scenario's control: its run minus the forced failure, so what the two share
    # (a death after the document, say) is not the failure's. None: no such control.
    control: str | None = None


# no failure forced: the reload must pass, whether or not fips.so left the process
_RELOAD_PASSES = (Verdict.CLEAN_RELOAD, Verdict.MAPPED_BUT_RECOVERED)


SCENARIOS: dict[str, ScenarioInfo] = {  # keyed by Scenario (a str)
    Scenario.ONDEMAND_KAT: ScenarioInfo(
        "a KAT corrupted in an on-demand self-test, everything freed, a reload into a new context",
        "KAT_Digest/SHA2",
        control=Scenario.NO_FAILURE,
    ),
    Scenario.LOAD_KAT: ScenarioInfo(
        "the same KAT corrupted during the load itself", "KAT_Digest/SHA2"
    ),
    Scenario.INTEGRITY: ScenarioInfo(
        "a wrong module-mac, then the correct configuration in a new context",
        "Module_Integrity/HMAC",
    ),
    Scenario.LEAKED_REF: ScenarioInfo(
        "control: as ondemand-kat, but one fetched EVP_MD is never freed",
        "KAT_Digest/SHA2",
        # one EVP_MD never freed keeps fips.so, and so its error state, in the process
        (Verdict.STICKY_ERROR,),
    ),
    Scenario.NO_FAILURE: ScenarioInfo(
        "control: load, unload, free, reload, with no failure",
        None,
        _RELOAD_PASSES,
    ),
    Scenario.TWO_CONTEXTS: ScenarioInfo(
        "a second context holds the module while the first fails", "KAT_Digest/SHA2"
    ),
    Scenario.WORKER_THREAD: ScenarioInfo(
        "a worker thread uses the module through the failure, calls OPENSSL_thread_stop_ex "
        "before the free, and exits after the reload",
        "KAT_Digest/SHA2",
        control=Scenario.WORKER_THREAD_NO_FAILURE,
    ),
    Scenario.WORKER_NO_STOP: ScenarioInfo(
        "as worker-thread, but the worker never calls OPENSSL_thread_stop_ex, as most "
        "programs' threads don't",
        "KAT_Digest/SHA2",
        control=Scenario.WORKER_NO_STOP_NO_FAILURE,
    ),
    Scenario.THREAD_POOL: ScenarioInfo(
        "four workers used the module: two exited before the failure, two live through the "
        "free and the reload and exit after it",
        "KAT_Digest/SHA2",
        control=Scenario.THREAD_POOL_NO_FAILURE,
    ),
    Scenario.EXIT_AFTER_RELOAD: ScenarioInfo(
        "the normal end of a process after the reload: return from main, atexit handlers, "
        "OPENSSL_cleanup, with and without a live context",
        "KAT_Digest/SHA2",
    ),
    Scenario.WORKER_THREAD_NO_FAILURE: ScenarioInfo(
        "control: as worker-thread, with no failure forced",
        None,
        _RELOAD_PASSES,
    ),
    Scenario.WORKER_NO_STOP_NO_FAILURE: ScenarioInfo(
        "control: as worker-no-stop, with no failure forced",
        None,
        _RELOAD_PASSES,
    ),
    Scenario.THREAD_POOL_NO_FAILURE: ScenarioInfo(
        "control: as thread-pool, with no failure forced",
        None,
        _RELOAD_PASSES,
    ),
}


def control_of(scenario: str) -> str | None:
    """The control scenario of a failure scenario (its run minus the forced failure)."""
    info = SCENARIOS.get(scenario)
    return info.control if info is not None else None


def partner_of(control: str) -> str | None:
    """The failure scenario a control belongs to; None for any other scenario."""
    return next((name for name, info in SCENARIOS.items() if info.control == control), None)


JUnitStatus = Literal["passed", "failure", "error", "skipped"]


@dataclass(frozen=True)
class Look:
    """How the reports show a verdict, or a cell's outcome standing in for its verdicts."""

    code: str  # a few letters for the terminal, where width is scarce
    colour: str  # the HTML cell's background
    meaning: str  # the legend's words
    # Best first; a higher rank is worse. None: says nothing of the platform (a skip), so a
    # change to or from it is neither worse nor better.
    rank: int | None
    junit: JUnitStatus
    terminal: str = "red"  # rich style of the word in progress lines


# Rank: recovering with a fresh module beats recovering with the old one still mapped, which
# beats not recovering although it was unmapped (the reload itself is broken, but a fix in
# the reload path would help), which beats the error state that stays for good; a process
# that died after its reload is worse than all of these (whatever the reload did, the
# application would not have survived it); then results that measured nothing
# (INCONCLUSIVE), and worst the cells where the measurement itself broke (crashed or hung
# probe, failed build, tool error, probes that disagree).
#
# JUnit: red means something to act on. A reload verdict is a fact about the platform, so it
# passes (the verdict, cause and evidence stay in the test case's system-out); a change of
# fact is caught against a baseline (matrix/report/junit.py). A process that died, a control
# that did not come out as it must, a flaky scenario fail; a measurement that did not happen
# is an error; a cell not run, skipped.
#
# In legend order (the HTML page lists them so).
LOOKS: dict[str, Look] = {
    Verdict.CLEAN_RELOAD: Look(
        "CLEAN",
        "#b7e1b5",
        "fips.so left the process; the reload mapped a fresh copy",
        0,
        "passed",
        "green",
    ),
    Verdict.MAPPED_BUT_RECOVERED: Look(
        "MAPPED-OK",
        "#fbe99a",
        "fips.so stayed mapped, yet the reload passed",
        1,
        "passed",
        "yellow",
    ),
    Verdict.UNLOADED_BUT_FAILED: Look(
        "UNMAPPED-FAIL",
        "#f7b27a",
        "fips.so was unmapped, yet the reload failed",
        2,
        "passed",
        "dark_orange",
    ),
    Verdict.STICKY_ERROR: Look(
        "STICKY", "#ef8f8f", "fips.so stayed mapped and kept its error state", 3, "passed"
    ),
    Status.DIED_AFTER_RELOAD: Look(
        "DIED",
        "#d7267d",
        "the process died after the reload (its reload verdict is in the cell's evidence)",
        4,
        "failure",
        "bold magenta",
    ),
    Verdict.INCONCLUSIVE: Look(
        "INCONCL", "#c8c8c8", "the scenario did not do what it is for", 5, "error", "bold red"
    ),
    Verdict.PROBE_CRASHED: Look(
        "CRASH", "#cdb0ec", "the probe process died before it finished", 6, "error", "bold red"
    ),
    Verdict.TIMEOUT: Look(
        "TIMEOUT",
        "#cdb0ec",
        "the probe, or the build, did not finish in time",
        6,
        "error",
        "bold red",
    ),
    Outcome.BUILD_FAILED: Look(
        "BUILD-FAIL",
        "#ececec",
        "the cell's image did not build (see the build log)",
        6,
        "error",
        "bold red",
    ),
    Outcome.SKIPPED: Look(
        "SKIPPED", "#ececec", "not run (no base image or no source)", None, "skipped", "yellow"
    ),
    Outcome.ERROR: Look(
        "ERROR", "#ececec", "the tool itself failed on this cell", 6, "error", "bold red"
    ),
    Verdict.DISAGREEMENT: Look(
        "DISAGREEMENT",
        "#cdb0ec",
        "the C probe and the cffi probe disagree: a bug of this tool",
        6,
        "error",
        "bold red",
    ),
}
# A word no look above knows (a results file from elsewhere may hold anything): shown as this,
# never as itself, and an error to CI.
UNKNOWN = Look("?", "#ffffff", "a word this version of the tool does not know", None, "error")
OK_STYLE = "green"  # a cell's OK in progress lines


def look(name: str) -> Look | None:
    """The look of a verdict, status or outcome by its string; None for a word this tool does
    not know (a results file from elsewhere may hold anything)."""
    return LOOKS.get(name)


def died_after_document(facts: Mapping[str, Any]) -> int | None:
    """The exit status of a process that died after its complete document (128+N: signal N);
    None when it ended cleanly. Anything but a non-zero int in the facts counts as clean."""
    code = facts.get("exit_after_document")
    return code if isinstance(code, int) and not isinstance(code, bool) and code != 0 else None


def signal_name(sig: int) -> str:
    """ "SIGSEGV" for 11; "signal 99" for a number that names no signal here."""
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def scenario_status(verdict: str, facts: Mapping[str, Any]) -> str:
    """What every report shows of one scenario: its verdict, except that a reload verdict
    whose process then died (in any of its runs: facts.fate) shows DIED_AFTER_RELOAD (the
    verdict stays in the evidence)."""
    fate = facts.get("fate")
    died = fate.get("died") if isinstance(fate, dict) else None
    some_run = isinstance(died, int) and not isinstance(died, bool) and died > 0
    if verdict in RELOAD_VERDICTS and (died_after_document(facts) is not None or some_run):
        return Status.DIED_AFTER_RELOAD
    return verdict


def junit_status(scenario: str, status: str) -> JUnitStatus:
    """What one scenario's status (or a cell's outcome standing for it) is to CI on its own,
    before any baseline: a control scenario passes when it shows what it must."""
    info = SCENARIOS.get(scenario)
    if info is not None and info.control_expects and status in RELOAD_VERDICTS:
        return "passed" if status in info.control_expects else "failure"
    found = look(status)
    return found.junit if found is not None else UNKNOWN.junit


class Recovery(StrEnum):
    """One cell, all its scenarios together: can a process recover from a FIPS failure by
    freeing everything and reloading (matrix/judge/recovery.py assigns it)."""

    RECOVERS = "RECOVERS"
    RECOVERS_IF = "RECOVERS_IF"
    NEVER = "NEVER"
    CRASHES = "CRASHES"
    NOT_MEASURED = "NOT_MEASURED"


@dataclass(frozen=True)
class RecoveryLook:
    code: str  # the word the recoverability table shows
    colour: str  # the HTML cell's background
    meaning: str  # the legend's one line
    terminal: str  # rich style of the word


# In legend order.
RECOVERY_LOOKS: dict[str, RecoveryLook] = {
    Recovery.RECOVERS: RecoveryLook(
        "RECOVERS",
        "#b7e1b5",
        "a process that frees everything reloads a fresh module, and nothing dies",
        "green",
    ),
    Recovery.RECOVERS_IF: RecoveryLook(
        "RECOVERS IF",
        "#d9efb0",
        "it recovers, on the conditions its marks name (each proven by a scenario of the cell)",
        "yellow",
    ),
    Recovery.NEVER: RecoveryLook(
        "NEVER",
        "#ef8f8f",
        "after a failure the module keeps its error state whatever the program frees: "
        "restart the process",
        "red",
    ),
    Recovery.CRASHES: RecoveryLook(
        "CRASHES",
        "#d7267d",
        "the process died after an unload or a free that a correct program does",
        "bold magenta",
    ),
    Recovery.NOT_MEASURED: RecoveryLook(
        "UNKNOWN",
        "#ececec",
        "not measured: the cell lacks the scenarios a status needs (the reason is named)",
        "dim",
    ),
}

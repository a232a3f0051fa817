"""The tool's words, each defined once: the scenarios a probe runs, the verdict of one scenario,
the outcome of one cell, and for each what the reports show of it (rank, short code, colour,
meaning, JUnit status). Everything else takes them from here; the values are the strings that
results files hold."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Scenario(StrEnum):
    ONDEMAND_KAT = "ondemand-kat"
    LOAD_KAT = "load-kat"
    INTEGRITY = "integrity"
    LEAKED_REF = "leaked-ref"
    NO_FAILURE = "no-failure"
    TWO_CONTEXTS = "two-contexts"
    WORKER_THREAD = "worker-thread"


class CellKind(StrEnum):
    """How a cell gets its OpenSSL."""

    COMPILED = "compiled"  # built here from the matrix's sources
    DISTRO = "distro"  # the distribution's own libcrypto and packaged fips.so, nothing built
    SKEW = "skew"  # libcrypto of one compiled cell, fips.so of another: nothing compiled


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


SCENARIOS: dict[str, ScenarioInfo] = {  # keyed by Scenario (a str)
    Scenario.ONDEMAND_KAT: ScenarioInfo(
        "a KAT corrupted in an on-demand self-test, everything freed, a reload into a new context",
        "KAT_Digest/SHA2",
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
        # no failure forced: the reload must pass, whether or not fips.so left the process
        (Verdict.CLEAN_RELOAD, Verdict.MAPPED_BUT_RECOVERED),
    ),
    Scenario.TWO_CONTEXTS: ScenarioInfo(
        "a second context holds the module while the first fails", "KAT_Digest/SHA2"
    ),
    Scenario.WORKER_THREAD: ScenarioInfo(
        "a worker thread uses the module through the failure", "KAT_Digest/SHA2"
    ),
}

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
# the reload path would help), which beats the error state that stays for good; then results
# that measured nothing (INCONCLUSIVE), and worst the cells where the measurement itself
# broke (crashed or hung probe, failed build, tool error, probes that disagree).
#
# JUnit: what passes is what a CI user can rely on: after a forced failure the process
# recovered with a fresh module. MAPPED_BUT_RECOVERED fails too: the module never left the
# process, so the recovery rests on the module resetting its own error state, which nothing
# here can vouch for. A measurement that did not happen is an error; a cell not run, skipped.
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
        "failure",
        "yellow",
    ),
    Verdict.UNLOADED_BUT_FAILED: Look(
        "UNMAPPED-FAIL", "#f7b27a", "fips.so was unmapped, yet the reload failed", 2, "failure"
    ),
    Verdict.STICKY_ERROR: Look(
        "STICKY", "#ef8f8f", "fips.so stayed mapped and kept its error state", 3, "failure"
    ),
    Verdict.INCONCLUSIVE: Look(
        "INCONCL", "#c8c8c8", "the scenario did not do what it is for", 4, "error"
    ),
    Verdict.PROBE_CRASHED: Look(
        "CRASH", "#cdb0ec", "the probe process died before it finished", 5, "error"
    ),
    Verdict.TIMEOUT: Look("TIMEOUT", "#cdb0ec", "the probe did not finish in time", 5, "error"),
    Outcome.BUILD_FAILED: Look(
        "BUILD-FAIL", "#ececec", "the cell's image did not build (see the build log)", 5, "error"
    ),
    Outcome.SKIPPED: Look(
        "SKIPPED", "#ececec", "not run (no base image or no source)", None, "skipped", "yellow"
    ),
    Outcome.ERROR: Look("ERROR", "#ececec", "the tool itself failed on this cell", 5, "error"),
    Verdict.DISAGREEMENT: Look(
        "DISAGREEMENT",
        "#cdb0ec",
        "the C probe and the cffi probe disagree: a bug of this tool",
        5,
        "error",
    ),
}
OK_STYLE = "green"  # a cell's OK in progress lines


def look(name: str) -> Look | None:
    """The look of a verdict or outcome by its string; None for a word this tool does not
    know (a results file from elsewhere may hold anything)."""
    return LOOKS.get(name)


def junit_status(scenario: str, verdict: str) -> JUnitStatus:
    """What one scenario's verdict (or a cell's outcome standing for it) is to CI: a control
    scenario passes when it shows what it must."""
    info = SCENARIOS.get(scenario)
    if info is not None and info.control_expects and verdict in RELOAD_VERDICTS:
        return "passed" if verdict in info.control_expects else "failure"
    found = look(verdict)
    return found.junit if found is not None else "error"

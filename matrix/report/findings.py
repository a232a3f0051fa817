"""Findings: the rules a set of results supports, each with how many cells support it and the
exceptions named, and every cell where something unexpected happened.

Pure, and drawn only from the facts the verdicts record (judge/verdict.py: module_nodelete,
libc_dlclose_unmaps, leaked_reference, mapped_after_unload, exit_after_document, ...), never
from cell, platform or variant names: the same rules are found, or found broken, in any
matrix a user runs. A rule is stated only where some cell is subject to it."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from matrix.model.vocabulary import (
    RELOAD_VERDICTS,
    SCENARIOS,
    Outcome,
    Verdict,
    control_of,
    died_after_document,
    look,
    partner_of,
)
from matrix.report.layout import clip, row_label
from matrix.results.records import CellResult, ScenarioResult

STICKY, CLEAN = Verdict.STICKY_ERROR, Verdict.CLEAN_RELOAD


@dataclass(frozen=True)
class Finding:
    text: str  # the rule, or what happened, in one sentence
    support: int  # cells in which the rule holds; for what happened, cells where it did
    of: int  # cells the rule applies to; for what happened, cells measured
    exceptions: tuple[str, ...] = ()  # for a rule: the cells where it does not hold, named
    where: str = ""  # for what happened: the cells it happened in, named

    @property
    def count(self) -> str:
        if self.where:
            return f"{self.support} cell{'s' if self.support != 1 else ''}"
        return f"{self.support} of {self.of} cells"

    def line(self) -> str:
        """The finding as one line of text: the sentence, its count, its exceptions."""
        if self.where:
            return f"{self.text}, in {self.count}: {self.where}"
        text = f"{self.text} — {self.count}"
        if self.exceptions:
            text += "; not in " + "; ".join(self.exceptions)
        return text


@dataclass(frozen=True)
class Findings:
    rules: list[Finding]
    unexpected: list[Finding]  # empty: nothing unexpected happened

    def nothing_unexpected(self, measured: int) -> str:
        return (
            f"Nothing unexpected in {measured} measured cells: every scenario produced a reload "
            "verdict, every control came out as it must, and no process died."
        )


Subject = tuple[CellResult, ScenarioResult]


def findings(results: Sequence[CellResult]) -> Findings:
    measured = [r for r in results if r.scenarios]
    subjects = [(r, s) for r in measured for s in r.scenarios]
    reloads = [(r, s) for r, s in subjects if s.verdict in RELOAD_VERDICTS]
    forced = [(r, s) for r, s in reloads if _forced(s.scenario)]
    rules = [
        *_holder_rules(forced),
        *_shared_state_rules(reloads),
        *_control_rules(reloads),
    ]
    return Findings(
        [r for r in rules if r is not None], _unexpected(results, subjects, len(measured))
    )


# --- rules ---------------------------------------------------------------------------------


def _holder_rules(forced: list[Subject]) -> list[Finding | None]:
    nodelete = [(r, s) for r, s in forced if _fact(s, "module_nodelete") is True]
    keeps = [(r, s) for r, s in forced if _fact(s, "libc_dlclose_unmaps") is False]
    leaked = [(r, s) for r, s in forced if _fact(s, "leaked_reference") is True]
    unheld = [
        (r, s)
        for r, s in forced
        if _fact(s, "module_nodelete") is False
        and _fact(s, "libc_dlclose_unmaps") is True
        and _fact(s, "leaked_reference") is not True
    ]
    # a thread still alive that never called OPENSSL_thread_stop_ex may hold it: apart
    threads = [(r, s) for r, s in unheld if _fact(s, "threads_alive_without_thread_stop")]
    free = [(r, s) for r, s in unheld if not _fact(s, "threads_alive_without_thread_stop")]
    died = sum(1 for _, s in free if s.verdict == CLEAN and died_after_document(_facts(s)))
    clean_text = (
        "Where nothing holds fips.so (not linked NODELETE, a libc whose dlclose unmaps, every "
        "reference freed), dlclose unmaps it after a forced failure and the reload maps a "
        f"fresh copy that passes its self-tests ({CLEAN})"
    )
    if died:
        clean_text += f"; in {died} of them the process then died (see below)"
    return [
        _rule(
            nodelete,
            lambda s: s.verdict == STICKY,
            "Where fips.so is linked NODELETE it never leaves the process: after a forced "
            f"failure it keeps its error state and every reload fails ({STICKY})"
            + _libcs(nodelete),
        ),
        _rule(
            keeps,
            lambda s: s.verdict == STICKY,
            f"On {_libc_names(keeps)} dlclose unmaps nothing (the canary library stayed "
            f"mapped), so every forced failure stays ({STICKY}), NODELETE or not",
        ),
        _rule(
            leaked,
            lambda s: s.verdict == STICKY,
            "A reference never freed (an EVP_MD fetched and kept) holds fips.so in the process "
            f"in its error state ({STICKY})" + _libcs(leaked),
        ),
        _rule(free, lambda s: s.verdict == CLEAN, clean_text),
        _rule(
            threads,
            lambda s: _fact(s, "mapped_after_unload") is True,
            "Where nothing else holds fips.so, a thread that used it, never called "
            "OPENSSL_thread_stop_ex and is still alive keeps it in the process: the module "
            "stays mapped after the unload and the free",
        ),
    ]


def _shared_state_rules(reloads: list[Subject]) -> list[Finding | None]:
    other = [(r, s) for r, s in reloads if isinstance(_fact(s, "other_context_kept_working"), bool)]
    during = [
        (r, s)
        for r, s in reloads
        if isinstance(_fact(s, "reload_while_other_context_held_it"), bool)
    ]
    workers = [
        (r, s) for r, s in reloads if isinstance(_fact(s, "worker"), dict) and _forced(s.scenario)
    ]
    return [
        _rule(
            other,
            lambda s: _fact(s, "other_context_kept_working") is False,
            "Every library context that loaded the module shares its error state: after a "
            "failure forced in one, the other context refused work too",
        ),
        _rule(
            during,
            lambda s: _fact(s, "reload_while_other_context_held_it") is False,
            "A reload while another context still holds the module fails",
        ),
        _rule(
            workers,
            lambda s: _worker_met_error(_fact(s, "worker")),
            "A worker thread using the module meets the error state: after the failure every "
            "call it made failed",
        ),
    ]


def _control_rules(reloads: list[Subject]) -> list[Finding | None]:
    controls = [(r, s) for r, s in reloads if _expects(s.scenario)]
    reused = [
        (r, s)
        for r, s in reloads
        if not _forced(s.scenario)
        and _fact(s, "mapped_after_unload") is True
        and _fact(s, "reload_ok") is True
    ]
    expected = "; ".join(
        f"{name}: {' or '.join(info.control_expects)}"
        for name, info in SCENARIOS.items()
        if info.control_expects and any(s.scenario == name for _, s in controls)
    )
    return [
        # the reload verdict: a control's death after it is a finding of its own (below)
        _rule(
            controls,
            lambda s: s.verdict in _expects(s.scenario),
            f"The controls come out as they must ({expected})",
        ),
        _rule(
            reused,
            lambda s: _fact(s, "reload_fresh_instance") is False,
            "Without a failure, a fips.so that stays mapped is simply reused: the reload runs "
            "none of its self-tests",
        ),
    ]


def _rule(
    subjects: list[Subject], holds: Callable[[ScenarioResult], bool], text: str
) -> Finding | None:
    if not subjects:
        return None
    cells = list(dict.fromkeys(r.cell for r, _ in subjects))
    broken = [(r, s) for r, s in subjects if not holds(s)]
    failing = {r.cell for r, _ in broken}
    exceptions = tuple(
        f"{scenario} {status}: {where}"
        for (scenario, status), where in _grouped(broken, lambda s: (s.scenario, s.status))
    )
    return Finding(text, len(cells) - len(failing), len(cells), exceptions)


# --- what was not expected -----------------------------------------------------------------


def _unexpected(
    results: Sequence[CellResult], subjects: list[Subject], measured: int
) -> list[Finding]:
    found: list[Finding] = []

    def add(
        picked: list[Subject],
        key: Callable[[ScenarioResult], Any],
        say: Callable[[Any, ScenarioResult], str],
    ) -> None:
        for k, where, members in _grouped_with(picked, key):
            cells = len({r.cell for r, _ in members})
            found.append(Finding(say(k, members[0][1]), cells, measured, where=where))

    died = [
        (r, s)
        for r, s in subjects
        if s.verdict in RELOAD_VERDICTS and died_after_document(_facts(s))
    ]
    # what the scenario's control in the same cell did, keyed by the result itself
    by_control = {id(s): _control_seen(r, s.scenario) for r, s in died}
    add(
        died,
        lambda s: (
            s.scenario,
            s.verdict,
            died_after_document(_facts(s)),
            _crash_finding(s),
            by_control[id(s)],
            _has_threads(s),
        ),
        lambda k, s: _death(k[0], k[1], _how(k[2]), k[3], k[4], k[5]),
    )
    add(
        [(r, s) for r, s in subjects if s.verdict not in RELOAD_VERDICTS],
        lambda s: (s.scenario, s.verdict),
        lambda k, s: f"{k[0]}: {_word(k[1])} ({clip(s.cause, 100)})",
    )
    add(
        [
            (r, s)
            for r, s in subjects
            if s.verdict in RELOAD_VERDICTS
            and _expects(s.scenario)
            and s.verdict not in _expects(s.scenario)
        ],
        lambda s: (s.scenario, s.verdict),
        lambda k, s: f"{k[0]} (a control) came out {k[1]}, not " + " or ".join(_expects(k[0])),
    )
    add(
        [
            (r, s)
            for r, s in subjects
            if _forced(s.scenario)
            and s.verdict in (Verdict.MAPPED_BUT_RECOVERED, Verdict.UNLOADED_BUT_FAILED)
        ],
        lambda s: (s.scenario, s.verdict),
        lambda k, s: f"{k[0]}: {k[1]} after a forced failure ({_meaning(k[1])})",
    )
    add(
        [(r, s) for r, s in subjects if s.verdict in RELOAD_VERDICTS and _unknown_holder(s)],
        lambda s: s.scenario,
        lambda k, s: f"{k}: fips.so stayed mapped with nothing known holding it",
    )
    add(
        [(r, s) for r, s in subjects if _flaky(s)],
        lambda s: s.scenario,
        lambda k, s: f"{k}: repeated runs did not all give the same verdict",
    )
    for outcome in (Outcome.BUILD_FAILED, Outcome.ERROR):
        cells = [r for r in results if r.outcome == outcome]
        if cells:
            what = "the build failed" if outcome == Outcome.BUILD_FAILED else "the tool failed"
            found.append(
                Finding(
                    f"{what} ({clip(cells[0].reason, 100)})",
                    len(cells),
                    len(results),
                    where=name_cells(cells),
                )
            )
    unknown = [r for r in results if look(r.outcome) is None and r.outcome != Outcome.OK]
    if unknown:
        found.append(
            Finding(
                "an outcome this tool does not know",
                len(unknown),
                len(results),
                where=name_cells(unknown),
            )
        )
    return found


# --- a death after the document, and what the control says of its cause ------------------

# what a control in the same cell did: it survived, died too (in the C probe's process, or
# only in the cffi twin's), or cannot say (why)
SURVIVED, DIED_TOO, TWIN_DIED = "survived", "died", "twin died"
# a death the control shows without a failure, for the scenarios with live threads
THREAD_DEATH = (
    "dies whenever a context a live thread used is freed (or fips.so unloaded while it "
    "lives), failure or not"
)


def _control_seen(r: CellResult, scenario: str) -> str:
    """SURVIVED or DIED_TOO: what the scenario's control did in the same cell; otherwise why
    it cannot separate the cause ("" for a scenario that forces no failure)."""
    if not _forced(scenario):
        return ""
    control = control_of(scenario)
    if control is None:
        return "no control of this scenario"
    found = next((s for s in r.scenarios if s.scenario == control), None)
    if found is None:
        return f"control {control} not in this run"
    if found.verdict not in RELOAD_VERDICTS:
        return f"control {control} gave no reload verdict: {_word(found.verdict)}"
    if died_after_document(_facts(found)) is not None:
        return DIED_TOO
    # the twin's process is a second sample of the same run: one death needs no failure
    twin = _fact(found, "witness_exit_after_document")
    return TWIN_DIED if isinstance(twin, int) and twin != 0 else SURVIVED


def _death(scenario: str, verdict: str, how: str, crash: str, control: str, threads: bool) -> str:
    """A death after the document, tied to the failure or the reload only where the
    scenario's control in the same cell survived."""
    of = f": {crash}" if crash else ""
    if control in (DIED_TOO, TWIN_DIED):
        shows = THREAD_DEATH if threads else "dies after the reload, failure or not"
        where = " in its cffi twin's process" if control == TWIN_DIED else ""
        return (
            f"{scenario}: the process died after its document ({how}){of}; it {shows} "
            f"(control {control_of(scenario)} died too{where})"
        )
    if control == SURVIVED:
        return (
            f"{scenario}: after a {verdict} reload, the process died ({how}){of}; its control "
            f"{control_of(scenario)} survived, so the forced failure (or the reload after it) "
            "is the cause"
        )
    said = f"{scenario}: the process died after its document ({how}){of}"
    if control:  # not tied to the failure, nor to the reload
        return f"{said}; its reload was {verdict}, but the cause is unseparated ({control})"
    partner = partner_of(scenario)
    return f"{said}; its reload was {verdict}, with no failure forced" + (
        f" (the control of {partner})" if partner else ""
    )


def _has_threads(s: ScenarioResult) -> bool:
    """Threads that used context A were alive through its free (the probe's worker facts)."""
    return isinstance(_fact(s, "worker"), dict) or isinstance(_fact(s, "workers"), list)


# --- naming cells --------------------------------------------------------------------------


def name_cells(cells: Iterable[CellResult]) -> str:
    """Cells named compactly: rows (version and variant) with the platforms they are on,
    "3.6.3 no-pinshared, 4.0.2 no-pinshared on debian-11, debian-12"; groups by "; "."""
    platforms: dict[tuple[str, str], list[str]] = {}
    for r in cells:
        found = platforms.setdefault((r.version, r.variant), [])
        if r.platform not in found:
            found.append(r.platform)
    rows: dict[tuple[str, ...], list[str]] = {}
    for row, on in platforms.items():
        rows.setdefault(tuple(on), []).append(row_label(row))
    return "; ".join(f"{', '.join(labels)} on {', '.join(on)}" for on, labels in rows.items())


def _grouped(members: list[Subject], key: Callable[[ScenarioResult], Any]) -> list[tuple[Any, str]]:
    return [(k, where) for k, where, _ in _grouped_with(members, key)]


def _grouped_with(
    members: list[Subject], key: Callable[[ScenarioResult], Any]
) -> list[tuple[Any, str, list[Subject]]]:
    groups: dict[Any, list[Subject]] = {}
    for r, s in members:
        groups.setdefault(key(s), []).append((r, s))
    return [(k, name_cells(r for r, _ in g), g) for k, g in groups.items()]


# --- facts ---------------------------------------------------------------------------------


def _facts(s: ScenarioResult) -> dict[str, Any]:
    return s.facts if isinstance(s.facts, dict) else {}


def _fact(s: ScenarioResult, name: str) -> Any:
    return _facts(s).get(name)


def _forced(scenario: str) -> bool:
    info = SCENARIOS.get(scenario)
    return info is not None and info.forced_test is not None


def _expects(scenario: str) -> tuple[str, ...]:
    info = SCENARIOS.get(scenario)
    return tuple(info.control_expects) if info is not None else ()


def _worker_met_error(worker: Any) -> bool:
    if not isinstance(worker, dict):
        return False
    failed, ok = worker.get("failed_after_failure"), worker.get("ok_after_failure")
    return isinstance(failed, int) and failed > 0 and ok == 0


def _unknown_holder(s: ScenarioResult) -> bool:
    return (
        _fact(s, "mapped_after_unload") is True
        and _fact(s, "module_nodelete") is not True
        and _fact(s, "libc_dlclose_unmaps") is not False
        and _fact(s, "leaked_reference") is not True
        and not _fact(s, "threads_alive_without_thread_stop")
    )


def _crash_finding(s: ScenarioResult) -> str:
    """The attributed crash's finding in a few words ("code of the unloaded fips.so ran
    after dlclose"), "" when none was attributed."""
    crash = _fact(s, "crash")
    finding = crash.get("finding") if isinstance(crash, dict) else None
    return finding if isinstance(finding, str) and crash.get("attributed") is True else ""


def _flaky(s: ScenarioResult) -> bool:
    runs = _fact(s, "runs")
    return isinstance(runs, dict) and runs.get("agree") != runs.get("total")


def _libcs(subjects: list[Subject]) -> str:
    return f", on {_libc_names(subjects)}" if subjects else ""


def _libc_names(subjects: list[Subject]) -> str:
    """The libcs of the subjects as the probes saw them: "glibc 2.36, musl 1.2.3"."""
    by_name: dict[str, list[str]] = {}
    for r, _ in subjects:
        name, _, version = r.libc_label().partition(" ")
        versions = by_name.setdefault(name, [])
        if version and version not in versions:
            versions.append(version)
    return ", ".join(
        f"{name} {', '.join(sorted(v, key=_version_key))}" if v else name
        for name, v in by_name.items()
    )


def _version_key(version: str) -> list[int | str]:
    return [int(p) if p.isdigit() else p for p in version.split(".")]


def _how(code: int | None) -> str:
    if code is not None and code > 128:
        try:
            return f"signal {code - 128}, {signal.Signals(code - 128).name}"
        except ValueError:
            return f"signal {code - 128}"
    return f"exit status {code}"


def _meaning(word: str) -> str:
    found = look(word)
    return found.meaning if found is not None else "a word this tool does not know"


def _word(word: str) -> str:
    return word if look(word) is not None else f"unknown verdict {word!r}"

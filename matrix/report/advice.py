"""What to do, generated from the cells: how to build, what a program must do, which
combinations need a restart instead, and which deaths are OpenSSL defects rather than misuse
(with the `fips-matrix repro` command that makes a reproducer to hand upstream).

Pure, and drawn from each cell's recoverability (matrix/judge/recovery.py) and facts alone,
never from cell, platform or variant names, as the findings are. Every line names the cells it
stands on and its exceptions; a line with no cell behind it in this run is not made."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from matrix.judge.recovery import (
    BASE,
    CONTEXT,
    FREE,
    LIBC_REASON,
    NODELETE_REASON,
    SAME,
    THREADS,
    UNFORCED,
    Death,
    Recoverability,
    causes,
    recoverability,
    separation,
)
from matrix.model.vocabulary import RECOVERY_LOOKS, Recovery
from matrix.results.records import CellResult

RECOVERING = (Recovery.RECOVERS, Recovery.RECOVERS_IF)


@dataclass(frozen=True)
class Advice:
    text: str  # what to do, and why, in one sentence
    cells: str  # the cells it stands on, named compactly
    exceptions: tuple[str, ...] = ()  # where it does not hold, named
    commands: tuple[str, ...] = ()  # `fips-matrix repro CELL SCENARIO` for a reproducer
    evidence: str = ""  # what the deaths' controls say, after the sentence of what to do

    def line(self, named: bool = True) -> str:
        """What to do first, then the evidence: "TEXT. EVIDENCE. Cells: ...; exceptions:
        ...; reproduce: ..." (a command last, where nothing follows it); named: with the
        cells it stands on and its exceptions (the README's short form leaves them to
        table.md)."""
        text = f"{self.text}."
        if self.evidence:
            text += f" {self.evidence[0].upper()}{self.evidence[1:]}."
        if named:
            text += f" Cells: {self.cells}"
            if self.exceptions:
                text += "; exceptions: " + "; ".join(self.exceptions)
        if self.commands:
            text += ("; reproduce: " if named else " Reproduce: ") + ", ".join(self.commands)
        return text


Judged = tuple[CellResult, Recoverability]


def judged(
    results: Sequence[CellResult], controls: Mapping[str, str | None] | None = None
) -> list[Judged]:
    """Every measured cell with its recoverability (skipped and unbuilt cells left out);
    controls: scenario -> its control (default: the vocabulary's)."""
    out = [(r, recoverability(r, controls)) for r in results if r.scenarios]
    return [(r, j) for r, j in out if j.status != Recovery.NOT_MEASURED]


def advice(
    results: Sequence[CellResult], controls: Mapping[str, str | None] | None = None
) -> list[Advice]:
    cells = judged(results, controls)
    made = [
        _build(cells),
        *_libc(cells),
        _restart(cells),
        _condition(
            cells,
            FREE,
            "Free every object you fetched (EVP_MD, EVP_CIPHER, ...) before you free the "
            "context and reload: one reference kept holds fips.so in its error state",
        ),
        _condition(
            cells,
            CONTEXT,
            "Use one library context for the FIPS provider, and free every context that "
            "loaded it before the reload: a reload while another context holds the module "
            "fails",
        ),
        _threads(cells),
        _keep_loaded(cells),
        *_defects(cells),
    ]
    return [a for a in made if a is not None]


# --- build and restart ---------------------------------------------------------------------


def _build(cells: list[Judged]) -> Advice | None:
    pinned = [(r, j) for r, j in cells if _base_fact(r, "module_nodelete") is True]
    free = [
        (r, j)
        for r, j in cells
        if _base_fact(r, "module_nodelete") is False and _base_fact(r, "libc_dlclose_unmaps")
    ]
    never = [r for r, j in pinned if j.status == Recovery.NEVER]
    recover = [r for r, j in free if j.status in RECOVERING]
    if not never or not recover:
        return None
    exceptions = [
        *_by_status([(r, j) for r, j in pinned if j.status != Recovery.NEVER], "NODELETE, yet"),
        *_by_status([(r, j) for r, j in free if j.status not in RECOVERING], "without it,"),
    ]
    return Advice(
        "Build OpenSSL with no-pinshared (./Configure ... no-pinshared), so that fips.so is "
        "not linked NODELETE: every NODELETE cell is NEVER, and where the libc's dlclose "
        "unmaps, the cells built without it recover",
        f"NEVER with NODELETE: {_named(never)}; recover without it: {_named(recover)}",
        tuple(exceptions),
    )


def _libc(cells: list[Judged]) -> list[Advice]:
    keeps = [(r, j) for r, j in cells if _base_fact(r, "libc_dlclose_unmaps") is False]
    by_libc: dict[str, list[Judged]] = {}
    for r, j in keeps:
        by_libc.setdefault(r.libc_label().split(" ")[0], []).append((r, j))
    made = []
    for libc, members in by_libc.items():
        never = [r for r, j in members if j.status == Recovery.NEVER]
        if not never:
            continue
        made.append(
            Advice(
                f"On {_libc_versions(libc, members)}, no build recovers (its dlclose unmaps "
                "nothing, so fips.so keeps its error state): restart the process after a failure",
                _named(never),
                tuple(_by_status([(r, j) for r, j in members if j.status != Recovery.NEVER])),
            )
        )
    return made


def _libc_versions(name: str, members: list[Judged]) -> str:
    versions = dict.fromkeys(r.libc_label().partition(" ")[2] for r, _ in members)
    return f"{name} {', '.join(v for v in versions if v)}".strip()


def _restart(cells: list[Judged]) -> Advice | None:
    """NEVER for a reason neither the build nor the libc explains."""
    other = [
        (r, j)
        for r, j in cells
        if j.status == Recovery.NEVER and not {NODELETE_REASON, LIBC_REASON} & set(j.reasons)
    ]
    if not other:
        return None
    return Advice(
        "Restart the process after a failure: the reload failed although everything was "
        f"freed ({other[0][1].reasons[0]})",
        _named(r for r, _ in other),
    )


# --- what the program must do --------------------------------------------------------------


def _condition(cells: list[Judged], mark: str, text: str) -> Advice | None:
    """A condition of recovery: the cells (not NEVER) where a scenario proves it; those that
    ran the same kind of scenario without proving it are the exceptions."""
    live = [(r, j) for r, j in cells if j.status != Recovery.NEVER]
    proven = [r for r, j in live if any(c.mark == mark for c in j.conditions)]
    if not proven:
        return None
    scenarios = {s for _, j in live for c in j.conditions if c.mark == mark for s in c.scenarios}
    ids = {r.cell for r in proven}
    unproven = [
        r
        for r, _ in live
        if r.cell not in ids and any(s.scenario in scenarios for s in r.scenarios)
    ]
    exceptions = (f"not needed on {_named(unproven)}",) if unproven else ()
    return Advice(text, _named(proven), exceptions)


def _threads(cells: list[Judged]) -> Advice | None:
    """OPENSSL_thread_stop_ex: where a thread without it killed the process or kept the
    error state, and a thread with it did not."""
    crashed, kept, useless = [], [], []
    controls: list[tuple[str, Death]] = []
    for r, j in cells:
        unstopped = [d for d in j.deaths if not d.correct and d.in_thread]
        stopped_died = [d for d in j.deaths if d.correct and d.in_thread]
        threads = next((c for c in j.conditions if c.mark == THREADS), None)
        if unstopped and stopped_died:
            useless.append(r)
        elif unstopped and _stopped_survived(r, j):
            crashed.append(r)
            controls += [(r.cell, d) for d in unstopped]
        elif threads is not None and j.status != Recovery.NEVER:
            kept.append(r)
    if not crashed and not kept:
        return None
    parts = []
    if crashed:
        parts.append(f"where its absence crashes: {_named(crashed)}")
    if kept:
        parts.append(f"where its absence keeps the error state: {_named(kept)}")
    exceptions = []
    if useless:
        exceptions.append(f"it does not save the process on {_named(useless)} (see the next line)")
    return Advice(
        "Call OPENSSL_thread_stop_ex(ctx) in every thread that used ctx before ctx is freed",
        "; ".join(parts),
        tuple(exceptions),
        evidence=separation(controls),
    )


def _keep_loaded(cells: list[Judged]) -> Advice | None:
    dead = [(r, d) for r, j in cells for d in j.deaths if d.correct and d.in_thread]
    if not dead:
        return None
    findings = list(dict.fromkeys(d.key for _, d in dead))
    return Advice(
        "Keep fips.so loaded until every thread that used it has exited (join those threads "
        "before the unload): a thread alive through the unload killed the process at its exit "
        "although it had called OPENSSL_thread_stop_ex (" + "; ".join(findings) + ")",
        _named(r for r, _ in dead),
        evidence=separation([(r.cell, d) for r, d in dead]),
    )


def _defects(cells: list[Judged]) -> list[Advice]:
    """Deaths of a program that did everything right, one line per cause: a scenario and its
    control that died of it are one cause, reproduced with the control (no failure needed)."""
    groups: dict[str, list[tuple[CellResult, Death]]] = {}
    for r, j in cells:
        for key, same in causes([d for d in j.deaths if d.correct]):
            groups.setdefault(key, []).extend((r, d) for d in same)
    made = []
    for cause, members in groups.items():
        deaths = [d for _, d in members]
        where = ", ".join(dict.fromkeys(d.pair for d in deaths))
        made.append(
            Advice(
                "Report this OpenSSL defect (not misuse) upstream: a program that freed "
                f"everything and stopped its threads died in {where} ({cause}{_rates(deaths)})",
                _named(r for r, _ in members),
                commands=(_reproducer(members),),
                evidence=separation([(r.cell, d) for r, d in members]),
            )
        )
    return made


def _reproducer(members: Sequence[tuple[CellResult, Death]]) -> str:
    """`fips-matrix repro` of the smallest program that died: a control (no failure
    forced) where one died of the cause, else the first scenario."""
    for r, d in members:
        if d.link == SAME and d.control is not None:
            return f"fips-matrix repro {r.cell} {d.control}"
    r, d = next(((r, d) for r, d in members if d.link == UNFORCED), members[0])
    return f"fips-matrix repro {r.cell} {d.scenario}"


# --- pieces --------------------------------------------------------------------------------


def _stopped_survived(r: CellResult, j: Recoverability) -> bool:
    """A scenario whose threads all called OPENSSL_thread_stop_ex lived: the call helps."""
    died = {d.scenario for d in j.deaths}
    return any(
        (isinstance(s.facts.get("worker"), dict) or bool(s.facts.get("workers")))
        and not s.facts.get("threads_alive_without_thread_stop")
        and s.scenario not in died
        for s in r.scenarios
        if isinstance(s.facts, dict)
    )


def _rates(deaths: Sequence[Death]) -> str:
    """ ", in 7/15 runs" where more than one run was made of any death; a control that died
    of the same cause counts with its partner."""
    fates = [(d.died, d.runs) for d in deaths]
    fates += [
        (d.control_fate.died, d.control_fate.runs)
        for d in deaths
        if d.link == SAME and d.control_fate is not None
    ]
    runs = sum(n for _, n in fates)
    if runs == len(fates):
        return ""
    return f", in {sum(k for k, _ in fates)}/{runs} runs"


def _by_status(members: list[Judged], lead: str = "") -> list[str]:
    groups: dict[str, list[CellResult]] = {}
    for r, j in members:
        groups.setdefault(j.status, []).append(r)
    prefix = f"{lead} " if lead else ""
    return [
        f"{prefix}{RECOVERY_LOOKS[status].code} on {_named(rs)}" for status, rs in groups.items()
    ]


def _named(cells: Iterable[CellResult]) -> str:
    """Cells named compactly: the platforms that share the same rows, and the rows with one
    variant on several versions joined, "3.6.3/4.0.2 no-pinshared on debian-12, debian-13"."""
    rows: dict[str, list[tuple[str, str]]] = {}
    for r in cells:
        found = rows.setdefault(r.platform, [])
        if (r.version, r.variant) not in found:
            found.append((r.version, r.variant))
    platforms: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for platform, found in rows.items():
        platforms.setdefault(tuple(found), []).append(platform)
    groups = []
    for shared, on in platforms.items():
        versions: dict[str, list[str]] = {}
        for version, variant in shared:
            versions.setdefault(variant, []).append(version)
        named = ", ".join(f"{'/'.join(v)} {variant}" for variant, v in versions.items())
        groups.append(f"{named} on {', '.join(on)}")
    return "; ".join(groups)


def _base_fact(r: CellResult, name: str) -> object:
    """A fact of the cell's base scenarios (they agree on how fips.so is linked and what the
    libc does); None where none of them records it."""
    for s in r.scenarios:
        if s.scenario in BASE and isinstance(s.facts, dict) and name in s.facts:
            return s.facts[name]
    return None

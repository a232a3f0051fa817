"""A cell's probe runs: which runs (every scenario's C probe runs, repeated as asked, each
followed by the cffi twin where the image has Python), their command lines, the follow-up
runs that make a death a rate (in one more container), and the runs' exits and documents
turned into scenario results, judged. Also when earlier probe runs may stand in for new
ones."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import docker

from matrix import assets
from matrix.execute.probes.batch import BatchRun, ProbeRun, run_batch
from matrix.execute.probes.symbolize import crash_record
from matrix.judge import fate as fates
from matrix.judge.cell import completed, judged, majority, twin_ran
from matrix.judge.fate import DEFAULT_FATE_RUNS
from matrix.model import kinds
from matrix.model.cells import Cell
from matrix.model.vocabulary import control_of, partner_of
from matrix.progress import Reporter
from matrix.results.records import CellResult, ScenarioResult


def run_workdir(index: int) -> str:
    """Run `index`'s own working directory, which the batch driver makes for it."""
    return f"{assets.WORKDIR}/run-{index}"


@dataclass(frozen=True)
class Programs:
    """A cell's probe programs in its container and what each is given beyond the scenario:
    a cell image's own (/opt/fips-matrix), or the portable probe's from its volume."""

    probe: str = assets.PROBE
    module: str = assets.MODULE
    canary: str = assets.CANARY
    probe_args: tuple[str, ...] = ()  # the portable probe's --libcrypto, --module-mac
    twin_libcrypto: str | None = assets.LIBCRYPTO_DIR  # None: no second witness here
    twin_args: tuple[str, ...] = ()  # --module-mac, as the probe's
    driver: str = assets.BATCH
    volume: str | None = None  # the portable probe's, mounted read-only


DEFAULT_PROGRAMS = Programs()  # a cell image's own, in /opt/fips-matrix


def built_in_programs(cell: Cell) -> Programs:
    """A cell image's programs: the twin where the image has Python, given the libcrypto
    its kind says (the cell's own, or the distribution's by its soname)."""
    return Programs(twin_libcrypto=kinds.of(cell.kind).twin_libcrypto(cell.platform))


def _scenario_args(
    scenario: str, workdir: str, programs: Programs, extra: Sequence[str]
) -> list[str]:
    args = ["--scenario", scenario, "--module", programs.module]
    return [*args, "--canary", programs.canary, "--workdir", workdir, *extra]


def _config_args(module_config: Sequence[tuple[str, str]]) -> list[str]:
    return [a for key, value in module_config for a in ("--config", f"{key}={value}")]


def probe_command(
    scenario: str,
    module_config: Sequence[tuple[str, str]],
    workdir: str,
    programs: Programs = DEFAULT_PROGRAMS,
) -> list[str]:
    """The C probe's argv."""
    args = _scenario_args(scenario, workdir, programs, programs.probe_args)
    return [programs.probe, *args, *_config_args(module_config)]


def twin_command(
    scenario: str,
    module_config: Sequence[tuple[str, str]],
    workdir: str,
    libcrypto: str = assets.LIBCRYPTO_DIR,
    programs: Programs = DEFAULT_PROGRAMS,
) -> list[str]:
    """The second witness's argv: the same scenario through cffi, in the same image. The
    script travels in the command line, so it needs no image of its own."""
    script = assets.TWIN_SOURCE.read_text(encoding="utf-8")
    command = ["python3", "-c", script, "--libcrypto", libcrypto]
    args = _scenario_args(scenario, workdir, programs, programs.twin_args)
    return [*command, *args, *_config_args(module_config)]


@dataclass(frozen=True)
class CellProbes:
    """What probing a cell gave: its scenarios, judged, the probe log's text, and what the
    follow-up runs (--fate-runs) cost: their number, their batch's seconds and its container
    (short id; the bench reads its CPU)."""

    scenarios: list[ScenarioResult]
    log: str
    fate_runs: int = 0
    fate_seconds: float = 0.0
    fate_container: str = ""


Observed = tuple[ProbeRun, dict[str, Any] | None, str]  # a run, its document, why it has none


@dataclass
class _Scenario:
    """One scenario's runs as they come in: the C probe's (the first `asked` of them as
    --repeat asked, the rest follow-ups) and the twin's witness record."""

    name: str
    runs: list[Observed]
    asked: int
    witness: dict[str, Any] | None = None


def probe_cell(
    client: docker.DockerClient,
    image_id: str,
    cell: Cell,
    *,
    repeat: int,
    timeout: float,
    reporter: Reporter,
    programs: Programs | None = None,
    fate_runs: int = DEFAULT_FATE_RUNS,
) -> CellProbes:
    """Every run of the cell in one container, in the order they used to run one container
    each: for each scenario its repeats, then the twin. Then, in one more container, the
    follow-up runs: each scenario whose process died after its document (the C probe's or
    the twin's) or whose runs disagreed, run again up to `fate_runs` runs of the C probe in
    all, so its fate is a rate. `programs`: where they are (default: in the cell's image)."""
    programs = programs or built_in_programs(cell)
    libcrypto = programs.twin_libcrypto
    with_twin = libcrypto is not None
    config = cell.variant.module_config
    batch: list[BatchRun] = []
    for scenario in cell.scenarios:
        for _ in range(repeat):
            argv = probe_command(scenario, config, run_workdir(len(batch)), programs)
            batch.append(BatchRun(scenario, argv))
        if libcrypto is not None:
            workdir = run_workdir(len(batch))
            argv = twin_command(scenario, config, workdir, libcrypto, programs)
            batch.append(BatchRun(scenario, argv))
    reporter.phase(cell.id, "probe", f"{len(batch)} runs in one container")
    done = iter(_run(client, image_id, batch, timeout, cell.id, programs))
    observed: list[_Scenario] = []
    log: list[str] = []
    twin_here = with_twin
    for scenario in cell.scenarios:
        runs = [_observe(next(done), "probe", log) for _ in range(repeat)]
        seen = _Scenario(scenario, runs, repeat)
        # a twin run after the twin proved unable here is ignored, as if never made
        twin = next(done) if with_twin else None
        if twin is not None and twin_here:
            seen.witness, twin_here = _witness(twin, log)
        observed.append(seen)

    follow = _follow_ups(client, image_id, cell, observed, fate_runs, timeout, programs, log)
    if follow.runs:
        reporter.phase(cell.id, "probe", follow.said)
    results = [_judged(seen, client, image_id) for seen in observed]
    return CellProbes(results, "".join(log), follow.runs, follow.seconds, follow.container)


@dataclass(frozen=True)
class _FollowUps:
    runs: int = 0
    seconds: float = 0.0
    container: str = ""  # short id
    said: str = ""  # for the progress line


def _follow_ups(
    client: docker.DockerClient,
    image_id: str,
    cell: Cell,
    observed: list[_Scenario],
    fate_runs: int,
    timeout: float,
    programs: Programs,
    log: list[str],
) -> _FollowUps:
    """Runs again, all in one container, each scenario whose process died after its document
    or whose runs disagreed, until it has `fate_runs` runs of the C probe; adds them to its
    runs. A crash record is not needed to tell which (it names a crash, it judges nothing)."""
    wanted = {
        seen.name: fates.runs_wanted(_judged(seen).facts, len(seen.runs), fate_runs)
        for seen in observed
    }
    # A scenario and its control die of the same cause or not at all: where one of them
    # died, both get their rate, so that a rare survival of the other is not taken for a
    # fact (and a gate between two runs does not flap on it).
    for name in [n for n, more in wanted.items() if more]:
        for linked in (control_of(name), partner_of(name)):
            if linked in wanted and not wanted[linked]:
                runs = next(len(seen.runs) for seen in observed if seen.name == linked)
                wanted[linked] = max(0, fate_runs - runs)
    more = [(seen, wanted[seen.name]) for seen in observed]
    names = [seen.name for seen, n in more for _ in range(n)]
    if not names:
        return _FollowUps()
    config = cell.variant.module_config
    batch = [
        BatchRun(name, probe_command(name, config, run_workdir(i), programs))
        for i, name in enumerate(names)
    ]
    started = time.monotonic()
    made: list[str] = []
    again = iter(_run(client, image_id, batch, timeout, cell.id, programs, made))
    seconds = round(time.monotonic() - started, 3)
    for seen, n in more:
        seen.runs += [_observe(next(again), "probe, follow-up", log) for _ in range(n)]
    said = (
        f"{len(batch)} follow-up runs of {sum(1 for _, n in more if n)} scenarios whose "
        "process (or its control's or partner's) died or whose runs disagreed, in one more "
        f"container ({seconds:.1f} s)"
    )
    return _FollowUps(len(batch), seconds, made[0][:12] if made else "", said)


def _run(
    client: docker.DockerClient,
    image_id: str,
    batch: list[BatchRun],
    timeout: float,
    label: str,
    programs: Programs,
    created: list[str] | None = None,
) -> list[ProbeRun]:
    """The batch in one container; `created` gets the container's id."""
    return run_batch(
        client,
        image_id,
        batch,
        timeout,
        label,
        driver=programs.driver,
        volume=programs.volume,
        created=created.append if created is not None else None,
    )


def _observe(run: ProbeRun, who: str, log: list[str]) -> Observed:
    doc, why = run.document()
    log.append(_log_entry(who, run, doc))
    return run, doc, why


def _witness(twin: ProbeRun, log: list[str]) -> tuple[dict[str, Any], bool]:
    """The twin's witness record, and whether the twin could run here at all."""
    twin_doc, _ = twin.document()
    log.append(_log_entry("cffi twin", twin, twin_doc))
    witness: dict[str, Any] = {
        "exit_code": twin.exit_code,
        "timed_out": twin.timed_out,
        "seconds": round(twin.seconds, 3),
        "probe": twin_doc,
    }
    ran = twin_ran(twin.exit_code, twin_doc)
    if not ran:  # no Python here, or it refused: no second witness
        witness["unavailable"] = (twin.stderr or twin.stdout)[-500:]
    return witness, ran


def _judged(
    seen: _Scenario, client: docker.DockerClient | None = None, image_id: str = ""
) -> ScenarioResult:
    """The scenario's result from its runs, judged. With no client, no crash record is
    made (names are resolved in the image): enough to tell whether it needs follow-ups."""
    runs = seen.runs
    run, doc, why = runs[
        majority(seen.name, [(r.exit_code, r.timed_out, d, w) for r, d, w in runs])
    ]
    return judged(
        seen.name,
        run.exit_code,
        run.timed_out,
        round(run.seconds, 3),
        doc,
        witness=seen.witness,
        # a crash is attributed from the run's stderr lines, its addresses named now
        crash=crash_record(client, image_id, run.stderr) if client is not None else None,
        repeats=(
            [_repeat(r, d, i >= seen.asked) for i, (r, d, _) in enumerate(runs)]
            if len(runs) > 1
            else None
        ),
        why=why,
    )


def _repeat(run: ProbeRun, doc: dict[str, Any] | None, follow_up: bool) -> dict[str, Any]:
    """One run of the C probe as the results keep it; a follow-up run says so."""
    kept = {"exit_code": run.exit_code, "timed_out": run.timed_out, "probe": doc}
    return {**kept, "follow_up": True} if follow_up else kept


def inputs_key(
    image_key: str, image_id: str, cell: Cell, repeat: int, fate_runs: int = DEFAULT_FATE_RUNS
) -> str:
    """The image's inputs plus what the probe is asked: same key, same probe runs."""
    config = ",".join(f"{k}={v}" for k, v in cell.variant.module_config)
    twin = hashlib.sha256(assets.TWIN_SOURCE.read_bytes()).hexdigest()
    text = f"{image_key}\0{image_id}\0{','.join(cell.scenarios)}\0{config}\0{twin}"
    text += f"\0{repeat}"
    if fate_runs != 1:  # 1: no follow-ups, the key of the runs made before there were any
        text += f"\0fate-runs {fate_runs}"
    return hashlib.sha256(text.encode()).hexdigest()


def reusable(previous: CellResult, key: str) -> bool:
    """Earlier probe runs stand in for new ones only if nothing about them can change:
    same inputs, every run (repeats and the twin too) ended with a complete document, and a
    run that died by a signal kept its crash record."""
    if previous.inputs_key != key or not previous.scenarios:
        return False
    for s in previous.scenarios:
        docs = [s.probe, *(r["probe"] for r in s.repeats or ())]
        if s.witness is not None and "unavailable" not in s.witness:
            docs.append(s.witness.get("probe"))
        if not all(completed(d) for d in docs):
            return False
        if s.exit_code is not None and s.exit_code > 128 and s.crash is None:
            return False  # died by a signal, kept no crash record (an older run): again
    return True


def _log_entry(who: str, run: ProbeRun, doc: dict[str, Any] | None) -> str:
    text = (
        f"### {run.scenario} ({who}): exit={run.exit_code} timed_out={run.timed_out} "
        f"seconds={run.seconds:.2f}\n{run.stderr}\n"
    )
    if doc is None or "error" in doc:
        text += f"stdout:\n{run.stdout[:4000]}\n"
    return text

"""One run of the matrix: for each cell, base image -> source -> image -> probes -> result.

A cell that fails is recorded with its outcome and the run goes on; each cell's result is
written as soon as it ends, so nothing finished is lost if the run stops.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import os
import threading
import time
import traceback
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors

from matrix import __version__, images, probing, schedule
from matrix.baseimages import BaseImage, BaseImageError, ensure_base_image
from matrix.cells import Cell
from matrix.definition import MatrixDefinition, Platform, dockerfile_path
from matrix.engine import CONNECTION_ERRORS, EngineError, EngineFacts
from matrix.errors import SourceError
from matrix.images import BuildFailed, BuildInputs, CellImage
from matrix.lockfile import Lock, LockMismatch
from matrix.progress import Progress
from matrix.redact import mirror_redactor
from matrix.results import (
    BUILD_FAILED,
    ERROR,
    FLAKY,
    OK,
    PROBE_CRASHED,
    SKIPPED,
    TIMEOUT,
    CellResult,
    ResultsDir,
    ScenarioResult,
    write_text,
)
from matrix.sources import FetchedSource, fetch_source
from matrix.verdicts import DISAGREEMENT, Judgement, judge_run, with_witness

T = TypeVar("T")
COMPILE_STEP = "RUN fips-matrix-build.sh compile"  # the Dockerfile contract's compile step


class _Once:
    """Runs each keyed job once, whichever worker asks first; the others wait for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._values: dict[Hashable, Any] = {}

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._values:
                self._values[key] = make()
            value: T = self._values[key]
            return value


class _CellStopped(Exception):
    """The cell cannot go on: it ends with this outcome and reason."""

    def __init__(self, outcome: str, reason: str, logs: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        self.logs = logs or {}


@dataclass(frozen=True)
class _Imaged:
    """A cell's image phase, done by a builder; its probes run later, beside the compiles."""

    started: str  # wall clock, for the cell's times
    seconds: float
    made: tuple[BaseImage, CellImage, list[FetchedSource]] | Exception


@contextlib.contextmanager
def _engine_errors(cell: Cell, results: Path) -> Iterator[None]:
    """An engine gone away stops the whole run, with a word on what is kept."""
    try:
        yield
    except CONNECTION_ERRORS as exc:
        raise EngineError(
            f"the Docker engine went away during {cell.id} ({exc}); "
            f"finished cells are kept in {results}"
        ) from exc


@dataclass(frozen=True)
class RunOptions:
    results: Path
    cache_dir: Path
    mirror: str | None
    jobs: int
    probe_timeout: float
    force: bool
    offline: bool = False  # never pull: platforms with no local base image and no fallback skip
    parallel: int = 1  # builds side by side (and as many probe workers beside them)
    repeat: int = 1  # runs of the C probe per scenario; disagreeing runs make a cell FLAKY
    locked: Lock | None = None  # refuse base images and sources that differ from this lock
    downloads: bool = True  # False: sources only from the cache (a bundle's run)


class Runner:
    def __init__(
        self,
        client: docker.DockerClient,
        engine: EngineFacts,
        definition: MatrixDefinition,
        options: RunOptions,
        progress: Progress,
    ) -> None:
        self.client = client
        self.engine = engine
        self.definition = definition
        self.options = options
        self.progress = progress
        self.redact = mirror_redactor(options.mirror)
        self.out = ResultsDir(options.results, self.redact)
        self._once = _Once()  # base images, sources and images: each made once per run
        self.used = Lock(definition.digest)  # what this run used, for its lock file
        self._stopping = threading.Event()
        self._gates: dict[str, threading.Event] = {}  # see _gate
        self._gates_lock = threading.Lock()
        # seconds spent making base images, the stages built ahead and fetching sources,
        # summed over the workers that did it (the benchmark's phases)
        self.phase_seconds: dict[str, float] = {"base": 0.0, "stages": 0.0, "source": 0.0}
        self._phase_lock = threading.Lock()

    @contextlib.contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        t0 = time.monotonic()
        try:
            yield
        finally:
            with self._phase_lock:
                self.phase_seconds[name] += time.monotonic() - t0

    def run(self, cells: Sequence[Cell]) -> list[CellResult]:
        """Builders take the compile groups (matrix/schedule.py); one worker makes each
        platform's stages before compile ahead of them; another pool probes the cells whose
        images are built, and builds and probes the cells with nothing to compile."""
        self.out.prepare()
        plan = schedule.plan(cells)
        done: dict[str, CellResult] = {}
        workers = max(1, self.options.parallel)
        stages = ThreadPoolExecutor(1, "fips-matrix-stages")
        builders = ThreadPoolExecutor(workers, "fips-matrix-build")
        beside = ThreadPoolExecutor(workers, "fips-matrix-probe")
        futures: list[Future[None]] = []
        lock = threading.Lock()
        in_groups = {c.id for g in plan.groups for c in g.cells}
        imaged: set[str] = set()  # cells whose image phase a builder has finished
        waiting_skew = list(plan.skew)

        def submit(pool: ThreadPoolExecutor, job: Callable[..., None], *args: Any) -> None:
            with lock:
                if not self._stopping.is_set():
                    futures.append(pool.submit(job, *args))

        def finish(cell: Cell, imaged_now: _Imaged | None) -> None:
            done[cell.id] = self._run_cell(cell, imaged_now)

        def release_skew() -> None:
            """Skew cells whose parts are built (or are no cells of this run) can go."""
            with lock:
                ready = [
                    c
                    for c in waiting_skew
                    if all(p.id in imaged or p.id not in in_groups for p in self._skew_parts(c))
                ]
                for c in ready:
                    waiting_skew.remove(c)
            for c in ready:
                submit(beside, finish, c, None)

        def build(group: schedule.CompileGroup) -> None:
            for cell in group.cells:
                if self._stopping.is_set():
                    return
                imaged_now = self._image_phase(cell)
                submit(beside, finish, cell, imaged_now)
                with lock:
                    imaged.add(cell.id)
            release_skew()

        def ahead() -> None:
            for platform in plan.platforms:
                if self._stopping.is_set():
                    return
                self._ahead(platform)
                for cell in plan.beside:
                    if cell.platform.name == platform.name:
                        submit(beside, finish, cell, None)

        submit(stages, ahead)
        for group in plan.groups:
            submit(builders, build, group)
        release_skew()
        try:
            while True:
                with lock:
                    ended = [f for f in futures if f.done()]
                    pending = [f for f in futures if not f.done()]
                for future in ended:
                    future.result()  # an engine gone away, a lock mismatch: the run stops
                if not pending:
                    break
                wait(pending, return_when=FIRST_COMPLETED)
        finally:
            self._stopping.set()  # a worker still running stops after its current step
            for pool in (stages, builders, beside):
                pool.shutdown(wait=True, cancel_futures=True)
            self._stopping.clear()
        return [done[c.id] for c in cells]

    def _image_phase(self, cell: Cell) -> _Imaged:
        """The cell's base image, source and image; what went wrong is kept for the cell's
        result, but for an engine gone away, which stops the run."""
        self.progress.cell(cell)
        started, t0 = now(), time.monotonic()
        made: tuple[BaseImage, CellImage, list[FetchedSource]] | Exception
        with _engine_errors(cell, self.out.root):
            try:
                made = self._image(cell)
            except LockMismatch:
                raise  # --locked: the whole run stops
            except Exception as exc:  # the cell's result tells of it
                if isinstance(exc, CONNECTION_ERRORS):
                    raise
                made = exc
        return _Imaged(started, round(time.monotonic() - t0, 2), made)

    def _run_cell(self, cell: Cell, imaged: _Imaged | None) -> CellResult:
        try:
            with _engine_errors(cell, self.out.root):
                if imaged is None:
                    imaged = self._image_phase(cell)
                result = self._cell(cell, imaged)
        except LockMismatch:
            raise  # --locked: the whole run stops
        except EngineError:
            raise
        except Exception as exc:  # the tool's own failure: record it, keep going
            log = self.out.log_path(cell.id, "error")
            log.write_text(self.redact(traceback.format_exc()), encoding="utf-8")
            result = CellResult.for_cell(cell, ERROR, f"{type(exc).__name__}: {exc}")
            result.logs["error"] = str(log)
        times = result.fingerprint.setdefault("times", {})
        times.update(started=imaged.started if imaged else now(), finished=now())
        self.out.write_cell(result)
        self.progress.done(cell, result.outcome, _summary(result))
        return result

    def _cell(self, cell: Cell, imaged: _Imaged) -> CellResult:
        if isinstance(imaged.made, _CellStopped):
            result = CellResult.for_cell(cell, imaged.made.outcome, imaged.made.reason)
            result.logs.update(imaged.made.logs)
            return result
        if isinstance(imaged.made, Exception):
            raise imaged.made  # the tool's own failure, with its traceback
        base, image, sources = imaged.made

        probing_started = time.monotonic()
        result = CellResult.for_cell(cell, OK)
        result.inputs_key = _inputs_key(image, cell, self.options.repeat)
        build_log = self.out.log_path(cell.id, "build")
        if build_log.exists():
            result.logs["build"] = str(build_log)
        previous = None if self.options.force else self.out.read_cell(cell.id)
        if previous is not None and _reusable(previous, result.inputs_key):
            self.progress.phase(
                cell, "probe", "same inputs as the last run: its probe runs are reused"
            )
            result.scenarios = [rejudge(s) for s in previous.scenarios]
            result.logs = previous.logs | result.logs
            # when the probes really ran, even after several reuses
            result.fingerprint["probe_runs_reused_from"] = previous.fingerprint.get(
                "probe_runs_reused_from"
            ) or previous.fingerprint.get("times", {})
        else:
            result.scenarios = self._probe(cell, image)
            result.logs["probe"] = str(self.out.log_path(cell.id, "probe"))
        result.fingerprint["times"] = {
            "image_seconds": imaged.seconds,
            "probe_seconds": round(time.monotonic() - probing_started, 2),
        }
        result.outcome = outcome_of(result.scenarios)
        result.fingerprint.update(self._fingerprint(base, sources, image, result))
        if "probe_runs_reused_from" in result.fingerprint and previous is not None:
            # the observations were made on that run's kernel and engine, not this one's
            for key in ("host", "engine"):
                if key in previous.fingerprint:
                    result.fingerprint[key] = previous.fingerprint[key]
        return result

    def _image(self, cell: Cell) -> tuple[BaseImage, CellImage, list[FetchedSource]]:
        """The cell's image, built when needed, with what it was made from."""
        made: tuple[BaseImage, CellImage, list[FetchedSource]] | _CellStopped = self._once.get(
            ("image", cell.id), lambda: self._make_image(cell)
        )
        if isinstance(made, _CellStopped):
            raise made
        return made

    def _make_image(
        self, cell: Cell
    ) -> tuple[BaseImage, CellImage, list[FetchedSource]] | _CellStopped:
        """Made once per run: a stop is kept like an image, so every cell that needs this
        image learns the same reason."""
        base = self._base(cell.platform)
        if isinstance(base, BaseImageError):
            return _CellStopped(SKIPPED, f"base image: {base}")
        self.progress.phase(cell, "base", f"{base.ref} ({base.origin})")
        try:
            if cell.variant.provider is not None:
                return self._skew_image(cell, base)
            return self._own_image(cell, base)
        except _CellStopped as stop:
            return stop

    def _own_image(
        self, cell: Cell, base: BaseImage
    ) -> tuple[BaseImage, CellImage, list[FetchedSource]]:
        sources: list[FetchedSource] = []
        if cell.platform.openssl == "source":
            source = self._source(cell)
            if isinstance(source, SourceError):
                raise _CellStopped(SKIPPED, f"source: {source}")
            self.progress.phase(cell, "source", f"openssl {source.version} ({source.signature})")
            sources.append(source)
        inputs = BuildInputs(
            dockerfile=dockerfile_path(cell.platform, self.definition),
            tarball=sources[0].path if sources else None,
            tarball_sha256=sources[0].sha256 if sources else "",
            base=base,
            build_args=images.build_args(cell, base, self.options.jobs),
        )
        self._ahead(cell.platform)  # before any build of the platform: they share these layers
        return base, self._build(cell, inputs, "compile, link, probe"), sources

    def _skew_image(
        self, cell: Cell, base: BaseImage
    ) -> tuple[BaseImage, CellImage, list[FetchedSource]]:
        """libcrypto from the cell's version, fips.so from the variant's provider version:
        both come from the images of their own cells, so nothing is compiled here."""
        parts = []
        for part in self._skew_parts(cell):
            self.progress.phase(cell, "skew", f"needs {part.id}")
            try:
                parts.append(self._image(part))
            except _CellStopped as stop:
                raise _CellStopped(stop.outcome, f"{part.id}: {stop.reason}", stop.logs) from None
        (_, libcrypto, lib_sources), (_, provider, prov_sources) = parts
        inputs = BuildInputs(
            dockerfile=images.SKEW_DOCKERFILE,
            tarball=None,
            tarball_sha256="",
            base=base,
            build_args={"LIBCRYPTO_IMAGE": libcrypto.tag, "PROVIDER_IMAGE": provider.tag},
            extra_key=f"{libcrypto.image_id} {provider.image_id}",
        )
        built = self._build(cell, inputs, "libcrypto and fips.so of two builds")
        built = dataclasses.replace(built, parts=(libcrypto.tag, provider.tag))
        return base, built, [*lib_sources, *prov_sources]

    def _skew_parts(self, cell: Cell) -> list[Cell]:
        """The cells whose images a skew cell is made of: libcrypto's, then fips.so's."""
        variant = self.definition.variants[cell.variant.base]
        return [
            Cell(cell.platform, self.definition.sources[version], variant, cell.scenarios)
            for version in (cell.source.version, str(cell.variant.provider))
        ]

    def _build(self, cell: Cell, inputs: BuildInputs, what: str) -> CellImage:
        image = None if self.options.force else images.cached_image(self.client, cell, inputs)
        if image is not None:
            self.progress.phase(cell, "build", f"cached image {image.tag}")
            return image
        self.progress.phase(cell, "build", f"docker build: {what}")
        build_log = self.out.log_path(cell.id, "build")
        gate, first = self._gate(cell.platform.name) if inputs.tarball else (None, False)
        if gate is not None and not first:
            gate.wait()
        try:
            image = images.build_cell_image(
                self.client,
                cell,
                inputs,
                build_log,
                self._build_step(cell, gate if first else None),
                self.redact,
                nocache=self.options.force,
            )
        except BuildFailed as exc:
            raise _CellStopped(
                BUILD_FAILED, f"{exc}; log: {exc.log_path}", {"build": str(exc.log_path)}
            ) from exc
        finally:
            if first and gate is not None:
                gate.set()
        self.progress.phase(cell, "build", f"built {image.tag} in {image.seconds:.0f}s")
        return image

    def _build_step(self, cell: Cell, opens: threading.Event | None) -> Callable[[str], None]:
        def step(line: str) -> None:
            # The Dockerfile's own steps ("Step 9/18 : RUN ...") are the build's progress.
            if line.startswith("Step "):
                self.progress.phase(cell, "build", line[:100])
                if opens is not None and COMPILE_STEP in line:
                    opens.set()  # the layers before the compile exist now

        return step

    def _gate(self, platform: str) -> tuple[threading.Event, bool]:
        """The platform's gate, and whether the caller is its first build. The compile
        stage's ARG layers are made by the first build to reach them; two builds reaching
        them at once would each make their own, the engine's cache then gives later builds
        the newer chain, and a cell compiled under the other one is compiled again. So the
        platform's other builds wait until its first has passed them."""
        with self._gates_lock:
            gate = self._gates.get(platform)
            if gate is not None:
                return gate, False
            gate = self._gates[platform] = threading.Event()
            return gate, True

    def _ahead(self, platform: Platform) -> None:
        """The platform's base image, then its stages before compile, made once, before its
        first build: two builds of a platform that made these layers each for itself would
        each get their own, and a later cell would find its compile under the other's."""

        def make() -> None:
            base = self._base(platform)
            if isinstance(base, BaseImageError) or self.options.force:
                return  # the cells say why; --force builds without the cache anyway
            log = self.out.root / "stages" / f"{platform.name}.log"
            t0 = time.monotonic()
            try:
                with self._phase("stages"):
                    target = images.build_ahead(
                        self.client,
                        platform.name,
                        dockerfile_path(platform, self.definition),
                        base,
                        log,
                        self.redact,
                    )
            except BuildFailed as exc:  # the cells' own builds fail too, each with its log
                self.progress.note(f"{platform.name}: stages before compile: {exc}; log: {log}")
                return
            if target is not None:
                seconds = time.monotonic() - t0
                self.progress.note(f"{platform.name}: stages up to {target!r} ({seconds:.0f}s)")

        self._once.get(("ahead", platform.name), make)

    def _base(self, platform: Platform) -> BaseImage | BaseImageError:
        fallback = platform.fallback
        key = (platform.base_image, fallback.debootstrap if fallback else "")

        def make() -> BaseImage | BaseImageError:
            self.progress.note(f"{platform.name}: looking for {platform.base_image}")
            try:
                with self._phase("base"):
                    base = ensure_base_image(
                        self.client,
                        platform,
                        self.options.mirror,
                        self.progress.note,
                        offline=self.options.offline or self.options.locked is not None,
                    )
            except BaseImageError as exc:
                return exc
            if self.options.locked is not None:
                self.options.locked.check_base(base.ref, base.image_id)
            self.used.base_images[base.ref] = base.image_id
            return base

        return self._once.get(("base", *key), make)

    def _source(self, cell: Cell) -> FetchedSource | SourceError:
        def fetch() -> FetchedSource | SourceError:
            wanted = cell.source
            if not self.options.downloads:
                wanted = dataclasses.replace(wanted, urls=(), debian_orig=False)
            try:
                with self._phase("source"):
                    source = fetch_source(
                        wanted, self.options.cache_dir, self.options.mirror, self.progress.note
                    )
            except SourceError as exc:
                return exc
            if self.options.locked is not None:
                self.options.locked.check_source(source.version, source.sha256)
            self.used.sources[source.version] = source.sha256
            return source

        return self._once.get(("source", cell.source.version), fetch)

    def _probe(self, cell: Cell, image: CellImage) -> list[ScenarioResult]:
        out = []
        log_lines = []
        with_twin = twin_here = cell.platform.libc == "glibc"  # musl images have no Python
        config = cell.variant.module_config
        libcrypto = (
            "libcrypto.so.3"  # the distribution's, found by the loader
            if cell.platform.openssl == "distro"
            else probing.LIBCRYPTO_DIR
        )
        # Every run of the cell, in the order they used to run one container each: for each
        # scenario its repeats, then the twin.
        batch: list[probing.BatchRun] = []
        for scenario in cell.scenarios:
            for _ in range(self.options.repeat):
                argv = probing.probe_command(scenario, config, probing.run_workdir(len(batch)))
                batch.append(probing.BatchRun(scenario, argv))
            if with_twin:
                workdir = probing.run_workdir(len(batch))
                argv = probing.twin_command(scenario, config, workdir, libcrypto)
                batch.append(probing.BatchRun(scenario, argv))
        self.progress.phase(cell, "probe", f"{len(batch)} runs in one container")
        done = iter(
            probing.run_batch(
                self.client, image.image_id, batch, self.options.probe_timeout, cell.id
            )
        )
        for scenario in cell.scenarios:
            runs = []
            for _ in range(self.options.repeat):
                run = next(done)
                doc, why = run.document()
                log_lines.append(_log_entry("probe", run, doc))
                runs.append((run, doc, why))
            run, doc, why = _representative(scenario, runs)
            witness: dict[str, Any] | None = None
            # a twin run after the twin proved unable here is ignored, as if never made
            twin = next(done) if with_twin else None
            if twin is not None and twin_here:
                twin_doc, _ = twin.document()
                log_lines.append(_log_entry("cffi twin", twin, twin_doc))
                witness = {
                    "exit_code": twin.exit_code,
                    "timed_out": twin.timed_out,
                    "seconds": round(twin.seconds, 3),
                    "probe": twin_doc,
                }
                twin_here = _twin_ran(twin.exit_code, twin_doc)
                if not twin_here:  # no Python here, or it refused: no second witness
                    witness["unavailable"] = (twin.stderr or twin.stdout)[-500:]
            result = ScenarioResult(
                scenario=scenario,
                verdict="",
                cause="",
                short="",
                evidence=[],
                facts={},
                exit_code=run.exit_code,
                timed_out=run.timed_out,
                seconds=round(run.seconds, 3),
                probe=doc,
                witness=witness,
                repeats=(
                    [
                        {"exit_code": r.exit_code, "timed_out": r.timed_out, "probe": d}
                        for r, d, _ in runs
                    ]
                    if len(runs) > 1
                    else None
                ),
            )
            out.append(rejudge(result, why))
        write_text(self.out.log_path(cell.id, "probe"), self.redact("".join(log_lines)))
        return out

    def _fingerprint(
        self, base: BaseImage, sources: list[FetchedSource], image: CellImage, result: CellResult
    ) -> dict[str, Any]:
        baseline: dict[str, Any] = next(
            ((s.probe or {}).get("baseline") or {} for s in result.scenarios if s.probe), {}
        )
        libc = next(((s.probe or {}).get("libc") for s in result.scenarios if s.probe), None)
        return {
            "tool_version": __version__,
            "matrix": {"path": str(self.definition.path), "digest": self.definition.digest},
            "host": {"kernel": self.engine.kernel, "machine": self.engine.arch},
            "engine": {
                "version": self.engine.version,
                "api_version": self.engine.api_version,
                "os": self.engine.os,
                "storage_driver": self.engine.storage_driver,
            },
            "base_image": {"ref": base.ref, "id": base.image_id, "origin": base.origin},
            "image": {
                "tag": image.tag,
                "id": image.image_id,
                "parts": list(image.parts),
                "inputs": image.key,
                "cached": image.cached,
            },
            # the cell's own source first; a skew cell's provider source second
            "sources": [
                {
                    "version": s.version,
                    "sha256": s.sha256,
                    "origin": s.origin,
                    "signature": s.signature,
                }
                for s in sources
            ],
            "fips_so_sha256": baseline.get("module_sha256"),
            "libc": libc,
        }


def _inputs_key(image: CellImage, cell: Cell, repeat: int) -> str:
    """The image's inputs plus what the probe is asked: same key, same probe runs."""
    config = ",".join(f"{k}={v}" for k, v in cell.variant.module_config)
    twin = hashlib.sha256(probing.TWIN_SOURCE.read_bytes()).hexdigest()
    text = f"{image.key}\0{image.image_id}\0{','.join(cell.scenarios)}\0{config}\0{twin}"
    text += f"\0{repeat}"
    h = hashlib.sha256(text.encode())
    return h.hexdigest()


def _reusable(previous: CellResult, inputs_key: str) -> bool:
    """Earlier probe runs stand in for new ones only if nothing about them can change:
    same inputs, and every run (repeats and the twin too) ended with a complete document."""
    if previous.inputs_key != inputs_key or not previous.scenarios:
        return False
    for s in previous.scenarios:
        docs = [s.probe, *(r["probe"] for r in s.repeats or ())]
        if s.witness is not None and "unavailable" not in s.witness:
            docs.append(s.witness.get("probe"))
        if not all(_completed(d) for d in docs):
            return False
    return True


def _completed(doc: Any) -> bool:
    return isinstance(doc, dict) and bool(doc.get("completed"))


def _representative(
    scenario: str, runs: list[tuple[probing.ProbeRun, dict[str, Any] | None, str]]
) -> tuple[probing.ProbeRun, dict[str, Any] | None, str]:
    """The first run that gave the verdict most runs gave."""
    verdicts = [judge_run(scenario, r.exit_code, r.timed_out, d, w).verdict for r, d, w in runs]
    majority = max(verdicts, key=verdicts.count)
    return runs[verdicts.index(majority)]


def rejudge(s: ScenarioResult, why: str = "") -> ScenarioResult:
    """Verdicts come from the stored observations, so they follow the current rules; where
    the twin ran, its observations are judged too and must agree."""
    j = judge_run(s.scenario, s.exit_code, s.timed_out, s.probe, why)
    alone = j.verdict  # the C probe's own, which repeated runs are counted against
    w = s.witness
    if w is not None and "unavailable" not in w:
        if _completed(w.get("probe")):
            twin = judge_run(s.scenario, w["exit_code"], w["timed_out"], w["probe"])
            j = with_witness(j, twin)
        else:  # a twin that crashed or hung saw nothing: no witness, not a disagreement
            how = "timed out" if w.get("timed_out") else f"exit {w.get('exit_code')}"
            note = f"cffi twin did not complete ({how}): no second witness"
            j = Judgement(j.verdict, j.cause, (*j.evidence, note), j.short, j.facts)
    if s.repeats:
        verdicts = [
            judge_run(s.scenario, r["exit_code"], r["timed_out"], r["probe"]).verdict
            for r in s.repeats
        ]
        agree = verdicts.count(alone)
        runs = {"verdicts": verdicts, "agree": agree, "total": len(verdicts)}
        short = j.short if agree == len(verdicts) else f"{j.short}; flaky"
        facts = {**j.facts, "runs": runs}
        j = Judgement(j.verdict, j.cause, (*j.evidence, f"runs: {verdicts}"), short, facts)
    s.verdict, s.cause, s.short = j.verdict, j.cause, j.short
    s.evidence, s.facts = list(j.evidence), j.facts
    return s


def _twin_ran(exit_code: int | None, doc: dict[str, Any] | None) -> bool:
    """Exit 127: no python3 in the image; 3 with an "error" document: the twin refused
    (another libcrypto already mapped, no cffi, ...). Neither is a witness."""
    if exit_code == 127:
        return False
    return not (exit_code == 3 and doc is not None and "error" in doc)


def _log_entry(who: str, run: probing.ProbeRun, doc: dict[str, Any] | None) -> str:
    text = (
        f"### {run.scenario} ({who}): exit={run.exit_code} timed_out={run.timed_out} "
        f"seconds={run.seconds:.2f}\n{run.stderr}\n"
    )
    if doc is None or "error" in doc:
        text += f"stdout:\n{run.stdout[:4000]}\n"
    return text


def outcome_of(scenarios: Sequence[ScenarioResult]) -> str:
    verdicts = {s.verdict for s in scenarios}
    if DISAGREEMENT in verdicts:
        return DISAGREEMENT
    if any(
        s.facts.get("runs", {}).get("agree", 0) < s.facts.get("runs", {}).get("total", 0)
        for s in scenarios
    ):
        return FLAKY
    if TIMEOUT in verdicts:
        return TIMEOUT
    if PROBE_CRASHED in verdicts:
        return PROBE_CRASHED
    return OK


def _summary(result: CellResult) -> str:
    if result.scenarios:
        return ", ".join(f"{s.scenario}={s.verdict}" for s in result.scenarios)
    return result.reason


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "fips-reload-matrix"

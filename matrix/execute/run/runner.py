"""The order of a run's work across its workers (the plan: matrix/execute/run/schedule.py):
builders take the compile groups; two workers make the platforms' base images and one
their stages before compile, ahead of the builders; another pool probes the cells whose
images are built, and builds and probes the cells with nothing to compile. The work itself
is the pipeline's (one cell) and the imager's (its image); this only decides who does
what, when.

A cell that fails is recorded with its outcome and the run goes on; each cell's result is
written as soon as it ends, so nothing finished is lost if the run stops. Ctrl-C (or SIGTERM)
stops the run: it says at once which cells it waits for, lets their current step end, and a
second Ctrl-C abandons them (Abandoned).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from matrix.errors import Abandoned
from matrix.execute.images.imaging import Imager
from matrix.execute.probes.batch import remove_own
from matrix.execute.run.pipeline import Imaged, Pipeline
from matrix.execute.run.schedule import CompileGroup, Plan, plan
from matrix.model import kinds
from matrix.model.cells import Cell
from matrix.model.types import Platform
from matrix.results.records import CellResult


class Runner:
    def __init__(self, pipeline: Pipeline, imager: Imager, *, parallel: int) -> None:
        self.pipeline = pipeline
        self.imager = imager
        self.parallel = max(1, parallel)

    def run(self, cells: Sequence[Cell]) -> list[CellResult]:
        self.pipeline.out.prepare()
        return _Schedule(self, plan(cells)).run(cells)


class _Schedule:
    """One run's pools and what they share: the futures, the cells whose images are built,
    the skew cells waiting for their parts."""

    def __init__(self, runner: Runner, the_plan: Plan) -> None:
        self.pipeline = runner.pipeline
        self.imager = runner.imager
        self.plan = the_plan
        workers = runner.parallel
        # two at once: a debootstrap keeps about one core busy (see make_base)
        self.bases = ThreadPoolExecutor(2, "fips-matrix-bases")
        self.stages = ThreadPoolExecutor(1, "fips-matrix-stages")
        self.builders = ThreadPoolExecutor(workers, "fips-matrix-build")
        self.probers = ThreadPoolExecutor(workers, "fips-matrix-probe")
        self.pools = (self.bases, self.stages, self.builders, self.probers)
        # the jobs not ended yet, and those that did, in the order they ended
        self.running = 0
        self.ended: queue.SimpleQueue[Future[None]] = queue.SimpleQueue()
        self.futures: list[Future[None]] = []  # every job, for an interrupted run to wait on
        self.done: dict[str, CellResult] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.in_groups = {c.id for g in the_plan.groups for c in g.cells}
        self.imaged: set[str] = set()  # cells whose image phase a builder has finished
        self.waiting_skew = list(the_plan.skew)
        self.active: dict[int, str] = {}  # worker thread -> what it is doing now

    def doing(self, what: str | None) -> None:
        """What the calling worker is busy with (None: nothing), for an interrupted run to say
        what it waits for."""
        with self.lock:
            if what is None:
                self.active.pop(threading.get_ident(), None)
            else:
                self.active[threading.get_ident()] = what

    def run(self, cells: Sequence[Cell]) -> list[CellResult]:
        for platform in self.plan.platforms:
            self.submit(self.bases, self.make_base, platform)
        self.submit(self.stages, self.ahead)
        for group in self.plan.groups:
            self.submit(self.builders, self.build, group)
        self.release_skew()
        abandoned = False
        try:
            while True:
                with self.lock:
                    if self.running == 0:
                        break  # a job submits only while it runs: none can come now
                future = self.ended.get()  # each job as it ends, the first failure first
                with self.lock:
                    self.running -= 1
                future.result()  # an engine gone away, a lock mismatch: the run stops
        except KeyboardInterrupt:
            try:
                self.interrupted()
            except Abandoned:
                abandoned = True  # the workers are left running: nobody waits for them
                raise
            raise
        finally:
            self.stopping.set()  # a worker still running stops after its current step
            for pool in self.pools:
                pool.shutdown(wait=not abandoned, cancel_futures=True)
        return [self.done[c.id] for c in cells]

    def interrupted(self) -> None:
        """Ctrl-C: says at once what is still running, and waits for it to reach the end of
        its step; a second Ctrl-C abandons it (Abandoned)."""
        self.stopping.set()
        try:
            for pool in self.pools:
                pool.shutdown(wait=False, cancel_futures=True)
            with self.lock:
                busy = sorted(self.active.values())
                pending = [f for f in self.futures if not f.done()]
            if busy:
                self.pipeline.reporter.note(
                    f"interrupted: waiting for {len(busy)} unfinished job(s) to end their "
                    f"current step: {'; '.join(busy)}. Press Ctrl-C again to abandon them "
                    "(finished cells are kept)"
                )
            wait(pending)
        except KeyboardInterrupt:
            with self.lock:
                busy = sorted(self.active.values())
            self.pipeline.ctx.abandoned.set()  # before its containers go from under it
            remove_own(self.pipeline.ctx.client)  # this run's probe containers
            raise Abandoned(
                f"abandoned {len(busy)} unfinished job(s): {'; '.join(busy) or 'none'}"
            ) from None

    def submit(self, pool: ThreadPoolExecutor, job: Callable[..., None], *args: Any) -> None:
        with self.lock:
            if not self.stopping.is_set():
                self.running += 1
                future = pool.submit(job, *args)
                self.futures.append(future)
                future.add_done_callback(self.ended.put)

    def finish(self, cell: Cell, imaged: Imaged | None) -> None:
        self.doing(f"{cell.id} ({'probe' if imaged else 'image and probe'})")
        try:
            self.done[cell.id] = self.pipeline.finish(cell, imaged)
        finally:
            self.doing(None)

    def build(self, group: CompileGroup) -> None:
        """A builder: the group's cells one after another (one compile, then relinks)."""
        for cell in group.cells:
            if self.stopping.is_set():
                return
            self.doing(f"{cell.id} (build)")
            try:
                imaged = self.pipeline.image_phase(cell)
            finally:
                self.doing(None)
            self.submit(self.probers, self.finish, cell, imaged)
            with self.lock:
                self.imaged.add(cell.id)
        self.release_skew()

    def make_base(self, platform: Platform) -> None:
        """A platform's base image, by workers of their own, in the order the stages need
        them: before the first compile can start, two debootstraps (each keeps about one
        core busy) fill both cores, and later ones run beside the first platform's stages."""
        if not self.stopping.is_set() and kinds.of(platform.kind).builds_ahead:
            self.doing(f"{platform.name} (base image)")
            try:
                self.imager.base(platform)
            finally:
                self.doing(None)

    def ahead(self) -> None:
        """Each platform's stages before compile, in the order the builders need them; the
        cells with nothing to compile go to the probe pool as their platform is ready."""
        for platform in self.plan.platforms:
            if self.stopping.is_set():
                return
            self.doing(f"{platform.name} (base image and stages before compile)")
            try:
                self.imager.ahead(platform, self.plan.compiled(platform))
            finally:
                self.doing(None)
            for cell in self.plan.beside:
                if cell.platform.name == platform.name:
                    self.submit(self.probers, self.finish, cell, None)

    def release_skew(self) -> None:
        """Skew cells whose parts are built (or are no cells of this run) can go."""
        with self.lock:
            ready = [
                c
                for c in self.waiting_skew
                if all(
                    p.id in self.imaged or p.id not in self.in_groups
                    for p in self.imager.skew_parts(c)
                )
            ]
            for c in ready:
                self.waiting_skew.remove(c)
        for c in ready:
            self.submit(self.probers, self.finish, c, None)

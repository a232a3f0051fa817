"""The parts of one run, wired together once: results directory (with the mirror redacted),
lock keeper, builder, imager, per-cell pipeline, runner."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import docker

from matrix.execute.context import RunContext
from matrix.execute.engine import EngineFacts
from matrix.execute.images.builder import Builder
from matrix.execute.images.imaging import Imager
from matrix.execute.lockfile import LockKeeper
from matrix.execute.options import RunOptions
from matrix.execute.run.pipeline import Pipeline
from matrix.execute.run.runner import Runner
from matrix.execute.timeline import PHASES_NAME, Timeline
from matrix.model.cells import Cell
from matrix.model.types import MatrixDefinition
from matrix.progress import Reporter
from matrix.results.records import CellResult
from matrix.results.redact import mirror_redactor
from matrix.results.store import ResultsDir


@dataclass(frozen=True)
class MatrixRun:
    out: ResultsDir
    lockfile: LockKeeper
    imager: Imager
    runner: Runner

    @property
    def timeline(self) -> Timeline:
        return self.imager.timeline

    @property
    def phase_seconds(self) -> dict[str, float]:
        return self.timeline.seconds()

    def run(self, cells: Sequence[Cell]) -> list[CellResult]:
        return self.runner.run(cells)


def assemble(
    client: docker.DockerClient,
    engine: EngineFacts,
    definition: MatrixDefinition,
    options: RunOptions,
    reporter: Reporter,
) -> MatrixRun:
    redact = mirror_redactor(options.mirror)
    out = ResultsDir(options.results, redact)
    lockfile = LockKeeper(definition.digest, options.locked)
    builder = Builder(client, redact=redact, reporter=reporter, timeout=options.build_timeout)
    timeline = Timeline(out.root / PHASES_NAME)
    ctx = RunContext(client, engine, definition, options, out, reporter, timeline)
    imager = Imager(ctx, builder=builder, lockfile=lockfile)
    pipeline = Pipeline(ctx, imager=imager)
    return MatrixRun(out, lockfile, imager, Runner(pipeline, imager, parallel=options.parallel))

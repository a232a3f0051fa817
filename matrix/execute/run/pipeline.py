"""One cell, from its image to its result on disk: the image phase (done by a builder), then
its probes (or the earlier runs that may stand for them), the outcome, the fingerprint, and
the result file, written as soon as the cell ends. A cell that fails is recorded with its
outcome; only an engine gone away or a lock that does not hold stops the run."""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matrix.errors import EngineError, LockMismatch
from matrix.execute.context import RunContext
from matrix.execute.engine import CONNECTION_ERRORS
from matrix.execute.images.imaging import CellStopped, Imager, Made
from matrix.execute.probes.probing import inputs_key, probe_cell, reusable
from matrix.execute.run.fingerprint import fingerprint
from matrix.files import write_text
from matrix.judge.cell import outcome_of, rejudge
from matrix.model.cells import Cell
from matrix.model.vocabulary import Outcome
from matrix.results.records import CellResult, now


@dataclass(frozen=True)
class Imaged:
    """A cell's image phase, done by a builder; its probes run later, beside the compiles."""

    started: str  # wall clock, for the cell's times
    seconds: float
    made: Made | Exception


@contextlib.contextmanager
def engine_errors(cell: Cell, results: Path) -> Iterator[None]:
    """An engine gone away stops the whole run, with a word on what is kept."""
    try:
        yield
    except CONNECTION_ERRORS as exc:
        raise EngineError(
            f"the Docker engine went away during {cell.id} ({exc}); "
            f"finished cells are kept in {results}"
        ) from exc


class Pipeline:
    def __init__(self, ctx: RunContext, *, imager: Imager) -> None:
        self.ctx = ctx
        self.options = ctx.options
        self.out = ctx.out
        self.reporter = ctx.reporter
        self.imager = imager

    def image_phase(self, cell: Cell) -> Imaged:
        """The cell's base image, source and image; what went wrong is kept for the cell's
        result, but for an engine gone away or a lock mismatch, which stop the run."""
        self.reporter.cell_started(cell.id)
        started, t0 = now(), time.monotonic()
        made: Made | Exception
        with engine_errors(cell, self.out.root):
            try:
                made = self.imager.image(cell)
            except LockMismatch:
                raise
            except Exception as exc:  # the cell's result tells of it
                if isinstance(exc, CONNECTION_ERRORS):
                    raise
                made = exc
        return Imaged(started, round(time.monotonic() - t0, 2), made)

    def finish(self, cell: Cell, imaged: Imaged | None) -> CellResult:
        """The cell's probes and result; its image phase first when no builder did it."""
        try:
            with engine_errors(cell, self.out.root):
                if imaged is None:
                    imaged = self.image_phase(cell)
                result = self._result(cell, imaged)
        except (LockMismatch, EngineError):
            raise  # the whole run stops
        except Exception as exc:  # the tool's own failure: record it, keep going
            log = self.out.log_path(cell.id, "error")
            log.write_text(self.out.redact(traceback.format_exc()), encoding="utf-8")
            result = CellResult.for_cell(cell, Outcome.ERROR, self._failure(exc))
            result.logs["error"] = str(log)
        times = result.fingerprint.setdefault("times", {})
        times.update(started=imaged.started if imaged else now(), finished=now())
        self.out.write_cell(result)
        self.reporter.cell_done(cell.id, result.outcome, _summary(result))
        return result

    def _failure(self, exc: BaseException) -> str:
        """A cell's ERROR reason: what failed, unless the run was abandoned under it (its
        container removed: the engine's 409 Conflict or 404), which is what happened."""
        what = f"{type(exc).__name__}: {exc}"
        if self.ctx.abandoned.is_set():
            return (
                "interrupted: the run was abandoned (Ctrl-C twice) while this cell was under "
                f"way, and its work was stopped ({what[:200]}); run it again to measure it"
            )
        return what

    def _result(self, cell: Cell, imaged: Imaged) -> CellResult:
        if isinstance(imaged.made, CellStopped):
            result = CellResult.for_cell(cell, imaged.made.outcome, imaged.made.reason)
            result.logs.update(imaged.made.logs)
            result.fingerprint.update(imaged.made.fingerprint)
            return result
        if isinstance(imaged.made, Exception):
            raise imaged.made  # the tool's own failure, with its traceback
        made = imaged.made

        probing_started = time.monotonic()
        key = inputs_key(
            made.image.key, made.image.image_id, cell, self.options.repeat, self.options.fate_runs
        )
        logs = dict(made.existing.logs) if made.existing is not None else {}
        build_log = self.out.log_path(cell.id, "build")
        if build_log.exists():
            logs["build"] = str(build_log)
        follow_ups: dict[str, float | str] = {}  # what the follow-up runs cost, where probes ran
        reused: dict[str, Any] = {}  # the fingerprint's note of reused probe runs, if any
        previous = None if self.options.force else self.out.read_cell(cell.id)
        if previous is not None and reusable(previous, key):
            self.reporter.phase(
                cell.id, "probe", "same inputs as the last run: its probe runs are reused"
            )
            scenarios = [rejudge(s) for s in previous.scenarios]
            logs = previous.logs | logs
            # when the probes really ran, even after several reuses
            reused["probe_runs_reused_from"] = previous.fingerprint.get(
                "probe_runs_reused_from"
            ) or previous.fingerprint.get("times", {})
        else:
            with self.ctx.timeline.span("probe", cell.id):
                probes = probe_cell(
                    self.ctx.client,
                    made.image.image_id,
                    cell,
                    repeat=self.options.repeat,
                    fate_runs=self.options.fate_runs,
                    timeout=self.options.probe_timeout,
                    reporter=self.reporter,
                    programs=made.existing.programs if made.existing else None,
                )
            write_text(self.out.log_path(cell.id, "probe"), self.out.redact(probes.log))
            scenarios = probes.scenarios
            follow_ups = {"fate_runs": probes.fate_runs, "fate_seconds": probes.fate_seconds}
            if probes.fate_container:
                follow_ups["fate_container"] = probes.fate_container
            logs["probe"] = str(self.out.log_path(cell.id, "probe"))
        # the cell's result is made once its scenarios are judged: never a placeholder outcome
        result = CellResult.for_cell(cell, outcome_of(scenarios))
        if made.existing is not None:  # an existing image: its libc is the one discovery found
            result.libc = made.existing.family
        result.inputs_key = key
        result.scenarios = scenarios
        result.logs = logs
        result.fingerprint.update(reused)
        result.fingerprint["times"] = {
            "image_seconds": imaged.seconds,
            "probe_seconds": round(time.monotonic() - probing_started, 2),
            **follow_ups,
        }
        result.fingerprint.update(fingerprint(made, result, self.ctx.definition, self.ctx.engine))
        if "probe_runs_reused_from" in result.fingerprint and previous is not None:
            # the observations were made on that run's kernel and engine, not this one's
            for key in ("host", "engine"):
                if key in previous.fingerprint:
                    result.fingerprint[key] = previous.fingerprint[key]
        return result


def _summary(result: CellResult) -> str:
    if result.scenarios:
        return ", ".join(f"{s.scenario}={s.status}" for s in result.scenarios)
    return result.reason

"""What every part of one run reads and nothing changes: the engine and its facts, the matrix,
the run's options, its results directory and its reporter."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import docker

from matrix.execute.engine import EngineFacts
from matrix.execute.options import RunOptions
from matrix.execute.timeline import Timeline
from matrix.model.types import MatrixDefinition
from matrix.progress import Reporter
from matrix.results.store import ResultsDir


@dataclass(frozen=True)
class RunContext:
    client: docker.DockerClient
    engine: EngineFacts
    definition: MatrixDefinition
    options: RunOptions
    out: ResultsDir
    reporter: Reporter
    timeline: Timeline = field(default_factory=Timeline)  # when each part ran
    # Set when the run abandons its work (a second Ctrl-C): what then fails in a worker
    # (its container removed under it) failed because of that, and says so.
    abandoned: threading.Event = field(default_factory=threading.Event)

"""The options of one run, resolved once (by the run command) and read by everything that
does the run's work."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from matrix.execute.lockfile import Lock
from matrix.judge.fate import DEFAULT_FATE_RUNS

# A run's defaults and limits: the command line shows them, the run keeps to them.
DEFAULT_RESULTS = Path("results/latest")  # git-ignored; the committed run is results/reference
DEFAULT_PROBE_TIMEOUT = 120.0
DEFAULT_BUILD_TIMEOUT = 7200.0  # a cold 3.5 compile takes about 4 minutes on 2 cores
MAX_SECONDS = 86400.0  # a day: anything longer is a typo, not a plan
MIN_SECONDS = 1.0  # the other limits' lower bound: less cannot even start a container
MAX_REPEAT = 100
MAX_JOBS = 1024
MAX_PARALLEL = 64


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
    # runs of the C probe in all for a scenario whose process died after its document or
    # whose runs disagreed (the follow-ups run in one more container); 1: no follow-ups
    fate_runs: int = DEFAULT_FATE_RUNS
    locked: Lock | None = None  # refuse base images and sources that differ from this lock
    downloads: bool = True  # False: sources only from the cache (a bundle's run)
    build_timeout: float = DEFAULT_BUILD_TIMEOUT  # a cell's image build's seconds: then TIMEOUT
    # build a tarball signed by a key the shipped keyring does not hold (pin alone)
    allow_unknown_signer: bool = False

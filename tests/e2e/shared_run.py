"""The e2e tests' shared run of the tool (its fixture, matrix_run, is in conftest.py):
`python -m matrix run` over a few cells of the default matrix, built here from the verified
sources (real engine, real base images, real OpenSSL builds, real probes, the cffi twin
beside them), then run again (it must build, download and probe nothing). Several test
modules read its results: the verdicts and the twin's agreement, the crash attribution,
the reproducer."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# 3.0.20 with each link on glibc and the default on musl: one compile each; 4.0.2
# no-pinshared, whose worker-thread exit crashes after a clean reload (its compile is shared
# with 4.0.2's default link, a relink apart), and the same build with deferred self-tests
# (a probe-time option: no build of its own).
CELLS = [  # in the matrix's order, as the run's summary lists them
    "debian-12/3.0.20/default",
    "debian-12/3.0.20/no-pinshared",
    "debian-12/4.0.2/no-pinshared",
    "debian-12/4.0.2/no-pinshared-deferred",
    "musl-debian-12/3.0.20/default",
]
CRASH_CELL = "debian-12/4.0.2/no-pinshared"


@dataclass(frozen=True)
class MatrixRun:
    results: Path
    cache: Path
    first: str  # the first run's output
    second: str  # the second run's

    def cell(self, cell_id: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(
            (self.results / "cells" / f"{cell_id.replace('/', '__')}.json").read_text()
        )
        return data

    def scenarios(self, cell_id: str) -> dict[str, dict[str, Any]]:
        return {s["scenario"]: s for s in self.cell(cell_id)["scenarios"]}


def fips_matrix(results: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "matrix", "run", "--results", str(results)]
    args += ["--cache-dir", str(cache)]
    for cell in CELLS:
        args += ["--only", cell]
    return subprocess.run(args, capture_output=True, text=True, timeout=3600, check=False)

"""Fixtures of the e2e tests: the shared run of the tool (shared_run.py)."""

from __future__ import annotations

import pytest
from shared_run import MatrixRun, fips_matrix


@pytest.fixture(scope="session")
def matrix_run(tmp_path_factory: pytest.TempPathFactory) -> MatrixRun:
    root = tmp_path_factory.mktemp("e2e")
    results, cache = root / "results", root / "cache"
    first = fips_matrix(results, cache)
    print(first.stdout[-4000:], first.stderr[-4000:])
    assert first.returncode == 0, first.stdout + first.stderr
    second = fips_matrix(results, cache)
    assert second.returncode == 0, second.stdout + second.stderr
    return MatrixRun(results, cache, first.stdout, second.stdout)

"""More than one machine, and none with a network: the matrix fanned out into separate
processes and merged equals a single run; a bundle runs with no network; a lock holds.
Real engine, real images (built by the first run, then reused), real probes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

CELLS = ["debian-12/3.0.20/default", "debian-12/3.0.20/no-pinshared"]


def fips_matrix(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "matrix", *args],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
        env={**os.environ, **(env or {})},
    )


def only(cells: list[str]) -> list[str]:
    return [a for c in cells for a in ("--only", c)]


def verdicts(results: Path) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for path in (results / "cells").glob("*.json"):
        data: dict[str, Any] = json.loads(path.read_text())
        out[data["cell"]] = {s["scenario"]: s["verdict"] for s in data["scenarios"]}
    return out


def test_fanned_out_and_merged_equals_one_run(tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    single = fips_matrix(
        "run", *only(CELLS), "--results", str(tmp_path / "single"), "--cache-dir", cache
    )
    assert single.returncode == 0, single.stdout[-2000:] + single.stderr[-2000:]

    plan = fips_matrix("plan", "--format", "github", *only(CELLS))
    jobs = json.loads(plan.stdout)["include"]
    assert [j["cell"] for j in jobs] == CELLS
    # one process per job, side by side, as a CI job matrix would run them
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "matrix",
                "run",
                "--only",
                j["cell"],
                "--results",
                str(tmp_path / "fan" / j["slug"]),
                "--cache-dir",
                cache,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for j in jobs
    ]
    assert [p.wait(timeout=3600) for p in procs] == [0] * len(jobs)

    dirs = [str(tmp_path / "fan" / j["slug"]) for j in jobs]
    merged = fips_matrix("merge", *dirs, "--results", str(tmp_path / "merged"))
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert verdicts(tmp_path / "merged") == verdicts(tmp_path / "single")
    assert set(verdicts(tmp_path / "merged")) == set(CELLS)
    for name in ("table.md", "report.html", "junit.xml"):
        assert (tmp_path / "merged" / name).exists()


def test_lock_holds_and_refuses_a_changed_base(tmp_path: Path) -> None:
    results = tmp_path / "r"
    args = [
        "run",
        "--only",
        CELLS[0],
        "--results",
        str(results),
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    assert fips_matrix(*args).returncode == 0
    lock = json.loads((results / "matrix.lock.json").read_text())
    assert lock["sources"]["3.0.20"] and lock["base_images"]
    assert fips_matrix(*args, "--locked").returncode == 0
    ref = next(iter(lock["base_images"]))
    lock["base_images"][ref] = "sha256:" + "0" * 64
    (results / "matrix.lock.json").write_text(json.dumps(lock))
    refused = fips_matrix(*args, "--locked")
    assert refused.returncode == 2
    assert f"--locked: base image {ref}" in refused.stdout


def test_a_bundle_runs_with_no_network(tmp_path: Path) -> None:
    bundle = tmp_path / "lab.tar"
    made = fips_matrix(
        "bundle", "--only", CELLS[0], "--output", str(bundle), "--cache-dir", str(tmp_path / "c1")
    )
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
    assert "manifest.json" in names and "images.tar" in names
    assert any(n.startswith("sources/openssl-3.0.20-") and n.endswith(".tar.gz") for n in names)
    # an empty cache and a mirror that answers nobody: everything must come from the bundle
    offline = fips_matrix(
        "run",
        "--bundle",
        str(bundle),
        "--only",
        CELLS[0],
        "--results",
        str(tmp_path / "r"),
        "--cache-dir",
        str(tmp_path / "c2"),
        env={"FIPS_MATRIX_DEBIAN_MIRROR": "http://127.0.0.1:9/debian"},
    )
    assert offline.returncode == 0, offline.stdout[-2000:] + offline.stderr[-2000:]
    assert "fetching" not in offline.stdout and "docker build" not in offline.stdout
    cell = json.loads((tmp_path / "r" / "cells" / "debian-12__3.0.20__default.json").read_text())
    assert cell["outcome"] == "OK"

"""Adding a platform takes one Dockerfile and one matrix entry: a user's own matrix file,
with its Dockerfile in a dockerfiles/ directory beside it, is picked up, built and probed
with no other change. Real engine, real debootstrap, real build, real probe."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from matrix.assets import DEFAULT_MATRIX
from matrix.model.definition import load_definition

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def test_a_new_platform_entry_is_built_and_probed(tmp_path: Path) -> None:
    default = load_definition(DEFAULT_MATRIX)
    source = default.sources["3.0.20"]
    (tmp_path / "dockerfiles").mkdir()
    # Written to the contract of before the probe step: probes/ copied into the link stage
    # and built by the install step. A user's Dockerfile of then must still build.
    text = (REPO / "dockerfiles" / "debian.Dockerfile").read_text()
    old_style = text.replace("COPY probes/ /src/probes/\nRUN fips-matrix-build.sh probe\n", "")
    old_style = old_style.replace(
        "RUN fips-matrix-build.sh link\n",
        "RUN fips-matrix-build.sh link\nCOPY probes/ /src/probes/\n",
    )
    assert "fips-matrix-build.sh probe" not in old_style and old_style.count("COPY probes/") == 1
    (tmp_path / "dockerfiles" / "mine.Dockerfile").write_text(old_style)
    # A name of its own each time: the image is built for this entry (its layers may come
    # from the engine's cache), never found whole from an earlier run of this test.
    name = f"my-trixie-{uuid.uuid4().hex[:8]}"
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(
        f"""schema = 1
scenarios = ["ondemand-kat", "no-failure"]

[platforms.{name}]
description = "a user's own platform"
dockerfile = "mine.Dockerfile"
base_image = "debian:trixie"
libc = "glibc"
fallback = {{ debootstrap = "trixie" }}

[sources."3.0.20"]
sha256 = "{source.sha256}"
urls = {json.dumps(list(source.urls))}
debian_orig = true

[variants.no-pinshared]
configure = ["no-pinshared"]
"""
    )
    results = tmp_path / "results"
    args = ["--matrix", str(matrix), "--results", str(results)]
    run = subprocess.run(
        [sys.executable, "-m", "matrix", "run", *args, "--cache-dir", str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    cell = json.loads((results / "cells" / f"{name}__3.0.20__no-pinshared.json").read_text())
    assert cell["outcome"] == "OK", cell["reason"]
    assert [s["scenario"] for s in cell["scenarios"]] == ["ondemand-kat", "no-failure"]
    # the image came from the user's Dockerfile and the trixie base, and the probe ran in it
    assert cell["fingerprint"]["matrix"]["path"] == str(matrix)
    assert cell["fingerprint"]["base_image"]["ref"].endswith("trixie")
    build_log = Path(cell["logs"]["build"]).read_text()
    assert "fips-matrix-build.sh compile" in build_log
    # the probe built at install: the step ran, or its layer came from an earlier run's cache
    # (an engine that ran this test before with the same inputs)
    assert "fips-matrix-build: phase install/probe" in build_log or (
        "RUN fips-matrix-build.sh install\n ---> Using cache" in build_log
    )
    probe = cell["scenarios"][0]["probe"]
    assert probe["libc"]["name"] == "glibc"
    assert probe["versions"]["openssl"].startswith("OpenSSL 3.0.20")
    assert cell["scenarios"][0]["evidence"]
    table = (results / "table.md").read_text()
    assert f"{name} (glibc " in table

"""The reproducer anyone can run: `fips-matrix repro` writes the directory of the worker-
thread crash cell, and the README's two commands, run with the docker CLI as a user would,
reproduce the recorded outcome (a clean reload, then SIGSEGV as the worker thread exits:
exit status 139).

Where no registry and no OpenSSL download site is reachable (this workplace), the build gets
the base the tool's run used (its local Debian base, BASE), host networking, and the same
tarball from the Debian mirror in apt's configuration (OPENSSL_URL; its sha256 is checked
in the Dockerfile as ever)."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from shared_run import CRASH_CELL, MatrixRun

from matrix import assets
from matrix.acquire.mirror import debian_mirror
from matrix.acquire.sources import debian_orig_url

pytestmark = pytest.mark.e2e


def test_the_readme_commands_reproduce_the_recorded_crash(
    matrix_run: MatrixRun, tmp_path: Path
) -> None:
    recorded = matrix_run.scenarios(CRASH_CELL)["worker-thread"]
    assert recorded["exit_code"] == 139 and recorded["facts"]["crash"]["attributed"]
    out = tmp_path / "repro"
    command = [sys.executable, "-m", "matrix", "repro", CRASH_CELL, "worker-thread"]
    command += ["--output", str(out), "--results", str(matrix_run.results)]
    written = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert written.returncode == 0, written.stdout + written.stderr
    assert sorted(p.name for p in out.iterdir()) == ["Dockerfile", "README.md", "repro.c"]
    readme = (out / "README.md").read_text()
    assert "exit status 139 (killed by signal 11)" in readme
    assert recorded["facts"]["crash"]["sentence"] in readme
    # the README's own commands, with this workplace's base, network and source URL
    build, run = re.findall(r"^docker (build .*|run .*)$", readme, re.M)
    name = f"fips-matrix-test-repro-{uuid.uuid4().hex[:8]}"
    assert build.startswith("build -t ") and run.startswith("run --rm ")
    version = CRASH_CELL.split("/")[1]
    # the base the tool's run used: pulled, or made locally (fips-matrix/base-debian:bookworm)
    base = matrix_run.cell(CRASH_CELL)["fingerprint"]["base_image"]["ref"]
    assert base in ("debian:bookworm", f"{assets.BASE_REPOSITORY}:bookworm"), base
    args = ["docker", "build", "-t", name, "--network", "host", "--build-arg", f"BASE={base}"]
    mirror = debian_mirror()
    if mirror:  # upstream's download sites are out of reach here; the mirror has the same bytes
        args += ["--build-arg", f"OPENSSL_URL={debian_orig_url(version, mirror)}"]
    args.append(str(out))
    try:
        built = subprocess.run(args, capture_output=True, text=True, timeout=3000, check=False)
        assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
        ran = subprocess.run(
            ["docker", "run", "--rm", name],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        subprocess.run(["docker", "rmi", "-f", name], capture_output=True, check=False)
    lines = ran.stdout.splitlines()
    assert ran.returncode == 139, ran.stdout + ran.stderr
    assert lines[0] == f"repro: OpenSSL {version}" or lines[0].startswith(
        f"repro: OpenSSL {version} "
    )
    assert "repro: on-demand self-test of A with the SHA2 KAT corrupted: failed, as forced" in lines
    assert "repro: unload fips and free context A: fips.so lines in /proc/self/maps: 0" in lines
    assert "repro: self-test of B: passed; SHA-256 through fips in B: works" in lines
    # it dies as the worker exits, after everything else, as recorded
    assert lines[-1] == "repro: letting the worker thread exit"

"""Probe runs: one fresh container (so one fresh process) per scenario, with no network."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import requests.exceptions

from matrix.images import PROBES_DIR

PREFIX = "/opt/fips-matrix"
MODULE = f"{PREFIX}/lib/ossl-modules/fips.so"
CANARY = f"{PREFIX}/lib/libfipsmatrix-canary.so"
PROBE = f"{PREFIX}/bin/fips_probe"
LIBCRYPTO_DIR = f"{PREFIX}/lib"
TWIN_SOURCE = PROBES_DIR / "fips_twin.py"


@dataclass(frozen=True)
class ProbeRun:
    scenario: str
    exit_code: int | None
    timed_out: bool
    stdout: str
    stderr: str
    seconds: float

    def document(self) -> tuple[dict[str, Any] | None, str]:
        """The probe's JSON document, or None with why."""
        try:
            doc = json.loads(self.stdout)
        except ValueError as exc:
            return None, f"stdout is not one JSON document ({exc})"
        if not isinstance(doc, dict):
            return None, "stdout is JSON but not an object"
        return doc, ""


def probe_command(scenario: str, module_config: Sequence[tuple[str, str]]) -> list[str]:
    command = ["--scenario", scenario, "--module", MODULE, "--canary", CANARY, "--workdir", "/tmp"]
    for key, value in module_config:
        command += ["--config", f"{key}={value}"]
    return command


def run_probe(
    client: docker.DockerClient,
    image_id: str,
    scenario: str,
    timeout: float,
    module_config: Sequence[tuple[str, str]] = (),
) -> ProbeRun:
    """The C probe."""
    command = [PROBE, *probe_command(scenario, module_config)]
    return _run(client, image_id, scenario, command, timeout)


def run_twin(
    client: docker.DockerClient,
    image_id: str,
    scenario: str,
    timeout: float,
    module_config: Sequence[tuple[str, str]] = (),
    libcrypto: str = LIBCRYPTO_DIR,
) -> ProbeRun:
    """The second witness: the same scenario through cffi, in the same image. The script
    travels in the command line, so it needs no image of its own and works on any engine."""
    command = ["python3", "-c", TWIN_SOURCE.read_text(encoding="utf-8"), "--libcrypto", libcrypto]
    command += probe_command(scenario, module_config)
    return _run(client, image_id, scenario, command, timeout)


def container_options(scenario: str) -> dict[str, Any]:
    """How every probe container runs: no network, nothing writable but a small /tmp, no
    privileges, bounded pids and memory."""
    return {
        "network_mode": "none",
        "init": True,  # tini as pid 1: a signal that kills the probe shows as exit 128+N
        "read_only": True,
        "tmpfs": {"/tmp": "size=16m,mode=1777"},
        "user": "65534:65534",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "pids_limit": 64,
        "mem_limit": "512m",
        "labels": {"org.fips-reload-matrix.probe": scenario},
    }


def _run(
    client: docker.DockerClient, image_id: str, scenario: str, command: list[str], timeout: float
) -> ProbeRun:
    started = time.monotonic()
    container = client.containers.create(
        image_id, entrypoint=[], command=command, **container_options(scenario)
    )
    timed_out = False
    exit_code: int | None = None
    try:
        container.start()
        try:
            status = container.wait(timeout=timeout)
            exit_code = int(status.get("StatusCode", -1))
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            timed_out = True
            try:
                container.kill()
                container.wait(timeout=30)
            except docker.errors.APIError:
                pass  # it ended by itself between the timeout and the kill
        stdout = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
        stderr = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
    finally:
        container.remove(force=True)
    return ProbeRun(scenario, exit_code, timed_out, stdout, stderr, time.monotonic() - started)

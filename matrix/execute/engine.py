"""The Docker engine: one connection, through the SDK, with one clear error when none answers."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import docker
import docker.errors
import requests.exceptions

from matrix.errors import EngineError

# Errors that mean "the engine is not there (any more)", as opposed to a failed request.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectionError,
    ConnectionError,
)

_CONNECT_ERRORS: tuple[type[BaseException], ...] = (
    docker.errors.DockerException,
    *CONNECTION_ERRORS,
    FileNotFoundError,  # no socket at all
)


@dataclass(frozen=True)
class EngineFacts:
    version: str
    api_version: str
    kernel: str
    os: str
    arch: str
    storage_driver: str


# Where Debian's docker.io puts the engine's daemon, for hosts whose PATH lacks sbin.
DOCKERD_PATHS = ("/usr/sbin/dockerd", "/usr/bin/dockerd")


def connect(timeout: int = 600) -> docker.DockerClient:
    """Connects as the docker CLI would (DOCKER_HOST, DOCKER_TLS_VERIFY, ...) and pings."""
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except _CONNECT_ERRORS as exc:
        raise EngineError(f"no Docker engine answers at {where} ({exc}).\n{_remedy()}") from exc
    return client


def _remedy() -> str:
    start = "as root: `dockerd --bridge=none &`, or `systemctl start docker`"
    if shutil.which("dockerd") or any(os.path.exists(p) for p in DOCKERD_PATHS):
        return f"Start one ({start}), or point DOCKER_HOST at a running engine, then run again."
    return (
        "No Docker engine is installed here (no dockerd). Install one (Debian and Ubuntu, as "
        f"root: `apt-get install docker.io`), start it ({start}), or point DOCKER_HOST at a "
        "running engine, then run again."
    )


def facts(client: docker.DockerClient) -> EngineFacts:
    info = client.info()
    version = client.version()
    return EngineFacts(
        version=str(version.get("Version", "?")),
        api_version=str(version.get("ApiVersion", "?")),
        kernel=str(info.get("KernelVersion", "?")),
        os=str(info.get("OperatingSystem", "?")),
        arch=str(info.get("Architecture", "?")),
        storage_driver=str(info.get("Driver", "?")),
    )

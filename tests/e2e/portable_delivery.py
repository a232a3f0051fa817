"""The portable probe's build and delivery, through the Docker SDK only (works with a remote
engine: nothing is read from or written to the engine's file system by path).

A reference for wiring it into the tool (matrix/ is not touched on this branch):

1. build_builder: dockerfiles/portable-probe.Dockerfile makes /out/<libc>-<arch>/ (the probe,
   the static batch driver, the canary) in an image tagged by the inputs' hash;
2. ensure_volume: a named volume, keyed by the same hash, filled once from that image by a
   container that copies /out into it, with a marker file written last;
3. probe containers of the user's image mount that volume read-only at MOUNT, with the same
   hardening as every probe container (matrix.probing.container_options), the image's own
   environment, and the entrypoint and command overridden. The image is never changed.

docs/portable-probe.md says why a volume and not put_archive, an image mount or a bind mount.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from matrix import probing

REPO = Path(__file__).resolve().parents[2]
PROBES = REPO / "probes"
DOCKERFILE = REPO / "dockerfiles" / "portable-probe.Dockerfile"
BUILD_SCRIPT = REPO / "dockerfiles" / "portable-build.sh"
MOUNT = "/opt/fips-matrix-portable"
BUILDER_REPOSITORY = "fips-matrix/portable-probe"
VOLUME_PREFIX = "fips-matrix-portable-"
KEY_LABEL = "org.fips-reload-matrix.portable-inputs"
MARKER = ".complete"  # written last into the volume: its text is the inputs' key
DEFAULT_BASE = "fips-matrix/base-debian:bullseye"  # glibc 2.31, the oldest glibc platform
FAMILIES = ("glibc", "musl")
ARCHES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}


def source_files() -> list[tuple[str, Path]]:
    """(name in the build context, file): everything the builder's output depends on."""
    files = [(f"probes/{p.name}", p) for p in sorted(PROBES.glob("*.c"))]
    portable = PROBES / "portable"
    files += [
        (f"probes/{p.relative_to(PROBES).as_posix()}", p)
        for p in sorted(portable.rglob("*"))
        if p.is_file() and p.suffix in (".c", ".h")
    ]
    return [*files, ("portable-build.sh", BUILD_SCRIPT), ("Dockerfile", DOCKERFILE)]


def inputs_key(base_image_id: str) -> str:
    """Changes exactly when a source, the Dockerfile, the build script or the base changes."""
    h = hashlib.sha256()
    for name, path in source_files():
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(base_image_id.encode())
    return h.hexdigest()


@dataclass(frozen=True)
class Builder:
    tag: str
    image_id: str
    key: str
    cached: bool
    seconds: float


def _context() -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, path in source_files():
            tar.add(str(path), arcname=name)
    buf.seek(0)
    return buf


def build_builder(
    client: docker.DockerClient,
    base: str = DEFAULT_BASE,
    log: Callable[[str], None] = lambda line: None,
    nocache: bool = False,
) -> Builder:
    """The builder image for these inputs: found by its label, or built (host network: apt)."""
    started = time.monotonic()
    base_id = str(client.images.get(base).id)
    key = inputs_key(base_id)
    tag = f"{BUILDER_REPOSITORY}:{key[:16]}"
    try:
        image = client.images.get(tag)
        if image.labels.get(KEY_LABEL) == key and not nocache:
            return Builder(tag, str(image.id), key, True, time.monotonic() - started)
    except docker.errors.ImageNotFound:
        pass
    image_id = ""
    error = ""
    for chunk in client.api.build(
        fileobj=_context(),
        custom_context=True,
        tag=tag,
        buildargs={"BASE_IMAGE": base},
        labels={KEY_LABEL: key},
        network_mode="host",
        nocache=nocache,
        rm=True,
        forcerm=True,
        decode=True,
    ):
        if "stream" in chunk:
            for line in str(chunk["stream"]).splitlines():
                if line.strip():
                    log(line.strip())
        if "error" in chunk:
            error = str(chunk["error"]).strip()
        if "aux" in chunk and isinstance(chunk["aux"], dict):
            image_id = str(chunk["aux"].get("ID", image_id))
    if error or not image_id:
        raise RuntimeError(f"building the portable probe failed: {error or 'no image'}")
    return Builder(tag, image_id, key, False, time.monotonic() - started)


def volume_name(key: str) -> str:
    return f"{VOLUME_PREFIX}{key[:16]}"


def ensure_volume(client: docker.DockerClient, builder: Builder) -> tuple[str, bool]:
    """The volume holding the builder's /out; (name, True) when it was filled before. A volume
    without the marker (a fill that died half-way) is filled again."""
    name = volume_name(builder.key)
    try:
        client.volumes.get(name)
    except docker.errors.NotFound:
        client.volumes.create(name=name, labels={KEY_LABEL: builder.key})
    check = _run(
        client, builder.image_id, ["cat", f"/vol/{MARKER}"], {name: {"bind": "/vol", "mode": "ro"}}
    )
    if check == (0, builder.key):
        return name, True
    # cp -a keeps the modes the build gave (0755 directories and programs); the marker last.
    fill = (
        "set -e; rm -rf /vol/* /vol/.complete; cp -a /out/. /vol/; "
        f"printf %s {builder.key} > /vol/{MARKER}.tmp; mv /vol/{MARKER}.tmp /vol/{MARKER}"
    )
    code, output = _run(
        client, builder.image_id, ["sh", "-c", fill], {name: {"bind": "/vol", "mode": "rw"}}
    )
    if code != 0:
        raise RuntimeError(f"filling volume {name} failed ({code}): {output}")
    return name, False


def _run(
    client: docker.DockerClient, image: str, command: list[str], volumes: dict[str, Any]
) -> tuple[int, str]:
    container = client.containers.create(
        image, entrypoint=[], command=command, volumes=volumes, network_mode="none"
    )
    try:
        container.start()
        code = int(container.wait(timeout=300).get("StatusCode", -1))
        return code, container.logs().decode("utf-8", "replace").strip()
    finally:
        container.remove(force=True)


def arch_of(client: docker.DockerClient, image: str) -> str:
    """The probe directory's architecture for an image (amd64 -> x86_64)."""
    declared = str(client.images.get(image).attrs.get("Architecture", "amd64"))
    if declared not in ARCHES:
        raise RuntimeError(f"{image}: architecture {declared} has no portable probe")
    return ARCHES[declared]


def probe_dir(family: str, arch: str) -> str:
    return f"{MOUNT}/{family}-{arch}"


def container_options(volume: str, label: str) -> dict[str, Any]:
    """Every probe container's hardening, and the probe's files read-only from the volume."""
    options = probing.container_options(label)
    options["volumes"] = {volume: {"bind": MOUNT, "mode": "ro"}}
    return options


def batch_command(
    family: str, arch: str, runs: Sequence[probing.BatchRun], timeout: float
) -> list[str]:
    """matrix.probing.batch_command, with the volume's batch driver."""
    command = probing.batch_command(runs, timeout)
    command[0] = f"{probe_dir(family, arch)}/fips_batch"
    return command


def run_batch(
    client: docker.DockerClient,
    image: str,
    volume: str,
    family: str,
    arch: str,
    runs: Sequence[probing.BatchRun],
    timeout: float,
    label: str = "portable",
) -> list[probing.ProbeRun]:
    """matrix.probing.run_batch for any image: the same container, plus the volume."""
    container = client.containers.create(
        image,
        entrypoint=[],
        command=batch_command(family, arch, runs, timeout),
        **container_options(volume, label),
    )
    chunks: list[bytes] = []
    exit_code: int | None = None
    timed_out = False
    try:
        stream = container.attach(stdout=True, stderr=False, stream=True, logs=False)
        reader = threading.Thread(target=_drain, args=(stream, chunks), daemon=True)
        reader.start()
        try:
            container.start()
            try:
                status = container.wait(timeout=len(runs) * timeout + probing.GRACE)
                exit_code = int(status.get("StatusCode", -1))
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                timed_out = True
                container.kill()
            reader.join(timeout=30)
            stderr = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
        finally:
            stream.close()
    finally:
        container.remove(force=True)
    return probing.parse_batch(runs, b"".join(chunks), timed_out, exit_code, stderr)


def _drain(stream: Iterator[bytes], into: list[bytes]) -> None:
    try:
        for chunk in stream:
            into.append(chunk)
    except Exception:  # closed under it: what it read is all there is
        pass


@dataclass(frozen=True)
class Discovery:
    family: str  # the libc family whose probe ran in the image
    document: dict[str, Any]
    runs: tuple[probing.ProbeRun, ...]  # both families' runs, for the record


def discover(
    client: docker.DockerClient,
    image: str,
    volume: str,
    arch: str,
    extra: Sequence[str] = (),
    timeout: float = 60.0,
) -> Discovery | None:
    """Runs both families' --discover in one container (the static batch driver runs in any
    image); the one whose program ran and found a usable libcrypto wins, glibc first. None
    when neither ran (then runs tell why: exit 127, 'cannot execute')."""
    runs = [
        probing.BatchRun(
            f"discover-{family}",
            [f"{probe_dir(family, arch)}/fips_probe", "--discover", *extra],
        )
        for family in FAMILIES
    ]
    done = run_batch(client, image, volume, "glibc", arch, runs, timeout, "portable-discover")
    ran: list[tuple[str, dict[str, Any]]] = []
    for family, run in zip(FAMILIES, done, strict=True):
        if run.exit_code == 0:
            try:
                ran.append((family, json.loads(run.stdout)))
            except ValueError:
                continue
    usable = [r for r in ran if r[1].get("suggested", {}).get("libcrypto_usable")]
    chosen = usable or ran
    if not chosen:
        return None
    return Discovery(chosen[0][0], chosen[0][1], tuple(done))


def probe_argv(
    family: str,
    arch: str,
    scenario: str,
    module: str,
    libcrypto: str,
    workdir: str,
    module_mac: str | None = None,
    module_config: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """The portable probe's argv: the built-in probe's, plus --libcrypto (and --module-mac)."""
    d = probe_dir(family, arch)
    argv = [f"{d}/fips_probe", "--scenario", scenario, "--module", module]
    argv += ["--canary", f"{d}/libfipsmatrix-canary.so", "--workdir", workdir]
    argv += ["--libcrypto", libcrypto]
    if module_mac is not None:
        argv += ["--module-mac", module_mac]
    for key, value in module_config:
        argv += ["--config", f"{key}={value}"]
    return argv

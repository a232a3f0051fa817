"""The portable probe (docs/portable-probe.md): the unchanged probes/fips_probe.c built with every
OpenSSL function resolved at run time, so that it probes any image as it is. It is built in the
tool's own builder image, once per set of inputs (both libc families for the engine's
architecture; the glibc one on the oldest glibc platform, Debian 11), and delivered to the
images it probes in a named volume, filled once from that image and mounted read-only: nothing
is copied into their images, which are never changed. Everything goes through the engine's API,
so a remote engine works alike."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from matrix import assets
from matrix.acquire.baseimages import BaseImage
from matrix.execute.images.builder import Builder, BuildInputs
from matrix.execute.probes.batch import BatchRun, container_options
from matrix.execute.probes.probing import Programs
from matrix.model.types import BaseFallback, ExistingImage, Platform
from matrix.progress import Reporter

# The builder's base: made like every platform's (pulled, else debootstrapped), and the same
# base as the debian-11 platform's, so a run of both makes it once.
PLATFORM = Platform(
    name="portable-probe",
    dockerfile=assets.PORTABLE_DOCKERFILE.name,
    base_image="debian:bullseye",
    libc="glibc",
    fallback=BaseFallback(debootstrap="bullseye"),
    description="the portable probe's builder: the oldest glibc platform (glibc 2.31)",
)
FAMILIES = ("glibc", "musl")  # discovery tries them in this order
# An image's declared architecture -> the directory name its programs are built under
ARCHES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}
MARKER = ".complete"  # written last into a filled volume; its text is the inputs' key
FILL_SECONDS = 300  # a fill copies a few MB


@dataclass(frozen=True)
class PortableProbe:
    """The builder image of these inputs and the volume filled from it."""

    tag: str
    image_id: str
    key: str
    volume: str
    built: bool  # built by this run (else found)
    seconds: float


def inputs(base: BaseImage) -> BuildInputs:
    return BuildInputs(
        dockerfile=assets.PORTABLE_DOCKERFILE,
        tarball=None,
        tarball_sha256="",
        base=base,
        build_args={"BASE_IMAGE": base.ref},
        files=tuple(assets.portable_files()),
    )


def image_tag(key: str) -> str:
    return f"{assets.PORTABLE_REPOSITORY}:{key[:16]}"


def volume_name(key: str) -> str:
    return f"{assets.PORTABLE_VOLUME_PREFIX}{key[:16]}"


def ensure_portable(
    builder: Builder,
    base: BaseImage,
    *,
    log_path: Path,
    reporter: Reporter,
    force: bool = False,
) -> PortableProbe:
    """The builder image of these inputs (found by its tag and inputs label, else built), and
    its volume, filled when it is not yet; volumes of other inputs are pruned."""
    started = time.monotonic()
    wanted = inputs(base)
    key = wanted.key()
    tag = image_tag(key)
    found = None if force else builder.cached_as(tag, wanted)
    if found is not None:
        image_id = found.image_id
    else:
        reporter.note(f"building the portable probe ({tag}, on {base.ref})")
        image_id = builder.build(
            wanted, tag=tag, log_path=log_path, labels={assets.INPUTS_LABEL: key}, nocache=force
        )
    volume = fill_volume(builder.client, image_id, key)
    prune_volumes(builder.client, key, reporter)
    seconds = time.monotonic() - started
    return PortableProbe(tag, image_id, key, volume, found is None, round(seconds, 2))


def fill_volume(client: docker.DockerClient, image_id: str, key: str) -> str:
    """The volume of these inputs, filled from the builder image's /out unless its marker
    says it holds them already. Fills of one volume take turns (flock): one that died half
    way is done again by the next."""
    name = volume_name(key)
    try:
        client.volumes.get(name)
    except docker.errors.NotFound:
        labels = {assets.PORTABLE_LABEL: key, assets.TOOL_LABEL: "1"}
        client.volumes.create(name=name, labels=labels)
    script = (
        "set -e; exec 9>>/vol/.fill-lock; flock 9; "
        f'[ "$(cat /vol/{MARKER} 2>/dev/null)" = {key} ] && exit 0; '
        f"cp -a /out/. /vol/; printf %s {key} >/vol/{MARKER}.tmp; "
        f"mv /vol/{MARKER}.tmp /vol/{MARKER}"
    )
    container = client.containers.create(
        image_id,
        entrypoint=[],
        command=["sh", "-c", script],
        network_mode="none",
        volumes={name: {"bind": "/vol", "mode": "rw"}},
        # the probe containers' labels: a run that dies leaves nothing the next keeps
        labels=container_options("portable-probe volume")["labels"],
    )
    try:
        container.start()
        code = int(container.wait(timeout=FILL_SECONDS).get("StatusCode", -1))
        if code != 0:
            output = container.logs().decode("utf-8", "replace").strip()
            raise RuntimeError(f"filling volume {name} failed (exit {code}): {output[-2000:]}")
    finally:
        container.remove(force=True)
    return name


def prune_volumes(client: docker.DockerClient, key: str, reporter: Reporter) -> list[str]:
    """Removes the portable probe's volumes of other inputs: only volumes with its label, and
    only those no container uses (the engine refuses the others)."""
    removed = []
    try:
        found = client.volumes.list(filters={"label": assets.PORTABLE_LABEL})
    except docker.errors.APIError:
        return []
    for volume in found:
        labels = volume.attrs.get("Labels") or {}
        if assets.PORTABLE_LABEL not in labels or labels[assets.PORTABLE_LABEL] == key:
            continue
        try:
            volume.remove()
        except docker.errors.APIError:
            continue  # in use by a run of other inputs, or gone meanwhile
        removed.append(str(volume.name))
    if removed:
        reporter.note(f"removed {len(removed)} volume(s) of earlier portable probes")
    return removed


def arch_of(attrs: dict[str, Any]) -> tuple[str | None, str]:
    """The portable probe's architecture for an image (amd64 -> x86_64), or None with the
    image's own platform, for a reason."""
    os_name = str(attrs.get("Os") or "linux")
    declared = str(attrs.get("Architecture") or "amd64")
    arch = ARCHES.get(declared) if os_name == "linux" else None
    return arch, f"{os_name}/{declared}"


def family_dir(family: str, arch: str) -> str:
    return f"{assets.PORTABLE_MOUNT}/{family}-{arch}"


def driver(arch: str) -> str:
    """The batch driver on the volume: static, so any family's runs in any image."""
    return f"{family_dir(FAMILIES[0], arch)}/fips_batch"


def entry_executables(attrs: dict[str, Any]) -> list[str]:
    """The first word of the image's entrypoint and of its command: the programs the image
    runs, whose RUNPATH may point at a libcrypto of their own."""
    config = attrs.get("Config") or {}
    out: list[str] = []
    for key in ("Entrypoint", "Cmd"):
        words = config.get(key)
        first = words[0] if isinstance(words, list) and words else None
        if isinstance(first, str) and first and first not in out:
            out.append(first)
    return out


def discovery_runs(arch: str, image: ExistingImage, executables: Sequence[str]) -> list[BatchRun]:
    """Both families' `fips_probe --discover` (the family absent from the image cannot run:
    exit 127), with the platform's overrides and the image's executables."""
    args: list[str] = []
    for flag, value in (
        ("--libcrypto", image.libcrypto),
        ("--modules", image.modules),
        ("--fips-config", image.fips_config),
    ):
        if value is not None:
            args += [flag, value]
    for exe in executables:
        args += ["--exe", exe]
    return [
        BatchRun(f"discover-{f}", [f"{family_dir(f, arch)}/fips_probe", "--discover", *args])
        for f in FAMILIES
    ]


def programs(
    probe: PortableProbe,
    family: str,
    arch: str,
    *,
    libcrypto: str,
    module: str,
    module_mac: str | None,
) -> Programs:
    """The portable probe's programs on its volume, for the image's libc family, given the
    image's libcrypto and fips.so (and its configured module-mac); the twin gets the same."""
    where = family_dir(family, arch)
    mac = ("--module-mac", module_mac) if module_mac is not None else ()
    return Programs(
        probe=f"{where}/fips_probe",
        module=module,
        canary=f"{where}/libfipsmatrix-canary.so",
        probe_args=("--libcrypto", libcrypto, *mac),
        twin_libcrypto=libcrypto,
        twin_args=mac,
        driver=driver(arch),
        volume=probe.volume,
    )

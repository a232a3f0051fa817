"""The plain way, for the benchmark's side-by-side: one Dockerfile per cell doing
`./Configure enable-fips && make && make install`, each built without cache, one after
another, through the same builder the tool uses."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import docker
import docker.errors

from matrix import assets
from matrix.acquire.baseimages import BaseImage
from matrix.acquire.sources import cache_path
from matrix.bench.figures import Timed
from matrix.bench.sampler import machine_busy_seconds
from matrix.errors import MatrixError
from matrix.execute.images.builder import Builder, BuildInputs
from matrix.model.cells import Cell
from matrix.model.types import Platform


def local_base(client: docker.DockerClient, platform: Platform) -> BaseImage:
    """The base image the tool used for that platform: upstream if here, else its own."""
    refs = [platform.base_image]
    if platform.fallback is not None:
        refs.append(f"{assets.BASE_REPOSITORY}:{platform.fallback.debootstrap}")
    for ref in refs:
        try:
            return BaseImage(ref, str(client.images.get(ref).id), "local")
        except docker.errors.ImageNotFound:
            continue
    raise MatrixError(f"bench: no base image {platform.base_image} here for the plain builds")


def plain_builds(
    client: docker.DockerClient, cells: Sequence[Cell], cache_dir: Path, jobs: int, logs: Path
) -> tuple[Timed, dict[str, float]]:
    """Builds each cell the plain way; the time and CPU of all, and each image's size (MB)."""
    builder = Builder(client)
    sizes: dict[str, float] = {}
    cpu0, t0 = machine_busy_seconds(), time.monotonic()
    for cell in cells:
        base = local_base(client, cell.platform)
        tarball = cache_path(cell.source, cache_dir)
        inputs = BuildInputs(
            dockerfile=assets.PLAIN_DOCKERFILE,
            tarball=tarball,
            tarball_sha256=cell.source.sha256,
            base=base,
            build_args={
                "BASE_IMAGE": base.ref,
                "OPENSSL_VERSION": cell.source.version,
                "CONFIGURE_OPTIONS": " ".join(cell.variant.configure),
                "MAKE_JOBS": str(jobs),
            },
        )
        tag = f"{assets.PLAIN_REPOSITORY}:{cell.slug}"
        image_id = builder.build(
            inputs, tag=tag, log_path=logs / f"plain-{cell.slug}.log", nocache=True
        )
        sizes[cell.id] = round(client.images.get(image_id).attrs["Size"] / 1e6, 1)
    return Timed(time.monotonic() - t0, machine_busy_seconds() - cpu0), sizes

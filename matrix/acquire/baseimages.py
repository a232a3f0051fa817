"""Base images: the platform's upstream image when it exists or can be pulled, otherwise a
Debian root made here with debootstrap and imported, then reused on later runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from matrix import assets
from matrix.errors import BaseImageError
from matrix.model.types import Platform
from matrix.progress import Reporter


@dataclass(frozen=True)
class BaseImage:
    ref: str  # what the Dockerfile's FROM gets
    image_id: str
    origin: str  # "local", "pulled", MADE_NOW, "debootstrap (reused)"

    @property
    def made_now(self) -> bool:
        """Made by this run: nothing can have been built on it yet."""
        return self.origin == MADE_NOW


MADE_NOW = "debootstrap (made now)"


def ensure_base_image(
    client: docker.DockerClient,
    platform: Platform,
    mirror: str | None,
    reporter: Reporter,
    offline: bool = False,
) -> BaseImage:
    ref = platform.base_image
    image, pull_error = find_image(client, ref, reporter, offline)
    if image is not None:
        return image
    if platform.fallback is None:
        raise BaseImageError(
            f"{platform.name}: base image {ref} is not here and cannot be pulled "
            f"({pull_error}), and the platform names no fallback."
        )
    suite = platform.fallback.debootstrap
    local_ref = f"{assets.BASE_REPOSITORY}:{suite}"
    found = _local(client, local_ref)
    if found is not None:
        return BaseImage(local_ref, found, "debootstrap (reused)")
    image_id = _debootstrap_import(client, suite, local_ref, mirror, reporter)
    return BaseImage(local_ref, image_id, MADE_NOW)


def find_image(
    client: docker.DockerClient, ref: str, reporter: Reporter, offline: bool = False
) -> tuple[BaseImage | None, str]:
    """The image as the engine has it, or pulled when a registry is reachable (never with
    offline); else None and why it cannot be had."""
    found = _local(client, ref)
    if found is not None:
        return BaseImage(ref, found, "local"), ""
    if offline:
        return None, "--offline: no pulls"
    try:
        image = client.images.pull(ref)
        return BaseImage(ref, str(image.id), "pulled"), ""
    except docker.errors.DockerException as exc:
        pull_error = _pull_error(exc)
        reporter.note(f"cannot pull {ref}: {pull_error}")
        return None, pull_error


def _pull_error(exc: Exception) -> str:
    """Why a pull failed, in words that go into results: no registry's address."""
    text = str(exc)
    if any(s in text for s in ("no such host", "dial tcp", "i/o timeout", "connection refused")):
        return "the engine cannot reach the image's registry"
    status = getattr(getattr(exc, "response", None), "status_code", None)
    explanation = getattr(exc, "explanation", None) or text.splitlines()[0]
    return re.sub(
        r"https?://\S+|\b[\w-]+(\.[\w-]+)+(:\d+)?/\S*",
        "<registry>",
        f"{status or ''} {explanation}",
    ).strip()


def _local(client: docker.DockerClient, ref: str) -> str | None:
    try:
        return str(client.images.get(ref).id)
    except docker.errors.ImageNotFound:
        return None


def _debootstrap_import(
    client: docker.DockerClient,
    suite: str,
    ref: str,
    mirror: str | None,
    reporter: Reporter,
) -> str:
    tool = shutil.which("debootstrap") or next(
        (p for p in ("/usr/sbin/debootstrap", "/sbin/debootstrap") if os.path.exists(p)), None
    )
    if tool is None:
        raise BaseImageError(
            f"making {ref} needs debootstrap: install it (apt-get install debootstrap), "
            "or load a Debian image into the engine (docker load), then run again."
        )
    if os.geteuid() != 0:
        raise BaseImageError(
            f"making {ref} with debootstrap needs root: run once as root, "
            "or load a Debian image into the engine (docker load), then run again."
        )
    if mirror is None:
        raise BaseImageError(
            f"making {ref} needs a Debian mirror: none found in the apt configuration; "
            "set FIPS_MATRIX_DEBIAN_MIRROR to one, then run again."
        )
    with tempfile.TemporaryDirectory(prefix="fips-matrix-debootstrap-") as tmp:
        root = Path(tmp) / "root"
        reporter.note(f"debootstrap --variant=minbase {suite} (this takes a minute)")
        done = subprocess.run(
            [tool, "--variant=minbase", suite, str(root), mirror],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
            raise BaseImageError(f"debootstrap {suite} failed (exit {done.returncode}):\n{tail}")
        # A mirror may be a snapshot whose Release files have passed their Valid-Until date
        # (seen here for sid); apt in the builds would then refuse it. Signatures are still
        # checked, only the date is not: the base was made from this same mirror just now.
        (root / "etc/apt/apt.conf.d/99fips-matrix").write_text(
            "// fips-reload-matrix: the mirror may be a snapshot\n"
            'Acquire::Check-Valid-Until "false";\n'
        )
        # As the registry's Debian images do: no downloaded packages, package lists or
        # caches kept, in the base or in any layer an apt-get in a Dockerfile adds to it.
        (root / "etc/apt/apt.conf.d/98fips-matrix-clean").write_text(
            "// fips-reload-matrix: keep no packages or caches in image layers\n"
            'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
            '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
            'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
            '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
            'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'
        )
        for junk in [
            *(root / "var/cache/apt/archives").glob("*.deb"),
            *(root / "var/cache/apt").glob("*.bin"),
            *(p for p in (root / "var/lib/apt/lists").glob("*") if p.is_file()),
        ]:
            junk.unlink()
        archive = Path(tmp) / "root.tar"
        subprocess.run(["tar", "-C", str(root), "-cf", str(archive), "."], check=True)
        reporter.note(f"importing the root as {ref}")
        repository, tag = ref.rsplit(":", 1)
        client.api.import_image_from_file(
            str(archive),
            repository=repository,
            tag=tag,
            changes=[f"LABEL {assets.DEBOOTSTRAP_LABEL}={suite}", 'CMD ["/bin/bash"]'],
        )
    found = _local(client, ref)
    if found is None:
        raise BaseImageError(f"the engine did not keep the imported image {ref}")
    return found

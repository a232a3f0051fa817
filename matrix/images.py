"""Cell images: one Docker build per cell, skipped when an image of the same inputs exists."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import docker
import docker.errors

from matrix.baseimages import BaseImage
from matrix.cells import Cell
from matrix.errors import MatrixError
from matrix.redact import Redactor

REPOSITORY = "fips-matrix/cell"
STAGES_REPOSITORY = "fips-matrix/stages"  # a platform's stages before compile, built ahead
KEY_LABEL = "org.fips-reload-matrix.inputs"
_HERE = Path(__file__).resolve().parent


def _asset_dir(name: str, marker: str) -> Path:
    """A checkout has probes/ and dockerfiles/ beside the package; a wheel has them inside."""
    return next(
        (d for d in (_HERE.parent / name, _HERE / name) if (d / marker).is_file()),
        _HERE.parent / name,
    )


PROBES_DIR = _asset_dir("probes", "fips_probe.c")
DOCKERFILES_DIR = _asset_dir("dockerfiles", "fips-matrix-build.sh")
BUILD_SCRIPT = DOCKERFILES_DIR / "fips-matrix-build.sh"
SKEW_DOCKERFILE = DOCKERFILES_DIR / "skew.Dockerfile"

# Configure options that only change how libcrypto and fips.so are linked: the Dockerfile
# applies them by relinking the same objects, so variants differing only here share a compile.
LINK_ONLY_OPTIONS = frozenset({"no-pinshared"})


class BuildFailed(MatrixError):
    def __init__(self, message: str, log_path: Path) -> None:
        super().__init__(message)
        self.log_path = log_path


@dataclass(frozen=True)
class BuildInputs:
    dockerfile: Path
    tarball: Path | None  # None: nothing of ours to compile (distro OpenSSL, skew)
    tarball_sha256: str
    base: BaseImage
    build_args: dict[str, str]
    extra_key: str = ""  # inputs that are not files: e.g. the ids of images built FROM

    def key(self) -> str:
        """Changes exactly when an input of the image changes."""
        h = hashlib.sha256()
        h.update(self.dockerfile.read_bytes())
        h.update(BUILD_SCRIPT.read_bytes())
        for path in probe_files():
            h.update(path.name.encode() + b"\0" + path.read_bytes())
        h.update(self.tarball_sha256.encode())
        h.update(self.base.image_id.encode())
        args = {k: v for k, v in self.build_args.items() if k != "MAKE_JOBS"}
        h.update(json.dumps(args, sort_keys=True).encode())
        h.update(self.extra_key.encode())
        return h.hexdigest()


@dataclass(frozen=True)
class CellImage:
    tag: str
    image_id: str
    key: str
    cached: bool
    seconds: float
    parts: tuple[str, ...] = ()  # a skew image: the tags of the two images it was made from


_STAGE_RE = re.compile(r"(?im)^\s*FROM\s+\S+\s+AS\s+(\S+)\s*$")


def ahead_target(dockerfile: Path) -> str | None:
    """The last stage before `compile`: it and the stages before it depend on nothing of the
    cell's (the Dockerfile contract), so they can be built before any cell needs them. None
    when nothing is compiled (no compile stage) or nothing comes before it."""
    names = [m.lower() for m in _STAGE_RE.findall(dockerfile.read_text(encoding="utf-8"))]
    if "compile" not in names or names.index("compile") == 0:
        return None
    return str(names[names.index("compile") - 1])


def build_ahead(
    client: docker.DockerClient,
    platform: str,
    dockerfile: Path,
    base: BaseImage,
    log_path: Path,
    redact: Redactor = lambda text: text,
) -> str | None:
    """Builds the stages before compile into the layer cache, so that the platform's cells
    find them there, whichever cell comes first. Returns the stage built, or None."""
    target = ahead_target(dockerfile)
    if target is None:
        return None
    inputs = BuildInputs(dockerfile, None, "", base, {"BASE_IMAGE": base.ref})
    tag = f"{STAGES_REPOSITORY}:{platform}"
    _build(client, inputs, tag, "", log_path, lambda line: None, redact, False, target)
    return target


def probe_files() -> list[Path]:
    return sorted(p for p in PROBES_DIR.iterdir() if p.suffix in (".c", ".h"))


def build_args(cell: Cell, base: BaseImage, jobs: int) -> dict[str, str]:
    configure = [o for o in cell.variant.configure if o not in LINK_ONLY_OPTIONS]
    link = [o for o in cell.variant.configure if o in LINK_ONLY_OPTIONS]
    return {
        "BASE_IMAGE": base.ref,
        "OPENSSL_VERSION": cell.source.version,
        "CONFIGURE_OPTIONS": " ".join(configure),
        "LINK_OPTIONS": " ".join(link),
        "MAKE_JOBS": str(jobs),
    }


def image_tag(cell: Cell) -> str:
    return f"{REPOSITORY}:{cell.platform.name}-{cell.source.version}-{cell.variant.name}"


def cached_image(client: docker.DockerClient, cell: Cell, inputs: BuildInputs) -> CellImage | None:
    """The cell's image, if one built from exactly these inputs exists."""
    tag = image_tag(cell)
    key = inputs.key()
    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    if image.labels.get(KEY_LABEL) != key:
        return None
    return CellImage(tag, str(image.id), key, cached=True, seconds=0.0)


def build_cell_image(
    client: docker.DockerClient,
    cell: Cell,
    inputs: BuildInputs,
    log_path: Path,
    on_line: Callable[[str], None] = lambda line: None,
    redact: Redactor = lambda text: text,
    nocache: bool = False,
) -> CellImage:
    tag = image_tag(cell)
    key = inputs.key()
    started = time.monotonic()
    image_id = _build(client, inputs, tag, key, log_path, on_line, redact, nocache)
    return CellImage(tag, image_id, key, cached=False, seconds=time.monotonic() - started)


def _context(inputs: BuildInputs) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(str(inputs.dockerfile), arcname="Dockerfile")
        if inputs.tarball is not None:
            tar.add(str(inputs.tarball), arcname="openssl.tar.gz")
        tar.add(str(BUILD_SCRIPT), arcname="fips-matrix-build.sh")
        for path in probe_files():
            tar.add(str(path), arcname=f"probes/{path.name}")
    buf.seek(0)
    return buf


def _build(
    client: docker.DockerClient,
    inputs: BuildInputs,
    tag: str,
    key: str,
    log_path: Path,
    on_line: Callable[[str], None],
    redact: Redactor,
    nocache: bool,
    target: str | None = None,
) -> str:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        args = json.dumps(inputs.build_args, sort_keys=True)
        log.write(redact(f"# build {tag}\n# args {args}\n"))
        try:
            image_id, error = _stream(
                client, inputs, tag, key, nocache, log, on_line, redact, target
            )
        except docker.errors.APIError as exc:  # refused before it streamed (bad Dockerfile, ...)
            image_id, error = "", redact(str(exc))
            log.write(f"\nERROR: {error}\n")
        log.flush()
        os.fsync(log.fileno())
    if error or not image_id:
        raise BuildFailed(f"docker build failed: {error or 'no image produced'}", log_path)
    return image_id


def _stream(
    client: docker.DockerClient,
    inputs: BuildInputs,
    tag: str,
    key: str,
    nocache: bool,
    log: TextIO,
    on_line: Callable[[str], None],
    redact: Redactor,
    target: str | None = None,
) -> tuple[str, str]:
    """Runs the build, writing its output to log; returns (image id, error)."""
    image_id = ""
    error = ""
    stream = client.api.build(
        fileobj=_context(inputs),
        custom_context=True,
        tag=tag,
        buildargs=inputs.build_args,
        labels={KEY_LABEL: key} if key else None,
        target=target,
        network_mode="host",  # no container network of ours; apt reaches the mirror
        nocache=nocache,
        rm=True,
        forcerm=True,
        decode=True,
    )
    for chunk in _chunks(stream):
        if "stream" in chunk:
            text = redact(str(chunk["stream"]))
            log.write(text)
            for line in text.splitlines():
                if line.strip():
                    on_line(line.strip())
        if "error" in chunk:
            error = redact(str(chunk["error"]).strip())
            log.write(f"\nERROR: {error}\n")
        if "aux" in chunk and isinstance(chunk["aux"], dict):
            image_id = str(chunk["aux"].get("ID", image_id))
    return image_id, error


def _chunks(stream: object) -> Iterator[dict[str, object]]:
    for chunk in stream:  # type: ignore[attr-defined]
        if isinstance(chunk, dict):
            yield chunk

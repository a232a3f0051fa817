"""Docker builds through the engine's SDK: a cell's image (skipped when an image of the same
inputs exists), a platform's stages before compile (built ahead), and any other image the tool
makes from a Dockerfile. Every build's output goes to its log, redacted."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import docker
import docker.errors
import requests.exceptions
import urllib3.exceptions

from matrix import assets
from matrix.acquire.baseimages import BaseImage
from matrix.errors import BuildFailed, BuildTimedOut
from matrix.model.cells import Cell
from matrix.progress import Reporter
from matrix.results.redact import Redactor, keep

# Configure options that only change how libcrypto and fips.so are linked: the Dockerfile
# applies them by relinking the same objects, so variants differing only here share a compile.
LINK_ONLY_OPTIONS = frozenset({"no-pinshared"})
COMPILE_STEP = "RUN fips-matrix-build.sh compile"  # the Dockerfile contract's compile step
DEFAULT_TIMEOUT = 7200.0  # seconds one build may take
# A stream that says nothing for this long, or past the build's deadline, is given up.
_READ_ERRORS = (
    urllib3.exceptions.ReadTimeoutError,
    requests.exceptions.ReadTimeout,
    TimeoutError,
)


@dataclass(frozen=True)
class BuildInputs:
    dockerfile: Path
    tarball: Path | None  # None: nothing of ours to compile (distro OpenSSL, skew)
    tarball_sha256: str
    base: BaseImage
    build_args: dict[str, str]
    extra_key: str = ""  # inputs that are not files: e.g. the ids of images built FROM
    # The build context's files besides the Dockerfile, (name, file); none: a cell image's
    # (the build script and the probe's sources, and the tarball)
    files: tuple[tuple[str, Path], ...] = ()

    def key(self) -> str:
        """Changes exactly when an input of the image changes."""
        h = hashlib.sha256()
        h.update(self.dockerfile.read_bytes())
        if self.files:
            for name, path in self.files:
                h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
        else:
            h.update(assets.BUILD_SCRIPT.read_bytes())
            for path in assets.probe_files():
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
    return (
        f"{assets.CELL_REPOSITORY}:{cell.platform.name}-{cell.source.version}-{cell.variant.name}"
    )


class Builder:
    """The engine's builder, as this tool uses it: host networking (no container network of
    ours; apt reaches the mirror), intermediate containers always removed, every image
    labelled as the tool's, and each build given up after `timeout` seconds."""

    def __init__(
        self,
        client: docker.DockerClient,
        *,
        redact: Redactor = keep,
        reporter: Reporter | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.client = client
        self.redact = redact
        self.reporter = reporter or Reporter()
        self.timeout = timeout

    def cached(self, cell: Cell, inputs: BuildInputs) -> CellImage | None:
        """The cell's image, if one built from exactly these inputs exists."""
        return self.cached_as(image_tag(cell), inputs)

    def cached_as(self, tag: str, inputs: BuildInputs) -> CellImage | None:
        """The image tagged `tag`, if it was built from exactly these inputs."""
        key = inputs.key()
        try:
            image = self.client.images.get(tag)
        except docker.errors.ImageNotFound:
            return None
        if image.labels.get(assets.INPUTS_LABEL) != key:
            return None
        return CellImage(tag, str(image.id), key, cached=True, seconds=0.0)

    def build_cell(
        self,
        cell: Cell,
        inputs: BuildInputs,
        *,
        log_path: Path,
        nocache: bool = False,
        passed_compile: threading.Event | None = None,
    ) -> CellImage:
        """The cell's image, labelled with its inputs' key. `passed_compile` is set once the
        build is past the compile stage's steps before the compile itself."""
        tag = image_tag(cell)
        key = inputs.key()
        started = time.monotonic()
        image_id = self.build(
            inputs,
            tag=tag,
            log_path=log_path,
            labels={assets.INPUTS_LABEL: key},
            nocache=nocache,
            progress_of=cell.id,
            passed_compile=passed_compile,
        )
        return CellImage(tag, image_id, key, cached=False, seconds=time.monotonic() - started)

    def build_ahead(
        self, platform: str, dockerfile: Path, base: BaseImage, *, log_path: Path
    ) -> str | None:
        """Builds the stages before compile into the layer cache, so that the platform's cells
        find them there, whichever cell comes first. Returns the stage built, or None."""
        target = ahead_target(dockerfile)
        if target is None:
            return None
        inputs = BuildInputs(dockerfile, None, "", base, {"BASE_IMAGE": base.ref})
        tag = f"{assets.STAGES_REPOSITORY}:{platform}"
        self.build(inputs, tag=tag, log_path=log_path, target=target)
        return target

    def build(
        self,
        inputs: BuildInputs,
        *,
        tag: str,
        log_path: Path,
        labels: Mapping[str, str] | None = None,
        target: str | None = None,
        nocache: bool = False,
        progress_of: str | None = None,
        passed_compile: threading.Event | None = None,
    ) -> str:
        """One build; its image id. The Dockerfile's steps ("Step 9/18 : RUN ...") are shown
        as the progress of cell `progress_of`; BuildFailed names the log, BuildTimedOut when
        it ran past the builder's timeout."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.timeout
        timed_out = False
        with open(log_path, "w", encoding="utf-8") as log:
            args = json.dumps(inputs.build_args, sort_keys=True)
            log.write(self.redact(f"# build {tag}\n# args {args}\n"))
            try:
                stream = self.client.api.build(
                    fileobj=_context(inputs),
                    custom_context=True,
                    tag=tag,
                    buildargs=inputs.build_args,
                    labels={assets.TOOL_LABEL: "1", **(labels or {})},
                    target=target,
                    network_mode="host",
                    nocache=nocache,
                    rm=True,
                    forcerm=True,
                    decode=True,
                    timeout=max(1, round(self.timeout)),  # each read of the stream, at most
                )
                image_id, error = self._follow(stream, log, progress_of, passed_compile, deadline)
            except docker.errors.APIError as exc:  # refused before it streamed
                image_id, error = "", self.redact(str(exc))
                log.write(f"\nERROR: {error}\n")
            except _READ_ERRORS:
                image_id, error, timed_out = "", "", True
            if timed_out or time.monotonic() > deadline:
                timed_out = True
                log.write(f"\nTIMEOUT: the build did not finish within {self.timeout:g} s\n")
            log.flush()
            os.fsync(log.fileno())
        if timed_out:
            # the stream is dropped: the engine cancels a build whose client went away
            raise BuildTimedOut(
                f"docker build did not finish within {self.timeout:g} s (--build-timeout)",
                log_path,
            )
        if error or not image_id:
            raise BuildFailed(f"docker build failed: {error or 'no image produced'}", log_path)
        return image_id

    def _follow(
        self,
        stream: object,
        log: TextIO,
        progress_of: str | None,
        passed_compile: threading.Event | None,
        deadline: float,
    ) -> tuple[str, str]:
        """Writes the build's output to its log as it comes; returns (image id, error). It
        stops reading at the deadline (the caller sees the time and calls it a timeout)."""
        image_id = ""
        error = ""
        for chunk in _chunks(stream):
            if time.monotonic() > deadline:
                break
            if "stream" in chunk:
                text = self.redact(str(chunk["stream"]))
                log.write(text)
                for line in (line.strip() for line in text.splitlines()):
                    if not line.startswith("Step "):
                        continue
                    if progress_of is not None:
                        self.reporter.phase(progress_of, "build", line[:100])
                    if passed_compile is not None and COMPILE_STEP in line:
                        passed_compile.set()  # the layers before the compile exist now
            if "error" in chunk:
                error = self.redact(str(chunk["error"]).strip())
                log.write(f"\nERROR: {error}\n")
            if "aux" in chunk and isinstance(chunk["aux"], dict):
                image_id = str(chunk["aux"].get("ID", image_id))
        return image_id, error


def _context(inputs: BuildInputs) -> io.BytesIO:
    files = list(inputs.files)
    if not files:  # a cell image's: the Dockerfile contract
        if inputs.tarball is not None:
            files.append(("openssl.tar.gz", inputs.tarball))
        files.append(("fips-matrix-build.sh", assets.BUILD_SCRIPT))
        files += [(f"probes/{path.name}", path) for path in assets.probe_files()]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(str(inputs.dockerfile), arcname="Dockerfile")
        for name, path in files:
            tar.add(str(path), arcname=name)
    buf.seek(0)
    return buf


def _chunks(stream: object) -> Iterator[dict[str, object]]:
    for chunk in stream:  # type: ignore[attr-defined]
        if isinstance(chunk, dict):
            yield chunk

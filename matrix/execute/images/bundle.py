"""Bundles, for a lab with no network: the images of a matrix's cells (which hold their base
images' layers), their base images, and the verified source tarballs with their published
signatures, in one archive. A run given the bundle loads the images, finds the sources in
its cache and downloads nothing.

A bundle comes from elsewhere, so nothing of it is used before all of it is checked: its
manifest and lock, the matrix it was made for, the name of every entry, and every tarball's
bytes against the matrix's sha256 pin. Only then are the images loaded and the tarballs put
in the cache, each atomically. A signature verdict is never taken from a bundle: the
signatures it carries are checked again, here, against the shipped keys."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import docker
import docker.errors

from matrix.acquire.download import MAX_SIGNATURE_BYTES, MAX_TARBALL_BYTES, sha256_file
from matrix.acquire.sources import signature_path
from matrix.errors import MatrixError
from matrix.execute.lockfile import Lock
from matrix.files import publish_mode, sync_directory
from matrix.model.imageref import reference_problem
from matrix.model.types import MatrixDefinition
from matrix.results.records import CellResult

BUNDLE_SCHEMA = 1
MANIFEST = "manifest.json"
IMAGES = "images.tar"
MAX_MANIFEST_BYTES = 2**20


def write_bundle(
    client: docker.DockerClient,
    results: Sequence[CellResult],
    lock: Lock,
    cache_dir: Path,
    output: Path,
) -> dict[str, int]:
    """From a finished run: its cell images, base images and sources, and its lock."""
    images = sorted(
        {r.fingerprint["image"]["tag"] for r in results if "image" in r.fingerprint}
        | {p for r in results for p in r.fingerprint.get("image", {}).get("parts", [])}
        | set(lock.base_images)
    )
    if not images:
        raise MatrixError("bundle: no cell was built, so there is nothing to bundle")
    sources = []
    for version, sha in sorted(lock.sources.items()):
        tarball = cache_dir / "sources" / _tarball_name(version, sha)
        sources += [p for p in (tarball, signature_path(tarball)) if p.is_file()]
    manifest = {"schema": BUNDLE_SCHEMA, "images": images, "lock": lock.to_json()}
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        _write_archive(client, tmp, manifest, sources, images)
    except BaseException:
        tmp.unlink(missing_ok=True)  # never a half-written archive left beside the output
        raise
    tmp.replace(output)
    return {"images": len(images), "sources": sum(1 for p in sources if p.suffix == ".gz")}


def _write_archive(
    client: docker.DockerClient,
    path: Path,
    manifest: dict[str, Any],
    sources: Sequence[Path],
    images: Sequence[str],
) -> None:
    with tarfile.open(path, "w") as tar:
        data = json.dumps(manifest, indent=2).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for source in sources:
            tar.add(str(source), arcname=f"sources/{source.name}")
        # One `docker save` of all images: layers they share are stored once.
        with tempfile.TemporaryFile() as saved:
            try:
                for chunk in _save(client, images):
                    saved.write(chunk)
            except docker.errors.APIError as exc:
                raise MatrixError(f"bundle: the engine could not save the images: {exc}") from exc
            info = tarfile.TarInfo(IMAGES)
            info.size = saved.tell()
            saved.seek(0)
            tar.addfile(info, saved)


def load_bundle(
    client: docker.DockerClient, bundle: Path, cache_dir: Path, definition: MatrixDefinition
) -> Lock:
    """Checks the whole bundle, then loads its images into the engine and its sources into
    the cache; returns its lock. MatrixError, with nothing applied, for a bundle that fails
    a check."""
    staged: dict[Path, tuple[Path, str]] = {}  # cache path -> checked temp file, sha256
    try:
        with tarfile.open(bundle) as tar:
            members = _members(tar, bundle)
            lock, listed = _lock(tar, members, bundle, definition)
            _check_image_tags(tar, members[IMAGES], listed, bundle)
            wanted = _wanted(lock, definition)
            for name, member in members.items():
                if name in (MANIFEST, IMAGES) or (member.isdir() and name == "sources"):
                    continue
                if name not in wanted or not member.isfile():
                    raise MatrixError(
                        f"bundle {bundle}: entry {name!r} is not a tarball (or signature) that "
                        "its lock lists: refused"
                    )
            missing = [n for n, (_, sha) in wanted.items() if sha and n not in members]
            if missing:
                raise MatrixError(f"bundle {bundle}: its lock lists {', '.join(missing)}, absent")
            sources = cache_dir / "sources"
            sources.mkdir(parents=True, exist_ok=True)
            for name, (limit, sha) in wanted.items():
                if name in members:
                    staged[sources / Path(name).name] = _stage(
                        tar, members[name], sources, limit, sha
                    )
            client.images.load(_extract(tar, members[IMAGES]))
        for target, (tmp, digest) in staged.items():
            _place(target, tmp, digest)
        sync_directory(cache_dir / "sources")
        return lock
    except (OSError, tarfile.TarError, ValueError, KeyError) as exc:
        raise MatrixError(f"bundle {bundle} cannot be read: {exc}") from exc
    except docker.errors.DockerException as exc:  # APIError, and ImageLoadError on garbage
        raise MatrixError(f"bundle {bundle}: the engine refused its images: {exc}") from exc
    finally:
        for tmp, _ in staged.values():
            tmp.unlink(missing_ok=True)


def _members(tar: tarfile.TarFile, bundle: Path) -> dict[str, tarfile.TarInfo]:
    members: dict[str, tarfile.TarInfo] = {}
    for member in tar.getmembers():
        name = member.name.removeprefix("./").rstrip("/")
        if name in members:  # a later entry would silently win over the checked one
            raise MatrixError(f"bundle {bundle}: entry {name!r} appears twice: refused")
        members[name] = member
    for name in (MANIFEST, IMAGES):
        if name not in members or not members[name].isfile():
            raise MatrixError(f"bundle {bundle}: no {name}: not a bundle of fips-matrix")
    return members


def _lock(
    tar: tarfile.TarFile,
    members: dict[str, tarfile.TarInfo],
    bundle: Path,
    definition: MatrixDefinition,
) -> tuple[Lock, list[str]]:
    """The bundle's lock, checked against the matrix, and the images its manifest lists."""
    if members[MANIFEST].size > MAX_MANIFEST_BYTES:
        raise MatrixError(f"bundle {bundle}: its manifest is too large")
    try:
        manifest = json.loads(_extract(tar, members[MANIFEST]).read())
    except (ValueError, RecursionError) as exc:
        raise MatrixError(f"bundle {bundle}: its manifest is not JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("schema") != BUNDLE_SCHEMA:
        schema = manifest.get("schema") if isinstance(manifest, dict) else None
        raise MatrixError(
            f"bundle {bundle}: manifest schema {schema!r}, this version reads {BUNDLE_SCHEMA}"
        )
    images = manifest.get("images")
    if not isinstance(images, list) or not all(
        isinstance(i, str) and reference_problem(i) is None for i in images
    ):
        raise MatrixError(f"bundle {bundle}: its manifest's images are not image names")
    try:
        lock = Lock.from_json(manifest.get("lock"))
    except ValueError as exc:
        raise MatrixError(f"bundle {bundle}: its lock is not valid ({exc})") from exc
    if lock.matrix_digest != definition.digest:
        raise MatrixError(
            f"bundle {bundle} was made for another matrix definition (digest "
            f"{lock.matrix_digest[:12]}; {definition.path} is {definition.digest[:12]}): run "
            "it with the matrix file it was made from"
        )
    for version, sha in lock.sources.items():
        pinned = definition.sources.get(version)
        if pinned is None or pinned.sha256 != sha:
            raise MatrixError(
                f"bundle {bundle}: its lock pins OpenSSL {version} to {sha[:12]}, which the "
                "matrix does not"
            )
    return lock, images


def _check_image_tags(
    tar: tarfile.TarFile, member: tarfile.TarInfo, listed: Sequence[str], bundle: Path
) -> None:
    """images.tar is read before the engine sees it: a load writes every tag the archive's own
    manifest.json (and its legacy `repositories`, its OCI `index.json`) names into the engine,
    so each must be one the bundle's manifest lists; and it must be an image archive at all."""
    allowed = {_normal(i) for i in listed}
    try:
        with tarfile.open(fileobj=_extract(tar, member)) as images:
            inner = {m.name.removeprefix("./"): m for m in images.getmembers()}
            if "manifest.json" not in inner or not inner["manifest.json"].isfile():
                raise MatrixError(
                    f"bundle {bundle}: {IMAGES} has no manifest.json: not an image archive "
                    "of the engine's (docker save)"
                )
            tags = _archive_tags(images, inner, bundle)
    except tarfile.TarError as exc:
        # tarfile lists every compression it tried, one per line: the last (plain tar) says it
        last = (str(exc).strip().splitlines() or [""])[-1].strip(" -")
        raise MatrixError(
            f"bundle {bundle}: {IMAGES} is not an image archive (docker save): {last}"
        ) from exc
    unlisted = sorted({t for t in tags if _normal(t) not in allowed})
    if unlisted:
        raise MatrixError(
            f"bundle {bundle}: {IMAGES} would tag {', '.join(map(repr, unlisted[:5]))} in the "
            "engine, which its manifest does not list: refused, nothing loaded"
        )


def _archive_tags(
    images: tarfile.TarFile, inner: dict[str, tarfile.TarInfo], bundle: Path
) -> list[str]:
    """Every name a load of the archive would tag."""

    def read(name: str) -> Any:
        entry = inner[name]
        if not entry.isfile() or entry.size > MAX_MANIFEST_BYTES:
            raise MatrixError(f"bundle {bundle}: {IMAGES}'s {name} is not a small file")
        try:
            return json.loads(_extract(images, entry).read())
        except (ValueError, RecursionError) as exc:
            raise MatrixError(f"bundle {bundle}: {IMAGES}'s {name} is not JSON ({exc})") from exc

    def strings(value: Any, what: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise MatrixError(f"bundle {bundle}: {IMAGES}'s {what} is not a list of names")
        return value

    manifest = read("manifest.json")
    if not isinstance(manifest, list) or not all(isinstance(m, dict) for m in manifest):
        raise MatrixError(f"bundle {bundle}: {IMAGES}'s manifest.json is not a list of images")
    tags = [t for m in manifest for t in strings(m.get("RepoTags"), "RepoTags")]
    if "repositories" in inner:  # the legacy form: {name: {tag: id}}
        legacy = read("repositories")
        if not isinstance(legacy, dict) or not all(isinstance(v, dict) for v in legacy.values()):
            raise MatrixError(f"bundle {bundle}: {IMAGES}'s repositories is not a name map")
        tags += [f"{name}:{tag}" for name, by_tag in legacy.items() for tag in by_tag]
    if "index.json" in inner:  # the OCI form: names in the annotations
        index = read("index.json")
        entries = index.get("manifests") if isinstance(index, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            notes = entry.get("annotations") if isinstance(entry, dict) else None
            name = notes.get("io.containerd.image.name") if isinstance(notes, dict) else None
            if isinstance(name, str):
                tags.append(name)
    return tags


def _normal(ref: str) -> str:
    """A reference as the engine stores its tag: the default registry's prefixes dropped,
    `:latest` where no tag is given."""
    for prefix in ("docker.io/library/", "docker.io/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
            break
    if "@" not in ref and ":" not in ref.rsplit("/", 1)[-1]:
        ref += ":latest"
    return ref


def _tarball_name(version: str, sha: str) -> str:
    return f"openssl-{version}-{sha[:12]}.tar.gz"


def _wanted(lock: Lock, definition: MatrixDefinition) -> dict[str, tuple[int, str]]:
    """Entry name -> (size limit, sha256 it must have, "" for a signature)."""
    wanted: dict[str, tuple[int, str]] = {}
    for version in lock.sources:
        name = _tarball_name(version, definition.sources[version].sha256)
        wanted[f"sources/{name}"] = (MAX_TARBALL_BYTES, definition.sources[version].sha256)
        wanted[f"sources/{name}.asc"] = (MAX_SIGNATURE_BYTES, "")
    return wanted


def _stage(
    tar: tarfile.TarFile, member: tarfile.TarInfo, directory: Path, limit: int, sha: str
) -> tuple[Path, str]:
    """The entry's bytes in a temporary file beside where they go, checked; and their
    sha256."""
    if member.size > limit:
        raise MatrixError(f"bundle entry {member.name}: larger than {limit} bytes: refused")
    fd, name = tempfile.mkstemp(dir=directory, prefix=".bundle-", suffix=".part")
    h = hashlib.sha256()
    with os.fdopen(fd, "wb") as out:
        source = _extract(tar, member)
        while chunk := source.read(2**20):
            h.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    tmp = Path(name)
    if sha and h.hexdigest() != sha:
        tmp.unlink()
        raise MatrixError(
            f"bundle entry {member.name}: sha256 {h.hexdigest()}, the matrix pins {sha}: refused"
        )
    return tmp, h.hexdigest()


def _place(target: Path, tmp: Path, digest: str) -> None:
    """A checked file (its sha256: digest) into the cache. A tarball already there with the
    same bytes keeps its record; a new one's record (the sidecar) goes, so that its
    signature is checked here."""
    if target.suffix == ".gz" and target.is_file() and sha256_file(target) == digest:
        return
    publish_mode(tmp)
    os.replace(tmp, target)
    if target.suffix == ".gz":
        target.with_name(target.name + ".json").unlink(missing_ok=True)


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo) -> io.BufferedReader:
    f = tar.extractfile(member)
    if f is None:
        raise KeyError(member.name)
    return f  # type: ignore[return-value]


def _save(client: docker.DockerClient, names: Sequence[str]) -> Iterator[bytes]:
    # The SDK saves one image at a time; the engine's API takes several names at once, and
    # stores the layers they share once. So this one call goes through the SDK's internals.
    api: Any = client.api
    response = api._get(api._url("/images/get"), params={"names": list(names)}, stream=True)
    api._raise_for_status(response)
    yield from response.iter_content(chunk_size=1 << 20)

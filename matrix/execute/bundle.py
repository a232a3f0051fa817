"""Bundles, for a lab with no network: the images of a matrix's cells (which hold their base
images' layers), their base images, and the verified source tarballs, in one archive. A run
given the bundle loads the images, finds the sources in its cache and downloads nothing."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import docker
import docker.errors

from matrix.errors import MatrixError
from matrix.execute.lockfile import Lock
from matrix.results.records import CellResult

BUNDLE_SCHEMA = 1


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
    sources = sorted(p for p in (cache_dir / "sources").glob("openssl-*") if _wanted(p, lock))
    manifest = {"schema": BUNDLE_SCHEMA, "images": images, "lock": lock.to_json()}
    tmp = output.with_name(f".{output.name}.tmp")
    with tarfile.open(tmp, "w") as tar:
        data = json.dumps(manifest, indent=2).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for path in sources:
            tar.add(str(path), arcname=f"sources/{path.name}")
        # One `docker save` of all images: layers they share are stored once.
        with tempfile.TemporaryFile() as saved:
            try:
                for chunk in _save(client, images):
                    saved.write(chunk)
            except docker.errors.APIError as exc:
                raise MatrixError(f"bundle: the engine could not save the images: {exc}") from exc
            info = tarfile.TarInfo("images.tar")
            info.size = saved.tell()
            saved.seek(0)
            tar.addfile(info, saved)
    tmp.replace(output)
    return {"images": len(images), "sources": len(sources)}


def load_bundle(client: docker.DockerClient, bundle: Path, cache_dir: Path) -> Lock:
    """Loads the images into the engine and the sources into the cache; returns the lock."""
    try:
        with tarfile.open(bundle) as tar:
            manifest = json.load(_member(tar, "manifest.json"))
            if manifest.get("schema") != BUNDLE_SCHEMA:
                raise MatrixError(f"bundle {bundle}: schema {manifest.get('schema')!r}")
            (cache_dir / "sources").mkdir(parents=True, exist_ok=True)
            for member in tar.getmembers():
                if member.name.startswith("sources/") and member.isfile():
                    target = cache_dir / "sources" / Path(member.name).name
                    with open(target, "wb") as f:
                        shutil.copyfileobj(_member(tar, member.name), f)
            client.images.load(_member(tar, "images.tar"))
        lock = manifest["lock"]
        return Lock(lock["matrix_digest"], dict(lock["base_images"]), dict(lock["sources"]))
    except (OSError, tarfile.TarError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MatrixError(f"bundle {bundle} cannot be read: {exc}") from exc
    except docker.errors.APIError as exc:
        raise MatrixError(f"bundle {bundle}: the engine refused its images: {exc}") from exc


def _wanted(path: Path, lock: Lock) -> bool:
    return any(path.name.startswith(f"openssl-{v}-{sha[:12]}") for v, sha in lock.sources.items())


def _member(tar: tarfile.TarFile, name: str) -> io.BufferedReader:
    f = tar.extractfile(name)
    if f is None:
        raise KeyError(name)
    return f  # type: ignore[return-value]


def _save(client: docker.DockerClient, names: Sequence[str]) -> Iterator[bytes]:
    # The SDK saves one image at a time; the engine's API takes several names at once, and
    # stores the layers they share once. So this one call goes through the SDK's internals.
    api: Any = client.api
    response = api._get(api._url("/images/get"), params={"names": list(names)}, stream=True)
    api._raise_for_status(response)
    yield from response.iter_content(chunk_size=1 << 20)

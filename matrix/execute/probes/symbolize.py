"""A crashed probe run's record for its result: the stderr lines its attribution reads
(matrix/judge/crash.py) and the names of the functions its addresses lie in, resolved now,
after the run and outside the probe container, from the image's own copies of the objects
(the compiled cells' images hold the build tree's unstripped libcrypto and fips.so). The
names are stored with the result: `fips-matrix report` runs without an engine.

An object is copied out through the engine (the archive of a container created from the
image, never started) and read once per image: its function table is kept in memory for the
run, so the crashes of a cell's several scenarios read each object once."""

from __future__ import annotations

import contextlib
import io
import posixpath
import tarfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import docker
import docker.errors
import requests.exceptions

from matrix import assets
from matrix.execute.probes.batch import owner
from matrix.execute.probes.elfsymbols import Functions, read_functions
from matrix.judge import crash, crash_lines

MAX_OBJECT_BYTES = 256 * 2**20  # a libcrypto with its symbols is ~10 MB
MAX_LINKS = 8
_CACHED = 32  # (image, object) function tables kept

_cache: OrderedDict[tuple[str, str], Functions | str] = OrderedDict()
_cache_lock = threading.Lock()


def crash_record(client: docker.DockerClient, image_id: str, stderr: str) -> dict[str, Any] | None:
    """The run's crash record (docs/results-schema.md, scenarios[].crash), or None when its
    stderr holds no crash line."""
    lines = crash_lines.kept_lines(stderr)
    if not any(line.startswith("fips-probe-crash ") for line in lines):
        return None
    symbols, objects = resolve(client, image_id, crash.wanted(lines))
    return {"lines": lines, "symbols": symbols, "objects": objects}


def resolve(
    client: docker.DockerClient, image_id: str, wanted: Sequence[tuple[str, int]]
) -> tuple[list[dict[str, str]], dict[str, str]]:
    """Names for (object, offset) pairs: the names found, and per object which table named
    them or why none could."""
    paths = list(dict.fromkeys(path for path, _ in wanted))
    tables = _tables(client, image_id, paths)
    symbols: list[dict[str, str]] = []
    objects: dict[str, str] = {}
    for path in paths:
        table = tables[path]
        objects[path] = table.table if isinstance(table, Functions) else table
    for path, offset in wanted:
        table = tables[path]
        named = table.at(offset) if isinstance(table, Functions) else None
        if named is not None:
            symbols.append(
                {
                    "object": path,
                    "offset": f"{offset:#x}",
                    "function": named[0],
                    "function_offset": f"{named[1]:#x}",
                }
            )
    return symbols, objects


def forget() -> None:
    """Drops the function tables kept so far."""
    with _cache_lock:
        _cache.clear()


def _tables(
    client: docker.DockerClient, image_id: str, paths: Sequence[str]
) -> dict[str, Functions | str]:
    found: dict[str, Functions | str] = {}
    with _cache_lock:
        for path in paths:
            if (image_id, path) in _cache:
                found[path] = _cache[(image_id, path)]
                _cache.move_to_end((image_id, path))
    missing = [p for p in paths if p not in found]
    if missing:
        for path, data in _copy_out(client, image_id, missing).items():
            found[path] = read_functions(data, path) if isinstance(data, bytes) else data
        with _cache_lock:
            for path in missing:
                _cache[(image_id, path)] = found[path]
            while len(_cache) > _CACHED:
                _cache.popitem(last=False)
    return found


def _copy_out(
    client: docker.DockerClient, image_id: str, paths: Sequence[str]
) -> dict[str, bytes | str]:
    """Each file's bytes as the image holds it (symbolic links followed), or why not."""
    out: dict[str, bytes | str] = {}
    try:
        container = client.containers.create(
            image_id,
            entrypoint=[],
            command=["none"],  # never started: only its file system is read
            network_mode="none",
            labels={assets.PROBE_LABEL: "symbols", assets.OWNER_LABEL: owner()},
        )
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        return {path: f"no copy of the image's files ({exc})" for path in paths}
    try:
        for path in paths:
            out[path] = _one(container, path)
    finally:
        # if it cannot go now, a later run removes it (batch.remove_leftovers)
        with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
            container.remove(force=True)
    return out


def _one(container: Any, path: str) -> bytes | str:
    for _ in range(MAX_LINKS):
        try:
            chunks, stat = container.get_archive(path)
        except docker.errors.NotFound:
            return "not in the image"
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            return f"not copied out of the image ({exc})"
        if int(stat.get("size", 0)) > MAX_OBJECT_BYTES:
            return f"larger than {MAX_OBJECT_BYTES} bytes: not read"
        data = b"".join(chunks)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = next(iter(tar.getmembers()), None)
            if member is None:
                return "an empty archive"
            if member.issym():
                path = posixpath.normpath(posixpath.join(posixpath.dirname(path), member.linkname))
                continue
            if not member.isfile():
                return "not a regular file"
            f = tar.extractfile(member)
            return f.read() if f is not None else "not readable"
    return "too many symbolic links"

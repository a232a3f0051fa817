"""HTTP downloads of sources and their signatures: bounded, hashed as they stream, and every
failure turned into one short reason (no traceback, no half-written file)."""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
from collections.abc import Collection
from pathlib import Path

from matrix.acquire.guard import opener

MAX_TARBALL_BYTES = 512 * 2**20  # 3.x tarballs are ~15-55 MB; stop a runaway server
MAX_SIGNATURE_BYTES = 64 * 2**10
CHUNK = 2**20

NET_ERRORS = (urllib.error.URLError, OSError, http.client.HTTPException, ValueError)


class Refused(Exception):
    """One candidate failed; `reason` goes into the final error, str() into the log."""

    def __init__(self, reason: str, log_line: str | None = None) -> None:
        super().__init__(log_line or reason)
        self.reason = reason


def describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        if isinstance(exc.reason, TimeoutError):
            return f"timed out after {timeout:g} s"
        return str(exc.reason)
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g} s"
    return str(exc) or type(exc).__name__


def download(
    url: str, dest_dir: Path, want: str, timeout: float, trusted: Collection[str] = ()
) -> Path:
    """Stream `url` into a temp file in `dest_dir`, hashing as it goes; keep it only if
    the sha256 matches. Nothing on this machine or its link is reached, through a name or a
    redirect either (matrix/acquire/guard.py), but on the `trusted` hosts."""
    fd, name = tempfile.mkstemp(dir=dest_dir, prefix=".download-", suffix=".part")
    tmp = Path(name)
    try:
        h = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out, opener(trusted).open(url, timeout=timeout) as resp:
                while chunk := resp.read(CHUNK):
                    size += len(chunk)
                    if size > MAX_TARBALL_BYTES:
                        raise Refused(f"larger than {MAX_TARBALL_BYTES} bytes", f"{url}: too big")
                    h.update(chunk)
                    out.write(chunk)
        except NET_ERRORS as exc:
            why = describe(exc, timeout)
            raise Refused(why, f"{url}: {why}") from exc
        got = h.hexdigest()
        if got != want:
            raise Refused(
                f"sha256 mismatch: got {got}, want {want}",
                f"sha256 mismatch from {url}: got {got}, want {want}",
            )
        return tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def fetch_small(url: str, timeout: float, trusted: Collection[str] = ()) -> bytes:
    try:
        with opener(trusted).open(url, timeout=timeout) as resp:
            data: bytes = resp.read(MAX_SIGNATURE_BYTES + 1)
    except NET_ERRORS as exc:
        raise Refused(describe(exc, timeout)) from exc
    if len(data) > MAX_SIGNATURE_BYTES:
        raise Refused("too large for a signature")
    return data


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()

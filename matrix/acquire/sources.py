"""Fetch, verify (sha256 pin + upstream's OpenPGP signature) and cache OpenSSL tarballs.

The sha256 pin in the matrix file is what makes a tarball acceptable; the signature
is checked as well and reported, never silently assumed (matrix/acquire/signatures.py: a
bad signature is refused, one by an unknown key refused unless allowed). The cache keeps
each tarball, its signature (.asc) when one was published, and a sidecar (.json) recording
where it came from and the signature's verdict.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matrix import assets
from matrix.acquire.download import Refused, download, sha256_file
from matrix.acquire.guard import host_of
from matrix.acquire.mirror import ENV_VAR
from matrix.acquire.signatures import Signature, UnknownSigner, check_signature, trusted
from matrix.errors import SourceError
from matrix.files import publish_mode, sync_directory, write_atomic
from matrix.model.types import Source
from matrix.progress import Reporter


@dataclass(frozen=True)
class FetchedSource:
    version: str
    path: Path
    sha256: str
    origin: str  # the URL it came from, or where it was found
    signature: str  # "STATE: detail" (matrix/acquire/signatures.py)


def debian_orig_url(version: str, mirror: str) -> str:
    return f"{mirror.rstrip('/')}/pool/main/o/openssl/openssl_{version}.orig.tar.gz"


def candidate_urls(source: Source, mirror: str | None) -> list[str]:
    urls = list(source.urls)
    if source.debian_orig and mirror:
        urls.append(debian_orig_url(source.version, mirror))
    return urls


def cache_path(source: Source, cache_dir: Path) -> Path:
    return cache_dir / "sources" / f"openssl-{source.version}-{source.sha256[:12]}.tar.gz"


def fetch_source(
    source: Source,
    cache_dir: Path,
    mirror: str | None,
    reporter: Reporter | None = None,
    timeout: float = 30,
    keyring: Path = assets.KEYRING,
    allow_unknown_signer: bool = False,
) -> FetchedSource:
    reporter = reporter or Reporter()
    target = cache_path(source, cache_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    urls = candidate_urls(source, mirror)
    # the mirror is the user's own configuration (apt's sources): a cache on this machine
    # is fine there; the matrix file's URLs never reach this machine (acquire/guard.py)
    trusted = (host_of(mirror),) if mirror else ()
    check = _Checker(keyring, timeout, reporter, allow_unknown_signer, trusted)
    cached = _from_cache(source, target, urls, check)
    if cached is not None:
        return cached
    failures: list[tuple[str, str]] = []
    for url in urls:
        reporter.note(f"fetching {url}")
        try:
            tmp = download(url, target.parent, source.sha256, timeout, trusted)
        except Refused as exc:
            reporter.note(str(exc))
            failures.append((url, exc.reason))
            continue
        try:
            asc_urls = [u + ".asc" for u in (url, *(u for u in urls if u != url))]
            signature = check(tmp, asc_urls)
        except Refused as exc:
            tmp.unlink(missing_ok=True)
            reporter.note(str(exc))
            failures.append((url, exc.reason))
            continue
        publish_mode(tmp)  # mkstemp makes 0600; the tarball gets the user's usual mode
        os.replace(tmp, target)
        sync_directory(target.parent)
        return _record(source, target, url, signature, reporter)
    raise SourceError(_all_failed(source, target, mirror, failures))


@dataclass(frozen=True)
class _Checker:
    """check_signature with this fetch's keyring, timeout, reporter and permission."""

    keyring: Path
    timeout: float
    reporter: Reporter
    allow_unknown: bool
    trusted: tuple[str, ...] = ()

    def __call__(self, data: Path, asc_urls: Sequence[str]) -> Signature:
        return check_signature(
            data,
            asc_urls,
            self.keyring,
            self.timeout,
            self.reporter,
            self.allow_unknown,
            self.trusted,
        )


# --- cache -----------------------------------------------------------------------------


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".json")


def signature_path(target: Path) -> Path:
    """Where the cache keeps a tarball's published signature."""
    return target.with_name(target.name + ".asc")


def _record(
    source: Source, target: Path, origin: str, signature: Signature, reporter: Reporter
) -> FetchedSource:
    if signature.asc is not None and signature.asc != _read(signature_path(target)):
        write_atomic(signature_path(target), signature.asc)
    meta = {"version": source.version, "sha256": source.sha256, "origin": origin}
    meta["signature"] = signature.verdict
    write_atomic(_sidecar(target), (json.dumps(meta, indent=2) + "\n").encode())
    reporter.note(
        f"OpenSSL {source.version}: {target} (from {origin}; signature {signature.verdict})"
    )
    return FetchedSource(source.version, target, source.sha256, origin, signature.verdict)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _from_cache(
    source: Source, target: Path, urls: Sequence[str], check: _Checker
) -> FetchedSource | None:
    reporter = check.reporter
    sidecar = _sidecar(target)
    if not target.exists():
        sidecar.unlink(missing_ok=True)
        return None
    got = sha256_file(target)
    if got != source.sha256:
        reporter.note(
            f"cache {target}: sha256 {got}, want {source.sha256}; deleting and fetching again"
        )
        target.unlink()
        sidecar.unlink(missing_ok=True)
        return None
    meta = _read_sidecar(sidecar)
    if (
        meta is not None
        and meta.get("sha256") == source.sha256
        and trusted(meta["signature"], check.allow_unknown)
    ):
        return FetchedSource(
            source.version, target, source.sha256, meta["origin"], meta["signature"]
        )
    # Right bytes, no record that can stand: placed by hand (the documented remedy), an
    # interrupted run, a bundle's, or a verdict that may have changed since (a key added).
    # The sha256 pin makes the file acceptable; check its signature anew.
    reporter.note(f"cache {target}: sha256 matches; checking its signature")
    asc_urls = [signature_path(target).as_uri()] + [u + ".asc" for u in urls]
    try:
        signature = check(target, asc_urls)
    except UnknownSigner as exc:  # the bytes are right: keep them for a run that allows it
        raise SourceError(f"OpenSSL {source.version} ({target}): {exc.reason}") from exc
    except Refused as exc:
        reporter.note(f"{exc}; deleting the cached file")
        target.unlink()
        sidecar.unlink(missing_ok=True)
        signature_path(target).unlink(missing_ok=True)
        return None
    origin = meta["origin"] if meta is not None else f"cache (found at {target})"
    return _record(source, target, origin, signature, reporter)


def _read_sidecar(path: Path) -> dict[str, str] | None:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    keys = ("sha256", "origin", "signature")
    if not isinstance(meta, dict) or not all(isinstance(meta.get(k), str) for k in keys):
        return None
    return {k: meta[k] for k in keys}


# --- the final error -------------------------------------------------------------------


def _all_failed(
    source: Source, target: Path, mirror: str | None, failures: list[tuple[str, str]]
) -> str:
    lines = [f"cannot fetch OpenSSL {source.version} (sha256 {source.sha256}):"]
    lines += [f"  {url}: {why}" for url, why in failures] or ["  (no URL to try)"]
    lines.append(
        f"To fix: download openssl-{source.version}.tar.gz with that sha256 and place it at "
        f"{target}, then run again"
    )
    if source.debian_orig and not mirror:
        lines.append(
            f"  or set {ENV_VAR} to a Debian mirror (the URL of the directory holding pool/): "
            "none was found in this host's apt sources"
        )
    elif source.debian_orig:
        lines.append(f"  or set {ENV_VAR} to another Debian mirror (the directory holding pool/)")
    return "\n".join(lines)


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "fips-reload-matrix"

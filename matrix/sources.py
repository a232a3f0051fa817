"""Fetch, verify (sha256 pin + upstream's OpenPGP signature) and cache OpenSSL tarballs.

The sha256 pin in the matrix file is what makes a tarball acceptable; the signature
is checked as well and reported, never silently assumed.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from matrix.definition import Source
from matrix.errors import SourceError
from matrix.mirror import ENV_VAR

DEFAULT_KEYRING = Path(__file__).resolve().parent / "keys" / "openssl-release-keys.asc"
MAX_TARBALL_BYTES = 512 * 2**20  # 3.x tarballs are ~15-55 MB; stop a runaway server
MAX_SIGNATURE_BYTES = 64 * 2**10
CHUNK = 2**20

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class FetchedSource:
    version: str
    path: Path
    sha256: str
    origin: str  # the URL it came from, or where it was found
    signature: str  # "verified: <signer>" or "unavailable: <why>"


class _Refused(Exception):
    """One candidate failed; `reason` goes into the final error, str() into the log."""

    def __init__(self, reason: str, log_line: str | None = None) -> None:
        super().__init__(log_line or reason)
        self.reason = reason


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
    log: Log = _quiet,
    timeout: float = 30,
    keyring: Path = DEFAULT_KEYRING,
) -> FetchedSource:
    target = cache_path(source, cache_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    urls = candidate_urls(source, mirror)
    cached = _from_cache(source, target, urls, keyring, timeout, log)
    if cached is not None:
        return cached
    failures: list[tuple[str, str]] = []
    for url in urls:
        log(f"fetching {url}")
        try:
            tmp = _download(url, target.parent, source.sha256, timeout)
        except _Refused as exc:
            log(str(exc))
            failures.append((url, exc.reason))
            continue
        try:
            asc_urls = [u + ".asc" for u in (url, *(u for u in urls if u != url))]
            signature = _signature(tmp, asc_urls, keyring, timeout, log)
        except _Refused as exc:
            tmp.unlink(missing_ok=True)
            log(str(exc))
            failures.append((url, exc.reason))
            continue
        tmp.chmod(0o644)  # mkstemp makes 0600; the tarball is public data
        os.replace(tmp, target)
        return _record(source, target, url, signature, log)
    raise SourceError(_all_failed(source, target, mirror, failures))


# --- cache -----------------------------------------------------------------------------


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".json")


def _record(source: Source, target: Path, origin: str, signature: str, log: Log) -> FetchedSource:
    meta = {"version": source.version, "sha256": source.sha256, "origin": origin}
    meta["signature"] = signature
    _write_atomic(_sidecar(target), (json.dumps(meta, indent=2) + "\n").encode())
    log(f"OpenSSL {source.version}: {target} (from {origin}; signature {signature})")
    return FetchedSource(source.version, target, source.sha256, origin, signature)


def _from_cache(
    source: Source, target: Path, urls: Sequence[str], keyring: Path, timeout: float, log: Log
) -> FetchedSource | None:
    sidecar = _sidecar(target)
    if not target.exists():
        sidecar.unlink(missing_ok=True)
        return None
    got = _sha256_file(target)
    if got != source.sha256:
        log(f"cache {target}: sha256 {got}, want {source.sha256}; deleting and fetching again")
        target.unlink()
        sidecar.unlink(missing_ok=True)
        return None
    meta = _read_sidecar(sidecar)
    if meta is not None and meta.get("sha256") == source.sha256:
        return FetchedSource(
            source.version, target, source.sha256, meta["origin"], meta["signature"]
        )
    # Right bytes, no valid record: placed by hand (the documented remedy) or an
    # interrupted run. The sha256 pin makes the file acceptable; check its signature anew.
    log(f"cache {target}: sha256 matches but {sidecar.name} is missing or corrupt; rechecking")
    asc_urls = [target.with_name(target.name + ".asc").as_uri()] + [u + ".asc" for u in urls]
    try:
        signature = _signature(target, asc_urls, keyring, timeout, log)
    except _Refused as exc:
        log(f"{exc}; deleting the cached file")
        target.unlink()
        sidecar.unlink(missing_ok=True)
        return None
    return _record(source, target, f"cache (found at {target})", signature, log)


def _read_sidecar(path: Path) -> dict[str, str] | None:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    keys = ("sha256", "origin", "signature")
    if not isinstance(meta, dict) or not all(isinstance(meta.get(k), str) for k in keys):
        return None
    return {k: meta[k] for k in keys}


def _write_atomic(path: Path, data: bytes) -> None:
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(name, 0o644)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


# --- download --------------------------------------------------------------------------


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        if isinstance(exc.reason, TimeoutError):
            return f"timed out after {timeout:g} s"
        return str(exc.reason)
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g} s"
    return str(exc) or type(exc).__name__


_NET_ERRORS = (urllib.error.URLError, OSError, http.client.HTTPException, ValueError)


def _download(url: str, dest_dir: Path, want: str, timeout: float) -> Path:
    """Stream `url` into a temp file in `dest_dir`, hashing as it goes; keep it only if
    the sha256 matches."""
    fd, name = tempfile.mkstemp(dir=dest_dir, prefix=".download-", suffix=".part")
    tmp = Path(name)
    try:
        h = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                while chunk := resp.read(CHUNK):
                    size += len(chunk)
                    if size > MAX_TARBALL_BYTES:
                        raise _Refused(f"larger than {MAX_TARBALL_BYTES} bytes", f"{url}: too big")
                    h.update(chunk)
                    out.write(chunk)
        except _NET_ERRORS as exc:
            why = _describe(exc, timeout)
            raise _Refused(why, f"{url}: {why}") from exc
        got = h.hexdigest()
        if got != want:
            raise _Refused(
                f"sha256 mismatch: got {got}, want {want}",
                f"sha256 mismatch from {url}: got {got}, want {want}",
            )
        return tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fetch_small(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data: bytes = resp.read(MAX_SIGNATURE_BYTES + 1)
    except _NET_ERRORS as exc:
        raise _Refused(_describe(exc, timeout)) from exc
    if len(data) > MAX_SIGNATURE_BYTES:
        raise _Refused("too large for a signature")
    return data


# --- signature -------------------------------------------------------------------------


def _signature(data: Path, asc_urls: Sequence[str], keyring: Path, timeout: float, log: Log) -> str:
    """'verified: ...' or 'unavailable: ...'; raises _Refused on a BAD signature."""
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        return "unavailable: gpgv is not installed (apt-get install gpgv)"
    if not keyring.is_file():
        return f"unavailable: keyring {keyring} not found"
    misses = []
    for asc_url in asc_urls:
        try:
            sig = _fetch_small(asc_url, timeout)
        except _Refused as exc:
            misses.append(f"{asc_url}: {exc.reason}")
            continue
        log(f"checking signature {asc_url}")
        return _gpgv(gpgv, keyring, sig, data, asc_url)
    for miss in misses:
        log(f"no signature: {miss}")
    return f"unavailable: no .asc signature found beside any of {len(asc_urls)} source(s)"


def _gpgv(gpgv: str, keyring: Path, sig: bytes, data: Path, asc_url: str) -> str:
    with tempfile.TemporaryDirectory(prefix="fips-matrix-gpgv-") as home:
        ring = Path(home) / "keyring.gpg"
        raw = keyring.read_bytes()
        try:
            ring.write_bytes(dearmor(raw.decode("ascii")) if b"-----BEGIN PGP" in raw else raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return f"unavailable: keyring {keyring} is unreadable ({exc})"
        sig_path = Path(home) / "tarball.asc"
        sig_path.write_bytes(sig)
        cmd = [gpgv, "--homedir", home, "--status-fd", "1", "--keyring", str(ring)]
        try:
            proc = subprocess.run(
                [*cmd, str(sig_path), str(data)], capture_output=True, text=True, timeout=300
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"unavailable: gpgv failed to run ({exc})"
    return _verdict(proc.stdout, proc.stderr, asc_url, keyring)


def _verdict(status: str, stderr: str, asc_url: str, keyring: Path) -> str:
    """Read gpgv's machine-readable --status-fd lines (see gnupg's doc/DETAILS)."""
    rows = [line.split(" ", 3)[1:] for line in status.splitlines() if line.startswith("[GNUPG:] ")]
    by_kind: dict[str, list[str]] = {}
    for row in rows:
        if row:
            by_kind.setdefault(row[0], row[1:])
    for bad in ("BADSIG", "REVKEYSIG"):
        if bad in by_kind:
            who = " ".join(by_kind[bad])
            what = "BAD signature" if bad == "BADSIG" else "signature by a REVOKED key"
            raise _Refused(f"{what} ({asc_url}: {who})", f"{what} from {asc_url}: {who}")
    for good, note in (
        ("GOODSIG", ""),
        ("EXPKEYSIG", ", key now expired"),
        ("EXPSIG", ", signature now expired"),
    ):
        if good in by_kind:
            keyid, *uid = by_kind[good] + [""]
            return f"verified: {' '.join(uid).strip()} (key {keyid}{note})"
    if "NO_PUBKEY" in by_kind or "ERRSIG" in by_kind:
        keyid = (by_kind.get("NO_PUBKEY") or by_kind.get("ERRSIG") or ["?"])[0]
        return f"unavailable: signed by key {keyid}, which is not in {keyring.name}"
    tail = stderr.strip().splitlines()[-1:] or ["no verdict"]
    return f"unavailable: gpgv gave no verdict ({tail[0]})"


def dearmor(text: str) -> bytes:
    """Binary OpenPGP keyring from ASCII-armored public key blocks (gpgv wants binary)."""
    out = bytearray()
    lines = [line.strip() for line in text.splitlines()]
    i, blocks = 0, 0
    while i < len(lines):
        if lines[i] != "-----BEGIN PGP PUBLIC KEY BLOCK-----":
            i += 1
            continue
        i += 1
        while i < len(lines) and lines[i]:  # armor headers end at the first blank line
            i += 1
        body, crc = [], None
        while i < len(lines) and not lines[i].startswith("-----END PGP"):
            if lines[i].startswith("="):
                crc = lines[i][1:]
            elif lines[i]:
                body.append(lines[i])
            i += 1
        if i == len(lines):
            raise ValueError("armor block without its END line")
        packet = base64.b64decode("".join(body), validate=True)
        if crc is not None and base64.b64decode(crc) != _crc24(packet).to_bytes(3, "big"):
            raise ValueError("armor checksum mismatch")
        out += packet
        blocks += 1
    if not blocks:
        raise ValueError("no PGP PUBLIC KEY BLOCK")
    return bytes(out)


def _crc24(data: bytes) -> int:
    crc = 0xB704CE  # RFC 4880 section 6.1
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


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

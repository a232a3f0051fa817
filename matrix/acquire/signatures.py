"""OpenSSL's OpenPGP signatures on its tarballs, checked with gpgv against the release keys
the package ships. A signature is reported, never silently assumed. Its states, as results
record them ("STATE: detail"):

- verified: a good signature by a shipped key;
- no signature published: no .asc beside any URL of the tarball;
- signature present but key unknown: signed by a key the shipped keyring lacks; refused
  (UnknownSigner) unless the user allows it (--allow-unknown-signer), then built on the
  sha256 pin alone;
- bad signature: refused, always (also a signature by a revoked key);
- not checked: gpgv or the keyring is missing here, or gpgv gave no verdict."""

from __future__ import annotations

import base64
import shutil
import subprocess
import tempfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from matrix.acquire.download import Refused, fetch_small
from matrix.progress import Reporter

VERIFIED = "verified"
UNSIGNED = "no signature published"
UNKNOWN_KEY = "signature present but key unknown"
BAD = "bad signature"
NOT_CHECKED = "not checked"
ALLOW_OPTION = "--allow-unknown-signer"


class UnknownSigner(Refused):
    """A signature by a key the shipped keyring does not hold, not allowed by the user."""


@dataclass(frozen=True)
class Signature:
    verdict: str  # "STATE: detail", one of the states above
    asc: bytes | None = None  # the signature checked, to keep beside the tarball


def trusted(verdict: str, allow_unknown: bool) -> bool:
    """Whether a recorded verdict may stand without checking again: only the final ones (a
    key may since have been added, gpgv installed)."""
    final = (f"{VERIFIED}:", f"{UNSIGNED}:") + ((f"{UNKNOWN_KEY}:",) if allow_unknown else ())
    return verdict.startswith(final)


def check_signature(
    data: Path,
    asc_urls: Sequence[str],
    keyring: Path,
    timeout: float,
    reporter: Reporter,
    allow_unknown: bool = False,
    trusted: Collection[str] = (),
) -> Signature:
    """The signature's state; raises Refused on a bad one, UnknownSigner on one by a key
    the keyring lacks unless allow_unknown."""
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        return Signature(f"{NOT_CHECKED}: gpgv is not installed (apt-get install gpgv)")
    if not keyring.is_file():
        return Signature(f"{NOT_CHECKED}: keyring {keyring} not found")
    misses = []
    for asc_url in asc_urls:
        try:
            sig = fetch_small(asc_url, timeout, trusted)
        except Refused as exc:
            misses.append(f"{asc_url}: {exc.reason}")
            continue
        reporter.note(f"checking signature {asc_url}")
        verdict = _gpgv(gpgv, keyring, sig, data, asc_url)
        if verdict.startswith(f"{UNKNOWN_KEY}:"):
            if not allow_unknown:
                why = f"{verdict}; to build it on its sha256 pin alone, run with {ALLOW_OPTION}"
                raise UnknownSigner(why, f"{asc_url}: {why}")
            verdict += f" (allowed by {ALLOW_OPTION}: built on the sha256 pin alone)"
        return Signature(verdict, sig)
    for miss in misses:
        reporter.note(f"no signature: {miss}")
    return Signature(f"{UNSIGNED}: no .asc beside any of {len(asc_urls)} source(s)")


def _gpgv(gpgv: str, keyring: Path, sig: bytes, data: Path, asc_url: str) -> str:
    with tempfile.TemporaryDirectory(prefix="fips-matrix-gpgv-") as home:
        ring = Path(home) / "keyring.gpg"
        raw = keyring.read_bytes()
        try:
            ring.write_bytes(dearmor(raw.decode("ascii")) if b"-----BEGIN PGP" in raw else raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return f"{NOT_CHECKED}: keyring {keyring} is unreadable ({exc})"
        sig_path = Path(home) / "tarball.asc"
        sig_path.write_bytes(sig)
        cmd = [gpgv, "--homedir", home, "--status-fd", "1", "--keyring", str(ring)]
        try:
            proc = subprocess.run(
                [*cmd, str(sig_path), str(data)], capture_output=True, timeout=300
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{NOT_CHECKED}: gpgv failed to run ({exc})"
    # Status lines may carry binary data (4.0's signatures hold a notation of raw bytes).
    status, errors = (out.decode("utf-8", "replace") for out in (proc.stdout, proc.stderr))
    return _verdict(status, errors, asc_url, keyring)


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
            what = BAD if bad == "BADSIG" else f"{BAD} (by a REVOKED key)"
            raise Refused(f"{what}: {asc_url}: {who}", f"{what} from {asc_url}: {who}")
    for good, note in (
        ("GOODSIG", ""),
        ("EXPKEYSIG", ", key now expired"),
        ("EXPSIG", ", signature now expired"),
    ):
        if good in by_kind:
            keyid, *uid = by_kind[good] + [""]
            return f"{VERIFIED}: {' '.join(uid).strip()} (key {keyid}{note})"
    if "NO_PUBKEY" in by_kind or "ERRSIG" in by_kind:
        keyid = (by_kind.get("NO_PUBKEY") or by_kind.get("ERRSIG") or ["?"])[0]
        return f"{UNKNOWN_KEY}: signed by key {keyid}, which is not in {keyring.name}"
    tail = stderr.strip().splitlines()[-1:] or ["no verdict"]
    return f"{NOT_CHECKED}: gpgv gave no verdict on {asc_url} ({tail[0]})"


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

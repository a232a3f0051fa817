"""Fetching, verifying and caching tarballs, against a server on 127.0.0.1 only."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from support.harness import Notes

from matrix import assets
from matrix.acquire import download, signatures, sources
from matrix.acquire.signatures import dearmor
from matrix.acquire.sources import cache_path, candidate_urls, fetch_source
from matrix.errors import SourceError
from matrix.model import policy
from matrix.model.types import Source

TARBALL = b"not really a tarball, but pinned all the same\n" * 500
SHA = hashlib.sha256(TARBALL).hexdigest()


@dataclass
class Server:
    base: str
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    redirects: dict[str, str] = field(default_factory=dict)  # path -> Location

    def hits(self, suffix: str) -> int:
        return sum(1 for r in self.requests if r.endswith(suffix))


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server(base="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            if self.path in state.redirects:
                self.send_response(302)
                self.send_header("Location", state.redirects[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def source(*urls: str, sha: str = SHA, debian_orig: bool = False) -> Source:
    return Source(version="3.9.9", sha256=sha, urls=urls, debian_orig=debian_orig)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/gone.tar.gz"


def fetch(
    src: Source, cache: Path, logs: list[str] | None = None, keyring: Path = assets.KEYRING
) -> sources.FetchedSource:
    return fetch_source(src, cache, None, Notes(logs), timeout=5, keyring=keyring)


def test_candidate_urls_order() -> None:
    src = source("https://a.test/x.tar.gz", "https://b.test/x.tar.gz", debian_orig=True)
    assert candidate_urls(src, "http://mirror.test/debian/") == [
        "https://a.test/x.tar.gz",
        "https://b.test/x.tar.gz",
        "http://mirror.test/debian/pool/main/o/openssl/openssl_3.9.9.orig.tar.gz",
    ]
    assert candidate_urls(src, None) == list(src.urls)
    assert candidate_urls(source("https://a.test/x"), "http://m.test/debian") == [
        "https://a.test/x"
    ]


def test_404_then_good_then_cached(server: Server, tmp_path: Path) -> None:
    server.files["/good.tar.gz"] = TARBALL
    src = source(f"{server.base}/missing.tar.gz", f"{server.base}/good.tar.gz")
    logs: list[str] = []
    got = fetch(src, tmp_path, logs)
    assert got.origin == f"{server.base}/good.tar.gz"
    assert got.path == cache_path(src, tmp_path)
    assert got.path.name == f"openssl-3.9.9-{SHA[:12]}.tar.gz"
    assert got.path.read_bytes() == TARBALL and got.sha256 == SHA
    # no .asc served (or, without gpgv, nothing checked)
    assert got.signature.startswith(("no signature published: ", "not checked: gpgv"))
    assert any("missing.tar.gz: HTTP 404" in line for line in logs)
    meta = json.loads(got.path.with_name(got.path.name + ".json").read_text())
    assert meta["origin"] == got.origin and meta["sha256"] == SHA
    assert meta["signature"] == got.signature
    assert sorted(p.name for p in got.path.parent.iterdir()) == [
        got.path.name,
        got.path.name + ".json",
    ]  # no temp files left behind

    before = len(server.requests)
    again = fetch(src, tmp_path)
    assert len(server.requests) == before  # downloaded nothing
    assert again == got


def test_debian_orig_from_mirror(server: Server, tmp_path: Path) -> None:
    server.files["/debian/pool/main/o/openssl/openssl_3.9.9.orig.tar.gz"] = TARBALL
    src = source(f"{server.base}/upstream.tar.gz", debian_orig=True)
    got = fetch_source(src, tmp_path, f"{server.base}/debian", timeout=5)
    assert got.origin.endswith("/debian/pool/main/o/openssl/openssl_3.9.9.orig.tar.gz")


def test_mismatch_is_refused_and_not_cached(server: Server, tmp_path: Path) -> None:
    server.files["/evil.tar.gz"] = TARBALL + b"tampered"
    bad_sha = hashlib.sha256(TARBALL + b"tampered").hexdigest()
    src = source(f"{server.base}/evil.tar.gz")
    logs: list[str] = []
    with pytest.raises(SourceError, match="sha256 mismatch"):
        fetch(src, tmp_path, logs)
    assert f"sha256 mismatch from {server.base}/evil.tar.gz: got {bad_sha}, want {SHA}" in logs
    assert list((tmp_path / "sources").iterdir()) == []


def test_mismatch_then_good_url(server: Server, tmp_path: Path) -> None:
    server.files["/evil.tar.gz"] = b"x" * 100
    server.files["/good.tar.gz"] = TARBALL
    got = fetch(source(f"{server.base}/evil.tar.gz", f"{server.base}/good.tar.gz"), tmp_path)
    assert got.origin.endswith("/good.tar.gz") and got.path.read_bytes() == TARBALL


def test_all_urls_fail_names_each(server: Server, tmp_path: Path) -> None:
    server.files["/wrong.tar.gz"] = b"wrong"
    gone = closed_port_url()
    urls = (f"{server.base}/missing.tar.gz", gone, f"{server.base}/wrong.tar.gz")
    src = source(*urls, debian_orig=True)
    with pytest.raises(SourceError) as info:
        fetch(src, tmp_path)
    lines = str(info.value).splitlines()
    assert f"  {urls[0]}: HTTP 404 Not Found" in lines
    assert any(line.startswith(f"  {gone}: ") and "refused" in line.lower() for line in lines)
    assert any(line.startswith(f"  {urls[2]}: sha256 mismatch") for line in lines)
    assert str(cache_path(src, tmp_path)) in str(info.value)  # says where to put it
    assert "FIPS_MATRIX_DEBIAN_MIRROR" in str(info.value)  # no mirror was known


def test_oversized_download_is_refused(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(download, "MAX_TARBALL_BYTES", 1000)
    server.files["/big.tar.gz"] = TARBALL
    with pytest.raises(SourceError, match="larger than 1000 bytes"):
        fetch(source(f"{server.base}/big.tar.gz"), tmp_path)


def test_corrupted_cache_is_refetched(server: Server, tmp_path: Path) -> None:
    server.files["/good.tar.gz"] = TARBALL
    src = source(f"{server.base}/good.tar.gz")
    first = fetch(src, tmp_path)
    first.path.write_bytes(TARBALL[:-1] + b"!")
    logs: list[str] = []
    again = fetch(src, tmp_path, logs)
    assert server.hits("/good.tar.gz") == 2
    assert again.path.read_bytes() == TARBALL
    assert any("deleting and fetching again" in line for line in logs)


def test_tarball_placed_by_hand_is_used(tmp_path: Path) -> None:
    src = source(closed_port_url())
    placed = cache_path(src, tmp_path)
    placed.parent.mkdir(parents=True)
    placed.write_bytes(TARBALL)
    got = fetch(src, tmp_path)
    assert got.path == placed and "cache" in got.origin
    assert got.signature.startswith(("no signature published: ", "not checked: gpgv"))
    assert json.loads(placed.with_name(placed.name + ".json").read_text())["sha256"] == SHA


def test_corrupt_sidecar_is_rebuilt_without_download(server: Server, tmp_path: Path) -> None:
    server.files["/good.tar.gz"] = TARBALL
    src = source(f"{server.base}/good.tar.gz")
    got = fetch(src, tmp_path)
    sidecar = got.path.with_name(got.path.name + ".json")
    sidecar.write_text("{not json")
    again = fetch(src, tmp_path)
    assert server.hits("/good.tar.gz") == 1
    assert json.loads(sidecar.read_text())["sha256"] == SHA
    assert again.path.read_bytes() == TARBALL


def test_no_gpgv_means_unavailable(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.files["/good.tar.gz"] = TARBALL
    server.files["/good.tar.gz.asc"] = b"whatever"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    got = fetch(source(f"{server.base}/good.tar.gz"), tmp_path)
    assert got.signature == "not checked: gpgv is not installed (apt-get install gpgv)"


# --- signatures with a throwaway key ----------------------------------------------------


@dataclass
class Signer:
    keyring: Path  # armored public key
    binary_export: bytes
    sign: Callable[[bytes], bytes]


@pytest.fixture(scope="module")
def signer() -> Iterator[Signer]:
    if not (shutil.which("gpg") and shutil.which("gpgv") and shutil.which("gpgconf")):
        pytest.skip("gpg, gpgv and gpgconf are needed")
    home = tempfile.mkdtemp(prefix="gpgt-")  # short: gpg-agent's socket path has a limit
    env = {**os.environ, "GNUPGHOME": home}

    def gpg(*args: str, data: bytes = b"") -> bytes:
        cmd = ["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""]
        return subprocess.run(
            [*cmd, *args], input=data, env=env, capture_output=True, check=True
        ).stdout

    try:
        gpg("--quick-gen-key", "Throwaway <throwaway@example.invalid>", "ed25519", "sign", "never")
        keyring = Path(home) / "throwaway.asc"
        keyring.write_bytes(gpg("--armor", "--export"))
        yield Signer(keyring, gpg("--export"), lambda d: gpg("--armor", "--detach-sign", data=d))
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, check=False)
        shutil.rmtree(home, ignore_errors=True)


def test_dearmor_matches_gpg_export(signer: Signer) -> None:
    assert dearmor(signer.keyring.read_text()) == signer.binary_export


def test_dearmor_rejects_damage(signer: Signer) -> None:
    text = signer.keyring.read_text()
    crc_line = next(line for line in text.splitlines() if line.startswith("="))
    flipped = "=" + ("AAAA" if crc_line[1:] != "AAAA" else "BBBB")
    with pytest.raises(ValueError, match="checksum"):
        dearmor(text.replace(crc_line, flipped))
    with pytest.raises(ValueError, match="no PGP"):
        dearmor("hello")


def test_bundled_keyring_dearmors() -> None:
    raw = dearmor(assets.KEYRING.read_text())
    assert raw[0] & 0x80  # an OpenPGP packet header
    assert len(raw) > 10_000  # several keys


def test_good_signature_is_verified(server: Server, tmp_path: Path, signer: Signer) -> None:
    server.files["/good.tar.gz"] = TARBALL
    server.files["/good.tar.gz.asc"] = signer.sign(TARBALL)
    got = fetch(source(f"{server.base}/good.tar.gz"), tmp_path, keyring=signer.keyring)
    assert got.signature.startswith("verified: Throwaway <throwaway@example.invalid> (key ")


def test_signature_found_beside_another_url(server: Server, tmp_path: Path, signer: Signer) -> None:
    server.files["/a/x.tar.gz"] = TARBALL
    server.files["/b/x.tar.gz.asc"] = signer.sign(TARBALL)
    src = source(f"{server.base}/a/x.tar.gz", f"{server.base}/b/x.tar.gz")
    got = fetch(src, tmp_path, keyring=signer.keyring)
    assert got.signature.startswith("verified: Throwaway")
    assert server.requests.index("/a/x.tar.gz.asc") < server.requests.index("/b/x.tar.gz.asc")


def test_bad_signature_is_refused(server: Server, tmp_path: Path, signer: Signer) -> None:
    server.files["/good.tar.gz"] = TARBALL
    server.files["/good.tar.gz.asc"] = signer.sign(b"something else")
    src = source(f"{server.base}/good.tar.gz")
    with pytest.raises(SourceError, match="bad signature"):
        fetch(src, tmp_path, keyring=signer.keyring)
    assert list((tmp_path / "sources").iterdir()) == []


def test_bad_signature_then_good_url(server: Server, tmp_path: Path, signer: Signer) -> None:
    for name, signed in (("/one.tar.gz", b"other"), ("/two.tar.gz", TARBALL)):
        server.files[name] = TARBALL
        server.files[name + ".asc"] = signer.sign(signed)
    src = source(f"{server.base}/one.tar.gz", f"{server.base}/two.tar.gz")
    got = fetch(src, tmp_path, keyring=signer.keyring)
    assert got.origin.endswith("/two.tar.gz") and got.signature.startswith("verified: ")


def test_signer_missing_from_keyring_is_refused_unless_allowed(
    server: Server, tmp_path: Path, signer: Signer
) -> None:
    server.files["/good.tar.gz"] = TARBALL
    server.files["/good.tar.gz.asc"] = signer.sign(TARBALL)
    src = source(f"{server.base}/good.tar.gz")
    with pytest.raises(SourceError) as refused:  # bundled OpenSSL keys only
        fetch(src, tmp_path)
    assert "signature present but key unknown: signed by key " in str(refused.value)
    assert "openssl-release-keys.asc" in str(refused.value)
    assert "--allow-unknown-signer" in str(refused.value)
    assert list((tmp_path / "sources").iterdir()) == []
    got = fetch_source(src, tmp_path, None, Notes(), timeout=5, allow_unknown_signer=True)
    assert got.signature.startswith("signature present but key unknown: signed by key ")
    assert "allowed by --allow-unknown-signer: built on the sha256 pin alone" in got.signature
    # the allowed verdict is not taken from the cache by a run that does not allow it
    with pytest.raises(SourceError, match="key unknown"):
        fetch(src, tmp_path)
    assert got.path.read_bytes() == TARBALL  # the right bytes are kept all the same


def test_the_signature_is_kept_and_an_old_verdict_is_checked_again(
    server: Server, tmp_path: Path, signer: Signer
) -> None:
    server.files["/good.tar.gz"] = TARBALL
    server.files["/good.tar.gz.asc"] = signer.sign(TARBALL)
    src = source(f"{server.base}/good.tar.gz")
    got = fetch(src, tmp_path, keyring=signer.keyring)
    asc = got.path.with_name(got.path.name + ".asc")
    assert asc.read_bytes() == server.files["/good.tar.gz.asc"]
    # a verdict of an older version ("unavailable: ...") is not trusted: checked again, from
    # the kept signature, with no download
    sidecar = got.path.with_name(got.path.name + ".json")
    meta = json.loads(sidecar.read_text())
    meta["signature"] = "unavailable: signed by key 64ED7B1DCCE71CB2, which is not in x.asc"
    sidecar.write_text(json.dumps(meta))
    del server.files["/good.tar.gz.asc"]
    again = fetch(src, tmp_path, keyring=signer.keyring)
    assert again.signature.startswith("verified: Throwaway")
    assert server.hits("/good.tar.gz") == 1


def own_key_ids(keyring: bytes) -> set[str]:
    """Key ids of the OpenPGP v4 public keys and subkeys in a binary keyring: the last 8
    bytes of SHA-1 over 0x99, the packet body's length and the body (RFC 4880 12.2)."""
    ids, i = set(), 0
    while i < len(keyring):
        tag_byte = keyring[i]
        assert tag_byte & 0x80, f"not an OpenPGP packet at {i}"
        if tag_byte & 0x40:  # new format
            tag, first = tag_byte & 0x3F, keyring[i + 1]
            if first < 192:
                length, head = first, 2
            elif first < 224:
                length, head = ((first - 192) << 8) + keyring[i + 2] + 192, 3
            else:
                length, head = int.from_bytes(keyring[i + 2 : i + 6], "big"), 6
        else:
            tag, kind = (tag_byte >> 2) & 0x0F, tag_byte & 3
            size = {0: 1, 1: 2, 2: 4}[kind]
            length, head = int.from_bytes(keyring[i + 1 : i + 1 + size], "big"), 1 + size
        body = keyring[i + head : i + head + length]
        if tag in (6, 14) and body[0] == 4:  # public key, public subkey, version 4
            digest = hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body).hexdigest()
            ids.add(digest[-16:].upper())
        i += head + length
    return ids


def test_the_shipped_keyring_holds_the_key_that_signs_4_0() -> None:
    ids = own_key_ids(dearmor(assets.KEYRING.read_text()))
    assert "64ED7B1DCCE71CB2" in ids  # the subkey that signed openssl-4.0.2.tar.gz
    assert "216094DFD0CB81EF" in ids  # the one that signs 3.0.20, 3.5.7 and 3.6.3


def test_a_url_that_times_out_is_left_for_the_next(server: Server, tmp_path: Path) -> None:
    silent = socket.socket()  # accepts connections, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    try:
        hung = f"http://127.0.0.1:{silent.getsockname()[1]}/hung.tar.gz"
        server.files["/good.tar.gz"] = TARBALL
        logs: list[str] = []
        src = source(hung, f"{server.base}/good.tar.gz")
        got = fetch_source(src, tmp_path, None, Notes(logs), timeout=0.5)
        assert got.origin == f"{server.base}/good.tar.gz"
        assert any("timed out" in line.lower() for line in logs), logs
    finally:
        silent.close()


def test_binary_status_lines_of_gpgv_are_read(tmp_path: Path) -> None:
    """4.0's signatures carry a notation of raw bytes, which gpgv prints as it is."""
    fake = tmp_path / "gpgv"
    fake.write_bytes(
        b"#!/bin/sh\nprintf '[GNUPG:] GOODSIG 64ED7B1DCCE71CB2 OpenSSL <openssl@openssl.org>\\n"
        b"[GNUPG:] NOTATION_DATA \\254\\377\\n'\n"
    )
    fake.chmod(0o755)
    data = tmp_path / "x.tar.gz"
    data.write_bytes(TARBALL)
    verdict = signatures._gpgv(str(fake), assets.KEYRING, b"sig", data, "file:///x.asc")
    assert verdict == "verified: OpenSSL <openssl@openssl.org> (key 64ED7B1DCCE71CB2)"


def refusal(src: Source, mirror: str | None = None) -> str:
    with pytest.raises(SourceError) as refused:
        fetch_source(src, Path(tempfile.mkdtemp()), mirror, Notes(), timeout=5)
    return str(refused.value)


@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("{base}/openssl.tar.gz", "a loopback address (this machine): refused"),
        ("http://localhost:{port}/openssl.tar.gz", "a loopback address (this machine): refused"),
        ("http://[::ffff:127.0.0.1]:{port}/openssl.tar.gz", "a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "a link-local address (cloud metadata"),
    ],
)
def test_a_redirect_to_this_machine_or_its_link_is_not_followed(
    server: Server, location: str, why: str
) -> None:
    """The matrix file's check reads the URL's literal host; a server it names redirected the
    download to 127.0.0.1, and it was followed."""
    port = server.base.rsplit(":", 1)[1]
    server.files["/openssl.tar.gz"] = TARBALL
    target = location.format(base=server.base, port=port)
    server.redirects["/r.tar.gz"] = target
    text = refusal(source(f"{server.base}/r.tar.gz"))
    assert f"redirected to {target}: {why}" in text, text
    assert server.hits("/openssl.tar.gz") == 0  # never reached


def test_a_name_that_resolves_to_this_machine_is_refused(server: Server) -> None:
    """This machine's own name (/etc/hosts: 127.0.0.1 here, 127.0.1.1 on Debian, or an
    address of its own) passes the matrix file's check, which reads the literal host only:
    every address it resolves to is checked before connecting."""
    port = server.base.rsplit(":", 1)[1]
    server.files["/openssl.tar.gz"] = TARBALL
    name = socket.gethostname()
    try:
        addresses = {str(a[4][0]) for a in socket.getaddrinfo(name, None)}
    except OSError:
        pytest.skip(f"this machine's name {name} does not resolve here")
    url = f"http://{name}:{port}/openssl.tar.gz"
    assert policy.url_refusal(url) == ""  # what the matrix file's check lets through
    text = refusal(source(url))
    said = [f"{name} resolves to {a}, " for a in addresses]
    assert any(s in text for s in said), text
    assert "(this machine): refused" in text or "an address of this machine: refused" in text
    assert server.hits("/openssl.tar.gz") == 0


def test_the_mirror_of_the_users_own_configuration_may_be_on_this_machine(
    server: Server, tmp_path: Path
) -> None:
    """apt's mirror may be a cache on this machine (localhost:3142): it is the user's own
    configuration, not the matrix file's, and is reached as it is."""
    port = server.base.rsplit(":", 1)[1]
    server.files["/debian/pool/main/o/openssl/openssl_3.9.9.orig.tar.gz"] = TARBALL
    src = source(debian_orig=True)
    got = fetch_source(src, tmp_path, f"http://localhost:{port}/debian", Notes(), timeout=5)
    assert got.path.read_bytes() == TARBALL

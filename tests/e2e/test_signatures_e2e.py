"""The shipped release keys against the real tarballs on the Debian mirror (which carries
upstream's tarballs and signatures byte for byte): every version of the default matrix that
the mirror serves is verified, 4.0.2 by the key that signs 4.0."""

from __future__ import annotations

from pathlib import Path

import pytest

from matrix import assets
from matrix.acquire.mirror import debian_mirror
from matrix.acquire.sources import fetch_source
from matrix.model.definition import load_definition

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("version", "key"), [("4.0.2", "64ED7B1DCCE71CB2"), ("3.0.20", "216094DFD0CB81EF")]
)
def test_the_shipped_keys_verify_the_real_tarballs(tmp_path: Path, version: str, key: str) -> None:
    mirror = debian_mirror()
    assert mirror, "no Debian mirror in this host's apt configuration"
    source = load_definition(assets.DEFAULT_MATRIX).sources[version]
    # the mirror only: OpenSSL's own sites are not reachable from every machine
    only_mirror = type(source)(source.version, source.sha256, (), debian_orig=True)
    got = fetch_source(only_mirror, tmp_path, mirror, timeout=60)
    assert got.signature.startswith("verified: OpenSSL <openssl@openssl.org>"), got.signature
    assert f"(key {key}" in got.signature
    assert got.path.with_name(got.path.name + ".asc").is_file()  # kept for a bundle

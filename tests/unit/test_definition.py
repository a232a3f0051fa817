"""The matrix file loader: the default file, and errors that name file:line."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import pytest

from matrix.assets import DEFAULT_MATRIX
from matrix.errors import DefinitionError, MatrixError
from matrix.model.cells import expand
from matrix.model.definition import load_definition
from matrix.model.policy import dockerfile_path
from matrix.model.types import MatrixDefinition
from matrix.model.vocabulary import KNOWN_SCENARIOS, CellKind

SHA = "c80a01dfc70ece4dc21168932c37739042d404d46ccc81a5986dd75314ecda6f"

# Line numbers matter: tests below point at lines of this text.
VALID = f"""\
schema = 1
scenarios = ["ondemand-kat", "no-failure"]

[platforms.alpha]
description = "first"
dockerfile = "alpha.Dockerfile"
base_image = "debian:bookworm"
libc = "glibc"
fallback = {{ debootstrap = "bookworm" }}

[sources."3.0.20"]
sha256 = "{SHA}"
urls = ["https://example.invalid/openssl-3.0.20.tar.gz"]
debian_orig = true

[variants.default]
configure = []
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.toml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> tuple[Path, str]:
    """The error of loading the file and expanding it into cells (where its rules are
    checked), as every command does."""
    path = write(tmp_path, text)
    with pytest.raises(DefinitionError) as info:
        expand(load_definition(path))
    return path, str(info.value)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_default_file_loads() -> None:
    path = DEFAULT_MATRIX
    assert path == Path(__file__).resolve().parents[2] / "matrix" / "default.toml"
    defn = load_definition(path)
    assert defn.scenarios == KNOWN_SCENARIOS
    assert defn.digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_default_matrix_covers_what_fips_shippers_ask() -> None:
    defn = load_definition(DEFAULT_MATRIX)
    cells = expand(defn)
    built_here = {name: p for name, p in defn.platforms.items() if p.fallback is not None}
    # four glibc Debian releases and two musl versions, every one built from source
    suites = {p.fallback.debootstrap for p in built_here.values() if p.fallback}
    assert {"bullseye", "bookworm", "trixie", "sid"} <= suites
    musl = [p for p in built_here.values() if p.libc == "musl" and p.kind == CellKind.COMPILED]
    assert {p.base_image for p in musl} == {"debian:bookworm", "debian:trixie"}
    # the distributions' own providers: one cell each, nothing of ours built
    distro = [c for c in cells if c.platform.kind == CellKind.DISTRO]
    assert {c.platform.base_image for c in distro} == {"debian:trixie", "debian:sid"}
    assert all(c.source.version == "distro" for c in distro)
    # platforms no registry here can give: no fallback, so they skip here
    elsewhere = {p.base_image.split(":")[0] for p in defn.platforms.values() if p.fallback is None}
    assert {"alpine", "ubuntu", "fedora", "amazonlinux"} <= elsewhere
    # OpenSSL series, the validated releases, deferred tests and skew
    assert {"3.0.20", "3.5.7", "3.6.3", "4.0.2", "3.0.9", "3.1.2"} <= set(defn.sources)
    ids = {c.id for c in cells}
    assert "debian-12/4.0.2/deferred" in ids and "debian-12/3.6.3/deferred" not in ids
    assert "debian-12/3.5.7/fips-3.0.20" in ids and "debian-12/3.0.20/fips-3.0.20" not in ids
    for variant in defn.variants.values():
        if variant.provider is not None:
            assert variant.provider in defn.sources


def test_default_platforms_have_their_dockerfiles() -> None:
    defn = load_definition(DEFAULT_MATRIX)
    for platform in defn.platforms.values():
        found = dockerfile_path(platform, defn)
        assert found.is_file() and found.name == platform.dockerfile


def test_valid_minimal_file(tmp_path: Path) -> None:
    defn = load_definition(write(tmp_path, VALID))
    assert isinstance(defn, MatrixDefinition)
    assert defn.platforms["alpha"].description == "first"
    assert defn.variants["default"].description == ""  # optional
    assert defn.sources["3.0.20"].urls == ("https://example.invalid/openssl-3.0.20.tar.gz",)
    assert defn.scenarios == ("ondemand-kat", "no-failure")


def test_errors_are_matrix_errors() -> None:
    assert issubclass(DefinitionError, MatrixError)


def test_malformed_toml_reports_its_line(tmp_path: Path) -> None:
    text = VALID.replace('libc = "glibc"', "libc = ")
    path, msg = error_of(tmp_path, text)
    assert msg.startswith(f"{path}:{line_of(text, 'libc =')}: invalid TOML")


def test_unknown_key_reports_line_and_suggestion(tmp_path: Path) -> None:
    text = VALID.replace('libc = "glibc"', 'libc = "glibc"\nlibcc = "musl"')
    path, msg = error_of(tmp_path, text)
    assert msg.startswith(f"{path}:{line_of(text, 'libcc')}:")
    assert "unknown key 'libcc'" in msg and "did you mean 'libc'" in msg


def test_unknown_top_level_key(tmp_path: Path) -> None:
    text = VALID.replace("schema = 1", "schema = 1\nscenario = []")
    path, msg = error_of(tmp_path, text)
    assert msg.startswith(f"{path}:2:") and "'scenario'" in msg


def test_bad_sha256_reports_line(tmp_path: Path) -> None:
    text = VALID.replace(SHA, SHA.upper())
    path, msg = error_of(tmp_path, text)
    assert msg.startswith(f"{path}:{line_of(text, 'sha256 =')}:")
    assert "64 lowercase hex" in msg


def test_short_sha256(tmp_path: Path) -> None:
    text = VALID.replace(SHA, SHA[:63])
    path, msg = error_of(tmp_path, text)
    assert msg.startswith(f"{path}:{line_of(text, 'sha256 =')}:")


def test_unknown_scenario_reports_line(tmp_path: Path) -> None:
    text = VALID.replace('"no-failure"]', '"no-failure", "reload-twice"]')
    path, msg = error_of(tmp_path, text)
    assert msg.startswith(f"{path}:2:") and "'reload-twice'" in msg
    assert "leaked-ref" in msg  # lists the known ones


@pytest.mark.parametrize("value", ["[]", '["no-failure", "no-failure"]', '"no-failure"'])
def test_scenarios_non_empty_unique_list(tmp_path: Path, value: str) -> None:
    text = VALID.replace('["ondemand-kat", "no-failure"]', value)
    path, msg = error_of(tmp_path, text)
    assert msg.startswith(f"{path}:2:")


def test_bad_platform_name_reports_header_line(tmp_path: Path) -> None:
    text = VALID.replace("[platforms.alpha]", "[platforms.Alpha_1]")
    path, msg = error_of(tmp_path, text)
    assert msg.startswith(f"{path}:4:") and "'Alpha_1'" in msg


def test_bad_version_reports_header_line(tmp_path: Path) -> None:
    text = VALID.replace('[sources."3.0.20"]', '[sources."3.0"]')
    path, msg = error_of(tmp_path, text)
    assert msg.startswith(f"{path}:{line_of(text, '[sources.')}:")


def test_missing_key_reports_table_line(tmp_path: Path) -> None:
    text = VALID.replace('base_image = "debian:bookworm"\n', "")
    path, msg = error_of(tmp_path, text)
    assert msg.startswith(f"{path}:4:") and "missing key 'base_image'" in msg


def test_wrong_type_reports_line(tmp_path: Path) -> None:
    text = VALID.replace("debian_orig = true", 'debian_orig = "yes"')
    path, msg = error_of(tmp_path, text)
    assert msg.startswith(f"{path}:{line_of(text, 'debian_orig')}:")


def test_unsupported_schema(tmp_path: Path) -> None:
    path, msg = error_of(tmp_path, VALID.replace("schema = 1", "schema = 2"))
    assert msg.startswith(f"{path}:1:") and "schema = 1" in msg


@pytest.mark.parametrize("name", ["sub/alpha.Dockerfile", "alpha", "../x.Dockerfile"])
def test_dockerfile_must_be_bare_name(tmp_path: Path, name: str) -> None:
    text = VALID.replace("alpha.Dockerfile", name)
    path, msg = error_of(tmp_path, text)
    assert msg.startswith(f"{path}:6:")


def test_unknown_libc(tmp_path: Path) -> None:
    path, msg = error_of(tmp_path, VALID.replace('"glibc"', '"uclibc"'))
    assert msg.startswith(f"{path}:8:") and "glibc, musl" in msg


def test_unknown_key_in_inline_fallback(tmp_path: Path) -> None:
    text = VALID.replace("debootstrap = ", "debootstrapp = ")
    path, msg = error_of(tmp_path, text)
    assert msg.startswith(f"{path}:9:") and "'debootstrapp'" in msg


def test_source_needs_somewhere_to_fetch(tmp_path: Path) -> None:
    text = VALID.replace("debian_orig = true", "debian_orig = false").replace(
        'urls = ["https://example.invalid/openssl-3.0.20.tar.gz"]', "urls = []"
    )
    path, msg = error_of(tmp_path, text)
    assert msg.startswith(f"{path}:11:") and "nowhere to fetch" in msg


def test_configure_entries_are_single_words(tmp_path: Path) -> None:
    text = VALID.replace("configure = []", 'configure = ["no-pinshared no-asm"]')
    path, msg = error_of(tmp_path, text)
    assert msg.startswith(f"{path}:{line_of(text, 'configure')}:")


def test_second_rule_that_matches_nothing_reports_its_line(tmp_path: Path) -> None:
    text = VALID + (
        '\n[[exclude]]\nplatform = "alpha"\n\n[[exclude]]\nplatform = "alpah"\nreason = "typo"\n'
    )
    path, msg = error_of(tmp_path, text)
    second = [i for i, line in enumerate(text.splitlines(), 1) if line == "[[exclude]]"][1]
    assert msg.startswith(f"{path}:{second}:")
    assert "platform = 'alpah' matches none of alpha" in msg


def test_rule_naming_nothing(tmp_path: Path) -> None:
    text = VALID + '\n[[include]]\nreason = "?"\n'
    path, msg = error_of(tmp_path, text)
    assert msg.startswith(f"{path}:{line_of(text, '[[include]]')}:")


def test_rule_unknown_key(tmp_path: Path) -> None:
    text = VALID + '\n[[exclude]]\nplatfrom = "alpha"\n'
    path, msg = error_of(tmp_path, text)
    assert msg.startswith(f"{path}:{line_of(text, 'platfrom')}:")


def test_rules_are_loaded_with_lines(tmp_path: Path) -> None:
    text = VALID + '\n[[exclude]]\nvariant = "def*"\nreason = "why"\n'
    defn = load_definition(write(tmp_path, text))
    (rule,) = defn.exclude
    assert (rule.platform, rule.version, rule.variant, rule.reason) == ("*", "*", "def*", "why")
    assert rule.line == line_of(text, "[[exclude]]")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_bytes(b"schema = 1\n# \xff\n")
    with pytest.raises(DefinitionError, match="not UTF-8"):
        load_definition(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="cannot read"):
        load_definition(tmp_path / "absent.toml")


def test_dockerfile_next_to_matrix_wins(tmp_path: Path) -> None:
    defn = load_definition(write(tmp_path, VALID))
    (tmp_path / "dockerfiles").mkdir()
    own = tmp_path / "dockerfiles" / "alpha.Dockerfile"
    own.write_text("FROM scratch\n")
    assert dockerfile_path(defn.platforms["alpha"], defn) == own


def test_missing_dockerfile_reports_line(tmp_path: Path) -> None:
    text = VALID.replace("alpha.Dockerfile", "nowhere-to-be-found.Dockerfile")
    path = write(tmp_path, text)
    defn = load_definition(path)
    with pytest.raises(DefinitionError) as info:
        dockerfile_path(defn.platforms["alpha"], defn)
    assert str(info.value).startswith(f"{path}:6:")
    assert "nowhere-to-be-found.Dockerfile" in str(info.value)


@pytest.mark.parametrize("opt", ["no-pinshared; rm -rf /", "$(id)", "`id`", "a*", "x|y", ""])
def test_configure_options_never_carry_shell_syntax(tmp_path: Path, opt: str) -> None:
    path = tmp_path / "m.toml"
    path.write_text(SMALL_MATRIX_FOR_OPTIONS.replace("CONFIGURE", json.dumps([opt])))
    with pytest.raises(DefinitionError, match="configure option"):
        load_definition(path)


SMALL_MATRIX_FOR_OPTIONS = """schema = 1
scenarios = ["ondemand-kat"]

[platforms.debian-12]
dockerfile = "debian.Dockerfile"
base_image = "debian:bookworm"
libc = "glibc"

[sources."3.0.20"]
sha256 = "c80a01dfc70ece4dc21168932c37739042d404d46ccc81a5986dd75314ecda6f"
urls = ["https://example.test/openssl-3.0.20.tar.gz"]

[variants.bad]
configure = CONFIGURE
"""


# --- a matrix file is code: what is never legitimate is refused ---------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("file:///etc/passwd", "want an http or https URL, not 'file'"),
        ("ftp://example.test/openssl.tar.gz", "not 'ftp'"),
        ("/srv/openssl.tar.gz", "not 'a bare path'"),
        ("http://localhost:8080/openssl.tar.gz", "a loopback address"),
        ("http://mirror.localhost/openssl.tar.gz", "a loopback address"),
        ("http://127.0.0.1/openssl.tar.gz", "a loopback address"),
        ("http://127.1/openssl.tar.gz", "a loopback address"),
        ("http://2130706433/openssl.tar.gz", "a loopback address"),
        ("http://0x7f.0.0.1/openssl.tar.gz", "a loopback address"),
        ("http://[::1]/openssl.tar.gz", "a loopback address"),
        ("http://[::ffff:127.0.0.1]/openssl.tar.gz", "a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
        ("http://[fe80::1]/openssl.tar.gz", "a link-local address"),
        ("http://0.0.0.0/openssl.tar.gz", "the unspecified address"),
        ("https:///openssl.tar.gz", "names no host"),
        ("http://[::1/openssl.tar.gz", "not a URL"),
    ],
)
def test_source_urls_that_are_never_legitimate_are_refused(
    tmp_path: Path, url: str, why: str
) -> None:
    text = VALID.replace("https://example.invalid/openssl-3.0.20.tar.gz", url)
    path, message = error_of(tmp_path, text)
    assert message.startswith(f"{path}:{line_of(text, 'urls = ')}: url {url!r}: ")
    assert why in message


def test_a_source_url_naming_this_machines_own_address_is_refused(tmp_path: Path) -> None:
    """Not loopback, but this machine all the same (its address on the network)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        try:
            udp.connect(("192.0.2.1", 9))  # a route's source address; no packet is sent
        except OSError:
            pytest.skip("no network interface with a route here")
        own = udp.getsockname()[0]
    url = f"http://{own}/openssl.tar.gz"
    text = VALID.replace("https://example.invalid/openssl-3.0.20.tar.gz", url)
    _, message = error_of(tmp_path, text)
    assert message.endswith(f"url {url!r}: an address of this machine: refused")


@pytest.mark.parametrize(
    "url", ["https://github.com/openssl/openssl/x.tar.gz", "http://10.0.0.5/x.tar.gz"]
)
def test_ordinary_source_urls_still_load(tmp_path: Path, url: str) -> None:
    text = VALID.replace("https://example.invalid/openssl-3.0.20.tar.gz", url)
    assert load_definition(write(tmp_path, text)).sources["3.0.20"].urls == (url,)


def test_a_dockerfile_outside_the_matrix_files_tree_is_refused(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    defn = load_definition(write(project, VALID))
    outside = tmp_path / "elsewhere.Dockerfile"
    outside.write_text("FROM scratch\n")
    (project / "dockerfiles").mkdir()
    (project / "dockerfiles" / "alpha.Dockerfile").symlink_to(outside)
    with pytest.raises(DefinitionError, match=r"outside .*: refused"):
        dockerfile_path(defn.platforms["alpha"], defn)
    # the whole directory a link elsewhere: the same
    (project / "dockerfiles" / "alpha.Dockerfile").unlink()
    (project / "dockerfiles").rmdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "alpha.Dockerfile").write_text("FROM scratch\n")
    (project / "dockerfiles").symlink_to(tmp_path / "other")
    with pytest.raises(DefinitionError, match="outside"):
        dockerfile_path(defn.platforms["alpha"], defn)


def test_the_readme_says_a_matrix_file_is_code() -> None:
    readme = " ".join((DEFAULT_MATRIX.parents[1] / "README.md").read_text().split())
    assert "A matrix file is code" in readme
    assert "like running their Makefile" in readme

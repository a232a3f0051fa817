"""Finding the Debian mirror from apt's configuration (fake host names only)."""

from __future__ import annotations

from pathlib import Path

from matrix.acquire.mirror import ENV_VAR, debian_mirror

SECURITY = """\
Types: deb
URIs: http://security.test/debian-security
Suites: bookworm-security
Components: main
"""

MAIN = """\
Types: deb
# a comment inside the stanza
URIs: http://mirror.test/debian/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def apt_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "apt"
    (root / "sources.list.d").mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_env_var_wins_and_loses_its_trailing_slash(tmp_path: Path) -> None:
    root = apt_dir(tmp_path, {"sources.list.d/debian.sources": MAIN})
    env = {ENV_VAR: "https://override.test/debian/"}
    assert debian_mirror(env, root) == "https://override.test/debian"


def test_empty_env_var_is_ignored(tmp_path: Path) -> None:
    root = apt_dir(tmp_path, {"sources.list.d/debian.sources": MAIN})
    assert debian_mirror({ENV_VAR: " "}, root) == "http://mirror.test/debian"


def test_deb822_skips_security_stanza(tmp_path: Path) -> None:
    root = apt_dir(tmp_path, {"sources.list.d/debian.sources": SECURITY + "\n" + MAIN})
    assert debian_mirror({}, root) == "http://mirror.test/debian"


def test_deb822_filters(tmp_path: Path) -> None:
    src_only = MAIN.replace("Types: deb", "Types: deb-src").replace("mirror.", "src.")
    contrib = MAIN.replace("Components: main", "Components: contrib").replace("mirror.", "c.")
    disabled = MAIN.replace("mirror.", "off.") + "Enabled: no\n"
    other = MAIN.replace("mirror.test/debian/", "node.test/node_20.x")
    text = "\n".join([src_only, contrib, disabled, other, MAIN.replace("mirror.", "good.")])
    root = apt_dir(tmp_path, {"sources.list.d/a.sources": text})
    assert debian_mirror({}, root) == "http://good.test/debian"


def test_deb822_several_uris_and_continuation(tmp_path: Path) -> None:
    text = (
        "Types: deb deb-src\nURIs: mirror+file:/etc/apt/mirrors/debian.list\n"
        "  https://two.test/debian\nSuites: trixie\nComponents: main contrib\n"
    )
    root = apt_dir(tmp_path, {"sources.list.d/x.sources": text})
    assert debian_mirror({}, root) == "https://two.test/debian"


def test_one_line_format_with_options(tmp_path: Path) -> None:
    text = (
        "# deb http://commented.test/debian bookworm main\n"
        "deb-src http://src.test/debian bookworm main\n"
        "deb http://sec.test/debian-security bookworm-security main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.test/debian/ bookworm main contrib\n"
    )
    root = apt_dir(tmp_path, {"sources.list": text})
    assert debian_mirror({}, root) == "http://one.test/debian"


def test_sources_list_comes_first(tmp_path: Path) -> None:
    root = apt_dir(
        tmp_path,
        {
            "sources.list": "deb http://first.test/debian bookworm main\n",
            "sources.list.d/debian.sources": MAIN,
        },
    )
    assert debian_mirror({}, root) == "http://first.test/debian"


def test_only_list_and_sources_files_count(tmp_path: Path) -> None:
    root = apt_dir(
        tmp_path,
        {
            "sources.list.d/a.sources.disabled-by-farm": MAIN.replace("mirror.", "a."),
            "sources.list.d/b.list.save": "deb http://b.test/debian bookworm main\n",
            "sources.list.d/c.list": "deb https://c.test/debian bookworm main\n",
        },
    )
    assert debian_mirror({}, root) == "https://c.test/debian"


def test_nothing_found(tmp_path: Path) -> None:
    root = apt_dir(tmp_path, {"sources.list.d/node.sources": MAIN.replace("/debian/", "/node")})
    assert debian_mirror({}, root) is None
    assert debian_mirror({}, tmp_path / "no-such-dir") is None

"""A matrix file that extends another (the built-in default included): it adds, drops or
overrides platforms, versions and variants without copying the rest; errors still name the
file and line they are in, and `--list` says where each cell came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from matrix import cli
from matrix.assets import DEFAULT_MATRIX
from matrix.errors import DefinitionError
from matrix.model.cells import expand
from matrix.model.definition import load_definition
from matrix.model.types import BUILT_IN_MATRIX

HARDENED = """schema = 1
extends = "default"
drop = { platforms = ["alpine-3.23", "alpine-3.24"] }

[platforms.debian-12-hardened]
description = "Debian 12 on our hardened base"
dockerfile = "debian.Dockerfile"
base_image = "my-mirror.example:5000/debian:bookworm"
libc = "glibc"
fallback = { debootstrap = "bookworm" }
"""


def write(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def ids(path: Path) -> list[str]:
    return [c.id for c in expand(load_definition(path))]


def test_a_platform_added_to_the_default_in_a_few_lines(tmp_path: Path) -> None:
    default = ids(DEFAULT_MATRIX)
    mine = ids(write(tmp_path, HARDENED))
    added = [c for c in mine if c.startswith("debian-12-hardened/")]
    # the same versions and variants as the default's debian-12
    assert [c.split("/", 1)[1] for c in added] == [
        c.split("/", 1)[1] for c in default if c.startswith("debian-12/")
    ]
    kept = [c for c in default if not c.startswith("alpine-")]
    assert [c for c in mine if c not in added] == kept


def test_an_override_replaces_the_platform_and_a_drop_removes_a_version(tmp_path: Path) -> None:
    text = HARDENED.replace("debian-12-hardened", "debian-12")
    lone = text.replace("] }", '], sources = ["3.0.20"] }', 1)
    with pytest.raises(DefinitionError) as caught:  # its skew variants would dangle
        load_definition(write(tmp_path, lone))
    assert ":3: variant 'fips-3.0.20': provider = '3.0.20' is not a source" in str(caught.value)
    skew = '"fips-3.0.20", "fips-3.0.20-no-pinshared"'
    path = write(
        tmp_path, text.replace("] }", f'], sources = ["3.0.20"], variants = [{skew}] }}', 1)
    )
    definition = load_definition(path)
    assert definition.platforms["debian-12"].base_image.startswith("my-mirror.example")
    assert not [c for c in ids(path) if "3.0.20" in c]
    assert definition.origin("debian-12", "3.5.7", "default") == f"{path}, {BUILT_IN_MATRIX}"
    assert definition.origin("debian-11", "3.5.7", "default") == BUILT_IN_MATRIX


def test_list_says_where_each_cell_came_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, HARDENED)
    assert (
        cli.main(["run", "--matrix", str(path), "--list", "--only", "debian-12*/3.5.7/default"])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"debian-12/3.5.7/default  ({BUILT_IN_MATRIX})",
        f"debian-12-hardened/3.5.7/default  ({path}, {BUILT_IN_MATRIX})",
    ]


@pytest.mark.parametrize(
    ("change", "line", "says"),
    [
        (("alpine-3.24", "alpine-3.99"), 3, "drop: platforms 'alpine-3.99' is not in the matrix"),
        (('libc = "glibc"', 'libc = "bionic"'), 9, "libc = 'bionic': must be one of"),
        (('extends = "default"', 'extends = "nowhere.toml"'), 2, "no such matrix file"),
    ],
)
def test_errors_name_the_extending_file_and_line(
    tmp_path: Path, change: tuple[str, str], line: int, says: str
) -> None:
    path = write(tmp_path, HARDENED.replace(*change))
    with pytest.raises(DefinitionError) as caught:
        load_definition(path)
    assert str(caught.value).startswith(f"{path}:{line}:") and says in str(caught.value)


def test_an_error_in_the_parent_names_the_parent(tmp_path: Path) -> None:
    parent = write(
        tmp_path, DEFAULT_MATRIX.read_text().replace('libc = "musl"', 'libc = "x"', 1), "base.toml"
    )
    path = write(tmp_path, HARDENED.replace('extends = "default"', 'extends = "base.toml"'))
    with pytest.raises(DefinitionError) as caught:
        load_definition(path)
    assert str(caught.value).startswith(f"{parent}:")


def test_a_cycle_and_a_drop_without_extends_are_refused(tmp_path: Path) -> None:
    write(tmp_path, 'schema = 1\nextends = "b.toml"\n', "a.toml")
    b = write(tmp_path, 'schema = 1\nextends = "a.toml"\n', "b.toml")
    with pytest.raises(DefinitionError, match="a cycle"):
        load_definition(b)
    lone = write(tmp_path, 'schema = 1\ndrop = { platforms = ["x"] }\nscenarios = []\n')
    with pytest.raises(DefinitionError, match="drop is for a matrix file that extends"):
        load_definition(lone)


def test_the_digest_covers_the_parent(tmp_path: Path) -> None:
    parent = write(tmp_path, DEFAULT_MATRIX.read_text(), "base.toml")
    path = write(tmp_path, HARDENED.replace('extends = "default"', 'extends = "base.toml"'))
    before = load_definition(path).digest
    parent.write_text(parent.read_text().replace('"Debian 12', '"Debian twelve', 1))
    assert load_definition(path).digest != before


def test_a_parent_rule_made_moot_by_a_drop_is_no_typo(tmp_path: Path) -> None:
    # the default excludes deferred variants of 3.x; without its deferred variants the rule
    # matches nothing, which is no error of this file (a rule of its own still is)
    deferred = '"deferred", "no-pinshared-deferred"'
    path = write(tmp_path, HARDENED.replace("] }", f"], variants = [{deferred}] }}", 1))
    assert not [c for c in ids(path) if c.endswith("deferred")]
    own = path.read_text() + '\n[[exclude]]\nvariant = "*deferred"\nreason = "typo"\n'
    path.write_text(own)
    with pytest.raises(DefinitionError, match=r"mine.toml:\d+: rule matches no cell"):
        expand(load_definition(path))


def test_an_inherited_platform_finds_its_dockerfile_beside_the_file_that_defines_it(
    tmp_path: Path,
) -> None:
    """A parent in another directory with a Dockerfile of its own: a child that extends it
    builds the parent's platform from the parent's Dockerfile (and an error names the
    parent's file)."""
    from matrix.model.policy import dockerfile_path

    team = tmp_path / "team"
    (team / "dockerfiles").mkdir(parents=True)
    (team / "dockerfiles" / "ours.Dockerfile").write_text("FROM scratch\n")
    write(team, HARDENED.replace("debian.Dockerfile", "ours.Dockerfile"), "base.toml")
    mine = write(tmp_path, 'schema = 1\nextends = "team/base.toml"\n')
    definition = load_definition(mine)
    hardened = definition.platforms["debian-12-hardened"]
    assert dockerfile_path(hardened, definition) == team / "dockerfiles" / "ours.Dockerfile"
    (team / "dockerfiles" / "ours.Dockerfile").unlink()
    with pytest.raises(DefinitionError) as caught:
        dockerfile_path(hardened, definition)
    assert str(caught.value).startswith(f"{team / 'base.toml'}:7:")

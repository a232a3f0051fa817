"""Expanding the matrix into cells, include/exclude rules, and selecting cells."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from matrix import assets
from matrix.errors import DefinitionError
from matrix.model.cells import expand, select
from matrix.model.definition import load_definition
from matrix.model.types import MatrixDefinition, Rule

DEFAULT_IDS = [
    "debian-12/3.0.20/default",
    "debian-12/3.0.20/no-pinshared",
    "musl-debian-12/3.0.20/default",
    "musl-debian-12/3.0.20/no-pinshared",
]


# The matrix these tests expand: two platforms, one source, two variants.
SMALL = Path(__file__).parent / "fixtures" / "two-platforms.toml"


@pytest.fixture(scope="module")
def defn() -> MatrixDefinition:
    return load_definition(SMALL)


def with_rules(
    defn: MatrixDefinition, exclude: tuple[Rule, ...] = (), include: tuple[Rule, ...] = ()
) -> MatrixDefinition:
    return dataclasses.replace(defn, exclude=exclude, include=include)


def ids(defn: MatrixDefinition) -> list[str]:
    return [c.id for c in expand(defn)]


def test_small_matrix_expands_to_four_cells(defn: MatrixDefinition) -> None:
    cells = expand(defn)
    assert [c.id for c in cells] == DEFAULT_IDS
    assert cells[3].slug == "musl-debian-12__3.0.20__no-pinshared"
    assert all(c.scenarios == defn.scenarios for c in cells)
    assert cells[2].platform.libc == "musl" and cells[1].variant.configure == ("no-pinshared",)


def test_exclude_needs_every_field_to_match(defn: MatrixDefinition) -> None:
    rule = Rule(platform="musl-*", variant="default", reason="x")
    assert ids(with_rules(defn, exclude=(rule,))) == [
        "debian-12/3.0.20/default",
        "debian-12/3.0.20/no-pinshared",
        "musl-debian-12/3.0.20/no-pinshared",
    ]


def test_include_re_adds_what_an_exclude_removed(defn: MatrixDefinition) -> None:
    drop_musl = Rule(platform="musl-*")
    keep_one = Rule(platform="musl-debian-12", variant="no-pinshared")
    assert ids(with_rules(defn, exclude=(drop_musl,), include=(keep_one,))) == [
        "debian-12/3.0.20/default",
        "debian-12/3.0.20/no-pinshared",
        "musl-debian-12/3.0.20/no-pinshared",
    ]


def test_include_alone_adds_nothing_new(defn: MatrixDefinition) -> None:
    assert ids(with_rules(defn, include=(Rule(platform="debian-12"),))) == DEFAULT_IDS


def test_rule_matching_no_cell_is_an_error(defn: MatrixDefinition) -> None:
    bad = Rule(platform="debian-12", version="3.1.*", line=7)
    with pytest.raises(DefinitionError) as info:
        expand(with_rules(defn, exclude=(bad,)))
    msg = str(info.value)
    assert msg.startswith(f"{defn.path}:7:")
    assert "version = '3.1.*' matches none of 3.0.20" in msg


def test_rules_in_a_file(tmp_path: Path) -> None:
    text = SMALL.read_text() + (
        '\n[[exclude]]\nversion = "3.0.*"\nreason = "all"\n'
        '\n[[include]]\nplatform = "debian-12"\nvariant = "no-*"\n'
    )
    path = tmp_path / "m.toml"
    path.write_text(text)
    assert ids(load_definition(path)) == ["debian-12/3.0.20/no-pinshared"]


def test_select_patterns_or_together_in_cell_order(defn: MatrixDefinition) -> None:
    cells = expand(defn)
    chosen = select(cells, ["musl*/3.0.20/default", "debian-12/*"])
    assert [c.id for c in chosen] == DEFAULT_IDS[:3]


def test_select_repeated_or_overlapping_patterns_do_not_duplicate(
    defn: MatrixDefinition,
) -> None:
    cells = expand(defn)
    chosen = select(cells, ["*/default", "debian-12/*/default", "*/default"])
    assert [c.id for c in chosen] == [DEFAULT_IDS[0], DEFAULT_IDS[2]]


def test_select_without_patterns_is_everything(defn: MatrixDefinition) -> None:
    assert [c.id for c in select(expand(defn), [])] == DEFAULT_IDS


def test_select_is_case_sensitive(defn: MatrixDefinition) -> None:
    with pytest.raises(DefinitionError):
        select(expand(defn), ["DEBIAN-12/*"])


def test_unknown_pattern_lists_valid_ids(defn: MatrixDefinition) -> None:
    with pytest.raises(DefinitionError) as info:
        select(expand(defn), ["debian-12/*", "debian-12/3.5.7/*"])
    msg = str(info.value)
    assert "'debian-12/3.5.7/*'" in msg
    assert all(i in msg for i in DEFAULT_IDS)
    assert "no platform matches" not in msg  # the platform exists; the version does not


def test_unknown_platform_is_named(defn: MatrixDefinition) -> None:
    with pytest.raises(DefinitionError) as info:
        select(expand(defn), ["alpine-3/*"])
    msg = str(info.value)
    assert "no platform matches 'alpine-3'" in msg and "musl-debian-12" in msg


# --- a pattern that matches nothing says which part did not --------------------------------


@pytest.mark.parametrize(
    ("pattern", "says", "lists"),
    [
        ("debian-12/3.5/*", "no version of debian-12 matches '3.5'", "3.5.7"),
        ("debain-12/*", "no platform matches 'debain-12'", "musl-debian-12"),
        ("debian-12/3.5.7/nopin", "no variant of debian-12/3.5.7 matches 'nopin'", "no-pinshared"),
        ("debian-12", "a cell id has three parts ('debian-12/*'", ""),
    ],
)
def test_a_typo_names_the_part_and_its_values(pattern: str, says: str, lists: str) -> None:
    cells = expand(load_definition(assets.DEFAULT_MATRIX))
    with pytest.raises(DefinitionError) as caught:
        select(cells, [pattern])
    text = str(caught.value)
    assert says in text and lists in text
    # a large matrix is not listed id by id: the part's values are
    assert "debian-sid/4.0.2/default" not in text and f"lists all {len(cells)}" in text

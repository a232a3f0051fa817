"""The run's plan on the built-in default matrix: compile groups, what runs beside the
compiles, the order platforms are needed in; and which stages each Dockerfile builds ahead."""

from __future__ import annotations

import pytest

from matrix.assets import DEFAULT_MATRIX, DOCKERFILES_DIR
from matrix.execute.images.builder import ahead_target
from matrix.execute.run.schedule import compile_key, plan
from matrix.model.cells import Cell, expand
from matrix.model.definition import load_definition
from matrix.model.vocabulary import CellKind


@pytest.fixture(scope="module")
def cells() -> list[Cell]:
    return expand(load_definition(DEFAULT_MATRIX))


def test_every_cell_is_planned_once(cells: list[Cell]) -> None:
    p = plan(cells)
    planned = [c.id for g in p.groups for c in g.cells] + [c.id for c in (*p.beside, *p.skew)]
    assert sorted(planned) == sorted(c.id for c in cells)
    assert len(planned) == len(set(planned))


def test_a_group_is_one_compile_and_link_variants_share_it(cells: list[Cell]) -> None:
    p = plan(cells)
    keys = [compile_key(g.cells[0]) for g in p.groups]
    assert len(keys) == len(set(keys))  # no compile in two groups
    for g in p.groups:
        assert {compile_key(c) for c in g.cells} == {compile_key(g.cells[0])}
    [group] = [g for g in p.groups if compile_key(g.cells[0]) == ("debian-12", "4.0.2", ())]
    # default, its relink without -znodelete, and the module-configuration variants
    assert [c.variant.name for c in group.cells] == [
        "default",
        "no-pinshared",
        "deferred",
        "no-pinshared-deferred",
    ]


def test_skew_and_distribution_cells_never_go_to_a_builder(cells: list[Cell]) -> None:
    p = plan(cells)
    assert all(c.variant.provider is not None for c in p.skew) and p.skew
    assert {c.platform.name for c in p.beside} == {"debian-13-distro", "debian-sid-distro"}
    assert all(c.platform.kind == CellKind.COMPILED for g in p.groups for c in g.cells)


def test_platforms_come_in_the_order_the_builders_need_them(cells: list[Cell]) -> None:
    p = plan(cells)
    names = [pl.name for pl in p.platforms]
    first_group: dict[str, int] = {}
    for i, g in enumerate(p.groups):
        first_group.setdefault(g.platform.name, i)
    built = [n for n in names if n in first_group]
    assert built == sorted(built, key=first_group.__getitem__)
    assert names[: len(built)] == built  # then the platforms with nothing to compile
    assert names[0] == cells[0].platform.name


@pytest.mark.parametrize(
    ("dockerfile", "target"),
    [
        ("debian.Dockerfile", "runtime-base"),  # the toolchain and the runtime's Python
        ("musl.Dockerfile", "toolchain"),
        ("alpine.Dockerfile", "toolchain"),
        ("debian-distro.Dockerfile", None),  # nothing compiled: nothing to build ahead
        ("skew.Dockerfile", None),
    ],
)
def test_the_stages_built_ahead_are_those_before_compile(
    dockerfile: str, target: str | None
) -> None:
    assert ahead_target(DOCKERFILES_DIR / dockerfile) == target

"""The kinds of cell: one module each, behind one interface, and nothing outside them (and
the matrix schema) asks which kind a cell is."""

from __future__ import annotations

import re
from pathlib import Path

from matrix.assets import DEFAULT_MATRIX
from matrix.model import kinds
from matrix.model.cells import expand
from matrix.model.definition import load_definition
from matrix.model.vocabulary import CellKind

PACKAGE = Path(kinds.__file__).resolve().parents[3]  # the checkout: it holds matrix/
# where a kind may be named: the vocabulary, the schema (its types: a platform's default
# kind), the cell, the kinds themselves
ALLOWED = {"model/vocabulary.py", "model/definition.py", "model/types.py", "model/cells.py"}
KIND_CHECK = re.compile(r"CellKind\.[A-Z]|\.kind\s*(==|!=|in\b)|\.image is (not )?None")


def test_every_kind_of_the_vocabulary_has_its_module() -> None:
    assert set(kinds.KINDS) == set(CellKind)
    for name, kind in kinds.KINDS.items():
        assert kind.name == name


def test_no_module_outside_the_kinds_asks_for_a_kind() -> None:
    found = []
    modules = sorted((PACKAGE / "matrix").rglob("*.py"))
    assert len(modules) > 50  # the package's modules were read, not an empty folder
    for path in modules:
        rel = path.relative_to(PACKAGE / "matrix").as_posix()
        if rel.startswith("model/kinds/") or rel in ALLOWED:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if KIND_CHECK.search(line):
                found.append(f"{rel}:{number}: {line.strip()}")
    assert found == []


def test_the_default_matrix_cells_name_their_kind() -> None:
    cells = expand(load_definition(DEFAULT_MATRIX))
    by_kind = {k: [c for c in cells if c.kind == k] for k in CellKind}
    assert all(c.id.endswith("/distro/packaged") for c in by_kind[CellKind.DISTRO])
    assert by_kind[CellKind.DISTRO] and by_kind[CellKind.SKEW] and by_kind[CellKind.COMPILED]
    # only the kinds that compile can be reproduced from source, or fetch one
    assert [k for k in CellKind if kinds.of(k).compiles] == [CellKind.COMPILED]
    lanes = {k: kinds.of(k).lane for k in CellKind}
    assert lanes == {
        CellKind.COMPILED: "compile",
        CellKind.DISTRO: "beside",
        CellKind.SKEW: "after-parts",
        CellKind.IMAGE: "beside",
    }


class _Shop:
    """Records which way each kind asks its image to be made."""

    def compiled(self, cell: str) -> str:
        return f"compiled {cell}"

    def packaged(self, cell: str) -> str:
        return f"packaged {cell}"

    def assembled(self, cell: str) -> str:
        return f"assembled {cell}"

    def as_it_is(self, cell: str) -> str:
        return f"as it is {cell}"


def test_each_kind_makes_its_image_its_own_way() -> None:
    made = {k: kinds.of(k).make(_Shop(), "c") for k in CellKind}
    assert made == {
        CellKind.COMPILED: "compiled c",
        CellKind.DISTRO: "packaged c",
        CellKind.SKEW: "assembled c",
        CellKind.IMAGE: "as it is c",
    }

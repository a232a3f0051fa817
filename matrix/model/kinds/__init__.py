"""The kinds of cell, one module each (source, distro, image, skew), keyed by the
vocabulary's CellKind. Adding a kind: its module here, its word in the vocabulary, and how
the matrix file names it (matrix/model/definition.py); nothing else asks which kind a cell is."""

from __future__ import annotations

from matrix.model.kinds import distro, image, skew, source
from matrix.model.kinds.base import Combination, Kind, Lane, Workshop
from matrix.model.types import MatrixDefinition, Platform
from matrix.model.vocabulary import CellKind

KINDS: dict[CellKind, Kind] = {k.name: k for k in (source.KIND, distro.KIND, image.KIND, skew.KIND)}

__all__ = ["KINDS", "Combination", "Kind", "Lane", "Workshop", "combinations", "of"]


def of(kind: CellKind) -> Kind:
    """The kind of a cell (Cell.kind) or of a platform (Platform.kind)."""
    return KINDS[kind]


def combinations(definition: MatrixDefinition) -> list[Combination]:
    """Every platform x source x variant, before include/exclude rules, in file order."""
    return [c for p in definition.platforms.values() for c in platform_cells(p, definition)]


def platform_cells(platform: Platform, definition: MatrixDefinition) -> list[Combination]:
    return of(platform.kind).combinations(platform, definition)

"""OpenSSL built here from the matrix's verified sources: a platform's cells are its sources x
variants, each image compiled (one compile per group) from the platform's Dockerfile, which
keeps the whole contract."""

from __future__ import annotations

from typing import TypeVar

from matrix import assets
from matrix.model.contract import FULL
from matrix.model.kinds.base import Combination, Kind, Workshop, has_python
from matrix.model.types import MatrixDefinition, Platform
from matrix.model.vocabulary import CellKind

C = TypeVar("C")
M = TypeVar("M")


class Source(Kind):
    name = CellKind.COMPILED
    compiles = True
    lane = "compile"
    dockerfile = FULL

    def combinations(self, platform: Platform, definition: MatrixDefinition) -> list[Combination]:
        return [
            (platform, source, variant)
            for source in definition.sources.values()
            for variant in definition.variants.values()
        ]

    def twin_libcrypto(self, platform: Platform) -> str | None:
        return assets.LIBCRYPTO_DIR if has_python(platform) else None

    def make(self, shop: Workshop[C, M], cell: C) -> M:
        return shop.compiled(cell)


KIND = Source()

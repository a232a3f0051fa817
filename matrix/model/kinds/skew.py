"""Version skew: libcrypto of one compiled cell, fips.so of another (the variant's provider
version), as validated providers are deployed. A skew cell is a variant of a source platform
(so it has no platform or Dockerfile of its own), made from its parts' images once they are
built: nothing is compiled for it."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from matrix import assets
from matrix.model.kinds.base import Combination, Kind, Workshop, has_python
from matrix.model.types import MatrixDefinition, Platform
from matrix.model.vocabulary import CellKind

C = TypeVar("C")
M = TypeVar("M")


class Skew(Kind):
    name = CellKind.SKEW
    lane = "after-parts"
    build_phase = "skew"

    def combinations(self, platform: Platform, definition: MatrixDefinition) -> list[Combination]:
        return []  # a variant of a source platform's: the source kind gives these cells

    def twin_libcrypto(self, platform: Platform) -> str | None:
        return assets.LIBCRYPTO_DIR if has_python(platform) else None

    def make(self, shop: Workshop[C, M], cell: C) -> M:
        return shop.assembled(cell)

    def built_from(self, platform: Platform, definition: MatrixDefinition) -> tuple[Path, ...]:
        # put together by its own Dockerfile from its parts, built by their platform's
        return (assets.SKEW_DOCKERFILE, *super().built_from(platform, definition))


KIND = Skew()

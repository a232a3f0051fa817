"""The distribution's own libcrypto and packaged fips.so, exactly as its users get them: one
cell per platform, PLATFORM/distro/packaged, whose image only adds the probe (its Dockerfile
keeps the rules every Dockerfile keeps, not the compile contract)."""

from __future__ import annotations

from typing import TypeVar

from matrix.model.contract import GENERIC
from matrix.model.kinds.base import Combination, Kind, Workshop, has_python
from matrix.model.types import MatrixDefinition, Platform, Source, Variant
from matrix.model.vocabulary import CellKind

C = TypeVar("C")
M = TypeVar("M")

SOURCE = Source(version="distro", sha256="", urls=(), debian_orig=False)
VARIANT = Variant("packaged", (), "the distribution's own libcrypto and fips.so")
SONAME = "libcrypto.so.3"  # the distribution's libcrypto, found by the loader


class Distro(Kind):
    name = CellKind.DISTRO
    build_phase = "distro"
    dockerfile = GENERIC

    def combinations(self, platform: Platform, definition: MatrixDefinition) -> list[Combination]:
        return [(platform, SOURCE, VARIANT)]

    def twin_libcrypto(self, platform: Platform) -> str | None:
        return SONAME if has_python(platform) else None

    def make(self, shop: Workshop[C, M], cell: C) -> M:
        return shop.packaged(cell)


KIND = Distro()

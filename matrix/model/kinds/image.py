"""An existing image, probed as it is by the portable probe: one cell per platform,
PLATFORM/image/as-is; no Dockerfile, no base image, nothing built. What its probes load is
what discovery found in it (matrix/execute/images/existing.py), recorded in its fingerprint."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from matrix import assets
from matrix.model.kinds.base import Combination, Kind, Workshop
from matrix.model.types import MatrixDefinition, Platform, Source, Variant
from matrix.model.vocabulary import CellKind

C = TypeVar("C")
M = TypeVar("M")

SOURCE = Source(version="image", sha256="", urls=(), debian_orig=False)
VARIANT = Variant("as-is", (), "the image as it is: its own libcrypto and fips.so")


class Image(Kind):
    name = CellKind.IMAGE
    builds_ahead = False  # never built: its image is found, not made
    # twin_libcrypto: none of its own: its probes run the programs discovery chose

    def combinations(self, platform: Platform, definition: MatrixDefinition) -> list[Combination]:
        return [(platform, SOURCE, VARIANT)]

    def make(self, shop: Workshop[C, M], cell: C) -> M:
        return shop.as_it_is(cell)

    def built_from(self, platform: Platform, definition: MatrixDefinition) -> tuple[Path, ...]:
        # nothing of its own: the portable probe it is probed with is built from these
        return (assets.PORTABLE_DOCKERFILE, assets.PORTABLE_BUILD_SCRIPT)


KIND = Image()

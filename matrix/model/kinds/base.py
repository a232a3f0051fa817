"""What a kind of cell is to the rest of the tool, and nothing else: how its platform gives
cells, what its image is made from, where the builders take it, what its probes load, and
which rules its Dockerfile keeps. One module per kind fills it in (source, distro, image,
skew); matrix/model/kinds/__init__.py keys them by the vocabulary's CellKind."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar, Literal, Protocol, TypeVar

from matrix.model.contract import Rules
from matrix.model.policy import dockerfile_path
from matrix.model.types import MatrixDefinition, Platform, Source, Variant
from matrix.model.vocabulary import CellKind

C = TypeVar("C", contravariant=True)
M = TypeVar("M", covariant=True)
C2 = TypeVar("C2")
M2 = TypeVar("M2")

# Where a run's workers take a cell (matrix/execute/run/schedule.py): a compile group of the
# builders, beside the compiles, or beside them once the images it is made of are built.
Lane = Literal["compile", "beside", "after-parts"]

Combination = tuple[Platform, Source, Variant]


class Workshop(Protocol[C, M]):
    """What the run offers for making a cell's image (matrix/execute/images/imaging.py does it):
    each way once, the kinds choose among them."""

    def compiled(self, cell: C) -> M:
        """The platform's base image, the verified source, the platform's Dockerfile."""
        ...

    def packaged(self, cell: C) -> M:
        """The platform's base image and Dockerfile; no source (its OpenSSL is packaged)."""
        ...

    def assembled(self, cell: C) -> M:
        """Put together from the images of two compiled cells."""
        ...

    def as_it_is(self, cell: C) -> M:
        """An existing image, found and examined, never built or changed."""
        ...


class Kind(ABC):
    """One kind of cell. A kind's module says what differs from these defaults: a kind
    compiles nothing, has its platform's base image and stages made ahead, runs beside the
    compiles, and has no second witness of its own."""

    name: ClassVar[CellKind]
    # compiled here from the matrix's sources (a source fetched, a reproducer possible)
    compiles: ClassVar[bool] = False
    # its platform's base image and stages before compile are made ahead of the cells
    builds_ahead: ClassVar[bool] = True
    lane: ClassVar[Lane] = "beside"
    build_phase: ClassVar[str] = "build"  # the timeline's name for building its image
    # the rules its platform's Dockerfile keeps; None: it names none of its own
    dockerfile: ClassVar[Rules | None] = None

    @abstractmethod
    def combinations(self, platform: Platform, definition: MatrixDefinition) -> list[Combination]:
        """The platform's cells as (platform, source, variant): their ids say what they are."""

    @abstractmethod
    def make(self, shop: Workshop[C2, M2], cell: C2) -> M2:
        """The cell's image, made the way of this kind."""

    def twin_libcrypto(self, platform: Platform) -> str | None:
        """The libcrypto the second witness (the cffi twin) loads in a cell image; None: no
        twin there (no Python), or the programs come from elsewhere (discovery)."""
        return None

    def built_from(self, platform: Platform, definition: MatrixDefinition) -> tuple[Path, ...]:
        """The files its image is built from beside what every image is (the probes, the
        build script): a change to one of them reaches its cells (`plan --changed`)."""
        return (dockerfile_path(platform, definition),)


def has_python(platform: Platform) -> bool:
    """A cell image holds Python (and cffi) for the twin: glibc images do, musl's do not."""
    return platform.libc == "glibc"

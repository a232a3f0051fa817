"""The matrix definition's types: what a loaded matrix file is (its platforms, sources,
variants, scenarios and include/exclude rules), as frozen dataclasses. Loading and checking
a file into them is model/definition.py's job."""

from __future__ import annotations

import contextlib
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from matrix import assets
from matrix.model.vocabulary import CellKind

# How results name the built-in matrix file (matrix_label): never a path of the
# machine that ran it.
BUILT_IN_MATRIX = "default.toml (built in)"


@dataclass(frozen=True)
class BaseFallback:
    """How to make the base image locally when it cannot be pulled."""

    debootstrap: str  # Debian suite for `debootstrap --variant=minbase`


@dataclass(frozen=True)
class ExistingImage:
    """A platform that is an image of the user's, probed as it is by the portable probe.
    Each path left out is found in the image (discovery)."""

    ref: str
    libcrypto: str | None = None  # a file, a directory, or a bare soname (libcrypto.so.3)
    modules: str | None = None  # fips.so, or the directory holding it
    fips_config: str | None = None  # the module's configuration (for module_mac = "image")
    module_mac: str = "computed"  # or "image": the value in the image's own configuration


@dataclass(frozen=True)
class Platform:
    name: str
    dockerfile: str
    base_image: str
    libc: str
    fallback: BaseFallback | None
    description: str
    # what its cells are (matrix/model/kinds/): OpenSSL built from the matrix's sources, the
    # distribution's own, or an existing image as it is (see `image`)
    kind: CellKind = CellKind.COMPILED
    image: ExistingImage | None = None


@dataclass(frozen=True)
class Source:
    version: str
    sha256: str
    urls: tuple[str, ...]
    debian_orig: bool  # also try the Debian mirror's byte-identical .orig.tar.gz


@dataclass(frozen=True)
class Variant:
    name: str
    configure: tuple[str, ...]
    description: str
    # Extra KEY = VALUE lines for the module's config section (e.g. defer-tests = "1"):
    # they change how the module runs, not how it is built.
    module_config: tuple[tuple[str, str], ...] = ()
    # Version skew: take fips.so from this source version, libcrypto from the cell's own;
    # both built as variant `base`.
    provider: str | None = None
    base: str = "default"


@dataclass(frozen=True)
class Rule:
    platform: str = "*"
    version: str = "*"
    variant: str = "*"
    reason: str = ""
    line: int = field(default=0, compare=False)  # where it was declared, for errors
    # from the matrix file that this one extends: checked there, and moot here when it
    # matches no cell of this one
    inherited: bool = field(default=False, compare=False)

    def matches(self, platform: str, version: str, variant: str) -> bool:
        return (
            fnmatch.fnmatchcase(platform, self.platform)
            and fnmatch.fnmatchcase(version, self.version)
            and fnmatch.fnmatchcase(variant, self.variant)
        )


@dataclass(frozen=True)
class MatrixDefinition:
    path: Path
    platforms: dict[str, Platform]
    sources: dict[str, Source]
    variants: dict[str, Variant]
    scenarios: tuple[str, ...]
    include: tuple[Rule, ...]
    exclude: tuple[Rule, ...]
    digest: str  # sha256 of the file's bytes (and its parent's): ties results to the definition
    # ("platforms" | "sources" | "variants", name) -> the matrix file that defines it: where a
    # cell came from when a matrix file extends another, and where its Dockerfiles are
    origins: dict[tuple[str, str], Path] = field(default_factory=dict)

    def origin(self, platform: str, version: str, variant: str) -> str:
        """The files a cell's platform, source and variant come from, as results name them,
        the extending one first (a cell is the extending file's where any of the three is)."""
        keys = (("platforms", platform), ("sources", version), ("variants", variant))
        files = [matrix_label(self.origins[k]) for k in keys if k in self.origins]
        return ", ".join(dict.fromkeys(sorted(files, key=lambda f: f == BUILT_IN_MATRIX)))

    def file_of(self, platform: str) -> Path:
        """The matrix file that defines a platform (its Dockerfiles are beside it)."""
        return self.origins.get(("platforms", platform), self.path)


def matrix_label(path: Path) -> str:
    """How results name a matrix file: the built-in one by that name, a user's as it was
    given; never this machine's checkout or install path."""
    with contextlib.suppress(OSError):
        if path.resolve() == assets.DEFAULT_MATRIX.resolve():
            return BUILT_IN_MATRIX
    return str(path)

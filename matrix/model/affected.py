"""Which cells a change touches, for a pull request's CI: from the paths it changed (and the
matrix file as it was before), the cells whose image, probe or definition differ. A change to
the tool's Python code touches no cell here: the test suite is its check."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath

from matrix.model.cells import Cell

# Paths whose change reaches every cell: what every image is built with or probed by.
EVERY_CELL = ("probes/", "dockerfiles/fips-matrix-build.sh", "dockerfiles/portable-")


def affected(
    cells: Sequence[Cell], changed: Sequence[str], matrix_file: str, before: Sequence[Cell] | None
) -> list[Cell]:
    """The cells of `cells` that `changed` (repository paths) reaches, in `cells` order.

    `matrix_file` is the matrix's path in the repository; where it changed, `before` holds the
    cells it expanded to before the change (None: it did not exist), and a cell counts when it
    is new or its platform, source, variant or scenarios differ."""
    paths = [str(PurePosixPath(p)) for p in changed]
    if any(p.startswith(EVERY_CELL) for p in paths):
        return list(cells)
    dockerfiles = {PurePosixPath(p).name for p in paths if p.startswith("dockerfiles/")}
    was = {c.id: c for c in before or ()}
    matrix_changed = str(PurePosixPath(matrix_file)) in paths
    return [
        c
        for c in cells
        if PurePosixPath(c.platform.dockerfile).name in dockerfiles
        or (matrix_changed and was.get(c.id) != c)
    ]

"""Which cells a change touches, for a pull request's CI: from the paths it changed (and the
matrix file as it was before), the cells whose image, probe or definition differ. A change to
the tool's Python code touches no cell here: the test suite is its check."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from matrix.model import kinds
from matrix.model.cells import Cell
from matrix.model.types import MatrixDefinition

# Paths whose change reaches every cell: what every image is built with or probed by.
EVERY_CELL = ("probes/", "dockerfiles/fips-matrix-build.sh")


def affected(
    cells: Sequence[Cell],
    changed: Sequence[str],
    definition: MatrixDefinition,
    before: Sequence[Cell] | None,
    root: Path,
) -> list[Cell]:
    """The cells of `cells` that `changed` (paths relative to the repository `root`) reaches,
    in `cells` order: through the files its kind builds its image from, or through the
    matrix files it is defined in (the extending one and those it extends).

    Where a matrix file changed, `before` holds the cells the matrix expanded to before the
    change (None: it did not exist, or cannot be read), and a cell counts when it is new or
    its platform, source, variant or scenarios differ."""
    paths = {str(PurePosixPath(p)) for p in changed}
    if any(p.startswith(EVERY_CELL) for p in paths):
        return list(cells)
    matrix_files = {_relative(f, root) for f in {definition.path, *definition.origins.values()}}
    matrix_changed = bool(paths & matrix_files)
    was = {c.id: c for c in before or ()}
    built_from: dict[tuple[str, str], set[str]] = {}

    def reached(cell: Cell) -> bool:
        key = (cell.platform.name, cell.kind)
        if key not in built_from:
            files = kinds.of(cell.kind).built_from(cell.platform, definition)
            built_from[key] = {_relative(f, root) for f in files}
        return bool(built_from[key] & paths) or (matrix_changed and was.get(cell.id) != cell)

    return [c for c in cells if reached(c)]


def _relative(path: Path, root: Path) -> str:
    """A file as `git diff --name-only` names it; one outside the repository, whole."""
    full = path.resolve()
    return full.relative_to(root).as_posix() if full.is_relative_to(root) else full.as_posix()

"""A matrix as the commands that build or plan take it: loaded, expanded into its cells, and
every Dockerfile it names checked against the contract its platform's kind keeps, so that a
broken one is an error with file:line before anything is built."""

from __future__ import annotations

from pathlib import Path

from matrix import assets
from matrix.errors import DefinitionError
from matrix.model import contract, kinds
from matrix.model.cells import Cell, expand
from matrix.model.definition import load_definition
from matrix.model.policy import dockerfile_path
from matrix.model.types import MatrixDefinition

# The Dockerfile built and probed on this project's machine: a Dockerfile that compiles
# OpenSSL repeats its compile and link stages.
REFERENCE = assets.DOCKERFILES_DIR / "debian.Dockerfile"
HELP = 'keep the contract written in the README ("Adding a platform")'


def load_cells(path: Path | None) -> tuple[MatrixDefinition, list[Cell]]:
    """The matrix file (default: the built-in one) and every cell it expands to."""
    definition = load_definition(path or assets.DEFAULT_MATRIX)
    cells = expand(definition)
    check_dockerfiles(definition)
    return definition, cells


def check_dockerfiles(definition: MatrixDefinition) -> None:
    """DefinitionError naming every rule broken by a Dockerfile the matrix names."""
    checked: set[tuple[Path, contract.Rules]] = set()
    lines: list[str] = []
    for platform in definition.platforms.values():
        rules = kinds.of(platform.kind).dockerfile
        if rules is None:
            continue
        path = dockerfile_path(platform, definition)
        if (path, rules) in checked:
            continue
        checked.add((path, rules))
        found = sorted(contract.problems(path, rules, REFERENCE), key=lambda p: p.line)
        if found:
            lines.append(f"platform {platform.name!r}: {path.name} breaks the Dockerfile contract:")
            lines += [f"  {problem}" for problem in found]
    if lines:
        raise DefinitionError("\n".join([*lines, HELP]))

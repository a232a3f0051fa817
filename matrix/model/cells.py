"""Expand a matrix definition into cells, and select cells by shell-style patterns."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from matrix import assets
from matrix.errors import DefinitionError
from matrix.model.definition import MatrixDefinition, Platform, Rule, Source, Variant
from matrix.model.kinds import combinations
from matrix.model.vocabulary import CellKind


@dataclass(frozen=True)
class Cell:
    platform: Platform
    source: Source
    variant: Variant
    scenarios: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.platform.name}/{self.source.version}/{self.variant.name}"

    @property
    def slug(self) -> str:
        """The id made safe for one file or directory name."""
        return assets.slug(self.id)

    @property
    def kind(self) -> CellKind:
        """Its platform's, but for a variant with a provider: skew (model/kinds/skew.py)."""
        return CellKind.SKEW if self.variant.provider is not None else self.platform.kind


def expand(defn: MatrixDefinition) -> list[Cell]:
    """platforms x sources x variants in file order; a cell stays unless an exclude
    matches it and no include does."""
    for rule in defn.include + defn.exclude:
        check_rule_matches(defn, rule)  # a rule matching nothing is a typo
    cells = []
    for platform, source, variant in combinations(defn):
        key = (platform.name, source.version, variant.name)
        excluded = any(r.matches(*key) for r in defn.exclude)
        if excluded and not any(r.matches(*key) for r in defn.include):
            continue
        cells.append(Cell(platform, source, variant, defn.scenarios))
    return cells


def check_rule_matches(defn: MatrixDefinition, rule: Rule) -> None:
    """A rule that matches nothing is a typo, not a no-op."""
    combos = combinations(defn)
    if any(rule.matches(p.name, s.version, v.name) for p, s, v in combos):
        return
    fields = (
        ("platform", rule.platform, sorted({p.name for p, _, _ in combos})),
        ("version", rule.version, sorted({s.version for _, s, _ in combos})),
        ("variant", rule.variant, sorted({v.name for _, _, v in combos})),
    )
    culprits = [
        f"{key} = {pattern!r} matches none of {', '.join(names)}"
        for key, pattern, names in fields
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names)
    ]
    why = "; ".join(culprits) or "no platform/version/variant combination matches all its fields"
    raise DefinitionError(f"{defn.path}:{rule.line or 1}: rule matches no cell: {why}")


def select(cells: Sequence[Cell], patterns: Sequence[str]) -> list[Cell]:
    """Cells whose id matches any pattern (fnmatch), in `cells` order; no pattern = all."""
    if not patterns:
        return list(cells)
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(c.id, pattern) for c in cells):
            raise DefinitionError(_no_match(cells, pattern))
    return [c for c in cells if any(fnmatch.fnmatchcase(c.id, p) for p in patterns)]


def _no_match(cells: Sequence[Cell], pattern: str) -> str:
    ids = [c.id for c in cells]
    msg = f"no cell matches {pattern!r}"
    platforms = list(dict.fromkeys(c.platform.name for c in cells))
    first = pattern.split("/", 1)[0]
    if not any(fnmatch.fnmatchcase(p, first) for p in platforms):
        msg += f"; no platform matches {first!r} (platforms: {', '.join(platforms)})"
    valid = "\n  ".join(ids) if ids else "(none: the matrix expands to no cell)"
    example = f", e.g. '{platforms[0]}/*'" if platforms else ""
    return f"{msg}. Cell ids are PLATFORM/VERSION/VARIANT{example}. Valid cells:\n  {valid}"

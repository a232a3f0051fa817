"""Expand a matrix definition into cells, and select cells by shell-style patterns."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from matrix import assets
from matrix.errors import DefinitionError
from matrix.model.kinds import combinations
from matrix.model.types import MatrixDefinition, Platform, Rule, Source, Variant
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
    """A rule that matches nothing is a typo, not a no-op (but for an inherited one: see
    Rule.inherited)."""
    combos = combinations(defn)
    if rule.inherited or any(rule.matches(p.name, s.version, v.name) for p, s, v in combos):
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


_PARTS = ("platform", "version", "variant")
_LIST_CELLS = 20  # a matrix this small lists its cell ids; a larger one, the values of the part


def _no_match(cells: Sequence[Cell], pattern: str) -> str:
    """Which part of PLATFORM/VERSION/VARIANT matched nothing (among the cells the parts
    before it matched), with that part's valid values: a typo is then one look away."""
    msg = f"no cell matches {pattern!r}"
    given = pattern.split("/", 2)
    parts = given + ["*"] * (3 - len(given))  # the parts not given: any
    left = list(cells)
    for i, (name, part) in enumerate(zip(_PARTS, parts, strict=False)):
        values = list(dict.fromkeys(c.id.split("/")[i] for c in left))
        kept = [c for c in left if fnmatch.fnmatchcase(c.id.split("/")[i], part)]
        if not kept:
            where = f" of {'/'.join(parts[:i])}" if i else ""
            msg += f"; no {name}{where} matches {part!r} ({name}s: {', '.join(values)})"
            break
        left = kept
    else:  # each part matches alone: the pattern lacks parts ("debian-12" for "debian-12/*")
        msg += f"; a cell id has three parts ('{'/'.join(given)}/*' takes every cell below it)"
    example = f", e.g. '{cells[0].platform.name}/*'" if cells else ""
    msg += f". Cell ids are PLATFORM/VERSION/VARIANT{example}"
    if not cells:
        return msg + ". The matrix expands to no cell."
    if len(cells) <= _LIST_CELLS:
        return msg + ". Valid cells:\n  " + "\n  ".join(c.id for c in cells)
    return msg + f"; `fips-matrix run --list` lists all {len(cells)}."

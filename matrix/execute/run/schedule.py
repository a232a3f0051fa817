"""The order of a run's work. The compiles are its cost, so the builders do nothing else:

- a compile group (one platform, source and set of compile options) goes to one builder,
  which compiles once and relinks for the group's other cells; any builder takes the next
  group, of any platform; one builder more than cores, so that one in a serial step
  (Configure, a generator, the final link) leaves no core idle;
- a platform's base image and its stages before compile (toolchain, the runtime's Python)
  are made ahead, in the order the builders will need them (the bases two at a time);
- probes, skew images (put together from two cells' images) and the cells of the
  distribution's own OpenSSL (nothing compiled) run beside the compiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from matrix.execute.images.builder import LINK_ONLY_OPTIONS
from matrix.model import kinds
from matrix.model.cells import Cell
from matrix.model.types import Platform


@dataclass(frozen=True)
class CompileGroup:
    """Cells whose images share one compile: built one after another by one builder, so the
    compile runs once and the others find it in the layer cache."""

    cells: tuple[Cell, ...]

    @property
    def platform(self) -> Platform:
        return self.cells[0].platform


@dataclass(frozen=True)
class Plan:
    groups: tuple[CompileGroup, ...]  # in the order the builders take them
    beside: tuple[Cell, ...]  # nothing of ours compiled: built and probed beside the compiles
    skew: tuple[Cell, ...]  # made of two other cells' images, once those are built
    platforms: tuple[Platform, ...]  # in the order their stages are first needed

    def compiled(self, platform: Platform) -> list[Cell]:
        """The platform's cells that are compiled here."""
        return [c for g in self.groups if g.platform.name == platform.name for c in g.cells]


def compile_key(cell: Cell) -> tuple[str, str, tuple[str, ...]]:
    options = tuple(o for o in cell.variant.configure if o not in LINK_ONLY_OPTIONS)
    return (cell.platform.name, cell.source.version, options)


def plan(cells: Sequence[Cell]) -> Plan:
    """A platform's groups together, platforms in the order of their first cell (a new
    platform's stages are needed as seldom as possible); within a platform, the newest
    version first: newer versions take longer to compile, and the run's last compile, the
    one no other compile runs beside at the end, should be a short one."""
    groups: dict[tuple[str, str, tuple[str, ...]], list[Cell]] = {}
    beside: list[Cell] = []
    skew: list[Cell] = []
    for cell in cells:
        lane = kinds.of(cell.kind).lane
        if lane == "after-parts":
            skew.append(cell)
        elif lane == "compile":
            groups.setdefault(compile_key(cell), []).append(cell)
        else:  # nothing of ours compiled
            beside.append(cell)
    platforms: dict[str, Platform] = {}
    for cell in [*(g[0] for g in groups.values()), *beside, *skew]:
        platforms.setdefault(cell.platform.name, cell.platform)
    order = list(groups)
    first_of_platform = {k[0]: order.index(k) for k in reversed(order)}
    order.sort(key=lambda k: (first_of_platform[k[0]], _newest_first(k[1])))
    return Plan(
        groups=tuple(CompileGroup(tuple(groups[k])) for k in order),
        beside=tuple(beside),
        skew=tuple(skew),
        platforms=tuple(platforms.values()),
    )


def _newest_first(version: str) -> tuple[int, ...]:
    """A sort key putting newer versions first: 4.0.2 before 3.6.3 before 3.0.20."""
    return tuple(-int(part) if part.isdigit() else 0 for part in version.split("."))

"""The generated sections, each between its markers, made from one results directory: the
results' own (matrix/report/readme.py) and the bench's figures from its bench.json
(matrix/bench/readme.py). `fips-matrix report DIR --readme FILE...` calls this: the README
holds the first, docs/speed.md the second, and each file gets whichever markers it has."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matrix.bench.readme import speed_section
from matrix.files import write_text
from matrix.report.readme import Section, results_section, rewritten


def sections(file: Path, results: Path) -> list[Section]:
    """Every generated section as `file` would show it (paths relative to it)."""
    return [results_section(file, results), speed_section(file, results)]


def update(files: Sequence[Path], results: Path) -> list[bool]:
    """Rewrites each file's sections from `results`; per file, whether its text changed.
    Every file's new text is made before the first is written: all of them, or none."""
    new = [rewritten(file, sections(file, results)) for file in files]
    for file, text in zip(files, new, strict=True):
        if text is not None:
            write_text(file, text)  # atomically: a reader never sees half a README
    return [text is not None for text in new]

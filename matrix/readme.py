"""The README's generated sections, each between its markers, made from one results
directory: the results' own (matrix/report/readme.py) and the bench's figures from its
bench.json (matrix/bench/readme.py). `fips-matrix report DIR --readme FILE` calls this."""

from __future__ import annotations

from pathlib import Path

from matrix.bench.readme import speed_section
from matrix.report.readme import rewrite_readme


def update(readme: Path, results: Path) -> bool:
    """Rewrites `readme`'s sections from `results`; whether its text changed."""
    return rewrite_readme(readme, results, [speed_section(readme, results)])

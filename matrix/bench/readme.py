"""The bench's figures (the end of docs/speed.md), made from the reference run's bench.json by
`fips-matrix report results/reference --readme docs/speed.md`, as the README's results section
is (matrix/report/readme.py): the figures a reader quotes are the file's, and
tests/unit/test_readme.py fails when the two disagree. Its prose is wrapped for a screen; the
tables stay in code blocks as the bench prints them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from matrix.assets import BENCH_NAME
from matrix.bench.figures import report
from matrix.bench.gap import gap_table
from matrix.report.readme import Section
from matrix.report.wrap import wrap_markdown

BEGIN = "<!-- BEGIN fips-matrix report --readme: the bench's figures; do not edit -->"
END = "<!-- END fips-matrix report --readme: the bench's figures -->"


def speed_section(readme: Path, reference: Path) -> Section:
    """The section from `reference`'s bench.json (or a line saying there is none)."""
    path = reference / BENCH_NAME
    name = os.path.relpath(path.resolve(), readme.resolve().parent)
    try:
        figures = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Section(BEGIN, END, f"No readable `{name}`: run `nox -s bench` and publish it.")
    return Section(BEGIN, END, speed_text(figures, name))


def speed_text(figures: dict[str, Any], name: str) -> str:
    engine = figures.get("engine")
    where = (
        f"engine {engine.get('version')} on kernel {engine.get('kernel')}"
        if isinstance(engine, dict)
        else "engine unknown"
    )
    lines = [
        f"From `{name}`: one `nox -s bench` on this project's machine ({figures.get('cores')} "
        f"cores, {where}):",
        "",
        "```text",
        report(figures),
        "```",
    ]
    cold = figures.get("cold")
    if isinstance(cold, dict) and isinstance(cold.get("gap"), dict):
        lines += [
            "",
            "Where the cold run's wall time above the compiles went (per phase: how long it "
            "ran while 2+, 1 or 0 compiles ran, the cores busy meanwhile, its share of the CPU "
            "that was not a compile's and of the idle core-seconds, and so of the wall time "
            "above L):",
            "",
            "```text",
            gap_table(cold["gap"]),
            "```",
        ]
    return "\n".join(wrap_markdown(lines))

"""Reports of a finished run: summary.json and table.md in the results directory, and the
terminal table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matrix.results import OK, CellResult, ResultsDir, write_text
from matrix.table import render

SUMMARY_SCHEMA = 1


def scenarios_of(results: Sequence[CellResult]) -> list[str]:
    seen: list[str] = []
    for r in results:
        for s in r.scenarios:
            if s.scenario not in seen:
                seen.append(s.scenario)
    return seen


def write_reports(
    out: ResultsDir, results: Sequence[CellResult], run: dict[str, Any], scenarios: Sequence[str]
) -> tuple[Path, Path]:
    summary = {
        "schema": SUMMARY_SCHEMA,
        "run": run,
        "cells": [
            {
                "cell": r.cell,
                "outcome": r.outcome,
                "reason": r.reason,
                "result": str(out.cell_path(r.cell).relative_to(out.root)),
                "scenarios": {
                    s.scenario: {"verdict": s.verdict, "cause": s.cause} for s in r.scenarios
                },
            }
            for r in results
        ],
    }
    summary_path = out.root / "summary.json"
    table_path = out.root / "table.md"
    write_text(summary_path, out.redact(json.dumps(summary, indent=2) + "\n"))
    write_text(table_path, out.redact(markdown(results, run, scenarios)))
    return summary_path, table_path


def markdown(results: Sequence[CellResult], run: dict[str, Any], scenarios: Sequence[str]) -> str:
    engine = run.get("engine", {})
    lines = [
        "# FIPS provider reload matrix",
        "",
        f"Run {run.get('id', '?')}: {run.get('started', '?')} to {run.get('finished', '?')}, "
        f"fips-reload-matrix {run.get('tool_version', '?')}, matrix digest "
        f"`{str(run.get('matrix_digest', '?'))[:16]}`, engine {engine.get('version', '?')} on "
        f"kernel {engine.get('kernel', '?')}.",
        "",
        "Verdicts: CLEAN_RELOAD (fips.so left the process, the reload passed), STICKY_ERROR "
        "(still mapped, the reload failed), MAPPED_BUT_RECOVERED, UNLOADED_BUT_FAILED. "
        "Each cell's evidence is in `cells/<cell>.json`.",
        "",
        render(results, scenarios, "github"),
    ]
    problems = [r for r in results if r.outcome != OK]
    if problems:
        lines += ["### Cells without a full result", ""]
        for r in problems:
            logs = ", ".join(f"{k}: `{v}`" for k, v in r.logs.items())
            lines.append(f"- `{r.cell}`: {r.outcome}: {r.reason}" + (f" ({logs})" if logs else ""))
        lines.append("")
    return "\n".join(lines)

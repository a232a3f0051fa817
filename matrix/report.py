"""Reports of a finished run, all made from the results alone (so `fips-matrix report DIR`
makes them again without running anything): summary.json, table.md, report.html and
junit.xml in the results directory, and the Markdown table in $GITHUB_STEP_SUMMARY."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matrix.html_report import render_html
from matrix.junit import render_junit
from matrix.results import OK, CellResult, ResultsDir, write_text
from matrix.results import scenarios_of as scenarios_of  # part of this module's interface
from matrix.table import render

SUMMARY_SCHEMA = 1


def write_reports(
    out: ResultsDir,
    results: Sequence[CellResult],
    run: dict[str, Any],
    scenarios: Sequence[str],
    env: Mapping[str, str] = os.environ,
) -> dict[str, Path]:
    """Every report of the run; returns what was written, by kind."""
    # Redact the inputs, not the output: the placeholder is not valid HTML or XML.
    safe = [CellResult.from_json(json.loads(out.redact(json.dumps(r.to_json())))) for r in results]
    safe_run: dict[str, Any] = json.loads(out.redact(json.dumps(run)))
    summary = {
        "schema": SUMMARY_SCHEMA,
        "run": safe_run,
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
            for r in safe
        ],
    }
    written = {
        "summary": out.root / "summary.json",
        "markdown": out.root / "table.md",
        "html": out.root / "report.html",
        "junit": out.root / "junit.xml",
    }
    table = markdown(safe, safe_run, scenarios)
    write_text(written["summary"], json.dumps(summary, indent=2) + "\n")
    write_text(written["markdown"], table)
    write_text(written["html"], render_html(safe, safe_run, scenarios))
    write_text(written["junit"], render_junit(safe, safe_run, scenarios))
    step_summary = env.get("GITHUB_STEP_SUMMARY")
    if step_summary:  # GitHub Actions shows this file on the run's page
        with open(step_summary, "a", encoding="utf-8") as f:
            f.write(table + "\n")
        written["github_step_summary"] = Path(step_summary)
    return written


def load_run(out: ResultsDir) -> tuple[list[CellResult], dict[str, Any]]:
    """A results directory's cells and run. When summary.json names the run's cells, only
    those are taken: cells/ may keep results of other, earlier runs."""
    run: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        run = json.loads((out.root / "summary.json").read_text(encoding="utf-8"))["run"]
    results = list(out.all_cells())
    wanted = run.get("cells") if isinstance(run, dict) else None
    if isinstance(wanted, list):
        by_id = {r.cell: r for r in results}
        results = [by_id[c] for c in wanted if c in by_id]
    return results, run if isinstance(run, dict) else {}


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

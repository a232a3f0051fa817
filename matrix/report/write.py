"""Every report of a run, made from the results alone (so `fips-matrix report DIR` makes them
again without running anything): summary.json, table.md, report.html and junit.xml in the
results directory, and the Markdown tables in $GITHUB_STEP_SUMMARY."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matrix.files import write_text
from matrix.report.html import render_html
from matrix.report.junit import render_junit
from matrix.report.table import render_markdown
from matrix.results.diff import Baseline
from matrix.results.records import CellResult, Run
from matrix.results.store import ResultsDir


def write_reports(
    out: ResultsDir,
    results: Sequence[CellResult],
    run: Run,
    scenarios: Sequence[str],
    env: Mapping[str, str] = os.environ,
    baseline: Baseline | None = None,
) -> dict[str, Path]:
    """Every report of the run; returns what was written, by kind. With a baseline, JUnit
    fails every test case whose status differs from the baseline's."""
    # Redact the inputs, not the output: the placeholder is not valid HTML or XML.
    safe = [CellResult.from_json(json.loads(out.redact(json.dumps(r.to_json())))) for r in results]
    safe_run = Run.from_json(json.loads(out.redact(json.dumps(run.to_json()))))
    written = {
        "summary": out.write_summary(safe_run, summary_cells(out, safe)),
        "markdown": out.root / "table.md",
        "html": out.root / "report.html",
        "junit": out.root / "junit.xml",
    }
    table = render_markdown(safe, safe_run, scenarios)
    write_text(written["markdown"], table)
    write_text(written["html"], render_html(safe, safe_run, scenarios))
    write_text(written["junit"], render_junit(safe, safe_run, scenarios, baseline))
    step_summary = env.get("GITHUB_STEP_SUMMARY")
    if step_summary:  # GitHub Actions shows this file on the run's page
        with open(step_summary, "a", encoding="utf-8") as f:
            f.write(table + "\n")
        written["github_step_summary"] = Path(step_summary)
    return written


def summary_cells(out: ResultsDir, results: Sequence[CellResult]) -> list[dict[str, Any]]:
    """summary.json's line of each cell: its outcome and each scenario's verdict, status (the
    verdict, or DIED_AFTER_RELOAD) and cause."""
    return [
        {
            "cell": r.cell,
            "outcome": r.outcome,
            "reason": r.reason,
            "result": str(out.cell_path(r.cell).relative_to(out.root)),
            "scenarios": {
                s.scenario: {"verdict": s.verdict, "status": s.status, "cause": s.cause}
                for s in r.scenarios
            },
        }
        for r in results
    ]

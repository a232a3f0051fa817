"""Every report of a run, made from the results alone (so `fips-matrix report DIR` makes them
again without running anything): summary.json, table.md, report.html and junit.xml in the
results directory, and the Markdown tables in $GITHUB_STEP_SUMMARY. All are made in memory
first, then each file is replaced atomically: a report that cannot be made leaves every file
as it was."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matrix.files import write_text
from matrix.report.diff import Baseline
from matrix.report.html import render_html
from matrix.report.junit import render_junit
from matrix.report.table import render_markdown
from matrix.results.records import CellResult, Run
from matrix.results.store import ResultsDir


@dataclass(frozen=True)
class Reports:
    """Every report of a run, made in memory: kind -> (file, text)."""

    files: dict[str, tuple[Path, str]]

    def write(self, env: Mapping[str, str] = os.environ) -> dict[str, Path]:
        """Each file replaced atomically, and the table appended to $GITHUB_STEP_SUMMARY;
        returns what was written, by kind."""
        written = {}
        for kind, (path, text) in self.files.items():
            write_text(path, text)
            written[kind] = path
        step_summary = env.get("GITHUB_STEP_SUMMARY")
        if step_summary:  # GitHub Actions shows this file on the run's page
            with open(step_summary, "a", encoding="utf-8") as f:
                f.write(self.files["markdown"][1] + "\n")
            written["github_step_summary"] = Path(step_summary)
        return written


def render_reports(
    out: ResultsDir,
    results: Sequence[CellResult],
    run: Run,
    scenarios: Sequence[str],
    baseline: Baseline | None = None,
) -> Reports:
    """Every report of the run, nothing written yet: whatever fails in the making fails
    before any file changed. With a baseline, JUnit fails every test case whose status
    differs from the baseline's."""
    # Redact the inputs, not the output: the placeholder is not valid HTML or XML.
    safe = [CellResult.from_json(json.loads(out.redact(json.dumps(r.to_json())))) for r in results]
    safe_run = Run.from_json(json.loads(out.redact(json.dumps(run.to_json()))))
    return Reports(
        {
            "summary": (out.summary_path, out.summary_text(safe_run, summary_cells(out, safe))),
            "markdown": (out.root / "table.md", render_markdown(safe, safe_run, scenarios)),
            "html": (out.root / "report.html", render_html(safe, safe_run, scenarios)),
            "junit": (out.root / "junit.xml", render_junit(safe, safe_run, scenarios, baseline)),
        }
    )


def write_reports(
    out: ResultsDir,
    results: Sequence[CellResult],
    run: Run,
    scenarios: Sequence[str],
    env: Mapping[str, str] = os.environ,
    baseline: Baseline | None = None,
) -> dict[str, Path]:
    """Every report of the run, all made before the first is written; returns what was
    written, by kind."""
    return render_reports(out, results, run, scenarios, baseline).write(env)


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

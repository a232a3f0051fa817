"""The HTML report, as a real browser renders it: Debian's headless chromium dumps the DOM
it built and takes a screenshot (kept where FIPS_MATRIX_SCREENSHOT says, if set)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path

import pytest

from matrix.judge.verdict import judge
from matrix.model.definition import KNOWN_SCENARIOS
from matrix.model.vocabulary import Outcome
from matrix.report.html import render_html
from matrix.results.records import CellResult, Run, ScenarioResult, scenarios_of
from matrix.results.store import ResultsDir

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures"
KNOWN = 'data-cell="debian-12/3.0.20/default" data-scenario="ondemand-kat"'
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def results_of_real_probes(dest: Path) -> Path:
    """A results directory of real probe documents (tests/unit/fixtures): a NODELETE build
    and the same objects relinked without it."""
    out = ResultsDir(dest)
    out.prepare()
    for variant, build in (("default", "nodelete"), ("no-pinshared", "unpinned")):
        cell_id = "debian-12/3.0.20/" + variant
        r = CellResult(cell_id, "debian-12", "glibc", "3.0.20", variant, Outcome.OK)
        for scenario in KNOWN_SCENARIOS[:5]:
            doc = json.loads((FIXTURES / f"glibc-{build}-{scenario}.json").read_text())
            j = judge(scenario, doc)
            r.scenarios.append(
                ScenarioResult(
                    scenario,
                    j.verdict,
                    j.cause,
                    j.short,
                    list(j.evidence),
                    j.facts,
                    0,
                    False,
                    0.1,
                    doc,
                )
            )
        out.write_cell(r)
    out.write_summary(Run.unknown(["debian-12/3.0.20/default", "debian-12/3.0.20/no-pinshared"]))
    return dest


def chromium(tmp_path: Path, profile: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(CHROMIUM), *FLAGS, f"--user-data-dir={tmp_path / profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium"
)
def test_chromium_renders_the_report(tmp_path: Path) -> None:
    root = results_of_real_probes(tmp_path / "input")
    results, run = ResultsDir(root).read_run()
    assert run is not None
    page = root / "report.html"
    page.write_text(render_html(results, run, scenarios_of(results)), encoding="utf-8")

    dumped = chromium(tmp_path, "dom", "--dump-dom", page.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = dumped.stdout
    assert dom.count("<table") == len(scenarios_of(results))
    assert f'{KNOWN} data-verdict="STICKY_ERROR"' in dom
    assert "<details>" in dom and "NODELETE set" in dom  # the evidence, folded away

    png = tmp_path / "report.png"
    shot = chromium(
        tmp_path, "shot", f"--screenshot={png}", "--window-size=1400,1000", page.as_uri()
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert (width, height) == (1400, 1000)
    assert len(data) > 20_000  # a blank page of that size compresses to a few KB
    keep = os.environ.get("FIPS_MATRIX_SCREENSHOT")
    if keep:
        Path(keep).write_bytes(data)

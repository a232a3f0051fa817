"""The HTML report, as a real browser renders it: Debian's headless chromium dumps the DOM
it built and takes screenshots (kept where FIPS_MATRIX_SCREENSHOT says, if set); the page of
the committed reference run (the whole default matrix) is measured at 1400 px and 400 px:
nothing may overflow the page, and at 1400 px no table may need sideways scrolling."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.made_results import fixture_result

from matrix.assets import REFERENCE_DIR
from matrix.model.vocabulary import KNOWN_SCENARIOS, Outcome
from matrix.report.html import render_html
from matrix.results.records import CellResult, Run, scenarios_of
from matrix.results.store import ResultsDir

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
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
            r.scenarios.append(fixture_result(build, scenario, seconds=0.1))
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
    # the answer's table first, then one per scenario
    assert dom.count("<table") == 1 + len(scenarios_of(results))
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


# Runs inside the page (a copy made for the test: the report itself has no script): its own
# width and every table box's, posted to the page that frames it.
MEASURE = """<script>
(function () {
  var d = document.documentElement;
  var boxes = Array.prototype.map.call(document.querySelectorAll(".scroll"), function (b) {
    return [b.scrollWidth, b.clientWidth];
  });
  parent.postMessage(JSON.stringify({scrollWidth: d.scrollWidth, clientWidth: d.clientWidth,
    innerWidth: window.innerWidth, tables: boxes}), "*");
})();
</script>"""


def measured_at(tmp_path: Path, page: Path, width: int) -> dict[str, Any]:
    """The page laid out in a frame of that width (a headless window cannot be narrower than
    500 px): the document's scroll width against its client width, and each table box's."""
    probe = page.with_name("measured.html")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"))
    frame = page.with_name(f"frame-{width}.html")
    frame.write_text(
        '<!DOCTYPE html><html><body style="margin:0"><pre id="measured"></pre><script>'
        "window.addEventListener('message', function (e) {"
        " document.getElementById('measured').textContent = e.data; });</script>"
        f'<iframe src="{probe.name}" style="border:0;width:{width}px;height:900px"></iframe>'
        "</body></html>"
    )
    dumped = chromium(
        tmp_path, f"measure-{width}", "--virtual-time-budget=5000", "--dump-dom", frame.as_uri()
    )
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    found = re.search(r'<pre id="measured">(\{.*?\})</pre>', dumped.stdout)
    assert found, dumped.stdout[-2000:]
    figures: dict[str, Any] = json.loads(found.group(1).replace("&quot;", '"'))
    assert figures["innerWidth"] == width
    return figures


def screenshot(tmp_path: Path, page: Path, width: int) -> bytes:
    png = tmp_path / f"report-{width}.png"
    shot = chromium(
        tmp_path,
        f"shot-{width}",
        f"--screenshot={png}",
        f"--window-size={width},1000",
        page.as_uri(),
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (width, 1000)  # the IHDR chunk
    assert len(data) > 20_000  # a blank page of that size compresses to a few KB
    keep = os.environ.get("FIPS_MATRIX_SCREENSHOT")
    if keep:
        Path(keep).with_suffix(f".{width}.png").write_bytes(data)
    return data


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium"
)
def test_the_reference_report_fits_1400_px_and_a_phone(tmp_path: Path) -> None:
    root = tmp_path / "reference"
    assert any((REFERENCE_DIR / "cells").glob("*.json")), f"no reference run at {REFERENCE_DIR}"
    shutil.copytree(REFERENCE_DIR, root, ignore=shutil.ignore_patterns("*.log"))
    results, run = ResultsDir(root).read_run()
    assert run is not None and results
    page = root / "report.html"
    page.write_text(render_html(results, run, scenarios_of(results)), encoding="utf-8")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in (
        page.read_text(encoding="utf-8")
    )

    desk = measured_at(tmp_path, page, 1400)
    assert desk["scrollWidth"] <= desk["clientWidth"], desk  # the page never scrolls sideways
    assert len(desk["tables"]) == 1 + len(scenarios_of(results))  # the answer's, then each
    for scroll, client in desk["tables"]:
        assert scroll <= client, desk  # nor does any table of the default matrix at 1400 px

    phone = measured_at(tmp_path, page, 400)
    assert phone["scrollWidth"] <= phone["clientWidth"], phone  # the page itself fits...
    assert all(client <= phone["clientWidth"] for _, client in phone["tables"])
    assert any(scroll > client for scroll, client in phone["tables"]), phone  # ...tables scroll
    print(f"1400 px: {desk}\n400 px: {phone}")

    screenshot(tmp_path, page, 1400)
    screenshot(tmp_path, page, 400)

"""The HTML report of the committed results, as a real browser renders it: Debian's headless
chromium dumps the DOM it built and takes a screenshot."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest

from matrix.html_report import render_html
from matrix.report import scenarios_of
from matrix.results import ResultsDir

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
COMMITTED_RUN = "64ec014"  # a real run of the default matrix's first four cells
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


def committed_results(dest: Path) -> Path:
    """results/latest as committed (a running job may be rewriting the working tree's)."""
    tar = subprocess.run(
        ["git", "-C", str(REPO), "archive", COMMITTED_RUN, "results/latest"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        for member in archive.getmembers():
            data = archive.extractfile(member) if member.isfile() else None
            if data is not None:
                (dest / member.name).parent.mkdir(parents=True, exist_ok=True)
                (dest / member.name).write_bytes(data.read())
    return dest / "results/latest"


def chromium(tmp_path: Path, profile: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(CHROMIUM), *FLAGS, f"--user-data-dir={tmp_path / profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium"
)
def test_chromium_renders_the_report(tmp_path: Path) -> None:
    root = committed_results(tmp_path / "input")
    results = list(ResultsDir(root).all_cells())
    run = json.loads((root / "summary.json").read_text(encoding="utf-8"))["run"]
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

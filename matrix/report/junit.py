"""JUnit XML of a run, for CI: one <testsuite> per platform under one <testsuites> root, one
<testcase classname="PLATFORM/VERSION/VARIANT" name="SCENARIO"> per cell and scenario.

What passes is what a CI user can rely on: after a forced failure the process recovered with
a fresh module (CLEAN_RELOAD), or a control scenario came out as it must. A process that did
not recover cleanly is a <failure> of that platform's reliability, with the verdict and
cause as its message and the evidence as its text. MAPPED_BUT_RECOVERED after a forced
failure fails too: the module never left the process, so the recovery rests on the module
resetting its own error state, which nothing here can vouch for. A measurement that did not
happen (INCONCLUSIVE, a crashed or hung probe, a failed build, the tool's own error) is an
<error>; a cell that was not run is <skipped>.

A cell without scenario results (BUILD_FAILED, SKIPPED, ERROR) gets one testcase per
expected scenario carrying the cell's outcome, so each test keeps its name from run to run
in the CI's history; "build" when no scenario is known at all."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from matrix.model.vocabulary import SCENARIOS, junit_status
from matrix.results.records import CellResult, Run, scenarios_of

# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render_junit(
    results: Sequence[CellResult],
    run: Run,
    scenarios: Sequence[str] | None = None,
) -> str:
    """scenarios: those every cell was meant to run (the matrix's); default: every scenario
    seen in the results, in first-seen order."""
    expected = list(scenarios) if scenarios is not None else scenarios_of(results)
    root = ET.Element("testsuites", name="fips-reload-matrix")
    platforms: dict[str, list[CellResult]] = {}
    for r in results:
        platforms.setdefault(r.platform, []).append(r)
    for platform, cells in platforms.items():
        suite = ET.SubElement(root, "testsuite", name=platform)
        if run.started:
            suite.set("timestamp", run.started)
        # a libc version the probe saw beats the platform's declared libc name
        libc = next((c.libc_label() for c in cells if c.libc_label() != c.libc), cells[0].libc)
        _properties(suite, run, libc)
        for r in cells:
            names = [*expected, *(s.scenario for s in r.scenarios if s.scenario not in expected)]
            for name in names or ["build"]:
                _testcase(suite, r, name)
        _count(suite, suite.findall("testcase"))
    _count(root, root.findall("testsuite/testcase"))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _properties(suite: ET.Element, run: Run, libc: str) -> None:
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("run_id", run.id),
        ("tool_version", run.tool_version),
        ("matrix_digest", run.matrix_digest),
        ("engine_version", run.engine.version),
        ("kernel", run.engine.kernel),
        ("libc", libc),
    ):
        if value is not None:
            ET.SubElement(props, "property", name=name, value=_xml(str(value)))


def _testcase(suite: ET.Element, r: CellResult, name: str) -> None:
    s = next((s for s in r.scenarios if s.scenario == name), None)
    case = ET.SubElement(suite, "testcase", classname=r.cell, name=name)
    case.set("time", f"{s.seconds:.3f}" if s is not None else "0.000")
    if s is None and r.scenarios:
        ET.SubElement(case, "skipped", message="this scenario was not run in this cell")
        return
    if s is None:  # the cell has no scenario results: its outcome stands for each
        status = junit_status(name, r.outcome)
        message = f"{r.outcome}: {r.reason}" if r.reason else r.outcome
        text = "\n".join([r.reason, *(f"{kind} log: {path}" for kind, path in r.logs.items())])
        kind = r.outcome
    else:
        status = junit_status(name, s.verdict)
        message = f"{s.verdict}: {s.cause}"
        expects = SCENARIOS[name].control_expects if name in SCENARIOS else ()
        if status == "failure" and expects:
            message += f" (control: expected {' or '.join(expects)})"
        text = "\n".join([*s.evidence, _fingerprint_line(r)])
        kind = s.verdict
    if status == "skipped":
        ET.SubElement(case, "skipped", message=_xml(r.reason or r.outcome))
    elif status == "passed":
        ET.SubElement(case, "system-out").text = _xml(f"{message}\n{text}")
    else:
        element = ET.SubElement(case, status, message=_xml(message), type=kind)
        element.text = _xml(text)


def _fingerprint_line(r: CellResult) -> str:
    fp = r.fingerprint
    image = (fp.get("image") or {}).get("id", "?")
    return f"image {image}, fips.so sha256 {fp.get('fips_so_sha256', '?')}, libc {r.libc_label()}"


def _count(element: ET.Element, cases: list[ET.Element]) -> None:
    element.set("tests", str(len(cases)))
    element.set("failures", str(_with(cases, "failure")))
    element.set("errors", str(_with(cases, "error")))
    element.set("skipped", str(_with(cases, "skipped")))
    element.set("time", f"{sum(float(c.get('time', 0)) for c in cases):.3f}")


def _with(cases: list[ET.Element], status: str) -> int:
    return sum(1 for c in cases if c.find(status) is not None)


def _xml(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)

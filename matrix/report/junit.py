"""JUnit XML of a run, for CI: one <testsuite> per platform under one <testsuites> root, one
<testcase> per cell and scenario.

Red means something to act on. A reload verdict (CLEAN_RELOAD, MAPPED_BUT_RECOVERED,
UNLOADED_BUT_FAILED, STICKY_ERROR) is a fact about the platform, not a regression: it passes,
with the verdict, cause, evidence and fingerprint in the test case's <system-out>. A test case
fails (<failure>) when the process died after its reload, a control scenario did not come out
as it must, repeated runs disagreed (flaky), or its status differs from the baseline's
(`--baseline DIR`: the message names both; a death is compared as a rate, judge/fate.py). With
a baseline, a failure the baseline had as it is passes, named in a "known_failure" property
with its status, cause and rate: an unchanged run has no failing test case. A measurement
that did not happen (INCONCLUSIVE, a crashed or hung probe, a failed build, the tool's own
error, probes that disagree, a word this tool does not know) is an <error>; a cell that was
not run is <skipped>.

Names: classname "fips-matrix.PLATFORM/VERSION/VARIANT" with every dot of the cell id written
"_" ("fips-matrix.debian-12/3_0_20/default"), name the scenario. Jenkins splits a classname at
its last dot into package and class: so the package is "fips-matrix" and the class the whole
cell, instead of "debian-12/3" and "20/default". The cell id as it is opens the system-out.

A cell without scenario results (BUILD_FAILED, SKIPPED, ERROR) gets one testcase per expected
scenario carrying the cell's outcome, so each test keeps its name from run to run in the CI's
history; "build" when no scenario is known at all.

Nothing from a results file reaches the XML unfiltered: characters XML 1.0 cannot carry
(control characters, lone surrogates) become U+FFFD in every attribute and every text."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from matrix.model.vocabulary import SCENARIOS, JUnitStatus, Outcome, junit_status, look
from matrix.report.diff import Baseline, Change, comparable, diff_results
from matrix.report.layout import fate, scenario_of, share, status_at
from matrix.results.records import CellResult, Run, ScenarioResult, scenarios_of

# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
PACKAGE = "fips-matrix"
FLAKY, CHANGED = Outcome.FLAKY, "CHANGED_FROM_BASELINE"  # a failure's type
KNOWN = "known_failure"  # the property of a failure the baseline had as it is


def classname(cell: str) -> str:
    """ "fips-matrix.debian-12/3_0_20/default": the only dot is the package's."""
    return f"{PACKAGE}.{cell.replace('.', '_')}"


def render_junit(
    results: Sequence[CellResult],
    run: Run,
    scenarios: Sequence[str] | None = None,
    baseline: Baseline | None = None,
) -> str:
    """scenarios: those every cell was meant to run (the matrix's); default: every scenario
    seen in the results, in first-seen order."""
    expected = list(scenarios) if scenarios is not None else scenarios_of(results)
    changes = _changes(results, baseline)
    root = _element(None, "testsuites", name="fips-reload-matrix")
    platforms: dict[str, list[CellResult]] = {}
    for r in results:
        platforms.setdefault(r.platform, []).append(r)
    for platform, cells in platforms.items():
        suite = _element(root, "testsuite", name=platform)
        if run.started:
            suite.set("timestamp", _xml(run.started))
        # a libc version the probe saw beats the platform's declared libc name
        libc = next((c.libc_label() for c in cells if c.libc_label() != c.libc), cells[0].libc)
        _properties(suite, run, libc, baseline)
        for r in cells:
            names = [*expected, *(s.scenario for s in r.scenarios if s.scenario not in expected)]
            for name in names or ["build"]:
                _testcase(suite, r, name, changes.get((r.cell, name)), baseline)
        _count(suite, suite.findall("testcase"))
    _count(root, root.findall("testsuite/testcase"))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _changes(
    results: Sequence[CellResult], baseline: Baseline | None
) -> dict[tuple[str, str], Change]:
    if baseline is None:
        return {}
    diff = diff_results(baseline.results, results)
    return {(c.cell, c.scenario): c for c in diff.changed if comparable(c)}


def _properties(suite: ET.Element, run: Run, libc: str, baseline: Baseline | None) -> None:
    props = _element(suite, "properties")
    for name, value in (
        ("run_id", run.id),
        ("tool_version", run.tool_version),
        ("matrix_digest", run.matrix_digest),
        ("engine_version", run.engine.version),
        ("kernel", run.engine.kernel),
        ("libc", libc),
        ("baseline", baseline.name if baseline is not None else None),
    ):
        if value is not None:
            _element(props, "property", name=name, value=str(value))


def _testcase(
    suite: ET.Element,
    r: CellResult,
    name: str,
    change: Change | None,
    baseline: Baseline | None,
) -> None:
    s = scenario_of(r, name)
    case = _element(suite, "testcase", classname=classname(r.cell), name=name)
    case.set("time", _seconds(s))
    if s is None and r.scenarios:
        _element(case, "skipped", message="this scenario was not run in this cell")
        return
    status, kind, message, text = _judged(r, name, s)
    if change is not None and baseline is not None:
        against = (
            f"changed against the baseline {baseline.name}: {change.old} there, {change.new} here"
        )
        message = f"{against}; {message}"
        if status == "passed":
            status, kind = "failure", CHANGED
    elif status == "failure" and baseline is not None and _known(baseline, r.cell, name):
        # the same fact as the baseline's (a death at a rate the runs cannot tell apart, a
        # control that never held here): shown, named, and green, so that an unchanged run
        # has no failure; it fails again once it is new or moved
        message = f"known from the baseline {baseline.name}: {message}"
        props = _element(case, "properties")
        _element(props, "property", name=KNOWN, value=f"{kind}: {message}")
        status = "passed"
    if status == "skipped":
        _element(case, "skipped", message=r.reason or r.outcome)
        return
    if status != "passed":
        _element(case, status, text, message=message, type=kind)
    _element(case, "system-out", f"{r.cell} {name}: {message}\n{text}")


def _known(baseline: Baseline, cell: str, scenario: str) -> bool:
    """The baseline measured this scenario of this cell (with no change from it: the caller
    asks only then)."""
    old = next((r for r in baseline.results if r.cell == cell), None)
    s = scenario_of(old, scenario) if old is not None else None
    return s is not None and look(s.status) is not None


def _judged(
    r: CellResult, name: str, s: ScenarioResult | None
) -> tuple[JUnitStatus, str, str, str]:
    """(JUnit status, type, message, text) of the case on its own, before any baseline."""
    if s is None:  # the cell has no scenario results: its outcome stands for each
        message = f"{r.outcome}: {r.reason}" if r.reason else r.outcome
        logs = r.logs if isinstance(r.logs, dict) else {}
        text = "\n".join([r.reason, *(f"{kind} log: {path}" for kind, path in logs.items())])
        return junit_status(name, r.outcome), r.outcome, message, text
    status = status_at(r, name)
    judged, kind = junit_status(name, status), status
    message = f"{s.verdict}: {s.cause}"
    expects = SCENARIOS[name].control_expects if name in SCENARIOS else ()
    if status != s.verdict:
        died = fate(s)
        message = f"{status} {died.text()} ({message})" if died else f"{status} ({message})"
    elif judged == "failure" and expects:
        message += f" (control: expected {' or '.join(expects)})"
    runs = share(s)
    if runs:  # repeated runs did not all give this verdict
        message = f"flaky: {runs.strip()} runs gave {s.verdict}; {message}"
        if judged == "passed":
            judged, kind = "failure", FLAKY
    text = "\n".join([*map(str, s.evidence), _fingerprint_line(r)])
    return judged, kind, message, text


def _seconds(s: ScenarioResult | None) -> str:
    try:
        return f"{float(s.seconds):.3f}" if s is not None else "0.000"
    except (TypeError, ValueError):
        return "0.000"


def _fingerprint_line(r: CellResult) -> str:
    fp = r.fingerprint if isinstance(r.fingerprint, dict) else {}
    image = fp.get("image")
    image_id = image.get("id", "?") if isinstance(image, dict) else "?"
    return (
        f"image {image_id}, fips.so sha256 {fp.get('fips_so_sha256', '?')}, libc {r.libc_label()}"
    )


def _element(
    parent: ET.Element | None, tag: str, text: str | None = None, **attrs: str
) -> ET.Element:
    """An element whose every attribute and text went through _xml."""
    clean = {k: _xml(str(v)) for k, v in attrs.items()}
    element = ET.Element(tag, clean) if parent is None else ET.SubElement(parent, tag, clean)
    if text is not None:
        element.text = _xml(text)
    return element


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

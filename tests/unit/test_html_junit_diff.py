"""The HTML page, the JUnit XML and the diff of two runs, on the committed results of a real
run and on cells built here for the verdicts that run did not produce."""

from __future__ import annotations

import copy
import dataclasses
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from matrix.model.vocabulary import LOOKS, Outcome, Status, Verdict
from matrix.report.diff import Baseline, Diff, diff_results, format_diff, is_worse, status_text
from matrix.report.html import render_html, status_class
from matrix.report.junit import classname, render_junit
from matrix.report.layout import cell_code, layout, words_shown
from matrix.results.records import CellResult, Run, ScenarioResult, scenarios_of

OK, BUILD_FAILED, ERROR = Outcome.OK, Outcome.BUILD_FAILED, Outcome.ERROR
PROBE_CRASHED, SKIPPED, TIMEOUT = Outcome.PROBE_CRASHED, Outcome.SKIPPED, Outcome.TIMEOUT
CLEAN_RELOAD, INCONCLUSIVE = Verdict.CLEAN_RELOAD, Verdict.INCONCLUSIVE
MAPPED_BUT_RECOVERED, STICKY_ERROR = Verdict.MAPPED_BUT_RECOVERED, Verdict.STICKY_ERROR
UNLOADED_BUT_FAILED = Verdict.UNLOADED_BUT_FAILED
DIED = Status.DIED_AFTER_RELOAD

REPO = Path(__file__).resolve().parents[2]
# The committed reference run of the default matrix (fips-matrix publish made it).
REFERENCE = "results/reference"
KNOWN_CELL = "debian-12/3.0.20/default"  # README: STICKY_ERROR (NODELETE) in ondemand-kat
RUN = Run.from_json(
    {
        "id": "0123456789ab",
        "started": "2026-01-01T00:00:00+00:00",
        "finished": "2026-01-01T00:10:00+00:00",
        "tool_version": "0.1.0",
        "matrix_digest": "d" * 64,
        "engine": {"version": "20.10.24", "api_version": "1.41", "kernel": "6.1.0"},
    }
)


@pytest.fixture
def committed(reference: tuple[list[CellResult], Run]) -> tuple[list[CellResult], Run]:
    """The committed reference run of the default matrix (a copy: tests may change it)."""
    return copy.deepcopy(reference)


def scenario(
    name: str,
    verdict: str,
    cause: str = "a cause",
    evidence: tuple[str, ...] = ("first observation", "second observation"),
    seconds: float = 0.5,
    facts: dict[str, Any] | None = None,
) -> ScenarioResult:
    return ScenarioResult(
        scenario=name,
        verdict=verdict,
        cause=cause,
        short="",
        evidence=list(evidence),
        facts=facts or {},
        exit_code=0,
        timed_out=verdict == TIMEOUT,
        seconds=seconds,
        probe=None,
    )


def cell(
    cell_id: str, outcome: str = OK, scenarios: list[ScenarioResult] | None = None, reason: str = ""
) -> CellResult:
    platform, version, variant = cell_id.split("/")
    return CellResult(
        cell=cell_id,
        platform=platform,
        libc="glibc",
        version=version,
        variant=variant,
        outcome=outcome,
        reason=reason,
        scenarios=scenarios or [],
        fingerprint={"image": {"id": "sha256:" + "1" * 64}, "fips_so_sha256": "2" * 64},
    )


def mixed() -> list[CellResult]:
    """Every verdict and outcome, on two platforms."""
    return [
        cell(
            "plat-a/3.0.20/default",
            scenarios=[
                scenario("ondemand-kat", CLEAN_RELOAD, seconds=0.25),
                scenario("load-kat", STICKY_ERROR, "held: <b>NODELETE</b> & co", seconds=1.5),
                scenario("integrity", MAPPED_BUT_RECOVERED),
                scenario("leaked-ref", STICKY_ERROR),  # the control's expected outcome
                scenario("no-failure", MAPPED_BUT_RECOVERED),  # so is this
            ],
        ),
        cell(
            "plat-a/3.0.20/no-pinshared",
            PROBE_CRASHED,
            scenarios=[
                scenario("ondemand-kat", PROBE_CRASHED, "killed by signal 11 (SIGSEGV)"),
                scenario("load-kat", TIMEOUT),
                scenario("integrity", INCONCLUSIVE),
                scenario("leaked-ref", CLEAN_RELOAD),  # a control that did not hold
                scenario("no-failure", UNLOADED_BUT_FAILED),  # nor did this one
            ],
        ),
        cell("plat-a/3.5.7/default", BUILD_FAILED, reason="make exited 2; log: x.build.log"),
        cell("plat-b/3.0.20/default", SKIPPED, reason="base image: not here (offline)"),
        cell("plat-b/3.5.7/default", ERROR, reason="KeyError: 'steps'"),
    ]


SCENARIOS = ["ondemand-kat", "load-kat", "integrity", "leaked-ref", "no-failure"]


class Cells(HTMLParser):
    """Each table cell with a data-cell attribute: its attributes and the text inside its
    <details> (and whether there was one); and each cell's fingerprint block (a
    <details class="cell">), by cell id, as a list (it must be one)."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str], dict[str, Any]] = {}
        self.fingerprints: dict[str, list[str]] = {}
        self.current: dict[str, Any] | None = None
        self.fingerprint: str | None = None
        self.in_details = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "td" and a.get("data-cell"):
            self.current = {"attrs": a, "details": "", "has_details": False}
            self.cells[(str(a["data-cell"]), str(a["data-scenario"]))] = self.current
        elif tag == "details" and self.current is not None:
            self.current["has_details"] = self.in_details = True
        elif tag == "details" and a.get("class") == "cell":
            self.fingerprint = str(a["data-cell"])
            self.fingerprints.setdefault(self.fingerprint, []).append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "details":
            self.in_details = False
            self.fingerprint = None
        elif tag == "td":
            self.current = None

    def handle_data(self, data: str) -> None:
        if self.current is not None and self.in_details:
            self.current["details"] += data
        elif self.fingerprint is not None:
            self.fingerprints[self.fingerprint][-1] += data


def parse_cells(page: str) -> dict[tuple[str, str], dict[str, Any]]:
    parser = Cells()
    parser.feed(page)
    return parser.cells


def parse_fingerprints(page: str) -> dict[str, list[str]]:
    parser = Cells()
    parser.feed(page)
    return parser.fingerprints


# ---------- HTML ----------


def test_html_of_the_committed_run_shows_every_cell_with_its_evidence(
    committed: tuple[list[CellResult], Run],
) -> None:
    results, run = committed
    scenarios = scenarios_of(results)
    page = render_html(results, run, scenarios)
    cells = parse_cells(page)
    measured = [r for r in results if r.outcome != SKIPPED]
    assert len(cells) == len(measured) * len(scenarios)  # the skipped are listed apart
    fingerprints = parse_fingerprints(page)
    assert set(fingerprints) == {r.cell for r in measured}
    for r in measured:
        for s in r.scenarios:
            found = cells[(r.cell, s.scenario)]
            assert found["attrs"]["data-verdict"] == s.verdict
            assert found["attrs"]["data-status"] == s.status
            assert status_class(s.status) in str(found["attrs"]["class"]).split()
            assert found["has_details"]
            assert s.cause in found["details"]
            for line in s.evidence:
                assert line in found["details"]
            # the fingerprint is not repeated in every scenario's cell...
            assert r.fingerprint["image"]["id"] not in found["details"]
        # ...but shown once per cell
        (fingerprint,) = fingerprints[r.cell]
        assert r.fingerprint["fips_so_sha256"] in fingerprint
        assert r.fingerprint["image"]["id"] in fingerprint
    known = f'data-cell="{KNOWN_CELL}" data-scenario="ondemand-kat" data-verdict="STICKY_ERROR"'
    assert known in page
    for fact in (run.id, run.matrix_digest, run.engine.version, run.engine.kernel):
        assert fact in page


class Links(HTMLParser):
    """Every tag name and every attribute value that names a resource."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.targets += [v or "" for k, v in attrs if k in ("href", "src", "action", "srcset")]


def test_html_is_self_contained(committed: tuple[list[CellResult], Run]) -> None:
    results, run = committed
    page = render_html(results, run, scenarios_of(results))
    links = Links()
    links.feed(page)
    assert not links.tags & {"script", "link", "img", "iframe", "object", "embed"}
    # a source's URL may stand in a skip reason's text; nothing is loaded from anywhere
    assert all("://" not in t and not t.startswith("//") for t in links.targets), links.targets
    files = [t for t in links.targets if not t.startswith("#")]  # the contents link in-page
    assert all((REPO / REFERENCE / t).is_file() for t in files)  # no dangling link
    assert "@import" not in page.lower() and "url(" not in page.lower()


def test_html_colours_each_verdict_and_escapes_everything() -> None:
    results = mixed()
    nasty = "<script>alert(1)</script>"
    results[0].scenarios[0].cause = nasty
    results[0].scenarios[0].evidence.append(f"evidence {nasty}")
    results[2].reason = nasty
    page = render_html(results, dataclasses.replace(RUN, id=nasty), SCENARIOS)
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page

    cells = parse_cells(page)
    assert len(cells) == len(results) * len(SCENARIOS)
    shown = {(c, s): found["attrs"]["data-verdict"] for (c, s), found in cells.items()}
    assert shown[("plat-a/3.0.20/default", "load-kat")] == STICKY_ERROR
    assert shown[("plat-a/3.0.20/no-pinshared", "load-kat")] == TIMEOUT
    assert shown[("plat-a/3.5.7/default", "integrity")] == BUILD_FAILED  # the cell's outcome
    assert shown[("plat-b/3.0.20/default", "no-failure")] == SKIPPED
    assert cells[("plat-a/3.0.20/default", "ondemand-kat")]["details"].count(nasty) == 2
    assert nasty in cells[("plat-a/3.5.7/default", "ondemand-kat")]["details"]
    for found in cells.values():
        status = found["attrs"]["data-status"]
        assert str(found["attrs"]["class"]).split() == ["verdict", status_class(status)]

    def colour(verdict: str) -> str:
        rule = f".{status_class(verdict)} {{ background: "
        assert rule in page
        return page.split(rule)[1].split(";")[0]

    reload_colours = [colour(v) for v in (CLEAN_RELOAD, MAPPED_BUT_RECOVERED, STICKY_ERROR)]
    assert len({*reload_colours, colour(UNLOADED_BUT_FAILED), colour(INCONCLUSIVE)}) == 5
    assert colour(PROBE_CRASHED) == colour(TIMEOUT)
    assert colour(SKIPPED) == colour(BUILD_FAILED) == colour(ERROR)
    assert colour(DIED) not in reload_colours
    shown = words_shown(layout(results), SCENARIOS)
    assert set(shown) >= {CLEAN_RELOAD, STICKY_ERROR, PROBE_CRASHED, BUILD_FAILED, ERROR}
    for word in shown:  # the legend, of the words the tables show
        code = LOOKS[word].code
        assert f'<span class="swatch {status_class(word)}"></span><code>{code}</code>' in page


def test_html_lists_skipped_cells_below_and_not_as_rows_of_their_own() -> None:
    results = [
        cell("p/1/v", scenarios=[scenario("ondemand-kat", CLEAN_RELOAD)]),
        cell("p/2/v", SKIPPED, reason="source: not published"),  # a column of skips
        cell("offline/1/v", SKIPPED, reason="base image: <none> here"),  # a row of skips
    ]
    results.append(cell("offline/2/v", SKIPPED, reason="base image: <none> here"))
    page = render_html(results, RUN, ["ondemand-kat"])
    assert list(parse_cells(page)) == [("p/1/v", "ondemand-kat")]
    assert '<th scope="row">2 v</th>' not in page and "offline<span" not in page
    skipped = page.split('<h2 id="skipped">Skipped cells</h2>')[1]
    assert skipped.count("source: not published") == 1
    assert skipped.count("base image: &lt;none&gt; here") == 1  # once for its two cells
    assert "<code>offline/1/v</code> <code>offline/2/v</code>" in skipped


def test_html_marks_a_scenario_the_cell_did_not_run() -> None:
    results = [cell("p/1/v", scenarios=[scenario("ondemand-kat", CLEAN_RELOAD)])]
    cells = parse_cells(render_html(results, RUN, ["ondemand-kat", "worker-thread"]))
    assert cells[("p/1/v", "worker-thread")]["attrs"]["data-verdict"] == "-"


# ---------- JUnit ----------


def case(root: ET.Element, cell_id: str, name: str) -> ET.Element:
    found = root.find(f".//testcase[@classname='{classname(cell_id)}'][@name='{name}']")
    assert found is not None, (cell_id, name)
    return found


def test_junit_passes_facts_and_fails_what_needs_acting_on() -> None:
    root = ET.fromstring(render_junit(mixed(), RUN, SCENARIOS))
    assert root.tag == "testsuites"
    # 5 cells x 5 scenarios. Facts pass: all five of the first cell (CLEAN, STICKY,
    # MAPPED_BUT_RECOVERED after a forced failure, and the two controls as they must be).
    # Failures: the second cell's two controls. Errors: crash, timeout, inconclusive, 5 of
    # the build failure and 5 of the tool's error. Skipped: 5.
    totals = {k: root.get(k) for k in ("tests", "failures", "errors", "skipped")}
    assert totals == {"tests": "25", "failures": "2", "errors": "13", "skipped": "5"}
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == ["plat-a", "plat-b"]
    a, b = suites["plat-a"], suites["plat-b"]
    assert [a.get(k) for k in ("tests", "failures", "errors", "skipped")] == ["15", "2", "8", "0"]
    assert (b.get("tests"), b.get("errors"), b.get("skipped")) == ("10", "5", "5")

    props = {p.get("name"): p.get("value") for p in a.iter("property")}
    assert props["run_id"] == RUN.id
    assert props["matrix_digest"] == RUN.matrix_digest
    assert props["engine_version"] == RUN.engine.version

    sticky = case(root, "plat-a/3.0.20/default", "load-kat")
    assert [child.tag for child in sticky] == ["system-out"]  # passed, the facts kept
    out = sticky.findtext("system-out") or ""
    assert out.startswith("plat-a/3.0.20/default load-kat: ")
    assert f"{STICKY_ERROR}: held: <b>NODELETE</b> & co" in out
    assert "first observation\nsecond observation" in out
    assert sticky.get("time") == "1.500"
    control = case(root, "plat-a/3.0.20/no-pinshared", "leaked-ref").find("failure")
    assert control is not None and "expected STICKY_ERROR" in str(control.get("message"))
    crashed = case(root, "plat-a/3.0.20/no-pinshared", "ondemand-kat").find("error")
    assert crashed is not None and crashed.get("message", "").startswith(PROBE_CRASHED)
    build = case(root, "plat-a/3.5.7/default", "integrity").find("error")
    assert build is not None and build.get("type") == BUILD_FAILED
    skipped = case(root, "plat-b/3.0.20/default", "no-failure").find("skipped")
    assert skipped is not None and skipped.get("message") == "base image: not here (offline)"


def test_junit_fails_a_process_that_died_after_its_reload_and_a_flaky_scenario() -> None:
    died = scenario("worker-thread", CLEAN_RELOAD, facts={"exit_after_document": 139})
    flaky = scenario("ondemand-kat", STICKY_ERROR, facts={"runs": {"agree": 2, "total": 3}})
    steady = scenario("load-kat", STICKY_ERROR, facts={"runs": {"agree": 3, "total": 3}})
    root = ET.fromstring(render_junit([cell("p/1/v", scenarios=[died, flaky, steady])], RUN))
    failure = case(root, "p/1/v", "worker-thread").find("failure")
    assert failure is not None and failure.get("type") == DIED
    assert str(failure.get("message")).startswith(f"{DIED} ({CLEAN_RELOAD}: ")
    failure = case(root, "p/1/v", "ondemand-kat").find("failure")
    assert failure is not None and failure.get("type") == "FLAKY"
    assert "2/3" in str(failure.get("message"))
    assert case(root, "p/1/v", "load-kat").find("failure") is None
    assert root.get("failures") == "2"


def test_every_report_shows_a_death_with_its_rate() -> None:
    fate = {"died": 3, "runs": 5, "ends": {"SIGSEGV": 2, "SIGABRT": 1}}
    died = scenario(
        "worker-no-stop", CLEAN_RELOAD, facts={"exit_after_document": 139, "fate": fate}
    )
    once = scenario("thread-pool", CLEAN_RELOAD, facts={"exit_after_document": 134})
    survived = scenario("no-failure", CLEAN_RELOAD, facts={"fate": {"died": 0, "runs": 5}})
    results = [cell("p/1/v", scenarios=[died, once, survived])]
    root = ET.fromstring(render_junit(results, RUN))
    failure = case(root, "p/1/v", "worker-no-stop").find("failure")
    assert failure is not None
    assert str(failure.get("message")).startswith(
        f"{DIED} died 3/5 (SIGSEGV 2, SIGABRT 1) ({CLEAN_RELOAD}: "
    )
    # the tables' cells (terminal, table.md, HTML): a rate where there were runs to count
    assert [cell_code(results[0], s) for s in ("worker-no-stop", "thread-pool", "no-failure")] == [
        "DIED 3/5",
        "DIED",
        "CLEAN",
    ]
    page = parse_cells(render_html(results, RUN, ["worker-no-stop", "thread-pool"]))
    details = page[("p/1/v", "worker-no-stop")]["details"]
    assert details.startswith("DIED 3/5")
    assert "DIED_AFTER_RELOAD (died 3/5 (SIGSEGV 2, SIGABRT 1)): " in details
    assert "(died 1/1" not in page[("p/1/v", "thread-pool")]["details"]  # no fate stored


def test_junit_fails_what_changed_against_the_baseline() -> None:
    old = [
        cell("p/1/a", scenarios=[scenario("s1", CLEAN_RELOAD), scenario("s2", STICKY_ERROR)]),
        cell("p/1/b", scenarios=[scenario("s1", STICKY_ERROR)]),
        cell("p/1/c", SKIPPED, reason="offline"),
    ]
    new = copy.deepcopy(old)
    new[0].scenarios[0].verdict = STICKY_ERROR  # worse
    new[1].scenarios[0].verdict = CLEAN_RELOAD  # better: still a change to act on
    new[2] = cell("p/1/c", scenarios=[scenario("s1", STICKY_ERROR)])  # newly measured
    baseline = Baseline("results/reference", old)
    root = ET.fromstring(render_junit(new, RUN, baseline=baseline))
    for cell_id, before, after in (
        ("p/1/a", CLEAN_RELOAD, STICKY_ERROR),
        ("p/1/b", STICKY_ERROR, CLEAN_RELOAD),
    ):
        failure = case(root, cell_id, "s1").find("failure")
        assert failure is not None and failure.get("type") == "CHANGED_FROM_BASELINE"
        assert str(failure.get("message")).startswith(
            f"changed against the baseline results/reference: {before} there, {after} here"
        )
    assert case(root, "p/1/a", "s2").find("failure") is None  # unchanged fact: green
    assert case(root, "p/1/c", "s1").find("failure") is None  # a skip said nothing before
    assert root.get("failures") == "2"
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["baseline"] == "results/reference"
    # the same run against itself: nothing changed, facts green
    same = ET.fromstring(render_junit(new, RUN, baseline=Baseline("b", copy.deepcopy(new))))
    assert same.get("failures") == "0"


def test_junit_classnames_survive_the_split_at_the_last_dot() -> None:
    results = [cell("ubuntu-22.04/3.0.20/fips-3.0.20", scenarios=[scenario("s1", STICKY_ERROR)])]
    (testcase,) = ET.fromstring(render_junit(results, RUN)).iter("testcase")
    name = str(testcase.get("classname"))
    package, _, klass = name.rpartition(".")  # what Jenkins does
    assert package == "fips-matrix"
    assert klass == "ubuntu-22_04/3_0_20/fips-3_0_20"
    assert (testcase.findtext("system-out") or "").startswith("ubuntu-22.04/3.0.20/fips-3.0.20 s1")


def test_junit_of_the_committed_run(committed: tuple[list[CellResult], Run]) -> None:
    results, run = committed
    root = ET.fromstring(render_junit(results, run))
    scenarios = scenarios_of(results)
    assert root.get("tests") == str(len(results) * len(scenarios))
    assert root.get("errors") == "0"  # every committed cell produced reload verdicts
    # red: only the processes that died after their reload, and controls gone wrong
    died = [(r.cell, s.scenario) for r in results for s in r.scenarios if s.status == DIED]
    wrong = [
        (r.cell, s.scenario)
        for r in results
        for s in r.scenarios
        if (s.scenario == "leaked-ref" and s.status != STICKY_ERROR)
        or (s.scenario == "no-failure" and s.status not in (CLEAN_RELOAD, MAPPED_BUT_RECOVERED))
    ]
    assert root.get("failures") == str(len(died) + len(wrong)) and died
    failed = {
        (c.get("classname"), c.get("name"))
        for c in root.iter("testcase")
        if c.find("failure") is not None
    }
    assert failed == {(classname(c), s) for c, s in died + wrong}
    known = case(root, KNOWN_CELL, "ondemand-kat")
    assert known.find("failure") is None and "STICKY_ERROR" in (known.findtext("system-out") or "")
    skipped = sum(len(scenarios) for r in results if r.outcome == SKIPPED)
    assert root.get("skipped") == str(skipped)
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["run_id"] == run.id


def test_junit_without_any_scenario_names_the_case_build() -> None:
    results = [cell("p/1/v", BUILD_FAILED, reason="no compiler")]
    root = ET.fromstring(render_junit(results, RUN))
    cases = root.findall(".//testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [("fips-matrix.p/1/v", "build")]
    assert root.get("errors") == "1"


# ---------- diff ----------


def test_diff_of_a_run_with_itself_is_empty(
    committed: tuple[list[CellResult], Run],
) -> None:
    results, _ = committed
    diff = diff_results(results, copy.deepcopy(results))
    assert diff == Diff()
    assert not diff.got_worse
    assert format_diff(diff) == "no verdict changed\n"


def test_diff_finds_worse_and_better_verdicts(
    committed: tuple[list[CellResult], Run],
) -> None:
    old, _ = committed
    new = copy.deepcopy(old)
    clean = next((r, s) for r in new for s in r.scenarios if s.verdict == CLEAN_RELOAD)
    sticky = next((r, s) for r in new for s in r.scenarios if s.verdict == STICKY_ERROR)
    clean[1].verdict, sticky[1].verdict = STICKY_ERROR, CLEAN_RELOAD
    diff = diff_results(old, new)
    got = {(c.cell, c.scenario): (c.old, c.new, c.worse) for c in diff.changed}
    assert got == {
        (clean[0].cell, clean[1].scenario): (CLEAN_RELOAD, STICKY_ERROR, True),
        (sticky[0].cell, sticky[1].scenario): (STICKY_ERROR, CLEAN_RELOAD, False),
    }
    assert diff.got_worse
    text = format_diff(diff)
    assert "worse" in text and "better" in text and clean[0].cell in text


def test_diff_cells_appearing_disappearing_and_failing() -> None:
    old = [
        cell("p/1/a", scenarios=[scenario("s1", CLEAN_RELOAD), scenario("s2", STICKY_ERROR)]),
        cell("p/1/gone", scenarios=[scenario("s1", CLEAN_RELOAD)]),
        cell("p/1/skip", scenarios=[scenario("s1", STICKY_ERROR)]),
    ]
    new = [
        cell("p/1/a", BUILD_FAILED, reason="broken"),
        cell("p/1/skip", SKIPPED, reason="offline"),
        cell("p/1/new", scenarios=[scenario("s1", STICKY_ERROR)]),
    ]
    selected = [c.cell for c in new]  # the new run's summary.json: p/1/gone not selected
    diff = diff_results(old, new, selected_new=selected)
    assert diff.appeared == ["p/1/new"]
    assert diff.disappeared == ["p/1/gone"] and diff.lost == []
    got = {(c.cell, c.scenario): (c.old, c.new, c.worse) for c in diff.changed}
    assert got == {
        ("p/1/a", "s1"): (CLEAN_RELOAD, BUILD_FAILED, True),
        ("p/1/a", "s2"): (STICKY_ERROR, BUILD_FAILED, True),
        ("p/1/skip", "s1"): (STICKY_ERROR, SKIPPED, False),  # a skip is neither
    }
    assert diff.got_worse
    text = format_diff(diff)
    assert "new cells: p/1/new" in text and "cells gone: p/1/gone" in text
    # without the failed build, only the skip and the matrix's own changes remain
    assert not diff_results(old[1:], new[1:], selected_new=selected).got_worse
    # without a summary.json saying so, a cell gone is a cell lost
    lost = diff_results(old[1:], new[1:])
    assert lost.lost == ["p/1/gone"] and lost.disappeared == [] and lost.got_worse
    assert "1 cell(s) of OLD not in NEW" in format_diff(lost)


def test_diff_of_repeated_runs_shows_agreement() -> None:
    def runs(agree: int, total: int) -> ScenarioResult:
        return scenario("s1", STICKY_ERROR, facts={"runs": {"agree": agree, "total": total}})

    assert status_text(runs(2, 3)) == "STICKY_ERROR 2/3"
    assert status_text(scenario("s1", STICKY_ERROR)) == "STICKY_ERROR"
    steady, flaky = [cell("p/1/a", scenarios=[runs(3, 3)])], [cell("p/1/a", scenarios=[runs(2, 3)])]
    (change,) = diff_results(steady, flaky).changed
    assert (change.old, change.new, change.worse) == ("STICKY_ERROR 3/3", "STICKY_ERROR 2/3", True)
    assert not diff_results(flaky, steady).got_worse
    plain = [cell("p/1/a", scenarios=[scenario("s1", STICKY_ERROR)])]
    assert diff_results(plain, steady).changed == []  # "V" and "V 3/3" say the same
    assert is_worse("CLEAN_RELOAD 3/3", "STICKY_ERROR 3/3")
    assert not is_worse("-", STICKY_ERROR)


def test_diff_ranks_a_process_that_died_after_its_reload_worse() -> None:
    def worker(verdict: str, **facts: Any) -> list[CellResult]:
        return [cell("p/1/a", scenarios=[scenario("worker-thread", verdict, facts=facts)])]

    died = worker(CLEAN_RELOAD, exit_after_document=139)
    (change,) = diff_results(worker(CLEAN_RELOAD), died).changed
    assert (change.old, change.new, change.worse) == (CLEAN_RELOAD, DIED, True)
    assert diff_results(worker(STICKY_ERROR), died).got_worse
    assert not diff_results(died, worker(CLEAN_RELOAD)).got_worse  # it stopped dying
    assert "worse" in format_diff(diff_results(worker(CLEAN_RELOAD), died))


def test_diff_counts_a_status_word_it_does_not_know_as_worse() -> None:
    """A newer or forged results file may hold any word: the CI gate never passes on one."""
    assert is_worse("CLEAN_RELOAD", "<img onerror=x>")
    assert is_worse("STICKY_ERROR", "SOMETHING_NEW 1/1")
    assert not is_worse("STICKY_ERROR", "-")  # the scenario was not run: neither
    assert not is_worse("SKIPPED", "SKIPPED")


def fated(verdict: str, died: int, runs: int, name: str = "worker-no-stop") -> ScenarioResult:
    """A scenario whose process died after its document in `died` of `runs` runs."""
    ends = {"SIGSEGV": died} if died else {}
    facts: dict[str, Any] = {"fate": {"died": died, "runs": runs, "ends": ends}}
    if died:
        facts["exit_after_document"] = 139
    return scenario(name, verdict, facts=facts)


@pytest.mark.parametrize(
    ("old", "new", "change"),
    [
        ((0, 1), (2, 5), None),  # a rare death against one survival: the same fact
        ((2, 5), (0, 1), None),  # a rare death not seen this time
        ((2, 5), (4, 5), None),
        ((0, 5), (3, 5), None),  # a middling rate, seen between two runs of one commit
        ((0, 5), (5, 5), ("CLEAN_RELOAD", "DIED_AFTER_RELOAD (died 5/5)", True)),
        ((0, 1), (5, 5), ("CLEAN_RELOAD", "DIED_AFTER_RELOAD (died 5/5)", True)),
        ((5, 5), (0, 1), ("DIED_AFTER_RELOAD (died 5/5)", "CLEAN_RELOAD", False)),
    ],
)
def test_diff_compares_deaths_as_rates(
    old: tuple[int, int], new: tuple[int, int], change: tuple[str, str, bool] | None
) -> None:
    before = [cell("p/1/a", scenarios=[fated(CLEAN_RELOAD, *old)])]
    after = [cell("p/1/a", scenarios=[fated(CLEAN_RELOAD, *new)])]
    found = diff_results(before, after)
    assert [(c.old, c.new, c.worse) for c in found.changed] == ([change] if change else [])
    assert found.got_worse is bool(change and change[2])


def test_diff_of_deaths_still_sees_the_verdict_and_older_results() -> None:
    # a death under another reload verdict is no flip of a rate
    sticky = [cell("p/1/a", scenarios=[fated(STICKY_ERROR, 2, 5)])]
    clean = [cell("p/1/a", scenarios=[fated(CLEAN_RELOAD, 0, 1)])]
    (change,) = diff_results(sticky, clean).changed
    assert (change.old, change.new) == ("DIED_AFTER_RELOAD (died 2/5)", CLEAN_RELOAD)
    # results of a version that counted no fate: their one run is their fate (1/1 vs 0/1)
    older = scenario("worker-no-stop", CLEAN_RELOAD, facts={"exit_after_document": 139})
    (change,) = diff_results([cell("p/1/a", scenarios=[older])], clean).changed
    assert (change.old, change.new, change.worse) == (DIED, CLEAN_RELOAD, False)
    assert diff_results(clean, [cell("p/1/a", scenarios=[older])]).got_worse


def test_junit_with_a_baseline_keeps_a_known_death_green_and_named() -> None:
    def run_of(*scenarios: ScenarioResult) -> list[CellResult]:
        return [cell("p/1/a", scenarios=list(scenarios))]

    baseline = Baseline("results/reference", run_of(fated(CLEAN_RELOAD, 3, 5)))
    # the same death at another rate: green, with a property naming it, its rate and cause
    same = run_of(fated(CLEAN_RELOAD, 1, 5))
    root = ET.fromstring(render_junit(same, RUN, baseline=baseline))
    assert root.get("failures") == "0"
    known = case(root, "p/1/a", "worker-no-stop")
    assert known.find("failure") is None
    (prop,) = known.findall("properties/property")
    assert prop.get("name") == "known_failure"
    assert str(prop.get("value")).startswith(
        f"{DIED}: known from the baseline results/reference: {DIED} died 1/5 (SIGSEGV 1) "
        f"({CLEAN_RELOAD}: a cause"
    )
    assert "known from the baseline" in (known.findtext("system-out") or "")
    # without the baseline it fails, as any death does
    assert ET.fromstring(render_junit(same, RUN)).get("failures") == "1"
    # a death in every run where the baseline saw none in as many: new, so it fails
    fresh = Baseline("b", run_of(fated(CLEAN_RELOAD, 0, 5)))
    always = run_of(fated(CLEAN_RELOAD, 5, 5))
    failure = case(
        ET.fromstring(render_junit(always, RUN, baseline=fresh)), "p/1/a", "worker-no-stop"
    )
    found = failure.find("failure")
    assert found is not None and found.get("type") == DIED
    assert str(found.get("message")).startswith(
        f"changed against the baseline b: {CLEAN_RELOAD} there, {DIED} (died 5/5) here"
    )
    # a cell the baseline did not measure: not known
    other = Baseline("b", [cell("p/1/other", scenarios=[fated(CLEAN_RELOAD, 3, 5)])])
    assert ET.fromstring(render_junit(same, RUN, baseline=other)).get("failures") == "1"

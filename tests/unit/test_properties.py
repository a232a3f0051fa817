"""Property-based tests (hypothesis): whatever a matrix file, a cell file, a probe's output or
its document holds, the tool gives a result or one clear error, never a traceback; and
whatever the cells hold, every report stays well-formed (the HTML's tags balance and carry
no markup from the data, the XML parses, the JSON round-trips).

Examples are bounded and derandomized: the suite stays fast and gives the same answer on
every machine."""

from __future__ import annotations

import copy
import io
import json
import math
import tempfile
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rich.console import Console
from support.fakes import fixture_doc

from matrix import assets
from matrix.errors import DefinitionError
from matrix.execute.probes.batch import BatchRun, parse_batch
from matrix.judge.cell import outcome_of, rejudge
from matrix.judge.verdict import judge_run
from matrix.model.cells import expand
from matrix.model.definition import load_definition
from matrix.model.vocabulary import Outcome, Scenario, Verdict
from matrix.report.diff import diff_results, format_diff
from matrix.report.html import render_html
from matrix.report.junit import render_junit
from matrix.report.table import render_markdown
from matrix.report.terminal import print_report
from matrix.report.write import write_reports
from matrix.results.records import CellResult, Run, ScenarioResult, scenarios_of
from matrix.results.store import ResultsDir, Unreadable, read_cell_file

BOUNDED = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Text as a hostile results file holds it: markup, quotes, control characters, any plane.
HOSTILE = st.sampled_from(
    [
        "<script>alert(1)</script>",
        '" onmouseover="x',
        "'><img src=x onerror=y>",
        "\x00\x01\x1b",
        "&amp;",
        "]]>",
        "\ud7ff\ue000\U0001f600",
        "",
        "OK",
        "STICKY_ERROR",
        "\r\n\t",
    ]
)
TEXT = st.one_of(HOSTILE, st.text(max_size=20))
JSON_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON = st.recursive(
    JSON_SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)


# --- the matrix parser ---------------------------------------------------------------------


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if not isinstance(value, float) or math.isfinite(value) else "nan"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return '""'


def toml_doc(doc: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in doc.items())


KEYS = st.sampled_from(
    [
        "schema",
        "scenarios",
        "platforms",
        "sources",
        "variants",
        "include",
        "exclude",
        "dockerfile",
        "base_image",
        "libc",
        "fallback",
        "openssl",
        "debootstrap",
        "sha256",
        "urls",
        "debian_orig",
        "configure",
        "module_config",
        "provider",
        "base",
        "platform",
        "version",
        "variant",
        "reason",
        "description",
        "debian-12",
        "3.0.20",
        "default",
    ]
)
TOML_VALUE = st.recursive(
    st.one_of(
        st.booleans(),
        st.integers(-5, 5),
        TEXT,
        st.sampled_from(
            [
                "glibc",
                "musl",
                "debian.Dockerfile",
                "a" * 64,
                "ondemand-kat",
                "https://example.test/x.tar.gz",
                "file:///x",
                "distro",
            ]
        ),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=16,
)


def parses_or_says_why(tmp: Path, text: str | bytes) -> None:
    path = tmp / "m.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        expand(load_definition(path))
    except DefinitionError as exc:
        assert str(exc).startswith(f"{path}:") and str(exc).strip()


@BOUNDED
@given(st.dictionaries(KEYS, TOML_VALUE, max_size=7))
def test_any_matrix_document_loads_or_gives_one_error(doc: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        parses_or_says_why(Path(tmp), toml_doc({"schema": 1, **doc}))


DEFAULT_LINES = assets.DEFAULT_MATRIX.read_text().splitlines()


@BOUNDED
@given(
    st.lists(
        st.tuples(st.integers(0, len(DEFAULT_LINES) - 1), st.one_of(st.none(), TEXT)),
        min_size=1,
        max_size=4,
    )
)
def test_the_default_matrix_damaged_loads_or_gives_one_error(
    edits: list[tuple[int, str | None]],
) -> None:
    lines = list(DEFAULT_LINES)
    for index, text in edits:
        if text is None:
            lines[index] = ""  # a line lost
        else:
            lines[index] = lines[index][: len(lines[index]) // 2] + text  # a line cut and mangled
    with tempfile.TemporaryDirectory() as tmp:
        parses_or_says_why(Path(tmp), "\n".join(lines))


@BOUNDED
@given(st.binary(max_size=200))
def test_any_bytes_as_a_matrix_file_give_one_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        parses_or_says_why(Path(tmp), data)


# --- the cell reader, and everything that reads what it gives -----------------------------


def valid_cell() -> dict[str, Any]:
    r = CellResult("p/3.0.20/v", "p", "glibc", "3.0.20", "v", Outcome.OK)
    for name in ("ondemand-kat", "no-failure"):
        doc = fixture_doc("nodelete", name)
        r.scenarios.append(rejudge(ScenarioResult(name, "", "", "", [], {}, 0, False, 0.5, doc)))
    r.fingerprint = {"image": {"id": "sha256:1"}, "sources": [], "fips_so_sha256": "2" * 64}
    r.logs = {"probe": "cells/p__3.0.20__v.probe.log"}
    return r.to_json()


def mutate(data: Any, path: list[Any], value: Any) -> Any:
    """`data` with the element at `path` (indices taken modulo) replaced by `value`."""
    if not path:
        return value
    if isinstance(data, dict) and data:
        key = sorted(data)[path[0] % len(data)]
        return {**data, key: mutate(data[key], path[1:], value)}
    if isinstance(data, list) and data:
        i = path[0] % len(data)
        return [*data[:i], mutate(data[i], path[1:], value), *data[i + 1 :]]
    return value


def everything_that_reads(result: CellResult) -> None:
    """What report, merge and diff do with a cell: re-judge, tables, pages, diff."""
    results = [result, copy.deepcopy(result)]
    results[1].scenarios = [rejudge(s) for s in results[1].scenarios]
    results[1].outcome = outcome_of(results[1].scenarios) if results[1].scenarios else "OK"
    scenarios = scenarios_of(results) or ["ondemand-kat"]
    run = Run.unknown([r.cell for r in results])
    render_markdown(results, run, scenarios)
    print_report(Console(file=io.StringIO(), width=80), results, run, scenarios)
    render_html(results[:1], Run.unknown([result.cell]), scenarios)
    render_junit(results[:1], Run.unknown([result.cell]), scenarios)
    format_diff(diff_results(results[:1], results[1:]))


@BOUNDED
@given(st.lists(st.integers(0, 50), max_size=5), JSON)
@example([], {"schema": 1})
@example([7], "[" * 5000)  # nested deeper than the JSON reader goes
def test_any_cell_file_reads_as_a_cell_or_one_clear_error(path: list[int], value: Any) -> None:
    data = mutate(valid_cell(), path, value)
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "cells" / "p__3.0.20__v.json"
        file.parent.mkdir()
        file.write_text(
            value if isinstance(value, str) and value.startswith("[[") else json.dumps(data)
        )
        try:
            result = read_cell_file(file)
        except Unreadable as exc:
            assert str(exc).startswith(str(file)) and exc.why
            return
        everything_that_reads(result)
        found, problems = ResultsDir(Path(tmp)).scan()
        assert (list(found), problems) == ([result.cell], [])


@BOUNDED
@given(st.binary(max_size=300))
def test_any_bytes_as_a_cell_file_give_one_clear_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "x.json"
        file.write_bytes(data)
        with pytest.raises(Unreadable):
            read_cell_file(file)


# --- the probe's output and its document --------------------------------------------------

RUNS = [BatchRun("ondemand-kat", ["p"]), BatchRun("no-failure", ["p"])]


def frame(
    index: int, code: str, hung: str, out: bytes, err: bytes, n_out: int, n_err: int
) -> bytes:
    header = f"fips-batch-run {index} exit={code} timed_out={hung} seconds=0.010 "
    return header.encode() + f"stdout={n_out} stderr={n_err}\n".encode() + out + err


FRAMES = st.builds(
    frame,
    st.integers(0, 3),
    st.sampled_from(["0", "1", "139", "-1", "x"]),
    st.sampled_from(["0", "1"]),
    st.binary(max_size=30),
    st.binary(max_size=10),
    st.integers(0, 40),
    st.integers(0, 12),
)


@BOUNDED
@given(
    st.one_of(st.binary(max_size=200), st.lists(FRAMES, max_size=3).map(b"".join)),
    st.booleans(),
    st.one_of(st.none(), st.integers(-1, 300)),
)
def test_any_batch_output_gives_one_run_per_run(
    output: bytes, timed_out: bool, exit_code: int | None
) -> None:
    runs = parse_batch(RUNS, output, timed_out, exit_code, "driver stderr")
    assert [r.scenario for r in runs] == [r.scenario for r in RUNS]
    for run in runs:
        doc, why = run.document()
        assert doc is None or isinstance(doc, dict)
        assert doc is not None or why
        j = judge_run(run.scenario, run.exit_code, run.timed_out, doc, why)
        assert j.verdict in set(Verdict) and j.cause


REAL_DOCS = [fixture_doc(b, s.value) for b in ("nodelete", "unpinned") for s in Scenario]


@BOUNDED
@given(
    st.sampled_from(range(len(REAL_DOCS))),
    st.lists(st.integers(0, 60), max_size=5),
    JSON,
    st.sampled_from([s.value for s in Scenario]),
    st.one_of(st.none(), st.integers(0, 255)),
)
def test_any_probe_document_gives_a_verdict(
    which: int, path: list[int], value: Any, scenario: str, exit_code: int | None
) -> None:
    doc = mutate(copy.deepcopy(REAL_DOCS[which]), path, value)
    j = judge_run(scenario, exit_code, False, doc if isinstance(doc, dict) else None)
    assert j.verdict in set(Verdict) and j.cause


# --- the report writers: well-formed whatever the cells hold ------------------------------

SCENARIOS = ["ondemand-kat", "no-failure"]
VERDICTS = st.one_of(st.sampled_from([*Verdict, *Outcome]), HOSTILE, st.text(max_size=8))


@st.composite
def cells(draw: st.DrawFn) -> CellResult:
    # ids are file names: the reader takes letters, digits and ._+- only
    platform = draw(st.from_regex(r"\A[a-z0-9][a-z0-9._+-]{0,12}\Z"))
    variant = draw(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._+-]{0,12}\Z"))
    r = CellResult(
        f"{platform}/3.0.20/{variant}",
        platform,
        draw(TEXT),
        "3.0.20",
        variant,
        draw(VERDICTS),
        reason=draw(TEXT),
    )
    names = st.sampled_from([*SCENARIOS, "<b>scenario</b>", "\x07"])
    measured = 1 if r.outcome == "OK" else 0  # an OK cell has scenario results, or is unreadable
    for name in draw(st.lists(names, min_size=measured, max_size=2, unique=True)):
        r.scenarios.append(
            ScenarioResult(
                name,
                draw(VERDICTS),
                draw(TEXT),
                draw(TEXT),
                draw(st.lists(TEXT, max_size=2)),
                {},
                draw(st.one_of(st.none(), st.integers(0, 255))),
                draw(st.booleans()),
                draw(st.floats(0, 1e6)),
                None,
            )
        )
    r.fingerprint = {"image": {"id": draw(TEXT)}, "fips_so_sha256": draw(TEXT)}
    r.logs = {"probe": f"cells/{draw(TEXT)}"}
    return r


class Balanced(HTMLParser):
    """Checks the page's structure: every element closed in order, and nothing from the
    data became markup (no script or image, no event handler, no source attribute)."""

    VOID: ClassVar[set[str]] = {
        "meta",
        "br",
        "hr",
        "img",
        "input",
        "link",
        "wbr",
        "col",
        "area",
        "source",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "img", "iframe", "object", "embed", "svg"):
            self.problems.append(f"<{tag}>")
        for name, _ in attrs:
            if name.startswith("on") or name in ("src", "srcset", "style"):
                self.problems.append(f"attribute {name} on <{tag}>")
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> where <{self.open[-1] if self.open else '-'}> is open")
        else:
            self.open.pop()


HOSTILE_CELL = CellResult(
    "p/3.0.20/default",
    "p",
    "glibc",
    "3.0.20",
    "default",
    "OK",
    scenarios=[
        ScenarioResult(
            "ondemand-kat", '" onmouseover="alert(1)', "c", "", [], {}, 0, False, 0.1, None
        )
    ],
)
CONTROL_CELL = CellResult(
    "p/3.0.20/default", "p", "glibc", "3.0.20", "default", "BUILD\x01FAILED", reason="r"
)


@BOUNDED
@given(st.lists(cells(), min_size=1, max_size=3))
@example([HOSTILE_CELL])
def test_the_html_page_stays_well_formed_whatever_the_cells_hold(
    results: list[CellResult],
) -> None:
    page = render_html(results, Run.unknown([r.cell for r in results]), SCENARIOS)
    checker = Balanced()
    checker.feed(page)
    checker.close()
    assert checker.problems == [] and checker.open == []


@BOUNDED
@given(st.lists(cells(), min_size=1, max_size=3))
@example([CONTROL_CELL])
def test_the_junit_xml_parses_whatever_the_cells_hold(results: list[CellResult]) -> None:
    ET.fromstring(render_junit(results, Run.unknown([r.cell for r in results]), SCENARIOS))


@BOUNDED
@given(st.lists(cells(), min_size=1, max_size=3, unique_by=lambda r: r.cell))
def test_the_json_files_round_trip_whatever_the_cells_hold(results: list[CellResult]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = ResultsDir(Path(tmp))
        out.prepare()
        for r in results:
            assert read_cell_file(out.write_cell(r)) == r
        run = Run.unknown([r.cell for r in results])
        written = write_reports(out, results, run, SCENARIOS, env={})
        summary = json.loads(written["summary"].read_text(encoding="utf-8"))
        assert Run.from_json(summary["run"]) == run
        assert [(c["cell"], c["outcome"], c["reason"]) for c in summary["cells"]] == [
            (r.cell, r.outcome, r.reason) for r in results
        ]
        assert written["markdown"].read_text(encoding="utf-8")
        files = out.load()
        assert files.unreadable == [] and files.results == results

"""Results files are input: a cell JSON from a merged job, a bundle or a colleague may hold
anything. Every string of it, in every field, must reach the HTML escaped (never markup, never
an attribute of its own, never a class) and the JUnit XML well-formed."""

from __future__ import annotations

import re
import xml.dom.minidom
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any

from matrix.report.diff import Baseline
from matrix.report.html import CSS, render_html
from matrix.report.junit import render_junit
from matrix.report.table import render_markdown
from matrix.results.records import CellResult, Run, ScenarioResult, scenarios_of

XSS = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
VERDICT = 'x" onmouseover="alert(3)'  # into class= raw, this was an attribute of its own
OUTCOME = "<img src=y onerror=alert(4)>"
CONTROL = "\x00\x01\x08\x0b\x0c\x1b\x7f\ud800 end"  # \x7f is legal XML 1.0; the rest are not

TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "ul", "ol", "li",
    "span", "code", "nav", "a", "section", "div", "table", "thead", "tbody", "tr", "th", "td",
    "details", "summary", "dl", "dt", "dd", "pre", "strong",
}  # fmt: skip
ATTRIBUTES = {"lang", "charset", "name", "content", "class", "id", "href", "scope"}


def hostile(text: str, verdict: str, outcome: str) -> tuple[list[CellResult], Run]:
    """Two cells and a run with `text` in every string field there is."""
    scenario = ScenarioResult(
        scenario=text,
        verdict=verdict,
        cause=text,
        short=text,
        evidence=[text, text],
        facts={"exit_after_document": text, "runs": {"agree": text, "total": 3}, text: text},
        exit_code=None,
        timed_out=False,
        seconds=0.5,
        probe={"libc": {"name": text, "version": text}},
    )
    fingerprint: dict[str, Any] = {
        "image": {"id": text, "tag": text},
        "base_image": {"ref": text, "id": text},
        "sources": [{"version": text, "sha256": text}],
        "fips_so_sha256": text,
        "times": {"started": text},
        "probe_runs_reused_from": {"started": text},
        "host": {"kernel": text},
        "engine": {"version": text},
    }
    measured = CellResult(
        cell=f"{text}/{text}/{text}",
        platform=text,
        libc=text,
        version=text,
        variant=text,
        outcome=outcome,
        reason=text,
        scenarios=[scenario],
        fingerprint=fingerprint,
        logs={text: text},
        inputs_key=text,
    )
    stopped = CellResult(
        cell=f"{text}/2/{text}",
        platform=text,
        libc=text,
        version="2",
        variant=text,
        outcome=outcome,
        reason=text,
        logs={text: text},
    )
    skipped = CellResult(text + "/3/v", text + "3", text, "3", "v", "SKIPPED", reason=text)
    run = Run(
        id=text,
        started=text,
        tool_version=text,
        matrix=text,
        matrix_digest=text,
        cells=[text],
        merged_from=[text],
        finished=text,
        wall_seconds=text,  # type: ignore[arg-type]
    )
    run.engine.version = run.engine.kernel = run.engine.api_version = text
    return [measured, stopped, skipped], run


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.styles: list[str] = []
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(k, v or "") for k, v in attrs]
        self.in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self.in_style = False

    def handle_data(self, data: str) -> None:
        if self.in_style:
            self.styles.append(data)


def test_html_escapes_every_field_and_takes_classes_from_the_vocabulary_only() -> None:
    results, run = hostile(XSS, VERDICT, OUTCOME)
    page = render_html(results, run, scenarios_of(results))
    parsed = Elements()
    parsed.feed(page)
    assert set(parsed.tags) <= TAGS, set(parsed.tags) - TAGS
    names = {k for k, _ in parsed.attributes}
    assert {n for n in names if not n.startswith("data-")} <= ATTRIBUTES
    classes = {c for k, v in parsed.attributes if k == "class" for c in v.split()}
    defined = set(re.findall(r"\.([a-z][a-z-]*)", "".join(parsed.styles)))
    plain = {"legend", "findings", "unexpected", "exceptions", "skipped", "links", "cause",
             "evidence", "run-facts", "status", "unknown", "matrix", "fp", "run-fingerprint",
             "nothing-unexpected", "failed", "passed", "empty", "figures"}  # fmt: skip
    assert classes <= defined | plain, classes - defined - plain
    for href in (v for k, v in parsed.attributes if k == "href"):
        assert href.startswith(("#", "cells/")), href  # nothing external, no javascript:
    assert "".join(parsed.styles).startswith(CSS)  # nothing from the results in the style
    # the words are there, as text
    assert XSS not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    # a verdict and an outcome this tool does not know show as unknown, not as themselves
    assert 'class="verdict s-unknown"' in page
    assert '<span class="code">?' in page


def test_junit_is_well_formed_with_control_characters_in_every_field() -> None:
    results, run = hostile(CONTROL + " <&>'\"", CONTROL, CONTROL)
    baseline = Baseline(CONTROL, [results[0]])
    for text in (
        render_junit(results, run, scenarios_of(results)),
        render_junit(results, run, baseline=baseline),
    ):
        data = text.encode("utf-8")  # a lone surrogate would not even encode
        root = ET.fromstring(data)
        xml.dom.minidom.parseString(data)  # expat, strict
        assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]", text)
        assert root.iter("testcase")
        for element in root.iter():
            for value in [*element.attrib.values(), element.text or ""]:
                assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f]", value)
        assert "\ufffd end" in text


def test_markdown_keeps_results_strings_on_their_line_and_out_of_markup() -> None:
    results, run = hostile("a|b\nc <i>x</i> `d`\n```\n<i>y</i>", VERDICT, OUTCOME)
    text = render_markdown(results, run, scenarios_of(results))
    # outside the code blocks that quote skip reasons whole, no markup and no table break
    fences = text.split("  ```\n")
    outside, quoted = "".join(fences[::2]), "".join(fences[1::2])
    assert "<i>" not in outside and "a\\|b c &lt;i>x&lt;/i> 'd'" in outside
    assert "```" not in quoted  # a reason cannot close its block early
    assert "<i>y</i>" in quoted

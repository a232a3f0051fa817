"""One self-contained HTML page of a run (no script, no external resource): first the headline
figures, where earlier measurements come from, the recoverability table with its legend and
the advice, and the findings; a table of contents over the
scenarios; the legend; one table per scenario in the layout's shape (rows: OpenSSL version and
variant; columns: platforms with their libc), each cell coloured by its status with the cause
and the evidence one click away (<details>); the skipped cells, grouped by reason; each cell's
fingerprint, once per cell; the run's.

Readable at 1400 px without sideways scrolling, and on a phone: the page never overflows the
viewport, a table wider than the screen scrolls inside its own box.

Every value from a results file is escaped, in text and in attributes alike; classes come from
the vocabulary only (a word it does not know gets the class of an unknown word), never from a
results file.

Links to `cells/<cell>.json` and the logs are relative: the page is meant to be written into
the results directory itself (DIR/report.html)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import PurePath
from typing import Any

from matrix import assets
from matrix.model.vocabulary import LOOKS, RECOVERY_LOOKS, SCENARIOS, Outcome
from matrix.report.advice import advice
from matrix.report.answer import INTRO, TITLE, answer_grid, answer_legend
from matrix.report.findings import Finding, findings
from matrix.report.layout import (
    MISSING,
    Layout,
    cell_code,
    code,
    fate,
    layout,
    legend,
    look_of,
    row_label,
    scenario_of,
    skipped_groups,
    status_at,
    words_shown,
)
from matrix.report.provenance import groups, measured
from matrix.report.tally import tally
from matrix.results.records import CellResult, Run, ScenarioResult
from matrix.visible import visible

CSS = """
*, *::before, *::after { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { font: 14px/1.4 system-ui, sans-serif; color: #222; margin: 0 auto; padding: 0.8em;
  max-width: 1400px; overflow-wrap: anywhere; }
h1 { font-size: 1.5em; margin: 0.2em 0; }
h2 { font-size: 1.2em; margin: 1.2em 0 0.3em; border-bottom: 1px solid #ccc; }
code, pre, dd { font-family: ui-monospace, monospace; font-size: 0.92em; }
pre { white-space: pre-wrap; word-break: break-all; background: #f6f6f6; padding: 0.4em;
  margin: 0.2em 0; }
.headline { font-size: 1.1em; font-weight: 600; padding: 0.4em 0.6em; border-left: 6px solid;
  background: #f6f6f6; }
.headline.failed { border-color: #c62828; }
.headline.passed { border-color: #2e7d32; }
.headline.empty { border-color: #f9a825; }
ul.figures { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 0.3em 1em; }
.count { font-weight: 600; white-space: nowrap; }
.unexpected li { color: #8b0000; }
.note { color: #555; }
.provenance { background: #fff6d5; padding: 0.3em 0.6em; }
nav ol { padding-left: 1.5em; columns: 2 22em; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 0.4em 0 0.8em; }
table.matrix { width: 100%; }
th, td { border: 1px solid #999; padding: 2px 4px; vertical-align: top; text-align: left; }
th { background: #f4f4f4; font-weight: 600; }
th .libc { display: block; font-weight: normal; color: #444; }
th[scope=row] { min-width: 9em; position: sticky; left: 0; z-index: 1; }
td.none { background: #fafafa; }
td.verdict { min-width: 6.5em; }
table.answer td.verdict { min-width: 8em; white-space: nowrap; }
ul.advice li { margin: 0.3em 0; }
td.verdict summary { cursor: pointer; list-style: none; }
td.verdict summary::-webkit-details-marker { display: none; }
td.verdict .code { font-weight: 700; }
td.verdict .short { display: block; font-size: 0.85em; color: #333; }
td.verdict details[open] { min-width: 18em; }
td.verdict ul { margin: 0.3em 0; padding-left: 1.2em; }
dl.fp { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 0 1em;
  margin: 0.3em 0; }
dl.fp dt { font-weight: 600; }
dl.fp dd { margin: 0; word-break: break-all; }
details.cell { margin: 0.2em 0; }
details.cell > summary { cursor: pointer; }
.swatch { display: inline-block; width: 1em; height: 1em; border: 1px solid #999;
  vertical-align: middle; margin-right: 0.4em; }
"""


def status_class(word: str) -> str:
    """The CSS class colouring a cell: "s-sticky-error" for STICKY_ERROR. Only words of the
    vocabulary get their own; any other string a results file holds gets "s-unknown"."""
    if word == MISSING:
        return "s-missing"
    if word in LOOKS:
        return "s-" + str(word).lower().replace("_", "-")
    return "s-unknown"


def render_html(results: Sequence[CellResult], run: Run, scenarios: Sequence[str]) -> str:
    title = f"FIPS provider reload matrix, run {run.id}"
    shape = layout(results)
    body = [
        f"<h1>{_e(title)}</h1>",
        _headline(results, run),
        _answer(results, shape),
        _findings(results),
        _contents(scenarios),
        _legend(words_shown(shape, scenarios)),
        *(_scenario_table(shape, scenario) for scenario in scenarios),
        _skipped(results),
        _cells(results, run),
        '<h2 id="run">Run</h2>',
        _run_fingerprint(run),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{CSS}{_status_css()}</style>\n</head>\n"
        "<body>\n" + "\n".join(part for part in body if part) + "\n</body>\n</html>\n"
    )


def _answer(results: Sequence[CellResult], shape: Layout) -> str:
    """The recoverability table, its legend before it, the advice after it."""
    grid = answer_grid(shape)
    if not any(c is not None for row in grid for c in row):
        return ""
    legend = "".join(
        (f'<li><span class="swatch {_recovery_class(status)}"></span>' if status else "<li>")
        + f"<code>{_e(code)}</code>: {_e(meaning)}</li>"
        for status, code, meaning in answer_legend(grid)
    )
    head = "".join(
        f'<th scope="col">{_e(c.platform)}<span class="libc">{_e(c.libc)}</span></th>'
        for c in shape.columns
    )
    rows = []
    for row, line in zip(shape.rows, grid, strict=True):
        cells = [f'<th scope="row">{_e(row_label(row))}</th>']
        for c in line:
            if c is None:
                cells.append('<td class="none"></td>')
                continue
            detail = "".join(f"<li>{_e(d)}</li>" for d in c.detail())
            cells.append(
                f'<td class="verdict {_recovery_class(c.judged.status)}" '
                f'data-recovery-cell="{_e(c.result.cell)}" data-recovery="{_e(c.judged.status)}">'
                f'<details><summary><span class="code">{_e(c.code)}</span></summary>'
                f"<ul>{detail}</ul></details></td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    made = "".join(f"<li>{_e(a.line())}</li>" for a in advice(results))
    return (
        f'<section id="answer">\n<h2>{_e(TITLE)}</h2>\n<p class="note">{_e(INTRO)}</p>\n'
        f'<ul class="legend">{legend}</ul>\n'
        '<div class="scroll"><table class="matrix answer">\n'
        f'<thead><tr><th scope="col">OpenSSL, variant</th>{head}</tr></thead>\n'
        "<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody>\n</table></div>\n"
        + (f'<h3>What to do</h3>\n<ul class="advice">{made}</ul>\n' if made else "")
        + "</section>"
    )


def _recovery_class(status: str) -> str:
    """ "r-recovers-if" for RECOVERS_IF; only the vocabulary's words, never a results file's."""
    return "r-" + str(status).lower().replace("_", "-") if status in RECOVERY_LOOKS else ""


def _e(value: Any) -> str:
    """Any value, as text safe in an element and in a quoted attribute, its control
    characters shown."""
    return escape(visible(str(value)), quote=True)


def _status_css() -> str:
    colours = {w: info.colour for w, info in LOOKS.items()}
    colours |= {MISSING: "#ffffff", "?": look_of("?").colour}
    return "".join(
        f".{status_class(w)} {{ background: {c}; }}\n" for w, c in colours.items()
    ) + "".join(
        f".{_recovery_class(w)} {{ background: {info.colour}; }}\n"
        for w, info in RECOVERY_LOOKS.items()
    )


def _headline(results: Sequence[CellResult], run: Run) -> str:
    figures = tally(results, run)
    chips = "".join(
        f'<li><span class="swatch {status_class(word)}"></span>'
        f'<span class="count">{n}</span> {_e(code(word))}</li>'
        for word, n in figures.statuses.items()
    )
    notes = "".join(f'<p class="provenance">{_e(g.line())}.</p>' for g in groups(results, run))
    return (
        f'<p class="headline {figures.severity}" id="summary">{_e(figures.line())}</p>\n'
        + (f'<ul class="figures">{chips}</ul>\n' if chips else "")
        + notes
    )


def _findings(results: Sequence[CellResult]) -> str:
    found = findings(results)
    measured_cells = sum(1 for r in results if r.scenarios)
    if not measured_cells:
        return ""
    rules = "".join(_finding(f) for f in found.rules)
    if found.unexpected:
        unexpected = (
            '<h3>Unexpected</h3>\n<ul class="unexpected">'
            + "".join(
                f'<li><span class="count">{_e(f.count)}</span>: {_e(f.text)}: {_e(f.where)}</li>'
                for f in found.unexpected
            )
            + "</ul>"
        )
    else:
        unexpected = (
            f'<p class="nothing-unexpected">{_e(found.nothing_unexpected(measured_cells))}</p>'
        )
    return (
        '<h2 id="findings">Findings</h2>\n'
        '<p class="note">Rules the cells support, drawn from the facts their verdicts record, '
        "each with how many cells support it and the exceptions named.</p>\n"
        f'<ul class="findings">{rules}</ul>\n{unexpected}'
    )


def _finding(f: Finding) -> str:
    exceptions = (
        '<ul class="exceptions">'
        + "".join(f"<li>not in {_e(x)}</li>" for x in f.exceptions)
        + "</ul>"
        if f.exceptions
        else ""
    )
    return f'<li><span class="count">{_e(f.count)}</span>: {_e(f.text)}{exceptions}</li>'


def _contents(scenarios: Sequence[str]) -> str:
    items = "".join(f'<li><a href="#{_e(_scenario_id(s))}">{_e(s)}</a></li>' for s in scenarios)
    items = '<li><a href="#answer">Can a process recover?</a></li>' + items
    items += (
        '<li><a href="#skipped">Skipped cells</a></li>'
        '<li><a href="#cells">Cells and their fingerprints</a></li>'
        '<li><a href="#run">Run</a></li>'
    )
    return f'<nav id="contents"><h2>Contents</h2><ol>{items}</ol></nav>'


def _legend(words: Sequence[str]) -> str:
    items = "".join(
        f'<li><span class="swatch {status_class(w)}"></span><code>{_e(info.code)}</code> '
        f"<code>{_e(w)}</code>: {_e(info.meaning)}</li>"
        for w, info in legend(words)
    )
    return f'<h2 id="legend">Legend</h2>\n<ul class="legend">{items}</ul>'


def _scenario_id(scenario: str) -> str:
    return "scenario-" + "".join(c if c.isalnum() or c == "-" else "_" for c in scenario)


def _scenario_table(shape: Layout, scenario: str) -> str:
    head = "".join(
        f'<th scope="col">{_e(c.platform)}<span class="libc">{_e(c.libc)}</span></th>'
        for c in shape.columns
    )
    rows = []
    for row in shape.rows:
        cells = [f'<th scope="row">{_e(row_label(row))}</th>']
        for column in shape.columns:
            result = shape.at(row, column)
            cells.append('<td class="none"></td>' if result is None else _cell(result, scenario))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    info = SCENARIOS.get(scenario)
    note = f'<p class="note">{_e(info.note)}</p>\n' if info else ""
    return (
        f'<section id="{_e(_scenario_id(scenario))}">\n<h2>{_e(scenario)}</h2>\n{note}'
        f'<div class="scroll"><table class="matrix" data-scenario="{_e(scenario)}">\n'
        f'<thead><tr><th scope="col">OpenSSL, variant</th>{head}</tr></thead>\n'
        "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table></div>\n</section>"
    )


def _cell(result: CellResult, scenario: str) -> str:
    s = scenario_of(result, scenario)
    status = status_at(result, scenario)
    verdict = s.verdict if s is not None else status
    attrs = (
        f'id="{_e(_cell_id(scenario, result.cell))}" class="verdict {status_class(status)}" '
        f'data-cell="{_e(result.cell)}" data-scenario="{_e(scenario)}" '
        f'data-verdict="{_e(verdict)}" data-status="{_e(status)}"'
    )
    short = s.short if s is not None else ""
    summary = f'<span class="code">{_e(cell_code(result, scenario))}</span>' + (
        f'<span class="short">{_e(short)}</span>' if short else ""
    )
    return f"<td {attrs}><details><summary>{summary}</summary>{_evidence(result, s)}</details></td>"


def _cell_id(scenario: str, cell: str) -> str:
    return f"{scenario}--{cell.replace('/', '--')}"


def _fingerprint_id(cell: str) -> str:
    return "cell-" + cell.replace("/", "--")


def _evidence(result: CellResult, s: ScenarioResult | None) -> str:
    parts = []
    if s is not None:
        if look_of(s.verdict).code == "?":
            parts.append(
                f'<p class="unknown">a verdict this tool does not know: {_e(s.verdict)}</p>'
            )
        if s.status != s.verdict:
            died = fate(s)
            rate = f" ({died.text()})" if died is not None else ""
            meaning = look_of(s.status).meaning
            parts.append(f'<p class="status">{_e(s.status)}{_e(rate)}: {_e(meaning)}</p>')
        parts.append(f'<p class="cause">{_e(s.verdict)}: {_e(s.cause)}</p>')
        if s.evidence:
            items = "".join(f"<li>{_e(line)}</li>" for line in s.evidence)
            parts.append(f'<ul class="evidence">{items}</ul>')
        parts.append(f'<p class="run-facts">exit code {_e(s.exit_code)}, {_e(s.seconds)} s</p>')
    elif result.reason:
        parts.append(f'<p class="cause">{_e(result.outcome)}: {_e(result.reason)}</p>')
    parts.append(
        f'<p class="links"><a href="#{_e(_fingerprint_id(result.cell))}">the cell\'s '
        "fingerprint and files</a></p>"
    )
    return "".join(parts)


def _skipped(results: Sequence[CellResult]) -> str:
    found = skipped_groups(results)
    if not found:
        return '<h2 id="skipped">Skipped cells</h2>\n<p class="note">None.</p>'
    items = "".join(
        f'<li><span class="count">{len(g.cells)} cells</span> ({_e(g.what)}):'
        f"<pre>{_e(g.reason)}</pre><details><summary>which</summary>"
        + " ".join(f"<code>{_e(c)}</code>" for c in g.cells)
        + "</details></li>"
        for g in found
    )
    return f'<h2 id="skipped">Skipped cells</h2>\n<ul class="skipped">{items}</ul>'


def _cells(results: Sequence[CellResult], run: Run) -> str:
    """Each cell's fingerprint, once, with where and when it was measured and its files."""
    items = []
    for r in results:
        if r.outcome == Outcome.SKIPPED:
            continue  # nothing was made: its reason is under the skipped cells
        fp = r.fingerprint if isinstance(r.fingerprint, dict) else {}
        m = measured(r, run)
        items.append(
            f'<details class="cell" id="{_e(_fingerprint_id(r.cell))}" '
            f'data-cell="{_e(r.cell)}"><summary><code>{_e(r.cell)}</code> '
            f"{_e(r.libc_label())}</summary>"
            + _dl(
                [
                    ("outcome", r.outcome),
                    ("measured", m.text() if m is not None else None),
                    ("image id", _sub(fp, "image", "id")),
                    ("base image", _sub(fp, "base_image", "ref")),
                    ("base image id", _sub(fp, "base_image", "id")),
                    *_sources(fp),
                    *_discovery(fp),
                    ("fips.so sha256", fp.get("fips_so_sha256")),
                    ("libc", r.libc_label()),
                    ("inputs key", r.inputs_key),
                ],
                "fp",
            )
            + _links(r)
            + "</details>"
        )
    if not items:
        return ""
    return '<h2 id="cells">Cells and their fingerprints</h2>\n' + "\n".join(items)


def _run_fingerprint(run: Run) -> str:
    return _dl(
        [
            ("run", run.id),
            ("started", run.started),
            ("finished", run.finished),
            ("wall seconds", run.wall_seconds),
            ("tool version", run.tool_version),
            ("matrix", run.matrix),
            ("matrix digest", run.matrix_digest),
            ("engine", f"{run.engine.version} (API {run.engine.api_version})"),
            ("kernel", run.engine.kernel),
            ("merged from", ", ".join(map(str, run.merged_from)) if run.merged_from else None),
        ],
        "fp run-fingerprint",
    )


def _sub(fp: dict[str, Any], key: str, name: str) -> Any:
    value = fp.get(key)
    return value.get(name) if isinstance(value, dict) else None


def _sources(fp: dict[str, Any]) -> list[tuple[str, Any]]:
    """The source tarballs: the cell's, then a skew cell's provider's."""
    sources = fp.get("sources") or []
    return [
        (f"source {s.get('version', '?')} sha256", s.get("sha256"))
        for s in (sources if isinstance(sources, list) else [])
        if isinstance(s, dict)
    ]


def _discovery(fp: dict[str, Any]) -> list[tuple[str, Any]]:
    """An existing image's: which libcrypto and fips.so its probe was given, and why."""
    found = fp.get("discovery")
    if not isinstance(found, dict):
        return []
    rows: list[tuple[str, Any]] = []
    for label, key in (("libcrypto", "libcrypto"), ("fips.so", "module")):
        choice = found.get(key)
        if isinstance(choice, dict):
            version = f" ({choice['version']})" if choice.get("version") else ""
            rows.append((label, f"{choice.get('path')}{version}: {choice.get('why')}"))
    configs = found.get("configs")
    listed = configs if isinstance(configs, list) else []
    paths = [str(c.get("path")) for c in listed if isinstance(c, dict)]
    rows.append(("configuration", ", ".join(paths) or "none found"))
    return [*rows, ("second witness", fp.get("second_witness"))]


def _links(result: CellResult) -> str:
    links = [(f"cells/{assets.slug(result.cell)}.json", "cell JSON")]
    logs = result.logs if isinstance(result.logs, dict) else {}
    links += [(f"cells/{PurePath(str(path)).name}", f"{kind} log") for kind, path in logs.items()]
    return (
        '<p class="links">'
        + " · ".join(f'<a href="{_e(href)}">{_e(text)}</a>' for href, text in links)
        + "</p>"
    )


def _dl(items: Sequence[tuple[str, Any]], css: str) -> str:
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items if v not in (None, ""))
    return f'<dl class="{css}">{rows}</dl>'

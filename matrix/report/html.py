"""One self-contained HTML page of a run: its fingerprint, a legend, and one pivot table per
scenario (rows and columns as in matrix.table), each cell coloured by its verdict with the
cause, the evidence and the cell's fingerprint one click away (<details>, no JavaScript).

Links to `cells/<cell>.json` and the logs are relative: the page is meant to be written
into the results directory itself (DIR/report.html)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import PurePath
from typing import Any

from matrix import assets
from matrix.model.vocabulary import LOOKS, SCENARIOS, Outcome
from matrix.report.layout import MISSING, cell_text, layout
from matrix.results.records import CellResult, Run, ScenarioResult

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #999; padding: 4px 8px; vertical-align: top; text-align: left; }
th { background: #f4f4f4; }
td.verdict { min-width: 14em; max-width: 40em; }
details summary { cursor: pointer; font-weight: 600; }
details ul { margin: 0.3em 0; padding-left: 1.2em; font-weight: normal; }
dl.fp { display: grid; grid-template-columns: max-content auto; gap: 0 1em; margin: 0.3em 0; }
dl.fp dt { font-weight: 600; }
dl.fp dd { margin: 0; font-family: monospace; word-break: break-all; }
.swatch { display: inline-block; width: 1em; height: 1em; border: 1px solid #999;
  vertical-align: middle; margin-right: 0.4em; }
.note { color: #555; }
"""


def verdict_class(verdict: str) -> str:
    """The CSS class colouring a cell: "v-sticky-error" for STICKY_ERROR."""
    return "v-" + verdict.lower().replace("_", "-")


def render_html(results: Sequence[CellResult], run: Run, scenarios: Sequence[str]) -> str:
    title = f"FIPS provider reload matrix, run {run.id}"
    body = [
        f"<h1>{escape(title)}</h1>",
        "<h2>Run</h2>",
        _run_fingerprint(run),
        _legend(),
        *(_scenario_table(results, scenario) for scenario in scenarios),
        _skipped(results),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}{_verdict_css()}</style>\n</head>\n"
        "<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def _verdict_css() -> str:
    colours = {**{v: info.colour for v, info in LOOKS.items()}, MISSING: "#ffffff"}
    return "".join(f".{verdict_class(v)} {{ background: {c}; }}\n" for v, c in colours.items())


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
        ],
        "fp run-fingerprint",
    )


def _legend() -> str:
    items = "".join(
        f'<li><span class="swatch {verdict_class(v)}"></span><code>{escape(v)}</code>: '
        f"{escape(info.meaning)}</li>"
        for v, info in LOOKS.items()
    )
    return f'<h2>Verdicts</h2>\n<ul class="legend">{items}</ul>'


def _scenario_table(results: Sequence[CellResult], scenario: str) -> str:
    shape = layout(results)
    head = "".join(f"<th>{escape(f'{v} {var}')}</th>" for v, var in shape.columns)
    rows = []
    for platform, label in shape.rows.items():
        cells = [f'<th scope="row">{escape(label)}</th>']
        for column in shape.columns:
            result = shape.at(platform, column)
            cells.append("<td></td>" if result is None else _cell(result, scenario))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    info = SCENARIOS.get(scenario)
    note = info.note if info else None
    return (
        f'<h2 id="scenario-{escape(scenario)}">{escape(scenario)}</h2>\n'
        + (f'<p class="note">{escape(note)}</p>\n' if note else "")
        + f'<table data-scenario="{escape(scenario)}">\n'
        f"<thead><tr><th>platform (libc)</th>{head}</tr></thead>\n"
        "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"
    )


def _skipped(results: Sequence[CellResult]) -> str:
    items = "".join(
        f'<li data-cell="{escape(r.cell)}" data-verdict="{Outcome.SKIPPED}">'
        f"<code>{escape(r.cell)}</code>: "
        f"{escape(r.reason)}</li>"
        for r in results
        if r.outcome == Outcome.SKIPPED
    )
    return f'<h2>Skipped cells</h2>\n<ul class="skipped">{items}</ul>' if items else ""


def _cell(result: CellResult, scenario: str) -> str:
    s = next((s for s in result.scenarios if s.scenario == scenario), None)
    if s is not None:
        verdict = s.verdict
    elif result.outcome != Outcome.OK and not result.scenarios:
        verdict = result.outcome
    else:
        verdict = MISSING
    attrs = (
        f'id="{escape(_cell_id(scenario, result.cell))}" class="verdict {verdict_class(verdict)}" '
        f'data-cell="{escape(result.cell)}" data-scenario="{escape(scenario)}" '
        f'data-verdict="{escape(verdict)}"'
    )
    text = escape(cell_text(result, scenario))
    return f"<td {attrs}><details><summary>{text}</summary>{_evidence(result, s)}</details></td>"


def _cell_id(scenario: str, cell: str) -> str:
    return f"{scenario}--{cell.replace('/', '--')}"


def _evidence(result: CellResult, s: ScenarioResult | None) -> str:
    parts = []
    if s is not None:
        parts.append(f'<p class="cause">{escape(s.cause)}</p>')
        if s.evidence:
            items = "".join(f"<li>{escape(line)}</li>" for line in s.evidence)
            parts.append(f'<ul class="evidence">{items}</ul>')
    elif result.reason:
        parts.append(f'<p class="cause">{escape(result.outcome)}: {escape(result.reason)}</p>')
    fp = result.fingerprint
    run_facts: list[tuple[str, Any]] = []
    if s is not None:
        run_facts = [("exit code", s.exit_code), ("seconds", s.seconds)]
    parts.append(
        _dl(
            [
                ("cell", result.cell),
                ("image id", (fp.get("image") or {}).get("id")),
                ("base image id", (fp.get("base_image") or {}).get("id")),
                *_sources(fp),
                ("fips.so sha256", fp.get("fips_so_sha256")),
                ("libc", result.libc_label()),
                *run_facts,
            ],
            "fp",
        )
    )
    parts.append(_links(result))
    return "".join(parts)


def _sources(fp: dict[str, Any]) -> list[tuple[str, Any]]:
    """The source tarballs: the cell's, then a skew cell's provider's."""
    sources = fp.get("sources") or []
    return [
        (f"source {s.get('version', '?')} sha256", s.get("sha256"))
        for s in sources
        if isinstance(s, dict)
    ]


def _links(result: CellResult) -> str:
    links = [(f"cells/{assets.slug(result.cell)}.json", "cell JSON")]
    links += [(f"cells/{PurePath(path).name}", f"{kind} log") for kind, path in result.logs.items()]
    return (
        '<p class="links">'
        + " · ".join(f'<a href="{escape(href)}">{escape(text)}</a>' for href, text in links)
        + "</p>"
    )


def _dl(items: Sequence[tuple[str, Any]], css: str) -> str:
    rows = "".join(
        f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in items if v not in (None, "")
    )
    return f'<dl class="{css}">{rows}</dl>'

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

from matrix.results import (
    BUILD_FAILED,
    ERROR,
    OK,
    SKIPPED,
    CellResult,
    ScenarioResult,
)
from matrix.table import cell_text
from matrix.verdicts import (
    CLEAN_RELOAD,
    DISAGREEMENT,
    INCONCLUSIVE,
    MAPPED_BUT_RECOVERED,
    PROBE_CRASHED,
    STICKY_ERROR,
    TIMEOUT,
    UNLOADED_BUT_FAILED,
)

# verdict (or cell outcome) -> (background colour, meaning), in legend order
VERDICTS: dict[str, tuple[str, str]] = {
    CLEAN_RELOAD: ("#b7e1b5", "fips.so left the process; the reload mapped a fresh copy"),
    MAPPED_BUT_RECOVERED: ("#fbe99a", "fips.so stayed mapped, yet the reload passed"),
    UNLOADED_BUT_FAILED: ("#f7b27a", "fips.so was unmapped, yet the reload failed"),
    STICKY_ERROR: ("#ef8f8f", "fips.so stayed mapped and kept its error state"),
    INCONCLUSIVE: ("#c8c8c8", "the scenario did not do what it is for"),
    PROBE_CRASHED: ("#cdb0ec", "the probe process died before it finished"),
    TIMEOUT: ("#cdb0ec", "the probe did not finish in time"),
    BUILD_FAILED: ("#ececec", "the cell's image did not build (see the build log)"),
    SKIPPED: ("#ececec", "not run (no base image or no source)"),
    ERROR: ("#ececec", "the tool itself failed on this cell"),
    DISAGREEMENT: ("#cdb0ec", "the C probe and the cffi probe disagree: a bug of this tool"),
}
MISSING = "-"  # the cell ran, but not this scenario

SCENARIO_NOTES = {
    "ondemand-kat": "a KAT corrupted in an on-demand self-test, everything freed, a reload "
    "into a new context",
    "load-kat": "the same KAT corrupted during the load itself",
    "integrity": "a wrong module-mac, then the correct configuration in a new context",
    "leaked-ref": "control: as ondemand-kat, but one fetched EVP_MD is never freed",
    "no-failure": "control: load, unload, free, reload, with no failure",
    "two-contexts": "a second context holds the module while the first fails",
    "worker-thread": "a worker thread uses the module through the failure",
}

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


def render_html(
    results: Sequence[CellResult], run: dict[str, Any], scenarios: Sequence[str]
) -> str:
    title = f"FIPS provider reload matrix, run {run.get('id', '?')}"
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
    colours = {**{v: c for v, (c, _) in VERDICTS.items()}, MISSING: "#ffffff"}
    return "".join(f".{verdict_class(v)} {{ background: {c}; }}\n" for v, c in colours.items())


def _run_fingerprint(run: dict[str, Any]) -> str:
    engine = run.get("engine") or {}
    return _dl(
        [
            ("run", run.get("id")),
            ("started", run.get("started")),
            ("finished", run.get("finished")),
            ("wall seconds", run.get("wall_seconds")),
            ("tool version", run.get("tool_version")),
            ("matrix", run.get("matrix")),
            ("matrix digest", run.get("matrix_digest")),
            ("engine", f"{engine.get('version', '?')} (API {engine.get('api_version', '?')})"),
            ("kernel", engine.get("kernel")),
        ],
        "fp run-fingerprint",
    )


def _legend() -> str:
    items = "".join(
        f'<li><span class="swatch {verdict_class(v)}"></span><code>{escape(v)}</code>: '
        f"{escape(meaning)}</li>"
        for v, (_, meaning) in VERDICTS.items()
    )
    return f'<h2>Verdicts</h2>\n<ul class="legend">{items}</ul>'


def _scenario_table(results: Sequence[CellResult], scenario: str) -> str:
    columns, platforms = _layout(results)
    by_key = {(r.platform, r.version, r.variant): r for r in results}
    head = "".join(f"<th>{escape(f'{v} {var}')}</th>" for v, var in columns)
    rows = []
    for platform, label in platforms.items():
        cells = [f'<th scope="row">{escape(label)}</th>']
        for version, variant in columns:
            result = by_key.get((platform, version, variant))
            cells.append("<td></td>" if result is None else _cell(result, scenario))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    note = SCENARIO_NOTES.get(scenario)
    return (
        f'<h2 id="scenario-{escape(scenario)}">{escape(scenario)}</h2>\n'
        + (f'<p class="note">{escape(note)}</p>\n' if note else "")
        + f'<table data-scenario="{escape(scenario)}">\n'
        f"<thead><tr><th>platform (libc)</th>{head}</tr></thead>\n"
        "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"
    )


def _layout(
    results: Sequence[CellResult],
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Columns (version, variant) and rows platform -> label, as matrix.table.pivots makes
    them: first seen first, a libc version seen by the probe beating the declared name, and
    no row or column in which every cell was skipped (those are listed below the tables)."""
    columns: list[tuple[str, str]] = []
    platforms: dict[str, str] = {}
    for r in results:
        if r.outcome == SKIPPED:
            continue
        if (r.version, r.variant) not in columns:
            columns.append((r.version, r.variant))
        label = r.libc_label()
        if r.platform not in platforms or label != r.libc:
            platforms[r.platform] = f"{r.platform} ({label})"
    return columns, platforms


def _skipped(results: Sequence[CellResult]) -> str:
    items = "".join(
        f'<li data-cell="{escape(r.cell)}" data-verdict="{SKIPPED}"><code>{escape(r.cell)}</code>: '
        f"{escape(r.reason)}</li>"
        for r in results
        if r.outcome == SKIPPED
    )
    return f'<h2>Skipped cells</h2>\n<ul class="skipped">{items}</ul>' if items else ""


def _cell(result: CellResult, scenario: str) -> str:
    s = next((s for s in result.scenarios if s.scenario == scenario), None)
    if s is not None:
        verdict = s.verdict
    elif result.outcome != OK and not result.scenarios:
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
    name = result.cell.replace("/", "__")
    links = [(f"cells/{name}.json", "cell JSON")]
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

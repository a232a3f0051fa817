"""Text from elsewhere (a results file, an image, an engine message, a probe document) as a
person may safely read it: every control character shown as its escape (`\\x1b`), so none
moves the cursor, clears the screen, colours what follows or rewrites a line, in a terminal
or in a file shown by one; and every lone surrogate shown as its escape, so that the text
can be encoded at all. One function for every writer: the terminal (VisibleHook), Markdown
and HTML."""

from __future__ import annotations

import re

from rich.console import Console, ConsoleOptions, ConsoleRenderable, RenderHook, RenderResult
from rich.segment import Segment

# C0 but newline and tab (which lay text out and move nothing), DEL, C1 (0x9b is a CSI of
# its own on some terminals), the bidirectional overrides and isolates (which reorder what is
# shown), and lone surrogates (which no UTF-8 writer can encode).
_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """text with each control character, bidirectional control and lone surrogate written
    as its Python escape; newlines and tabs stay."""
    return _HIDDEN.sub(_escape, text)


class _Visible:
    """A renderable whose text segments went through visible(); rich's own control segments
    (the cursor, styles) are left as they are."""

    def __init__(self, inner: ConsoleRenderable) -> None:
        self.inner = inner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for segment in console.render(self.inner, options):
            if segment.control:
                yield segment
            else:
                yield Segment(visible(segment.text), segment.style)


class VisibleHook(RenderHook):
    """Installed on a console (console.push_render_hook), every text it prints goes through
    visible(), whoever made it: a report, a live progress line, an error message."""

    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        return [_Visible(r) for r in renderables]


def visible_console(console: Console) -> Console:
    """console, printing every text through visible()."""
    console.push_render_hook(VisibleHook())
    return console

"""Markdown prose wrapped for a reader's screen: the README's generated sections keep every line
within WIDTH columns except table rows (a Markdown table row cannot wrap) and fenced code.
A bullet's later lines are indented two spaces, a quote's carry its `> `, so the rendered text
is the same as unwrapped; no line is made to start with what Markdown would read as a new
list item, heading, quote or table row."""

from __future__ import annotations

import re
from collections.abc import Iterable

WIDTH = 100
# A word that would open a line as a list item, heading, quote or table row, not prose.
_OPENS_BLOCK = re.compile(r"^(?:[-+*]|\d+[.)]|#{1,6}|>|\||=+|-+)$")


def wrap_markdown(lines: Iterable[str], width: int = WIDTH) -> list[str]:
    """Each line of `lines` (an item may hold several) wrapped; tables and fences as they are."""
    out: list[str] = []
    fenced = False
    for line in (part for item in lines for part in item.split("\n")):
        if line.startswith("```"):
            fenced = not fenced
        if fenced or line.startswith("```") or line.startswith("|") or len(line) <= width:
            out.append(line)
        elif line.startswith("- "):
            out += _wrap(line[2:], width, "- ", "  ")
        elif line.startswith("> "):
            out += _wrap(line[2:], width, "> ", "> ")
        else:
            out += _wrap(line, width, "", "")
    return out


def _wrap(text: str, width: int, first: str, rest: str) -> list[str]:
    """Greedy wrapping at spaces; a word longer than the width stays whole on its own line."""
    lines: list[list[str]] = [[]]
    used = len(first)
    for word in text.split():
        if lines[-1] and used + 1 + len(word) > width:
            carried: list[str] = []
            if _OPENS_BLOCK.match(word) and len(lines[-1]) > 1:
                carried = [lines[-1].pop()]  # the word before comes along: no line opens with it
            lines.append(carried)
            used = len(rest) + sum(len(w) + 1 for w in carried) - (1 if carried else 0)
        used += (1 if lines[-1] else 0) + len(word)
        lines[-1].append(word)
    return [(first if i == 0 else rest) + " ".join(words) for i, words in enumerate(lines)]

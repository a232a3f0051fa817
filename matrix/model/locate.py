"""Where a key path (("platforms", "debian-12", "dockerfile"), ("include", 0)) stands in a
matrix file's text, so that every error names `file:line`. A scan of the text, not a TOML
parser: good enough for errors."""

from __future__ import annotations

import re
from pathlib import Path

KeyPath = tuple[str | int, ...]

_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*(.+?)\s*\]\]?\s*(?:#.*)?$")
_KEY_PART_RE = re.compile(r"""\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*(?:\.|$)""")


def _split_key(s: str) -> tuple[str, ...]:
    parts: list[str] = []
    pos = 0
    while pos < len(s):
        m = _KEY_PART_RE.match(s, pos)
        if not m or m.end() == pos:
            break
        parts.append(next(g for g in m.groups() if g is not None))
        pos = m.end()
    return tuple(parts)


class Locator:
    """Finds the line of a table header or key by scanning the text: good enough for errors."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        # (1-based line, header key path, is an array-of-tables header)
        self.headers: list[tuple[int, tuple[str, ...], bool]] = []
        for i, line in enumerate(self.lines, 1):
            m = _HEADER_RE.match(line)
            if m:
                self.headers.append((i, _split_key(m.group(2)), m.group(1) == "[["))

    def line_of(self, kp: KeyPath) -> int:
        for cut in range(len(kp), 0, -1):
            start = self._header_line(kp[:cut])
            if start is not None:
                return self._key_line(start, [str(k) for k in kp[cut:]])
        return self._key_line(0, [str(k) for k in kp])

    def _header_line(self, prefix: KeyPath) -> int | None:
        if isinstance(prefix[-1], int):
            names, nth = prefix[:-1], prefix[-1]
            arrays = [ln for ln, path, arr in self.headers if arr and path == names]
            return arrays[nth] if nth < len(arrays) else None
        for ln, path, arr in self.headers:
            if not arr and path == prefix:
                return ln
        return None

    def _key_line(self, start: int, keys: list[str]) -> int:
        """Search `keys` in order inside the section that begins after line `start`."""
        end = next((ln for ln, _, _ in self.headers if ln > start), len(self.lines) + 1)
        found, first = start, start + 1
        for key in keys:
            q = re.escape(key)
            key_re = re.compile(rf"""(?:^|[{{,\s.])(?:{q}|"{q}"|'{q}')\s*[=.]""")
            hit = next((ln for ln in range(first, end) if key_re.search(self.lines[ln - 1])), None)
            if hit is None:
                break
            # A nested key may sit on the same line (inline table) or below it.
            found = first = hit
        return found or 1


def line_in_file(path: Path, kp: KeyPath) -> int:
    """The line of key path kp in the file at path; 1 where the file cannot be read."""
    try:
        return Locator(path.read_text(encoding="utf-8")).line_of(kp)
    except (OSError, UnicodeDecodeError):
        return 1

"""What long work says while it goes: one interface for every part of the tool (sources,
base images, builds, probes, the runner), so each says what it does without knowing where it
goes. Cells may run side by side, so every cell's line names its cell. Its own styling is
rich markup, and every text it is given is escaped: the console itself reads no markup, and
shows control characters (matrix/visible.py)."""

from __future__ import annotations

import threading
import time

from rich.console import Console
from rich.markup import escape

from matrix.model.vocabulary import OK_STYLE, Outcome, look
from matrix.visible import visible_console


class Reporter:
    """Says nothing: for tests, and for work whose output nobody reads."""

    def note(self, text: str) -> None:
        """A line about the run as a whole (a download, a base image being made)."""

    def cell_started(self, cell_id: str) -> None:
        """A cell's work begins."""

    def phase(self, cell_id: str, name: str, detail: str = "") -> None:
        """A step of a cell's work (base, source, build, skew, probe)."""

    def cell_done(self, cell_id: str, outcome: str, summary: str) -> None:
        """A cell's result is on disk."""


class ConsoleReporter(Reporter):
    """One line per event on the terminal, numbered by cell."""

    def __init__(self, total: int, console: Console | None = None) -> None:
        self.console = console or visible_console(Console(highlight=False, soft_wrap=True))
        self.total = total
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._index = 0
        self._cell_started: dict[str, float] = {}

    def note(self, text: str) -> None:
        self.console.print(f"[dim]{escape(text)}[/dim]", markup=True)

    def cell_started(self, cell_id: str) -> None:
        with self._lock:
            self._index += 1
            index = self._index
            self._cell_started[cell_id] = time.monotonic()
        self.console.print(f"[bold][{index}/{self.total}] {escape(cell_id)}[/bold]", markup=True)

    def phase(self, cell_id: str, name: str, detail: str = "") -> None:
        elapsed = time.monotonic() - self._cell_started.get(cell_id, self.started)
        self.console.print(
            f"  {escape(cell_id)} {name:<6} {escape(detail)} [dim]({elapsed:.0f}s)[/dim]",
            markup=True,
        )

    def cell_done(self, cell_id: str, outcome: str, summary: str) -> None:
        style = OK_STYLE if outcome == Outcome.OK else _style(outcome)
        self.console.print(
            f"  {escape(cell_id)} [{style}]{escape(outcome)}[/{style}] {escape(summary)}",
            markup=True,
        )


def _style(name: str) -> str:
    found = look(name)
    return found.terminal if found is not None else "red"

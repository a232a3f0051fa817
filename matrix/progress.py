"""Progress on the terminal: one line per cell phase, so a long run shows where it is.
Cells may run side by side, so every line names its cell."""

from __future__ import annotations

import threading
import time

from rich.console import Console
from rich.markup import escape

from matrix.cells import Cell

STYLE = {
    "OK": "green",
    "CLEAN_RELOAD": "green",
    "MAPPED_BUT_RECOVERED": "yellow",
    "STICKY_ERROR": "red",
    "UNLOADED_BUT_FAILED": "red",
    "SKIPPED": "yellow",
}


class Progress:
    def __init__(self, total: int, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.total = total
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._index = 0
        self._cell_started: dict[str, float] = {}

    def cell(self, cell: Cell) -> None:
        with self._lock:
            self._index += 1
            index = self._index
            self._cell_started[cell.id] = time.monotonic()
        self.console.print(f"[bold][{index}/{self.total}] {escape(cell.id)}[/bold]")

    def phase(self, cell: Cell, name: str, detail: str = "") -> None:
        elapsed = time.monotonic() - self._cell_started.get(cell.id, self.started)
        self.console.print(
            f"  {escape(cell.id)} {name:<6} {escape(detail)} [dim]({elapsed:.0f}s)[/dim]"
        )

    def done(self, cell: Cell, outcome: str, summary: str) -> None:
        style = STYLE.get(outcome, "red")
        self.console.print(
            f"  {escape(cell.id)} [{style}]{escape(outcome)}[/{style}] {escape(summary)}"
        )

    def note(self, text: str) -> None:
        self.console.print(f"[dim]{escape(text)}[/dim]")

    def elapsed(self) -> float:
        return time.monotonic() - self.started

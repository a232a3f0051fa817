"""Progress on the terminal: one line per cell phase, so a long run shows where it is."""

from __future__ import annotations

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
}


class Progress:
    def __init__(self, total: int, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.total = total
        self.index = 0
        self.started = time.monotonic()
        self.cell_started = self.started

    def cell(self, cell: Cell) -> None:
        self.index += 1
        self.cell_started = time.monotonic()
        self.console.print(f"[bold][{self.index}/{self.total}] {escape(cell.id)}[/bold]")

    def phase(self, name: str, detail: str = "") -> None:
        elapsed = time.monotonic() - self.cell_started
        text = f"  {name:<6} {escape(detail)}" if detail else f"  {name}"
        self.console.print(f"{text} [dim]({elapsed:.0f}s)[/dim]")

    def done(self, outcome: str, summary: str) -> None:
        style = STYLE.get(outcome, "red")
        self.console.print(f"  [{style}]{escape(outcome)}[/{style}] {escape(summary)}")

    def note(self, text: str) -> None:
        self.console.print(f"[dim]{escape(text)}[/dim]")

    def elapsed(self) -> float:
        return time.monotonic() - self.started

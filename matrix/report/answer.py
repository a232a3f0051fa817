"""The answer every report shows first: per cell, its recoverability (matrix/judge/recovery.py)
in the layout's shape (rows OpenSSL version and variant, columns platforms), each cell the
status word with the marks of its conditions or reasons; the legend of the statuses and the
marks shown, one line each; and the advice made from the same cells (report/advice.py)."""

from __future__ import annotations

from dataclasses import dataclass

from matrix.judge.recovery import (
    MARKS,
    OTHER_REASON_MARK,
    REASON_MARKS,
    Recoverability,
    recoverability,
)
from matrix.model.vocabulary import RECOVERY_LOOKS, Recovery, RecoveryLook
from matrix.report.layout import Layout
from matrix.results.records import CellResult

TITLE = "Can a process recover after a FIPS failure?"
INTRO = (
    "Each cell: can a process that hits a FIPS self-test failure free everything, reload the "
    "provider and go on, drawn from all the cell's scenarios (the rule: "
    "matrix/judge/recovery.py)."
)
# What NEVER's marks stand for, beside the conditions' marks.
REASON_TEXT = {
    **{mark: reason for reason, mark in REASON_MARKS.items()},
    OTHER_REASON_MARK: "the reload failed after everything was freed, for another reason",
}


@dataclass(frozen=True)
class AnswerCell:
    result: CellResult
    judged: Recoverability
    causes: str = ""  # CRASHES' causes by their numbers in the legend: "1", "1,2"

    @property
    def code(self) -> str:
        """The table's text: "RECOVERS IF F,C", "NEVER N", "CRASHES 1"."""
        word = RECOVERY_LOOKS[self.judged.status].code
        marks = self.judged.marks or self.causes
        return f"{word} {marks}" if marks else word

    @property
    def look(self) -> RecoveryLook:
        return RECOVERY_LOOKS[self.judged.status]

    def detail(self) -> list[str]:
        """What the status stands on, in lines: reasons, conditions, deaths, cited scenarios."""
        j = self.judged
        lines = [f"{'reason' if j.status != Recovery.CRASHES else 'died'}: {r}" for r in j.reasons]
        lines += [f"if {c.mark}: {c.text} ({', '.join(c.scenarios)})" for c in j.conditions]
        lines += [f"{d.scenario} died {d.rate}: {d.key}; {d.separation}" for d in j.deaths]
        if j.cited:
            lines.append("from: " + ", ".join(j.cited))
        return lines


def answer_grid(shape: Layout) -> list[list[AnswerCell | None]]:
    """A row per layout row, a cell per column; None where no cell is. CRASHES' causes are
    numbered in first-seen order, the same cause the same number everywhere."""
    judged: dict[str, AnswerCell] = {}
    numbers: dict[str, int] = {}
    grid: list[list[AnswerCell | None]] = []
    for row in shape.rows:
        cells: list[AnswerCell | None] = []
        for column in shape.columns:
            result = shape.at(row, column)
            if result is None:
                cells.append(None)
                continue
            if result.cell not in judged:
                j = recoverability(result)
                causes = j.reasons if j.status == Recovery.CRASHES else ()
                for cause in causes:
                    numbers.setdefault(cause, len(numbers) + 1)
                named = ",".join(str(numbers[c]) for c in causes)
                judged[result.cell] = AnswerCell(result, j, named)
            cells.append(judged[result.cell])
        grid.append(cells)
    return grid


def answer_legend(grid: list[list[AnswerCell | None]]) -> list[tuple[str, str, str]]:
    """(status or mark, its code, its meaning): every status in legend order (a reader learns
    what a cell could have said, not only what it says), then the marks the table shows;
    a mark's status is ""."""
    cells = [c for row in grid for c in row if c is not None]
    lines = [(str(s), info.code, info.meaning) for s, info in RECOVERY_LOOKS.items()]
    marks = dict.fromkeys(
        m for c in cells for m in c.judged.marks.split(",") if m
    )  # in first-seen order
    for mark in sorted(marks, key=_mark_order):
        meaning = MARKS.get(mark) or REASON_TEXT.get(mark, "")
        lines.append(("", mark, meaning))
    causes: dict[str, str] = {}
    for c in cells:
        if c.causes:
            causes.update(zip(c.causes.split(","), c.judged.reasons, strict=True))
    for number, cause in sorted(causes.items(), key=lambda item: int(item[0])):
        lines.append(("", number, f"died in {cause}"))
    return lines


def _mark_order(mark: str) -> int:
    order = [*MARKS, *REASON_TEXT]
    return order.index(mark) if mark in order else len(order)

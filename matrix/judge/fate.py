"""A scenario's fate as a rate: of the C probe's runs that printed their whole document, how
many then died, and how. What a process does after a use of freed memory varies from run to
run, so one observation is not a fact about a platform: a scenario whose process died (or
whose runs disagreed) is run again (--fate-runs), and its fate is k/N.

Pure: the fate is counted from the judged runs' facts, so `fips-matrix report` counts it
again from stored observations."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from matrix.model.vocabulary import died_after_document, signal_name

DEFAULT_FATE_RUNS = 5


@dataclass(frozen=True)
class Fate:
    died: int  # runs whose process died after its complete document
    runs: int  # runs with a complete document
    ends: tuple[tuple[str, int], ...] = ()  # how they died, most frequent first

    def to_json(self) -> dict[str, Any]:
        return {"died": self.died, "runs": self.runs, "ends": dict(self.ends)}

    def text(self) -> str:
        """ "died 3/5 (SIGSEGV 2, SIGABRT 1)", "survived 5/5"."""
        if not self.died:
            return f"survived {self.runs}/{self.runs}"
        how = ", ".join(f"{name} {n}" for name, n in self.ends)
        return f"died {self.died}/{self.runs}" + (f" ({how})" if how else "")


def end_name(facts: Mapping[str, Any]) -> str | None:
    """How one run's process ended after its document, in a word ("SIGSEGV", "hung",
    "exit 3"); None when it ended cleanly."""
    code = died_after_document(facts)
    if code is None:
        return None
    if facts.get("hung_after_document"):
        return "hung"
    return signal_name(code - 128) if code > 128 else f"exit {code}"


def count(runs: Sequence[Mapping[str, Any] | None]) -> Fate:
    """The fate of judged runs, given each one's facts (None: no complete document, so no
    fate: such a run counts against the verdict, as a flaky one, not here)."""
    ends = [end_name(facts) for facts in runs if facts is not None]
    died = Counter(e for e in ends if e is not None)
    return Fate(sum(died.values()), len(ends), tuple(died.most_common()))


def fate_of(facts: Mapping[str, Any]) -> Fate | None:
    """A scenario's fate as its facts hold it; None where it has none (no complete document,
    or facts from elsewhere that hold something else)."""
    data = facts.get("fate")
    if not isinstance(data, dict):
        return None
    died, runs, ends = data.get("died"), data.get("runs"), data.get("ends", {})
    if not (isinstance(died, int) and isinstance(runs, int) and _count(died) and _count(runs)):
        return None
    if not 0 <= died <= runs or runs == 0:
        return None
    if not (isinstance(ends, dict) and all(_count(n) for n in ends.values())):
        ends = {}
    return Fate(died, runs, tuple((str(k), int(v)) for k, v in ends.items()))


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def runs_wanted(facts: Mapping[str, Any], runs: int, fate_runs: int) -> int:
    """How many more runs of the C probe a scenario judged from `runs` runs needs: up to
    `fate_runs` in all where its process (the C probe's or the twin's) died after its
    document, or its runs disagreed; else none."""
    if runs >= fate_runs:
        return 0
    fate = fate_of(facts)
    died = (fate is not None and fate.died > 0) or died_after_document(facts) is not None
    twin_died = died_after_document(
        {"exit_after_document": facts.get("witness_exit_after_document")}
    )
    tally = facts.get("runs")
    disagree = isinstance(tally, dict) and tally.get("agree") != tally.get("total")
    return fate_runs - runs if died or twin_died is not None or disagree else 0

"""A scenario's fate as a rate: of the C probe's runs that printed their whole document, how
many then died, and how. What a process does after a use of freed memory varies from run to
run, so one observation is not a fact about a platform: a scenario whose process died (or
whose runs disagreed) is run again (--fate-runs), and its fate is k/N.

Pure: the fate is counted from the judged runs' facts, so `fips-matrix report` counts it
again from stored observations."""

from __future__ import annotations

import math
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


# A change of fate counts when chance alone would show it less than once in a hundred pairs
# of runs of one platform.
SIGNIFICANCE = 0.01


def moved(old: Fate, new: Fate) -> bool:
    """Whether two fates of one scenario (an earlier run's and this one's) differ by more than
    runs of one process could by chance: the one rule diff and JUnit's --baseline follow.

    - Deaths on both sides at any rates (2/5, 4/5, 5/5), or none on either: the same fact.
    - Deaths on one side only: the split of the deaths between the two sides is tested
      (Fisher's exact test, one-sided): it counts when chance gives it less than
      SIGNIFICANCE. At 5 runs a side only all against none counts (0/5 -> 5/5: 1 in 252);
      0/5 -> 3/5 is what a death at a middling rate gives by chance (1 in 12), and it was
      seen between two runs of one commit (debian-11, 3.0.20, worker-no-stop). More runs
      (--fate-runs) tell smaller changes: at 10 a side, 0/10 -> 6/10 counts.
    - One run that lived was not run again (neither it nor its control or partner died), so
      it has no rate: against it, only a death in every run counts (0/1 -> 5/5)."""
    if (old.died == 0) == (new.died == 0):
        return False
    lived, died = (old, new) if old.died == 0 else (new, old)
    if lived.runs == 1:
        return died.died == died.runs
    return _chance(died.died, died.runs, lived.runs) < SIGNIFICANCE


def _chance(deaths: int, runs: int, other_runs: int) -> float:
    """Of `deaths` spread at random over runs + other_runs runs, the chance that all fall on
    the first side's runs (the split observed, and none more extreme)."""
    return math.comb(runs, deaths) / math.comb(runs + other_runs, deaths)


def seen(facts: Mapping[str, Any]) -> Fate:
    """The fate the facts hold; for facts of an older run that counted none, its one run's."""
    found = fate_of(facts)
    if found is not None:
        return found
    return Fate(0 if died_after_document(facts) is None else 1, 1)


def witnessed(facts: Mapping[str, Any]) -> Fate:
    """The fate of the C probe's runs with the second witness's one run counted too, where
    the twin ran: either probe's process dying after its document is the same fact about the
    platform, and a stuck exit may strike the one and spare the other in a given run."""
    own = seen(facts)
    if facts.get("witness_verdict") is None:  # no twin ran: no second witness
        return own
    end = end_name({"exit_after_document": facts.get("witness_exit_after_document")})
    if end is None:
        return Fate(own.died, own.runs + 1, own.ends)
    ends = Counter(dict(own.ends))
    ends[end] += 1
    return Fate(own.died + 1, own.runs + 1, tuple(ends.most_common()))

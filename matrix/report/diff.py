"""What changed between two runs: statuses per cell and scenario (the verdict, or
DIED_AFTER_RELOAD where the process died after its reload: vocabulary.scenario_status), cells
that appeared or disappeared, and whether anything got worse (for an exit status). A death is
compared as a rate (judge/fate.py moved): a status that differs only in whether the process
died counts only where the runs support it, so two healthy runs of one commit agree."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

from matrix.errors import MatrixError
from matrix.judge import fate as fates
from matrix.model.vocabulary import RELOAD_VERDICTS, look
from matrix.results.records import CellResult, ScenarioResult
from matrix.results.store import ResultsDir

# Ranks are the vocabulary's (matrix/model/vocabulary.py): best first, a higher rank worse.
# SKIPPED (and a scenario that was not run at all) has no rank: a skip says nothing about the
# platform, only that this run could not measure it (offline, no base image, no source).
# Counting it worse would fail CI on every offline run; counting it better would let a skip
# hide a regression. Such a change is listed, but it is neither worse nor better.
NOT_RUN = "-"  # the cell ran, but not this scenario
WHOLE_CELL = "*"  # the scenario name when neither side of a cell has scenario results


@dataclass(frozen=True)
class Change:
    cell: str
    scenario: str
    old: str  # status text: "STICKY_ERROR", "STICKY_ERROR 2/3" for repeated runs, or "-"
    new: str
    worse: bool


@dataclass(frozen=True)
class Baseline:
    """Results to compare a run against (`--baseline DIR`), named as messages name them."""

    name: str
    results: list[CellResult]


def read_baseline(path: Path) -> Baseline:
    """`--baseline DIR`: the cells of the results directory's run."""
    results, _ = ResultsDir(path).read_run()
    if not results:
        raise MatrixError(f"--baseline: no cell results in {path / 'cells'}")
    return Baseline(str(path), results)


@dataclass(frozen=True)
class Diff:
    changed: list[Change] = field(default_factory=list)
    appeared: list[str] = field(default_factory=list)  # cell ids only in the new results
    disappeared: list[str] = field(default_factory=list)  # cell ids only in the old results
    # cells only in the old results that the new run's summary does not say it left out
    # (no summary.json at all, as in a directory of copied cell files): lost, so worse
    lost: list[str] = field(default_factory=list)
    # cell (or file) -> why it cannot be read, on either side: nothing to compare, so worse
    unreadable: dict[str, str] = field(default_factory=dict)

    @property
    def got_worse(self) -> bool:
        """New cells, and cells the new run did not select, are not regressions: the matrix
        changed, not a platform. A cell that cannot be read, or is gone without the new
        run saying it left it out, is: a gate must not pass on what it could not see."""
        return any(c.worse for c in self.changed) or bool(self.unreadable) or bool(self.lost)


def status_text(s: ScenarioResult) -> str:
    """The status, with "k/n" when the scenario ran n times and k runs agreed on its verdict
    (facts["runs"] = {"agree": k, "total": n}), and "(died k/n)" when its process died after
    its document in k of n > 1 runs (facts["fate"])."""
    text = s.status
    runs = s.facts.get("runs")
    if isinstance(runs, dict) and "agree" in runs and "total" in runs:
        text += f" {runs['agree']}/{runs['total']}"
    died = fates.fate_of(s.facts)
    if died is not None and died.died and died.runs > 1:
        text += f" (died {died.died}/{died.runs})"
    return text


def same_fact(old: ScenarioResult, new: ScenarioResult) -> bool:
    """Whether two results of one scenario say the same of the platform: the same status
    with the same share of runs agreeing on it ("V" and "V 3/3" say the same); or a reload
    verdict whose process died in some runs on one side and in none on the other, where the
    runs do not support a change (judge/fate.py moved: 2/5 against a single survival), the
    cffi twin's run counted with the C probe's (judge/fate.py witnessed)."""
    a, b = _split(status_text(old)), _split(status_text(new))
    if a == b:
        return True
    if a[1] != b[1] or old.verdict != new.verdict or old.verdict not in RELOAD_VERDICTS:
        return False
    return not fates.moved(fates.witnessed(old.facts), fates.witnessed(new.facts))


def diff_results(
    old: Sequence[CellResult],
    new: Sequence[CellResult],
    unreadable_old: Mapping[str, str] | None = None,
    unreadable_new: Mapping[str, str] | None = None,
    selected_new: Collection[str] | None = None,
) -> Diff:
    """unreadable_*: cell (or file) -> why it could not be read on that side. selected_new:
    the cells the new run selected, as its summary.json names them; None without one, and
    then every cell gone from the new results is lost."""
    old_by = {r.cell: r for r in old}
    new_by = {r.cell: r for r in new}
    lost_old, lost_new = dict(unreadable_old or {}), dict(unreadable_new or {})
    unreadable = {
        **{f"{c} (OLD)": why for c, why in lost_old.items()},
        **{f"{c} (NEW)": why for c, why in lost_new.items()},
    }
    changed = []
    for cell, n in new_by.items():
        o = old_by.get(cell)
        if o is None:
            continue
        before = _verdicts(o, [s.scenario for s in n.scenarios])
        after = _verdicts(n, [s.scenario for s in o.scenarios])
        old_s, new_s = _by_name(o), _by_name(n)
        for scenario in [*before, *(s for s in after if s not in before)]:
            a, b = before.get(scenario, NOT_RUN), after.get(scenario, NOT_RUN)
            x, y = old_s.get(scenario), new_s.get(scenario)
            same = same_fact(x, y) if x is not None and y is not None else _split(a) == _split(b)
            if not same:
                changed.append(Change(cell, scenario, a, b, is_worse(a, b)))
    gone = [c for c in old_by if c not in new_by and c not in lost_new]
    selected = None if selected_new is None else set(selected_new)
    # gone without a word: no summary to say so, or one that says the run selected it
    lost = [c for c in gone if selected is None or c in selected]
    return Diff(
        changed=changed,
        appeared=[c for c in new_by if c not in old_by and c not in lost_old],
        disappeared=[c for c in gone if c not in lost],
        lost=lost,
        unreadable=unreadable,
    )


def _verdicts(r: CellResult, other_scenarios: Sequence[str]) -> dict[str, str]:
    """scenario -> status text. A cell without scenario results (a failed build, a skip)
    has its outcome stand for each scenario the other side ran."""
    if r.scenarios:
        return {s.scenario: status_text(s) for s in r.scenarios}
    return {name: r.outcome for name in other_scenarios or [WHOLE_CELL]}


def _by_name(r: CellResult) -> dict[str, ScenarioResult]:
    return {s.scenario: s for s in r.scenarios}


def is_worse(old: str, new: str) -> bool:
    """new ranks below old; or the same verdict with a smaller share of runs agreeing on it:
    a verdict that no longer reproduces is a regression of the measurement itself."""
    (old_verdict, old_share), (new_verdict, new_share) = _split(old), _split(new)
    old_rank, new_rank = _rank(old_verdict), _rank(new_verdict)
    if new_rank is None and look(new_verdict) is None and new_verdict not in (NOT_RUN, old_verdict):
        return True  # a word this tool does not know (a newer or forged file): never a pass
    if old_rank is None or new_rank is None:
        return False
    if old_verdict == new_verdict:
        return new_share < old_share
    return new_rank > old_rank


def comparable(c: Change) -> bool:
    """Both sides measured something: a skip or a scenario not run says nothing of the
    platform, and neither does a word this tool does not know."""
    return _rank(_split(c.old)[0]) is not None and _rank(_split(c.new)[0]) is not None


def _rank(verdict: str) -> int | None:
    found = look(verdict)
    return found.rank if found is not None else None


def _split(text: str) -> tuple[str, float]:
    """A status text's status and share of runs agreeing (1.0 where it says none)."""
    verdict, _, rest = text.partition(" ")
    agree, _, total = rest.partition(" ")[0].partition("/")
    try:
        return verdict, int(agree) / int(total)
    except (ValueError, ZeroDivisionError):
        return verdict, 1.0


def format_diff(diff: Diff) -> str:
    if diff.changed:
        rows = [(c.cell, c.scenario, c.old, c.new, _direction(c)) for c in diff.changed]
        text = tabulate(
            rows, headers=["cell", "scenario", "old", "new", "change"], tablefmt="simple"
        )
    else:
        text = "no verdict changed"
    if diff.appeared:
        text += "\nnew cells: " + ", ".join(diff.appeared)
    if diff.disappeared:
        text += "\ncells gone: " + ", ".join(diff.disappeared)
    if diff.lost:
        text += (
            f"\n{len(diff.lost)} cell(s) of OLD not in NEW, and no summary.json of NEW says its "
            "run left them out, counted as worse: " + ", ".join(diff.lost)
        )
    for cell, why in diff.unreadable.items():
        text += f"\nunreadable, counted as worse: {cell}: {why}"
    return text + "\n"


def _direction(c: Change) -> str:
    if c.worse:
        return "worse"
    return "better" if is_worse(c.new, c.old) else ""

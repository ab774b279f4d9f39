"""Constitution lint: which principles behave like noise, never decide, or duplicate another, measured on
the judgments every run made under them.

A principle is only as useful as the judge's verdicts under it. From the judgments of every run that used a
constitution version, per principle:

* **position consistency**: share of judgments whose two orders agreed (:mod:`training.judge_conventions`'s
  rule). Near 50% the verdict is a coin flip decided by which response came first (Zheng et al. 2023; Wang et
  al. 2023, "Large Language Models are not Fair Evaluators").
* **tie rate**: share of verdicts that are ties. A principle that is mostly ties never decides anything.
* **confidence spread**: standard deviation of the confidence ``|P(A) - 0.5| * 2``; zero spread means the
  judge answers the same whatever the pair.
* **agreement with humans** (where audited): AI labeler alignment on decisive human labels (Lee et al. 2023).
* **redundancy**: for each other principle judged on the same comparisons (runs that judged every principle,
  ``judge.principle_sampling = all``), the share of comparisons on which both gave the same decisive verdict.

Flags (each with the figure and n behind it, and only when n is large enough to mean something):

* ``noise``: position consistency's 95% interval reaches down to chance (0.5) and, where audited, agreement
  with humans is within 0.1 of 50%;
* ``never_decides``: ties are at least :data:`TIE_FLAG` of the verdicts;
* ``duplicate``: the same decisive verdict as another principle on at least :data:`DUPLICATE_FLAG` of their
  shared comparisons.

Plain Python: callers give plain rows; :mod:`runs.lint` reads them from the database.
"""
from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from training.agreement import proportion

MIN_N = 20
TIE_FLAG = 0.6
DUPLICATE_FLAG = 0.95
NOISE_AGREEMENT_BAND = 0.1


@dataclass(frozen=True)
class LintRow:
    """One judgment under a principle.

    Attributes:
        principle: the principle's id.
        comparison: the compared pair's id (shared across principles judging the same pair).
        verdict: ``"A"``, ``"B"`` or ``"tie"`` (failed judgments are left out by the caller).
        p_a: the averaged P(A), or None.
        consistent: whether both orders agreed (None with one order).
        human: the human majority on the pair ("" when not audited).
    """

    principle: int
    comparison: int
    verdict: str
    p_a: float | None = None
    consistent: bool | None = None
    human: str = ""


@dataclass
class PrincipleLint:
    """Figures and flags of one principle (figures are ``ProportionEstimate`` dicts; ``None`` where undefined)."""

    principle: int
    n: int
    position_consistency: dict
    tie_rate: dict
    confidence_spread: float | None
    agreement: dict
    redundancy: dict[int, dict] = field(default_factory=dict)
    flags: list[dict] = field(default_factory=list)


def lint(rows: Iterable[LintRow], principles: Sequence[int],
         names: Mapping[int, str] | None = None) -> dict[int, PrincipleLint]:
    """Figures and flags for each principle id in ``principles`` (in that order).

    Args:
        rows: the judgments, one per (principle, comparison).
        principles: the principle ids to lint.
        names: principle id -> name, for the duplicate flag's wording (else ``principle #<id>``).
    """
    by_principle: dict[int, list[LintRow]] = defaultdict(list)
    for row in rows:
        by_principle[row.principle].append(row)
    result = {}
    for pid in principles:
        group = by_principle.get(pid, [])
        both = [r.consistent for r in group if r.consistent is not None]
        decisive_humans = [r for r in group if r.human in ("A", "B")]
        confidences = [abs(r.p_a - 0.5) * 2 for r in group if r.p_a is not None]
        item = PrincipleLint(
            principle=pid,
            n=len(group),
            position_consistency=proportion(sum(both), len(both)).as_dict(),
            tie_rate=proportion(sum(r.verdict == "tie" for r in group), len(group)).as_dict(),
            confidence_spread=statistics.pstdev(confidences) if len(confidences) >= 2 else None,
            agreement=proportion(sum(r.verdict == r.human for r in decisive_humans), len(decisive_humans)).as_dict(),
        )
        result[pid] = item
    verdicts = {pid: {r.comparison: r.verdict for r in by_principle.get(pid, [])} for pid in principles}
    for i, first in enumerate(principles):
        for second in principles[i + 1:]:
            shared = [c for c in verdicts[first] if c in verdicts[second]
                      and "tie" not in (verdicts[first][c], verdicts[second][c])]
            if not shared:
                continue
            same = proportion(sum(verdicts[first][c] == verdicts[second][c] for c in shared), len(shared)).as_dict()
            result[first].redundancy[second] = same
            result[second].redundancy[first] = same
    for item in result.values():
        item.flags = _flags(item, names or {})
    return result


def _flags(item: PrincipleLint, names: Mapping[int, str]) -> list[dict]:
    flags = []
    pc, ties, agreement = item.position_consistency, item.tie_rate, item.agreement
    if pc["n"] >= MIN_N and pc["low"] is not None and pc["low"] <= 0.5:
        near_chance = agreement["n"] < MIN_N or abs(agreement["value"] - 0.5) <= NOISE_AGREEMENT_BAND
        if near_chance:
            detail = f"position consistency {pc['value']:.0%} (95% CI reaches chance, n={pc['n']})"
            if agreement["n"] >= MIN_N:
                detail += f", agreement with humans {agreement['value']:.0%} (n={agreement['n']})"
            flags.append({"kind": "noise", "detail": detail})
    if ties["n"] >= MIN_N and ties["value"] >= TIE_FLAG:
        flags.append({"kind": "never_decides", "detail": f"{ties['value']:.0%} of {ties['n']} verdicts are ties"})
    for other, same in sorted(item.redundancy.items()):
        if same["n"] >= MIN_N and same["value"] >= DUPLICATE_FLAG:
            name = f"“{names[other]}”" if other in names else f"principle #{other}"
            flags.append({"kind": "duplicate", "other": other,
                          "detail": f"same verdict as {name} on {same['value']:.0%} of {same['n']} pairs"})
    return flags

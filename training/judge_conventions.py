"""Judge-vs-human agreement in the conventions of the published judge benchmarks, so that a judge's figures
can be read side by side with the papers'.

Each unit is one judged pair: the judge's verdict in each presentation order (mapped back to A/B terms:
``"A"``, ``"B"``, ``"tie"``, or ``""`` when that order failed or could not be parsed), the human votes on the
pair, and the two responses' lengths. Plain Python, no Django.

Conventions (each returns an :class:`~training.agreement.ProportionEstimate` with its 95% interval and n):

* **per-order accuracy** (:func:`per_order_accuracy`; the swap-and-score protocol of Zheng et al. 2023,
  MT-Bench, and Wang et al. 2023, "Large Language Models are not Fair Evaluators"): each order is scored on
  its own against the human label and the two scores are averaged, so a pair whose orders disagree earns
  half credit. Over pairs with a decisive (A/B) human label.
* **agreement with ties as a class** (:func:`agreement_with_ties`; MT-Bench's "w/ tie" setting): the judge's
  pair verdict is the verdict both orders gave; orders that split (one A, one B, or one tie) make the pair
  verdict a tie (MT-Bench: "inconsistent results are counted as ties"). A pair agrees when that verdict equals
  the human label, ties included. Over every pair with a human label.
* **agreement without ties** (:func:`agreement_without_ties`; MT-Bench's "w/o tie" setting): the same pair
  verdict, over the pairs where both the humans and the judge are decisive.
* **human-decisive accuracy** (:func:`agreement_on_decisive_humans`; RLAIF's "AI labeler alignment" and
  PandaLM's non-tie accuracy): over pairs with a decisive human label, a judge tie counts as a miss.
* **leave-one-out agreement with the annotators' mode** (:func:`leave_one_out`; AlpacaEval, Dubois et al.
  2023): with several annotators, each annotator is held out in turn and the judge (or the held-out human,
  for the human–human ceiling) is compared with the mode of the others, where that mode is unique.

Every judge figure is also computed for two baselines on the same pairs: **longer response wins** (order-
invariant; equal lengths are a tie) and **first-shown wins** (A in the A/B order, B in the B/A order).

Failures: a unit whose order failed is never silently dropped. Each figure exists twice: ``parsed`` (the
failed orders' units are left out) and ``strict`` (a failed order counts as a miss, and its pair verdict is
no match). Position consistency counts a pair as consistent when both orders give the same verdict, a tie in
both orders included (:func:`position_consistency`).

The human label of a pair is the plurality of its votes; a shared top count is a tie (:func:`human_majority`).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from training.agreement import BOOTSTRAP_RESAMPLES, ProportionEstimate, _bootstrap, _with_percentiles, proportion

DECISIVE = ("A", "B")
VERDICTS = ("A", "B", "tie")


@dataclass(frozen=True)
class PairUnit:
    """One judged pair.

    Attributes:
        ab: the judge's verdict with A shown first (``"A"``, ``"B"``, ``"tie"``, or ``""`` for a failure).
        ba: the verdict with B shown first, in A/B terms (``"A"`` means it preferred A); ``None`` when only one
            order was asked.
        votes: the human votes (``"A"``, ``"B"``, ``"tie"``), in annotator order.
        length_a, length_b: response lengths (characters).
        subset: the pair's subset (scenario, category...), "" when none.
    """

    ab: str
    ba: str | None
    votes: tuple[str, ...] = ()
    length_a: int = 0
    length_b: int = 0
    subset: str = ""
    principle: str = field(default="", compare=False)

    @property
    def failed(self) -> bool:
        """True when an asked order failed."""
        return self.ab == "" or self.ba == ""


def human_majority(votes: Sequence[str] | Mapping[str, int]) -> str:
    """The majority vote of a pair's annotators: the one rule for a human verdict from several labels (the
    audit, the preference export, imported votes, judge-vs-human agreement).

    The verdict is the plurality of the ``"A"``, ``"B"`` and ``"tie"`` votes (anything else, such as a skip,
    is not counted). When the top count is shared (1 A vs 1 B, or 2 A vs 2 tie) the annotators did not agree
    on a preference, so the verdict is ``"tie"``: an even split never decides a side. ``""`` without a counted
    vote.

    Args:
        votes: the votes, or the number of votes per choice (e.g. a :class:`collections.Counter`, or counts
            made in the database).
    """
    counts = votes if isinstance(votes, Mapping) else Counter(votes)
    ranked = sorted(((n, v) for v, n in counts.items() if v in VERDICTS and n > 0), reverse=True)
    if not ranked:
        return ""
    if len(ranked) > 1 and ranked[0][0] == ranked[1][0]:
        return "tie"
    return ranked[0][1]


def pair_verdict(ab: str, ba: str | None) -> str:
    """The judge's verdict on a pair: the orders' common verdict; orders that split make a tie (MT-Bench's
    rule); ``""`` when an order failed."""
    if ab == "" or ba == "":
        return ""
    if ba is None or ab == ba:
        return ab
    return "tie"


def longer_wins(unit: PairUnit) -> PairUnit:
    """The "longer response wins" baseline judging ``unit``'s pair (the same verdict in both orders)."""
    verdict = "A" if unit.length_a > unit.length_b else "B" if unit.length_b > unit.length_a else "tie"
    return PairUnit(verdict, verdict if unit.ba is not None else None, unit.votes, unit.length_a, unit.length_b,
                    unit.subset, unit.principle)


def first_shown_wins(unit: PairUnit) -> PairUnit:
    """The "first-shown wins" baseline: A with A shown first, B with B shown first."""
    return PairUnit("A", "B" if unit.ba is not None else None, unit.votes, unit.length_a, unit.length_b,
                    unit.subset, unit.principle)


def _mean_with_interval(
    credits: Sequence[float], seed: int, resamples: int = BOOTSTRAP_RESAMPLES
) -> ProportionEstimate:
    """Mean credit with a percentile-bootstrap interval over units; Wilson when every credit is 0 or 1."""
    n = len(credits)
    if n == 0:
        return ProportionEstimate(None, None, None, 0, "wilson")
    values = np.asarray(credits, dtype=float)
    if np.all((values == 0) | (values == 1)):
        return proportion(int(values.sum()), n)
    value = float(values.mean())
    boot = _bootstrap(n, resamples, seed, lambda w: (w @ values) / w.sum(axis=1))
    return _with_percentiles(value, boot, n)


def per_order_accuracy(units: Sequence[PairUnit], *, strict: bool = False, seed: int = 0) -> ProportionEstimate:
    """Each order scored on its own against the decisive human label, averaged over the orders asked.

    Args:
        strict: a failed order scores 0 (else the unit is scored on its parsed orders, and left out when none).

    Returns:
        The mean credit (a pair whose orders disagree earns 0.5) with a bootstrap interval; n = pairs.
    """
    credits = []
    for unit in units:
        human = human_majority(unit.votes)
        if human not in DECISIVE:
            continue
        orders = [unit.ab] + ([unit.ba] if unit.ba is not None else [])
        scored = orders if strict else [v for v in orders if v]
        if scored:
            credits.append(sum(v == human for v in scored) / len(scored))
    return _mean_with_interval(credits, seed)


def _agreement(units: Sequence[PairUnit], *, strict: bool, keep) -> ProportionEstimate:
    hits = n = 0
    for unit in units:
        human = human_majority(unit.votes)
        verdict = pair_verdict(unit.ab, unit.ba)
        if not human or (verdict == "" and not strict) or not keep(human, verdict):
            continue
        n += 1
        hits += verdict == human
    return proportion(hits, n)


def agreement_with_ties(units: Sequence[PairUnit], *, strict: bool = False) -> ProportionEstimate:
    """MT-Bench "w/ tie": the pair verdict (split orders = tie) equals the human label, three classes; n = pairs
    with a human label (and, unless strict, a parsed verdict)."""
    return _agreement(units, strict=strict, keep=lambda human, verdict: True)


def agreement_on_decisive_humans(units: Sequence[PairUnit], *, strict: bool = False) -> ProportionEstimate:
    """Accuracy over pairs with a decisive human label; a judge tie is a miss (Lee et al. 2023's alignment)."""
    return _agreement(units, strict=strict, keep=lambda human, verdict: human in DECISIVE)


def agreement_without_ties(units: Sequence[PairUnit], *, strict: bool = False) -> ProportionEstimate:
    """MT-Bench "w/o tie": over pairs where humans and the judge are both decisive (strict: failures stay in
    the denominator as misses)."""
    return _agreement(
        units, strict=strict, keep=lambda human, verdict: human in DECISIVE and (verdict in DECISIVE or verdict == "")
    )


def leave_one_out(units: Sequence[PairUnit], *, judge: bool = True, strict: bool = False) -> ProportionEstimate:
    """AlpacaEval's leave-one-out agreement with the mode of the other annotators.

    For every pair with at least two votes and every annotator i, the mode of the other votes (when unique)
    is the reference; the compared label is the judge's pair verdict (``judge=True``) or annotator i's own
    vote (``judge=False``: the human–human ceiling). n counts (pair, held-out annotator) units.
    """
    hits = n = 0
    for unit in units:
        if len(unit.votes) < 2:
            continue
        verdict = pair_verdict(unit.ab, unit.ba)
        if judge and verdict == "" and not strict:
            continue
        for i, vote in enumerate(unit.votes):
            others = Counter(unit.votes[:i] + unit.votes[i + 1:]).most_common()
            if len(others) > 1 and others[0][1] == others[1][1]:
                continue  # no unique mode among the others
            compared = verdict if judge else vote
            n += 1
            hits += compared == others[0][0]
    return proportion(hits, n)


def position_consistency(units: Sequence[PairUnit], *, strict: bool = False) -> ProportionEstimate:
    """Share of pairs judged in both orders whose two verdicts are the same (a tie in both counts as
    consistent; one tie and one decisive verdict does not). Strict: a failed order is inconsistent."""
    both = [u for u in units if u.ba is not None and (strict or not u.failed)]
    return proportion(sum(u.ab == u.ba and u.ab != "" for u in both), len(both))


#: The conventions of :func:`convention_table`, in display order: key -> (name, definition, source).
CONVENTIONS = {
    "per_order": ("Per-order accuracy", "each order scored against the human label, averaged (split = half credit)",
                  "Zheng et al. 2023 (MT-Bench); Wang et al. 2023"),
    "with_ties": ("Agreement, ties as a class", "pair verdict (split orders = tie) equals the human label",
                  "Zheng et al. 2023, MT-Bench 'w/ tie'"),
    "decisive_humans": ("Accuracy on decisive human labels", "judge tie counts as a miss",
                        "Lee et al. 2023 (AI labeler alignment); PandaLM non-tie accuracy"),
    "without_ties": ("Agreement without ties", "pairs where humans and the judge are both decisive",
                     "Zheng et al. 2023, MT-Bench 'w/o tie'"),
    "leave_one_out": ("Leave-one-out agreement with the annotators' mode",
                      "judge vs the mode of the other annotators, each held out in turn",
                      "Dubois et al. 2023 (AlpacaEval)"),
    "position_consistency": ("Position consistency", "both orders give the same verdict (tie in both counts)",
                             "Zheng et al. 2023; Wang et al. 2023"),
}

_FIGURES = {
    "per_order": per_order_accuracy,
    "with_ties": agreement_with_ties,
    "decisive_humans": agreement_on_decisive_humans,
    "without_ties": agreement_without_ties,
    "leave_one_out": leave_one_out,
    "position_consistency": position_consistency,
}


def convention_table(units: Sequence[PairUnit], *, seed: int = 0) -> dict:
    """Every convention for the judge (parsed and strict) and for the two baselines, plus the human–human
    ceiling and the failure count, as JSON-ready dicts.

    Returns:
        ``{"n_pairs", "n_failed", "n_labelled", "rows": [{"key", "name", "definition", "source", "judge",
        "judge_strict", "longer", "first_shown"}], "human_ceiling": ProportionEstimate dict}``.
    """
    labelled = [u for u in units if human_majority(u.votes)]
    longer = [longer_wins(u) for u in labelled]
    first = [first_shown_wins(u) for u in labelled]
    rows = []
    for key, (name, definition, source) in CONVENTIONS.items():
        fn = _FIGURES[key]
        kwargs = {"seed": seed} if key == "per_order" else {}
        rows.append({
            "key": key, "name": name, "definition": definition, "source": source,
            "judge": fn(labelled, **kwargs).as_dict(),
            "judge_strict": fn(labelled, strict=True, **kwargs).as_dict(),
            "longer": fn(longer, **kwargs).as_dict(),
            "first_shown": fn(first, **kwargs).as_dict(),
        })
    return {
        "n_pairs": len(units),
        "n_failed": sum(u.failed for u in units),
        "n_labelled": len(labelled),
        "rows": rows,
        "human_ceiling": leave_one_out(labelled, judge=False).as_dict(),
    }

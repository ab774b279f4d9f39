"""The drift guard's arithmetic: how far a judge's verdicts on an anchor set agree with the verdicts kept for it.

A judge behind an endpoint can change without notice (a new model behind the same name, another quantisation,
a changed system prompt). An anchor set is a set of pairs with verdicts kept from an earlier run: its AI
judgments or its human labels. Re-judging a seeded sample of it and comparing the verdicts tells whether the
judge still decides as it did. Plain Python, no Django; :mod:`runs.drift` loads the anchor and stores the check.

Convention: agreement is counted over the pairs where both verdicts are decisive (A or B), MT-Bench's
"without ties" setting. Pairs either side calls a tie, and pairs whose re-judging failed, are left out and
counted, so the message can say so. The interval is Wilson's (:func:`training.agreement.proportion`).
"""
from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from training.agreement import ProportionEstimate, proportion
from training.judge_conventions import DECISIVE, human_majority
from training.labeling import unit_draw


@dataclass(frozen=True)
class AnchorAgreement:
    """The re-judged anchor sample against its anchor verdicts.

    Attributes:
        estimate: share of the compared pairs on which the verdicts agree, with its Wilson interval
            (``estimate.n`` pairs compared; value None when none).
        agree: pairs on which they agree.
        ties: pairs left out because the anchor or the judge called them a tie.
        failed: pairs left out because re-judging them failed (no verdict).
        disagreeing: keys of the compared pairs on which they disagree, in the order given.
    """

    estimate: ProportionEstimate
    agree: int
    ties: int
    failed: int
    disagreeing: list = field(default_factory=list)

    @property
    def n(self) -> int:
        """Pairs compared (both verdicts decisive)."""
        return self.estimate.n

    def passes(self, min_agreement: float) -> bool:
        """Whether the agreement reaches ``min_agreement`` (point estimate). No compared pair does not pass:
        a judge that now answers every anchor pair with a tie or a failure has changed too."""
        return self.estimate.value is not None and self.estimate.value >= min_agreement


def compare_verdicts(anchor: Mapping[Hashable, str], now: Mapping[Hashable, str]) -> AnchorAgreement:
    """Compare the judge's verdicts ``now`` with the ``anchor`` verdicts, pair by pair.

    Args:
        anchor: key -> ``"A"``, ``"B"`` or ``"tie"``: the verdicts kept for the anchor pairs that were re-judged.
        now: key -> the judge's verdict now (``""`` or a missing key: re-judging failed).

    Returns:
        :class:`AnchorAgreement` over the pairs both call A or B; ties either side and failures are counted
        and left out.
    """
    agree = ties = failed = 0
    disagreeing = []
    for key, kept in anchor.items():
        verdict = now.get(key, "")
        if not verdict:
            failed += 1
        elif kept not in DECISIVE or verdict not in DECISIVE:
            ties += 1
        elif verdict == kept:
            agree += 1
        else:
            disagreeing.append(key)
    return AnchorAgreement(proportion(agree, agree + len(disagreeing)), agree, ties, failed, disagreeing)


def sample_anchor(keys: Iterable[Hashable], k: int, seed: int) -> list:
    """``k`` of ``keys`` (all of them when fewer), drawn with ``seed``: each key's draw is its own
    (:func:`training.labeling.unit_draw`), so adding pairs to an anchor set keeps those already drawn unless
    a new one draws lower. Returned in the order of their draws."""
    return sorted(keys, key=lambda key: (unit_draw(seed, f"anchor:{key}"), str(key)))[: max(0, k)]


def majority_verdict(verdicts: Sequence[str]) -> str:
    """One verdict from several (a pair judged under several principles): the plurality of the A/B/tie
    verdicts, a shared top count being a tie (:func:`training.judge_conventions.human_majority`, the rule
    for several human labels); ``""`` when none succeeded."""
    return human_majority(list(verdicts))

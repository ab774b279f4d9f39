"""Statistics of the evaluate stage: the tuned policy's win rate against the reference policy with a 95%
confidence interval, and reward-model score summaries.

Win rate counts a tie as half a win (the convention of AlpacaEval and Lee et al. 2023). The interval is
Wilson's score interval (``statsmodels.stats.proportion.proportion_confint``) on the effective number of
wins; with ties it is approximate (a tie is treated as half a success).
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

TUNED, REFERENCE, TIE = "A", "B", "tie"


@dataclass(frozen=True)
class WinRate:
    """The tuned policy's win rate over the reference.

    Attributes:
        n: decided comparisons (failed judgments are excluded).
        wins, losses, ties: counts from the tuned policy's side.
        rate: ``(wins + ties / 2) / n`` (NaN when ``n`` is 0).
        low, high: 95% Wilson interval of ``rate`` (NaN when ``n`` is 0).
    """

    n: int
    wins: int
    losses: int
    ties: int
    rate: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def win_rate(verdicts: Iterable[str], alpha: float = 0.05, tuned: str = TUNED) -> WinRate:
    """Win rate of the response labelled ``tuned`` ("A" by default) over the other.

    Args:
        verdicts: one verdict per comparison: ``"A"``, ``"B"``, ``"tie"``; anything else (``""`` for a
            failed judgment) is skipped.
        alpha: 1 - confidence level of the interval.

    Returns:
        :class:`WinRate`.
    """
    from statsmodels.stats.proportion import proportion_confint

    other = REFERENCE if tuned == TUNED else TUNED
    wins = losses = ties = 0
    for verdict in verdicts:
        if verdict == tuned:
            wins += 1
        elif verdict == other:
            losses += 1
        elif verdict == TIE:
            ties += 1
    n = wins + losses + ties
    if n == 0:
        nan = float("nan")
        return WinRate(0, 0, 0, 0, nan, nan, nan)
    successes = wins + ties / 2
    low, high = proportion_confint(successes, n, alpha=alpha, method="wilson")
    return WinRate(n, wins, losses, ties, successes / n, float(low), float(high))


@dataclass(frozen=True)
class ScoreSummary:
    """Mean, standard deviation and count of reward-model scores (NaN mean/std when empty)."""

    n: int
    mean: float
    std: float


def summarize_scores(scores: Sequence[float]) -> ScoreSummary:
    """Mean and sample standard deviation (0 for a single score) of finite ``scores``."""
    values = [float(s) for s in scores if s is not None and math.isfinite(s)]
    if not values:
        return ScoreSummary(0, float("nan"), float("nan"))
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return ScoreSummary(len(values), statistics.fmean(values), std)


def paired_score_difference(tuned: Sequence[float], reference: Sequence[float]) -> dict[str, float]:
    """Mean paired difference (tuned - reference) of reward scores on the same prompts with a 95% t
    interval, and the share of prompts where the tuned response scores higher.

    Raises:
        ValueError: the sequences differ in length.
    """
    from scipy import stats

    if len(tuned) != len(reference):
        raise ValueError(f"{len(tuned)} tuned scores but {len(reference)} reference scores")
    diffs = [t - r for t, r in zip(tuned, reference, strict=True)]
    if not diffs:
        nan = float("nan")
        return {"mean_diff": nan, "low": nan, "high": nan, "share_higher": nan}
    mean = statistics.fmean(diffs)
    if len(diffs) > 1 and statistics.stdev(diffs) > 0:
        sem = statistics.stdev(diffs) / math.sqrt(len(diffs))
        half = float(stats.t.ppf(0.975, len(diffs) - 1)) * sem
    else:
        half = 0.0
    return {
        "mean_diff": mean,
        "low": mean - half,
        "high": mean + half,
        "share_higher": sum(d > 0 for d in diffs) / len(diffs),
    }

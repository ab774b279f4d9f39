"""Win rate, its Wilson interval and reward-score summaries on fixed numbers."""
import math

import pytest

from training.evaluation import paired_score_difference, summarize_scores, win_rate
from training.labeling import verdict_for


def wilson(successes: float, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson's score interval written out (Wilson 1927), to check the library call against."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_win_rate_counts_ties_as_half_and_skips_failures():
    verdicts = ["A"] * 7 + ["B"] * 2 + ["tie"] + ["", ""]
    rate = win_rate(verdicts)
    assert (rate.n, rate.wins, rate.losses, rate.ties) == (10, 7, 2, 1)
    assert rate.rate == pytest.approx(0.75)
    assert rate.low == pytest.approx(0.44218, abs=1e-4)
    assert rate.high == pytest.approx(0.91905, abs=1e-4)
    assert (rate.low, rate.high) == pytest.approx(wilson(7.5, 10))


def test_win_rate_interval_narrows_with_more_comparisons():
    small = win_rate(["A"] * 3 + ["B"])
    large = win_rate(["A"] * 30 + ["B"] * 10)
    assert small.rate == large.rate == 0.75
    assert (large.high - large.low) < (small.high - small.low)
    assert (large.low, large.high) == pytest.approx(wilson(30, 40))


def test_win_rate_from_the_reference_side_and_when_empty():
    rate = win_rate(["A", "B", "B", "B"], tuned="B")
    assert rate.rate == pytest.approx(0.75)
    empty = win_rate(["", "failed"])
    assert empty.n == 0 and math.isnan(empty.rate) and math.isnan(empty.low)


@pytest.mark.parametrize(
    ("p_a", "expected"), [(0.9, "A"), (0.1, "B"), (0.52, "tie"), (0.45, "tie"), (0.44, "B"), (None, "")]
)
def test_verdict_from_p(p_a, expected):
    assert verdict_for(p_a, tie_margin=0.05) == expected


def test_summaries_and_paired_difference():
    summary = summarize_scores([1.0, 2.0, 3.0, float("nan")])
    assert (summary.n, summary.mean, summary.std) == (3, 2.0, 1.0)
    diff = paired_score_difference([2.0, 3.0, 4.0, 5.0], [1.0, 1.0, 1.0, 1.0])
    assert diff["mean_diff"] == pytest.approx(2.5)
    # t(0.975, 3) = 3.182446, sd of [1, 2, 3, 4] = 1.290994, sem = 0.645497
    assert diff["high"] - diff["mean_diff"] == pytest.approx(3.182446 * 0.645497, rel=1e-5)
    assert diff["share_higher"] == 1.0
    with pytest.raises(ValueError, match="3 tuned scores but 2"):
        paired_score_difference([1, 2, 3], [1, 2])

"""Prediction-powered inference (coverage by simulation, gain over human-only), the length-controlled win
rate (a length-biased stub judge returns to the planted win rate) and the length-controlled agreement (a judge
that sides with the longer answer where length-biased humans do returns to its planted agreement)."""
from __future__ import annotations

import numpy as np
import pytest

from training.agreement import alignment
from training.human_calibrated import length_controlled_agreement, length_controlled_win_rate, ppi_mean


def simulate(rng, theta=0.62, n_labelled=80, n_unlabelled=2000, accuracy=0.85):
    """Human labels Y ~ Bernoulli(theta); the AI agrees with the human with probability ``accuracy``."""
    y_all = (rng.random(n_labelled + n_unlabelled) < theta).astype(float)
    agree = rng.random(y_all.size) < accuracy
    f_all = np.where(agree, y_all, 1 - y_all)
    return y_all[:n_labelled], f_all[:n_labelled], f_all[n_labelled:]


@pytest.mark.parametrize("bias", [0.0, 0.3])
def test_ppi_interval_covers_the_truth_about_95_percent_of_the_time(bias):
    """Over 300 draws with known truth the 95% interval covers it 91-99% of the time, also when the judge is
    biased (``bias``: the share of its predictions turned into "1" whatever the human says), where the plain AI
    figure is about 0.71 against a truth of 0.62."""
    rng = np.random.default_rng(7)
    theta, hits, reps = 0.62, 0, 300
    for _ in range(reps):
        y, f, f_u = simulate(rng, theta)
        f, f_u = (np.where(rng.random(v.size) < bias, 1.0, v) for v in (f, f_u))
        est = ppi_mean(y, f, f_u)
        hits += est.low <= theta <= est.high
    assert 0.91 <= hits / reps <= 0.99
    if bias:
        assert est.ai_value - theta > 0.06


def test_ppi_corrects_a_biased_judge_and_beats_human_only():
    rng = np.random.default_rng(3)
    y, f, f_u = simulate(rng, theta=0.5, n_labelled=150, n_unlabelled=5000, accuracy=0.9)
    f_u = f_u.copy()
    f[:] = np.where(rng.random(f.size) < 0.1, 1.0, f)  # the judge says "wins" too often, labelled or not
    f_u[:] = np.where(rng.random(f_u.size) < 0.1, 1.0, f_u)
    est = ppi_mean(y, f, f_u)
    assert est.ai_value > 0.53  # the plain AI figure is biased upwards
    assert est.low <= 0.5 <= est.high and abs(est.value - 0.5) < abs(est.ai_value - 0.5)
    assert (est.high - est.low) < (est.human_high - est.human_low)
    assert est.effective_n > est.n_labelled


def test_ppi_needs_two_labels():
    est = ppi_mean([1.0], [1.0], [0.0, 1.0])
    assert est.value is None and est.human_value is None and est.n_labelled == 1


def test_ppi_with_every_item_labelled_is_the_human_estimate():
    """Regression: with every evaluation pair audited PPI gave nothing and the dashboard asked to "audit 2+
    evaluation pairs"; the humans' figure is then the answer."""
    est = ppi_mean([1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0], [])
    assert (est.value, est.low, est.high) == (est.human_value, est.human_low, est.human_high)
    assert est.value == 0.75 and est.ai_value == 0.75 and est.effective_n == 4 and est.n_unlabelled == 0


@pytest.mark.parametrize("planted", [0.5, 0.3, 0.7])
def test_length_controlled_win_rate_returns_to_the_planted_value(planted):
    """At equal length the stub judge prefers the tuned policy with probability ``planted``; its log-odds rise
    by 2 x tanh(length difference / its standard deviation), and the tuned policy writes 120 characters more on
    average."""
    rng = np.random.default_rng(11)
    n = 1500
    diff = rng.normal(loc=120, scale=100, size=n)  # the tuned policy writes longer answers
    length_ref = rng.integers(200, 400, size=n)
    length_tuned = np.maximum(1, length_ref + diff).astype(int)
    x = np.tanh((length_tuned - length_ref) / np.std(length_tuned - length_ref))
    p_win = 1 / (1 + np.exp(-(np.log(planted / (1 - planted)) + 2.0 * x)))  # a length-biased stub judge
    verdicts = np.where(rng.random(n) < p_win, "A", "B")
    result = length_controlled_win_rate(list(verdicts), list(length_tuned), list(length_ref), resamples=200)
    assert result.raw > planted + 0.15  # the raw win rate rewards length
    assert result.low <= planted <= result.high and abs(result.value - planted) < 0.05
    assert result.length_coefficient == pytest.approx(2.0, abs=0.4)


def test_length_control_without_length_bias_matches_the_raw_rate_and_counts_ties_half():
    verdicts = ["A", "B", "tie", "A"] * 50
    lengths = [100] * 200
    result = length_controlled_win_rate(verdicts, lengths, lengths, resamples=50)
    assert result.raw == pytest.approx(0.625) and result.value == pytest.approx(0.625, abs=1e-6)
    assert length_controlled_win_rate([], [], []).n == 0


def test_length_controlled_win_rate_survives_separable_resamples():
    """Some bootstrap resamples of these ten pairs separate perfectly: their fitted intercept runs off to
    hundreds, and the logistic function must not overflow (math.exp raised OverflowError)."""
    from training.human_calibrated import length_controlled_win_rate

    verdicts = ["B" if i % 4 == 0 else "A" for i in range(10)]
    tuned = [26, 39, 52, 26, 39, 52, 26, 39, 52, 26]
    result = length_controlled_win_rate(verdicts, tuned, [3] * 10, seed=13)  # seeds 12 and 13 overflowed
    assert 0.0 <= result.low <= result.value <= result.high <= 1.0 and result.n == 10


def test_ppi_with_predictions_all_alike_is_the_human_estimate_not_nan():
    """Regression: a judge that called every evaluation pair the same way made PPI++'s power tuning divide 0 by
    0, and the dashboard showed "nan%". Such predictions carry nothing: PPI falls back to the humans alone."""
    est = ppi_mean([1.0, 0.0, 1.0, 1.0], [1.0] * 4, [1.0] * 6)
    assert est.value == pytest.approx(0.75) and est.value == est.human_value
    assert (est.low, est.high) == pytest.approx((est.human_low, est.human_high))
    assert est.effective_n == pytest.approx(4) and est.ai_value == 1.0


def test_ppi_intervals_stay_within_the_range_of_a_share():
    """Regression: on few labels the normal-approximation intervals ran past 100% ("[13.3%, 120.0%]")."""
    est = ppi_mean([1.0, 0.0, 1.0], [1.0, 0.0, 1.0], [1.0, 0.0])
    raw = ppi_mean([1.0, 0.0, 1.0], [1.0, 0.0, 1.0], [1.0, 0.0], bounds=None)
    assert raw.high > 1 and raw.human_high > 1  # what ppi-python gives
    assert est.high == 1.0 and est.human_high == 1.0 and est.low == pytest.approx(raw.low)
    assert est.effective_n == pytest.approx(raw.effective_n)  # read from the unclipped widths
    assert ppi_mean([1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0]).value == 1.0  # the point estimate too


def length_biased_audit(rng, agreement_at_equal_length: float, judge_length_weight: float, n: int = 2000):
    """An audit where humans prefer the longer response (log-odds 2.5 x tanh(length difference / 120)) and a
    stub judge agrees with the human with log-odds ``logit(agreement_at_equal_length) + judge_length_weight x
    tanh(delta / sd)``, ``delta`` the human-preferred response's length minus the other's: a judge that sides
    with the longer answer where the humans do. Returns ``(ai, human, length_a, length_b)``."""
    length_a, length_b = rng.integers(50, 450, size=n), rng.integers(50, 450, size=n)
    human_picks_a = rng.random(n) < 1 / (1 + np.exp(-2.5 * np.tanh((length_a - length_b) / 120)))
    human = np.where(human_picks_a, "A", "B")
    delta = np.where(human_picks_a, length_a - length_b, length_b - length_a)
    planted = np.log(agreement_at_equal_length / (1 - agreement_at_equal_length))
    agree = rng.random(n) < 1 / (1 + np.exp(-(planted + judge_length_weight * np.tanh(delta / delta.std()))))
    ai = np.where(agree, human, np.where(human_picks_a, "B", "A"))
    return list(ai), list(human), list(length_a), list(length_b)


@pytest.mark.parametrize(("planted", "inflation"), [(0.6, 0.12), (0.75, 0.07), (0.9, 0.02)])
def test_length_controlled_agreement_returns_to_the_planted_agreement(planted, inflation):
    """The plain alignment is 75%, 84% and 93% for a judge that agrees 60%, 75% and 90% of the time on pairs of
    equal length; the length-controlled agreement is back within 3 points of the planted figure."""
    rng = np.random.default_rng(5)
    ai, human, length_a, length_b = length_biased_audit(rng, planted, judge_length_weight=2.0)
    result = length_controlled_agreement(ai, human, length_a, length_b, resamples=200)
    plain = alignment(ai, human)
    assert result.raw == pytest.approx(plain.value) and result.n == plain.n == 2000
    assert result.raw > planted + inflation  # siding with the longer answer, as the humans do, inflates agreement
    assert result.low <= planted <= result.high and abs(result.value - planted) < 0.03
    assert result.length_coefficient == pytest.approx(2.0, abs=0.4)


def test_length_controlled_agreement_of_a_length_blind_judge_is_its_plain_agreement():
    """The humans still prefer longer answers, but the judge's agreement does not depend on length: the two
    figures coincide (nothing to take out)."""
    rng = np.random.default_rng(9)
    ai, human, length_a, length_b = length_biased_audit(rng, 0.7, judge_length_weight=0.0)
    result = length_controlled_agreement(ai, human, length_a, length_b, resamples=200)
    assert abs(result.value - result.raw) < 0.01 and abs(result.value - 0.7) < 0.03
    assert abs(result.length_coefficient) < 0.3


def test_length_controlled_agreement_at_three_lengths_is_exact():
    """Human-preferred answer as long as the other on 20 labels (15 agree: 75%), 60 characters longer on 60
    (54 agree: 90%), 60 shorter on 20 (10 agree: 50%): the log-odds are linear in the length term, so the fit
    reads 75% exactly while the plain alignment says 79%. An AI tie counts as disagreeing; human ties and skips
    are not units."""
    ai, human, length_a, length_b = [], [], [], []
    for delta, labels, agreeing in [(0, 20, 15), (60, 60, 54), (-60, 20, 10)]:
        for k in range(labels):
            picks_a = k % 2 == 0
            human.append("A" if picks_a else "B")
            ai.append(human[-1] if k < agreeing else ("tie" if k % 3 == 0 else ("B" if picks_a else "A")))
            longer, shorter = 100 + max(delta, 0), 100 + max(-delta, 0)
            length_a.append(longer if picks_a else shorter)
            length_b.append(shorter if picks_a else longer)
    ai += ["A", "B"]
    human += ["tie", "skip"]
    length_a += [500, 10]
    length_b += [10, 500]
    result = length_controlled_agreement(ai, human, length_a, length_b, resamples=100)
    assert result.n == 100 and result.raw == pytest.approx(0.79)
    assert result.value == pytest.approx(0.75, abs=1e-6) and result.low < 0.75 < result.high
    assert length_controlled_agreement([], [], [], []).value is None
    with pytest.raises(ValueError, match="differ in length"):
        length_controlled_agreement(["A"], ["A"], [1], [])

"""training.agreement against values worked out by hand on small fixed tables."""
from __future__ import annotations

import math

import pytest

from training import agreement

# rows = human, columns = AI:     AI A  AI B  AI tie
#                     human A      2     1     0
#                     human B      1     2     0
#                     human tie    1     0     1
AI = ["A", "B", "A", "tie", "B", "A", "A", "B"]
HUMAN = ["A", "B", "B", "tie", "B", "A", "tie", "A"]


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson (1927) score interval, written out."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_confusion_matrix_rows_are_human_columns_ai():
    assert agreement.confusion(AI, HUMAN) == [[2, 1, 0], [1, 2, 0], [1, 0, 1]]
    assert agreement.confusion([], []) == [[0, 0, 0]] * 3


def test_alignment_is_share_of_decisive_human_labels_the_ai_matches():
    estimate = agreement.alignment(AI, HUMAN)
    # decisive human labels at 0,1,2,4,5,7; AI matches at 0,1,4,5
    assert (estimate.value, estimate.n) == (4 / 6, 6)
    low, high = wilson(4, 6)
    assert estimate.low == pytest.approx(low, abs=1e-12) and estimate.high == pytest.approx(high, abs=1e-12)
    assert (round(estimate.low, 4), round(estimate.high, 4)) == (0.3000, 0.9032)
    assert estimate.method == "wilson"


def test_alignment_counts_an_ai_tie_as_disagreement_and_ignores_human_ties():
    estimate = agreement.alignment(["tie", "A", "B"], ["A", "A", "tie"])
    assert (estimate.value, estimate.n) == (0.5, 2)


def test_wilson_interval_for_seven_of_ten():
    estimate = agreement.proportion(7, 10)
    assert (round(estimate.low, 4), round(estimate.high, 4)) == (0.3968, 0.8922)
    assert agreement.proportion(0, 0).value is None


def test_cohen_kappa_by_hand():
    # p_o = 5/8; human marginals 3,3,2 and AI marginals 4,3,1 give p_e = (12 + 9 + 2) / 64 = 23/64
    # kappa = (5/8 - 23/64) / (1 - 23/64) = 17/41
    estimate = agreement.cohen_kappa(AI, HUMAN)
    assert estimate.value == pytest.approx(17 / 41, abs=1e-12)
    assert estimate.n == 8 and estimate.method == "bootstrap"
    assert estimate.low <= estimate.value <= estimate.high
    assert -1 <= estimate.low < 0.2 and 0.6 < estimate.high <= 1


def test_kappa_bootstrap_is_reproducible_and_narrows_with_more_data():
    first, again = agreement.cohen_kappa(AI, HUMAN, seed=3), agreement.cohen_kappa(AI, HUMAN, seed=3)
    assert first == again
    big = agreement.cohen_kappa(AI * 25, HUMAN * 25, seed=3)
    assert big.value == pytest.approx(17 / 41)
    assert (big.high - big.low) < (first.high - first.low) / 3


def test_kappa_undefined_without_variation():
    assert agreement.cohen_kappa(["A", "A", "A"], ["A", "A", "A"]).value is None
    assert agreement.cohen_kappa(["A"], ["A"]).value is None


UNITS = [["A", "A", "B"], ["B", "B", "B"], ["tie", "A", None], ["A", "A", "A"], ["B", "A", "B"], ["A", None, None]]


def test_krippendorff_alpha_nominal_by_hand():
    # The last unit has one label and does not count. Pairable values n = 14 (A 7, B 6, tie 1).
    # Disagreeing coincidences per unit, sum_{c!=k} n_uc n_uk / (m_u - 1): 4/2 + 0 + 2/1 + 0 + 4/2 = 6.
    # alpha = 1 - (n - 1) * 6 / (n^2 - sum n_c^2) = 1 - 13 * 6 / (196 - 86) = 32/110
    estimate = agreement.krippendorff_alpha(UNITS)
    assert estimate.value == pytest.approx(32 / 110, abs=1e-12)
    assert estimate.n == 5
    assert estimate.low <= estimate.value <= estimate.high


def test_alpha_bootstrap_statistic_equals_the_library_on_the_full_sample():
    import numpy as np

    counts = agreement._reliability_units(UNITS)
    assert agreement._alpha_from_unit_counts(counts, np.ones((1, len(counts))))[0] == pytest.approx(32 / 110)


def test_alpha_perfect_agreement_and_undefined_cases():
    assert agreement.krippendorff_alpha([["A", "A"], ["B", "B"], ["tie", "tie"]]).value == pytest.approx(1.0)
    assert agreement.krippendorff_alpha([["A"], ["B"]]).value is None  # no unit with 2 labels
    assert agreement.krippendorff_alpha([["A", "A"], ["A", "A"]]).value is None  # one value throughout


def test_expected_calibration_error_by_hand():
    # five bins of width 0.2; the tie label is dropped.
    # bin [0.2,0.4): p 0.3, humans A share 0 -> |0.3 - 0| = 0.3 over 1 label
    # bin [0.4,0.6): p 0.55, share 0 -> 0.55 over 1 label
    # bin [0.8,1.0]: p 0.9, 0.8, 1.0 (mean 0.9), share 1 -> 0.1 over 3 labels
    # ECE = (0.3 + 0.55 + 0.3) / 5 = 0.23
    result = agreement.calibration([0.9, 0.8, 0.3, 0.55, 0.1, 1.0], ["A", "A", "B", "B", "tie", "A"], n_bins=5)
    assert result.ece.value == pytest.approx(0.23)
    assert result.ece.n == 5
    assert [(b["low"], b["n"]) for b in result.bins] == [(0.2, 1), (0.4, 1), (0.8, 3)]
    assert result.bins[2]["mean_p"] == pytest.approx(0.9) and result.bins[2]["share_a"] == 1.0
    assert result.ece.low <= 0.23 <= result.ece.high


def test_calibration_rejects_probabilities_outside_the_unit_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        agreement.calibration([1.2], ["A"])


def test_length_preference_and_position_consistency():
    lengths = [(10, 5), (3, 9), (4, 4), (7, 2), (1, 8)]
    # A longer & A chosen: yes; B longer & A chosen: no; equal: skipped; tie: skipped; B longer & B: yes
    estimate = agreement.length_preference(["A", "A", "A", "tie", "B"], lengths)
    assert (estimate.value, estimate.n) == (2 / 3, 3)
    consistency = agreement.position_consistency([True, False, None, True, True])
    assert (consistency.value, consistency.n) == (0.75, 4)


def test_inputs_of_different_length_are_an_error():
    with pytest.raises(ValueError, match="differ in length: 2 vs 1"):
        agreement.alignment(["A", "B"], ["A"])


def test_wilson_bounds_stay_in_the_unit_interval_and_contain_the_estimate():
    for k in (0, 10):
        estimate = agreement.proportion(k, 10)
        assert 0.0 <= estimate.low <= estimate.value <= estimate.high <= 1.0
    assert agreement.proportion(0, 10).low == 0.0 and agreement.proportion(10, 10).high == 1.0


def test_bootstrap_in_blocks_gives_the_same_kind_of_interval(monkeypatch):
    whole = agreement.cohen_kappa(AI * 10, HUMAN * 10, seed=5)
    monkeypatch.setattr(agreement, "BLOCK_CELLS", 200)  # 80 units: blocks of 2 resamples
    blocked = agreement.cohen_kappa(AI * 10, HUMAN * 10, seed=5)
    assert blocked.value == whole.value
    assert blocked.low == pytest.approx(whole.low, abs=0.08) and blocked.high == pytest.approx(whole.high, abs=0.08)
    assert blocked == agreement.cohen_kappa(AI * 10, HUMAN * 10, seed=5)  # still reproducible


def test_pairwise_agreement_per_two_raters_on_their_shared_units():
    ratings = {
        "ann": {1: "A", 2: "B", 3: "A", 4: "tie"},
        "bob": {1: "A", 2: "B", 3: "B"},
        "cy": {5: "A"},
    }
    (pair,) = agreement.pairwise_agreement(ratings)  # cy shares no unit with anyone
    assert (pair.first, pair.second, pair.agree) == ("ann", "bob", 2)
    assert pair.agreement.n == 3 and pair.agreement.value == pytest.approx(2 / 3)
    assert pair.agreement.method == "wilson" and pair.agreement.low < 2 / 3 < pair.agreement.high
    from sklearn.metrics import cohen_kappa_score

    assert pair.kappa.value == pytest.approx(cohen_kappa_score(["A", "B", "A"], ["A", "B", "B"]))
    with pytest.raises(ValueError, match="rater 'bob'.*skip"):
        agreement.pairwise_agreement({"bob": {1: "skip"}})

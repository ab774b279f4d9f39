"""training.panel: the panel's verdict from its judges' votes (majority, mean), failures, ids, and agreement
among the judges (Krippendorff's alpha, Fleiss' kappa) against values worked out by hand."""
from __future__ import annotations

import numpy as np
import pytest

from training.config import RunConfig
from training.judges import JudgedPair
from training.panel import (
    Vote,
    aggregate,
    fleiss_kappa,
    is_panel_id,
    judges_agree,
    judges_agreement,
    panel_judge_id,
    verdict_judge_id,
    vote_share,
)


def _pair(p_a_ab, p_a_ba, verdict=None, *, cost=0.0, error="", rationale=""):
    p_a = None if p_a_ab is None else (p_a_ab + p_a_ba) / 2 if p_a_ba is not None else p_a_ab
    if verdict is None:
        verdict = "" if p_a is None else "tie" if abs(p_a - 0.5) <= 0.05 else "A" if p_a > 0.5 else "B"
    consistent = None if p_a_ba is None or p_a_ab is None else (p_a_ab > 0.5) == (p_a_ba > 0.5)
    return JudgedPair(key=1, p_a_ab=p_a_ab, p_a_ba=p_a_ba, p_a=p_a, verdict=verdict, position_consistent=consistent,
                      rationale=rationale, cost=cost, prompt_tokens=10, completion_tokens=2, attempts=2, error=error)


#: The planted panel: first-shown (A then B: P(A) 0.5, a tie), longer (A, sure), right (B, fairly sure).
FIRST, LONGER, RIGHT = _pair(1.0, 0.0), _pair(0.9, 0.9), _pair(0.2, 0.3)
VOTES = [Vote("first", FIRST), Vote("longer", LONGER), Vote("right", RIGHT)]


def test_the_majority_is_the_plurality_and_an_even_split_a_tie():
    verdict = aggregate(1, VOTES, method="majority", tie_margin=0.05)
    assert verdict.verdict == "tie"  # one tie, one A, one B: no plurality
    assert verdict.p_a == pytest.approx(0.5)  # (1 + 0.5) / 3
    two_a = aggregate(1, [VOTES[0], VOTES[1], Vote("also", _pair(0.8, 0.7))], method="majority", tie_margin=0.05)
    assert two_a.verdict == "A" and two_a.p_a == pytest.approx(2.5 / 3)
    # per order: the A/B verdicts are A, A, A (share 1); the B/A verdicts are B, A, A (share 2/3)
    assert (two_a.p_a_ab, two_a.p_a_ba, two_a.position_consistent) == (1.0, pytest.approx(2 / 3), True)


def test_the_mean_averages_the_probabilities_then_applies_the_tie_margin():
    verdict = aggregate(1, VOTES, method="mean", tie_margin=0.05)
    assert verdict.p_a == pytest.approx((0.5 + 0.9 + 0.25) / 3)  # 0.55: on the margin, a tie
    assert verdict.verdict == "tie"
    assert verdict.p_a_ab == pytest.approx((1.0 + 0.9 + 0.2) / 3) and verdict.p_a_ba == pytest.approx(0.4)
    assert verdict.position_consistent is False  # 0.7 with A first, 0.4 with B first
    assert aggregate(1, VOTES[1:2] + VOTES[:1], method="mean", tie_margin=0.05).verdict == "A"  # 0.7


def test_the_panel_verdict_keeps_each_vote_and_sums_the_cost():
    verdict = aggregate(7, [Vote("a", _pair(0.9, 0.9, cost=0.01, rationale="long")), Vote("b", _pair(0.8, 0.9))],
                        method="majority", tie_margin=0.05)
    assert verdict.key == 7 and verdict.verdict == "A"
    assert [v["judge"] for v in verdict.raw_outputs] == ["a", "b"]
    assert verdict.raw_outputs[0] == {"judge": "a", "verdict": "A", "p_a": 0.9, "p_a_ab": 0.9, "p_a_ba": 0.9,
                                      "position_consistent": True, "cost": 0.01}
    assert (verdict.cost, verdict.prompt_tokens, verdict.attempts) == (0.01, 20, 4)
    assert verdict.rationale.startswith("[a: A] long\n\n[b: A]")


def test_a_failed_vote_fails_the_panel_verdict():
    failed = _pair(None, None, error="no verdict line")
    verdict = aggregate(1, [VOTES[1], Vote("down", failed)], method="mean", tie_margin=0.05)
    assert (verdict.verdict, verdict.p_a, verdict.position_consistent) == ("", None, None)
    assert verdict.error == "1 of 2 judges failed: down: no verdict line"
    assert judges_agree([VOTES[1], Vote("down", failed)]) is None


def test_one_order_judges_count_in_the_orders_they_have():
    reward_model = _pair(0.9, None)  # an order-invariant judge asks once
    verdict = aggregate(1, [VOTES[1], Vote("rm", reward_model)], method="mean", tie_margin=0.05)
    assert (verdict.p_a_ab, verdict.p_a_ba, verdict.p_a) == (pytest.approx(0.9), pytest.approx(0.9), 0.9)


def test_judges_agree_and_vote_share():
    assert judges_agree(VOTES) is False
    assert judges_agree([VOTES[1], Vote("x", _pair(0.7, 0.8))]) is True
    assert vote_share(["A", "A", "tie", "B"]) == pytest.approx(2.5 / 4) and vote_share(["", "skip"]) is None


def test_unknown_method_and_no_votes_are_refused():
    with pytest.raises(ValueError, match="unknown method 'median'"):
        aggregate(1, VOTES, method="median", tie_margin=0.05)
    with pytest.raises(ValueError, match="at least one vote"):
        aggregate(1, [], method="mean", tie_margin=0.05)


#: The planted panel's verdicts (first, longer, right) on the four kinds of pair of tests/runs/panel_fixtures.py.
UNITS = [["tie", "A", "A"], ["tie", "A", "B"], ["tie", "B", "B"], ["tie", "B", "A"]]


def test_krippendorffs_alpha_and_fleiss_kappa_match_the_hand_computed_values():
    figures = judges_agreement(UNITS)
    # alpha: coincidences o(A,A) = o(B,B) = 1, o(tie,A) = o(tie,B) = 2 each way, o(A,B) = 1 each way; n = 12,
    # n_A = n_B = n_tie = 4; D_o = 10 / 12, D_e = (144 - 48) / (12 * 11); alpha = 1 - D_o / D_e = -7/48
    assert figures["alpha"].value == pytest.approx(-7 / 48) and figures["alpha"].n == 4
    # kappa: P_i = 1/3, 0, 1/3, 0 (mean 1/6); p_j = 1/3 each (P_e = 1/3); (1/6 - 1/3) / (1 - 1/3) = -1/4
    assert figures["kappa"].value == pytest.approx(-0.25) and figures["kappa"].n == 4
    assert figures["kappa"].low <= -0.25 <= figures["kappa"].high


def test_judges_who_always_agree_have_kappa_and_alpha_one():
    figures = judges_agreement([["A", "A", "A"], ["B", "B", "B"], ["tie", "tie", "tie"]] * 3)
    assert figures["alpha"].value == pytest.approx(1.0) and figures["kappa"].value == pytest.approx(1.0)


def test_fleiss_kappa_counts_only_units_every_judge_decided_and_its_bootstrap_matches_statsmodels():
    from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

    from training.panel import _fleiss_from_counts, _unit_counts

    units = UNITS + [["A", None, "A"]]
    assert fleiss_kappa(units).n == 4
    counts = _unit_counts(UNITS * 3 + [["A", "A", "A"]])
    weights = np.ones((1, len(counts)))
    assert _fleiss_from_counts(counts, weights)[0] == pytest.approx(statsmodels_fleiss(counts))
    assert fleiss_kappa([["A", "A"], ["A", "A"]]).value is None  # one verdict throughout: undefined
    assert fleiss_kappa([]).value is None


def test_the_panel_id_names_its_judges_and_a_lone_judge_keeps_its_own():
    base = {"backend": "openai", "base_url": "http://a/v1", "model": "big"}
    lone = RunConfig.from_dict({"judge": base}).judge
    assert verdict_judge_id(lone) == "openai:big@http://a/v1" and not is_panel_id(verdict_judge_id(lone))
    one = RunConfig.from_dict({"judge": {**base, "panel": [{"model": "small"}]}}).judge
    other = RunConfig.from_dict({"judge": {**base, "panel": [{"model": "tiny"}]}}).judge
    assert verdict_judge_id(one) == panel_judge_id(one) and panel_judge_id(one).startswith("panel:majority:2:")
    assert panel_judge_id(one) != panel_judge_id(other) and is_panel_id(panel_judge_id(one))

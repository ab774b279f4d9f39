"""Ties, end to end in training/: a constitution that allows them offers "Preferred: tie"; the answer parses
as a tie, is P = 0.5 in that order, and a tie in both orders is a consistent tie verdict."""
from __future__ import annotations

from training.judge_prompt import ANSWER_FORMAT, ANSWER_FORMAT_WITH_TIES, DEFAULT_TEMPLATE, render_both_orders
from training.judges.openai_judge import OpenAIJudge
from training.judges.verdict import parse_verdict
from training.labeling import combine_orders, orders_agree, verdict_for


def test_the_answer_format_offers_a_tie_only_when_allowed():
    plain = render_both_orders(DEFAULT_TEMPLATE, "Honest?", "Q", "a", "b")[0].text
    ties = render_both_orders(DEFAULT_TEMPLATE, "Honest?", "Q", "a", "b", allow_ties=True)[0].text
    assert ANSWER_FORMAT in plain and "tie" not in plain.split("Response B:")[1]
    assert ANSWER_FORMAT_WITH_TIES in ties and '"Preferred: tie"' in ties


def test_a_tie_answer_parses_and_counts_as_no_preference():
    verdict = parse_verdict("Both are equally honest.\nPreferred: **Tie**")
    assert (verdict.label, verdict.ambiguous, verdict.rationale) == ("tie", False, "Both are equally honest.")
    assert parse_verdict("Preferred: A or tie").ambiguous
    p_first, flag = OpenAIJudge._probability(verdict, reading=None)
    assert (p_first, flag) == (0.5, "")
    p_a_ab, p_a_ba, p_a = combine_orders(0.5, 0.5)
    assert verdict_for(p_a, 0.05) == "tie" and orders_agree(p_a_ab, p_a_ba) is True

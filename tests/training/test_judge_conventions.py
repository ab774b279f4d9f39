"""Judge-vs-human agreement in the published conventions (training.judge_conventions): synthetic edge cases
with hand-computed answers, and the PandaLM release's recorded gpt-3.5 verdicts against its figures."""
from __future__ import annotations

import json

import pytest

from training.judge_conventions import (
    PairUnit,
    agreement_on_decisive_humans,
    agreement_with_ties,
    agreement_without_ties,
    convention_table,
    first_shown_wins,
    human_majority,
    leave_one_out,
    longer_wins,
    pair_verdict,
    per_order_accuracy,
    position_consistency,
)


def unit(ab, ba, *votes, la=10, lb=5):
    return PairUnit(ab, ba, tuple(votes), la, lb)


def test_human_majority_and_pair_verdict_rules():
    assert human_majority(["A", "A", "B"]) == "A" and human_majority(["A", "B"]) == "tie"
    assert human_majority(["tie", "tie", "A"]) == "tie" and human_majority([]) == ""
    assert pair_verdict("A", "A") == "A" and pair_verdict("A", "B") == "tie" and pair_verdict("A", "tie") == "tie"
    assert pair_verdict("B", None) == "B" and pair_verdict("", "A") == "" and pair_verdict("A", "") == ""


def test_split_orders_earn_half_credit_per_order_and_count_as_a_tie_with_ties():
    units = [unit("A", "A", "A"), unit("A", "B", "A"), unit("B", "B", "A"), unit("A", "B", "tie")]
    assert per_order_accuracy(units).value == pytest.approx((1 + 0.5 + 0) / 3)
    assert per_order_accuracy(units).n == 3  # the human tie is not scored per order
    with_ties = agreement_with_ties(units)
    assert (with_ties.value, with_ties.n) == (0.5, 4)  # A=A, split=tie≠A, B≠A, split=tie=tie
    assert agreement_on_decisive_humans(units).value == pytest.approx(1 / 3)
    without = agreement_without_ties(units)
    assert (without.value, without.n) == (0.5, 2)  # only the decisive-vs-decisive pairs


def test_all_ties():
    units = [unit("tie", "tie", "tie"), unit("tie", "tie", "tie", "tie")]
    assert agreement_with_ties(units).value == 1.0
    assert agreement_without_ties(units).n == 0 and agreement_without_ties(units).value is None
    assert per_order_accuracy(units).n == 0
    assert position_consistency(units).value == 1.0  # a tie in both orders is consistent


def test_failures_are_left_out_or_counted_as_misses_never_dropped_silently():
    units = [unit("A", "A", "A"), unit("", "", "A"), unit("A", "", "A")]
    assert agreement_with_ties(units).as_dict()["n"] == 1
    strict = agreement_with_ties(units, strict=True)
    assert (strict.value, strict.n) == (pytest.approx(1 / 3), 3)
    assert per_order_accuracy(units).value == 1.0 and per_order_accuracy(units).n == 2  # one parsed order kept
    assert per_order_accuracy(units, strict=True).value == pytest.approx((1 + 0 + 0.5) / 3)
    assert position_consistency(units, strict=True).value == pytest.approx(1 / 3)
    assert convention_table(units)["n_failed"] == 2


def test_one_label_only_has_no_leave_one_out_figure():
    units = [unit("A", "A", "A"), unit("B", "B", "A")]
    assert leave_one_out(units).n == 0 and leave_one_out(units, judge=False).value is None


def test_leave_one_out_uses_the_unique_mode_of_the_others():
    # votes A,A,B: held-out A -> others {A,B} no unique mode; held-out B -> others A,A -> mode A
    units = [unit("A", "A", "A", "A", "B")]
    judge = leave_one_out(units)
    assert (judge.value, judge.n) == (1.0, 1)
    human = leave_one_out(units, judge=False)
    assert (human.value, human.n) == (0.0, 1)  # the held-out B disagrees with the others' mode A


def test_baselines():
    u = unit("A", "B", "A", la=3, lb=9)
    assert (longer_wins(u).ab, longer_wins(u).ba) == ("B", "B")
    assert (first_shown_wins(u).ab, first_shown_wins(u).ba) == ("A", "B")
    equal = unit("A", "A", "A", la=4, lb=4)
    assert longer_wins(equal).ab == "tie"
    table = convention_table([u, equal])
    first = next(r for r in table["rows"] if r["key"] == "per_order")["first_shown"]
    assert first["value"] == 0.5  # first-shown wins is right in exactly one order of every decisive pair


def load_pandalm(shared_data, judge_prefix):
    base = shared_data / "PandaLM" / "normalized"
    pairs = [json.loads(line) for line in (base / "pandalm_testset_v1.pairs.jsonl").open()]
    verdicts = {}
    for line in (base / "pandalm_testset_v1.judge_verdicts.jsonl").open():
        record = json.loads(line)
        if record["judge"].startswith(judge_prefix):
            verdicts[record["id"]] = "" if record["verdict"] == "invalid" else record["verdict"]
    return [PairUnit(verdicts[p["id"]], verdicts[p["id"]], tuple(p["human_votes"]), len(p["response_a"]),
                     len(p["response_b"]), p["subset"]) for p in pairs]


def test_pandalm_recorded_verdicts_reproduce_the_release_figures(shared_data):
    """The figures of ../shared/data/PandaLM/README.md, computed there from the same files."""
    rows = {r["key"]: r for r in convention_table(load_pandalm(shared_data, "gpt-3.5"))["rows"]}
    assert rows["with_ties"]["judge_strict"]["value"] == pytest.approx(0.6977, abs=5e-5)  # 3-way, 999 items
    assert rows["with_ties"]["judge_strict"]["n"] == 999
    assert rows["decisive_humans"]["judge_strict"]["value"] == pytest.approx(0.7740, abs=5e-5)  # n=894
    assert rows["without_ties"]["judge"]["value"] == pytest.approx(0.8151, abs=5e-5)
    assert rows["without_ties"]["judge"]["n"] == 849
    pandalm = {r["key"]: r for r in convention_table(load_pandalm(shared_data, "PandaLM"))["rows"]}
    assert pandalm["with_ties"]["judge_strict"]["value"] == pytest.approx(0.6677, abs=5e-5)
    assert pandalm["decisive_humans"]["judge_strict"]["value"] == pytest.approx(0.7103, abs=5e-5)
    assert pandalm["without_ties"]["judge"]["value"] == pytest.approx(0.7753, abs=5e-5)
    assert pandalm["without_ties"]["judge"]["n"] == 819
    # Human-human ceiling: where the other two annotators agree, the third matches 2,637 of 2,757 times.
    ceiling = convention_table(load_pandalm(shared_data, "gpt-3.5"))["human_ceiling"]
    assert (round(ceiling["value"] * 2757), ceiling["n"]) == (2637, 2757)
    # "Longer wins" counts equal lengths as a tie (a miss): 599 of 894; the README breaks them toward B (601).
    assert round(rows["decisive_humans"]["longer"]["value"] * 894) == 599

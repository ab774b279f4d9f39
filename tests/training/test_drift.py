"""The drift guard's arithmetic (training.drift): agreement over the pairs both sides decide, ties and failures
left out and counted, the Wilson interval, the seeded anchor sample, and the anchor config's validation."""
from __future__ import annotations

import pytest

from training.config import ConfigError, RunConfig
from training.drift import compare_verdicts, majority_verdict, sample_anchor


def test_agreement_counts_only_pairs_both_sides_decide():
    anchor = {1: "A", 2: "B", 3: "A", 4: "B", 5: "A", 6: "tie"}
    now = {1: "A", 2: "B", 3: "B", 4: "tie", 6: "A"}  # 5 failed (missing)
    result = compare_verdicts(anchor, now)
    assert (result.agree, result.n, result.ties, result.failed) == (2, 3, 2, 1)
    assert result.disagreeing == [3]
    assert result.estimate.value == pytest.approx(2 / 3)
    # Wilson 95% interval of 2/3 (statsmodels: 0.2077, 0.9385)
    assert result.estimate.low == pytest.approx(0.2077, abs=1e-3)
    assert result.estimate.high == pytest.approx(0.9385, abs=1e-3)


def test_an_empty_verdict_is_a_failure():
    result = compare_verdicts({1: "A", 2: "B"}, {1: "", 2: "B"})
    assert (result.agree, result.n, result.failed, result.ties) == (1, 1, 1, 0)


def test_passing_is_the_point_estimate_against_the_threshold():
    anchor = {i: "A" for i in range(10)}
    eight = compare_verdicts(anchor, {i: ("A" if i < 8 else "B") for i in range(10)})
    assert eight.estimate.value == pytest.approx(0.8)
    assert eight.passes(0.8) and not eight.passes(0.81)
    flipped = compare_verdicts(anchor, {i: "B" for i in range(10)})
    assert flipped.estimate.value == 0.0 and flipped.disagreeing == list(range(10))
    assert not flipped.passes(0.8) and flipped.passes(0.0)


def test_no_decisive_verdict_never_passes():
    result = compare_verdicts({1: "A", 2: "B"}, {1: "tie", 2: ""})
    assert result.n == 0 and result.estimate.value is None
    assert not result.passes(0.0)


def test_the_sample_is_seeded_and_stable_as_the_anchor_grows():
    keys = list(range(100))
    first = sample_anchor(keys, 20, seed=7)
    assert len(first) == len(set(first)) == 20
    assert sample_anchor(reversed(keys), 20, seed=7) == first  # order given does not matter
    assert sample_anchor(keys, 20, seed=8) != first
    grown = sample_anchor(keys + list(range(100, 110)), 20, seed=7)
    assert len(set(grown) & set(first)) >= 10  # new pairs displace only those they out-draw
    assert sorted(sample_anchor(keys[:5], 20, seed=7)) == keys[:5]  # fewer than asked: all of them


def test_majority_over_principles():
    assert majority_verdict(["A", "A", "B"]) == "A"
    assert majority_verdict(["A", "B"]) == "tie"  # an even split decides nothing
    assert majority_verdict(["B"]) == "B"
    assert majority_verdict([]) == ""


def test_anchor_config_defaults_and_bounds():
    judge = RunConfig.from_dict({}).judge
    assert (judge.anchor_run, judge.anchor_source, judge.anchor_sample, judge.anchor_min_agreement) == (
        0, "human", 20, 0.8)
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({"judge": {"anchor_source": "crowd"}})
    assert caught.value.path == "judge.anchor_source"
    for field, value in (("anchor_run", -1), ("anchor_sample", 0), ("anchor_min_agreement", 1.5)):
        with pytest.raises(ConfigError) as caught:
            RunConfig.from_dict({"judge": {field: value}})
        assert caught.value.path == f"judge.{field}"

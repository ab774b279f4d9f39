"""The labeling protocol: principle sampling by weight, debiasing arithmetic, ties, self-consistency, cost,
the request cache, failures, budget and cancellation."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from scipy.stats import chisquare

from training.config import JudgeConfig
from training.judge_prompt import DEFAULT_TEMPLATE
from training.judges.base import Judge, JudgeTask, OrderResult
from training.labeling import (
    MemoryCache,
    combine_orders,
    combine_samples,
    label_tasks,
    orders_agree,
    select_principles,
    unit_draw,
    verdict_for,
)
from training.progress import Cancelled, NullReporter, RecordingReporter

PRINCIPLES = [
    {"id": 1, "comparison": "Which is more honest?", "weight": 1.0, "enabled": True},
    {"id": 2, "comparison": "Which is more helpful?", "weight": 2.0, "enabled": True},
    {"id": 3, "comparison": "Which is more harmless?", "weight": 3.0, "enabled": True},
    {"id": 4, "comparison": "Which is funnier?", "weight": 5.0, "enabled": False},
    {"id": 5, "comparison": "Which is shorter?", "weight": 0.0, "enabled": True},
]


class BiasedLengthJudge(Judge):
    """A deterministic judge for the protocol tests: prefers the longer response shown, with a fixed
    preference for whatever is shown first (position bias)."""

    generates_rationale = False
    order_invariant = False

    def __init__(self, bias: float = 0.1, fail_marker: str = "", tokens=(10, 2)) -> None:
        self.judge_id = "test:biased-length"
        self.params = {"bias": bias}
        self.bias = bias
        self.fail_marker = fail_marker
        self.tokens = tokens
        self.requests = []

    def strength(self, first: str, second: str) -> float:
        return 1.0 / (1.0 + math.exp(-(len(first) - len(second)) / 10.0))

    def score(self, requests):
        self.requests.extend(requests)
        out = []
        for r in requests:
            if self.fail_marker and self.fail_marker in r.shown_a + r.shown_b:
                out.append(OrderResult(p_first=None, raw="???", error="no verdict line", attempts=3))
                continue
            p = min(1.0, max(0.0, self.strength(r.shown_a, r.shown_b) + self.bias))
            out.append(
                OrderResult(
                    p_first=p,
                    rationale=f"sample {r.sample}",
                    raw=f"Preferred: {'A' if p >= 0.5 else 'B'}",
                    latency_ms=5.0,
                    prompt_tokens=self.tokens[0],
                    completion_tokens=self.tokens[1],
                )
            )
        return out


def _tasks(n: int, a: str = "a much longer response", b: str = "short") -> list[JudgeTask]:
    return [
        JudgeTask(key=i, conversation=f"prompt {i}", response_a=a, response_b=b, principle="Which?") for i in range(n)
    ]


def _label(judge, tasks, config=None, **kwargs):
    batches = list(
        label_tasks(
            judge,
            tasks,
            template=DEFAULT_TEMPLATE,
            examples=[],
            config=config or JudgeConfig(),
            reporter=kwargs.pop("reporter", NullReporter()),
            **kwargs,
        )
    )
    return [p for batch in batches for p in batch], batches


# --- principles ---------------------------------------------------------------------------------------


def test_principles_are_sampled_in_proportion_to_weight():
    draws = Counter(select_principles(PRINCIPLES, key, mode="sample", seed=11)[0]["id"] for key in range(12000))
    assert set(draws) == {1, 2, 3}  # never a disabled or zero-weight principle
    observed = [draws[1], draws[2], draws[3]]
    expected = [12000 * w / 6 for w in (1, 2, 3)]
    assert chisquare(observed, expected).pvalue > 0.001
    assert abs(draws[3] / 12000 - 0.5) < 0.03


def test_principle_draw_is_fixed_per_seed_and_comparison():
    first = [select_principles(PRINCIPLES, key, seed=4)[0]["id"] for key in range(200)]
    again = [select_principles(PRINCIPLES, key, seed=4)[0]["id"] for key in range(200)]
    other_seed = [select_principles(PRINCIPLES, key, seed=5)[0]["id"] for key in range(200)]
    assert first == again
    assert first != other_seed
    assert 0.0 <= unit_draw(4, 17) < 1.0 and unit_draw(4, 17) == unit_draw(4, 17)


def test_all_mode_returns_every_enabled_principle():
    assert [p["id"] for p in select_principles(PRINCIPLES, 1, mode="all")] == [1, 2, 3, 5]


def test_no_usable_principle_is_an_error():
    with pytest.raises(ValueError, match="positive weight"):
        select_principles([{"id": 1, "weight": 0.0, "enabled": True}], 1)
    with pytest.raises(ValueError, match="no enabled principle"):
        select_principles([{"id": 1, "weight": 1.0, "enabled": False}], 1, mode="all")


# --- arithmetic ---------------------------------------------------------------------------------------


def test_swapped_order_maps_back_to_a_and_averages():
    p_a_ab, p_a_ba, p_a = combine_orders(0.9, 0.3)
    assert (p_a_ab, p_a_ba, p_a) == pytest.approx((0.9, 0.7, 0.8))
    assert combine_orders(0.6, None) == (0.6, None, 0.6)
    assert combine_orders(None, None) == (None, None, None)


@pytest.mark.parametrize(
    ("p_a", "margin", "verdict"),
    [
        (0.55, 0.05, "tie"),
        (0.45, 0.05, "tie"),
        (0.5501, 0.05, "A"),
        (0.4499, 0.05, "B"),
        (0.5, 0.0, "tie"),
        (0.51, 0.0, "A"),
        (None, 0.05, ""),
    ],
)
def test_verdict_tie_margin(p_a, margin, verdict):
    assert verdict_for(p_a, margin) == verdict


def test_position_consistency():
    assert orders_agree(0.8, 0.6) is True
    assert orders_agree(0.8, 0.4) is False
    assert orders_agree(0.3, 0.1) is True
    assert orders_agree(0.5, 0.5) is True
    assert orders_agree(0.8, None) is None


def test_self_consistency_samples_are_averaged_over_successes():
    merged = combine_samples(
        [
            OrderResult(p_first=0.9, rationale="one", prompt_tokens=3, completion_tokens=1),
            OrderResult(p_first=None, error="timeout", attempts=2),
            OrderResult(p_first=0.6, rationale="three", prompt_tokens=3, completion_tokens=1),
        ]
    )
    assert merged.p_first == pytest.approx(0.75)
    assert merged.rationale == "one" and merged.attempts == 4 and merged.prompt_tokens == 6
    failed = combine_samples([OrderResult(p_first=None, error="boom")])
    assert failed.p_first is None and failed.error == "boom"


# --- label_tasks ----------------------------------------------------------------------------------------


def test_both_orders_cancel_position_bias():
    judge = BiasedLengthJudge(bias=0.15)
    pairs, _ = _label(judge, _tasks(3), JudgeConfig(tie_margin=0.05))
    truth = judge.strength("a much longer response", "short")
    pair = pairs[0]
    assert pair.p_a_ab == pytest.approx(truth + 0.15)
    assert pair.p_a_ba == pytest.approx(truth - 0.15)
    assert pair.p_a == pytest.approx(truth)  # the bias cancels
    assert pair.verdict == "A" and pair.position_consistent is True
    assert [r["order"] for r in pair.raw_outputs] == ["A/B", "B/A"]
    assert len(judge.requests) == 6
    assert [r.swapped for r in judge.requests[:2]] == [False, True]


def test_equal_responses_are_a_tie_and_position_bias_shows_as_inconsistency():
    judge = BiasedLengthJudge(bias=0.2)
    pairs, _ = _label(judge, _tasks(1, a="same", b="same"), JudgeConfig(tie_margin=0.05))
    pair = pairs[0]
    assert pair.p_a_ab == pytest.approx(0.7) and pair.p_a_ba == pytest.approx(0.3)
    assert pair.p_a == pytest.approx(0.5) and pair.verdict == "tie"
    assert pair.position_consistent is False


def test_one_order_only_when_configured():
    judge = BiasedLengthJudge(bias=0.0)
    pairs, _ = _label(judge, _tasks(2), JudgeConfig(both_orders=False))
    assert len(judge.requests) == 2
    assert pairs[0].p_a_ba is None and pairs[0].position_consistent is None and pairs[0].verdict == "A"


def test_order_invariant_judge_is_asked_once():
    judge = BiasedLengthJudge(bias=0.0)
    judge.order_invariant = True
    pairs, _ = _label(judge, _tasks(2), JudgeConfig(both_orders=True))
    assert len(judge.requests) == 2 and pairs[0].p_a_ba is None


def test_self_consistency_asks_n_samples_per_order():
    judge = BiasedLengthJudge(bias=0.0)
    judge.generates_rationale = True
    pairs, _ = _label(judge, _tasks(2), JudgeConfig(self_consistency=3))
    assert len(judge.requests) == 2 * 2 * 3
    assert [r.sample for r in judge.requests[:6]] == [0, 1, 2, 0, 1, 2]
    assert [(r["order"], r["sample"]) for r in pairs[0].raw_outputs][:4] == [
        ("A/B", 0),
        ("A/B", 1),
        ("A/B", 2),
        ("B/A", 0),
    ]
    # without rationales there is nothing to sample: one request per order
    plain = BiasedLengthJudge(bias=0.0)
    _label(plain, _tasks(2), JudgeConfig(self_consistency=3))
    assert len(plain.requests) == 4


def test_cost_tokens_and_the_cache():
    config = JudgeConfig(price_per_1k_prompt_tokens=2.0, price_per_1k_completion_tokens=10.0)
    cache = MemoryCache()
    judge = BiasedLengthJudge(tokens=(100, 10))
    pairs, _ = _label(judge, _tasks(4), config, cache=cache)
    assert pairs[0].prompt_tokens == 200 and pairs[0].completion_tokens == 20
    assert pairs[0].cost == pytest.approx((200 * 2.0 + 20 * 10.0) / 1000)
    assert len(cache.entries) == 8

    again = BiasedLengthJudge(tokens=(100, 10))
    repeated, _ = _label(again, _tasks(4), config, cache=cache)
    assert again.requests == []  # never paid for twice
    assert [p.p_a for p in repeated] == pytest.approx([p.p_a for p in pairs])
    assert all(p.cost == 0 for p in repeated) and all(r["cached"] for r in repeated[0].raw_outputs)

    other_params = BiasedLengthJudge(bias=0.05)
    _label(other_params, _tasks(4), config, cache=cache)
    assert len(other_params.requests) == 8  # other parameters, other key


def test_failures_are_kept_not_dropped_and_not_cached():
    cache = MemoryCache()
    judge = BiasedLengthJudge(fail_marker="BROKEN")
    tasks = _tasks(2) + [
        JudgeTask(key="bad", conversation="p", response_a="BROKEN", response_b="x", principle="Which?")
    ]
    pairs, _ = _label(judge, tasks, cache=cache)
    assert [p.key for p in pairs] == [0, 1, "bad"]
    bad = pairs[2]
    assert bad.verdict == "" and bad.p_a is None and bad.position_consistent is None
    assert "no verdict line" in bad.error and bad.attempts == 6
    assert [r["raw"] for r in bad.raw_outputs] == ["???", "???"]
    assert len(cache.entries) == 4  # only the successful requests


def test_batches_progress_and_cancellation():
    reporter = RecordingReporter(stop_after=2)
    judge = BiasedLengthJudge()
    seen = []
    with pytest.raises(Cancelled):
        for batch in label_tasks(
            judge,
            _tasks(10),
            template=DEFAULT_TEMPLATE,
            examples=[],
            config=JudgeConfig(),
            reporter=reporter,
            batch_size=3,
            progress_offset=5,
            progress_total=15,
        ):
            seen.append([p.key for p in batch])
    assert seen == [[0, 1, 2], [3, 4, 5]]
    assert [c[:2] for c in reporter.progress_calls] == [(8, 15), (11, 15)]


def test_budget_stops_labeling():
    config = JudgeConfig(price_per_1k_prompt_tokens=1000.0, budget=2.5)  # each pair costs 2 * 10 / 1000 * 1000 = 20
    reporter = RecordingReporter()
    pairs, batches = _label(BiasedLengthJudge(), _tasks(10), config, batch_size=1, reporter=reporter, spent=0.0)
    assert 0 < len(pairs) < 10
    assert any("budget" in line for line in reporter.lines)
    spent_before, _ = _label(BiasedLengthJudge(), _tasks(10), config, batch_size=1, spent=3.0)
    assert spent_before == []


def test_invalid_template_is_rejected_before_any_call():
    from training.judge_prompt import TemplateError

    judge = BiasedLengthJudge()
    with pytest.raises(TemplateError, match="response_b"):
        list(
            label_tasks(
                judge,
                _tasks(1),
                template="{principle} {conversation} {response_a} {answer_format}",
                examples=[],
                config=JudgeConfig(),
                reporter=NullReporter(),
            )
        )
    assert judge.requests == []

"""Direct RLAIF (training/direct_reward.py): the judge scores RL rollouts pairwise within each prompt's group."""
from __future__ import annotations

import math

import pytest

from training.config import JudgeConfig
from training.direct_reward import NEUTRAL, JudgeReward, JudgeRewardError, prompt_key
from training.judges.base import Judge, OrderResult
from training.labeling import MemoryCache, select_principles
from training.progress import RecordingReporter

PRINCIPLES = [
    {"id": 1, "comparison": "Which is more helpful?", "weight": 1.0, "enabled": True},
    {"id": 2, "comparison": "Which is more honest?", "weight": 1.0, "enabled": True},
]


class LongerWinsJudge(Judge):
    """Prefers the longer response shown (a smooth length preference), plus a fixed bias for the one shown
    first; answers with no verdict for a response containing ``fail_marker``."""

    def __init__(self, bias: float = 0.1, fail_marker: str = "") -> None:
        self.judge_id = "test:longer-wins"
        self.bias = bias
        self.fail_marker = fail_marker
        self.requests = []

    @staticmethod
    def strength(first: str, second: str) -> float:
        return 1.0 / (1.0 + math.exp(-(len(first) - len(second)) / 10.0))

    def score(self, requests):
        self.requests.extend(requests)
        out = []
        for r in requests:
            if self.fail_marker and self.fail_marker in r.shown_a + r.shown_b:
                out.append(OrderResult(p_first=None, raw="???", error="no verdict line"))
            else:
                out.append(OrderResult(p_first=min(1.0, max(0.0, self.strength(r.shown_a, r.shown_b) + self.bias))))
        return out


def reward_for(judge, **config) -> JudgeReward:
    return JudgeReward(judge, JudgeConfig(**config), PRINCIPLES, reporter=RecordingReporter())


def test_the_longer_completion_of_a_group_earns_the_higher_reward():
    judge = LongerWinsJudge(bias=0.15)
    reward = reward_for(judge)
    logged = {}
    prompts = ["Tell me about tea."] * 2 + ["Name a river."] * 2
    completions = ["Tea is a drink.", "Tea.",
                   "No.", "The Nile, the longest river in Africa."]
    rewards = reward(prompts=prompts, completions=completions, log_metric=lambda k, v: logged.__setitem__(k, v))

    truth = LongerWinsJudge.strength(completions[0], completions[1])
    assert rewards[0] == pytest.approx(truth) and rewards[1] == pytest.approx(1 - truth)  # position bias cancels
    assert rewards[0] > 0.7 > 0.3 > rewards[1]
    assert rewards[3] > rewards[2] and rewards[2] + rewards[3] == pytest.approx(1.0)
    # one comparison per group, asked in both orders; never across groups
    assert len(judge.requests) == 4
    assert {(r.shown_a, r.shown_b) for r in judge.requests} == {
        (completions[0], completions[1]), (completions[1], completions[0]),
        (completions[2], completions[3]), (completions[3], completions[2]),
    }
    assert logged["judge_reward"] == pytest.approx(0.5) and logged["judge_failed"] == 0
    assert 0.4 < logged["judge_margin"] <= 1.0
    assert (reward.judged, reward.failed) == (2, 0)


def test_a_reward_is_the_mean_win_probability_against_the_rest_of_its_group():
    judge = LongerWinsJudge(bias=0.0)
    completions = ["a" * 40, "a" * 20, "a"]
    rewards = reward_for(judge)(prompts=["p"] * 3, completions=completions)
    s = LongerWinsJudge.strength
    assert rewards[0] == pytest.approx((s(completions[0], completions[1]) + s(completions[0], completions[2])) / 2)
    assert rewards[2] == pytest.approx((s(completions[2], completions[0]) + s(completions[2], completions[1])) / 2)
    assert rewards[0] > rewards[1] > rewards[2]
    assert len(judge.requests) == 3 * 2  # 3 pairs, both orders


def test_a_failed_judgment_is_a_neutral_reward_and_is_counted():
    judge = LongerWinsJudge(fail_marker="BROKEN")
    reward = reward_for(judge, max_failed_share=1.0)
    logged = {}
    rewards = reward(prompts=["a", "a", "b", "b"], completions=["BROKEN long answer", "x", "long answer", "y"],
                     log_metric=lambda k, v: logged.__setitem__(k, v))
    assert rewards[:2] == [NEUTRAL, NEUTRAL]
    assert rewards[2] > 0.5 > rewards[3]
    assert (reward.judged, reward.failed) == (2, 1) and logged["judge_failed"] == 1
    assert any("1 of 2 judgments" in line for line in reward.reporter.reporter.lines)


def test_too_many_failures_stop_training_with_a_clear_error():
    judge = LongerWinsJudge(fail_marker="BROKEN")
    reward = reward_for(judge, max_failed_share=0.1)
    prompts = [f"prompt {i // 2}" for i in range(16)]
    with pytest.raises(JudgeRewardError, match="judge.max_failed_share"):
        for _ in range(3):  # 8 judgments a call; the share is checked from 16 on
            reward(prompts=prompts, completions=["BROKEN", "fine"] * 8)
    assert reward.judged == 16 and reward.failed == 16
    # a small run below the threshold is still judged at the stage's end
    small = reward_for(LongerWinsJudge(fail_marker="BROKEN"), max_failed_share=0.1)
    assert small(prompts=["p", "p"], completions=["BROKEN", "ok"]) == [NEUTRAL, NEUTRAL]
    with pytest.raises(JudgeRewardError, match="1 of 1 judgments"):
        small.check_failures()


def test_order_invariant_judges_are_asked_once_and_lone_rollouts_stay_neutral():
    judge = LongerWinsJudge(bias=0.0)
    judge.order_invariant = True
    rewards = reward_for(judge)(prompts=["p", "p", "alone"], completions=["long answer", "x", "anything"])
    assert len(judge.requests) == 1 and rewards[2] == NEUTRAL and rewards[0] > rewards[1]


def test_each_prompt_is_judged_under_the_principle_its_content_draws():
    judge = LongerWinsJudge()
    prompts = [f"question {i}" for i in range(6) for _ in range(2)]
    reward_for(judge, seed=3)(prompts=prompts, completions=["aa", "b"] * 6)
    for i in range(6):
        expected = select_principles(PRINCIPLES, prompt_key(f"question {i}"), seed=3)[0]["comparison"]
        asked = {r.principle for r in judge.requests if r.conversation == f"question {i}"}
        assert asked == {expected}
    assert len({r.principle for r in judge.requests}) == 2  # both principles drawn over six prompts


def test_transcript_and_chat_prompts_reach_the_judge_as_conversations():
    judge = LongerWinsJudge()
    reward = reward_for(judge)
    reward(prompts=["Human: hi\n\nAssistant: hello\n\nHuman: tea?\n\nAssistant:"] * 2, completions=["yes", "no!"])
    assert judge.requests[0].conversation == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "tea?"},
    ]
    chat = [{"role": "user", "content": "tea?"}]
    reward(prompts=[chat, chat], completions=[[{"role": "assistant", "content": "yes please"}],
                                             [{"role": "assistant", "content": "no"}]])
    assert judge.requests[-1].conversation == chat and {judge.requests[-1].shown_a, judge.requests[-1].shown_b} == {
        "yes please", "no"}


def test_the_request_cache_answers_a_repeated_batch_and_the_budget_stops_training():
    judge = LongerWinsJudge()
    cache = MemoryCache()
    reward = JudgeReward(judge, JudgeConfig(), PRINCIPLES, cache=cache)
    batch = {"prompts": ["p", "p"], "completions": ["long answer", "x"]}
    first = reward(**batch)
    assert reward(**batch) == first and len(judge.requests) == 2  # answered from the cache
    spent = JudgeReward(LongerWinsJudge(), JudgeConfig(budget=1.0), PRINCIPLES, spent=1.0)
    with pytest.raises(JudgeRewardError, match="judge budget 1 reached"):
        spent(**batch)

"""Pointwise AI feedback (Lee et al. 2023, d-RLAIF): the 1-10 score as an expectation over the score tokens'
probabilities, read by the transformers judge, and used as the direct RLAIF reward."""
from __future__ import annotations

import math

import pytest

from tests.training.test_direct_reward import PRINCIPLES
from training.config import ConfigError, JudgeConfig, RunConfig
from training.direct_reward import NEUTRAL_POINT, JudgeReward
from training.judges import build_judge
from training.judges.base import Judge
from training.pointwise import expected_score, normalised_score, render_score_prompt, score_distribution
from training.progress import RecordingReporter


def test_score_distribution_normalises_and_splits_a_two_token_ten():
    log = math.log
    flat = score_distribution({str(k): log(0.05) for k in range(1, 10)})
    assert flat == pytest.approx([1 / 9] * 9 + [0.0])
    assert expected_score(flat) == pytest.approx(5.0) and normalised_score(flat) == pytest.approx(-1 / 9)
    # "10" spelled "1" then "0": P("1") = 0.4 splits into P(10) = 0.4 * 0.75 and P(1) = 0.4 * 0.25
    split = score_distribution({"1": log(0.4), "9": log(0.1)}, after_one={"0": log(0.75)})
    assert split[0] == pytest.approx(0.1 / 0.5) and split[9] == pytest.approx(0.3 / 0.5)
    assert split[8] == pytest.approx(0.1 / 0.5)
    assert normalised_score([0.0] * 9 + [1.0]) == 1.0 and normalised_score([1.0] + [0.0] * 9) == -1.0
    with pytest.raises(ValueError, match="no score token"):
        score_distribution({})


def test_the_score_prompt_names_the_principle_conversation_and_response():
    (message,) = render_score_prompt([{"role": "user", "content": "Hi?"}], " Hello! ", "Which is kinder?")
    assert message["role"] == "user"
    assert "Which is kinder?" in message["content"] and "Human: Hi?" in message["content"]
    assert "Response:\nHello!\n" in message["content"] and "from 1 (worst) to 10 (best)" in message["content"]


@pytest.mark.slow
def test_transformers_judge_reads_the_expected_score_from_the_score_tokens(tmp_path, monkeypatch):
    import torch

    from tests.training.tiny import tiny_lm

    judge = build_judge(JudgeConfig(backend="transformers", model=str(tiny_lm(tmp_path / "lm"))))
    assert judge.pointwise
    items = [("What is the sea?", "The sea is salt water.", "Which is more helpful?"),
             ("Name a hill.", "No.", "Which is more helpful?")]
    scores = judge.score_points(items)
    assert len(scores) == 2 and all(-1.0 <= s <= 1.0 for s in scores) and scores[0] != scores[1]
    # a model certain of the score 9 scores (9 - 1) / 9 rescaled to [-1, 1]
    common, first, zero = judge.score_tokens
    vocab = judge.model.config.vocab_size

    def certain_of_nine(rows):
        out = torch.full((len(rows), vocab), -1e4)
        out[:, first[9]] = 0.0
        return torch.log_softmax(out, dim=-1)

    monkeypatch.setattr(judge, "_next_logprobs", certain_of_nine)
    assert judge.score_points(items) == [pytest.approx(2 * 8 / 9 - 1, abs=1e-4)] * 2


class ScoreByLength(Judge):
    """A pointwise stub: longer answers score higher; an answer containing "fail" gets no score."""

    pointwise = True
    judge_id = "test:score-by-length"

    def __init__(self):
        self.items = []

    def score_points(self, items):
        self.items.extend(items)
        return [None if "fail" in r else min(1.0, len(r) / 20 - 1) for _c, r, _p in items]


def test_pointwise_reward_scores_each_rollout_alone_under_its_prompts_principle():
    judge = ScoreByLength()
    reward = JudgeReward(judge, JudgeConfig(), PRINCIPLES, reporter=RecordingReporter(), scoring="pointwise")
    logged = {}
    prompts = ["Tell me about tea."] * 2 + ["Name a river."] * 2
    completions = ["Tea is a drink made from leaves.", "Tea.", "fail", "The Nile."]
    rewards = reward(prompts=prompts, completions=completions, log_metric=lambda k, v: logged.__setitem__(k, v))
    assert rewards == pytest.approx([min(1.0, 32 / 20 - 1), 4 / 20 - 1, NEUTRAL_POINT, 9 / 20 - 1])
    assert len(judge.items) == 4  # one score per rollout and principle, no comparisons
    assert (reward.judged, reward.failed) == (4, 1) and logged["judge_failed"] == 1.0
    assert logged["judge_reward"] == pytest.approx(sum(rewards) / 4)


def test_pointwise_needs_a_judge_that_reads_score_tokens():
    class PairsOnly(Judge):
        judge_id = "test:pairs"

    with pytest.raises(ValueError, match="cannot score single responses"):
        JudgeReward(PairsOnly(), JudgeConfig(), PRINCIPLES, scoring="pointwise")
    with pytest.raises(ConfigError, match="policy.judge_scoring: 'pointwise' needs a judge"):
        RunConfig.from_dict({"judge": {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1"},
                             "policy": {"reward_source": "judge", "judge_scoring": "pointwise"}})
    RunConfig.from_dict({"judge": {"backend": "transformers", "model": "demo://judge"},
                         "policy": {"reward_source": "judge", "judge_scoring": "pointwise"}})


@pytest.mark.slow
def test_a_tokenizer_that_cannot_spell_the_scores_is_refused_clearly(tiny_lm_dir):
    judge = build_judge(JudgeConfig(backend="transformers", model=str(tiny_lm_dir)))  # its BPE lacks a "2"
    with pytest.raises(ValueError, match="spells the score 2 with 2 tokens"):
        judge.score_points([("Hi?", "Hello.", "Which is kinder?")])

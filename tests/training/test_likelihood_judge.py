"""The likelihood judge (principle-conditioned likelihood, order-invariant) and the transformers judge's
last-position-only logits, on the tiny GPT-2 built in a fixture."""

from __future__ import annotations

import math

import pytest

from training.config import JudgeConfig
from training.judge_prompt import DEFAULT_TEMPLATE, render_both_orders
from training.judges import build_judge
from training.judges.likelihood_judge import PREAMBLE, LikelihoodJudge

pytestmark = pytest.mark.slow

PRINCIPLE = "Which response is more helpful?"


@pytest.fixture(scope="module")
def judge(tiny_lm_dir):
    built = build_judge(JudgeConfig(backend="likelihood", model=str(tiny_lm_dir)))
    assert isinstance(built, LikelihoodJudge) and built.order_invariant
    return built


def _full_logprob(judge, context: str, response: str) -> float:
    """Reference: the response's summed log-probability from full-sequence logits of one unpadded row."""
    import torch

    tok = judge.tokenizer
    ctx = tok(context, add_special_tokens=False)["input_ids"]
    resp = tok(" " + response, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([ctx + resp])
    with torch.no_grad():
        logprobs = torch.log_softmax(judge.model(input_ids=ids).logits[0].float(), dim=-1)
    return float(sum(logprobs[len(ctx) + i - 1, t] for i, t in enumerate(resp)))


def test_scores_are_the_response_log_likelihood_gain_from_the_principle(judge):
    from training.generation import prompt_text

    prompt, a, b = "What is the capital of France?", "Paris is the capital.", "No idea at all, sorry."
    request = render_both_orders(DEFAULT_TEMPLATE, PRINCIPLE, prompt, a, b)[0]
    result = judge.score([request])[0]
    base = prompt_text(judge.tokenizer, prompt)
    conditioned = PREAMBLE.format(principle=PRINCIPLE) + base
    gain_a = _full_logprob(judge, conditioned, a) - _full_logprob(judge, base, a)
    gain_b = _full_logprob(judge, conditioned, b) - _full_logprob(judge, base, b)
    assert result.p_first == pytest.approx(1 / (1 + math.exp(-(gain_a - gain_b))), abs=1e-4)
    assert result.raw.startswith("pmi_A=") and float(result.raw.split()[0][6:]) == pytest.approx(gain_a, abs=1e-3)


def test_batched_rows_of_different_lengths_score_as_alone_and_swapping_is_the_complement(judge):
    short = render_both_orders(DEFAULT_TEMPLATE, PRINCIPLE, "Hi?", "Hello there.", "Go away.")
    long = render_both_orders(
        DEFAULT_TEMPLATE, "Which response is less harmful?", "How do I sharpen a knife at home safely?",
        "Use a whetstone at a steady angle, pulling the blade away from you.", "No.",
    )
    together = judge.score([short[0], long[0], short[1], long[1]])
    alone = judge.score([short[0]]) + judge.score([long[0]])
    assert [r.p_first for r in together[:2]] == pytest.approx([r.p_first for r in alone], abs=1e-4)
    # order-invariant: the B/A prompt gives exactly the complement
    assert together[2].p_first == pytest.approx(1 - together[0].p_first, abs=1e-6)
    assert together[3].p_first == pytest.approx(1 - together[1].p_first, abs=1e-6)


def test_the_transformers_judge_asks_the_model_for_the_last_position_only(tiny_lm_dir):
    judge = build_judge(JudgeConfig(backend="transformers", model=str(tiny_lm_dir)))
    seen = []
    forward = judge.model.forward

    def spy(*args, **kwargs):
        out = forward(*args, **kwargs)
        seen.append((kwargs.get("logits_to_keep"), tuple(out.logits.shape)))
        return out

    judge.model.forward = spy
    result = judge.score(render_both_orders(DEFAULT_TEMPLATE, PRINCIPLE, "Hi?", "Hello there.", "Go away."))
    assert all(0 < r.p_first < 1 for r in result)
    assert seen and all(keep == 1 and shape[1] == 1 for keep, shape in seen)

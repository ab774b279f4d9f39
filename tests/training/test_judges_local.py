"""The local judge backends on tiny models built in fixtures: label log-probs (transformers) and
Bradley-Terry rewards (reward_model)."""

from __future__ import annotations

import math

import pytest

from training.config import JudgeConfig
from training.judge_prompt import DEFAULT_TEMPLATE, VERDICT_PREFIX, render_both_orders
from training.judges import build_judge
from training.judges.transformers_judge import label_token_ids

pytestmark = pytest.mark.slow


def _requests(prompt="What is the capital of France?", a="The capital of France is Paris.", b="No idea."):
    return list(render_both_orders(DEFAULT_TEMPLATE, "Which response is more helpful?", prompt, a, b))


@pytest.fixture(scope="module")
def lm_judge(tiny_lm_dir):
    return build_judge(JudgeConfig(backend="transformers", model=str(tiny_lm_dir)))


def test_transformers_judge_is_the_softmax_over_the_label_logprobs(lm_judge):
    import torch

    request = _requests()[0]
    result = lm_judge.score([request])[0]
    tokenizer, model = lm_judge.tokenizer, lm_judge.model
    text = tokenizer.apply_chat_template(list(request.messages), tokenize=False, add_generation_prompt=True)
    ids = tokenizer(f"{text} {VERDICT_PREFIX}", return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        logprobs = torch.log_softmax(model(**ids).logits[0, -1], dim=-1)
    mass_a = sum(math.exp(logprobs[i]) for i in label_token_ids(tokenizer, "A"))
    mass_b = sum(math.exp(logprobs[i]) for i in label_token_ids(tokenizer, "B"))
    assert result.p_first == pytest.approx(mass_a / (mass_a + mass_b), abs=1e-5)
    assert 0.0 < result.p_first < 1.0
    assert result.raw == f"{VERDICT_PREFIX} {'A' if result.p_first >= 0.5 else 'B'}"
    assert result.prompt_tokens == ids["input_ids"].shape[1]


def test_transformers_judge_batches_with_left_padding(lm_judge):
    short = _requests(a="Paris.", b="No.")
    long = _requests(a="The capital of France is Paris, a city on the Seine.", b="I do not know that.")
    together = lm_judge.score(short + long)
    alone = lm_judge.score(short) + lm_judge.score(long)
    assert [r.p_first for r in together] == pytest.approx([r.p_first for r in alone], abs=2e-4)


def test_transformers_judge_chain_of_thought_generates_then_scores(tiny_lm_dir):
    judge = build_judge(
        JudgeConfig(backend="transformers", model=str(tiny_lm_dir), chain_of_thought=True, max_new_tokens=6)
    )
    assert judge.generates_rationale
    results = judge.score(_requests())
    for result in results:
        assert 0.0 < result.p_first < 1.0
        assert 1 < result.completion_tokens <= 7
        assert result.raw.endswith(("Preferred: A", "Preferred: B"))
        assert VERDICT_PREFIX not in result.rationale


def test_reward_model_judge_is_sigmoid_of_reward_difference(tiny_rm_dir):
    judge = build_judge(JudgeConfig(backend="reward_model", model=str(tiny_rm_dir)))
    assert judge.order_invariant and judge.judge_id == f"reward_model:{tiny_rm_dir}"
    ab, ba = judge.score(_requests())
    r_a, r_b = judge.rewards(
        [
            judge.tokenizer.apply_chat_template(
                [{"role": "user", "content": "What is the capital of France?"}, {"role": "assistant", "content": text}],
                tokenize=False,
            )
            for text in ("The capital of France is Paris.", "No idea.")
        ]
    )
    assert r_a != r_b
    assert ab.p_first == pytest.approx(1 / (1 + math.exp(-(r_a - r_b))), abs=1e-6)
    assert ba.p_first == pytest.approx(1 - ab.p_first, abs=1e-6)  # the order shown does not matter
    assert ab.raw.startswith("r_A=")


def test_build_judge_rejects_a_missing_local_model(tmp_path):
    from training.modeling import ModelNotFound

    with pytest.raises(ModelNotFound):
        build_judge(JudgeConfig(backend="transformers", model=str(tmp_path / "absent")))
    with pytest.raises(ModelNotFound, match="demo"):
        build_judge(JudgeConfig(backend="transformers", model="demo://judge"), models_dir=tmp_path)


def test_self_consistency_samples_reproducible_rationales(tiny_lm_dir):
    from dataclasses import replace

    config = JudgeConfig(
        backend="transformers",
        model=str(tiny_lm_dir),
        chain_of_thought=True,
        max_new_tokens=8,
        self_consistency=2,
        temperature=1.5,
        seed=9,
    )
    judge = build_judge(config)
    assert judge.sampled and judge.params["temperature"] == 1.5
    request = _requests()[0]
    first = judge.score([replace(request, sample=0), replace(request, sample=1)])
    again = judge.score([replace(request, sample=0), replace(request, sample=1)])
    assert [r.rationale for r in first] == [r.rationale for r in again]  # seeded per sample
    assert first[0].rationale != first[1].rationale  # different samples, different rationales

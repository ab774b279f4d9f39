"""The real-model path on every CI run: the packaged Gemma 3 270M GGUF through the product's loader,
transcript prompts with generation stopped at the next turn, and one judgment by the likelihood judge.

The converted model is cached across sessions in ``STUDIO_TEST_MODELS_DIR`` (default
``~/.cache/rlaif-studio-tests/models``), so CI converts once (about a minute) and then loads in seconds.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from training import transcript
from training.config import GenerationConfig, JudgeConfig
from training.generation import generate, load_causal_lm
from training.judge_prompt import DEFAULT_TEMPLATE, render_both_orders
from training.judges.likelihood_judge import LikelihoodJudge
from training.progress import RecordingReporter

pytestmark = pytest.mark.slow

PROMPTS = [
    "What's a good way to learn to cook?",
    [
        {"role": "user", "content": "My neighbour's dog barks all night."},
        {"role": "assistant", "content": "That sounds tiring. Have you talked to your neighbour?"},
        {"role": "user", "content": "Not yet. What should I say?"},
    ],
    "Can you recommend a book for a long flight?",
    "How do I get a stain out of a shirt?",
]


@pytest.fixture(scope="session")
def gemma():
    default = Path.home() / ".cache" / "rlaif-studio-tests" / "models"
    models_dir = Path(os.environ.get("STUDIO_TEST_MODELS_DIR") or default)
    reporter = RecordingReporter()
    model, tokenizer = load_causal_lm("gemma-3-270m", models_dir, reporter)
    return model, tokenizer


def test_gemma_answers_in_transcript_format_and_stops_at_the_next_turn(gemma):
    model, tokenizer = gemma
    assert transcript.uses_transcript(tokenizer)  # a base model: no chat template
    config = GenerationConfig(model="gemma-3-270m", samples_per_prompt=2, max_new_tokens=40, batch_size=4, seed=0)
    samples = generate(model, tokenizer, PROMPTS, config)
    assert len(samples) == 8
    for sample in samples:
        assert "Human:" not in sample.text and "Assistant:" not in sample.text
    # without stop strings a base model runs on into an invented turn until max_new_tokens: here some stop early
    assert any(s.token_count < config.max_new_tokens for s in samples)
    words = " ".join(s.text for s in samples).split()
    assert len(words) >= 20 and sum(w.isalpha() for w in words) / len(words) > 0.5  # real English words


def test_the_likelihood_judge_on_gemma_scores_one_judgment(gemma):
    model, tokenizer = gemma
    judge = LikelihoodJudge(JudgeConfig(backend="likelihood", model="gemma-3-270m"), model=model, tokenizer=tokenizer)
    a_first, b_first = render_both_orders(
        DEFAULT_TEMPLATE,
        "Which response is less harmful?",
        "How can I get back at my coworker?",
        "Talk to them calmly about what happened, or ask your manager for help.",
        "Put something in their coffee so they get sick.",
    )
    first, second = judge.score([a_first, b_first])
    assert 0.0 < first.p_first < 1.0 and not first.error
    assert second.p_first == pytest.approx(1.0 - first.p_first, abs=1e-6)


def test_gemma_scores_a_response_pointwise_from_its_digit_tokens(gemma):
    """Gemma spells " 7" as a space then "7" and "10" as "1" then "0": the pointwise reader handles both."""
    from training.judges.transformers_judge import TransformersJudge

    model, tokenizer = gemma
    judge = TransformersJudge(JudgeConfig(backend="transformers", model="gemma-3-270m"), model=model,
                              tokenizer=tokenizer)
    common, first, zero = judge.score_tokens
    assert [tokenizer.decode(common)] == [" "] and len(first) == 9 and tokenizer.decode([zero]) == "0"
    scores = judge.score_points([
        ("How can I get back at my coworker?", "Talk to them calmly, or ask your manager for help.",
         "Which response is less harmful?"),
        ("How can I get back at my coworker?", "Put something in their coffee.", "Which response is less harmful?"),
    ])
    assert all(s is not None and -1.0 < s < 1.0 for s in scores) and scores[0] != scores[1]

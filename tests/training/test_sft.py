"""SFT on demonstrations lowers the loss on them; critique-and-revise samples principles by weight and
chains answer, critique and revision."""
import pytest

from tests.training.tiny import tiny_lm
from training.config import GenerationConfig, SFTConfig
from training.critique_revise import DEFAULT_CRITIQUE, _request, critique_and_revise
from training.generation import load_causal_lm
from training.labeling import select_principles
from training.progress import Cancelled, RecordingReporter
from training.sft import Demonstration, train_sft

PRINCIPLES = [
    {"name": "Honest", "comparison": "Which is more honest?", "critique_request": "Is it honest?",
     "revision_request": "Make it honest.", "weight": 3.0, "enabled": True},
    {"name": "Kind", "comparison": "Which is kinder?", "critique_request": "", "revision_request": "",
     "weight": 1.0, "enabled": True},
    {"name": "Off", "comparison": "Unused", "weight": 5.0, "enabled": False},
]


def test_principles_are_drawn_by_weight_deterministically():
    draws = [select_principles(PRINCIPLES, i, seed=0)[0]["name"] for i in range(400)]
    assert "Off" not in draws
    assert 0.65 < draws.count("Honest") / 400 < 0.85  # weight 3 of 4
    assert draws == [select_principles(PRINCIPLES, i, seed=0)[0]["name"] for i in range(400)]
    with pytest.raises(ValueError, match="no enabled principle"):
        select_principles([PRINCIPLES[2]], 0)


def test_empty_requests_fall_back_to_the_comparison_question():
    assert _request(PRINCIPLES[0], "critique") == "Is it honest?"
    assert _request(PRINCIPLES[1], "critique") == DEFAULT_CRITIQUE.format(comparison="Which is kinder?")
    assert "Which is kinder?" in _request(PRINCIPLES[1], "revision")


@pytest.mark.slow
def test_critique_and_revise_returns_one_record_per_prompt(tmp_path):
    model, tokenizer = load_causal_lm(str(tiny_lm(tmp_path / "lm")))
    config = GenerationConfig(max_new_tokens=8, temperature=1.0, batch_size=4)
    records = critique_and_revise(
        model, tokenizer, ["Question 1 about the sea?", "Question 2?"], [10, 11], PRINCIPLES, config
    )
    assert [r.prompt_index for r in records] == [10, 11]
    assert [r.principle for r in records] == [select_principles(PRINCIPLES, i)[0]["name"] for i in (10, 11)]
    assert all(r.revision for r in records)  # an empty revision falls back to the first answer
    with pytest.raises(Cancelled):
        critique_and_revise(model, tokenizer, ["Q?"], [0], PRINCIPLES, config, reporter=RecordingReporter(0))


@pytest.mark.slow
def test_sft_lowers_the_loss_on_demonstrations(tmp_path):
    examples = [Demonstration(f"Question {i} about the sea?", "Sure, kindly here is an answer.") for i in range(16)]
    reporter = RecordingReporter()
    config = SFTConfig(source="demonstrations", learning_rate=5e-3, batch_size=8)
    result = train_sft(examples, str(tiny_lm(tmp_path / "lm")), config, tmp_path / "sft", reporter=reporter,
                       max_steps=12)
    losses = [m["loss"] for _, m in reporter.metrics if "loss" in m]
    assert result.steps == 12 and len(losses) == 12
    assert losses[-1] < losses[0] * 0.6, losses
    model, tokenizer = load_causal_lm(str(result.path))
    from training.generation import generate

    sample = generate(model, tokenizer, ["Question 3 about the sea?"], GenerationConfig(temperature=0.0001),
                      num_samples=1)[0]
    assert "kindly" in sample.text

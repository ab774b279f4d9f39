"""The Bradley-Terry reward model: input encoding that keeps the answers, and real learning."""
import random

import pytest
from datasets import Dataset
from transformers import AutoTokenizer

from tests.training.tiny import tiny_lm
from training.config import RewardModelConfig
from training.modeling import minilm_path
from training.progress import RecordingReporter
from training.reward_model import (
    RewardScorer,
    encode_pair,
    margin_from_p,
    pairwise_accuracy,
    render_prompt,
    train_reward_model,
)


@pytest.fixture(scope="module")
def minilm_tokenizer():
    return AutoTokenizer.from_pretrained(str(minilm_path()))


def test_encode_pair_keeps_the_answer_and_cuts_the_old_prompt(minilm_tokenizer):
    tok = minilm_tokenizer
    prompt = [
        {"role": "user", "content": "ancient history " * 200},
        {"role": "assistant", "content": "middle turn"},
        {"role": "user", "content": "final question about zebras"},
    ]
    ids = encode_pair(tok, prompt, "the final answer mentions giraffes", max_length=64)
    assert len(ids) == 64
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id and ids.count(tok.sep_token_id) == 2
    text = tok.decode(ids)
    assert "giraffes" in text and "zebras" in text  # the answer and the last turn survive
    assert text.count("ancient") < 50  # the oldest part of the prompt was cut


def test_encode_pair_truncates_a_long_answer_but_keeps_some_prompt(minilm_tokenizer):
    ids = encode_pair(minilm_tokenizer, "short question", "word " * 500, max_length=32)
    assert len(ids) == 32
    assert "short question" in minilm_tokenizer.decode(ids)


def test_encode_pair_ends_causal_inputs_with_eos(tmp_path):
    tok = AutoTokenizer.from_pretrained(str(tiny_lm(tmp_path / "lm")))
    ids = encode_pair(tok, "Question 3 about the sea?", "Sure, kindly here is an answer.", max_length=128)
    assert ids[-1] == tok.eos_token_id
    assert tok.decode(ids[:-1]).startswith("Human: Question 3")


def test_render_prompt_and_margin():
    assert render_prompt("Hi") == "Human: Hi\n\nAssistant:"
    assert margin_from_p(0.5) == 0.0
    assert margin_from_p(0.75) == pytest.approx(1.0986, abs=1e-3)  # log(3)
    assert margin_from_p(1.0) == pytest.approx(5.0, abs=0.01)


def separable(n: int, seed: int) -> Dataset:
    """Preferences a model can only get right by learning: the chosen answer says "kindly", the rejected
    "rudely", with random filler words around both so an untrained model scores at chance."""
    rng = random.Random(seed)
    words = "sea hills weather bread music trains maps rivers stars tea".split()
    rows = []
    for i in range(n):
        filler = lambda: " ".join(rng.choice(words) for _ in range(4))  # noqa: E731
        rows.append(
            {
                "prompt": f"Question {i} about {rng.choice(words)}?",
                "chosen": f"{filler()} kindly {filler()}",
                "rejected": f"{filler()} rudely {filler()}",
            }
        )
    return Dataset.from_list(rows)


@pytest.mark.slow
def test_minilm_reward_model_learns_a_separable_preference(tmp_path):
    train, held_out = separable(48, 0), separable(32, 1)
    base = str(minilm_path())
    untrained = pairwise_accuracy(RewardScorer(base, max_length=48), held_out)
    reporter = RecordingReporter()
    config = RewardModelConfig(learning_rate=1e-4, epochs=1, batch_size=8, max_length=48)
    result = train_reward_model(train, base, config, tmp_path / "rm", eval_dataset=held_out, reporter=reporter)

    assert result.metrics["eval_accuracy"] >= 0.9
    assert result.metrics["eval_accuracy"] > untrained + 0.2
    assert pairwise_accuracy(RewardScorer(result.path), held_out) == pytest.approx(result.metrics["eval_accuracy"])
    losses = [m["loss"] for _, m in reporter.metrics if "loss" in m]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert [c[0] for c in reporter.progress_calls] == list(range(1, 7))
    assert (result.path / "rlaif_reward_model.json").exists()


@pytest.mark.slow
def test_tiny_causal_reward_model_resumes_from_its_checkpoint(tmp_path):
    base = str(tiny_lm(tmp_path / "lm"))
    config = RewardModelConfig(learning_rate=3e-3, epochs=2, batch_size=8, max_length=64)
    stopper = RecordingReporter(stop_after=3)
    from training.progress import Cancelled

    with pytest.raises(Cancelled):
        train_reward_model(separable(32, 0), base, config, tmp_path / "rm", reporter=stopper, checkpoint_every=100)
    assert (tmp_path / "rm" / "checkpoints" / "checkpoint-3").is_dir()  # saved at the stop, not at 100
    reporter = RecordingReporter()
    result = train_reward_model(
        separable(32, 0), base, config, tmp_path / "rm", eval_dataset=separable(32, 1), reporter=reporter
    )
    assert result.resumed_from.endswith("checkpoint-3")
    assert result.metrics["steps"] == 8
    assert [c[0] for c in reporter.progress_calls] == [4, 5, 6, 7, 8]
    assert result.metrics["eval_accuracy"] >= 0.8

"""Reward-model inputs and ``max_length``: truncated pairs are counted and reported, and a ``max_length``
beyond the base model's positions is clamped (with a notice) instead of crashing the stage."""
from __future__ import annotations

import pytest
from datasets import Dataset
from transformers import AutoTokenizer

from tests.training.tiny import tiny_lm
from training.config import RewardModelConfig
from training.modeling import minilm_path
from training.progress import RecordingReporter
from training.reward_model import (
    CONFIG_FILE,
    RewardScorer,
    fit_max_length,
    model_positions,
    tokenize_preferences,
    train_reward_model,
)


def pairs(n: int, long_every: int = 0) -> Dataset:
    rows = []
    for i in range(n):
        long = long_every and i % long_every == 0
        rows.append({
            "prompt": f"Question {i} about the sea?",
            "chosen": "Sure, kindly here is an answer." + (" the sea and the hills" * 40 if long else ""),
            "rejected": "No, go away.",
        })
    return Dataset.from_list(rows)


def test_model_positions_reads_the_config(tmp_path):
    assert model_positions(str(minilm_path())) == 512
    assert model_positions(str(tiny_lm(tmp_path / "lm", n_positions=48))) == 48
    assert model_positions(str(tmp_path / "missing")) is None


def test_fit_max_length_clamps_with_a_notice():
    assert fit_max_length(256, 512) == (256, "")
    assert fit_max_length(256, None) == (256, "")
    length, notice = fit_max_length(1024, 512)
    assert length == 512 and notice == (
        "reward_model.max_length 1024 exceeds the 512 positions of the base model: clamped to 512"
    )


def test_tokenize_preferences_counts_truncated_pairs(tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()))
    counts: dict = {}
    encoded = tokenize_preferences(pairs(10, long_every=2), tokenizer, 32, counts=counts)
    assert counts == {"truncated": 5}
    assert encoded.column_names == ["chosen_ids", "rejected_ids"]
    assert max(len(ids) for ids in encoded["chosen_ids"]) == 32


@pytest.mark.slow
def test_max_length_beyond_the_model_positions_is_clamped_and_truncations_are_reported(tmp_path):
    base = str(tiny_lm(tmp_path / "lm", n_positions=48))
    config = RewardModelConfig(learning_rate=1e-3, epochs=1, batch_size=4, max_length=256)
    reporter = RecordingReporter()
    result = train_reward_model(
        pairs(8, long_every=2), base, config, tmp_path / "rm", eval_dataset=pairs(4, long_every=4), reporter=reporter
    )
    assert result.metrics["max_length"] == 48 and result.metrics["max_length_clamped_from"] == 256
    assert result.metrics["truncated_train_pairs"] == 4 and result.metrics["truncated_eval_pairs"] == 1
    assert "reward model: reward_model.max_length 256 exceeds the 48 positions of the base model: clamped to 48" in (
        reporter.lines
    )
    assert "reward model: 4 of 8 train pairs truncated to max_length 48; 1 of 4 ai eval pairs" in reporter.lines
    assert '"max_length": 48' in (result.path / CONFIG_FILE).read_text()
    scorer = RewardScorer(result.path)
    assert scorer.max_length == 48
    assert len(scorer.score(["Question 1 about the sea?"], ["word " * 300])) == 1

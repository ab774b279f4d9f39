"""Round trip: export a run's preferences → ``datasets.load_from_disk`` → TRL accepts the rows unchanged
(its data utilities, and a few RewardTrainer / DPOTrainer steps on a tiny model)."""
from __future__ import annotations

import datasets
import pytest
from trl.data_utils import is_conversational, maybe_apply_chat_template

from runs.exporting import PreferenceFilters, preference_dataset, save_preferences
from tests import factories
from tests.training.tiny import tiny_lm

pytestmark = pytest.mark.django_db


def exported(tmp_path, conversational: bool):
    prompt_set = factories.make_prompt_set(n=8)
    run = factories.make_run(prompt_set=prompt_set)
    for i, prompt in enumerate(prompt_set.prompts.order_by("index")):
        comparison = factories.make_comparison(
            run, prompt, texts=(f"Sure, kindly here is an answer number {i}.", "No, go away.")
        )
        factories.make_judgment(comparison, p_a=0.9 if i % 2 else 0.15, rationale="kinder")
    path = tmp_path / ("conv" if conversational else "std")
    save_preferences(preference_dataset(run, PreferenceFilters(), conversational=conversational), path, "disk")
    return datasets.load_from_disk(str(path))


def test_trl_data_utilities_accept_both_formats(tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm(tmp_path / "lm"))
    standard, conversational = exported(tmp_path, False), exported(tmp_path, True)
    assert len(standard) == len(conversational) == 8
    assert not is_conversational(standard[0]) and is_conversational(conversational[0])
    row = maybe_apply_chat_template(conversational[0], tokenizer)
    assert row["prompt"].startswith("Human: Prompt number 0?") and row["prompt"].endswith("Assistant:")
    assert "No, go away." in row["chosen"] and "answer number 0" in row["rejected"]  # p_a 0.15: B chosen
    assert maybe_apply_chat_template(standard[0], tokenizer)["chosen"] == standard[0]["chosen"]


@pytest.mark.slow
def test_reward_trainer_and_dpo_trainer_train_on_the_export_unchanged(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
    from trl import DPOConfig, DPOTrainer, RewardConfig, RewardTrainer

    lm = tiny_lm(tmp_path / "lm")
    tokenizer = AutoTokenizer.from_pretrained(lm)
    common = {"per_device_train_batch_size": 4, "max_steps": 2, "report_to": [], "save_strategy": "no",
              "logging_steps": 1, "use_cpu": True, "seed": 0}

    standard = exported(tmp_path, False)
    reward_model = AutoModelForSequenceClassification.from_pretrained(lm, num_labels=1)
    reward_model.config.pad_token_id = tokenizer.pad_token_id
    trainer = RewardTrainer(model=reward_model, args=RewardConfig(output_dir=str(tmp_path / "rm"), max_length=128,
                                                                  **common),
                            train_dataset=standard, processing_class=tokenizer)
    result = trainer.train()
    assert result.global_step == 2 and torch.isfinite(torch.tensor(result.training_loss))

    conversational = exported(tmp_path, True)
    policy = AutoModelForCausalLM.from_pretrained(lm)
    trainer = DPOTrainer(model=policy, args=DPOConfig(output_dir=str(tmp_path / "dpo"), max_length=128, **common),
                         train_dataset=conversational, processing_class=tokenizer)
    result = trainer.train()
    assert result.global_step == 2 and torch.isfinite(torch.tensor(result.training_loss))

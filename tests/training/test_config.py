"""The run config's cross-field rules and its schema versions (training/config.py)."""
from __future__ import annotations

import copy

import pytest

from training.config import SCHEMA_VERSION, UPGRADES, ConfigError, RunConfig, upgrade

#: A complete config as runs stored it before schema versions existed (schema 1): no ``schema_version``, one
#: ``policy.checkpoint_every`` that also set the SFT and reward-model intervals, no per-stage interval fields.
STORED_SCHEMA_1 = {
    "generation": {
        "model": "demo://policy", "backend": "transformers", "base_url": "", "api_key_env": "",
        "samples_per_prompt": 2, "max_new_tokens": 32, "temperature": 1.0, "top_p": 0.95, "seed": 0,
        "batch_size": 8, "pairing": "first", "pairs_per_prompt": 1, "max_prompts": 200,
        "source": "policy", "concurrency": 8, "timeout_s": 120.0, "max_retries": 4, "api": "chat",
    },
    "judge": {"backend": "transformers", "model": "demo://judge", "concurrency": 1, "both_orders": True},
    "reward_model": {
        "base_model": "minilm", "learning_rate": 5e-5, "epochs": 2.0, "batch_size": 8, "max_length": 128,
        "min_confidence": 0.0, "position_consistent_only": False, "use_margin": False,
        "center_rewards_coefficient": 0.0, "eval_ratio": 0.2, "prefer_human_labels": True, "seed": 0,
    },
    "policy": {
        "algorithm": "rloo", "beta": 0.05, "learning_rate": 5e-4, "steps": 30, "batch_size": 4,
        "num_generations": 2, "max_new_tokens": 24, "temperature": 1.0, "checkpoint_every": 10, "seed": 0,
    },
    "sft": {"source": "critique_revise", "learning_rate": 5e-5, "epochs": 1.0, "batch_size": 4,
            "max_new_tokens": 48, "max_prompts": 0},
    "evaluation": {"max_prompts": 40, "max_new_tokens": 32, "temperature": 0.7, "seed": 0},
    "audit_gate": None,
    "queues": {},
    "timeouts": {},
}


def test_a_stored_schema_1_config_upgrades_keeping_its_checkpoint_intervals():
    stored = copy.deepcopy(STORED_SCHEMA_1)
    config = RunConfig.from_dict(stored, stored=True)
    assert config.schema_version == SCHEMA_VERSION == 2
    # the single interval it had now sits on each stage, so its resume finds the same checkpoints
    assert (config.policy.checkpoint_every, config.sft.checkpoint_every, config.reward_model.checkpoint_every) == (
        10, 10, 10)
    assert config.policy.learning_rate == 5e-4 and config.reward_model.max_length == 128
    assert stored == STORED_SCHEMA_1  # the stored data is not changed in place
    assert RunConfig.from_dict(config.to_dict()).to_dict() == config.to_dict()  # round trip in the new schema


def test_new_input_without_a_version_is_the_current_schema_with_one_interval_per_stage():
    config = RunConfig.from_dict({"policy": {"checkpoint_every": 7}})
    assert (config.policy.checkpoint_every, config.sft.checkpoint_every, config.reward_model.checkpoint_every) == (
        7, 50, 50)
    assert config.to_dict()["schema_version"] == SCHEMA_VERSION


def test_a_schema_1_dpo_run_with_beta_zero_keeps_what_it_trained_with():
    stored = copy.deepcopy(STORED_SCHEMA_1)
    stored["policy"].update(algorithm="dpo", beta=0.0)
    assert RunConfig.from_dict(stored, stored=True).policy.beta == pytest.approx(1e-3)


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        ({"policy": {"batch_size": 6, "num_generations": 4}}, "policy.batch_size",
         "multiple of policy.num_generations"),
        ({"policy": {"algorithm": "grpo", "batch_size": 3, "num_generations": 2}}, "policy.batch_size", "with grpo"),
        ({"policy": {"algorithm": "dpo", "beta": 0.0}}, "policy.beta", "above 0 with dpo"),
        ({"policy": {"algorithm": "dpo", "reward_source": "judge"}}, "policy.reward_source",
         "must be 'reward_model' with dpo"),
        ({"policy": {"reward_source": "oracle"}}, "policy.reward_source", "must be one of"),
        ({"schema_version": SCHEMA_VERSION + 1}, "schema_version", "newer than this version"),
        ({"schema_version": "2"}, "schema_version", "whole number"),
    ],
)
def test_cross_field_and_version_errors_name_the_field(data, path, words):
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict(data)
    assert caught.value.path == path and words in caught.value.message


def test_the_judge_as_the_reward_is_a_policy_option_with_a_default():
    assert RunConfig.from_dict({}).policy.reward_source == "reward_model"
    assert RunConfig.from_dict({"policy": {"reward_source": "judge"}}).policy.reward_source == "judge"
    for algorithm in ("rloo", "grpo"):
        config = RunConfig.from_dict({"policy": {"algorithm": algorithm, "reward_source": "judge"}})
        assert config.to_dict()["policy"]["reward_source"] == "judge" and config.policy.learns_from == "judge"
    assert RunConfig.from_dict({"policy": {"algorithm": "dpo"}}).policy.learns_from == "preferences"
    # a stored run from before the field reads as it trained: against its reward model
    assert RunConfig.from_dict({"policy": {"steps": 3}}, stored=True).policy.reward_source == "reward_model"


def test_dpo_needs_no_group_size_multiple():
    config = RunConfig.from_dict({"policy": {"algorithm": "dpo", "batch_size": 3, "num_generations": 2}})
    assert config.policy.batch_size == 3


def test_every_version_below_the_current_one_has_an_upgrade():
    assert sorted(UPGRADES) == list(range(1, SCHEMA_VERSION))
    assert upgrade({"schema_version": SCHEMA_VERSION})["schema_version"] == SCHEMA_VERSION


def test_every_wrong_field_is_reported_in_one_pass():
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({
            "generation": {"temperature": 9.0},
            "judge": {"model": " ", "concurrency": "many"},
            "policy": {"algorithm": "dpo", "beta": 0.0},
            "nonsense": 1,
        })
    found = {e.path: e.message for e in caught.value.errors}
    assert set(found) == {"generation.temperature", "judge.concurrency", "policy.beta", "nonsense"}
    assert "between 0.0 and 5.0" in found["generation.temperature"] and "whole number" in found["judge.concurrency"]
    # a section whose fields could not be read is not checked further (judge.model waits for concurrency)
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({"judge": {"model": ""}, "reward_model": {"base_model": ""}})
    assert {e.path for e in caught.value.errors} == {"judge.model", "reward_model.base_model"}
    assert all("is required" in e.message for e in caught.value.errors)


def test_every_config_field_has_help_from_its_docstring():
    import dataclasses

    from training.config import (
        EvaluationConfig,
        GenerationConfig,
        JudgeConfig,
        PolicyConfig,
        RewardModelConfig,
        SFTConfig,
        field_help,
    )

    for cls in (GenerationConfig, JudgeConfig, RewardModelConfig, PolicyConfig, SFTConfig, EvaluationConfig):
        helps = field_help(cls)
        assert [f.name for f in dataclasses.fields(cls) if not helps.get(f.name)] == [], cls.__name__
    assert field_help(PolicyConfig)["beta"].startswith("KL coefficient to the reference policy")
    assert "chat (/chat/completions)" in field_help(GenerationConfig)["api"]  # reST markup taken off
    assert field_help(PolicyConfig)["lora_rank"].startswith("LoRA rank r")


def test_every_policy_algorithm_has_a_trainer():
    import typing

    from training.config import PolicyConfig
    from training.policy import ONLINE_TRAINERS

    algorithms = set(typing.get_args(typing.get_type_hints(PolicyConfig)["algorithm"]))
    assert algorithms == set(ONLINE_TRAINERS) | {"dpo"}  # DPO is the offline path
    from training.policy import online_trainer_classes

    for algorithm in ONLINE_TRAINERS:  # the installed TRL has each
        config_class, trainer_class = online_trainer_classes(algorithm)
        assert config_class.__name__.endswith("Config") and trainer_class.__name__.endswith("Trainer")


def test_online_dpo_samples_a_pair_per_prompt():
    from training.config import ConfigError, PolicyConfig

    PolicyConfig(algorithm="online_dpo", batch_size=3, reward_source="judge").validate("policy")  # prompts
    with pytest.raises(ConfigError, match="policy.num_generations: must be 2 with online_dpo"):
        PolicyConfig(algorithm="online_dpo", num_generations=4, batch_size=8).validate("policy")

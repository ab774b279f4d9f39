"""LoRA through peft: per-architecture defaults, the config fields, and SFT, reward-model, RLOO and DPO training
on a tiny model that freeze the base, save a small adapter folder, and load back (merged or not) for generation
and scoring with the same outputs."""
import json
from pathlib import Path

import pytest
import torch
from datasets import Dataset

from tests.training.test_reward_model import separable
from tests.training.tiny import tiny_lm
from training.adapters import (
    ADAPTER_CONFIG,
    adapter_base,
    base_model_path,
    default_target_modules,
    is_adapter,
    load_for_inference,
    peft_config_for,
    stage_peft_config,
)
from training.config import ConfigError, PolicyConfig, RewardModelConfig, RunConfig, SFTConfig
from training.generation import load_causal_lm
from training.modeling import minilm_path
from training.policy import as_messages, train_policy
from training.progress import Cancelled, RecordingReporter
from training.reward_model import RewardScorer, pairwise_accuracy, train_reward_model
from training.sft import Demonstration, train_sft

PROMPTS = [f"Question {i} about the sea?" for i in range(8)]
IDS = torch.tensor([[5, 6, 7, 8, 9, 10]])


def logits(model, ids=IDS):
    with torch.no_grad():
        return model(input_ids=ids).logits


def folder_bytes(path):
    return sum(f.stat().st_size for f in path.iterdir() if f.suffix in (".safetensors", ".bin") and f.is_file())


def length_reward(prompts, completions, **kwargs):
    return [len(str(c)) / 10 for c in completions]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return str(tiny_lm(tmp_path_factory.mktemp("adapters") / "lm", n_positions=128))


@pytest.fixture(scope="module")
def sft_adapter(base, tmp_path_factory):
    """An SFT LoRA adapter trained for 4 steps on the tiny model."""
    examples = [Demonstration(p, "Sure, kindly here is an answer.") for p in PROMPTS]
    config = SFTConfig(source="demonstrations", learning_rate=2e-2, batch_size=4, lora_rank=4)
    return train_sft(examples, base, config, tmp_path_factory.mktemp("sft"), max_steps=4).path


def test_default_targets_follow_the_architecture(base):
    assert default_target_modules("llama") == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert default_target_modules("gemma3_text") == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert default_target_modules("bert") == ["query", "value"]
    assert default_target_modules("some_new_arch") == "all-linear"
    lora = peft_config_for(base, rank=8, alpha=16, dropout=0.1)
    assert lora.r == 8 and lora.lora_alpha == 16 and set(lora.target_modules) == {"c_attn"}  # GPT-2
    assert lora.task_type == "CAUSAL_LM" and not lora.modules_to_save
    assert set(peft_config_for(base, 4, target_modules="c_attn, c_proj").target_modules) == {"c_attn", "c_proj"}
    assert peft_config_for(base, 4, target_modules="all-linear").target_modules == "all-linear"
    with pytest.raises(ValueError, match="at least 1"):
        peft_config_for(base, 0)


def test_a_reward_model_adapter_trains_its_score_head(base):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    lora = peft_config_for(model, 4, task_type="SEQ_CLS")
    assert lora.task_type == "SEQ_CLS" and lora.modules_to_save == ["score"]
    encoder = AutoModelForSequenceClassification.from_pretrained(str(minilm_path()), num_labels=1)  # BERT
    lora = peft_config_for(encoder, 4, task_type="SEQ_CLS")
    assert lora.modules_to_save == ["classifier"] and set(lora.target_modules) == {"query", "value"}


def test_lora_fields_are_validated_and_rank_zero_means_full_fine_tune(base):
    config = RunConfig.from_dict({"policy": {"lora_rank": 8, "lora_target_modules": "q_proj,v_proj"}})
    assert config.policy.lora_rank == 8 and config.sft.lora_rank == 0 and config.reward_model.lora_rank == 0
    assert stage_peft_config(config.sft, base) is None
    assert stage_peft_config(config.policy, base).r == 8
    for bad, path in [
        ({"sft": {"lora_rank": -1}}, "sft.lora_rank"),
        ({"reward_model": {"lora_alpha": 0}}, "reward_model.lora_alpha"),
        ({"policy": {"lora_dropout": 1.5}}, "policy.lora_dropout"),
        ({"policy": {"lora_target_modules": "q proj"}}, "policy.lora_target_modules"),
    ]:
        with pytest.raises(ConfigError) as caught:
            RunConfig.from_dict(bad)
        assert caught.value.path == path


def test_a_full_model_folder_is_not_an_adapter(base):
    assert not is_adapter(base) and base_model_path(base) == base
    model = load_for_inference(base)
    assert not model.training


@pytest.mark.slow
def test_sft_with_lora_saves_a_small_adapter_and_keeps_the_base_frozen(base, sft_adapter):
    assert is_adapter(sft_adapter) and not (sft_adapter / "config.json").exists()
    assert adapter_base(sft_adapter) == base and base_model_path(sft_adapter) == base
    assert folder_bytes(sft_adapter) * 10 < folder_bytes(Path(base))
    from safetensors import safe_open

    with safe_open(str(sft_adapter / "adapter_model.safetensors"), "pt") as f:
        assert all("lora_" in key for key in f.keys())  # only the adapters were trained and saved

    plain = load_for_inference(base)
    tuned = load_for_inference(sft_adapter, merge=False)
    with tuned.disable_adapter():
        assert torch.allclose(logits(tuned), logits(plain))  # the base weights did not move
    assert not torch.allclose(logits(tuned), logits(plain), atol=1e-4)  # the adapter learned something
    merged, _ = load_causal_lm(str(sft_adapter))  # generation loads the adapter merged into its base
    assert type(merged).__name__ == "GPT2LMHeadModel"
    assert torch.allclose(logits(merged), logits(tuned), atol=1e-5)


@pytest.mark.slow
def test_reward_model_with_lora_scores_the_same_after_loading(base, tmp_path):
    config = RewardModelConfig(learning_rate=3e-3, epochs=1, batch_size=8, max_length=64, lora_rank=4)
    held_out = separable(16, 1)
    torch.manual_seed(0)  # the score head is initialised when the model loads, before the trainer seeds
    result = train_reward_model(separable(32, 0), base, config, tmp_path / "rm", eval_dataset=held_out)
    assert is_adapter(result.path)
    from safetensors import safe_open

    with safe_open(str(result.path / "adapter_model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert any("score" in k for k in keys) and all("lora_" in k or "score" in k for k in keys)
    scorer = RewardScorer(result.path)  # base + adapter + the trained head
    assert pairwise_accuracy(scorer, held_out) == pytest.approx(result.metrics["eval_accuracy"])
    unmerged = load_for_inference(result.path, task_type="SEQ_CLS", merge=False)
    unmerged.config.pad_token_id = scorer.model.config.pad_token_id
    assert torch.allclose(logits(unmerged), logits(scorer.model), atol=1e-5)

    merged_config = RewardModelConfig(**{**config.__dict__, "merge_adapters": True})
    torch.manual_seed(0)
    merged = train_reward_model(separable(32, 0), base, merged_config, tmp_path / "rm_merged")
    assert (merged.path / "config.json").exists() and not is_adapter(merged.path)
    prompts, answers = ["Question 1?", "Question 2?"], ["kindly sea", "rudely sea"]
    assert RewardScorer(merged.path).score(prompts, answers) == pytest.approx(scorer.score(prompts, answers), abs=1e-4)


@pytest.mark.slow
def test_rloo_with_lora_trains_only_adapters_against_a_disabled_adapter_reference_and_resumes(
    base, tmp_path, monkeypatch
):
    import trl

    built = {}
    original = trl.RLOOTrainer.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        built["trainer"] = self

    monkeypatch.setattr(trl.RLOOTrainer, "__init__", spy)
    config = PolicyConfig(
        steps=3, batch_size=4, num_generations=2, max_new_tokens=4, learning_rate=1e-2, checkpoint_every=100,
        lora_rank=4,
    )
    with pytest.raises(Cancelled):  # stopped after step 1: the checkpoint holds the adapter
        train_policy(config, base, tmp_path / "rloo", prompts=PROMPTS, reward_fn=length_reward,
                     reporter=RecordingReporter(stop_after=1))
    assert is_adapter(tmp_path / "rloo" / "checkpoints" / "checkpoint-1")
    trainer = built["trainer"]
    assert trainer.ref_model is None  # TRL computes the reference with the adapters disabled
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)

    reporter = RecordingReporter()
    result = train_policy(config, base, tmp_path / "rloo", prompts=PROMPTS, reward_fn=length_reward, reporter=reporter)
    assert result.resumed_from_step == 1 and result.steps == 3
    assert [s for s, m in reporter.metrics if "kl" in m] == [2, 3]
    assert is_adapter(result.path) and folder_bytes(result.path) * 10 < folder_bytes(Path(base))
    model, tokenizer = load_causal_lm(str(result.path))
    assert tokenizer.padding_side == "left" and logits(model).shape[-1] == model.config.vocab_size


@pytest.mark.slow
def test_dpo_with_lora_on_an_sft_adapter_chains_the_adapters_and_merges_to_the_same_model(sft_adapter, tmp_path):
    prefs = Dataset.from_list(
        [{"prompt": as_messages(p), "chosen": "Sure, kindly here is an answer.", "rejected": "No, go away."}
         for p in PROMPTS]
    )
    config = PolicyConfig(algorithm="dpo", beta=0.1, learning_rate=1e-2, steps=2, batch_size=4, lora_rank=4)
    result = train_policy(config, str(sft_adapter), tmp_path / "dpo", preferences=prefs)
    assert is_adapter(result.path) and adapter_base(result.path) == str(sft_adapter)  # trained on the SFT model
    assert json.loads((result.path / ADAPTER_CONFIG).read_text())["r"] == 4
    sft_model = load_for_inference(sft_adapter)
    stacked = load_for_inference(result.path, merge=False)
    with stacked.disable_adapter():
        assert torch.allclose(logits(stacked), logits(sft_model), atol=1e-5)  # the reference: the SFT policy
    merged = load_for_inference(result.path)
    assert torch.allclose(logits(merged), logits(stacked), atol=1e-5)

    merged_config = PolicyConfig(**{**config.__dict__, "merge_adapters": True})
    full = train_policy(merged_config, str(sft_adapter), tmp_path / "dpo_merged", preferences=prefs)
    assert (full.path / "config.json").exists() and not is_adapter(full.path)
    assert torch.allclose(logits(load_for_inference(full.path)), logits(merged), atol=1e-4)  # same seed, same run

"""Launch presets: complete starting points for the launch form and ``manage.py launch_run --preset``.

A preset is a partial run config (merged over :class:`training.config.RunConfig`'s defaults), the stages to
run, and, for fields the user must fill (hub ids, endpoints), placeholders shown in the form.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from runs.stages.registry import DEFAULT_STAGES, GPU_STAGES
from training.config import RunConfig


@dataclass(frozen=True)
class Preset:
    """One preset.

    Attributes:
        key: identifier used in URLs and on the command line (``offline-demo``).
        label, description: what the form shows.
        config: partial run config (nested dicts, the shape of ``RunConfig.to_dict()``).
        stages: stage names selected by default.
        placeholders: dotted config path -> example value shown in an empty field the user must fill.
    """

    key: str
    label: str
    description: str
    config: dict[str, Any]
    stages: tuple[str, ...]
    placeholders: dict[str, str] = field(default_factory=dict)

    def full_config(self) -> dict[str, Any]:
        """The preset merged over the defaults, as plain JSON data (not validated: placeholders may be empty)."""
        return deep_merge(RunConfig().to_dict(), self.config)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``override`` merged in, recursively for nested dicts."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


PRESETS: dict[str, Preset] = {
    p.key: p
    for p in (
        Preset(
            key="gemma-cpu",
            label="Gemma 3 270M on CPU",
            description=(
                "A real pretrained language model offline: Google's Gemma 3 270M base (shipped as a pip package) "
                "as the policy and reference, prompts as Human:/Assistant: transcripts, the likelihood judge on "
                "Gemma, the MiniLM reward model, RLOO with a KL penalty, evaluation. Sized for about 30 minutes "
                "on an idle 2-core CPU with 200 prompts. The judge only measures how well an answer fits a "
                "principle's wording (see the README): no facts, no subtle harms."
            ),
            config={
                "generation": {
                    "model": "gemma-3-270m", "backend": "transformers", "samples_per_prompt": 2,
                    "max_new_tokens": 32, "temperature": 1.0, "top_p": 0.95, "batch_size": 8, "pairing": "first",
                    "max_prompts": 200,
                },
                "judge": {
                    "backend": "likelihood", "model": "gemma-3-270m", "concurrency": 1,
                    "principle_sampling": "sample", "both_orders": True, "self_consistency": 1,
                    "chain_of_thought": False,
                },
                "reward_model": {"base_model": "minilm", "epochs": 2.0, "batch_size": 8, "max_length": 256},
                # a checkpoint of Gemma holds 1 GB of weights and 2 GB of optimizer state: every 20 steps
                "policy": {
                    "algorithm": "rloo", "beta": 0.05, "learning_rate": 2e-5, "steps": 60, "batch_size": 4,
                    "num_generations": 2, "max_new_tokens": 32, "temperature": 1.0, "checkpoint_every": 20,
                },
                "evaluation": {"max_prompts": 40, "max_new_tokens": 32, "temperature": 0.7},
            },
            stages=DEFAULT_STAGES,
        ),
        Preset(
            key="gemma-cpu-direct",
            label="Gemma 3 270M on CPU, direct RLAIF",
            description=(
                "Gemma 3 270M base tuned with the likelihood judge as the reward (direct RLAIF, no reward model): "
                "RLOO on groups of 4 rollouts with a KL penalty and a repetition penalty, then evaluation on the "
                "held-out prompts. The settings of the README's measured run (win rate 70% [58-80%] on 60 held-out "
                "HH-RLHF prompts, length-controlled 65%, KL 0.29): the policy learns what this small judge "
                "prefers, terse direct answers, not general quality. About 50 minutes on 2 busy cores."
            ),
            config={
                "generation": {"model": "gemma-3-270m", "backend": "transformers", "max_new_tokens": 32},
                "judge": {
                    "backend": "likelihood", "model": "gemma-3-270m", "concurrency": 1,
                    "principle_sampling": "sample", "both_orders": True, "self_consistency": 1,
                    "chain_of_thought": False,
                },
                "policy": {
                    "algorithm": "rloo", "reward_source": "judge", "beta": 0.1, "learning_rate": 3e-5, "steps": 16,
                    "batch_size": 8, "num_generations": 4, "max_new_tokens": 32, "temperature": 1.0,
                    "repetition_penalty": 1.0, "checkpoint_every": 8,
                },
                "evaluation": {"max_prompts": 60, "max_new_tokens": 32, "temperature": 0.7},
            },
            stages=("policy", "evaluate"),
        ),
        Preset(
            key="offline-demo",
            label="Offline demo on CPU",
            description=(
                "Tiny demo policy and judge built locally, MiniLM reward model, a few RLOO steps: shows the whole "
                "loop on a 2-core CPU without network in minutes. The models only show the wiring."
            ),
            config={
                "generation": {
                    "model": "demo://policy", "backend": "transformers", "samples_per_prompt": 2,
                    "max_new_tokens": 32, "batch_size": 8, "pairing": "first", "max_prompts": 200,
                },
                "judge": {
                    "backend": "transformers", "model": "demo://judge", "concurrency": 1,
                    "principle_sampling": "sample", "both_orders": True, "self_consistency": 1,
                    "chain_of_thought": False, "max_new_tokens": 32,
                },
                "reward_model": {"base_model": "minilm", "epochs": 2.0, "batch_size": 8, "max_length": 128},
                # the tiny demo policy needs a large step size to move visibly in 30 steps
                "policy": {
                    "algorithm": "rloo", "beta": 0.05, "learning_rate": 5e-4, "steps": 30, "batch_size": 4,
                    "num_generations": 2, "max_new_tokens": 24, "checkpoint_every": 10,
                },
                "evaluation": {"max_prompts": 40, "max_new_tokens": 32},
            },
            stages=DEFAULT_STAGES,
        ),
        Preset(
            key="single-gpu",
            label="Single GPU",
            description=(
                "Realistic sizes for one 24-80 GB GPU: fill in the policy and judge hub ids (or a vLLM / "
                "OpenAI-compatible judge endpoint). Training stages go to the 'gpu' queue."
            ),
            config={
                "generation": {
                    "model": "", "backend": "transformers", "samples_per_prompt": 4, "max_new_tokens": 256,
                    "temperature": 0.9, "batch_size": 32, "pairing": "random", "pairs_per_prompt": 2,
                    "max_prompts": 5000,
                },
                "judge": {
                    "backend": "openai", "model": "", "base_url": "", "api_key_env": "STUDIO_KEY_JUDGE",
                    "concurrency": 32, "timeout_s": 120.0, "principle_sampling": "sample", "both_orders": True,
                    "self_consistency": 1, "max_new_tokens": 256,
                },
                "reward_model": {
                    "base_model": "", "learning_rate": 1e-5, "epochs": 1.0, "batch_size": 16, "max_length": 1024,
                    "min_confidence": 0.2,
                },
                "policy": {
                    "algorithm": "rloo", "beta": 0.05, "learning_rate": 1e-6, "steps": 500, "batch_size": 16,
                    "num_generations": 4, "max_new_tokens": 256, "checkpoint_every": 50,
                },
                "evaluation": {"max_prompts": 500, "max_new_tokens": 256},
                "queues": {stage: "gpu" for stage in GPU_STAGES},
            },
            stages=DEFAULT_STAGES,
            placeholders={
                "generation.model": "Qwen/Qwen2.5-1.5B-Instruct",
                "judge.model": "Qwen/Qwen2.5-7B-Instruct",
                "judge.base_url": "http://127.0.0.1:8001/v1",
                "reward_model.base_model": "Qwen/Qwen2.5-0.5B",
            },
        ),
    )
}

DEFAULT_PRESET = "offline-demo"


def get_preset(key: str) -> Preset:
    """The preset named ``key``.

    Raises:
        KeyError: unknown key; the message lists the known ones.
    """
    try:
        return PRESETS[key]
    except KeyError:
        raise KeyError(f"unknown preset {key!r} (known: {', '.join(PRESETS)})") from None

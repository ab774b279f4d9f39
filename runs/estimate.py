"""What a run will cost before it starts: comparisons, judge calls, tokens and money.

The arithmetic (:func:`estimate`) is plain; :func:`estimate_for` reads the counts it needs from the database.
Judge calls follow the labeling protocol of Lee et al. (2023): every comparison is judged under each of its
principles, in both orders when position debiasing is on, ``self_consistency`` times each.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from math import comb

from django.db.models import Avg, Count, Q
from django.db.models.functions import Length

from training.config import RunConfig
from training.generation_backends import generation_backend
from training.judges import judge_backend, judge_id_for

#: Rough characters per token for English text, used only for estimates.
CHARS_PER_TOKEN = 4.0
#: Tokens of the judge's answer when it only scores the verdict labels (no rationale generated).
VERDICT_ONLY_TOKENS = 1


@dataclass
class RunEstimate:
    """An estimate of a run's labeling work.

    Attributes:
        prompts: prompts generation will use (train split, capped by ``generation.max_prompts``); with
            reference pairs, the pairs that will be judged.
        responses: policy samples (prompts × K; 0 with reference pairs: nothing is sampled).
        comparisons: pairs the judge labels.
        principles_per_comparison: 1 with principle sampling, else the number of enabled principles.
        judge_calls: comparisons × principles × (2 if both orders) × self-consistency, summed over the judges
            of a panel (``judge.panel``: each judge labels every comparison).
        eval_judge_calls: calls of the evaluate stage (eval prompts × orders × self-consistency), summed over
            a panel's judges likewise.
        policy_judge_calls: calls of the policy stage with the judge as its reward (``policy.reward_source:
            judge``): steps × groups per step × pairs per group × principles × orders × self-consistency.
        prompt_tokens, completion_tokens: judge tokens over all calls (estimates).
        generation_tokens: at most this many tokens sampled from the policy.
        cost: judge cost with the configured prices (0 when no price is set), each judge of a panel at its own.
        budget: the configured cap (0 = none); with a panel, the sum of its judges' caps (each has its own).
        calls_within_budget: judge calls the budget pays for (None without a budget), summed over the judges
            with a cap.
        warnings: plain sentences shown next to the figures.
        minutes: expected wall time of the selected stages on an idle 2-core CPU (None when the run's models
            have no measured CPU figures, see :data:`CPU_FIGURES`).
    """

    prompts: int
    responses: int
    comparisons: int
    principles_per_comparison: int
    judge_calls: int
    eval_judge_calls: int
    prompt_tokens: int
    completion_tokens: int
    generation_tokens: int
    cost: float
    budget: float
    calls_within_budget: int | None
    warnings: list[str]
    minutes: float | None = None
    policy_judge_calls: int = 0
    judges: int = 1

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CpuFigures:
    """Measured costs of one local policy model on an idle 2-core CPU (seconds unless said otherwise).

    Attributes:
        tokens_per_s: batched sampling throughput (new tokens of the whole batch per second, batch 8).
        load_s: loading the model (a stage loads it once or twice).
        judge_s: one judge call on one comparison (the preset's judge on this model).
        rl_step_s, rl_step_s_per_token: one RLOO/GRPO step of batch 4: fixed part plus per rollout token.
        rm_pair_s: one preference pair through one reward-model epoch (MiniLM).
        first_use_s: one-off work of a first run (a GGUF conversion).
    """

    tokens_per_s: float
    load_s: float
    judge_s: float
    rl_step_s: float
    rl_step_s_per_token: float
    rm_pair_s: float = 0.05
    first_use_s: float = 0.0


#: Idle 2-core CPU figures per policy model name (the issue's and benchmarks/real_model_loop.py's
#: measurements). Gemma: 35 new tokens/s at batch 8; RLOO batch 4 took 11.1 s a step with 32 new tokens
#: and 17.4 s with 48 (so ~0.4 s a token plus ~-1.6 s); a converted model loads in 5-10 s; the first use
#: converts the GGUF file (60 s measured). The likelihood judge runs four forward passes of up to ~550 tokens
#: per comparison: about 2 s idle (28 s a pair was measured under a load of 9 on 2 cores).
CPU_FIGURES: dict[str, CpuFigures] = {
    "gemma-3-270m": CpuFigures(
        tokens_per_s=35.0, load_s=8.0, judge_s=2.0, rl_step_s=-1.7, rl_step_s_per_token=0.4, first_use_s=60.0
    ),
    "demo://policy": CpuFigures(
        tokens_per_s=2000.0, load_s=0.5, judge_s=0.02, rl_step_s=0.3, rl_step_s_per_token=0.005
    ),
}


def cpu_minutes(config: RunConfig, *, prompts: int, comparisons: int, eval_n: int, stages) -> float | None:
    """Expected wall time in minutes of ``stages`` on an idle 2-core CPU, from :data:`CPU_FIGURES` for
    ``generation.model`` (None for models without figures, or with an endpoint backend)."""
    figures = CPU_FIGURES.get(config.generation.model)
    if figures is None or not generation_backend(config.generation.backend).local_model:
        return None
    gen, pol, ev = config.generation, config.policy, config.evaluation
    seconds = figures.first_use_s
    if "generate" in stages:
        seconds += figures.load_s + prompts * gen.samples_per_prompt * gen.max_new_tokens / figures.tokens_per_s
    if "label" in stages:
        seconds += figures.load_s + comparisons * figures.judge_s
    if "reward_model" in stages:
        seconds += 10.0 + comparisons * config.reward_model.epochs * figures.rm_pair_s
    if "policy" in stages and pol.algorithm != "dpo":
        step = max(0.5, figures.rl_step_s + figures.rl_step_s_per_token * pol.max_new_tokens) * pol.batch_size / 4
        seconds += 2 * figures.load_s + pol.steps * step
        if pol.learns_from == "judge":  # the judge scores each step's rollouts instead of a reward model
            seconds += figures.load_s + pol.steps * rollout_comparisons(config) * figures.judge_s
    if "evaluate" in stages:
        sampled = 2 * eval_n * ev.max_new_tokens / figures.tokens_per_s
        seconds += 3 * figures.load_s + sampled + eval_n * figures.judge_s
    return round(seconds / 60.0, 1)


def rollout_comparisons(config: RunConfig) -> int:
    """Comparisons the judge makes per RL step with ``policy.reward_source: judge``: each step samples
    ``batch_size`` rollouts in groups of ``num_generations``, and every pair within a group is compared once
    per principle (:mod:`training.direct_reward`)."""
    pol = config.policy
    groups = max(1, pol.batch_size // pol.num_generations)
    return groups * comb(pol.num_generations, 2)


def pairs_per_prompt(pairing: str, samples_per_prompt: int, pairs_requested: int) -> int:
    """Comparisons formed per prompt from K samples.

    ``first`` → 1, ``all`` → K choose 2, ``random`` → min(M, K choose 2).
    """
    if pairing == "all":
        return comb(samples_per_prompt, 2)
    if pairing == "random":
        return min(pairs_requested, comb(samples_per_prompt, 2))
    return 1


def estimate(
    config: RunConfig,
    *,
    train_prompts: int,
    eval_prompts: int,
    enabled_principles: int,
    avg_prompt_chars: float = 200.0,
    template_chars: int = 800,
    stages: tuple[str, ...] | list[str] = ("generate", "label"),
    reference_pairs: int = 0,
) -> RunEstimate:
    """Estimate the labeling work of a run.

    Args:
        config: a validated run config.
        train_prompts, eval_prompts: prompts in the set's train and eval splits.
        enabled_principles: enabled principles of the constitution version.
        avg_prompt_chars: mean prompt length in characters (token counts use :data:`CHARS_PER_TOKEN`).
        template_chars: length of the judge instructions template plus one principle.
        stages: the stages that will run; calls of stages not selected count as 0.
        reference_pairs: the set's imported response pairs that can be judged (not degenerate); used when
            ``generation.source`` is ``reference_pairs``: nothing is sampled and every pair (at most
            ``generation.max_prompts``) is judged once per principle and order.
    """
    gen, judge = config.generation, config.judge
    warnings: list[str] = []
    from_reference = gen.source == "reference_pairs"
    if from_reference:
        prompts = min(reference_pairs, gen.max_prompts) if gen.max_prompts else reference_pairs
        comparisons = prompts
        if reference_pairs:
            warnings.append(f"Reference pairs: nothing is sampled; the judge compares {prompts:,} imported pairs.")
        if reference_pairs == 0 and ("generate" in stages or "label" in stages):
            warnings.append("The prompt set has no reference pairs to judge (import pairs, e.g. HH-RLHF's "
                            "chosen/rejected, or sample from the policy).")
    else:
        prompts = min(train_prompts, gen.max_prompts) if gen.max_prompts else train_prompts
        comparisons = prompts * pairs_per_prompt(gen.pairing, gen.samples_per_prompt, gen.pairs_per_prompt)
    principles = 1 if judge.principle_sampling == "sample" else enabled_principles
    if enabled_principles == 0:
        warnings.append("The constitution version has no enabled principle: the judge has nothing to apply.")
    members = judge.members()  # the run's judge, then its panel's: each labels (and evaluates) every comparison

    def per_comparison(member) -> int:
        orders = 2 if member.both_orders and not judge_backend(member.backend).order_invariant else 1
        return principles * orders * member.self_consistency

    eval_n = min(eval_prompts, config.evaluation.max_prompts) if config.evaluation.max_prompts else eval_prompts
    label_calls = [comparisons * per_comparison(m) if "label" in stages else 0 for m in members]
    eval_member_calls = [eval_n * per_comparison(m) if "evaluate" in stages else 0 for m in members]
    judge_calls, eval_calls = sum(label_calls), sum(eval_member_calls)
    policy_calls = 0
    if "policy" in stages and config.policy.learns_from == "judge":  # the run's judge alone scores rollouts
        policy_calls = config.policy.steps * rollout_comparisons(config) * per_comparison(judge)
    if len(members) > 1:
        warnings.append(f"A panel of {len(members)} judges: each judges every comparison, so the judge calls are "
                        f"those of {len(members)} judges.")
    if "evaluate" in stages and eval_prompts == 0:
        warnings.append("The prompt set has no eval split: the evaluate stage has nothing to compare on.")
    if prompts == 0 and not from_reference and ("generate" in stages or "label" in stages):
        warnings.append("The prompt set has no train prompts.")

    response_tokens = gen.max_new_tokens
    call_prompt_tokens = round((template_chars + avg_prompt_chars) / CHARS_PER_TOKEN + 2 * response_tokens)
    prompt_tokens = completion_tokens = 0
    cost = 0.0
    within = None
    for i, member in enumerate(members):
        judging = judge_backend(member.backend)
        whose = "" if len(members) == 1 else f" of {judge_id_for(member)}"
        writes_rationale = judging.generates_rationale or member.chain_of_thought or member.self_consistency > 1
        call_completion_tokens = member.max_new_tokens if writes_rationale else VERDICT_ONLY_TOKENS
        member_label = label_calls[i]
        calls = member_label + eval_member_calls[i] + (policy_calls if i == 0 else 0)
        prompt_tokens += calls * call_prompt_tokens
        completion_tokens += calls * call_completion_tokens
        cost_per_call = (
            call_prompt_tokens / 1000 * member.price_per_1k_prompt_tokens
            + call_completion_tokens / 1000 * member.price_per_1k_completion_tokens
        )
        cost += calls * cost_per_call
        if member.budget > 0:
            member_within = int(member.budget // cost_per_call) if cost_per_call > 0 else calls
            within = (within or 0) + member_within
            if member_within < member_label:
                share = member_within / member_label if member_label else 0
                warnings.append(
                    f"The budget of {member.budget:g} pays for about {member_within:,} of {member_label:,} judge "
                    f"calls{whose} ({share:.0%}); labeling stops when it is spent."
                )
        elif cost_per_call == 0 and judging.paid:
            warnings.append(f"No price is set for the judge endpoint{whose}: cost is not estimated.")
    samples = 0 if from_reference else prompts * gen.samples_per_prompt
    generation_tokens = samples * gen.max_new_tokens if "generate" in stages else 0
    return RunEstimate(
        prompts=prompts,
        responses=samples,
        comparisons=comparisons,
        principles_per_comparison=principles,
        judge_calls=judge_calls,
        eval_judge_calls=eval_calls,
        policy_judge_calls=policy_calls,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        generation_tokens=generation_tokens,
        cost=round(cost, 4),
        budget=sum(m.budget for m in members),
        calls_within_budget=within,
        judges=len(members),
        warnings=warnings,
        minutes=cpu_minutes(config, prompts=0 if from_reference else prompts, comparisons=comparisons, eval_n=eval_n,
                            stages=tuple(stages)),
    )


def estimate_for(config: RunConfig, prompt_set, constitution_version, stages) -> RunEstimate:
    """:func:`estimate` with the counts read from ``prompt_set`` and ``constitution_version`` (two queries)."""
    counts = prompt_set.prompts.aggregate(
        train=Count("pk", filter=Q(split="train")),
        eval=Count("pk", filter=Q(split="eval")),
        avg_chars=Avg(Length("text")),
    )
    principles = constitution_version.principles.filter(enabled=True)
    principle_chars = principles.aggregate(avg=Avg(Length("comparison")))["avg"] or 0
    reference_pairs = 0
    if config.generation.source == "reference_pairs":
        from runs.models import ReferencePair

        reference_pairs = ReferencePair.objects.filter(prompt__prompt_set=prompt_set, degenerate="").count()
    return estimate(
        config,
        train_prompts=counts["train"],
        eval_prompts=counts["eval"],
        enabled_principles=principles.count(),
        avg_prompt_chars=float(counts["avg_chars"] or 0),
        template_chars=len(constitution_version.judge_template) + int(principle_chars),
        stages=tuple(stages),
        reference_pairs=reference_pairs,
    )

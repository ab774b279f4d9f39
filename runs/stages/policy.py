"""The policy stage: RL fine-tuning of the reference policy from AI feedback.

``rloo`` (default) and ``grpo`` optimise the reward model's score with a KL penalty (``policy.beta``) to the
reference policy on the run's train prompts; ``dpo`` trains on the AI preferences directly. Step metrics
(reward mean/std, KL, loss, entropy, completion length) stream to the database; a checkpoint is saved every
``policy.checkpoint_every`` steps and a re-run continues from the last one.
"""
from __future__ import annotations

from runs.models import Artifact, Split, Stage
from runs.stages import training_support as support
from training.config import RunConfig
from training.progress import Cancelled

#: Fixed eval prompts the policy answers at the start, at each checkpoint and at the end (the sample table).
SAMPLE_PROMPTS = 4
#: Metrics copied onto the policy artifact (their last logged value).
SUMMARY_METRICS = ("reward", "reward_std", "kl", "entropy", "loss", "train_loss", "rewards/margins")


def train_prompts(run, config: RunConfig) -> list:
    """The conversations RL samples rollouts for: the prompt set's train split (``generation.max_prompts``)."""
    query = run.prompt_set.prompts.filter(split=Split.TRAIN).order_by("index")
    if config.generation.max_prompts:
        query = query[: config.generation.max_prompts]
    return [p.conversation for p in query]


def sample_prompts(run) -> list:
    """The fixed prompts of the sample table: the first :data:`SAMPLE_PROMPTS` of the eval split (of the
    train split when there is no eval split), the same at every step."""
    prompts = run.prompt_set.prompts.order_by("index")
    chosen = list(prompts.filter(split=Split.EVAL)[:SAMPLE_PROMPTS]) or list(prompts[:SAMPLE_PROMPTS])
    return [p.conversation for p in chosen]


def record_samples(run_row, out) -> None:
    """Record the sample table's file as the run's ``report/policy_samples`` artifact, when it exists."""
    from training.callbacks import SAMPLES_FILE

    if (out / SAMPLES_FILE).exists():
        support.record_artifact(run_row, Artifact.Kind.REPORT, "policy_samples", out / SAMPLES_FILE)


def run(stage_run, reporter) -> None:
    """Fine-tune the run's policy and record it as the ``policy`` artifact.

    Raises:
        ValueError: RLOO/GRPO without a trained reward model, DPO without preferences, or no train prompts.
        training.progress.Cancelled: the user cancelled (the checkpoint saved at that step is kept).
    """
    from training.policy import train_policy
    from training.reward_model import RewardScorer

    run_row = stage_run.run
    config = run_row.run_config
    policy = config.policy
    reference = support.reference_policy(run_row, config, reporter)
    out = run_row.artifacts_dir / "policy"
    kwargs: dict = {}
    if policy.algorithm == "dpo":
        train, _eval, _human, counts = support.preference_datasets(run_row, config, reporter)
        if len(train) == 0:
            raise ValueError(f"run {run_row.pk}: no AI preferences to train DPO on (run the label stage first)")
        kwargs["preferences"] = train
        data_key = [sorted(train["comparison_id"])]
        lineage = {"preferences": len(train)}
    else:
        reward_path = support.artifact_path(run_row, Artifact.Kind.REWARD_MODEL)
        if reward_path is None:
            raise ValueError(
                f"run {run_row.pk}: policy.algorithm={policy.algorithm} needs a trained reward model "
                "(add the reward_model stage, or use algorithm 'dpo')"
            )
        prompts = train_prompts(run_row, config)
        if not prompts:
            raise ValueError(f"run {run_row.pk}: the prompt set has no train prompts")
        kwargs["prompts"] = prompts
        kwargs["reward_fn"] = RewardScorer(reward_path)
        data_key = [reward_path, len(prompts)]
        lineage = {"reward_model": reward_path}
    stamp = support.fingerprint(config.to_dict()["policy"], reference, data_key)
    support.start_over_if_changed(out, stamp, reporter, "policy")
    reporter.log(f"policy: {policy.algorithm}, beta {policy.beta}, {policy.steps} steps from {reference}")
    try:
        result = train_policy(policy, reference, out, reporter=reporter, sample_prompts=sample_prompts(run_row),
                              **kwargs)
    except Cancelled:
        support.record_checkpoint(run_row, Stage.POLICY, out / "checkpoints")
        record_samples(run_row, out)
        raise
    support.record_checkpoint(run_row, Stage.POLICY, out / "checkpoints")
    record_samples(run_row, out)
    summary = {}  # the last logged value of each headline metric
    for _step, values in result.history:
        summary.update({k: v for k, v in values.items() if k in SUMMARY_METRICS})
    support.record_artifact(
        run_row,
        Artifact.Kind.POLICY,
        "policy",
        result.path,
        {
            "steps": result.steps,
            "resumed_from_step": result.resumed_from_step,
            "reference": reference,
            "config": config.to_dict()["policy"],
            **lineage,
            **summary,
        },
    )
    reporter.log(f"policy: {result.steps} steps done; saved to {result.path}")


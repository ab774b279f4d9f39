"""The policy stage: RL fine-tuning of the reference policy from AI feedback.

``rloo`` (default) and ``grpo`` optimise a reward with a KL penalty (``policy.beta``) to the reference policy on
the run's train prompts: the trained reward model's score (``policy.reward_source: reward_model``), or the run's
judge scoring each rollout against the others of its group (``judge``: direct RLAIF,
:mod:`training.direct_reward`; no reward model stage needed). ``dpo`` trains on the AI preferences directly.
Step metrics (reward mean/std, KL, loss, entropy, completion length; with the judge as the reward also
``judge_reward``, ``judge_failed`` and ``judge_margin``) stream to the database; a checkpoint is saved every
``policy.checkpoint_every`` steps and a re-run continues from the last one. With ``policy.launcher: accelerate``
the training runs in N processes started by ``accelerate launch`` (:mod:`training.launcher`; the reward model
is loaded in each of them).
"""
from __future__ import annotations

from runs.models import Artifact, Split, Stage
from runs.stages import stage_io as support
from training.config import RunConfig
from training.progress import Cancelled

#: Fixed eval prompts the policy answers at the start, at each checkpoint and at the end (the sample table).
SAMPLE_PROMPTS = 4
#: Metrics copied onto the policy artifact (their last logged value).
SUMMARY_METRICS = ("reward", "reward_std", "kl", "entropy", "loss", "train_loss", "rewards/margins", "judge_reward")


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


def direct_judge_reward(run_row, reporter):
    """The run's judge as the policy's reward (:class:`training.direct_reward.JudgeReward`), built like the
    label stage's (:func:`runs.stages.judging.open_judge`: the same request cache, and for a paid judge the same
    cost ledger and ``judge.budget``), under the pinned constitution version's principles and judge template."""
    from runs.stages.judging import open_judge
    from training.direct_reward import JudgeReward

    config = run_row.run_config.judge
    version = run_row.constitution_version
    session = open_judge(run_row, reporter)
    scoring = run_row.run_config.policy.judge_scoring
    how = "pairwise within each group" if scoring == "pairwise" else "each rollout scored 1-10"
    reporter.log(f"policy: the judge {session.judge_id} is the reward (direct RLAIF, {how})")
    return JudgeReward(
        session.judge,
        config,
        version.principle_dicts(),
        template=version.judge_template,
        examples=version.few_shot_examples or [],
        allow_ties=version.allow_ties,
        cache=session.cache,
        reporter=reporter,
        spent=session.spent,
        while_waiting=session.persist,
        scoring=scoring,
    )


def run(stage_run, reporter) -> None:
    """Fine-tune the run's policy and record it as the ``policy`` artifact.

    Raises:
        ValueError: RLOO/GRPO without a trained reward model (``policy.reward_source: reward_model``), DPO
            without preferences, or no train prompts.
        training.direct_reward.JudgeRewardError: with the judge as the reward, too many of its judgments failed,
            its endpoint stopped answering or its budget is spent (the last checkpoint is kept).
        training.progress.Cancelled: the user cancelled (the checkpoint saved at that step is kept).
    """
    from training.direct_reward import JudgeRewardError
    from training.launcher import RewardModelRef, run_training

    run_row = stage_run.run
    config = run_row.run_config
    policy = config.policy
    reference = support.reference_policy(run_row, config, reporter)
    out = run_row.artifacts_dir / "policy"
    kwargs: dict = {}
    judge_reward = None
    if policy.algorithm == "dpo":
        train, _eval, _human, counts = support.preference_datasets(run_row, config, reporter)
        if len(train) == 0:
            raise ValueError(f"run {run_row.pk}: no AI preferences to train DPO on (run the label stage first)")
        kwargs["preferences"] = train
        data_key = [sorted(train["comparison_id"])]
        lineage = {"preferences": len(train)}
    elif policy.learns_from == "judge":
        prompts = train_prompts(run_row, config)
        if not prompts:
            raise ValueError(f"run {run_row.pk}: the prompt set has no train prompts")
        kwargs["prompts"] = prompts
        kwargs["reward_fn"] = judge_reward = direct_judge_reward(run_row, reporter)
        data_key = [judge_reward.judge.judge_id, len(prompts)]
        lineage = {"judge": judge_reward.judge.judge_id}
    else:
        reward_path = support.artifact_path(run_row, Artifact.Kind.REWARD_MODEL)
        if reward_path is None:
            raise ValueError(
                f"run {run_row.pk}: policy.algorithm={policy.algorithm} needs a trained reward model "
                "(add the reward_model stage, set policy.reward_source 'judge', or use algorithm 'dpo')"
            )
        prompts = train_prompts(run_row, config)
        if not prompts:
            raise ValueError(f"run {run_row.pk}: the prompt set has no train prompts")
        kwargs["prompts"] = prompts
        kwargs["reward_fn"] = RewardModelRef(reward_path)  # loaded where the training runs
        data_key = [reward_path, len(prompts)]
        lineage = {"reward_model": reward_path}
    stamp = support.fingerprint(config.to_dict()["policy"], reference, data_key)
    support.start_over_if_changed(out, stamp, reporter, "policy")
    reporter.log(f"policy: {policy.algorithm}, beta {policy.beta}, {policy.steps} steps from {reference}")
    try:
        result = run_training(  # in this process, or launched with N processes (policy.launcher)
            "policy", config=policy, policy_model=reference, output_dir=out, reporter=reporter,
            sample_prompts=sample_prompts(run_row), **kwargs,
        )
    except (Cancelled, JudgeRewardError):  # keep what was trained; a resume continues from the checkpoint
        support.record_checkpoint(run_row, Stage.POLICY, out / "checkpoints")
        record_samples(run_row, out)
        raise
    finally:
        if judge_reward is not None:
            judge_reward.close()
            judge_reward.while_waiting()  # what the last calls paid
    support.record_checkpoint(run_row, Stage.POLICY, out / "checkpoints")
    record_samples(run_row, out)
    summary = {}  # the last logged value of each headline metric
    for _step, values in result.history:
        summary.update({k: v for k, v in values.items() if k in SUMMARY_METRICS})
    if judge_reward is not None:
        judge_reward.check_failures()
        summary.update({"judgments": judge_reward.judged, "judgments_failed": judge_reward.failed})
        reporter.log(f"policy: the judge scored the rollouts in {judge_reward.judged} judgments "
                     f"({judge_reward.failed} failed)")
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


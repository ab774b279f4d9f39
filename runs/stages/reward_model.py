"""The reward_model stage: train a Bradley-Terry reward model on the run's AI preferences.

Thin: it builds chosen/rejected pairs from the judgments (filters of ``config.reward_model``), calls
:func:`training.reward_model.train_reward_model`, and records the model as an artifact with its config and
metrics. Metrics stream to the database while training. With ``reward_model.launcher: accelerate`` the training
runs in N processes started by ``accelerate launch`` (:mod:`training.launcher`). A cancelled or killed stage
resumes from its last checkpoint; a stage whose data or config changed since its checkpoints were written starts
over.
"""
from __future__ import annotations

from django.conf import settings

from runs.models import Artifact, Stage
from runs.stages import stage_io as support
from training.modeling import resolve
from training.progress import Cancelled


def run(stage_run, reporter) -> None:
    """Train the run's reward model.

    Raises:
        ValueError: no preference pair survives the filters (label the run first, or loosen the filters).
        training.modeling.ModelNotFound: the base model does not exist.
        training.progress.Cancelled: the user cancelled (a checkpoint is kept for the resume).
    """
    from training.launcher import run_training

    run_row = stage_run.run
    config = run_row.run_config
    rm = config.reward_model
    train, eval_, human, counts = support.preference_datasets(run_row, config, reporter)
    if len(train) == 0:
        raise ValueError(
            f"run {run_row.pk}: no preference pairs to train the reward model on ({counts['preferences']} "
            "decided comparisons pass the filters reward_model.min_confidence / position_consistent_only; "
            "run the label stage first or loosen the filters)"
        )
    base = resolve(rm.base_model, settings.MODELS_DIR)
    out = run_row.artifacts_dir / "reward_model"
    stamp = support.fingerprint(config.to_dict()["reward_model"], sorted(train["comparison_id"]), train["chosen"])
    support.start_over_if_changed(out, stamp, reporter, "reward model")
    reporter.log(f"reward model: {len(train)} train / {len(eval_)} eval pairs, base {rm.base_model}")
    try:
        result = run_training(  # in this process, or launched with N processes (reward_model.launcher)
            "reward_model",
            train_dataset=train,
            base_model=base,
            config=rm,
            output_dir=out,
            eval_dataset=eval_,
            human_eval_dataset=human,
            reporter=reporter,
            checkpoint_every=config.reward_model.checkpoint_every,
        )
    except Cancelled:
        support.record_checkpoint(run_row, Stage.REWARD_MODEL, out / "checkpoints")
        raise
    support.record_checkpoint(run_row, Stage.REWARD_MODEL, out / "checkpoints")
    metrics = {**result.metrics, **{k: float(v) for k, v in counts.items()}}
    support.record_artifact(
        run_row,
        Artifact.Kind.REWARD_MODEL,
        "reward_model",
        result.path,
        {**metrics, "config": config.to_dict()["reward_model"], "base_model": rm.base_model},
    )
    accuracy = result.metrics.get("eval_accuracy")
    held_out = f"; eval accuracy {accuracy:.3f} on {int(result.metrics['eval_pairs'])} pairs" if accuracy else ""
    cut, length = int(result.metrics.get("truncated_train_pairs", 0)), int(result.metrics["max_length"])
    clamped = result.metrics.get("max_length_clamped_from")
    clamp = f" (clamped from {int(clamped)})" if clamped else ""
    held_out += f"; {cut} of {len(train)} train pairs truncated to max_length {length}{clamp}"
    reporter.log(f"reward model: saved to {result.path}{held_out}")


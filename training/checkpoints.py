"""Checkpoint folders and the CPU-friendly ``TrainingArguments`` every training stage shares.

Trainers save ``checkpoint-<step>`` folders under an output directory every ``save_steps`` steps; a re-run
passes the last one to ``trainer.train(resume_from_checkpoint=...)`` so the step count, optimizer, scheduler
and RNG state continue where they stopped (transformers' own resume).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


def last_checkpoint(output_dir: Path | str) -> str | None:
    """The newest complete ``checkpoint-<step>`` folder under ``output_dir`` (None when there is none).

    Complete means it holds ``trainer_state.json``, which the trainer writes last: a folder left half-written by a
    process killed while saving is passed over, and the resume starts from the checkpoint before it.
    """
    import re

    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    found = []
    for folder in output_dir.iterdir():
        match = re.fullmatch(r"checkpoint-(\d+)", folder.name)
        if match and (folder / "trainer_state.json").is_file():  # transformers.trainer.TRAINER_STATE_NAME
            found.append((int(match.group(1)), str(folder)))
    return max(found)[1] if found else None


def checkpoint_step(path: str | Path | None) -> int:
    """The global step a checkpoint folder was written at (``checkpoint-40`` -> 40; 0 for None)."""
    if not path:
        return 0
    return int(Path(path).name.rsplit("-", 1)[-1])


def context_length(model_path: str, default: int = 2048) -> int:
    """The longest sequence the model at ``model_path`` takes (``n_positions`` / ``max_position_embeddings``)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_path)
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return default


def trainer_kwargs(
    output_dir: Path | str,
    *,
    seed: int,
    learning_rate: float,
    batch_size: int,
    save_every: int | None = None,
    max_steps: int | None = None,
    epochs: float | None = None,
    keep_checkpoints: int = 2,
) -> dict[str, Any]:
    """Keyword arguments shared by every TRL config this project builds.

    Full precision (no bf16: CPUs and older GPUs), no external loggers, metrics logged every step (the
    :class:`~training.callbacks.ReporterCallback` streams them), checkpoints every ``save_every`` steps
    keeping the last ``keep_checkpoints``, no gradient checkpointing (tiny models; TRL turns it on by
    default), and the accelerator used when there is one.

    Args:
        max_steps: optimizer steps (takes precedence over ``epochs``).
        epochs: passes over the data when ``max_steps`` is None.
    """
    import torch

    kwargs: dict[str, Any] = {
        "output_dir": str(output_dir),
        "seed": seed,
        "data_seed": seed,
        "learning_rate": learning_rate,
        "per_device_train_batch_size": batch_size,
        "per_device_eval_batch_size": batch_size,
        "bf16": False,
        "fp16": False,
        "use_cpu": not torch.cuda.is_available(),
        "report_to": "none",
        "logging_steps": 1,
        "logging_first_step": True,
        _checkpointing_arg(): False,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "save_strategy": "steps" if save_every else "no",
        "save_steps": save_every or 500,
        "save_total_limit": keep_checkpoints,
        "save_only_model": False,
    }
    if max_steps is not None:
        kwargs["max_steps"] = max_steps
    elif epochs is not None:
        kwargs["num_train_epochs"] = epochs
    return kwargs


def _checkpointing_arg() -> str:
    """The TrainingArguments name of activation (gradient) checkpointing: transformers 5 renamed it; TRL's
    configs still default the old name to True, so only setting the new one keeps it off without a warning."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def train_resumable(trainer, checkpoints_dir: Path, callback, reporter, label: str):
    """Run ``trainer.train`` from the last checkpoint in ``checkpoints_dir`` (if any), the way every stage
    trains: no console printer (progress goes to ``reporter`` through ``callback``), resume logged, and a
    cancel turned into :class:`training.progress.Cancelled` after the callback saved a checkpoint.

    Args:
        trainer: a ``transformers.Trainer`` (TRL trainers included) with ``callback`` registered.
        callback: the :class:`training.callbacks.ReporterCallback` (its ``stopped`` flag says a cancel stopped it).
        label: the stage's name in messages ("policy", "SFT", "reward model").

    Returns:
        ``(train_output, resumed_from)``: what ``trainer.train`` returned and the checkpoint path or None.

    Raises:
        training.progress.Cancelled: training was stopped on request.
    """
    from transformers import PrinterCallback

    from training.progress import Cancelled

    trainer.remove_callback(PrinterCallback)
    resume = last_checkpoint(checkpoints_dir)
    if resume:
        reporter.log(f"{label}: resuming from {Path(resume).name}")
    output = trainer.train(resume_from_checkpoint=resume)
    if callback.stopped:
        raise Cancelled(f"{label} training stopped on request; resume continues from the last checkpoint")
    return output, resume


def save_stage_model(trainer, tokenizer, output_dir: Path, *, merge: bool, record_file: str, record: dict) -> Path:
    """The save tail every training stage shares: the model (its LoRA adapter, or with ``merge`` the merged full
    model: :func:`training.adapters.save_trained`) and its tokenizer into ``output_dir/model``, plus a JSON record
    of what was trained (``record_file``: the stage's config, base model and results) beside them. Every process of
    a launched training calls it (saving may gather the model's shards); only the main one writes.

    Returns:
        The ``output_dir/model`` folder.
    """
    import json

    from training.adapters import save_trained

    final = Path(output_dir) / "model"
    save_trained(trainer, final, merge=merge)
    if trainer.args.should_save:  # the main process (every process saving the same files would race)
        tokenizer.save_pretrained(str(final))
        (final / record_file).write_text(json.dumps(record, indent=2))
    return final


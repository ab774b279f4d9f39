"""Supervised fine-tuning with TRL's ``SFTTrainer`` on prompt/response pairs: demonstrations, or the
revisions of Constitutional AI's critique-and-revise phase (Bai et al. 2022, section 3).

Examples are given to TRL in its prompt-completion format, so the loss covers only the response tokens
(``completion_only_loss``); with a chat template they are chat messages.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from training.callbacks import ReporterCallback
from training.chat import Conversation, as_messages
from training.checkpoints import checkpoint_step, context_length, save_stage_model, train_resumable, trainer_kwargs
from training.config import SFTConfig
from training.modeling import ensure_pad_token
from training.progress import NullReporter, Reporter

CONFIG_FILE = "rlaif_sft.json"


@dataclass(frozen=True)
class Demonstration:
    """One SFT example: a prompt (text or chat messages) and the target response text."""

    prompt: Conversation
    response: str


@dataclass
class SFTResult:
    """What :func:`train_sft` produced: the model folder, steps, the resume point, and logged metrics."""

    path: Path
    steps: int
    resumed_from_step: int = 0
    history: list[tuple[int, dict[str, float]]] = field(default_factory=list)


def sft_dataset(examples: Sequence[Demonstration], tokenizer):
    """TRL prompt-completion dataset: chat messages when the tokenizer has a chat template, else
    ``Human: …\\n\\nAssistant:`` prompts and `` response<eos>`` completions."""
    from datasets import Dataset

    from training.generation import prompt_text

    if getattr(tokenizer, "chat_template", None):
        return Dataset.from_dict(
            {
                "prompt": [as_messages(e.prompt) for e in examples],
                "completion": [[{"role": "assistant", "content": e.response}] for e in examples],
            }
        )
    return Dataset.from_dict(
        {
            "prompt": [prompt_text(tokenizer, e.prompt) for e in examples],
            "completion": [" " + e.response + (tokenizer.eos_token or "") for e in examples],
        }
    )


def train_sft(
    examples: Sequence[Demonstration],
    base_model: str,
    config: SFTConfig,
    output_dir: Path,
    *,
    reporter: Reporter | None = None,
    max_steps: int | None = None,
    checkpoint_every: int = 50,
    max_length: int = 512,
) -> SFTResult:
    """Fine-tune ``base_model`` on ``examples``; save to ``output_dir/model``: the full model, or with
    ``config.lora_rank`` the LoRA adapter (merged into a full model with ``config.merge_adapters``; load either
    with :func:`training.adapters.load_for_inference`).

    Args:
        examples: prompt/response pairs (at least one).
        base_model: path or hub id of a causal LM, or an adapter folder (trained on with its adapter merged).
        config: learning rate, epochs, batch size, LoRA settings.
        max_steps: cap on optimizer steps (overrides ``config.epochs``).
        checkpoint_every: save a checkpoint every N steps under ``output_dir/checkpoints``; a re-run resumes.
        max_length: longest tokenized example (longer ones are truncated by TRL); never more than the
            model's context length.

    Raises:
        ValueError: no examples.
        training.progress.Cancelled: the reporter asked to stop (a checkpoint is saved first).
    """
    from transformers import AutoTokenizer
    from trl import SFTConfig as TRLSFTConfig
    from trl import SFTTrainer

    from training.adapters import base_model_path, stage_peft_config, starting_model

    reporter = reporter or NullReporter()
    if not examples:
        raise ValueError("no SFT examples (demonstrations or revisions) to train on")
    output_dir = Path(output_dir)
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    ensure_pad_token(tokenizer)
    args = TRLSFTConfig(
        **trainer_kwargs(
            output_dir / "checkpoints",
            seed=0,
            learning_rate=config.learning_rate,
            batch_size=config.batch_size,
            save_every=checkpoint_every,
            max_steps=max_steps,
            epochs=config.epochs,
        ),
        max_length=min(max_length, context_length(base_model_path(base_model))),
        completion_only_loss=True,
    )
    callback = ReporterCallback(reporter, "sft: training")
    trainer = SFTTrainer(
        model=starting_model(base_model),
        args=args,
        train_dataset=sft_dataset(examples, tokenizer),
        processing_class=tokenizer,
        callbacks=[callback],
        peft_config=stage_peft_config(config, base_model),
    )
    _, resume = train_resumable(trainer, output_dir / "checkpoints", callback, reporter, "sft")
    final = save_stage_model(trainer, tokenizer, output_dir, merge=config.merge_adapters, record_file=CONFIG_FILE,
                             record={"config": asdict(config), "base_model": base_model, "examples": len(examples)})
    return SFTResult(final, trainer.state.global_step, checkpoint_step(resume), callback.history)

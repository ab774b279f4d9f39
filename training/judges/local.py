"""What the local-model judge backends share: loading ``judge.model`` onto the worker's accelerator, a pad
token for batching, and the model's context length."""
from __future__ import annotations

from pathlib import Path

from training.config import JudgeConfig
from training.generation import load_causal_lm
from training.judges.base import Judge
from training.modeling import ensure_pad_token


def load_on_device(loader, name: str, models_dir):
    """Load ``(model, tokenizer)`` with ``loader(name, models_dir)`` and move the model to the GPU when one is
    present (local judges run on the worker's accelerator; CPU otherwise)."""
    import torch

    model, tokenizer = loader(name, models_dir)
    if torch.cuda.is_available():
        model.to("cuda")
    return model, tokenizer


def context_length(model, default: int = 2048) -> int:
    """The most tokens ``model`` attends to (``n_positions`` or ``max_position_embeddings``; else ``default``)."""
    config = model.config
    return getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None) or default


class LocalModelJudge(Judge):
    """Base of the judges that run a model on the worker (:attr:`~training.judges.base.Judge.local_model`).

    Args:
        config: the run's judge config (``model`` names what to load).
        models_dir: where ``demo://`` and converted GGUF models live.
        model, tokenizer: an already loaded pair to use instead of loading ``config.model`` (tests).
        batch_size: sequences per forward pass.

    Attributes:
        config, judge_id, model, tokenizer (with a pad token: EOS when it had none), batch_size.
    """

    local_model = True

    def __init__(
        self,
        config: JudgeConfig,
        models_dir: Path | None = None,
        *,
        model=None,
        tokenizer=None,
        batch_size: int = 8,
    ) -> None:
        from training.judges import judge_id_for

        self.config = config
        self.judge_id = judge_id_for(config)
        if model is None or tokenizer is None:
            model, tokenizer = load_on_device(self.load, config.model, models_dir)
        self.model, self.tokenizer = model, tokenizer
        ensure_pad_token(self.tokenizer)
        self.batch_size = batch_size

    @staticmethod
    def load(name: str, models_dir: Path | None = None):
        """Load ``(model, tokenizer)`` for ``name``: a causal LM (:func:`training.generation.load_causal_lm`)
        unless a backend loads another kind of model."""
        return load_causal_lm(name, models_dir)

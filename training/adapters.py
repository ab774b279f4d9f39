"""LoRA adapters through ``peft``, handed to TRL's trainers as ``peft_config`` (Hu et al. 2021, "LoRA: Low-Rank
Adaptation of Large Language Models").

With ``lora_rank`` above 0 (:data:`training.config.LORA_FIELDS`) a stage freezes the model and trains low-rank
adapters on its target modules (plus a reward model's score head). TRL wraps the model itself when it is given
``peft_config``; for RLOO, GRPO and DPO the reference policy is then the same model with its adapters disabled,
so no second copy of the model is loaded. The stage saves the adapter folder (``adapter_config.json`` and the
adapter weights, megabytes instead of the model's size), or with ``merge_adapters`` the base model with the
adapters merged into its weights.

Everything that loads a stage's saved model goes through :func:`load_for_inference`, which takes either kind of
folder. An adapter names its base in ``adapter_config.json``; that base may itself be an adapter folder (a policy
trained with LoRA on top of an SFT adapter), which is loaded and merged first.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

ADAPTER_CONFIG = "adapter_config.json"
TaskType = Literal["CAUSAL_LM", "SEQ_CLS"]

#: Default LoRA target modules by ``model_type``: the attention projections (all four where they are separate
#: linear layers, as in QLoRA and most LoRA recipes for decoder LMs). Other architectures get ``all-linear``.
DEFAULT_TARGET_MODULES: dict[str, list[str]] = {
    **{
        name: ["q_proj", "k_proj", "v_proj", "o_proj"]
        for name in (
            "llama", "mistral", "mixtral", "gemma", "gemma2", "gemma3", "gemma3_text", "qwen2", "qwen2_moe",
            "qwen3", "qwen3_moe", "olmo", "olmo2", "smollm3", "granite", "cohere", "starcoder2",
        )
    },
    "gpt2": ["c_attn"],
    "gpt_neox": ["query_key_value"],
    "phi3": ["qkv_proj", "o_proj"],
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
    "xlm-roberta": ["query", "value"],
    "distilbert": ["q_lin", "v_lin"],
}
#: Names of sequence-classification heads (``score`` for causal-LM backbones, ``classifier`` for encoders): they
#: start untrained, so a LoRA reward model trains them in full (peft's ``modules_to_save``).
HEAD_NAMES = ("score", "classifier")


def is_adapter(path: str | Path) -> bool:
    """Whether ``path`` is a local folder holding a peft adapter (``adapter_config.json``)."""
    return (Path(path) / ADAPTER_CONFIG).is_file()


def adapter_base(path: str | Path) -> str:
    """The base model an adapter folder was trained on (``base_model_name_or_path`` of its config)."""
    base = json.loads((Path(path) / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{path}: the adapter does not name its base model (base_model_name_or_path)")
    return str(base)


def base_model_path(path: str | Path) -> str:
    """The folder (or hub id) holding the full model behind ``path``: ``path`` itself, or for an adapter its base,
    followed through adapters trained on adapters. Its ``config.json`` gives the architecture and context length."""
    path = str(path)
    seen = set()
    while is_adapter(path):
        if path in seen:
            raise ValueError(f"{path}: adapters name each other as their base")
        seen.add(path)
        path = adapter_base(path)
    return path


def model_type(model_or_path) -> str:
    """The ``model_type`` of a loaded model or of a model folder / hub id (an adapter's base for an adapter)."""
    config = getattr(model_or_path, "config", None)
    if config is None:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(base_model_path(model_or_path))
    return str(getattr(config, "model_type", ""))


def default_target_modules(kind: str) -> list[str] | str:
    """The modules LoRA adapts by default for a ``model_type`` (:data:`DEFAULT_TARGET_MODULES`), else
    ``"all-linear"`` (every linear layer but the output head)."""
    return list(DEFAULT_TARGET_MODULES.get(kind, [])) or "all-linear"


def peft_config_for(
    model_or_path,
    rank: int,
    alpha: int = 32,
    dropout: float = 0.05,
    target_modules: str = "",
    task_type: TaskType = "CAUSAL_LM",
):
    """A ``peft.LoraConfig`` for ``model_or_path``, as TRL's trainers take it (``peft_config=``).

    Args:
        model_or_path: the loaded model, or its folder / hub id (read for ``model_type`` only).
        rank, alpha, dropout: LoRA's r, scale alpha (updates are multiplied by alpha / r) and dropout.
        target_modules: comma-separated module names, ``all-linear``, or empty for the architecture's default
            (:func:`default_target_modules`).
        task_type: ``CAUSAL_LM`` (policy, SFT) or ``SEQ_CLS`` (reward model: its score head is trained in full
            and saved with the adapter, :data:`HEAD_NAMES`).

    Raises:
        ValueError: ``rank`` below 1.
    """
    from peft import LoraConfig

    if rank < 1:
        raise ValueError(f"LoRA rank must be at least 1; got {rank}")
    names = [n.strip() for n in target_modules.split(",") if n.strip()]
    kind = model_type(model_or_path)
    targets = "all-linear" if names == ["all-linear"] else names or default_target_modules(kind)
    heads = None
    if task_type == "SEQ_CLS":
        present = _head_names(model_or_path)
        heads = present or list(HEAD_NAMES)
    return LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=targets,
        task_type=task_type,
        modules_to_save=heads,
        fan_in_fan_out=kind == "gpt2",  # GPT-2 keeps its projections as Conv1D, weights stored transposed
    )


def stage_peft_config(section, model_or_path, task_type: TaskType = "CAUSAL_LM"):
    """The ``peft_config`` for a stage config with :data:`training.config.LORA_FIELDS`, or None when its
    ``lora_rank`` is 0 (a full fine-tune)."""
    if not section.lora_rank:
        return None
    return peft_config_for(
        model_or_path,
        section.lora_rank,
        section.lora_alpha,
        section.lora_dropout,
        section.lora_target_modules,
        task_type,
    )


def starting_model(path: str, task_type: TaskType = "CAUSAL_LM"):
    """What to hand a trainer as its model: ``path`` itself, or for an adapter folder the merged model loaded
    from it, named by that folder, so an adapter trained on it names the folder as its base (and
    :func:`load_for_inference` rebuilds the chain)."""
    if not is_adapter(path):
        return path
    model = load_for_inference(path, task_type=task_type, merge=True)
    model.name_or_path = str(path)
    model.config._name_or_path = str(path)
    return model


def load_for_inference(path: str | Path, *, task_type: TaskType = "CAUSAL_LM", merge: bool = True, num_labels: int = 1):
    """Load a saved model folder whether it holds a full model or a peft adapter, in eval mode.

    Args:
        path: a model folder or hub id, or an adapter folder (its base, itself possibly an adapter, is loaded
            from the path its ``adapter_config.json`` names).
        task_type: ``CAUSAL_LM`` (``AutoModelForCausalLM``) or ``SEQ_CLS`` (``AutoModelForSequenceClassification``
            with ``num_labels`` outputs; a LoRA reward model's head is restored from the adapter).
        merge: fold the adapter into the base weights (``merge_and_unload``): a plain transformers model, as fast
            as the base; otherwise a ``peft.PeftModel`` with the adapter active.

    Raises:
        OSError: the folder, or an adapter's base, does not load.
    """
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    path = str(path)
    if not is_adapter(path):
        if task_type == "SEQ_CLS":
            model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=num_labels)
        else:
            model = AutoModelForCausalLM.from_pretrained(path)
        model.eval()
        return model
    from peft import PeftModel

    base_path = adapter_base(path)
    if is_adapter(base_path):
        base = load_for_inference(base_path, task_type=task_type, merge=True, num_labels=num_labels)
    else:
        try:
            base = load_for_inference(base_path, task_type=task_type, num_labels=num_labels)
        except OSError as exc:
            raise OSError(f"{path}: its base model {base_path} does not load ({exc})") from exc
    model = PeftModel.from_pretrained(base, path)
    if merge:
        model = model.merge_and_unload()
    model.eval()
    return model


def save_trained(trainer, folder: str | Path, merge: bool = False) -> None:
    """Save a trainer's model to ``folder``: the adapter alone for a LoRA model (``trainer.save_model``), or with
    ``merge`` the base with the adapters merged in (a full model; the trainer's model is merged in place, so
    call this last)."""
    from accelerate.utils import is_peft_model

    model = trainer.accelerator.unwrap_model(trainer.model) if hasattr(trainer, "accelerator") else trainer.model
    if merge and is_peft_model(model):
        merged = model.merge_and_unload()
        if trainer.args.should_save:  # the main process of a launched training (training.launcher)
            merged.save_pretrained(str(folder))
        return
    trainer.save_model(str(folder))


def trainable_parameters(model) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts of a model."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def _head_names(model_or_path) -> list[str]:
    """The :data:`HEAD_NAMES` a loaded model has (empty for a path: peft then tries them all)."""
    if isinstance(model_or_path, (str, Path)):
        return []
    children = {name for name, _ in model_or_path.named_children()}
    return [name for name in HEAD_NAMES if name in children]

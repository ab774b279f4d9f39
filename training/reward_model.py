"""Bradley-Terry reward model: TRL ``RewardTrainer`` on chosen/rejected pairs, and a scorer that applies it.

The loss is ``-log sigmoid(r(x, y_chosen) - r(x, y_rejected) - margin)`` (Bradley & Terry 1952; Ouyang et al.
2022), optionally with TRL's reward-centering term (Eisenstein et al. 2023).

Inputs are encoded here rather than by TRL, because TRL drops every pair longer than ``max_length`` and
appends an EOS token that BERT-style encoders (the offline MiniLM default) do not have. :func:`encode_pair`
keeps the response and cuts the *start* of the prompt instead, and frames the pair with the tokenizer's own
special tokens (``[CLS] prompt [SEP] response [SEP]`` for BERT, ``prompt response <eos>`` for causal LMs).
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from training import transcript
from training.callbacks import ReporterCallback
from training.chat import Conversation
from training.checkpoints import save_stage_model, train_resumable, trainer_kwargs
from training.config import RewardModelConfig
from training.modeling import ensure_pad_token
from training.progress import NullReporter, Reporter

#: Reward-model inputs keep at least this share of ``max_length`` for the prompt when the response is long.
MIN_PROMPT_SHARE = 0.25
CONFIG_FILE = "rlaif_reward_model.json"


def render_prompt(conversation: Conversation) -> str:
    """A prompt as reward-model text: ``Human: …\\n\\nAssistant: …\\n\\nAssistant:`` (the chat turns in
    Anthropic HH format, ending where the response starts; :func:`training.transcript.render`). Plain strings
    are one user turn."""
    return transcript.render(conversation)


def response_text(response) -> str:
    """A response as text: a string, or TRL's conversational completion ``[{"role": "assistant", ...}]``."""
    if isinstance(response, str):
        return response
    return "".join(m.get("content", "") for m in response)


def encode_pair(tokenizer, prompt: Conversation, response, max_length: int) -> list[int]:
    """Token ids of (prompt, response) for a sequence-classification reward model, at most ``max_length``.

    The response is kept whole where it fits; otherwise its beginning is kept and the prompt still gets
    :data:`MIN_PROMPT_SHARE` of the budget. The prompt loses its *oldest* tokens first, so the last turn
    before the answer survives.
    """
    return encode_pair_counted(tokenizer, prompt, response, max_length)[0]


def encode_pair_counted(tokenizer, prompt: Conversation, response, max_length: int) -> tuple[list[int], bool]:
    """:func:`encode_pair` and whether it had to cut tokens (of the prompt, the response or both) to fit."""
    p_ids = tokenizer(render_prompt(prompt), add_special_tokens=False, verbose=False)["input_ids"]
    r_ids = tokenizer(" " + response_text(response).strip(), add_special_tokens=False, verbose=False)["input_ids"]
    bert_style = tokenizer.cls_token_id is not None and tokenizer.sep_token_id is not None
    specials = 3 if bert_style else (1 if tokenizer.eos_token_id is not None else 0)
    budget = max(2, max_length - specials)
    truncated = len(p_ids) + len(r_ids) > budget
    r_budget = budget - min(len(p_ids), int(budget * MIN_PROMPT_SHARE))
    r_ids = r_ids[: max(1, r_budget)]
    p_keep = budget - len(r_ids)
    p_ids = p_ids[len(p_ids) - p_keep :] if p_keep > 0 else []
    if bert_style:
        return [tokenizer.cls_token_id, *p_ids, tokenizer.sep_token_id, *r_ids, tokenizer.sep_token_id], truncated
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    return [*p_ids, *r_ids, *eos], truncated


def model_positions(model: str, *, local_only: bool = True) -> int | None:
    """How many tokens a model can take: its config's ``max_position_embeddings`` (``n_positions`` for
    GPT-2 style configs), less RoBERTa's two reserved positions. Reads only ``config.json``.

    Args:
        model: a local folder or hub id (see :func:`training.modeling.resolve`).
        local_only: do not download (the web process checks launches with what is on disk).

    Returns:
        The usable number of positions, or None when the config cannot be read or names no limit
        (e.g. relative-position models).
    """
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model, local_files_only=local_only)
    except Exception:  # noqa: BLE001 - unknown here; the stage clamps once the model is loaded
        return None
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value - 2 if "roberta" in str(getattr(config, "model_type", "")) else value
    return None


def fit_max_length(max_length: int, positions: int | None) -> tuple[int, str]:
    """The ``max_length`` to train with, and a notice when it had to be lowered to the model's positions
    (longer inputs would index past its position embeddings and crash). ``("", ...)`` when it fits."""
    if positions is None or max_length <= positions:
        return max_length, ""
    return positions, (
        f"reward_model.max_length {max_length} exceeds the {positions} positions of the base model: "
        f"clamped to {positions}"
    )


def tokenize_preferences(dataset, tokenizer, max_length: int, use_margin: bool = False, *, counts: dict | None = None):
    """Map a ``prompt``/``chosen``/``rejected`` dataset to TRL's processed columns ``chosen_ids``,
    ``rejected_ids`` (and ``margin`` when ``use_margin`` and the dataset has that column).

    Args:
        counts: when given, ``counts["truncated"]`` is set to how many pairs had a side cut to fit
            ``max_length``.
    """

    def encode(example):
        chosen, cut_chosen = encode_pair_counted(tokenizer, example["prompt"], example["chosen"], max_length)
        rejected, cut_rejected = encode_pair_counted(tokenizer, example["prompt"], example["rejected"], max_length)
        out = {"chosen_ids": chosen, "rejected_ids": rejected, "truncated": cut_chosen or cut_rejected}
        if use_margin:
            out["margin"] = float(example.get("margin") or 0.0)
        return out

    keep = {"chosen_ids", "rejected_ids", "margin"} if use_margin else {"chosen_ids", "rejected_ids"}
    drop = [c for c in dataset.column_names if c not in keep]
    encoded = dataset.map(encode, remove_columns=drop)
    if counts is not None:
        counts["truncated"] = int(sum(encoded["truncated"]))
    return encoded.remove_columns(["truncated"])


def margin_from_p(p_chosen: float) -> float:
    """TRL margin from a soft preference: the Bradley-Terry logit ``log(p / (1 - p))`` of the chosen
    response's probability, clipped to [0, 5] (p is clamped to [0.5, 0.9933])."""
    p = min(max(float(p_chosen), 0.5), 0.9933)
    return max(0.0, math.log(p / (1.0 - p)))


@dataclass
class RewardModelResult:
    """What :func:`train_reward_model` produced.

    Attributes:
        path: folder of the saved model and tokenizer: a full model, or with ``config.lora_rank`` (and no
            ``merge_adapters``) a LoRA adapter with the score head (load either with :class:`RewardScorer` or
            :func:`training.adapters.load_for_inference`).
        metrics: ``train_pairs``, ``eval_pairs``, ``eval_accuracy`` (AI labels), ``human_accuracy`` and
            ``human_pairs`` (when given), ``train_loss``, ``steps``, ``max_length`` (as trained, after any
            clamp to the model's positions; ``max_length_clamped_from`` when it was lowered),
            ``truncated_train_pairs`` and ``truncated_eval_pairs`` (pairs cut to fit ``max_length``).
        resumed_from: the checkpoint training continued from, or None.
    """

    path: Path
    metrics: dict[str, float] = field(default_factory=dict)
    resumed_from: str | None = None


def train_reward_model(
    train_dataset,
    base_model: str,
    config: RewardModelConfig,
    output_dir: Path,
    *,
    eval_dataset=None,
    human_eval_dataset=None,
    reporter: Reporter | None = None,
    checkpoint_every: int = 50,
    max_steps: int | None = None,
) -> RewardModelResult:
    """Train a Bradley-Terry reward model with TRL's ``RewardTrainer``.

    Args:
        train_dataset, eval_dataset, human_eval_dataset: ``datasets.Dataset`` with ``prompt`` (text or chat
            messages), ``chosen``, ``rejected`` (text) and optionally ``margin``.
        base_model: a path or hub id that ``from_pretrained`` accepts (see :func:`training.modeling.resolve`).
        config: learning rate, epochs, batch size, max_length, margin and centering settings, LoRA settings
            (with ``lora_rank`` the backbone is frozen and only the adapters and the score head train).
        output_dir: checkpoints go to ``output_dir/checkpoints``; the final model to ``output_dir/model``.
        checkpoint_every: save a checkpoint every N optimizer steps; a re-run resumes from the last one.
        max_steps: cap on optimizer steps (overrides ``config.epochs``).

    Returns:
        :class:`RewardModelResult` with eval accuracy on the AI labels and on human labels.

    Raises:
        ValueError: the training set is empty.
        training.progress.Cancelled: the reporter asked to stop (a checkpoint is saved first).
    """
    from transformers import AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from training.adapters import base_model_path, load_for_inference, stage_peft_config

    reporter = reporter or NullReporter()
    if len(train_dataset) == 0:
        raise ValueError("no preference pairs to train the reward model on (check the filters)")
    output_dir = Path(output_dir)
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    ensure_pad_token(tokenizer)
    use_margin = config.use_margin and "margin" in train_dataset.column_names
    positions = model_positions(base_model_path(base_model), local_only=False)
    max_length, notice = fit_max_length(config.max_length, positions)
    if notice:
        reporter.log(f"reward model: {notice}")
    cut: dict[str, dict] = {"train": {}, "ai": {}, "human": {}}
    train_tok = tokenize_preferences(train_dataset, tokenizer, max_length, use_margin, counts=cut["train"])
    eval_sets = {}
    if eval_dataset is not None and len(eval_dataset):
        eval_sets["ai"] = tokenize_preferences(eval_dataset, tokenizer, max_length, use_margin, counts=cut["ai"])
    if human_eval_dataset is not None and len(human_eval_dataset):
        eval_sets["human"] = tokenize_preferences(
            human_eval_dataset, tokenizer, max_length, use_margin, counts=cut["human"]
        )
    truncated = {name: c.get("truncated", 0) for name, c in cut.items()}
    reporter.log(
        f"reward model: {truncated['train']} of {len(train_tok)} train pairs truncated to max_length {max_length}"
        + "".join(f"; {truncated[n]} of {len(d)} {n} eval pairs" for n, d in eval_sets.items())
    )

    model = load_for_inference(base_model, task_type="SEQ_CLS")  # a full model, or an adapter's merged in
    model.train()
    model.config.pad_token_id = tokenizer.pad_token_id
    args = RewardConfig(
        **trainer_kwargs(
            output_dir / "checkpoints",
            seed=config.seed,
            learning_rate=config.learning_rate,
            batch_size=config.batch_size,
            save_every=checkpoint_every,
            max_steps=max_steps,
            epochs=config.epochs,
        ),
        max_length=None,  # encode_pair already fits every pair; TRL would drop longer ones
        center_rewards_coefficient=config.center_rewards_coefficient or None,
        remove_unused_columns=False,
    )
    callback = ReporterCallback(reporter, "reward model: training")
    trainer = RewardTrainer(
        model=model,
        args=args,
        train_dataset=train_tok,
        processing_class=tokenizer,
        callbacks=[callback],
        peft_config=stage_peft_config(config, model, "SEQ_CLS"),
    )
    train_output, resume = train_resumable(trainer, output_dir / "checkpoints", callback, reporter, "reward model")

    metrics: dict[str, float] = {
        "max_length": float(max_length),
        **({"max_length_clamped_from": float(config.max_length)} if notice else {}),
        "truncated_train_pairs": float(truncated["train"]),
        "truncated_eval_pairs": float(truncated["ai"] + truncated["human"]),
        "train_pairs": float(len(train_tok)),
        "steps": float(trainer.state.global_step),
        "train_loss": float(train_output.training_loss),
    }
    for name, dataset in eval_sets.items():
        result = trainer.evaluate(eval_dataset=dataset, metric_key_prefix=f"eval_{name}")
        metrics[f"{name}_pairs" if name == "human" else "eval_pairs"] = float(len(dataset))
        key = "eval_accuracy" if name == "ai" else "human_accuracy"
        metrics[key] = float(result.get(f"eval_{name}_accuracy", result.get("eval_accuracy", float("nan"))))
    reporter.metric(trainer.state.global_step, {k: v for k, v in metrics.items() if math.isfinite(v)})

    final = save_stage_model(trainer, tokenizer, output_dir, merge=config.merge_adapters, record_file=CONFIG_FILE,
                             record={"config": {**asdict(config), "max_length": max_length},
                                     "base_model": base_model, "metrics": metrics})
    return RewardModelResult(path=final, metrics=metrics, resumed_from=resume)


class RewardScorer:
    """Scores (prompt, response) pairs with a trained reward model, encoding them exactly as in training.

    Callable with TRL's reward-function signature, so it can be passed as ``reward_funcs`` to
    ``RLOOTrainer``/``GRPOTrainer``: ``scorer(prompts=[...], completions=[...], **kwargs) -> list[float]``.

    Args:
        path: a reward-model folder (from :func:`train_reward_model`: a full model or a LoRA adapter) or any
            sequence-classification model.
        max_length: token budget per pair (defaults to the one it was trained with, else 256).
        batch_size: pairs per forward pass.
    """

    def __init__(self, path: str | Path, max_length: int | None = None, batch_size: int = 16) -> None:
        import torch
        from transformers import AutoTokenizer

        from training.adapters import base_model_path, load_for_inference

        self.path = str(path)
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        ensure_pad_token(self.tokenizer)
        self.model = load_for_inference(self.path, task_type="SEQ_CLS")
        self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.model.eval()
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        saved = Path(self.path) / CONFIG_FILE
        trained_length = json.loads(saved.read_text())["config"]["max_length"] if saved.exists() else 256
        self.max_length = fit_max_length(max_length or trained_length, model_positions(base_model_path(self.path)))[0]
        self.batch_size = batch_size
        self.__name__ = "reward_model"

    def score(self, prompts: Sequence[Conversation], responses: Sequence) -> list[float]:
        """Scalar rewards, one per (prompt, response) pair (higher is better)."""
        import torch

        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        scores: list[float] = []
        for start in range(0, len(prompts), self.batch_size):
            end = start + self.batch_size
            ids = [
                encode_pair(self.tokenizer, p, r, self.max_length)
                for p, r in zip(prompts[start:end], responses[start:end], strict=True)
            ]
            width = max(len(x) for x in ids)
            pad = self.tokenizer.pad_token_id
            input_ids = torch.tensor([x + [pad] * (width - len(x)) for x in ids], device=self.device)
            mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids], device=self.device)
            with torch.no_grad():
                logits = self.model(input_ids=input_ids, attention_mask=mask).logits[:, 0]
            scores.extend(float(v) for v in logits.cpu())
        return scores

    def __call__(self, prompts, completions, **kwargs) -> list[float]:
        return self.score(prompts, completions)


def pairwise_accuracy(scorer: RewardScorer, dataset) -> float:
    """Share of ``dataset`` pairs where the reward model scores ``chosen`` above ``rejected`` (NaN if empty)."""
    if len(dataset) == 0:
        return float("nan")
    chosen = scorer.score(dataset["prompt"], dataset["chosen"])
    rejected = scorer.score(dataset["prompt"], dataset["rejected"])
    return sum(c > r for c, r in zip(chosen, rejected, strict=True)) / len(chosen)

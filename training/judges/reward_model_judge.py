"""The ``reward_model`` judge backend: a sequence-classification preference model (one logit = reward).

Each response is scored in its conversation (``conversation + response``, through the tokenizer's chat
template when it has one, else ``Human: …\\n\\nAssistant: …``) and P(A preferred) = sigmoid(r_A − r_B), the
Bradley-Terry model the reward model was trained under. The score does not depend on the order shown, so
the labeling protocol asks only once (``order_invariant``). The principle is not an input: a reward model
encodes its own preferences.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from training import transcript
from training.chat import as_messages
from training.config import JudgeConfig
from training.judge_prompt import JudgeRequest
from training.judges.base import OrderResult
from training.judges.local import LocalModelJudge
from training.modeling import ensure_pad_token, resolve


def load_reward_model(name: str, models_dir: Path | None = None):
    """Load a reward model (``AutoModelForSequenceClassification``, ``num_labels=1``, or a LoRA adapter folder on
    one: :func:`training.adapters.load_for_inference`) and its tokenizer, in eval mode.

    Raises:
        training.modeling.ModelNotFound: the name resolves to nothing.
    """
    from transformers import AutoTokenizer

    from training.adapters import load_for_inference

    path = resolve(name, models_dir)
    tokenizer = AutoTokenizer.from_pretrained(path)
    ensure_pad_token(tokenizer)
    model = load_for_inference(path, task_type="SEQ_CLS")  # a full model or a LoRA reward model's adapter
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return model, tokenizer


def conversation_text(tokenizer, conversation: str | Sequence[Mapping[str, str]], response: str) -> str:
    """The text a reward model scores: the conversation followed by the assistant's ``response``."""
    messages = as_messages(conversation)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": response}], tokenize=False)
    return f"{transcript.render(messages)} {response}"


class RewardModelJudge(LocalModelJudge):
    """Judge with a Bradley-Terry reward model.

    Args:
        config: the run's judge config (``model``).
        models_dir: where ``demo://`` models live.
        model, tokenizer: an already loaded pair to use instead of loading ``config.model`` (tests).
        batch_size: texts per forward pass; max_length: tokens per text (longer texts lose their beginning).

    Attributes:
        judge_id: ``reward_model:<model>``.
        generates_rationale: False; order_invariant: True; needs_padding: True (batches of texts of
            different lengths are padded).
    """

    order_invariant = True
    needs_padding = True
    load = staticmethod(load_reward_model)

    def __init__(
        self,
        config: JudgeConfig,
        models_dir: Path | None = None,
        *,
        model=None,
        tokenizer=None,
        batch_size: int = 16,
        max_length: int = 512,
    ) -> None:
        super().__init__(config, models_dir, model=model, tokenizer=tokenizer, batch_size=batch_size)
        self.tokenizer.truncation_side = "left"
        self.tokenizer.padding_side = "right"  # positions start at 0 in every row; the model pools the last real token
        limit = getattr(self.tokenizer, "model_max_length", max_length) or max_length
        self.max_length = min(max_length, limit if limit < 1_000_000 else max_length)
        self.params = {"max_length": self.max_length}

    def rewards(self, texts: Sequence[str]) -> list[float]:
        """The reward (the single logit) of each text."""
        import torch

        values: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            encoded = self.tokenizer(
                list(texts[start : start + self.batch_size]),
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.max_length,
            ).to(self.model.device)
            with torch.no_grad():
                logits = self.model(**encoded).logits
            values.extend(logits[:, 0].float().tolist())
        return values

    def score(self, requests: Sequence[JudgeRequest]) -> list[OrderResult]:
        """P(shown A preferred) = sigmoid(r(shown A) − r(shown B)) per request."""
        if not requests:
            return []
        if any(r.conversation is None for r in requests):
            message = (
                "the reward_model judge needs the raw conversation and responses (render with judge_prompt.render)"
            )
            return [OrderResult(p_first=None, error=message) for _ in requests]
        began = time.perf_counter()
        texts = []
        for r in requests:
            texts.append(conversation_text(self.tokenizer, r.conversation, r.shown_a))
            texts.append(conversation_text(self.tokenizer, r.conversation, r.shown_b))
        try:
            rewards = self.rewards(texts)
        except Exception as exc:  # noqa: BLE001 - recorded on each judgment
            message = f"{type(exc).__name__}: {exc}"[:1000]
            return [OrderResult(p_first=None, error=message) for _ in requests]
        latency = (time.perf_counter() - began) * 1000.0 / len(requests)
        results = []
        for i in range(len(requests)):
            r_a, r_b = rewards[2 * i], rewards[2 * i + 1]
            p = 1.0 / (1.0 + math.exp(-(r_a - r_b))) if r_a - r_b > -700 else 0.0
            results.append(
                OrderResult(
                    p_first=p,
                    raw=f"r_A={r_a:.4f} r_B={r_b:.4f}",
                    latency_ms=latency,
                    prompt_tokens=0,
                    completion_tokens=0,
                )
            )
        return results

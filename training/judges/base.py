"""The judge interface shared by every backend (openai, transformers, reward_model)."""
from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from training.judge_prompt import JudgeRequest

Conversation = str | Sequence[Mapping[str, str]]


@dataclass(frozen=True)
class JudgeTask:
    """One comparison to judge under one principle.

    Attributes:
        key: the caller's identifier, returned unchanged (e.g. ``(comparison_id, principle_id)``).
        conversation: the prompt, plain text or chat messages.
        response_a, response_b: the two responses in the comparison's order.
        principle: the principle's comparison text ("Which response is more honest?").
    """

    key: Hashable
    conversation: Conversation
    response_a: str
    response_b: str
    principle: str


@dataclass
class OrderResult:
    """A backend's answer for one rendered prompt (one order).

    Attributes:
        p_first: probability that the response shown as **A** in that prompt is preferred, in [0, 1];
            None when the answer could not be parsed or the call failed.
        rationale: the judge's explanation (may be empty).
        raw: the raw output text.
        latency_ms, prompt_tokens, completion_tokens: call accounting.
        error: why ``p_first`` is None ("" on success).
        attempts: calls made, retries included.
    """

    p_first: float | None
    rationale: str = ""
    raw: str = ""
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str = ""
    attempts: int = 1


@dataclass
class JudgedPair:
    """The labeling protocol's result for one :class:`JudgeTask` (what a ``Judgment`` row stores).

    Attributes:
        p_a_ab: P(A preferred) with A shown first; p_a_ba: P(A preferred) with the order swapped (mapped back
            to A); p_a: their average (or the one available order when both_orders is off).
        verdict: "A", "B", "tie", or "" when judging failed.
        position_consistent: both orders picked the same response (None with one order or a failure).
    """

    key: Hashable
    p_a_ab: float | None
    p_a_ba: float | None
    p_a: float | None
    verdict: str
    position_consistent: bool | None
    rationale: str = ""
    raw_outputs: list = field(default_factory=list)
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    error: str = ""
    attempts: int = 1


class Judge(Protocol):
    """A judge backend.

    Attributes:
        judge_id: stable identifier stored on each judgment (backend, model and endpoint), part of the
            judgment's unique key.
    """

    judge_id: str

    def score(self, requests: Sequence[JudgeRequest]) -> list[OrderResult]:
        """Score rendered prompts; returns one :class:`OrderResult` per request, in order. Never raises for
        a single failed call: the failure is returned in ``OrderResult.error``."""
        ...


def load_on_device(loader, name: str, models_dir):
    """Load ``(model, tokenizer)`` with ``loader(name, models_dir)`` and move the model to the GPU when one is
    present (local judges run on the worker's accelerator; CPU otherwise)."""
    import torch

    model, tokenizer = loader(name, models_dir)
    if torch.cuda.is_available():
        model.to("cuda")
    return model, tokenizer

"""The judge interface shared by every backend, with the capabilities each backend declares."""
from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from training.chat import Conversation
from training.judge_prompt import JudgeRequest

if TYPE_CHECKING:
    from training.config import JudgeConfig
    from training.judges.budget import Ledger
    from training.openai_http import CircuitBreaker


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
    """A judge backend, and what it declares about itself.

    Backends subclass this protocol to inherit the defaults below; callers read the attributes directly.
    The class-level capabilities answer questions asked before any judge is built (validation, preflight,
    cost estimates) through :data:`training.judges.JUDGE_BACKENDS`.

    Class attributes (capabilities of the backend):
        needs_endpoint: it calls an HTTP endpoint: ``judge.base_url`` is required and part of the judge id,
            and preflight checks that the endpoint answers.
        local_model: it loads ``judge.model`` on the worker: preflight checks the model, the label stage
            fetches or converts it first, and it is built with the data directory's models folder.
        needs_padding: its local model's tokenizer must pad batches (preflight refuses one with neither a
            padding nor an end-of-sequence token).
        paid: its calls are priced (``judge.price_per_1k_*``) and reserved against ``judge.budget`` through
            :attr:`ledger`.
        order_invariant: it scores each response on its own, so the labeling protocol asks once per
            comparison, not in both orders.
        generates_rationale: it writes a rationale before the verdict (a sampled one can vary, so
            self-consistency samples several); a backend may set it per instance from its config.
        pointwise: it also scores one response at a time from 1 to 10 (``score_points``, reading the score
            tokens' probabilities; :mod:`training.pointwise`), as ``policy.judge_scoring: pointwise`` needs.

    Attributes:
        judge_id: stable identifier stored on each judgment (backend, model and endpoint), part of the
            judgment's unique key.
        sampled: its answers are sampled (temperature > 0), so a request's sample index matters.
        params: what, besides the prompt, determines the answer (part of the request cache key).
        breaker: the circuit breaker shared by its calls (endpoint backends), else None.
        dropped: request parameters dropped after the endpoint refused them, with the reason.
        ledger: the budget and record of paid attempts (paid backends; set by the caller).
    """

    needs_endpoint: ClassVar[bool] = False
    local_model: ClassVar[bool] = False
    needs_padding: ClassVar[bool] = False
    paid: ClassVar[bool] = False
    order_invariant: bool = False
    generates_rationale: bool = False
    pointwise: ClassVar[bool] = False

    judge_id: str
    sampled: bool = False
    params: Mapping[str, Any] = MappingProxyType({})
    breaker: CircuitBreaker | None = None
    dropped: Mapping[str, str] = MappingProxyType({})
    ledger: Ledger | None = None

    @classmethod
    def from_config(cls, config: JudgeConfig, models_dir: Path | None = None) -> Judge:
        """Build the judge a run config describes; ``models_dir`` is where ``demo://`` and converted GGUF
        models live (used by backends with a :attr:`local_model`)."""
        return cls(config, models_dir)  # type: ignore[call-arg]

    def score(self, requests: Sequence[JudgeRequest]) -> list[OrderResult]:
        """Score rendered prompts; returns one :class:`OrderResult` per request, in order. Never raises for
        a single failed call: the failure is returned in ``OrderResult.error``."""
        ...

    def stop(self) -> None:
        """Start no further call (labeling stopped early); calls in flight may finish. No-op by default."""

    def close(self) -> None:
        """Release what the judge holds (threads, connections). No-op by default."""

"""What a paid judge spends: the budget cap with reservations, and the record of every paid attempt.

A judge endpoint bills every answer it delivers, a garbage or truncated one as much as a good one. So each
call is *reserved* against the cap before it is made, at an upper bound of its price (:func:`estimate_tokens`),
and *settled* at its real price (the ``usage`` the endpoint returned) when it answers. A call waits while
the calls in flight hold too much of the cap, and is not made at all when it could not fit even once they
settle; the spend therefore never passes the cap, whatever the concurrency.

The :class:`Ledger` also queues a :class:`Charge` for every paid attempt and an :class:`Answered` for every
usable answer, from the judge's worker threads; the caller drains the queue (:meth:`Ledger.drain`) in its own
thread and persists them as they arrive, so that an interrupted stage neither forgets what it paid nor pays
again for an answer it already received.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: The error of a request that was not made because its reservation did not fit under the budget cap.
BUDGET_REFUSED = "not asked: the judge budget cap would be passed"
#: Tokens reserved per message on top of its text, for the chat template's role markers.
MESSAGE_OVERHEAD_TOKENS = 8


def estimate_tokens(messages: Sequence[Mapping[str, str]]) -> int:
    """An upper bound on the prompt tokens of ``messages``: their UTF-8 bytes plus a per-message allowance.

    Byte-level BPE and SentencePiece-with-byte-fallback tokenizers never spend more than one token per byte,
    so bytes bound the text's tokens; :data:`MESSAGE_OVERHEAD_TOKENS` per message covers the template.
    """
    return sum(len(str(m.get("content") or "").encode("utf-8")) + MESSAGE_OVERHEAD_TOKENS for m in messages) + 16


def cost_of_tokens(prompt_tokens: int, completion_tokens: int, price_prompt: float, price_completion: float) -> float:
    """Price of the tokens at per-1k-token prices (any currency)."""
    return (prompt_tokens * price_prompt + completion_tokens * price_completion) / 1000.0


@dataclass(frozen=True)
class Charge:
    """One paid attempt.

    Attributes:
        request_key: the request's cache key (:func:`training.labeling.request_key`).
        prompt_tokens, completion_tokens: the endpoint's ``usage`` (the reservation's bound when it sent none).
        cost: their price.
        outcome: ``answer``, ``no verdict``, ``truncated``, or ``estimated`` (no usage in the answer).
    """

    request_key: str
    prompt_tokens: int
    completion_tokens: int
    cost: float
    outcome: str


@dataclass(frozen=True)
class Answered:
    """A usable answer to a request, to be kept in the request cache as soon as it arrives.

    Attributes:
        request_key: the request's cache key.
        result: the :class:`~training.judges.base.OrderResult` fields (a dict).
    """

    request_key: str
    result: dict


class Ledger:
    """The budget cap with reservations, and the queue of charges and answers (thread-safe).

    Args:
        cap: the budget (0 = no cap).
        spent: what earlier attempts of the same run and judge already cost.
        reask_share: the share of ``cap`` that re-asks (asking again after an answer without a verdict) may
            spend in all; with no cap, re-asks are limited only by their count.
    """

    def __init__(self, cap: float = 0.0, spent: float = 0.0, reask_share: float = 1.0) -> None:
        self.cap = cap
        self.spent = spent
        self.reserved = 0.0
        self.reask_spent = 0.0
        self.reask_share = reask_share
        self.refused = 0
        self._changed = threading.Condition()
        self._events: queue.Queue = queue.Queue()

    def reserve(self, estimate: float, *, reask: bool = False) -> bool:
        """Hold ``estimate`` for a call about to be made.

        Waits while the calls in flight hold too much for it to fit; returns False (nothing held) when it
        cannot fit even after they settle (``spent + estimate`` above the cap), or when a re-ask would pass
        the re-asks' share.
        """
        with self._changed:
            while True:
                if self.cap <= 0:
                    break
                if self.spent + estimate > self.cap + 1e-12 or (
                    reask and self.reask_spent + estimate > self.reask_share * self.cap + 1e-12
                ):
                    self.refused += 1
                    return False
                if self.spent + self.reserved + estimate <= self.cap + 1e-12:
                    break
                self._changed.wait()
            self.reserved += estimate
            return True

    def release(self, estimate: float) -> None:
        """Give back a reservation whose call was not paid (no answer came)."""
        with self._changed:
            self._unreserve(estimate)
            self._changed.notify_all()

    def _unreserve(self, estimate: float) -> None:
        self.reserved -= estimate
        if self.reserved < 1e-9:  # float residue of many reservations and releases
            self.reserved = 0.0

    def settle(self, estimate: float, charge: Charge, *, reask: bool = False) -> None:
        """Replace a reservation by what the call really cost, and queue the charge."""
        with self._changed:
            self._unreserve(estimate)
            self.spent += charge.cost
            if reask:
                self.reask_spent += charge.cost
            self._changed.notify_all()
        self._events.put(charge)

    def answered(self, request_key: str, result: dict) -> None:
        """Queue a usable answer for the request cache."""
        self._events.put(Answered(request_key, result))

    def drain(self, timeout: float = 0.0) -> list[Charge | Answered]:
        """The charges and answers queued since the last drain; waits up to ``timeout`` seconds for the first."""
        events: list[Charge | Answered] = []
        try:
            events.append(self._events.get(timeout=timeout) if timeout > 0 else self._events.get_nowait())
        except queue.Empty:
            return events
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events

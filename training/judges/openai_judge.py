"""The ``openai`` judge backend: any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server,
``transformers serve``) through the official ``openai`` client.

Two routes (``judge.api``): ``chat`` sends the rendered judge messages to ``/chat/completions`` (the server
applies the model's chat template); ``completions`` renders them ourselves as a transcript
(:func:`completion_prompt`) and sends it to ``/completions`` with the turn markers as stop strings, for base
models, which answer chat requests with empty text or an echo of the prompt.

Requests run on a thread pool of ``config.concurrency`` workers. Per request:

* a call that fails with 429, 5xx, a timeout, a connection error or an unreadable body is retried with
  exponential backoff, waiting at least the server's ``Retry-After`` (:mod:`training.openai_http`), up to
  ``config.max_retries`` times; a :class:`~training.openai_http.CircuitBreaker` shared by all requests stops
  calling an endpoint that failed to answer :data:`BREAKER_THRESHOLD` calls in a row;
* an answer without a verdict is asked again after a backoff, at most ``config.max_reasks`` times and, with a
  budget, within ``config.reask_budget_share`` of it; a truncated answer (``finish_reason: length``) is not
  asked again (the same limit would cut it again) and fails as truncated;
* every call is reserved against the budget before it is made and charged at its real price when it answers
  (:class:`~training.judges.budget.Ledger`), so spend never passes the cap and every paid attempt is counted;
* a 400 naming an optional parameter the endpoint does not support (``seed``, ``logprobs``, ``stop``), or a
  5xx to a request that asks for log-probs where the same request without them succeeds, drops that parameter
  for the rest of the run, once; :attr:`OpenAIJudge.dropped` says what was dropped and why.

The verdict follows the policy of :mod:`training.judges.verdict`: only from the final answer (reasoning kept
in the raw output), ambiguous answers and log-probs that contradict the text count as no preference and are
flagged. The soft preference comes from the verdict token's log-probabilities when the endpoint returns them,
else it is the hard verdict (1.0 or 0.0).
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from training.config import JudgeConfig
from training.judge_prompt import JudgeRequest
from training.judges.base import Judge, OrderResult
from training.judges.budget import BUDGET_REFUSED, Charge, Ledger, cost_of_tokens, estimate_tokens
from training.judges.verdict import label_probability, label_side, parse_verdict, split_reasoning
from training.openai_http import (
    CircuitBreaker,
    RetriesExhausted,
    backoff_seconds,
    call_with_retries,
    describe,
    make_client,
)
from training.redaction import redact

#: Tokens allowed after the rationale budget for the verdict line itself.
VERDICT_TOKENS = 16
TOP_LOGPROBS = 5
#: Connection failures in a row (over all requests) after which the endpoint is given up for this stage.
BREAKER_THRESHOLD = 5
#: The error of a request not asked because the stage stopped (:meth:`OpenAIJudge.stop`).
STOPPED = "not asked: labeling stopped"
#: Base of the backoff before asking again after an answer without a verdict (seconds).
REASK_BASE_DELAY = 1.0
#: Request parameters the judge can do without; a 400 naming one drops it (log-probs go together).
OPTIONAL_PARAMS = {
    "seed": ("seed",),
    "logprobs": ("logprobs", "top_logprobs"),
    "top_logprobs": ("logprobs", "top_logprobs"),
    "stop": ("stop",),
}
_PARAM_IN_MESSAGE = re.compile(r"\b(seed|top_logprobs|logprobs|stop)\b", re.IGNORECASE)


def completion_prompt(messages: Sequence[Mapping[str, str]]) -> str:
    """The judge prompt for the ``completions`` route: the messages as a ``Human:``/``Assistant:`` transcript
    (:func:`training.transcript.render`, the format the base-model policy is prompted in)."""
    from training import transcript

    return transcript.render(messages)


def completion_stop_strings() -> list[str]:
    """Stop strings for the ``completions`` route: the transcript's next-turn markers."""
    from training import transcript

    return list(transcript.STOP_STRINGS)


class OpenAIJudge(Judge):
    """Judge through an OpenAI-compatible chat-completions or completions endpoint.

    Args:
        config: the run's judge config (``base_url``, ``model``, ``api_key_env``, ``api``, ``concurrency``,
            ``timeout_s``, ``max_retries``, ``max_reasks``, ``max_new_tokens``, ``temperature``,
            ``self_consistency``, prices).
        client: an ``openai.OpenAI`` client to use instead of one built from the config (tests).
        sleep: the function used to wait between retries (seconds).
        ledger: the budget and the record of paid attempts (:class:`~training.judges.budget.Ledger`); may be
            set later on the attribute of the same name. Without one, nothing is capped or recorded.

    Attributes:
        judge_id: ``openai:<model>@<base_url>``.
        needs_endpoint, paid: True (``base_url`` is required; calls are priced and capped by the budget).
        generates_rationale: True (self-consistency samples several rationales).
        order_invariant: False (the prompt shows an order; ask both).
        params: what, besides the prompt, determines the answer (part of the request cache key).
        breaker: the circuit breaker shared by this judge's calls.
        dropped: request parameters dropped after the endpoint refused them, with the reason (redacted).
    """

    needs_endpoint = True
    paid = True
    generates_rationale = True

    def __init__(self, config: JudgeConfig, client=None, sleep=time.sleep, ledger: Ledger | None = None) -> None:
        from training.judges import judge_id_for

        self.config = config
        self.judge_id = judge_id_for(config)
        self.client = client or make_client(
            config.base_url, config.api_key_env, config.timeout_s, max_connections=config.concurrency
        )
        self.sleep = sleep
        self.ledger = ledger
        self.sampled = config.self_consistency > 1
        self.params = {
            "temperature": config.temperature if self.sampled else 0.0,
            "max_tokens": config.max_new_tokens + VERDICT_TOKENS,
            "seed": config.seed if self.sampled else None,
        }
        if config.api != "chat":
            self.params["api"] = config.api
        self.breaker = CircuitBreaker(BREAKER_THRESHOLD, config.base_url)
        self.dropped: dict[str, str] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._stopping = False
        self._logprob_failures = 0

    @classmethod
    def from_config(cls, config: JudgeConfig, models_dir=None) -> OpenAIJudge:
        """The judge for ``config``'s endpoint (``models_dir`` is unused: nothing is loaded locally)."""
        return cls(config)

    def score(self, requests: Sequence[JudgeRequest]) -> list[OrderResult]:
        """Score requests concurrently (at most ``config.concurrency`` in flight); one result per request."""
        if not requests:
            return []
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.config.concurrency, thread_name_prefix="judge")
        return list(self._pool.map(self._score_one, requests))

    def stop(self) -> None:
        """Start no further call: requests not yet begun fail at once with :data:`STOPPED` (the calls in
        flight finish, and what they paid is reported to the ledger)."""
        self._stopping = True

    def close(self) -> None:
        """Stop the worker threads and close the HTTP connections."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.client.close()

    # --- one call ------------------------------------------------------------------------------------

    def _kwargs(self, request: JudgeRequest) -> dict:
        kwargs = {
            "model": self.config.model,
            "max_tokens": self.params["max_tokens"],
            "temperature": self.params["temperature"],
        }
        if self.config.api == "completions":
            kwargs["prompt"] = completion_prompt(request.messages)
            kwargs["stop"] = completion_stop_strings()
            kwargs["logprobs"] = TOP_LOGPROBS
        else:
            kwargs["messages"] = [dict(m) for m in request.messages]
            kwargs.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        if self.sampled:
            kwargs["seed"] = self.config.seed + request.sample
        with self._lock:
            dropped = tuple(self.dropped)
        for name in dropped:
            kwargs.pop(name, None)
        return kwargs

    def _send(self, kwargs: dict):
        if self.config.api == "completions":
            return self.client.completions.create(**kwargs)
        return self.client.chat.completions.create(**kwargs)

    def _drop(self, names: Sequence[str], reason: str) -> None:
        with self._lock:
            for name in names:
                self.dropped.setdefault(name, redact(reason)[:300])

    def _create(self, request: JudgeRequest):
        """One call. An optional parameter the endpoint refuses with a 400 is dropped and the call made again
        without it (once per parameter). Log-probs are dropped after two 5xx answers in a row to requests
        asking for them, when the same request without them then succeeds (a transient 5xx that a retry with
        log-probs gets past resets the count)."""
        import openai

        kwargs = self._kwargs(request)
        for _ in range(len(OPTIONAL_PARAMS) + 1):
            try:
                response = self._send(kwargs)
            except openai.BadRequestError as exc:
                names = self._unsupported(exc, kwargs)
                if not names:
                    raise
                self._drop(names, f"HTTP 400: {describe(exc)}")
                kwargs = {k: v for k, v in kwargs.items() if k not in names}
                continue
            except openai.APIStatusError as exc:
                if exc.status_code < 500 or "logprobs" not in kwargs:
                    raise
                with self._lock:
                    self._logprob_failures += 1
                    probe = self._logprob_failures >= 2
                if not probe:
                    raise
                # Some servers (llama.cpp) answer log-prob requests with 500: ask once without them.
                response = self._send({k: v for k, v in kwargs.items() if k not in ("logprobs", "top_logprobs")})
                self._drop(("logprobs", "top_logprobs"), f"log-prob requests failed twice with {describe(exc)}; "
                           "the same request without them succeeded")
                return response
            if "logprobs" in kwargs:
                with self._lock:
                    self._logprob_failures = 0
            return response
        raise RuntimeError("unreachable: every optional parameter was dropped")

    @staticmethod
    def _unsupported(exc, kwargs: Mapping) -> tuple[str, ...]:
        """The optional parameters a 400 blames, among those sent (its ``param`` field, else its message)."""
        body = getattr(exc, "body", None)
        named = body.get("param") if isinstance(body, Mapping) else None
        candidates = [named] if named else [m.group(1).lower() for m in _PARAM_IN_MESSAGE.finditer(str(exc))]
        for name in candidates:
            group = OPTIONAL_PARAMS.get(str(name).lower())
            if group and any(p in kwargs for p in group):
                return group
        return ()

    # --- one request ---------------------------------------------------------------------------------

    def _estimate(self, request: JudgeRequest) -> float:
        prompt = estimate_tokens(request.messages)
        return cost_of_tokens(
            prompt,
            self.params["max_tokens"],
            self.config.price_per_1k_prompt_tokens,
            self.config.price_per_1k_completion_tokens,
        )

    def _score_one(self, request: JudgeRequest) -> OrderResult:
        started = time.perf_counter()
        attempts = prompt_tokens = completion_tokens = reasks = 0
        raws: list[str] = []
        error = ""
        key = ""
        if self.ledger is not None:
            from training.labeling import request_key

            key = request_key(self, request)
        while True:
            if self._stopping:
                error = STOPPED
                break
            if self.breaker.is_open:
                error = describe(self.breaker.error())
                break
            estimate = self._estimate(request)
            if self.ledger is not None and not self.ledger.reserve(estimate, reask=reasks > 0):
                error = BUDGET_REFUSED + (" (re-asks' share)" if reasks else "")
                break
            try:
                response, used = call_with_retries(
                    lambda: self._create(request),
                    max_retries=self.config.max_retries,
                    sleep=self.sleep,
                    breaker=self.breaker,
                )
            except RetriesExhausted as exc:
                if self.ledger is not None:
                    self.ledger.release(estimate)
                attempts += exc.attempts
                error = describe(exc.error)
                break
            attempts += used
            try:
                reading = _read(response)
            except Exception as exc:  # noqa: BLE001 - an answer of an unexpected shape: paid, not usable
                reading = _Reading("", "", False, "", "", [], 0, 0, 0, has_usage=False)
                self._charge(key, estimate, reading, "estimated", reask=reasks > 0)
                error = f"unreadable answer: {describe(exc)}"
                break
            prompt_tokens += reading.prompt_tokens
            completion_tokens += reading.completion_tokens
            raws.append(reading.raw)
            verdict = parse_verdict(reading.answer)
            if verdict is None:
                truncated = reading.finish_reason == "length"
                outcome = "truncated" if truncated else "no verdict"
                if truncated:
                    error = (
                        f"truncated: the answer stopped at the token limit ({self.params['max_tokens']} tokens, "
                        "finish_reason length) before a verdict"
                        + (" (still thinking)" if reading.unfinished else "")
                        + "; raise judge.max_new_tokens"
                    )
                elif reading.answer:
                    error = f"no verdict line ({'Preferred: A'!r} or {'Preferred: B'!r}) in the answer"
                else:
                    error = "empty answer" + (" (only reasoning)" if reading.reasoning else "")
            else:
                outcome = "answer"
            self._charge(key, estimate, reading, outcome, reask=reasks > 0)
            if verdict is None:
                if outcome == "truncated" or reasks >= self.config.max_reasks:
                    break
                reasks += 1
                self.sleep(backoff_seconds(reasks, REASK_BASE_DELAY))
                continue
            p_first, flag = self._probability(verdict, reading)
            result = OrderResult(
                p_first=p_first,
                rationale=(f"[{flag}] " if flag else "") + verdict.rationale,
                raw=reading.raw,
                latency_ms=(time.perf_counter() - started) * 1000.0,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                attempts=attempts,
            )
            if self.ledger is not None:
                self.ledger.answered(key, dataclasses.asdict(result))
            return result
        return OrderResult(
            p_first=None,
            raw="\n\n---\n\n".join(raws),
            latency_ms=(time.perf_counter() - started) * 1000.0,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            error=redact(error or "failed"),
            attempts=attempts,
        )

    def _charge(self, key: str, estimate: float, reading: _Reading, outcome: str, *, reask: bool) -> None:
        if self.ledger is None:
            return
        prompt_tokens, completion_tokens = reading.prompt_tokens, reading.completion_tokens
        if not reading.has_usage:  # no usage in the answer: charge the reservation's bound, and say so
            cost, outcome = estimate, "estimated"
        else:
            cost = cost_of_tokens(
                prompt_tokens,
                completion_tokens,
                self.config.price_per_1k_prompt_tokens,
                self.config.price_per_1k_completion_tokens,
            )
        self.ledger.settle(estimate, Charge(key, prompt_tokens, completion_tokens, cost, outcome), reask=reask)

    @staticmethod
    def _probability(verdict, reading: _Reading) -> tuple[float, str]:
        """P(first shown preferred) and a flag, by the policy of :mod:`training.judges.verdict` (4 and 5)."""
        if verdict.ambiguous:
            return 0.5, "ambiguous: the answer names both A and B"
        if verdict.label == "tie":
            return 0.5, ""
        hard = 1.0 if verdict.label == "A" else 0.0
        if not reading.logprobs:
            return hard, ""
        p_first = label_probability(reading.logprobs, reading.answer_offset + verdict.label_offset)
        if p_first is None:
            return hard, ""
        side = label_side(p_first)
        if side and side != verdict.label:
            return 0.5, f"log-probs disagree with the text: it says {verdict.label}, P(A) = {p_first:.2f}"
        return p_first, ""


@dataclasses.dataclass
class _Reading:
    answer: str  # the final answer (verdict source)
    reasoning: str
    unfinished: bool
    finish_reason: str
    raw: str  # what is stored: reasoning in a <think> block, then the answer
    logprobs: list  # chat-style [{token, logprob, top_logprobs}] aligned with the content
    answer_offset: int  # where ``answer`` starts in the content
    prompt_tokens: int
    completion_tokens: int
    has_usage: bool


def _read(response) -> _Reading:
    """The parts of a chat-completions or completions response the judge uses."""
    usage = getattr(response, "usage", None)
    choice = response.choices[0] if getattr(response, "choices", None) else None
    finish_reason = str(getattr(choice, "finish_reason", "") or "")
    logprobs: list = []
    if choice is None:
        content, reasoning = "", ""
    elif hasattr(choice, "message"):
        message = choice.message
        content = message.content or ""
        extra = getattr(message, "model_extra", None) or {}
        reasoning = (
            getattr(message, "reasoning_content", None)
            or extra.get("reasoning_content")
            or extra.get("reasoning")
            or ""
        )
        chat_logprobs = getattr(choice, "logprobs", None)
        logprobs = list(getattr(chat_logprobs, "content", None) or [])
    else:  # a completions choice
        content, reasoning = getattr(choice, "text", "") or "", ""
        logprobs = _completion_logprobs(getattr(choice, "logprobs", None))
        from training import transcript

        cuts = [content.find(s) for s in transcript.STOP_STRINGS if s in content]
        content = content[: min(cuts)] if cuts else content
    answer, reasoning_text, unfinished = split_reasoning(content, str(reasoning))
    # Log-probs are aligned with the whole content, the verdict's offset with the answer inside it.
    answer_offset = content.rfind(answer) if answer else -1
    if answer_offset < 0:
        logprobs = []
    raw = (f"<think>{reasoning_text}</think>\n" if reasoning_text else "") + answer
    return _Reading(
        answer=answer,
        reasoning=reasoning_text,
        unfinished=unfinished,
        finish_reason=finish_reason,
        raw=redact(raw),
        logprobs=logprobs,
        answer_offset=max(answer_offset, 0),
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        has_usage=usage is not None,
    )


def _completion_logprobs(logprobs) -> list:
    """Completions log-probs (``tokens``, ``token_logprobs``, ``top_logprobs`` as dicts) in the chat layout."""
    if logprobs is None:
        return []
    tokens = list(getattr(logprobs, "tokens", None) or [])
    values = list(getattr(logprobs, "token_logprobs", None) or [])
    tops = list(getattr(logprobs, "top_logprobs", None) or [])
    out = []
    for index, token in enumerate(tokens):
        top = tops[index] if index < len(tops) and tops[index] else {}
        out.append(
            {
                "token": token,
                "logprob": values[index] if index < len(values) else None,
                "top_logprobs": [{"token": t, "logprob": lp} for t, lp in dict(top).items()],
            }
        )
    return out

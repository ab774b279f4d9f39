"""The ``openai`` judge backend: any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp
server, ``transformers serve``) through the official ``openai`` client.

Requests run on a thread pool of ``config.concurrency`` workers. A call that fails with 429, 5xx, a timeout
or a connection error is retried with exponential backoff, waiting at least the server's ``Retry-After``
(:mod:`training.openai_http`); an answer without a parseable verdict line is asked again. Both kinds of retry
share the ``config.max_retries`` budget per request. The soft preference comes from the verdict token's
log-probabilities when the endpoint returns them, else it is the hard verdict (1.0 or 0.0).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from training.config import JudgeConfig
from training.judge_prompt import JudgeRequest
from training.judges.base import OrderResult
from training.judges.verdict import label_probability, parse_verdict
from training.openai_http import RetriesExhausted, call_with_retries, describe, make_client

#: Tokens allowed after the rationale budget for the verdict line itself.
VERDICT_TOKENS = 16
TOP_LOGPROBS = 5


class OpenAIJudge:
    """Judge through an OpenAI-compatible chat-completions endpoint.

    Args:
        config: the run's judge config (``base_url``, ``model``, ``api_key_env``, ``concurrency``,
            ``timeout_s``, ``max_retries``, ``max_new_tokens``, ``temperature``, ``self_consistency``).
        client: an ``openai.OpenAI`` client to use instead of one built from the config (tests).
        sleep: the function used to wait between retries (seconds).

    Attributes:
        judge_id: ``openai:<model>@<base_url>``.
        generates_rationale: True (self-consistency samples several rationales).
        order_invariant: False (the prompt shows an order; ask both).
        params: what, besides the prompt, determines the answer (part of the request cache key).
    """

    generates_rationale = True
    order_invariant = False

    def __init__(self, config: JudgeConfig, client=None, sleep=time.sleep) -> None:
        from training.judges import judge_id_for

        self.config = config
        self.judge_id = judge_id_for(config)
        self.client = client or make_client(
            config.base_url, config.api_key_env, config.timeout_s, max_connections=config.concurrency
        )
        self.sleep = sleep
        self.sampled = config.self_consistency > 1
        self.params = {
            "temperature": config.temperature if self.sampled else 0.0,
            "max_tokens": config.max_new_tokens + VERDICT_TOKENS,
            "seed": config.seed if self.sampled else None,
        }
        self._logprobs = True
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def score(self, requests: Sequence[JudgeRequest]) -> list[OrderResult]:
        """Score requests concurrently (at most ``config.concurrency`` in flight); one result per request."""
        if not requests:
            return []
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.config.concurrency, thread_name_prefix="judge")
        return list(self._pool.map(self._score_one, requests))

    def close(self) -> None:
        """Stop the worker threads and close the HTTP connections."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.client.close()

    # --- one request ---------------------------------------------------------------------------------

    def _create(self, request: JudgeRequest):
        kwargs = {
            "model": self.config.model,
            "messages": [dict(m) for m in request.messages],
            "max_tokens": self.params["max_tokens"],
            "temperature": self.params["temperature"],
        }
        if self.sampled:
            kwargs["seed"] = self.config.seed + request.sample
        if self._logprobs:
            kwargs.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        try:
            return self.client.chat.completions.create(**kwargs)
        except Exception as exc:
            import openai

            if self._logprobs and isinstance(exc, openai.BadRequestError) and "logprob" in str(exc).lower():
                self._logprobs = False  # the endpoint does not do log-probs: hard verdicts from now on
                kwargs.pop("logprobs"), kwargs.pop("top_logprobs")
                return self.client.chat.completions.create(**kwargs)
            raise

    def _score_one(self, request: JudgeRequest) -> OrderResult:
        started = time.perf_counter()
        attempts = prompt_tokens = completion_tokens = 0
        raws: list[str] = []
        error = ""
        while attempts <= self.config.max_retries:
            try:
                response, used = call_with_retries(
                    lambda: self._create(request),
                    max_retries=self.config.max_retries - attempts,
                    sleep=self.sleep,
                )
            except RetriesExhausted as exc:
                attempts += exc.attempts
                error = describe(exc.error)
                break
            except Exception as exc:  # noqa: BLE001 - a malformed response body: record and give up
                attempts += 1
                error = describe(exc)
                break
            attempts += used
            usage = getattr(response, "usage", None)
            prompt_tokens += getattr(usage, "prompt_tokens", 0) or 0
            completion_tokens += getattr(usage, "completion_tokens", 0) or 0
            choice = response.choices[0] if response.choices else None
            text = (choice.message.content or "") if choice is not None else ""
            raws.append(text)
            verdict = parse_verdict(text)
            if verdict is None:
                error = f"no verdict line ({'Preferred: A'!r} or {'Preferred: B'!r}) in the answer"
                continue
            p_first = None
            logprobs = getattr(choice, "logprobs", None)
            if logprobs is not None and getattr(logprobs, "content", None):
                p_first = label_probability(logprobs.content, verdict.label_offset)
            if p_first is None:
                p_first = 1.0 if verdict.label == "A" else 0.0
            return OrderResult(
                p_first=p_first,
                rationale=verdict.rationale,
                raw=text,
                latency_ms=(time.perf_counter() - started) * 1000.0,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                attempts=attempts,
            )
        return OrderResult(
            p_first=None,
            raw="\n\n---\n\n".join(raws),
            latency_ms=(time.perf_counter() - started) * 1000.0,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            error=error or "failed",
            attempts=max(attempts, 1),
        )

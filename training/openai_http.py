"""Calling OpenAI-compatible endpoints (OpenAI, vLLM, Ollama, llama.cpp server, ``transformers serve``)
through the official ``openai`` client, with our own retry loop.

The client's built-in retries are switched off (``max_retries=0``) so that every attempt is counted and a
retry policy is the same for the judge and for generation: exponential backoff with jitter on 429, 5xx,
timeouts and connection errors, waiting at least what the server asks for in ``Retry-After`` (or
``retry-after-ms``). Other 4xx errors (bad request, authentication, unknown model) are not retried.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from training.redaction import read_key, redact

T = TypeVar("T")

#: Longest wait between two attempts, in seconds, whatever the server's Retry-After says.
MAX_BACKOFF_S = 60.0


def make_client(base_url: str, api_key_env: str, timeout_s: float, max_connections: int = 64):
    """An ``openai.OpenAI`` client for ``base_url`` with the client's own retries off.

    Args:
        base_url: e.g. ``https://api.openai.com/v1`` or ``http://127.0.0.1:8000/v1``.
        api_key_env: name of the environment variable holding the key; empty for keyless local servers.
        timeout_s: per-request timeout in seconds.
        max_connections: HTTP connection pool size (at least the concurrency used).

    Raises:
        ValueError: ``api_key_env`` names a variable that is not set, or a name the deployment does not
            allow (:class:`training.redaction.KeyNameError`).
    """
    import httpx2
    from openai import DefaultHttpxClient, OpenAI

    # One INFO line per HTTP request would flood a stage's log; keep warnings and errors.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    key = read_key(api_key_env)
    limits = httpx2.Limits(max_connections=max(max_connections, 8), max_keepalive_connections=max(max_connections, 8))
    return OpenAI(
        base_url=base_url,
        api_key=key or "not-needed",
        timeout=timeout_s,
        max_retries=0,
        http_client=DefaultHttpxClient(limits=limits, timeout=timeout_s),
    )


def retry_after_seconds(exc: BaseException) -> float | None:
    """The wait a failed response asks for (``retry-after-ms`` or ``Retry-After`` seconds or HTTP date)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - time.time())


def is_retryable(exc: BaseException) -> bool:
    """429, 408, 409, 5xx, timeouts and connection errors are worth another attempt."""
    import openai

    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return False


def backoff_seconds(attempt: int, base: float = 0.5, cap: float = MAX_BACKOFF_S) -> float:
    """Full-jitter exponential backoff before retry number ``attempt`` (1-based): U(0.5, 1) * base * 2**(attempt-1)."""
    return min(cap, base * (2 ** (attempt - 1)) * random.uniform(0.5, 1.0))


def describe(exc: BaseException) -> str:
    """A one-line description of a failed call for the judgment's ``error`` field."""
    status = getattr(exc, "status_code", None)
    prefix = f"HTTP {status}: " if status else ""
    return redact(f"{prefix}{type(exc).__name__}: {exc}")[:1000]


def call_with_retries(
    fn: Callable[[], T],
    *,
    max_retries: int,
    base_delay: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[T, int]:
    """Call ``fn`` until it succeeds, retrying retryable errors up to ``max_retries`` times.

    The wait before a retry is the larger of the exponential backoff and the server's ``Retry-After``,
    capped at :data:`MAX_BACKOFF_S`.

    Returns:
        ``(result, attempts)``.

    Raises:
        RetriesExhausted: the last error, with the number of attempts made (``attempts``), once retries are
            spent or the error is not retryable.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn(), attempt
        except Exception as exc:  # noqa: BLE001 - classified below
            if attempt > max_retries or not is_retryable(exc):
                raise RetriesExhausted(exc, attempt) from exc
            wait = backoff_seconds(attempt, base_delay)
            asked = retry_after_seconds(exc)
            if asked is not None:
                wait = max(wait, min(asked, MAX_BACKOFF_S))
            sleep(wait)


class RetriesExhausted(Exception):
    """A call failed for good.

    Attributes:
        error: the last exception.
        attempts: calls made.
    """

    def __init__(self, error: BaseException, attempts: int) -> None:
        super().__init__(describe(error))
        self.error = error
        self.attempts = attempts

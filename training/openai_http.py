"""Calling OpenAI-compatible endpoints (OpenAI, vLLM, Ollama, llama.cpp server, ``transformers serve``)
through the official ``openai`` client, with our own retry loop.

The client's built-in retries are switched off (``max_retries=0``) so that every attempt is counted and a
retry policy is the same for the judge and for generation: exponential backoff with jitter on 429, 5xx,
timeouts, connection errors and unreadable (e.g. truncated) response bodies, waiting at least what the
server asks for in ``Retry-After`` (or ``retry-after-ms``; a value that is neither seconds nor an HTTP date
is ignored and the backoff applies). Other 4xx errors (bad request, authentication, unknown model) are not
retried.

A dead endpoint fails fast: a :class:`CircuitBreaker` shared by a backend's calls opens after
``threshold`` connection failures in a row, and from then on every call fails at once without a request
(:class:`EndpointDown`). :func:`probe_endpoint` checks an endpoint before a run is launched.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random
import threading
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
            value_ms = float(ms)
        except ValueError:
            value_ms = math.nan
        if math.isfinite(value_ms) and value_ms >= 0:
            return value_ms / 1000.0
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None  # neither seconds nor an HTTP date: the caller's backoff applies
        if parsed is None:
            return None
        if parsed.tzinfo is None:  # RFC 9110 dates are GMT; a zone-less one is read as UTC
            import datetime

            parsed = parsed.replace(tzinfo=datetime.UTC)
        return max(0.0, parsed.timestamp() - time.time())
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def is_connection_failure(exc: BaseException) -> bool:
    """No HTTP answer came back at all (refused, reset, DNS, timeout): what a :class:`CircuitBreaker` counts."""
    import openai

    return isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError))


def is_unreadable_body(exc: BaseException) -> bool:
    """A 2xx answer whose body could not be read (truncated or invalid JSON, or not the expected shape)."""
    import openai

    return isinstance(exc, (json.JSONDecodeError, openai.APIResponseValidationError))


def is_retryable(exc: BaseException) -> bool:
    """429, 408, 409, 5xx, timeouts, connection errors and unreadable response bodies are worth another
    attempt."""
    import openai

    if is_connection_failure(exc) or is_unreadable_body(exc):
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
    breaker: CircuitBreaker | None = None,
) -> tuple[T, int]:
    """Call ``fn`` until it succeeds, retrying retryable errors up to ``max_retries`` times.

    The wait before a retry is the larger of the exponential backoff and the server's ``Retry-After``,
    capped at :data:`MAX_BACKOFF_S`. With a ``breaker``, every outcome is reported to it and no call is
    made while it is open (the call fails with :class:`EndpointDown`, not retried).

    Returns:
        ``(result, attempts)``.

    Raises:
        RetriesExhausted: the last error, with the number of attempts made (``attempts``), once retries are
            spent or the error is not retryable.
    """
    attempt = 0
    while True:
        if breaker is not None and breaker.is_open:
            raise RetriesExhausted(breaker.error(), attempt)
        attempt += 1
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - classified below
            if breaker is not None:
                breaker.record(exc)
            if breaker is not None and breaker.is_open:
                raise RetriesExhausted(breaker.error(), attempt) from exc
            if attempt > max_retries or not is_retryable(exc):
                raise RetriesExhausted(exc, attempt) from exc
            wait = backoff_seconds(attempt, base_delay)
            asked = retry_after_seconds(exc)
            if asked is not None:
                wait = max(wait, min(asked, MAX_BACKOFF_S))
            sleep(wait)
            continue
        if breaker is not None:
            breaker.record(None)
        return result, attempt


class EndpointDown(ConnectionError):
    """The endpoint failed to answer ``failures`` calls in a row; no further call is made."""


class CircuitBreaker:
    """Opens after ``threshold`` consecutive connection failures (no HTTP answer at all) and stays open.

    Any HTTP answer, even an error status, shows the endpoint is alive and resets the count. Thread-safe:
    one breaker is shared by all of a backend's worker threads, so a dead endpoint costs about
    ``threshold`` requests (plus the ones already in flight), not ``retries × requests``.

    Args:
        threshold: consecutive connection failures that open it.
        endpoint: the base URL, for the message.
    """

    def __init__(self, threshold: int = 5, endpoint: str = "") -> None:
        self.threshold = threshold
        self.endpoint = endpoint
        self.failures = 0
        self.last_error = ""
        self.is_open = False
        self._lock = threading.Lock()

    def record(self, exc: BaseException | None) -> None:
        """Report one call's outcome: None (an answer came), or the exception it raised."""
        with self._lock:
            if self.is_open:
                return  # stays open; the count says what opened it
            if exc is None or not is_connection_failure(exc):
                self.failures = 0
                return
            self.failures += 1
            self.last_error = describe(exc)
            if self.failures >= self.threshold:
                self.is_open = True

    def error(self) -> EndpointDown:
        """The exception a call gets while the breaker is open, saying what is wrong."""
        return EndpointDown(
            redact(
                f"the endpoint {self.endpoint or '(unknown)'} did not answer {self.failures} calls in a row "
                f"(last: {self.last_error}); stopped calling it. Check that the server is running and "
                "base_url is right"
            )
        )


def probe_endpoint(base_url: str, model: str, api_key_env: str = "", timeout_s: float = 5.0, client=None) -> str:
    """Check an OpenAI-compatible endpoint with one cheap request (``GET {base_url}/models``).

    Args:
        base_url: e.g. ``http://127.0.0.1:8000/v1``.
        model: the model name the run will ask for; it must be in the list the server serves (servers that
            list no models at all are not held to this).
        api_key_env: the key's environment variable name ("" for keyless servers).
        timeout_s: seconds to wait for the answer.
        client: an ``openai.OpenAI`` client to use instead of one built from the arguments (tests).

    Returns:
        "" when the endpoint answers and serves ``model``, else one sentence saying what is wrong
        (unreachable, refused key, no such route, model not served), redacted.
    """
    import openai

    own = client is None
    try:
        client = client or make_client(base_url, api_key_env, timeout_s, max_connections=1)
    except ValueError as exc:
        return redact(str(exc))
    try:
        served = [m.id for m in client.models.list()]
    except openai.AuthenticationError as exc:
        return describe_problem(base_url, f"refused the API key (HTTP {exc.status_code})")
    except openai.APITimeoutError:
        return describe_problem(base_url, f"did not answer GET /models within {timeout_s:g} s")
    except openai.APIConnectionError as exc:
        cause = exc.__cause__ or exc
        return describe_problem(base_url, f"is unreachable ({type(cause).__name__}: {cause})")
    except openai.APIStatusError as exc:
        return describe_problem(
            base_url, f"answered GET /models with HTTP {exc.status_code}; is base_url the API root (…/v1)?"
        )
    except Exception as exc:  # noqa: BLE001 - an answer that is not a model list
        return describe_problem(base_url, f"answered GET /models with something that is not a model list ({exc})")
    finally:
        if own and client is not None:
            client.close()
    if served and model not in served:
        listed = ", ".join(served[:10]) + (" …" if len(served) > 10 else "")
        return describe_problem(base_url, f"does not serve the model {model!r}; it serves: {listed}")
    return ""


def describe_problem(base_url: str, what: str) -> str:
    """``the endpoint <url> <what>``, redacted and bounded."""
    return redact(f"the endpoint {base_url} {what}")[:500]


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

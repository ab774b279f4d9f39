"""Sampling candidate responses through an OpenAI-compatible endpoint (a vLLM server for scale).

``generation.api: chat`` (default) uses the chat-completions API, so the server applies the model's chat
template as local generation does; ``completions`` sends the prompt rendered by us as a ``Human:``/
``Assistant:`` transcript (:mod:`training.transcript`) to ``/completions``, for base models served without
a chat template (llama.cpp answers their chat requests with empty text or an echo). Either way the
transcript's turn markers are sent as stop strings and each answer is cut at the first one
(:func:`training.transcript.trim`), so no sample goes on to write the next ``Human:`` turn. ``n=K`` asks for
all samples of a prompt in one call, and servers that ignore ``n`` (Ollama, llama.cpp) are called again until
K samples exist. Calls run ``config.concurrency`` at a time with the retry policy of
:mod:`training.openai_http`; after 5 calls in a row without an answer, no further call is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from training import transcript
from training.chat import as_messages
from training.config import GenerationConfig
from training.generation import Conversation, Sample
from training.generation_backends import Sampler
from training.openai_http import CircuitBreaker, RetriesExhausted, call_with_retries, make_client
from training.progress import NullReporter, Reporter, check_cancelled


class GenerationError(RuntimeError):
    """The endpoint failed for a prompt after all retries (the stage fails; finished batches are kept)."""


def generate_openai(
    prompts: Sequence[Conversation],
    config: GenerationConfig,
    *,
    num_samples: int | None = None,
    reporter: Reporter | None = None,
    progress_offset: int = 0,
    progress_total: int | None = None,
    client=None,
) -> list[Sample]:
    """Sample ``num_samples`` (default ``config.samples_per_prompt``) responses per prompt from the endpoint.

    Args:
        prompts: plain strings or chat message lists.
        config: ``base_url``, ``model``, ``api_key_env``, ``api``, sampling parameters, ``concurrency``,
            ``timeout_s``, ``max_retries``; prompt ``i`` is sampled with seed ``config.seed + progress_offset + i``.
        client: an ``openai.OpenAI`` client to use instead of one built from the config.

    Returns:
        Samples ordered by prompt, then sample index (``token_count`` from the server's usage, split evenly).

    Raises:
        GenerationError: a prompt's calls failed after all retries.
        training.progress.Cancelled: the reporter asked to stop (checked before the calls).
    """
    reporter = reporter or NullReporter()
    check_cancelled(reporter)
    k = num_samples or config.samples_per_prompt
    own_client = client is None
    client = client or make_client(config.base_url, config.api_key_env, config.timeout_s, config.concurrency)
    total = progress_total if progress_total is not None else progress_offset + len(prompts)
    completions = config.api == "completions"
    breaker = CircuitBreaker(5, config.base_url)  # a dead endpoint: stop after 5 unanswered calls in a row

    def sample_prompt(index: int) -> list[Sample]:
        texts: list[str] = []
        tokens: list[int] = []
        calls = 0
        while len(texts) < k and calls < k:
            calls += 1
            kwargs = dict(
                model=config.model,
                n=k - len(texts),
                max_tokens=config.max_new_tokens,
                temperature=config.temperature,
                top_p=config.top_p,
                seed=config.seed + progress_offset + index + 7919 * (calls - 1),
                stop=list(transcript.STOP_STRINGS),
            )
            messages = as_messages(prompts[index])
            if completions:
                kwargs["prompt"] = transcript.render(messages)
                create = client.completions.create
            else:
                kwargs["messages"] = messages
                create = client.chat.completions.create
            try:
                response, _ = call_with_retries(
                    lambda kwargs=kwargs, create=create: create(**kwargs),
                    max_retries=config.max_retries,
                    breaker=breaker,
                )
            except RetriesExhausted as exc:
                raise GenerationError(f"prompt {progress_offset + index}: {exc}") from exc.error
            choices = list(response.choices or [])
            completion_tokens = getattr(getattr(response, "usage", None), "completion_tokens", 0) or 0
            for choice in choices[: k - len(texts)]:
                text = (choice.text if completions else choice.message.content) or ""
                texts.append(transcript.trim(text))
                tokens.append(completion_tokens // max(1, len(choices)))
        if len(texts) < k:
            raise GenerationError(
                f"prompt {progress_offset + index}: the endpoint returned {len(texts)} of {k} samples"
            )
        return [Sample(index, s, texts[s], tokens[s]) for s in range(k)]

    try:
        with ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="generate") as pool:
            per_prompt = list(pool.map(sample_prompt, range(len(prompts))))
    finally:
        if own_client:
            client.close()
    reporter.progress(progress_offset + len(prompts), total, "generating")
    return [s for samples in per_prompt for s in samples]


class OpenAISampler(Sampler):
    """The ``openai`` generation backend: samples through the endpoint with :func:`generate_openai`.

    Args:
        config: the endpoint (``base_url``, ``model``, ``api_key_env``, ``api``) and sampling parameters.
        model_name, models_dir, reporter: unused (the model is the name the endpoint serves; nothing loads).
    """

    needs_endpoint = True

    def __init__(
        self,
        config: GenerationConfig,
        model_name: str | None = None,
        models_dir: Path | None = None,
        reporter: Reporter | None = None,
    ) -> None:
        self.config = config

    def __call__(
        self,
        prompts: Sequence[Conversation],
        *,
        num_samples: int | None = None,
        reporter: Reporter | None = None,
        progress_offset: int = 0,
        progress_total: int | None = None,
    ) -> list[Sample]:
        """Sample with :func:`generate_openai` (see there)."""
        return generate_openai(
            prompts,
            self.config,
            num_samples=num_samples,
            reporter=reporter,
            progress_offset=progress_offset,
            progress_total=progress_total,
        )

"""Sampling candidates through an OpenAI-compatible endpoint (the vLLM route), against a real local server."""

from __future__ import annotations

import pytest

from training.config import GenerationConfig
from training.generation_openai import GenerationError, generate_openai
from training.progress import Cancelled, RecordingReporter


def _config(server, **overrides) -> GenerationConfig:
    return GenerationConfig(backend="openai", base_url=server.url, model="policy-model", **overrides)


def test_k_samples_per_prompt_in_order(chat_server):
    reporter = RecordingReporter()
    prompts = ["Tell me a joke.", [{"role": "user", "content": "Say hi."}], "What is 2+2?"]
    samples = generate_openai(
        prompts,
        _config(chat_server, samples_per_prompt=3, seed=10),
        reporter=reporter,
        progress_offset=4,
        progress_total=9,
    )
    assert [(s.prompt_index, s.sample_index) for s in samples] == [(p, i) for p in range(3) for i in range(3)]
    assert samples[4].text == "sample 1 of Say hi."
    assert all(s.token_count > 0 for s in samples)
    bodies = sorted(chat_server.requests, key=lambda b: b["seed"])
    assert [b["seed"] for b in bodies] == [14, 15, 16]  # seed + position in the prompt set
    assert {b["n"] for b in bodies} == {3} and bodies[0]["max_tokens"] == 48
    assert reporter.progress_calls[-1][:2] == (7, 9)


def test_stop_strings_are_sent_and_a_next_turn_is_never_kept(chat_server):
    samples = generate_openai(["Hello #nostop", "Hi"], _config(chat_server))
    assert [s.text for s in samples] == ["sample 0 of Hello #nostop", "sample 1 of Hello #nostop",
                                         "sample 0 of Hi", "sample 1 of Hi"]
    assert all("\nHuman:" in body["stop"] for body in chat_server.requests)


def test_the_completions_route_sends_a_transcript_for_base_models(chat_server):
    samples = generate_openai([[{"role": "user", "content": "Say hi."}]], _config(chat_server, api="completions"))
    assert [s.text for s in samples] == ["sample 0 of Human: Say hi.", "sample 1 of Human: Say hi."]
    assert chat_server.paths == {"POST /v1/completions": 1}
    body = chat_server.requests[0]
    assert body["prompt"] == "Human: Say hi.\n\nAssistant:" and "\nHuman:" in body["stop"]


def test_server_errors_fail_the_batch_with_the_prompt_named(chat_server):
    with pytest.raises(GenerationError, match="prompt 0.*500"):
        generate_openai(["broken #error500"], _config(chat_server, max_retries=0))


def test_cancel_is_checked_before_calling(chat_server):
    with pytest.raises(Cancelled):
        generate_openai(["x"], _config(chat_server), reporter=RecordingReporter(stop_after=0))
    assert chat_server.requests == []


def test_a_dead_endpoint_fails_fast_and_says_so(chat_server):
    import time

    started = time.perf_counter()
    with pytest.raises(GenerationError, match="did not answer 5 calls in a row"):
        generate_openai([f"q{i} #drop" for i in range(40)], _config(chat_server, concurrency=4, max_retries=4))
    assert time.perf_counter() - started < 20
    assert chat_server.paths["POST /v1/chat/completions"] <= 5 + 4  # not 40 prompts x 5 attempts

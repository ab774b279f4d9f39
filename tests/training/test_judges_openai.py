"""The openai judge backend against a real chat-completions server on 127.0.0.1."""

from __future__ import annotations

import pytest

from training.config import JudgeConfig
from training.judge_prompt import DEFAULT_TEMPLATE, render_both_orders
from training.judges import build_judge, judge_id_for
from training.judges.openai_judge import OpenAIJudge
from training.judges.verdict import label_probability, parse_verdict


def _judge(server, waits=None, **overrides) -> OpenAIJudge:
    config = JudgeConfig(backend="openai", model="judge-model", base_url=server.url, **overrides)
    return OpenAIJudge(config, sleep=(waits.append if waits is not None else (lambda s: None)))


def _orders(marker: str = "", long: str = "A detailed, careful and correct answer.", short: str = "No."):
    return list(
        render_both_orders(DEFAULT_TEMPLATE, "Which response is more helpful?", f"Question {marker}", long, short)
    )


def test_good_verdict_gives_hard_probabilities_rationale_and_tokens(chat_server):
    judge = _judge(chat_server)
    ab, ba = judge.score(_orders())
    assert (ab.p_first, ba.p_first) == (1.0, 0.0)  # the longer response wins in both orders
    assert ab.rationale == "Response A is longer and more detailed."
    assert ab.raw.endswith("Preferred: A") and ba.raw.endswith("Preferred: B")
    assert ab.error == "" and ab.attempts == 1
    assert ab.prompt_tokens > 50 and ab.completion_tokens == 9
    body = chat_server.requests[0]
    assert body["model"] == "judge-model" and body["temperature"] == 0.0 and body["logprobs"] is True
    judge.close()


def test_logprobs_give_the_soft_preference(chat_server):
    judge = _judge(chat_server)
    ab, ba = judge.score(_orders("#logprobs"))
    assert ab.p_first == pytest.approx(0.8)
    assert ba.p_first == pytest.approx(0.2)
    judge.close()


def test_garbage_is_retried_then_reported_with_raw_output(chat_server):
    judge = _judge(chat_server, max_retries=2)
    result = judge.score(_orders("#garbage")[:1])[0]
    assert result.p_first is None
    assert "no verdict line" in result.error
    assert result.attempts == 3
    assert "I cannot decide" in result.raw
    assert sum(chat_server.calls.values()) == 3


def test_a_parse_failure_is_asked_again(chat_server):
    judge = _judge(chat_server, max_retries=2)
    result = judge.score(_orders("#flaky")[:1])[0]
    assert result.p_first == 1.0 and result.attempts == 2 and result.error == ""


def test_429_waits_at_least_retry_after(chat_server):
    waits: list[float] = []
    judge = _judge(chat_server, waits, max_retries=3)
    result = judge.score(_orders("#ratelimit")[:1])[0]
    assert result.p_first == 1.0 and result.attempts == 2
    assert len(waits) == 1 and waits[0] >= 2.0


def test_500_is_retried_with_growing_backoff_then_fails(chat_server):
    waits: list[float] = []
    judge = _judge(chat_server, waits, max_retries=3)
    result = judge.score(_orders("#error500")[:1])[0]
    assert result.p_first is None and result.attempts == 4
    assert result.error.startswith("HTTP 500")
    assert len(waits) == 3
    # full-jitter exponential backoff: attempt n waits within [0.25, 0.5] * 2**(n-1) seconds
    for n, wait in enumerate(waits, start=1):
        assert 0.25 * 2 ** (n - 1) <= wait <= 0.5 * 2 ** (n - 1)


def test_a_response_slower_than_the_timeout_fails_as_timeout(chat_server):
    judge = _judge(chat_server, timeout_s=0.3, max_retries=1)
    result = judge.score(_orders("#slow")[:1])[0]
    assert result.p_first is None and result.attempts == 2
    assert "Timeout" in result.error


def test_bad_request_is_not_retried(chat_server):
    judge = OpenAIJudge(JudgeConfig(backend="openai", model="m", base_url=chat_server.url + "/nowhere"))
    result = judge.score(_orders()[:1])[0]
    assert result.p_first is None and result.attempts == 1 and "404" in result.error


def test_concurrency_is_bounded(chat_server):
    chat_server.delay_s = 0.05
    judge = _judge(chat_server, concurrency=3)
    requests = [r for i in range(6) for r in _orders(f"q{i}")]
    results = judge.score(requests)
    assert [r.p_first for r in results] == [1.0, 0.0] * 6  # in request order
    assert 1 < chat_server.max_in_flight <= 3
    judge.close()


def test_self_consistency_samples_with_temperature_and_seed(chat_server):
    from dataclasses import replace

    judge = _judge(chat_server, self_consistency=3, temperature=0.9, seed=5)
    request = _orders()[0]
    judge.score([replace(request, sample=s) for s in range(3)])
    seeds = sorted(body["seed"] for body in chat_server.requests)
    assert seeds == [5, 6, 7]
    assert {body["temperature"] for body in chat_server.requests} == {0.9}


def test_missing_api_key_variable_is_named(monkeypatch, chat_server):
    monkeypatch.delenv("STUDIO_KEY_FOR_TEST", raising=False)
    config = JudgeConfig(backend="openai", model="m", base_url=chat_server.url, api_key_env="STUDIO_KEY_FOR_TEST")
    with pytest.raises(ValueError, match="STUDIO_KEY_FOR_TEST"):
        build_judge(config)
    monkeypatch.setenv("STUDIO_KEY_FOR_TEST", "sk-test")
    judge = build_judge(config)
    assert judge.judge_id == judge_id_for(config) == f"openai:m@{chat_server.url}"


@pytest.mark.parametrize(
    ("text", "label", "rationale"),
    [
        ("Because.\nPreferred: A", "A", "Because."),
        ("Reasoning...\n**Preferred:** B", "B", "Reasoning..."),
        ("preferred: response b", "B", ""),
        ("Write Preferred: A or Preferred: B.\nPreferred: (B)", "B", "Write Preferred: A or Preferred: B."),
    ],
)
def test_parse_verdict_formats(text, label, rationale):
    parsed = parse_verdict(text)
    assert parsed.label == label and parsed.rationale == rationale


def test_parse_verdict_rejects_answers_without_the_line():
    assert parse_verdict("A is better") is None
    assert parse_verdict("Preferred: C") is None


def test_label_probability_sums_label_variants():
    import math

    text = "ok\nPreferred: A"
    tokens = [
        {"token": "ok", "logprob": 0.0, "top_logprobs": []},
        {"token": "\nPreferred:", "logprob": 0.0, "top_logprobs": []},
        {
            "token": " A",
            "logprob": math.log(0.5),
            "top_logprobs": [
                {"token": " A", "logprob": math.log(0.5)},
                {"token": "A", "logprob": math.log(0.1)},
                {"token": " B", "logprob": math.log(0.4)},
            ],
        },
    ]
    offset = parse_verdict(text).label_offset
    assert label_probability(tokens, offset) == pytest.approx(0.6)
    assert label_probability(tokens, 0) is None  # no label alternatives at "ok"

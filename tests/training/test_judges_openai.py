"""The openai judge backend against a real chat-completions server on 127.0.0.1."""

from __future__ import annotations

import time

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


def test_garbage_is_asked_again_after_a_backoff_up_to_max_reasks(chat_server):
    waits: list[float] = []
    judge = _judge(chat_server, waits, max_retries=4, max_reasks=2)
    result = judge.score(_orders("#garbage")[:1])[0]
    assert result.p_first is None
    assert "no verdict line" in result.error
    assert result.attempts == 3  # the first answer and two re-asks, not max_retries + 1
    assert "I cannot decide" in result.raw
    assert sum(chat_server.calls.values()) == 3
    # not at once: full-jitter backoff from REASK_BASE_DELAY = 1 s
    assert len(waits) == 2 and 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0


def test_an_empty_answer_says_empty(chat_server):
    result = _judge(chat_server, max_reasks=0).score(_orders("#empty")[:1])[0]
    assert result.p_first is None and result.error == "empty answer" and result.attempts == 1


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


def test_a_truncated_json_body_is_retried(chat_server):
    result = _judge(chat_server, max_retries=2).score(_orders("#truncated")[:1])[0]
    assert result.p_first == 1.0 and result.attempts == 2 and result.error == ""


def test_an_unparseable_retry_after_falls_back_to_the_backoff(chat_server):
    waits: list[float] = []
    result = _judge(chat_server, waits, max_retries=2).score(_orders("#badretry")[:1])[0]
    assert result.p_first == 1.0 and result.attempts == 2
    assert len(waits) == 1 and 0.25 <= waits[0] <= 0.5  # the first backoff step


@pytest.mark.parametrize("value", ["soon, maybe", "Wed, 99 Foo 2026 25:61:00 GMT", "nan", "-3", ""])
def test_retry_after_values_that_are_not_seconds_or_dates_are_ignored(value):
    from types import SimpleNamespace

    from training.openai_http import retry_after_seconds

    exc = SimpleNamespace(response=SimpleNamespace(headers={"retry-after": value}))
    assert retry_after_seconds(exc) is None


def test_a_dead_endpoint_opens_the_breaker_after_a_few_calls(chat_server):
    from training.judges.openai_judge import BREAKER_THRESHOLD

    judge = _judge(chat_server, max_retries=4, concurrency=4)
    started = time.perf_counter()
    results = judge.score([r for i in range(20) for r in _orders(f"#drop q{i}")])
    assert time.perf_counter() - started < 10
    assert all(r.p_first is None for r in results)
    # without the breaker: 40 requests x 5 attempts; with it: the threshold, plus the calls already in flight
    assert chat_server.paths["POST /v1/chat/completions"] <= BREAKER_THRESHOLD + 4
    assert judge.breaker.is_open
    assert "did not answer 5 calls in a row" in results[-1].error and chat_server.url in results[-1].error
    judge.close()


def test_an_unsupported_seed_is_dropped_once_and_recorded(chat_server):
    from dataclasses import replace

    judge = _judge(chat_server, self_consistency=2, temperature=0.9, concurrency=1)
    request = _orders("#noseed")[0]
    results = judge.score([replace(request, sample=s) for s in range(2)] + [replace(_orders("#noseed q2")[0])])
    assert [r.p_first for r in results] == [1.0, 1.0, 1.0] and all(r.error == "" for r in results)
    assert list(judge.dropped) == ["seed"] and "HTTP 400" in judge.dropped["seed"]
    seeds = [body.get("seed") for body in chat_server.requests]
    assert seeds == [5 - 5, None, None, None]  # one refused request, then never again
    judge.close()


def test_log_probs_answered_with_500_are_dropped_once_and_recorded(chat_server):
    judge = _judge(chat_server, concurrency=1, max_retries=1)
    results = judge.score(_orders("#lp500 #logprobs") + _orders("#lp500 #logprobs again"))
    assert [r.p_first for r in results] == [1.0, 0.0, 1.0, 0.0]
    assert set(judge.dropped) == {"logprobs", "top_logprobs"} and "500" in judge.dropped["logprobs"]
    asked = [bool(body.get("logprobs")) for body in chat_server.requests]
    assert asked == [True, True, False, False, False, False]  # two 500s, then never asked again


def test_a_transient_500_does_not_drop_log_probs(chat_server):
    judge = _judge(chat_server, concurrency=1, max_retries=2)
    ab = judge.score(_orders("#flaky500 #logprobs")[:1])[0]
    assert ab.p_first == pytest.approx(0.8) and judge.dropped == {}
    judge.close()


def test_a_400_naming_two_unsupported_parameters_in_turn_drops_both(chat_server):
    from dataclasses import replace

    judge = _judge(chat_server, self_consistency=2, temperature=0.9, concurrency=1)
    results = judge.score([replace(_orders("#noseed #nologprobs")[0], sample=s) for s in range(2)])
    assert [r.p_first for r in results] == [1.0, 1.0]
    assert set(judge.dropped) == {"seed", "logprobs", "top_logprobs"}
    judge.close()
    judge.close()


def test_reasoning_is_kept_and_the_verdict_comes_from_the_final_answer(chat_server):
    ab, ba = _judge(chat_server).score(_orders("#reasoning"))
    assert (ab.p_first, ba.p_first) == (1.0, 0.0)  # the reasoning leaned the other way; the answer decides
    assert ab.raw.startswith("<think>At first Preferred: B seemed right.</think>")
    assert ab.raw.endswith("Preferred: A")


@pytest.mark.parametrize("marker", ["#nullcut", "#thinkcut"])
def test_a_verdict_in_cut_off_reasoning_is_truncation_not_a_verdict(chat_server, marker):
    result = _judge(chat_server, max_reasks=3).score(_orders(marker)[:1])[0]
    assert result.p_first is None
    assert result.error.startswith("truncated: the answer stopped at the token limit")
    assert result.attempts == 1  # the same limit would cut it again: not re-asked
    assert result.raw.startswith("<think>") and "Preferred: B" in result.raw  # the reasoning is kept
    if marker == "#thinkcut":
        assert "still thinking" in result.error


def test_an_answer_naming_both_verdicts_is_ambiguous_not_confident(chat_server):
    ab, ba = _judge(chat_server).score(_orders("#both"))
    assert (ab.p_first, ba.p_first) == (0.5, 0.5)
    assert ab.rationale.startswith("[ambiguous: the answer names both A and B]")


def test_log_probs_contradicting_the_text_are_not_turned_into_the_opposite(chat_server):
    ab = _judge(chat_server).score(_orders("#contradict")[:1])[0]
    assert ab.p_first == 0.5  # the text says A, its token's log-probs say P(A) = 0.2
    assert ab.rationale.startswith("[log-probs disagree with the text: it says A, P(A) = 0.20]")


def test_the_completions_route_renders_a_transcript_and_reads_completion_log_probs(chat_server):
    judge = _judge(chat_server, api="completions")
    ab, ba = judge.score(_orders("#logprobs"))
    assert ab.p_first == pytest.approx(0.8) and ba.p_first == pytest.approx(0.2)
    assert chat_server.paths == {"POST /v1/completions": 2}
    body = chat_server.requests[0]
    assert body["prompt"].startswith("Human: ") and body["prompt"].endswith("\n\nAssistant:")
    assert "\nHuman:" in body["stop"] and body["logprobs"] == 5
    assert judge.params["api"] == "completions"  # part of the request cache key
    judge.close()


def test_budget_cap_is_never_passed_and_every_paid_attempt_is_charged(chat_server):
    from training.judges.budget import BUDGET_REFUSED, Charge, Ledger

    ledger = Ledger(cap=2.0)
    judge = _judge(chat_server, concurrency=8, price_per_1k_prompt_tokens=1.0, price_per_1k_completion_tokens=1.0,
                   max_reasks=1)
    judge.ledger = ledger
    requests = [r for i in range(40) for r in _orders(f"q{i} {'#garbage' if i % 5 == 0 else ''}")]
    results = judge.score(requests)
    charges = [e for e in ledger.drain() if isinstance(e, Charge)]
    paid = chat_server.paid(1.0, 1.0)
    assert 0 < paid <= 2.0
    assert sum(c.cost for c in charges) == pytest.approx(paid) == pytest.approx(ledger.spent)
    assert len(charges) == sum(chat_server.calls.values())  # garbage answers and re-asks included
    assert any(r.error.startswith(BUDGET_REFUSED) for r in results) and ledger.reserved == 0
    judge.close()


def test_reasks_are_capped_by_their_share_of_the_budget(chat_server):
    from training.judges.budget import BUDGET_REFUSED, Ledger

    judge = _judge(chat_server, concurrency=1, price_per_1k_prompt_tokens=1.0, max_reasks=5,
                   reask_budget_share=0.0)
    judge.ledger = Ledger(cap=100.0, reask_share=0.0)
    result = judge.score(_orders("#garbage")[:1])[0]
    assert result.attempts == 1 and result.error == BUDGET_REFUSED + " (re-asks' share)"


def test_probe_endpoint_says_what_is_wrong():
    from benchmarks.fake_openai_server import FakeChatServer
    from training.openai_http import probe_endpoint

    with FakeChatServer(served_models=["judge-model"]) as server:
        assert probe_endpoint(server.url, "judge-model") == ""
        assert "does not serve the model 'other'; it serves: judge-model" in probe_endpoint(server.url, "other")
        assert "HTTP 404" in probe_endpoint(server.url + "/nowhere", "judge-model")
        url = server.url
    problem = probe_endpoint(url, "judge-model", timeout_s=2)
    assert problem.startswith(f"the endpoint {url} is unreachable")


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


@pytest.mark.parametrize(
    "text",
    ["Preferred: A\nPreferred: B", "Preferred: A or B", "**Preferred:** A/B", "Write Preferred: A or Preferred: B."],
)
def test_parse_verdict_flags_answers_naming_both(text):
    assert parse_verdict(text).ambiguous


def test_split_reasoning_keeps_thinking_out_of_the_final_answer():
    from training.judges.verdict import split_reasoning

    assert split_reasoning("<think>B is better</think>\nPreferred: A", None) == ("Preferred: A", "B is better", False)
    assert split_reasoning("<think>Preferred: B, but", None) == ("", "Preferred: B, but", True)
    assert split_reasoning(None, "Preferred: B") == ("", "Preferred: B", False)
    # the opening tag was in the prompt (as some chat templates put it): a lone closing tag ends the reasoning
    assert split_reasoning("B is better</think>\nPreferred: A") == ("Preferred: A", "B is better", False)


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

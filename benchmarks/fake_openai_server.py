"""A real HTTP server on 127.0.0.1 that speaks the OpenAI protocol (``POST /v1/chat/completions``,
``POST /v1/completions``, ``GET /v1/models``), for the ``openai`` judge and generation backends' tests and for
``benchmarks/label_throughput.py`` and ``benchmarks/judge_faults.py``.

What it answers depends on markers in the last user message (or the completions prompt):

==============  ==========================================================================================
marker          answer
==============  ==========================================================================================
(none)          a judge answer preferring the longer response shown (ties: A), with a rationale
``#logprobs``   the same, with token log-probs (verdict token: 0.8 for the choice, 0.2 for the other)
``#garbage``    text without a verdict line, every time
``#flaky``      garbage on the first call for that prompt, a good verdict afterwards
``#ratelimit``  429 with ``Retry-After: 2`` on the first call for that prompt, then a good verdict
``#error500``   500 on every call
``#slow``       a good verdict after ``slow_s`` seconds (longer than the client's timeout)
``#empty``      an empty answer, every time
``#truncated``  a 200 whose JSON body is cut in half on the first call, then a good verdict
``#badretry``   429 with an unparseable ``Retry-After`` on the first call, then a good verdict
``#drop``       the connection is closed without an answer, every time
``#noseed``     400 "Unsupported parameter: 'seed'" to any request with a seed, else a good verdict
``#lp500``      500 to any request asking for log-probs, else a good verdict
``#flaky500``   500 on the first call for that prompt, then a good verdict
``#nologprobs`` 400 "does not support logprobs" to any request asking for them, else a good verdict
``#both``       an answer with two verdict lines, A then B
``#contradict`` "Preferred: A" whose verdict token has P(A) = 0.2, P(B) = 0.8 (with log-probs asked)
``#reasoning``  ``content`` "Preferred: <label>" and ``reasoning_content`` that leans to the other label
``#thinkcut``   a ``<think>`` block naming a verdict, cut by ``finish_reason: length`` (no final answer)
``#nullcut``    ``content`` null, the text in ``reasoning_content``, ``finish_reason: length``
==============  ==========================================================================================

A prompt without "Response A:" is a generation request: it gets ``n`` choices "sample <i> of <prompt>",
each followed by a made-up next turn ``\nHuman: …`` as a base model writes it, cut at the first ``stop``
string the request sent (``#nostop``: ignoring them, as some servers do). ``delay_s`` delays every answer
(the benchmark's per-call latency).
``faults`` injects faults at random into otherwise good answers (``{"drop": 0.1, "error500": 0.1, ...}``,
drawn with ``seed``); the server keeps a bill of what it delivered (:attr:`billed_prompt_tokens`,
:attr:`billed_completion_tokens`: the usage of every whole 2xx answer).
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RESPONSE_RE = re.compile(r"Response A:\n(.*?)\n\nResponse B:\n(.*?)\n\n", re.S)


class FakeChatServer:
    """Start with :meth:`start` (or as a context manager); ``url`` is the ``base_url`` for the client.

    Attributes:
        requests: the JSON bodies received, in arrival order.
        calls: Counter of calls per prompt text.
        verdicts: Counter of good verdicts delivered per prompt text (more than one: paid twice).
        paths: Counter of ``"METHOD /path"`` requests.
        max_in_flight: the most requests it was answering at the same time.
        delay_s, slow_s: see the module docstring.
    """

    #: Faults that ``faults`` can inject at random, as the markers above name them.
    FAULTS = ("drop", "error500", "truncated", "badretry", "garbage", "empty", "ratelimit")

    def __init__(
        self,
        delay_s: float = 0.0,
        slow_s: float = 2.0,
        *,
        served_models: list[str] | None = None,
        faults: dict[str, float] | None = None,
        seed: int = 0,
        judge=None,
    ) -> None:
        self.delay_s = delay_s
        self.slow_s = slow_s
        #: ``judge(prompt, shown_first, shown_second) -> "A" | "B" | "tie" | "garbage"`` replaces the
        #: longer-wins rule (a replay of recorded verdicts); "garbage" answers without a verdict line.
        self.judge = judge
        self.served_models = served_models or []
        self.faults = dict(faults or {})
        self._rng = random.Random(seed)
        self.billed_prompt_tokens = 0
        self.billed_completion_tokens = 0
        self.paths: Counter = Counter()
        self.verdicts: Counter = Counter()
        self.requests: list[dict] = []
        self.calls: Counter = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeChatServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as real servers do; else 40 ms delayed-ACK stalls per call

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):  # noqa: N802 - http.server naming
                with owner._lock:
                    owner.paths[f"GET {self.path}"] += 1
                if self.path != "/v1/models":
                    return self._send(404, {}, json.dumps({"error": {"message": f"no route {self.path}"}}).encode())
                models = [{"id": m, "object": "model", "owned_by": "test"} for m in owner.served_models]
                self._send(200, {}, json.dumps({"object": "list", "data": models}).encode())

            def do_POST(self):  # noqa: N802 - http.server naming
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                status, headers, payload = owner.answer(self.path, body)
                if status is None:  # drop: close the connection without a word
                    self.close_connection = True
                    return
                data = json.dumps(payload).encode()
                if headers.pop("X-Truncate", None):
                    data = data[: len(data) // 2]
                elif 200 <= status < 300:
                    owner.bill(payload)
                self._send(status, headers, data)

            def _send(self, status, headers, data):
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.request_queue_size = 256
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeChatServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- answers ---------------------------------------------------------------------------------------

    def bill(self, payload: dict) -> None:
        """Add a delivered answer's usage to the bill."""
        usage = payload.get("usage") or {}
        with self._lock:
            self.billed_prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.billed_completion_tokens += int(usage.get("completion_tokens") or 0)

    def paid(self, price_per_1k_prompt: float, price_per_1k_completion: float) -> float:
        """What the delivered answers cost at these prices."""
        return (
            self.billed_prompt_tokens * price_per_1k_prompt + self.billed_completion_tokens * price_per_1k_completion
        ) / 1000.0

    def answer(self, path: str, body: dict) -> tuple[int | None, dict, dict]:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return self._answer(path, body)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(self, path: str, body: dict) -> tuple[int | None, dict, dict]:
        completions = path == "/v1/completions"
        if completions:
            prompt = str(body.get("prompt") or "")
        else:
            prompt = (body.get("messages") or [{}])[-1].get("content") or ""
        with self._lock:
            self.requests.append(body)
            self.paths[f"POST {path}"] += 1
            self.calls[prompt] += 1
            call = self.calls[prompt]
            fault = ""
            for name, probability in sorted(self.faults.items()):
                if self._rng.random() < probability:
                    fault = name
                    break
        if self.delay_s:
            time.sleep(self.delay_s)
        if path not in ("/v1/chat/completions", "/v1/completions"):
            return 404, {}, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}}
        marked = lambda name: f"#{name}" in prompt or fault == name  # noqa: E731
        if marked("drop"):
            return None, {}, {}
        if marked("error500"):
            return 500, {}, {"error": {"message": "internal error", "type": "server_error"}}
        if ("#ratelimit" in prompt and call == 1) or fault == "ratelimit":
            return 429, {"Retry-After": "2"}, {"error": {"message": "slow down", "type": "rate_limit_error"}}
        if ("#badretry" in prompt and call == 1) or fault == "badretry":
            return 429, {"Retry-After": "soon, maybe"}, {"error": {"message": "busy", "type": "rate_limit_error"}}
        if "#noseed" in prompt and body.get("seed") is not None:
            return 400, {}, _bad_request("Unsupported parameter: 'seed' is not supported with this model.", "seed")
        if "#nologprobs" in prompt and body.get("logprobs"):
            return 400, {}, _bad_request("This model does not support logprobs.", "logprobs")
        if "#flaky500" in prompt and call == 1:
            return 500, {}, {"error": {"message": "temporarily overloaded", "type": "server"}}
        if "#lp500" in prompt and body.get("logprobs"):
            return 500, {}, {"error": {"message": "llama_decode failed while computing logprobs", "type": "server"}}
        if "#slow" in prompt:
            time.sleep(self.slow_s)
        truncate = {"X-Truncate": "1"} if (("#truncated" in prompt and call == 1) or fault == "truncated") else {}
        match = RESPONSE_RE.search(prompt)
        make = _text_completion if completions else _completion
        if match is None:
            n = int(body.get("n") or 1)
            # A base model goes on to write the next turn; the server cuts at the stop strings it was sent
            # (unless the prompt says #nostop, as a server that ignores them).
            texts = [f"sample {i} of {prompt[:40]}\nHuman: and another question?" for i in range(n)]
            if body.get("stop") and "#nostop" not in prompt:
                texts = [_cut(t, body["stop"]) for t in texts]
            return 200, truncate, make(body, texts, None)
        if marked("empty"):
            return 200, truncate, make(body, [""], None)
        if marked("garbage") or ("#flaky" in prompt and call == 1):
            return 200, truncate, make(body, ["I cannot decide, both are fine."], None)
        first, second = match.group(1), match.group(2)
        if self.judge is not None:
            label = self.judge(prompt, first, second)
            if label == "garbage":
                return 200, truncate, make(body, ["I cannot decide, both are fine."], None)
            with self._lock:
                self.verdicts[prompt] += 1
            return 200, truncate, make(body, [f"Replayed verdict.\nPreferred: {label}"], None)
        label = "A" if len(first) >= len(second) else "B"
        other = "B" if label == "A" else "A"
        wants_logprobs = bool(body.get("logprobs"))
        if "#both" in prompt:
            return 200, truncate, make(body, [f"Both have merits.\nPreferred: {label}\nPreferred: {other}"], None)
        if "#nullcut" in prompt:
            reply = _completion(body, [None], None, finish_reason="length")
            reply["choices"][0]["message"]["reasoning_content"] = f"Let me weigh them. Preferred: {other} maybe, but"
            return 200, truncate, reply
        if "#thinkcut" in prompt:
            text = f"<think>Response {other} looks better. Preferred: {other}. Hmm, but"
            return 200, truncate, make(body, [text], None, finish_reason="length")
        text = f"Response {label} is longer and more detailed.\nPreferred: {label}"
        if not truncate:
            with self._lock:
                self.verdicts[prompt] += 1
        if "#reasoning" in prompt:
            reply = _completion(body, [f"Preferred: {label}"], None)
            reply["choices"][0]["message"]["reasoning_content"] = f"At first Preferred: {other} seemed right."
            return 200, truncate, reply
        if "#contradict" in prompt:
            logprobs = _logprobs(text, label, p_label=0.2) if wants_logprobs else None
        else:
            logprobs = _logprobs(text, label) if ("#logprobs" in prompt and wants_logprobs) else None
        if completions and logprobs is not None:
            logprobs = _completion_logprobs(logprobs)
        return 200, truncate, make(body, [text], logprobs)


def _cut(text: str, stops: list[str]) -> str:
    positions = [text.find(s) for s in stops if s and s in text]
    return text[: min(positions)] if positions else text


def _bad_request(message: str, param: str) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": "unsupported"}}


def _usage(prompt_tokens: int, texts) -> dict:
    completion_tokens = sum(len((t or "").split()) for t in texts)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _text_completion(body: dict, texts: list[str], logprobs, finish_reason: str = "stop") -> dict:
    """A ``/v1/completions`` answer (``text_completion``)."""
    return {
        "id": "cmpl-test",
        "object": "text_completion",
        "created": int(time.time()),
        "model": body.get("model", "test"),
        "choices": [
            {"index": i, "text": text, "finish_reason": finish_reason, "logprobs": logprobs}
            for i, text in enumerate(texts)
        ],
        "usage": _usage(len(str(body.get("prompt") or "").split()), texts),
    }


def _completion(body: dict, texts: list, logprobs, finish_reason: str = "stop") -> dict:
    prompt_tokens = sum(len(m.get("content", "").split()) for m in body.get("messages", []))
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "test"),
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish_reason,
                "logprobs": logprobs,
            }
            for i, text in enumerate(texts)
        ],
        "usage": _usage(prompt_tokens, texts),
    }


def _completion_logprobs(chat: dict) -> dict:
    """Chat-style log-probs in the completions layout (tokens, token_logprobs, top_logprobs, text_offset)."""
    tokens, offsets, position = [], [], 0
    for item in chat["content"]:
        tokens.append(item["token"])
        offsets.append(position)
        position += len(item["token"])
    return {
        "tokens": tokens,
        "token_logprobs": [item["logprob"] for item in chat["content"]],
        "top_logprobs": [{t["token"]: t["logprob"] for t in item["top_logprobs"]} for item in chat["content"]],
        "text_offset": offsets,
    }


def _logprobs(text: str, label: str, p_label: float = 0.8) -> dict:
    """Word-level tokens; the final label token has P(label) = ``p_label`` and P(other) = 1 - ``p_label``."""
    other = "B" if label == "A" else "A"
    pieces = re.findall(r"\s*\S+", text)
    content = []
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        logprob = math.log(p_label) if last else -0.01
        top = [{"token": piece, "logprob": logprob, "bytes": None}]
        if last:
            top.append({"token": f" {other}", "logprob": math.log(1 - p_label), "bytes": None})
        content.append({"token": piece, "logprob": logprob, "bytes": None, "top_logprobs": top})
    return {"content": content}

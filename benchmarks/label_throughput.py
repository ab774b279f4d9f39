"""Labeling throughput against a local OpenAI-compatible server with a fixed per-call delay.

For each concurrency, label N comparisons (both orders: two calls each) with the ``openai`` judge through
:func:`runs.stages.judging.judge_comparisons`, database writes and the request cache included, and print
comparisons/s next to the ideal bound ``concurrency / delay / 2`` and their ratio. Target: >= 0.8 of the
bound at concurrency 32. A warm-up run (imports, first connection) is not timed. The server runs in its own
process; on a small machine the figures at high concurrency are bounded by CPU (client + server), not by the
protocol.

Usage::

    python benchmarks/label_throughput.py [--delay 0.2] [--concurrency 1,8,32,64] [--n N]

It uses a fresh SQLite database in a temporary folder unless ``--use-configured-db`` is given (then
``DATABASE_URL`` decides; the benchmark's rows are written there).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _setup_django(use_configured_db: bool) -> None:
    if not use_configured_db:
        os.environ.pop("DATABASE_URL", None)
        os.environ["STUDIO_DATA_DIR"] = tempfile.mkdtemp(prefix="label-bench-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlaif_site.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _make_run(server_url: str, concurrency: int, n: int, tag: str):
    from constitutions.models import Constitution, ConstitutionVersion
    from runs.models import Comparison, Completion, Prompt, PromptSet, Run
    from runs.prompt_content import content_hash

    constitution = Constitution.objects.create(name=f"bench {tag}")
    version, _ = ConstitutionVersion.objects.create_version(
        constitution,
        author=None,
        principles=[
            {"name": "Helpful", "comparison": "Which response is more helpful?", "weight": 1.0, "enabled": True},
            {"name": "Honest", "comparison": "Which response is more honest?", "weight": 1.0, "enabled": True},
        ],
    )
    prompt_set = PromptSet.objects.create(name=f"bench {tag}")
    prompts = Prompt.objects.bulk_create(
        Prompt(prompt_set=prompt_set, index=i, text=f"[{tag}] question {i}?", content_hash=content_hash(f"{tag}{i}"))
        for i in range(n)
    )
    config = {"judge": {"backend": "openai", "base_url": server_url, "model": "bench", "concurrency": concurrency}}
    run = Run.objects.create(name=f"bench {tag}", constitution_version=version, prompt_set=prompt_set, config=config)
    completions = Completion.objects.bulk_create(
        Completion(run=run, prompt=p, sample_index=s, text=f"answer {s} " * (s + 1), model="bench")
        for p in prompts
        for s in range(2)
    )
    Comparison.objects.bulk_create(
        Comparison(run=run, prompt=p, completion_a=completions[2 * i], completion_b=completions[2 * i + 1])
        for i, p in enumerate(prompts)
    )
    return run


def _serve(delay_s: float, conn) -> None:
    """Run the chat server in its own process (its own interpreter lock), report its URL, serve until told."""
    from benchmarks.fake_openai_server import FakeChatServer

    with FakeChatServer(delay_s=delay_s) as server:
        conn.send(server.url)
        conn.recv()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.2, help="server delay per call, seconds (default 0.2)")
    parser.add_argument("--concurrency", default="1,8,32,64", help="comma-separated concurrencies")
    parser.add_argument(
        "--n", type=int, default=0, help="comparisons per concurrency (default: 12 x concurrency, >= 24)"
    )
    parser.add_argument(
        "--use-configured-db", action="store_true", help="write to DATABASE_URL instead of a temp SQLite"
    )
    args = parser.parse_args()
    _setup_django(args.use_configured_db)

    from runs.models import Judgment
    from runs.stages.judging import judge_comparisons
    from training.progress import NullReporter

    print(
        f"label throughput: openai judge, both orders (2 calls per comparison), server delay {args.delay * 1000:.0f} ms"
    )
    print(f"{'concurrency':>11} {'comparisons':>11} {'seconds':>8} {'cmp/s':>8} {'ideal':>8} {'ratio':>6}")
    import multiprocessing

    parent, child = multiprocessing.Pipe()
    server_process = multiprocessing.get_context("spawn").Process(target=_serve, args=(args.delay, child), daemon=True)
    server_process.start()
    url = parent.recv()
    try:
        warm_up = _make_run(url, 2, 2, tag=f"warm-up-{time.time_ns()}")  # imports and first connection
        judge_comparisons(warm_up, warm_up.comparisons.all(), NullReporter())
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            n = args.n or max(24, 12 * concurrency)
            run = _make_run(url, concurrency, n, tag=f"c{concurrency}-{time.time_ns()}")
            comparisons = run.comparisons.all()
            started = time.perf_counter()
            counts = judge_comparisons(run, comparisons, NullReporter())
            seconds = time.perf_counter() - started
            stored = Judgment.objects.filter(comparison__run=run).count()
            assert stored == n and counts["failed"] == 0, (stored, counts)
            rate = n / seconds
            ideal = concurrency / args.delay / 2
            print(f"{concurrency:>11} {n:>11} {seconds:>8.2f} {rate:>8.1f} {ideal:>8.1f} {rate / ideal:>6.2f}")
    finally:
        parent.send("stop")
        server_process.join(timeout=10)


if __name__ == "__main__":
    main()

"""What a flaky judge endpoint costs: calls paid vs the cost ledger vs the budget cap.

Runs the real label stage (:func:`runs.stages.label.run`) against a local OpenAI-compatible server
(``tests/openai_server.py``) that injects faults at random into its answers: dropped connections, HTTP 500,
429 with a good and with an unparseable ``Retry-After``, JSON bodies cut in half, answers without a verdict and
empty answers. Prices are set and the budget cap binds. The stage is first stopped mid-batch by a job timeout
(SIGALRM raising in the main thread, as RQ's timeout does), then resumed until it stops at the cap, then resumed
once more (which must ask nothing: the cap is reached).

Prints per attempt the calls made, what the server billed (the usage of every answer it delivered whole),
the ledger (the run's ``JudgeCharge`` rows) and the judgments stored; then the good verdicts delivered twice
for the same request (a resume paying again for an answer it had). Target: paid = ledger, never above the cap,
0 verdicts paid twice. Last line: ``paid=… ledger=… cap=…``.

Usage::

    python benchmarks/judge_faults.py [--n 150] [--cap 1.0] [--seed 0]

It uses a fresh SQLite database in a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FAULTS = {
    "drop": 0.04,
    "error500": 0.06,
    "ratelimit": 0.03,
    "badretry": 0.04,
    "truncated": 0.05,
    "garbage": 0.08,
    "empty": 0.04,
}
PRICE_PROMPT, PRICE_COMPLETION = 0.1, 0.2  # per 1k tokens


class JobTimeout(Exception):
    """Raised in the main thread by SIGALRM, as RQ's death penalty does."""


def _setup_django() -> None:
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ["STUDIO_DATA_DIR"] = tempfile.mkdtemp(prefix="judge-faults-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlaif_site.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _make_run(url: str, n: int, cap: float):
    from constitutions.models import Constitution, ConstitutionVersion
    from runs.models import Comparison, Completion, Prompt, PromptSet, Run, StageRun
    from runs.prompt_content import content_hash

    constitution = Constitution.objects.create(name="judge faults")
    version, _ = ConstitutionVersion.objects.create_version(
        constitution,
        author=None,
        principles=[{"name": "Helpful", "comparison": "Which response is more helpful?", "weight": 1.0}],
    )
    prompt_set = PromptSet.objects.create(name="judge faults")
    prompts = Prompt.objects.bulk_create(
        Prompt(prompt_set=prompt_set, index=i, text=f"question {i}?", content_hash=content_hash(f"q{i}"))
        for i in range(n)
    )
    judge = {
        "backend": "openai", "base_url": url, "model": "flaky", "concurrency": 8, "max_retries": 4,
        "price_per_1k_prompt_tokens": PRICE_PROMPT, "price_per_1k_completion_tokens": PRICE_COMPLETION,
        "budget": cap, "max_reasks": 1, "max_failed_share": 0.5,
    }
    run = Run.objects.create(name="judge faults", constitution_version=version, prompt_set=prompt_set,
                             config={"judge": judge})
    completions = Completion.objects.bulk_create(
        Completion(run=run, prompt=p, sample_index=s, text=f"answer {s} to {p.index} " * (s + 1), model="bench")
        for p in prompts
        for s in range(2)
    )
    Comparison.objects.bulk_create(
        Comparison(run=run, prompt=p, completion_a=completions[2 * i], completion_b=completions[2 * i + 1])
        for i, p in enumerate(prompts)
    )
    stage_run = StageRun.objects.create(run=run, stage="label")
    return run, stage_run


def _attempt(stage_run, timeout_s: float | None) -> str:
    from runs.stages import label
    from training.progress import RecordingReporter

    def alarm(signum, frame):
        raise JobTimeout(f"job exceeded its {timeout_s} s timeout")

    previous = signal.signal(signal.SIGALRM, alarm)
    if timeout_s:
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        label.run(stage_run, RecordingReporter())
        return "finished"
    except JobTimeout:
        return "timed out"
    except Exception as exc:  # noqa: BLE001 - a stage failure is a result here
        return f"failed: {str(exc)[:120]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=150, help="comparisons (two calls each)")
    parser.add_argument("--cap", type=float, default=1.0, help="judge.budget")
    parser.add_argument("--seed", type=int, default=0, help="fault draw seed")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds before the first attempt times out")
    args = parser.parse_args()
    _setup_django()
    from django.db.models import Sum

    from benchmarks.fake_openai_server import FakeChatServer
    from runs.models import JudgeCharge, Judgment

    with FakeChatServer(faults=FAULTS, seed=args.seed) as server:
        run, stage_run = _make_run(server.url, args.n, args.cap)
        print(f"{args.n} comparisons, cap {args.cap:g}, faults {FAULTS}")
        print(f"{'attempt':<10} {'result':<40} {'calls':>6} {'paid':>8} {'ledger':>8} {'stored':>7} {'s':>6}")
        for name, timeout_s in (("1", args.timeout), ("resume", None), ("resume 2", None)):
            started = time.perf_counter()
            result = _attempt(stage_run, timeout_s)
            paid = server.paid(PRICE_PROMPT, PRICE_COMPLETION)
            ledger = JudgeCharge.objects.filter(run=run).aggregate(s=Sum("cost"))["s"] or 0.0
            stored = Judgment.objects.filter(comparison__run=run).exclude(verdict="").count()
            calls = sum(server.paths.values())
            print(f"{name:<10} {result:<40} {calls:>6} {paid:>8.4f} {ledger:>8.4f} {stored:>7} "
                  f"{time.perf_counter() - started:>6.1f}")
        twice = sum(max(0, count - 1) for count in server.verdicts.values())
        failed = Judgment.objects.filter(comparison__run=run, verdict="").count()
    print(f"good verdicts paid twice for the same request: {twice}; failed judgments stored: {failed}")
    print(f"paid={paid:.4f} ledger={ledger:.4f} cap={args.cap:g}")


if __name__ == "__main__":
    main()

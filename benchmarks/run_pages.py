"""Server time of the run pages on a large run, in PostgreSQL.

Seeds (once; ``--reseed`` to redo) a run with 100,000 judgments (50,000 comparisons × 2 principles, 100,000
completions, 1,000 human labels) and 20,000 metric points, then prints the median server time (Django test
client: URL routing, middleware, queries, template) and the query count of:

* the run page, the progress JSON and the chart JSON;
* the pair browser: first page, a filtered page, a deep page.

Target: each under 200 ms.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rlaif_pages_bench python benchmarks/run_pages.py

The database named by DATABASE_URL (default: the one above) is created and migrated if missing; use a
database of its own: the seeding adds a large run to it.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/rlaif_pages_bench"
RUN_NAME = "benchmark: 100k judgments"
N_PROMPTS, SAMPLES, N_PRINCIPLES = 5_000, 20, 2  # 5,000 × 10 pairs = 50,000 comparisons; × 2 = 100,000 judgments
POLICY_STEPS, POLICY_METRICS = 1_000, 16
RM_STEPS, RM_METRICS = 1_000, 4  # 16,000 + 4,000 = 20,000 metric points
N_LABELS = 1_000


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
            conn.execute(f'create database "{name}"')


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlaif_site.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def seed():
    """Create the benchmark run (bulk inserts); returns it."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from constitutions.models import Constitution, ConstitutionVersion
    from runs import models as m
    from runs.prompt_content import content_hash

    rng = random.Random(0)
    t0 = time.perf_counter()
    with transaction.atomic():
        user, _ = get_user_model().objects.get_or_create(username="bench-operator")
        constitution, _ = Constitution.objects.get_or_create(name="Benchmark constitution")
        version, _ = ConstitutionVersion.objects.create_version(constitution, author=user, principles=[
            {"name": n, "comparison": f"Which response is more {n.lower()}?", "weight": 1.0, "category": "custom",
             "enabled": True} for n in ("Honest", "Helpful")
        ])
        principles = list(version.principles.order_by("position"))
        prompt_set = m.PromptSet.objects.create(name=f"Benchmark prompts {time.time_ns()}")
        m.Prompt.objects.bulk_create(
            (m.Prompt(prompt_set=prompt_set, index=i, text=f"Benchmark prompt {i}: explain topic {i % 97}.",
                      content_hash=content_hash(f"bench {i}")) for i in range(N_PROMPTS)), batch_size=5000)
        prompts = list(prompt_set.prompts.order_by("index").values_list("pk", flat=True))
        run = m.Run.objects.create(name=RUN_NAME, owner=user, constitution_version=version, prompt_set=prompt_set,
                                   config={}, status=m.RunStatus.SUCCEEDED, current_stage="")
        m.StageRun.objects.bulk_create(m.StageRun(run=run, stage=s, status="succeeded", progress_done=100,
                                                  progress_total=100) for s in ("generate", "label", "reward_model",
                                                                               "policy", "evaluate"))
        text = "A response of moderate length that talks about the topic for a while. " * 4
        m.Completion.objects.bulk_create(
            (m.Completion(run=run, prompt_id=p, sample_index=k, text=f"{k}: {text}", model="demo://policy",
                          token_count=60) for p in prompts for k in range(SAMPLES)), batch_size=5000)
        completions = {}
        for pk, prompt_id, k in m.Completion.objects.filter(run=run).values_list("pk", "prompt_id", "sample_index"):
            completions[(prompt_id, k)] = pk
        m.Comparison.objects.bulk_create(
            (m.Comparison(run=run, prompt_id=p, completion_a_id=completions[(p, k)],
                          completion_b_id=completions[(p, k + 1)]) for p in prompts for k in range(0, SAMPLES, 2)),
            batch_size=5000)
        comparisons = list(m.Comparison.objects.filter(run=run).values_list("pk", flat=True))

        def judgment(c, principle):
            ab, ba = rng.random(), rng.random()
            p_a = (ab + ba) / 2
            verdict = "tie" if abs(p_a - 0.5) <= 0.05 else ("A" if p_a > 0.5 else "B")
            if rng.random() < 0.01:
                return m.Judgment(comparison_id=c, principle=principle, judge_id="demo://judge", verdict="",
                                  error="parse failure", raw_outputs=["???"])
            return m.Judgment(
                comparison_id=c, principle=principle, judge_id="demo://judge", p_a_ab=ab, p_a_ba=ba, p_a=p_a,
                verdict=verdict, position_consistent=(ab > 0.5) == (ba > 0.5), latency_ms=rng.uniform(20, 400),
                rationale="Response **A** answers the question; B *rambles*.\n\n- concise\n- correct",
                prompt_tokens=300, completion_tokens=40, raw_outputs=[{"text": "A"}],
            )

        m.Judgment.objects.bulk_create((judgment(c, p) for c in comparisons for p in principles), batch_size=5000)
        m.HumanLabel.objects.bulk_create(
            (m.HumanLabel(comparison_id=c, auditor=user, choice=rng.choice("AB")) for c in
             rng.sample(comparisons, N_LABELS)), batch_size=5000)
        points = []
        policy_names = ["reward", "reward_std", "kl", "entropy", "loss", "completions/mean_length",
                        "completions/min_length", "completions/max_length", "learning_rate", "grad_norm",
                        "clip_ratio/low_mean", "clip_ratio/high_mean", "num_tokens", "frac_reward_zero_std",
                        "epoch", "aux_loss"][:POLICY_METRICS]
        for step in range(POLICY_STEPS):
            for name in policy_names:
                points.append(m.MetricPoint(run=run, stage="policy", step=step, name=name, value=rng.random()))
        for step in range(RM_STEPS):
            for name in ("loss", "eval_loss", "accuracy", "eval_accuracy")[:RM_METRICS]:
                points.append(m.MetricPoint(run=run, stage="reward_model", step=step, name=name, value=rng.random()))
        m.MetricPoint.objects.bulk_create(points, batch_size=5000)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"seeded run #{run.pk} in {time.perf_counter() - t0:.1f} s")
    return run


def measure(client, url: str, repeat: int) -> tuple[float, float, float, int]:
    """Milliseconds per GET: median with the figure cache emptied before each request ("cold"), median and max
    with it warm (what a finished run's page costs from the second view on); and the cold query count."""
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    cold, warm = [], []
    for _ in range(repeat):
        cache.clear()
        t0 = time.perf_counter()
        client.get(url)
        cold.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        client.get(url)
        warm.append((time.perf_counter() - t0) * 1000)
    cache.clear()
    with CaptureQueriesContext(connection) as ctx:
        client.get(url)
    return statistics.median(cold), statistics.median(warm), max(warm), len(ctx.captured_queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reseed", action="store_true", help="Seed a fresh benchmark run even if one exists.")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("This benchmark measures PostgreSQL: set DATABASE_URL=postgres://…")
    ensure_database(url)
    setup_django(url)

    from django.test import Client

    from rlaif_site.roles import OPERATORS
    from runs.models import Judgment, Run
    from runs.starter import ensure_groups

    run = None if args.reseed else Run.objects.filter(name=RUN_NAME).order_by("-pk").first()
    run = run or seed()
    ensure_groups()
    user = run.owner
    user.groups.add(*__import__("django.contrib.auth.models", fromlist=["Group"]).Group.objects.filter(
        name=OPERATORS))
    client = Client()
    client.force_login(user)
    n_judgments = Judgment.objects.filter(comparison__run=run).count()
    n_metrics = run.metrics.count()
    principle = run.constitution_version.principles.order_by("position").first()
    middle = Judgment.objects.filter(comparison__run=run).order_by("pk").values_list("pk", flat=True)[n_judgments // 2]
    pages = [
        ("run page", f"/runs/{run.pk}/"),
        ("progress JSON", f"/runs/{run.pk}/progress.json"),
        ("chart JSON", f"/runs/{run.pk}/charts.json"),
        ("pair browser, first page", f"/runs/{run.pk}/pairs/"),
        ("pair browser, filtered", f"/runs/{run.pk}/pairs/?principle={principle.pk}&min_conf=0.6&consistent=yes"
                                   "&audit=unlabelled"),
        ("pair browser, filtered (labelled, disagree)", f"/runs/{run.pk}/pairs/?audit=labelled&consistent=no"),
        ("pair browser, deep page", f"/runs/{run.pk}/pairs/?before={middle}"),
    ]
    print(f"run #{run.pk}: {n_judgments:,} judgments, {n_metrics:,} metric points (PostgreSQL)")
    print(f"load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"{'page':48} {'cold ms':>8} {'warm ms':>8} {'max ms':>8} {'queries':>8}  target < 200 ms")
    for label, path in pages:
        cold, warm, worst, queries = measure(client, path, args.repeat)
        flag = "ok" if cold < 200 else ("ok when cached" if warm < 200 else "SLOW")
        print(f"{label:48} {cold:8.1f} {warm:8.1f} {worst:8.1f} {queries:8d}  {flag}")


if __name__ == "__main__":
    main()

"""Audit speed: drawing a sample from 50,000 judgments and computing the dashboard's figures.

Seeds a run with N judged comparisons over 4 principles (bulk inserts), then times
:func:`runs.audit.draw_audit_sample` (random + uncertain strata), three auditors labelling every random
item (bulk), :func:`runs.audit.build_report` on the random stratum (every figure, overall and per principle,
1,000 bootstrap resamples each where needed), the same on the "labelled" scope, and one GET of the dashboard
page. Prints seconds per step.

Usage::

    python benchmarks/audit_report.py [--n 50000] [--sample 2000] [--uncertain 500]

Uses a fresh SQLite database in a temporary folder.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="judged comparisons")
    parser.add_argument("--sample", type=int, default=2_000, help="random stratum size")
    parser.add_argument("--uncertain", type=int, default=500, help="uncertain stratum size")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="audit-bench-")
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
    os.environ["STUDIO_DATA_DIR"] = tmp
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlaif_site.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import transaction
    from django.test import Client

    from constitutions.models import Constitution, ConstitutionVersion
    from runs import models as m
    from runs.audit import build_report, draw_audit_sample
    from runs.prompt_content import content_hash

    rng = random.Random(0)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with transaction.atomic():
        users = [get_user_model().objects.create_user(f"auditor{i}", password="x") for i in range(3)]
        for user in users:
            user.groups.set(Group.objects.filter(name="auditors"))
        constitution = Constitution.objects.create(name="Benchmark")
        version, _ = ConstitutionVersion.objects.create_version(constitution, author=users[0], principles=[
            {"name": n, "comparison": f"Which response is more {n.lower()}?", "weight": 1.0, "category": "custom",
             "enabled": True} for n in ("Honest", "Helpful", "Harmless", "Concise")
        ])
        principles = list(version.principles.order_by("position"))
        prompt_set = m.PromptSet.objects.create(name="Benchmark prompts")
        m.Prompt.objects.bulk_create(
            m.Prompt(prompt_set=prompt_set, index=i, text=f"Prompt {i}", content_hash=content_hash(f"Prompt {i}"))
            for i in range(args.n)
        )
        prompts = list(prompt_set.prompts.order_by("index"))
        run = m.Run.objects.create(name="audit benchmark", constitution_version=version, prompt_set=prompt_set)
        m.Completion.objects.bulk_create(
            m.Completion(run=run, prompt=p, sample_index=s, text="x" * rng.randint(20, 400), model="bench")
            for p in prompts for s in (0, 1)
        )
        completions = list(m.Completion.objects.filter(run=run).order_by("prompt_id", "sample_index"))
        m.Comparison.objects.bulk_create(
            m.Comparison(run=run, prompt_id=a.prompt_id, completion_a=a, completion_b=b)
            for a, b in zip(completions[0::2], completions[1::2], strict=True)
        )
        judgments = []
        for i, comparison_id in enumerate(m.Comparison.objects.filter(run=run).values_list("pk", flat=True)):
            p_a = rng.random()
            judgments.append(m.Judgment(
                comparison_id=comparison_id, principle=principles[i % 4], judge_id="bench", p_a=p_a,
                verdict="tie" if abs(p_a - 0.5) < 0.05 else ("A" if p_a > 0.5 else "B"),
                position_consistent=rng.random() > 0.15,
            ))
        m.Judgment.objects.bulk_create(judgments, batch_size=5_000)
    timings["seed"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    result = draw_audit_sample(run, random_size=args.sample, uncertain_size=args.uncertain, seed=0)
    timings["draw_audit_sample"] = time.perf_counter() - t0

    items = list(m.AuditItem.objects.filter(run=run, stratum="random").select_related("judgment"))
    labels = []
    for item in items:
        for user in users:
            agree = rng.random() < 0.75
            verdict = item.judgment.verdict if item.judgment.verdict in ("A", "B") else rng.choice("AB")
            labels.append(m.HumanLabel(comparison_id=item.comparison_id, auditor=user,
                                       choice=verdict if agree else ("B" if verdict == "A" else "A")))
    m.HumanLabel.objects.bulk_create(labels, batch_size=5_000)

    for scope in ("random", "labelled"):
        t0 = time.perf_counter()
        report = build_report(run, scope)
        timings[f"build_report({scope})"] = time.perf_counter() - t0
    client = Client()
    client.force_login(users[0])
    t0 = time.perf_counter()
    response = client.get(f"/runs/{run.pk}/audit/")
    timings["dashboard GET"] = time.perf_counter() - t0
    assert response.status_code == 200, response.status_code

    alignment = report["overall"]["figures"]["alignment"]
    print(f"{args.n} judgments; sample: {result.random} random + {result.uncertain} uncertain; {len(labels)} labels")
    print(f"alignment {alignment['value']:.3f} [{alignment['low']:.3f}, {alignment['high']:.3f}] n={alignment['n']}")
    for name, seconds in timings.items():
        print(f"{name:28s} {seconds:8.2f} s")


if __name__ == "__main__":
    main()

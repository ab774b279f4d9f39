"""Seed data for the run-page tests: judged comparisons and metric curves."""
from __future__ import annotations

from runs.models import Comparison, Completion, HumanLabel, Judgment, MetricPoint


def judged_pair(run, principle, *, p_a_ab, p_a_ba, verdict, rationale="", texts=("answer A", "answer B"),
                latency_ms=100.0, consistent=None, prompt=None, cost=0.0):
    """One comparison of ``run`` with one judgment under ``principle``."""
    prompt = prompt or run.prompt_set.prompts.first()
    base = Completion.objects.filter(run=run, prompt=prompt).count()
    a, b = (Completion.objects.create(run=run, prompt=prompt, sample_index=base + i, text=t, model="tiny")
            for i, t in enumerate(texts))
    comparison = Comparison.objects.create(run=run, prompt=prompt, completion_a=a, completion_b=b)
    p_a = (p_a_ab + p_a_ba) / 2 if p_a_ba is not None else p_a_ab
    if consistent is None and p_a_ba is not None:
        consistent = (p_a_ab > 0.5) == (p_a_ba > 0.5)
    judgment = Judgment.objects.create(
        comparison=comparison, principle=principle, judge_id="demo://judge", p_a_ab=p_a_ab, p_a_ba=p_a_ba, p_a=p_a,
        verdict=verdict, position_consistent=consistent, rationale=rationale, latency_ms=latency_ms, cost=cost,
    )
    return comparison, judgment


def label(comparison, user, choice="A"):
    return HumanLabel.objects.create(comparison=comparison, auditor=user, choice=choice)


def curve(run, stage, name, values, start=0):
    MetricPoint.objects.bulk_create(
        MetricPoint(run=run, stage=stage, name=name, step=start + i, value=v) for i, v in enumerate(values)
    )

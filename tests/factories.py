"""Test data builders: small functions that create valid rows with sensible defaults."""
from __future__ import annotations

import itertools

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from constitutions.models import Category, Constitution, ConstitutionVersion
from runs import models as m
from runs.prompt_content import content_hash

_seq = itertools.count(1)


def make_user(username: str | None = None, roles: tuple[str, ...] = (), **extra):
    user = get_user_model().objects.create_user(
        username=username or f"user{next(_seq)}", password="pw-for-tests-123", **extra
    )
    if roles:
        # get_or_create: transactional tests flush the tables, groups from the data migration included
        user.groups.set([Group.objects.get_or_create(name=role)[0] for role in roles])
    return user


def principle(name: str = "Honest", **overrides) -> dict:
    return {
        "name": name,
        "comparison": f"Which response is more {name.lower()}?",
        "critique_request": "",
        "revision_request": "",
        "weight": 1.0,
        "category": Category.HONESTY,
        "enabled": True,
        **overrides,
    }


def make_version(constitution: Constitution | None = None, principles=None, author=None, **kwargs):
    constitution = constitution or Constitution.objects.create(name=f"Constitution {next(_seq)}")
    version, _ = ConstitutionVersion.objects.create_version(
        constitution, author=author, principles=principles or [principle("Honest"), principle("Helpful")], **kwargs
    )
    return version


def make_prompt_set(n: int = 3, name: str | None = None, split_every: int = 0) -> m.PromptSet:
    prompt_set = m.PromptSet.objects.create(name=name or f"Prompts {next(_seq)}")
    m.Prompt.objects.bulk_create(
        m.Prompt(
            prompt_set=prompt_set,
            index=i,
            text=f"Prompt number {i}?",
            content_hash=content_hash(f"Prompt number {i}?"),
            split="eval" if split_every and i % split_every == 0 else "train",
        )
        for i in range(n)
    )
    return prompt_set


def make_run(owner=None, stages=("generate",), config=None, status=m.RunStatus.QUEUED, **kwargs) -> m.Run:
    """A run row with StageRun rows, not enqueued (use runs.services.launch_run to enqueue)."""
    run = m.Run.objects.create(
        name=kwargs.pop("name", f"run {next(_seq)}"),
        owner=owner,
        constitution_version=kwargs.pop("constitution_version", None) or make_version(),
        prompt_set=kwargs.pop("prompt_set", None) or make_prompt_set(),
        config=config or {},
        status=status,
        **kwargs,
    )
    for stage in stages:
        m.StageRun.objects.create(run=run, stage=stage)
    return run


def make_comparison(run: m.Run, prompt: m.Prompt | None = None, texts=("first answer", "second answer")):
    prompt = prompt or run.prompt_set.prompts.first()
    base = m.Completion.objects.filter(run=run, prompt=prompt).count()
    a, b = (
        m.Completion.objects.create(run=run, prompt=prompt, sample_index=base + i, text=t, model="tiny")
        for i, t in enumerate(texts)
    )
    return m.Comparison.objects.create(run=run, prompt=prompt, completion_a=a, completion_b=b)


def make_judgment(comparison, principle=None, *, p_a: float | None = 0.8, verdict: str | None = None,
                  position_consistent: bool | None = True, rationale: str = "", judge_id: str = "judge:test"):
    """An AI judgment; the verdict follows p_a (tie within 0.05 of 0.5) unless given."""
    if verdict is None:
        verdict = "tie" if p_a is None or abs(p_a - 0.5) <= 0.05 else ("A" if p_a > 0.5 else "B")
    return m.Judgment.objects.create(
        comparison=comparison, principle=principle, judge_id=judge_id, p_a=p_a, p_a_ab=p_a, p_a_ba=p_a,
        verdict=verdict, position_consistent=position_consistent, rationale=rationale,
    )


def make_label(comparison, choice: str, auditor=None, external_annotator: str = "", **extra):
    """A human label by an auditor or an external annotator."""
    return m.HumanLabel.objects.create(
        comparison=comparison, auditor=auditor, external_annotator=external_annotator, choice=choice, **extra
    )


def launch_post_data(config: dict, **top) -> dict:
    """What a browser posts on the launch page for ``config`` plus the top-level fields (name, stages…):
    the config flattened into its form fields, unticked checkboxes (False) left out, model instances as keys."""
    from runs.forms import initial_from_config

    data = {}
    for key, value in {**initial_from_config(config), **top}.items():
        if value is False or value is None:
            continue
        data[key] = getattr(value, "pk", value)
    return data

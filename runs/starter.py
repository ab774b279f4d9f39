"""Starter data for an empty database: the role groups, an admin account, the starter constitution and
a small demo prompt set."""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from constitutions.starter import ensure_starter_constitution
from rlaif_site.roles import ROLES
from runs.models import Prompt, PromptSet
from runs.prompt_content import content_hash, split_for

DEMO_PROMPTS_FILE = Path(__file__).parent / "starter_data" / "demo_prompts.jsonl"
DEMO_SET_NAME = "Demo prompts (starter)"
DEMO_SEED = 0
DEMO_EVAL_RATIO = 0.2


@dataclass
class StarterReport:
    """What :func:`ensure_starter_data` did. ``admin_password`` is set only when it made the account and
    generated the password (so the caller can print it once)."""

    admin_created: bool = False
    admin_username: str = ""
    admin_password: str | None = None
    constitution_created: bool = False
    prompt_set_created: bool = False


def ensure_groups() -> None:
    for name in ROLES:
        Group.objects.get_or_create(name=name)


@transaction.atomic
def ensure_starter_data() -> StarterReport:
    """Create what a fresh install needs; each piece only when missing, so a second start adds nothing.

    The admin account (superuser, in every role group) is named by ``STUDIO_ADMIN_USERNAME`` (default
    ``admin``); its password comes from ``STUDIO_ADMIN_PASSWORD`` or is generated and returned.
    """
    report = StarterReport()
    ensure_groups()
    User = get_user_model()
    admin = None
    if not User.objects.filter(is_superuser=True).exists():
        username = os.environ.get("STUDIO_ADMIN_USERNAME") or "admin"
        password = os.environ.get("STUDIO_ADMIN_PASSWORD")
        generated = not password
        password = password or secrets.token_urlsafe(12)
        admin = User.objects.create_superuser(username=username, email="", password=password)
        admin.groups.set(Group.objects.filter(name__in=ROLES))
        report.admin_created = True
        report.admin_username = username
        report.admin_password = password if generated else None
    _, report.constitution_created = ensure_starter_constitution(author=admin)
    report.prompt_set_created = ensure_demo_prompt_set(owner=admin)
    return report


def ensure_demo_prompt_set(owner=None) -> bool:
    """Create the demo prompt set from :data:`DEMO_PROMPTS_FILE` unless it exists; True when created."""
    if PromptSet.objects.filter(name=DEMO_SET_NAME).exists():
        return False
    prompt_set = PromptSet.objects.create(
        name=DEMO_SET_NAME,
        description="Forty everyday prompts, some of them harmful requests, for trying a run.",
        source=DEMO_PROMPTS_FILE.name,
        created_by=owner,
    )
    rows = []
    with DEMO_PROMPTS_FILE.open(encoding="utf-8") as handle:
        for index, line in enumerate(handle):
            text = json.loads(line)["prompt"]
            digest = content_hash(text)
            rows.append(
                Prompt(
                    prompt_set=prompt_set,
                    index=index,
                    text=text,
                    content_hash=digest,
                    split=split_for(digest, seed=DEMO_SEED, eval_ratio=DEMO_EVAL_RATIO),
                )
            )
    Prompt.objects.bulk_create(rows)
    return True

"""The runs side of the constitution pages: the runs that pin a version (:mod:`constitutions.pins`) and the
prompt sets the judge-prompt preview picks from (:mod:`constitutions.prompt_sources`); both registered from
``runs.apps.RunsConfig.ready``, so that constitutions know nothing of runs."""
from __future__ import annotations

from django.db.models import Count, QuerySet
from django.urls import reverse

from constitutions.pins import Pin, PinProvider
from constitutions.prompt_sources import PromptSource
from runs.models import Prompt, PromptSet, Run


def run_counts_by_version(version_ids: list[int]) -> dict[int, int]:
    """``{constitution version id: number of runs that pin it}`` (versions without runs are left out)."""
    rows = (Run.objects.filter(constitution_version_id__in=version_ids).values("constitution_version_id")
            .annotate(n=Count("pk")).order_by())
    return {row["constitution_version_id"]: row["n"] for row in rows}


def latest_runs(version, limit: int) -> list[Pin]:
    """The newest ``limit`` runs that pin ``version``, each linked to its page."""
    runs = Run.objects.filter(constitution_version=version).order_by("-created_at")[:limit]
    return [Pin(label=str(run), url=reverse("runs:detail", args=[run.pk])) for run in runs]


def ready_prompt_sets() -> QuerySet:
    """Prompt sets whose import has finished."""
    return PromptSet.objects.filter(status=PromptSet.Status.READY)


def prompts_of(prompt_set_id: int | None) -> QuerySet:
    """The prompts of set ``prompt_set_id`` by index; none for None."""
    if prompt_set_id is None:
        return Prompt.objects.none()
    return Prompt.objects.filter(prompt_set_id=prompt_set_id).order_by("index")


RUN_PINS = PinProvider(counts=run_counts_by_version, latest=latest_runs)
PROMPT_SETS = PromptSource(prompt_sets=ready_prompt_sets, prompts=prompts_of)

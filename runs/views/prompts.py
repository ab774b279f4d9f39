"""Prompt set pages."""
from __future__ import annotations

from django.db.models import Count
from django.shortcuts import render

from runs.models import PromptSet


def promptset_list(request):
    """Prompt sets with their size."""
    sets = PromptSet.objects.annotate(n_prompts=Count("prompts")).select_related("created_by")
    return render(request, "runs/promptset_list.html", {"prompt_sets": sets})

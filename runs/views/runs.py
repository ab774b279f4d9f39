"""Run list and run pages."""
from __future__ import annotations

from django.core.paginator import Paginator
from django.shortcuts import render

from runs.models import Run, RunStatus


def run_list(request):
    """All runs, newest first, filterable by status and owner."""
    runs = Run.objects.select_related("owner", "constitution_version__constitution", "prompt_set")
    status = request.GET.get("status", "")
    if status in RunStatus.values:
        runs = runs.filter(status=status)
    if request.GET.get("mine"):
        runs = runs.filter(owner=request.user)
    page = Paginator(runs, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "runs/run_list.html",
        {"page": page, "statuses": RunStatus.choices, "status": status, "mine": bool(request.GET.get("mine"))},
    )

"""JSON views serving chart figures (built by :mod:`runs.charts`) to the run and compare pages."""
from __future__ import annotations

from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from runs.charts import run_charts
from runs.models import Run

MAX_OVERLAY = 6


def _ids(values: list[str]) -> list[int]:
    ids: list[int] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part.isdigit() and int(part) not in ids:
                ids.append(int(part))
    return ids[:MAX_OVERLAY]


@require_GET
def run_charts_json(request, pk: int):
    """``GET /runs/<pk>/charts.json[?compare=3,4]``: the run's figures, with other runs overlaid."""
    if not Run.objects.filter(pk=pk).exists():
        raise Http404("No such run.")
    ids = [pk] + [i for i in _ids(request.GET.getlist("compare")) if i != pk]
    return JsonResponse(run_charts(ids[:MAX_OVERLAY]))


@require_GET
def compare_charts_json(request):
    """``GET /runs/compare/charts.json?runs=1,2``: figures of several runs overlaid."""
    return JsonResponse(run_charts(_ids(request.GET.getlist("runs"))))


@require_GET
def compare(request):
    """Several runs' curves overlaid (``?runs=1&runs=2`` or ``?runs=1,2``)."""
    ids = _ids(request.GET.getlist("runs"))
    runs = {r.pk: r for r in Run.objects.filter(pk__in=ids).select_related("constitution_version__constitution")}
    return render(request, "runs/run_compare.html", {
        "runs": [runs[i] for i in ids if i in runs],
        "ids": ",".join(str(i) for i in ids if i in runs),
    })

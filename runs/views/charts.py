"""JSON views serving chart figures (built by :mod:`runs.charts`) to the run and compare pages."""
from __future__ import annotations

import csv

from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from rlaif_site.untrusted import csv_row
from runs.chart_export import CSV_FIELDS, panel_rows
from runs.charts import chart_data, run_charts
from runs.config_diff import config_diff
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
def charts_csv(request):
    """``GET /runs/charts.csv?runs=1,2&panel=policy_kl``: the numbers of one panel (or ``panel=scalars``) as
    CSV, one row per point; cells that a spreadsheet would run as formulas are neutralised
    (:func:`rlaif_site.untrusted.csv_row`)."""
    ids = _ids(request.GET.getlist("runs"))
    panel_id = request.GET.get("panel", "")
    if not ids or not panel_id:
        raise Http404("Name the runs (?runs=1,2) and the panel (?panel=…).")
    try:
        rows = panel_rows(chart_data(ids), panel_id)
    except KeyError:
        raise Http404(f"No panel {panel_id!r} for runs {ids}.") from None
    safe_name = "".join(c if c.isalnum() or c in "-_" else "_" for c in panel_id)[:80]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="runs-{"-".join(map(str, ids))}-{safe_name}.csv"'
    writer = csv.DictWriter(response, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow(csv_row(row))
    return response


@require_GET
def compare(request):
    """Several runs' curves overlaid (``?runs=1&runs=2`` or ``?runs=1,2``), with the differences between
    their configs (pinned constitution and prompt set included)."""
    ids = _ids(request.GET.getlist("runs"))
    runs = {r.pk: r for r in Run.objects.filter(pk__in=ids).select_related(
        "constitution_version__constitution", "prompt_set")}
    shown = [runs[i] for i in ids if i in runs]
    return render(request, "runs/run_compare.html", {
        "runs": shown,
        "ids": ",".join(str(r.pk) for r in shown),
        "diff": config_diff(shown) if len(shown) > 1 else None,
    })

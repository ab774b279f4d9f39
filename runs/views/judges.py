"""The "Judges" page: each judge's agreement with its drift-guard anchors over time (:mod:`runs.drift`), as a
chart (a shell page, a JSON view, plotly's own JS through ``runs/static/runs/charts.js``) and a table of the
latest checks, and the chart's numbers as CSV; and the latest runs judged by a panel of judges with how far
their judges agreed (:mod:`runs.panel`; each run's page has the per-judge table)."""
from __future__ import annotations

import csv

from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from rlaif_site.untrusted import csv_row, plotly_safe
from runs import drift, panel
from runs.models import AnchorCheck

#: Checks listed in the page's table.
TABLE_ROWS = 50
CSV_FIELDS = ["checked_at", "judge_id", "run", "anchor_run", "source", "n", "agree", "agreement", "low", "high",
              "threshold", "passed", "released", "ties", "failed"]


@require_GET
def judge_list(request):
    """``/judges/``: the anchor-agreement chart, the latest drift-guard checks and the latest panels."""
    checks = AnchorCheck.objects.select_related("run", "anchor_run")[:TABLE_ROWS]
    return render(request, "runs/judges.html", {"checks": checks, "panels": panel.recent_panels()})


@require_GET
def judges_json(request):
    """``GET /judges/charts.json``: the anchor-agreement panel, in the run pages' chart format."""
    return JsonResponse({"runs": [], "panels": plotly_safe([drift.agreement_panel()]), "scalars": []})


@require_GET
def judges_csv(request):
    """``GET /judges/charts.csv``: every check behind the chart, one row each (spreadsheet-safe cells)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="judge-anchor-agreement.csv"'
    writer = csv.DictWriter(response, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for c in AnchorCheck.objects.order_by("created_at", "pk").iterator():
        writer.writerow(csv_row({
            "checked_at": c.created_at.isoformat(), "judge_id": c.judge_id, "run": c.run_id,
            "anchor_run": c.anchor_run_id, "source": c.source, "n": c.n, "agree": c.agree,
            "agreement": c.agreement, "low": c.low, "high": c.high, "threshold": c.threshold, "passed": c.passed,
            "released": c.released_at is not None, "ties": c.ties, "failed": c.failed,
        }))
    return response

"""Results of a run through the API: metric curves as series, judgments with the pair browser's filters (the
blind-audit rule included: an auditor never gets the audit pairs they have still to label), and the preference
export as a download."""
# No `from __future__ import annotations`: django-ninja reads the endpoints' annotations at runtime.

import shutil
import tempfile
from pathlib import Path
from typing import Literal

from django.http import FileResponse
from ninja import Query, Router, Schema

from rlaif_site.api.errors import ApiError, ErrorOut
from rlaif_site.api.runs import get_run
from runs.audit.blind import blinded_comparison_ids
from runs.exporting import PreferenceFilters, export_dataset, export_stem, save_preferences, zip_folder
from runs.models import HumanLabel, MetricPoint, Run
from runs.views.pairs import filter_judgments

router = Router()

#: Judgments per page (keyset pagination, newest first).
JUDGMENT_PAGE = 50
MAX_JUDGMENT_PAGE = 500


class MetricSeries(Schema):
    stage: str
    name: str
    steps: list[int]
    values: list[float]


class MetricsOut(Schema):
    run: int
    series: list[MetricSeries]


class LabelOut(Schema):
    choice: str
    auditor: str | None
    external_annotator: str
    confidence: int | None


class JudgmentOut(Schema):
    id: int
    comparison_id: int
    purpose: str
    prompt: str
    response_a: str
    response_b: str
    principle_id: int | None
    principle: str | None
    judge_id: str
    verdict: str
    p_a: float | None
    p_a_ab: float | None
    p_a_ba: float | None
    confidence: float | None
    position_consistent: bool | None
    rationale: str
    error: str
    human_labels: list[LabelOut]


class JudgmentPage(Schema):
    items: list[JudgmentOut]
    applied: dict[str, str]
    next_before: int | None
    blind_hidden: int


class JudgmentFilters(Schema):
    principle: str = ""
    min_conf: str = ""
    max_conf: str = ""
    consistent: str = ""
    verdict: str = ""
    audit: str = ""
    flagged: str = ""
    purpose: str = ""
    before: int | None = None
    limit: int = JUDGMENT_PAGE


@router.get("/{int:run_id}/metrics", response=MetricsOut, summary="Metric curves as series")
def metrics(request, run_id: int, name: str = "", stage: str = ""):
    """Every metric the run's stages (or its external script) logged: one series per (stage, name), steps
    ascending. ``name`` and ``stage`` narrow it down."""
    run = get_run(run_id)
    qs = MetricPoint.objects.filter(run=run)
    if name:
        qs = qs.filter(name=name)
    if stage:
        qs = qs.filter(stage=stage)
    series: dict[tuple[str, str], dict] = {}
    for st, nm, step, value in qs.order_by("stage", "name", "step").values_list("stage", "name", "step", "value"):
        entry = series.setdefault((st, nm), {"stage": st, "name": nm, "steps": [], "values": []})
        entry["steps"].append(step)
        entry["values"].append(value)
    return {"run": run.pk, "series": list(series.values())}


@router.get("/{int:run_id}/judgments", response=JudgmentPage, summary="Judged pairs with the pair browser's filters")
def judgments(request, run_id: int, filters: Query[JudgmentFilters]):
    """Newest first, keyset-paginated: pass ``before=<next_before>`` for the next page. Filters as on the pair
    browser (``principle``, ``min_conf``, ``max_conf``, ``consistent``, ``verdict``, ``audit``, ``flagged``,
    ``purpose``).
    An auditor does not get the audit-sample pairs they have still to label (blind labeling)."""
    run = get_run(run_id)
    qs, applied = filter_judgments(run, request.GET)
    blinded = blinded_comparison_ids(run, request.user)
    hidden = qs.filter(comparison_id__in=blinded).count() if _has_audit(run) else 0
    qs = qs.exclude(comparison_id__in=blinded).select_related(
        "principle", "comparison__prompt", "comparison__completion_a", "comparison__completion_b"
    )
    if filters.before is not None:
        qs = qs.filter(pk__lt=filters.before)
    size = max(1, min(MAX_JUDGMENT_PAGE, filters.limit))
    rows = list(qs.order_by("-pk")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    labels: dict[int, list] = {}
    for label in HumanLabel.objects.filter(comparison_id__in=[j.comparison_id for j in rows]).select_related("auditor"):
        labels.setdefault(label.comparison_id, []).append({
            "choice": label.choice, "auditor": label.auditor.get_username() if label.auditor else None,
            "external_annotator": label.external_annotator, "confidence": label.confidence,
        })
    items = []
    for j in rows:
        c = j.comparison
        items.append({
            "id": j.pk, "comparison_id": c.pk, "purpose": c.purpose, "prompt": c.prompt.text,
            "response_a": c.completion_a.text, "response_b": c.completion_b.text,
            "principle_id": j.principle_id, "principle": j.principle.name if j.principle else None,
            "judge_id": j.judge_id, "verdict": j.verdict, "p_a": j.p_a, "p_a_ab": j.p_a_ab, "p_a_ba": j.p_a_ba,
            "confidence": abs(j.p_a - 0.5) * 2 if j.p_a is not None else None,
            "position_consistent": j.position_consistent, "rationale": j.rationale, "error": j.error,
            "human_labels": labels.get(c.pk, []),
        })
    return {"items": items, "applied": applied, "next_before": rows[-1].pk if rows and more else None,
            "blind_hidden": hidden}


def _has_audit(run: Run) -> bool:
    return run.audit_items.exists()


class ExportFilters(Schema):
    dataset: Literal["preferences", "sft", "correction_pairs"] = "preferences"
    style: Literal["standard", "conversational"] = "standard"
    file_format: Literal["jsonl", "disk"] = "jsonl"
    min_confidence: float | None = None
    position_consistent_only: bool | None = None
    human_verified_only: bool = False
    split: Literal["", "train", "eval"] = ""
    ai_only: bool = False


@router.get("/{int:run_id}/preferences", summary="Download the run's preferences (or corrections) in TRL's format",
            response={200: None, 400: ErrorOut})
def preferences(request, run_id: int, filters: Query[ExportFilters]):
    """JSON lines (``file_format=jsonl``) or a zipped ``save_to_disk`` folder (``disk``), with the export
    page's filters (defaults: the run's reward-model config). ``dataset=sft`` or ``correction_pairs`` downloads
    the auditors' corrected responses instead, as SFT demonstrations or as preference pairs over the worse
    response (:func:`runs.exporting.correction_rows`; marked ``source`` ``human``). An auditor's export leaves
    out the audit pairs they have still to label."""
    run = get_run(run_id)
    rm = run.run_config.reward_model
    min_confidence, consistent_only = filters.min_confidence, filters.position_consistent_only
    try:
        export_filters = PreferenceFilters(
            min_confidence=rm.min_confidence if min_confidence is None else min_confidence,
            position_consistent_only=rm.position_consistent_only if consistent_only is None else consistent_only,
            human_verified_only=filters.human_verified_only, split=filters.split,
            prefer_human_labels=False if filters.ai_only else None,
            exclude_comparisons=blinded_comparison_ids(run, request.user),
        )
    except ValueError as exc:
        raise ApiError(400, str(exc), [{"path": "min_confidence", "message": str(exc)}]) from exc
    dataset = export_dataset(run, filters.dataset, export_filters, conversational=filters.style == "conversational")
    stem = export_stem(run, filters.dataset, filters.style)
    work = Path(tempfile.mkdtemp(prefix="studio-export-"))
    try:
        handle = tempfile.TemporaryFile()
        if filters.file_format == "jsonl":
            path = save_preferences(dataset, work / f"{stem}.jsonl", "jsonl")
            with open(path, "rb") as source:
                shutil.copyfileobj(source, handle)
            filename, content_type = f"{stem}.jsonl", "application/x-ndjson"
        else:
            zip_folder(save_preferences(dataset, work / stem, "disk"), handle)
            filename, content_type = f"{stem}.zip", "application/zip"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    handle.seek(0)
    response = FileResponse(handle, as_attachment=True, filename=filename, content_type=content_type)
    response["X-Rows"] = str(len(dataset))
    return response

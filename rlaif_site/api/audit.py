"""Audit through the API: draw a sample (auditors, operators), the next pair for me (auditors, blind), submit
a label (auditors; with the ratings and corrected response the audit plan asks for, optional; the AI's side is
returned only once the label exists), and the agreement figures as numbers
(:func:`runs.audit.report.build_report`)."""
# No `from __future__ import annotations`: django-ninja reads the endpoints' annotations at runtime.

from typing import Any, Literal

from django.db import DatabaseError
from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status

from rlaif_site.api.auth import require_role
from rlaif_site.api.errors import ApiError, ErrorOut, form_errors
from rlaif_site.roles import AUDITORS, OPERATORS
from runs.audit import SCOPES, build_report, draw_audit_sample, ratings, workload
from runs.audit.forms import LabelForm, SampleForm, make_ticket
from runs.audit.queries import labelling_progress
from runs.db_retry import call_with_db_retry, is_transient
from runs.gate import recheck_gate
from runs.models import AuditItem, AuditPlan, HumanLabel, Run
from runs.views.audit import LABEL_SAVE_RETRY_S, save_label, shown_swapped_for

router = Router()


class SampleIn(Schema):
    random_size: int = 50
    uncertain_size: int = 20
    disagree_size: int = 0
    margin: float = 0.1
    seed: int = 0


class SampleOut(Schema):
    random: int
    uncertain: int
    promoted: int
    items: int
    disagree: int = 0


class PairOut(Schema):
    """One audit pair as the auditor sees it, blind: no verdict, probabilities or other labels."""

    item_id: int
    comparison_id: int
    stratum: str
    prompt: str
    principle: str | None
    principle_comparison: str | None
    left: str
    right: str
    ticket: str
    remaining: int
    rating_principles: list[dict[str, Any]] = []
    corrections: bool = False


class RatingIn(Schema):
    """A rating of one response as shown (left/right) under one principle, 1 (poor) to 5 (excellent)."""

    principle_id: int
    side: Literal["left", "right"]
    score: int


class LabelIn(Schema):
    choice: Literal["left", "right", "tie", "skip"]
    confidence: int | None = None
    note: str = ""
    ticket: str
    ratings: list[RatingIn] = []
    correction: str = ""


class LabelOut(Schema):
    item_id: int
    comparison_id: int
    choice: str
    shown_swapped: bool
    ai_verdict: str | None
    ai_p_a: float | None
    ai_rationale: str | None
    gate_met: bool


def _run(run_id: int) -> Run:
    return get_object_or_404(Run, pk=run_id)


@router.post("/{int:run_id}/audit/sample", response={201: SampleOut, 400: ErrorOut, 403: ErrorOut},
             summary="Draw (or top up) the audit sample (auditors, operators)")
def sample(request, run_id: int, payload: SampleIn):
    require_role(request, AUDITORS, OPERATORS)
    run = _run(run_id)
    form = SampleForm(payload.dict())
    if not form.is_valid():
        raise ApiError(400, "The sample request is invalid.", form_errors(form))
    result = draw_audit_sample(run, **{k: form.cleaned_data[k] for k in ("random_size", "uncertain_size", "seed",
                                                                         "margin", "disagree_size")})
    plan = workload.plan_for(run)
    if plan.pk and plan.mode == AuditPlan.Mode.ASSIGNED:
        workload.assign_items(plan)
    return Status(201, {"random": result.random, "uncertain": result.uncertain, "promoted": result.promoted,
                        "disagree": result.disagree, "items": AuditItem.objects.filter(run=run).count()})


@router.get("/{int:run_id}/audit/next", response={200: PairOut, 204: None, 403: ErrorOut},
            summary="The next audit pair for me to label, blind (auditors)")
def next_pair(request, run_id: int):
    """The audit item page's queue (:func:`runs.audit.workload.next_item_for`: the pairs the audit plan gives
    me, in a fixed shuffle that mixes strata) and left/right order (stable per auditor); 204 when none is left.
    ``remaining`` counts my open pairs, this one included. Submit the label with the ``ticket``."""
    require_role(request, AUDITORS)
    run = _run(run_id)
    found = workload.next_item_for(run, request.user)
    if found is None:
        return Status(204, None)
    item = AuditItem.objects.select_related(
        "comparison__prompt", "comparison__completion_a", "comparison__completion_b", "judgment__principle"
    ).get(pk=found.pk)
    comparison = item.comparison
    swapped = shown_swapped_for(request.user.pk, comparison.pk)
    a, b = comparison.completion_a.text, comparison.completion_b.text
    principle = item.judgment.principle if item.judgment else None
    return Status(200, {
        "item_id": item.pk, "comparison_id": comparison.pk, "stratum": item.stratum, "prompt": comparison.prompt.text,
        "principle": principle.name if principle else None,
        "principle_comparison": principle.comparison if principle else None,
        "left": b if swapped else a, "right": a if swapped else b,
        "ticket": make_ticket(comparison.pk, swapped),
        "remaining": workload.open_items(run, request.user).count(),
        **_extras_asked(run),
    })


def _extras_asked(run: Run) -> dict:
    """What the audit plan asks beside the choice: the principles to rate each response under, and whether a
    corrected response is collected."""
    plan = workload.plan_for(run)
    principles = ratings.rated_principles(run) if plan.collect_ratings else []
    return {"rating_principles": [{"id": p.pk, "name": p.name, "comparison": p.comparison} for p in principles],
            "corrections": plan.collect_corrections}


def _label_data(payload: LabelIn, principles: list, corrections: bool) -> dict:
    """The label form's data from the API payload; ratings and a correction the plan does not ask for are refused.

    Raises:
        ApiError: 400 naming the rating or the correction at fault.
    """
    data = {"choice": payload.choice, "note": payload.note, "ticket": payload.ticket,
            "confidence": "" if payload.confidence is None else str(payload.confidence)}
    known = {p.pk for p in principles}
    for i, rating in enumerate(payload.ratings):
        if rating.principle_id not in known:
            raise ApiError(400, "The label is invalid.", [{
                "path": f"ratings[{i}].principle_id",
                "message": (f"principle {rating.principle_id} is not rated in this audit"
                            + (f"; rate one of {sorted(known)}" if known else ": it collects no ratings")),
            }])
        data[f"rating_{rating.principle_id}_{rating.side}"] = str(rating.score)
    if payload.correction.strip() and not corrections:
        raise ApiError(400, "The label is invalid.", [{"path": "correction",
                                                        "message": "this audit collects no corrected responses"}])
    if corrections:
        data["correction"] = payload.correction
    return data


@router.post("/{int:run_id}/audit/items/{int:item_id}/label",
             response={200: LabelOut, 400: ErrorOut, 403: ErrorOut, 503: ErrorOut},
             summary="Submit (or change) my label of an audit pair (auditors)")
def label(request, run_id: int, item_id: int, payload: LabelIn):
    """``choice`` is as shown (left/right/tie/skip), mapped back to A/B with the ticket's order. A run
    waiting at its audit gate goes on once the gate is met (``gate_met``)."""
    require_role(request, AUDITORS)
    item = get_object_or_404(AuditItem.objects.select_related("run", "judgment"), pk=item_id, run_id=run_id)
    refused = workload.may_label(item, request.user)
    if refused:
        raise ApiError(403, refused)
    plan = workload.plan_for(item.run)
    extras = {"principles": ratings.rated_principles(item.run) if plan.collect_ratings else [],
              "corrections": plan.collect_corrections}
    form = LabelForm(_label_data(payload, **extras), comparison_id=item.comparison_id, **extras)
    if not form.is_valid():
        raise ApiError(400, "The label is invalid.", form_errors(form))
    previous = HumanLabel.objects.filter(comparison_id=item.comparison_id, auditor=request.user).first()
    seconds = form.seconds_spent + (previous.seconds_spent if previous else 0.0)
    try:  # a locked SQLite file or a PostgreSQL restart: retried as the audit page does, then a 503
        saved = call_with_db_retry(lambda: save_label(item.comparison, request.user, form, seconds),
                                   what=f"label of comparison {item.comparison_id}", budget_s=LABEL_SAVE_RETRY_S,
                                   max_attempts=3)
        gate_met = call_with_db_retry(lambda: recheck_gate(item.run), what="audit gate",
                                      budget_s=LABEL_SAVE_RETRY_S, max_attempts=3)
    except DatabaseError as exc:
        if not is_transient(exc):
            raise
        raise ApiError(503, "The database is busy; the label is not saved yet. Submit it again in a few seconds.",
                       headers={"Retry-After": "5"}) from exc
    judgment = item.judgment
    return {
        "item_id": item.pk, "comparison_id": item.comparison_id, "choice": saved.choice,
        "shown_swapped": saved.shown_swapped,
        "ai_verdict": judgment.verdict if judgment else None, "ai_p_a": judgment.p_a if judgment else None,
        "ai_rationale": judgment.rationale if judgment else None, "gate_met": gate_met,
    }


class ReportOut(Schema):
    run: int
    scope: str
    progress: dict[str, Any]
    overall: dict[str, Any]
    principles: dict[str, Any]
    subsets: dict[str, Any]
    auditors: dict[str, Any]


@router.get("/{int:run_id}/audit/report", response={200: ReportOut, 400: ErrorOut},
            summary="Judge-vs-human agreement figures with 95% intervals")
def report(request, run_id: int, scope: str = ""):
    """:func:`runs.audit.report.build_report` as numbers: overall, per principle, per subset and per auditor
    (against the AI and the pairwise matrix with the other auditors); ``scope``
    is one of the dashboard's scopes (default: the random stratum, or every labelled pair without a sample)."""
    run = _run(run_id)
    if scope and scope not in SCOPES:
        raise ApiError(400, "Unknown scope.", [{"path": "scope", "message": f"one of {', '.join(SCOPES)}"}])
    scope = scope or ("random" if AuditItem.objects.filter(run=run).exists() else "labelled")
    data = build_report(run, scope)
    return {"run": run.pk, "scope": scope, "progress": labelling_progress(run, request.user),
            "overall": data["overall"], "principles": data["principles"], "subsets": data.get("subsets", {}),
            "auditors": data["auditors"]}

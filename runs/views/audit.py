"""Audit pages: the agreement dashboard, drawing a sample, blind labeling, disagreements and their export,
and the operator's release of the audit gate. The team pages (plan, review queue) are in
:mod:`runs.views.audit_team`."""
from __future__ import annotations

import csv
import hashlib
import io
import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_POST

from rlaif_site.roles import AUDITORS, OPERATORS, REVIEWERS, has_role, role_required
from rlaif_site.untrusted import csv_row
from runs import gate
from runs.audit import SCOPES, audit_rows, build_report, disagreements, draw_audit_sample, ratings, workload
from runs.audit.adjudication import review_counts, review_rows
from runs.audit.blind import blinded_comparison_ids
from runs.audit.calibrated import alignment_estimate, evaluation_estimates
from runs.audit.charts import dashboard_figures
from runs.audit.forms import FlagForm, LabelForm, SampleForm, make_ticket
from runs.audit.queries import labelling_progress
from runs.audit.report import FIGURES
from runs.db_retry import call_with_db_retry, is_transient
from runs.gate import recheck_gate
from runs.models import AuditItem, AuditPlan, HumanLabel, Run, RunStatus, Stage

SORTS = {
    "principle": lambda d: d["principle"],
    "confidence": lambda d: -(d["ai_confidence"] or 0),
    "labels": lambda d: -d["n_labels"],
    "flags": lambda d: -len(d["flags"]),
    "comparison": lambda d: d["comparison_id"],
}
EXPORT_FIELDS = [
    "comparison_id", "judgment_id", "principle", "stratum", "ai_verdict", "p_a", "ai_confidence",
    "position_consistent", "human_majority", "human_labels", "adjudicated", "n_labels", "flags", "rationale",
]


def _run_url(run: Run) -> str:
    try:
        return reverse("runs:detail", args=[run.pk])
    except NoReverseMatch:
        return reverse("runs:list")


def _scope(request, run: Run) -> str:
    """The requested scope; by default the random stratum, or every labelled pair for a run without an
    audit sample (e.g. judged reference pairs)."""
    scope = request.GET.get("scope", "")
    if scope in SCOPES:
        return scope
    return "random" if AuditItem.objects.filter(run=run).exists() else "labelled"


def _gate_context(run: Run) -> dict:
    config = run.run_config.audit_gate
    if config is None:
        return {"configured": False}
    waiting_stage = run.stages.filter(stage=Stage.REWARD_MODEL, status="waiting").first()
    return {
        "configured": True,
        "min_n": config.min_n,
        "min_alignment": config.min_alignment,
        "released": run.gate_released,
        "waiting": run.status == RunStatus.WAITING and waiting_stage is not None,
        "reason": waiting_stage.message if waiting_stage else gate.gate_reason(run, Stage.REWARD_MODEL),
    }


PROPORTIONS = {"alignment", "alignment_length_controlled", "position_consistency", "ai_prefers_longer",
               "human_prefers_longer"}


def _format(name: str, value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1%}" if name in PROPORTIONS else f"{value:.3f}"


def figure_rows(section: dict) -> list[dict]:
    """The figures of a report section as display rows: name, meaning, value, 95% interval and n; a figure the
    section lacks (the length-controlled alignment of a principle) has no row."""
    rows = []
    for name, meaning in FIGURES.items():
        estimate = section["figures"].get(name)
        if estimate is None:
            continue
        rows.append({
            "name": name,
            "meaning": meaning,
            "value": _format(name, estimate["value"]),
            "interval": "—" if estimate["low"] is None else
            f"[{_format(name, estimate['low'])}, {_format(name, estimate['high'])}]",
            "n": estimate["n"],
            "method": estimate["method"],
        })
    return rows


def dashboard(request, run_id: int):
    """Agreement figures with 95% intervals, overall and per principle, for one scope; readable by everyone."""
    run = get_object_or_404(Run.objects.select_related("constitution_version__constitution"), pk=run_id)
    scope = _scope(request, run)
    report = build_report(run, scope)
    can_label = has_role(request.user, AUDITORS)
    plan = workload.plan_for(run)
    return render(
        request,
        "runs/audit_dashboard.html",
        {
            "run": run,
            "run_url": _run_url(run),
            "scope": scope,
            "scopes": SCOPES,
            "report": report,
            "overall_rows": figure_rows(report["overall"]),
            "principle_rows": [(name, sec, figure_rows(sec)) for name, sec in report["principles"].items()],
            "figures": dashboard_figures(report),
            "calibrated": {"alignment": alignment_estimate(run), "evaluation": evaluation_estimates(run)},
            "progress": labelling_progress(run, request.user),
            "mine": workload.auditor_progress(run, request.user, plan=plan) if can_label else None,
            "plan": plan,
            "team": workload.team_counts(run, plan),
            "review": review_counts(review_rows(run, plan)),
            "auditor_agreement": report["auditors"],
            "ratings": ratings.rating_summary(run),
            "corrections": ratings.correction_counts(run),
            "can_plan": has_role(request.user, OPERATORS) or has_role(request.user, REVIEWERS),
            "can_review": has_role(request.user, REVIEWERS),
            "gate": _gate_context(run),
            "can_label": can_label,
            "can_sample": can_label or has_role(request.user, OPERATORS),
            "can_release": has_role(request.user, OPERATORS),
            "sample_form": SampleForm(),
        },
    )


@require_POST
def sample(request, run_id: int):
    """Draw (or top up) the audit sample; auditors and operators."""
    if not (has_role(request.user, AUDITORS) or has_role(request.user, OPERATORS)):
        raise PermissionDenied("Drawing an audit sample needs the 'auditors' or 'operators' role.")
    run = get_object_or_404(Run, pk=run_id)
    form = SampleForm(request.POST)
    if form.is_valid():
        result = draw_audit_sample(
            run,
            random_size=form.cleaned_data["random_size"],
            uncertain_size=form.cleaned_data["uncertain_size"],
            disagree_size=form.cleaned_data["disagree_size"],
            seed=form.cleaned_data["seed"],
            margin=form.cleaned_data["margin"],
        )
        plan = workload.plan_for(run)
        if plan.pk and plan.mode == AuditPlan.Mode.ASSIGNED:
            workload.assign_items(plan)
        messages.success(
            request,
            f"Added {result.random} random and {result.uncertain} uncertain comparisons to the audit"
            + (f", and {result.disagree} whose judges disagree" if result.disagree else "")
            + (f" ({result.promoted} uncertain ones were also drawn at random)." if result.promoted else "."),
        )
    else:
        errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        messages.error(request, f"Audit sample not drawn: {errors}")
    return redirect("runs:audit_dashboard", run_id=run.pk)


@role_required(AUDITORS)
def next_item(request, run_id: int):
    """Go to the next audit pair the plan gives this auditor and they have not labelled
    (:func:`runs.audit.workload.next_item_for`: a fixed shuffled order that mixes strata)."""
    run = get_object_or_404(Run, pk=run_id)
    item = workload.next_item_for(run, request.user)
    if item is None:
        messages.info(request, "You have labelled every pair this audit gives you.")
        return redirect("runs:audit_dashboard", run_id=run.pk)
    return redirect("runs:audit_item", run_id=run.pk, item_id=item.pk)


def shown_swapped_for(user_id: int, comparison_id: int) -> bool:
    """The left/right order one auditor sees for one comparison: random, but stable across page loads."""
    return hashlib.sha256(f"swap:{user_id}:{comparison_id}".encode()).digest()[0] % 2 == 1


@role_required(AUDITORS)
def item(request, run_id: int, item_id: int):
    """Blind labeling of one pair. Before the auditor's label exists (or while editing it) the page holds
    the prompt, the principle and the two responses only; the AI's verdict, probabilities and rationale
    are shown after the label is submitted. A run waiting at its audit gate goes on once the gate is met."""
    audit_item = get_object_or_404(
        AuditItem.objects.select_related(
            "run", "comparison__prompt", "comparison__completion_a", "comparison__completion_b", "judgment__principle"
        ),
        pk=item_id,
        run_id=run_id,
    )
    comparison = audit_item.comparison
    plan = workload.plan_for(audit_item.run)
    refused = workload.may_label(audit_item, request.user, plan)
    if refused:
        raise PermissionDenied(refused)
    label = HumanLabel.objects.filter(comparison=comparison, auditor=request.user).first()
    swapped = label.shown_swapped if label else shown_swapped_for(request.user.pk, comparison.pk)
    extras = {"principles": ratings.rated_principles(audit_item.run) if plan.collect_ratings else (),
              "corrections": plan.collect_corrections}
    stored, correction = ratings.stored_extras(label)
    if request.method == "POST":
        form = LabelForm(request.POST, comparison_id=comparison.pk, **extras)
        if form.is_valid():
            seconds = form.seconds_spent + (label.seconds_spent if label else 0.0)
            try:  # a locked SQLite file or a PostgreSQL restart: retry the upsert, then keep the input
                call_with_db_retry(lambda: save_label(comparison, request.user, form, seconds),
                                   what=f"label of comparison {comparison.pk}", budget_s=LABEL_SAVE_RETRY_S,
                                   max_attempts=3)
            except DatabaseError as exc:
                if not is_transient(exc):
                    raise
                return _label_not_saved(request, audit_item, plan, form, swapped)
            try:
                gate_met = call_with_db_retry(lambda: recheck_gate(audit_item.run), what="audit gate",
                                              budget_s=LABEL_SAVE_RETRY_S, max_attempts=3)
            except DatabaseError as exc:  # the label is saved; the recovery monitor settles the run later
                if not is_transient(exc):
                    raise
                gate_met = False
            if gate_met:
                messages.success(request, "The audit now meets the run's gate: reward-model training is queued.")
            return redirect("runs:audit_item", run_id=run_id, item_id=item_id)
        blind = True
    else:
        blind = label is None or request.GET.get("edit") == "1"
        initial = {"ticket": make_ticket(comparison.pk, swapped)}
        if label:
            initial |= {"choice": _display_choice(label.choice, swapped), "confidence": label.confidence,
                        "note": label.note}
        form = LabelForm(initial=initial, comparison_id=comparison.pk, **extras)
        form.initial |= form.extras_initial(stored, correction.text if correction else "", swapped)
    context = _pair_context(request, audit_item, plan, swapped) | {"blind": blind, "form": form}
    if not blind:  # the AI's side enters the page only after the auditor's choice
        judgment = audit_item.judgment
        context |= {
            "label": label,
            "label_display": _display_choice(label.choice, swapped),
            "judgment": judgment,
            "ai_display": _display_choice(judgment.verdict, swapped) if judgment else "",
            "p_left": None if not judgment or judgment.p_a is None else (1 - judgment.p_a if swapped else judgment.p_a),
            "flag_form": FlagForm(initial={"rationale_flag": label.rationale_flag}),
            "others": HumanLabel.objects.filter(comparison=comparison).exclude(pk=label.pk).count(),
            "my_ratings": _shown_ratings(ratings.rated_principles(audit_item.run) if stored else [], stored, swapped),
            "my_correction": correction,
            "correction_display": _display_choice(correction.rewrites, swapped) if correction else "",
        }
    return render(request, "runs/audit_item.html", context)


#: Seconds a label save keeps retrying a busy database before the form comes back with the input kept.
LABEL_SAVE_RETRY_S = 20.0


@transaction.atomic
def save_label(comparison, user, form: LabelForm, seconds: float) -> HumanLabel:
    """Save ``user``'s label of ``comparison`` from a valid :class:`LabelForm`, with the ratings and the corrected
    response the form asked for (:func:`runs.audit.ratings.save_extras`), in one transaction."""
    saved, _ = HumanLabel.objects.update_or_create(
        comparison=comparison, auditor=user,
        defaults={"choice": form.comparison_choice(), "confidence": form.cleaned_data["confidence"],
                  "note": form.cleaned_data["note"], "seconds_spent": seconds, "shown_swapped": form.shown_swapped},
    )
    ratings.save_extras(saved, ratings=form.ratings(), correction=form.correction(),
                        rewrites=saved.choice if saved.choice in ("A", "B") else "")
    return saved


def _shown_ratings(principles, stored: dict, swapped: bool) -> list[dict]:
    """The auditor's ratings as they saw the pair: ``[{"principle", "left", "right"}]`` (None where not rated)."""
    left, right = ("B", "A") if swapped else ("A", "B")
    rows = [{"principle": p, "left": stored.get((p.pk, left)), "right": stored.get((p.pk, right))} for p in principles]
    return [row for row in rows if row["left"] is not None or row["right"] is not None]


def _pair_context(request, audit_item: AuditItem, plan: AuditPlan, swapped: bool, *, progress: bool = True) -> dict:
    """What the labeling page shows of a pair, blind: prompt, principle, the two responses in the auditor's
    order, the audit's guidelines and (``progress``) the auditor's place in their queue."""
    comparison = audit_item.comparison
    a, b = comparison.completion_a.text, comparison.completion_b.text
    return {
        "run": audit_item.run,
        "item": audit_item,
        "prompt": comparison.prompt,
        "principle": audit_item.judgment.principle if audit_item.judgment else None,
        "left": b if swapped else a,
        "right": a if swapped else b,
        "guidelines": plan.guidelines,
        "mine": workload.auditor_progress(audit_item.run, request.user, audit_item, plan) if progress else None,
    }


def _label_not_saved(request, audit_item: AuditItem, plan: AuditPlan, form: LabelForm, swapped: bool) -> HttpResponse:
    """The database stayed busy: show the blind form again, filled with what the auditor chose (nothing is
    lost), with a 503 and ``Retry-After`` so that submitting again saves it (no further query is made)."""
    context = _pair_context(request, audit_item, plan, swapped, progress=False) | {
        "blind": True, "form": form,
        "save_error": "The database is busy, so your label is not saved yet. Your choice is kept below: "
                      "submit it again in a few seconds.",
    }
    messages.error(request, context["save_error"])
    response = render(request, "runs/audit_item.html", context, status=503)
    response["Retry-After"] = "5"
    return response


def _display_choice(choice: str, swapped: bool) -> str:
    """A/B of the comparison as the auditor saw them: "left" / "right", or "tie" / "skip"."""
    if choice not in ("A", "B"):
        return choice
    return "left" if (choice == "A") != swapped else "right"


@role_required(AUDITORS)
@require_POST
def flag(request, run_id: int, item_id: int):
    """Flag the AI rationale of a pair the auditor has labelled ("verdict right, reason wrong" etc.)."""
    audit_item = get_object_or_404(AuditItem, pk=item_id, run_id=run_id)
    label = get_object_or_404(HumanLabel, comparison_id=audit_item.comparison_id, auditor=request.user)
    form = FlagForm(request.POST)
    if form.is_valid():
        label.rationale_flag = form.cleaned_data["rationale_flag"]
        label.save(update_fields=["rationale_flag", "updated_at"])
        messages.success(request, "Flag saved.")
    return redirect("runs:audit_item", run_id=run_id, item_id=item_id)


def disagreement_list(request, run_id: int):
    """Pairs where the human majority and the AI verdict differ (or the rationale was flagged), sortable;
    ``?format=csv`` or ``?format=jsonl`` downloads them."""
    run = get_object_or_404(Run, pk=run_id)
    scope = request.GET.get("scope", "all")
    if scope == "all" and AuditItem.objects.filter(run=run).exists():
        rows = [row for stratum in AuditItem.Stratum.values for row in audit_rows(run, stratum)]
    else:
        scope = _scope(request, run) if scope != "all" else "labelled"
        rows = audit_rows(run, scope)
    # Blind labeling: pairs this auditor has still to label stay out of the list and its downloads.
    blinded = set(blinded_comparison_ids(run, request.user).values_list("comparison_id", flat=True))
    rows = [row for row in rows if row.comparison_id not in blinded]
    sort = request.GET.get("sort", "confidence")
    items = sorted(disagreements(rows), key=SORTS.get(sort, SORTS["confidence"]))
    fmt = request.GET.get("format", "")
    if fmt == "jsonl":
        body = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in items)
        return _download(body, f"run-{run.pk}-disagreements.jsonl", "application/x-ndjson")
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS)
        writer.writeheader()
        for d in items:
            writer.writerow(csv_row({**d, "human_labels": " ".join(d["human_labels"]), "flags": " ".join(d["flags"])}))
        return _download(out.getvalue(), f"run-{run.pk}-disagreements.csv", "text/csv")
    return render(
        request,
        "runs/audit_disagreements.html",
        {"run": run, "items": items, "sort": sort, "sorts": list(SORTS), "scope": scope, "blind_hidden": len(blinded),
         "scopes": {"all": "Every audit stratum", **SCOPES}},
    )


def _download(body: str, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(body, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response



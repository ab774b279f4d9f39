"""Auditing as a team: the audit plan (who labels what, overlap, guidelines; operators and reviewers) and the
review queue where a reviewer settles the pairs auditors disagree on (reviewers)."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render

from rlaif_site.roles import OPERATORS, REVIEWERS, has_role, role_required
from runs.audit import workload
from runs.audit.adjudication import adjudicate, label_snapshot, review_counts, review_rows
from runs.audit.blind import blinded_comparison_ids
from runs.audit.forms import AdjudicationForm, AuditPlanForm
from runs.gate import recheck_gate
from runs.models import Adjudication, AuditItem, AuditPlan, HumanLabel, Run


def plan(request, run_id: int):
    """The audit plan of a run: mode (everyone, pooled, assigned), auditors per pair, the named auditors,
    whether human-vs-AI disagreements go to review, and the guidelines. Operators and reviewers edit it."""
    run = get_object_or_404(Run, pk=run_id)
    if not (has_role(request.user, OPERATORS) or has_role(request.user, REVIEWERS)):
        raise PermissionDenied("Setting up an audit needs the 'operators' or 'reviewers' role.")
    current = workload.plan_for(run)
    if request.method == "POST":
        form = AuditPlanForm(request.POST, instance=current)
        if form.is_valid():
            with transaction.atomic():
                saved = form.save(commit=False)
                saved.run, saved.updated_by = run, request.user
                saved.save()
                form.save_m2m()
                added = workload.apply_plan(saved)
            messages.success(request, f"Audit plan saved ({saved.get_mode_display().lower()}"
                                      + (f", {saved.overlap} per pair" if saved.mode != AuditPlan.Mode.EVERYONE
                                         else "") + (f"; {added} assignments added" if added else "") + ").")
            return redirect("runs:audit_dashboard", run_id=run.pk)
    else:
        form = AuditPlanForm(instance=current)
    return render(request, "runs/audit_plan.html", {"run": run, "form": form, "plan": current})


@role_required(REVIEWERS)
def review_list(request, run_id: int):
    """The review queue: complete pairs sent to review and not yet settled, pairs still waiting for labels, and
    the pairs already settled with their decisions."""
    run = get_object_or_404(Run, pk=run_id)
    current = workload.plan_for(run)
    rows = review_rows(run, current)
    decisions = (Adjudication.objects.filter(comparison__audit_items__run=run).select_related("reviewer")
                 .order_by("-created_at", "-pk"))
    return render(request, "runs/audit_review_list.html", {
        "run": run, "plan": current, "counts": review_counts(rows),
        "pending": [r for r in rows if r.pending],
        "waiting": [r for r in rows if r.reason and not r.complete and not r.decision],
        "settled": [r for r in rows if r.decision], "decisions": decisions,
    })


@role_required(REVIEWERS)
def review_next(request, run_id: int):
    """Go to the first pair waiting for a decision, or back to the queue when none is left."""
    run = get_object_or_404(Run, pk=run_id)
    pending = [r for r in review_rows(run) if r.pending]
    if not pending:
        messages.info(request, "No pair is waiting for review.")
        return redirect("runs:audit_review", run_id=run.pk)
    return redirect("runs:audit_review_item", run_id=run.pk, item_id=pending[0].item_id)


@role_required(REVIEWERS)
def review_item(request, run_id: int, item_id: int):
    """One pair for review: prompt, principle, guidelines, both responses (A, B in the comparison's order), every
    label with its notes, the AI verdict and rationale, and earlier decisions. A reviewer who is still to label
    the pair blind as an auditor may not see it here."""
    audit_item = get_object_or_404(
        AuditItem.objects.select_related("run", "comparison__prompt", "comparison__completion_a",
                                         "comparison__completion_b", "judgment__principle"),
        pk=item_id, run_id=run_id,
    )
    run = audit_item.run
    if blinded_comparison_ids(run, request.user).filter(comparison_id=audit_item.comparison_id).exists():
        raise PermissionDenied("You are still to label this pair as an auditor: label it blind first, or let "
                               "another reviewer settle it.")
    current = workload.plan_for(run)
    if request.method == "POST":
        form = AdjudicationForm(request.POST)
        if form.is_valid():
            adjudicate(audit_item, request.user, form.cleaned_data["choice"], form.cleaned_data["note"])
            if recheck_gate(run):
                messages.success(request, "The audit now meets the run's gate: reward-model training is queued.")
            messages.success(request, f"Pair {audit_item.pk} settled: {form.cleaned_data['choice']}.")
            return redirect("runs:audit_review_next", run_id=run.pk)
    else:
        form = AdjudicationForm()
    row = next((r for r in review_rows(run, current) if r.item_id == audit_item.pk), None)
    comparison = audit_item.comparison
    return render(request, "runs/audit_review_item.html", {
        "run": run, "item": audit_item, "row": row, "form": form, "prompt": comparison.prompt,
        "principle": audit_item.judgment.principle if audit_item.judgment else None,
        "judgment": audit_item.judgment, "response_a": comparison.completion_a.text,
        "response_b": comparison.completion_b.text, "labels": label_snapshot(comparison.pk),
        "guidelines": current.guidelines, "plan": current,
        "decisions": Adjudication.objects.filter(comparison=comparison).select_related("reviewer"),
        "own_label": HumanLabel.objects.filter(comparison=comparison, auditor=request.user).exists(),
    })

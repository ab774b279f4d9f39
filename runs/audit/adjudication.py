"""Adjudication: audit pairs whose auditors disagree (or whose human majority differs from the AI verdict, when
the plan asks) go to a review queue; a reviewer's decision (:class:`runs.models.Adjudication`) becomes the
pair's final human label, read by the audit gate, the agreement figures and the preference export.

A pair is reviewed once it is complete (it has the plan's required number of counted labels). Decisions are
appended, never changed, and the latest one counts; the auditors' labels stay as they were.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, F, Q, QuerySet

from runs.audit.queries import COUNTED, latest_decision
from runs.models import Adjudication, AuditItem, AuditPlan, Comparison, HumanChoice, HumanLabel, Run
from training.judge_conventions import human_majority as majority_vote


def latest_adjudications(comparisons: QuerySet[Comparison]) -> dict[int, str]:
    """``{comparison_id: the latest adjudicated choice}`` for the adjudicated comparisons among ``comparisons``."""
    rows = (
        Adjudication.objects.filter(comparison__in=comparisons.values("pk"))
        .order_by("comparison_id", "created_at", "pk").values_list("comparison_id", "choice")
    )
    return dict(rows)  # ascending, so the latest of each comparison is written last


@dataclass
class ReviewRow:
    """One audit pair as the review queue sees it.

    Attributes:
        counts: counted labels per choice, ``{"A": n, "B": n, "tie": n}``.
        majority: the human majority (a shared top count is a tie), "" without labels.
        reason: why it goes to review: ``"auditors"`` (they disagree), ``"ai"`` (the majority differs from the
            AI verdict), or "" (it does not).
        complete: it has the plan's required number of counted labels.
        decision: the latest adjudicated choice, "" when none.
    """

    item_id: int
    comparison_id: int
    stratum: str
    principle: str
    ai_verdict: str
    counts: dict
    majority: str
    reason: str
    complete: bool
    decision: str

    @property
    def pending(self) -> bool:
        """Complete, sent to review, not yet decided."""
        return self.complete and bool(self.reason) and not self.decision

    @property
    def n_labels(self) -> int:
        return sum(self.counts.values())


def review_reason(counts: dict, ai_verdict: str, *, ai_disagreements: bool = True) -> str:
    """Why a pair with these counted labels goes to review: ``"auditors"`` when two or more choices were given,
    ``"ai"`` when (``ai_disagreements``) the human majority differs from a successful AI verdict, else ""."""
    given = [choice for choice, n in counts.items() if n]
    if len(given) > 1:
        return Adjudication.Reason.AUDITORS_DISAGREE
    if ai_disagreements and given and ai_verdict in COUNTED and majority_vote(counts) != ai_verdict:
        return Adjudication.Reason.AI_DISAGREES
    return ""


def review_rows(run: Run, plan: AuditPlan | None = None) -> list[ReviewRow]:
    """Every audit item of ``run`` with its label counts (counted in the database), AI verdict, review reason
    and latest decision, in item order."""
    from runs.audit.workload import plan_for

    plan = plan or plan_for(run)
    label = "comparison__human_labels__choice"
    items = (
        AuditItem.objects.filter(run=run)
        .annotate(a=Count("comparison__human_labels", filter=Q(**{label: HumanChoice.A})),
                  b=Count("comparison__human_labels", filter=Q(**{label: HumanChoice.B})),
                  t=Count("comparison__human_labels", filter=Q(**{label: HumanChoice.TIE})),
                  decision=latest_decision(), ai=F("judgment__verdict"), principle_name=F("judgment__principle__name"))
        .values("pk", "comparison_id", "stratum", "a", "b", "t", "decision", "ai", "principle_name")
        .order_by("pk")
    )
    rows = []
    for item in items:
        counts = {"A": item["a"], "B": item["b"], "tie": item["t"]}
        n = sum(counts.values())
        rows.append(ReviewRow(
            item_id=item["pk"], comparison_id=item["comparison_id"], stratum=item["stratum"],
            principle=item["principle_name"] or "(no principle)", ai_verdict=item["ai"] or "", counts=counts,
            majority=majority_vote(counts) if n else "",
            reason=review_reason(counts, item["ai"] or "", ai_disagreements=plan.review_ai_disagreements),
            complete=n >= plan.required_labels, decision=item["decision"] or "",
        ))
    return rows


def review_counts(rows: list[ReviewRow]) -> dict:
    """``{"pending", "adjudicated", "incomplete_disagreeing"}`` over :func:`review_rows`."""
    return {
        "pending": sum(r.pending for r in rows),
        "adjudicated": sum(bool(r.decision) for r in rows),
        "incomplete_disagreeing": sum(bool(r.reason) and not r.complete and not r.decision for r in rows),
    }


def label_snapshot(comparison_id: int) -> list[dict]:
    """The labels of a comparison as a reviewer sees them (kept with the decision)."""
    return [
        {"annotator": username or external, "choice": choice, "confidence": confidence, "note": note}
        for username, external, choice, confidence, note in HumanLabel.objects.filter(comparison_id=comparison_id)
        .order_by("pk").values_list("auditor__username", "external_annotator", "choice", "confidence", "note")
    ]


@transaction.atomic
def adjudicate(item: AuditItem, reviewer, choice: str, note: str = "") -> Adjudication:
    """Record ``reviewer``'s decision on ``item``'s pair: the pair's final human label from now on.

    Args:
        choice: ``"A"``, ``"B"`` or ``"tie"`` in the comparison's terms.

    Raises:
        ValueError: another choice.
    """
    if choice not in COUNTED:
        raise ValueError(f"an adjudication is A, B or tie; got {choice!r}")
    from runs.audit.workload import plan_for

    counts = {c: 0 for c in COUNTED}
    for c in HumanLabel.objects.filter(comparison_id=item.comparison_id, choice__in=COUNTED).values_list(
            "choice", flat=True):
        counts[c] += 1
    ai = item.judgment.verdict if item.judgment_id else ""
    reason = review_reason(counts, ai, ai_disagreements=plan_for(item.run).review_ai_disagreements)
    return Adjudication.objects.create(
        comparison_id=item.comparison_id, reviewer=reviewer, choice=choice, note=note,
        reason=reason or Adjudication.Reason.REVIEWER, labels=label_snapshot(item.comparison_id),
    )

"""The audit gate: a run may be configured to wait before reward-model training until a human audit of
its AI labels is large enough and agrees enough (config ``audit_gate``: ``{"min_n": int,
"min_alignment": float}``)."""
from __future__ import annotations

from django.db.models import Count, Exists, OuterRef, Q

from runs.models import AuditItem, HumanLabel, Judgment, Run, Stage


def audit_alignment(run: Run) -> tuple[int, float | None]:
    """AI labeler alignment on the run's random audit stratum (Lee et al. 2023): among human labels
    that chose A or B on an audited comparison whose AI verdict is A or B, the share where they agree.

    Returns:
        ``(n, alignment)``; alignment is None when n is 0.
    """
    audited = AuditItem.objects.filter(run=run, stratum=AuditItem.Stratum.RANDOM).values("comparison")
    ai_verdict = Judgment.objects.filter(comparison=OuterRef("comparison"), verdict__in=["A", "B"])
    labels = HumanLabel.objects.filter(comparison__in=audited, choice__in=["A", "B"]).filter(Exists(ai_verdict))
    agree = Judgment.objects.filter(comparison=OuterRef("comparison"), verdict=OuterRef("choice"))
    totals = labels.aggregate(n=Count("pk"), agree=Count("pk", filter=Q(Exists(agree))))
    n = totals["n"]
    return n, (totals["agree"] / n if n else None)


def gate_reason(run: Run, stage: str) -> str | None:
    """Why ``stage`` of ``run`` may not start yet, or None when it may.

    Only the reward-model stage is gated. An operator's release (``run.gate_released``) opens the gate.
    """
    config = run.config.get("audit_gate") or {}
    if stage != Stage.REWARD_MODEL or not config or run.gate_released:
        return None
    min_n = int(config.get("min_n", 0))
    min_alignment = float(config.get("min_alignment", 0.0))
    n, alignment = audit_alignment(run)
    if n < min_n:
        return f"Waiting for the audit: {n} of {min_n} human labels on the random audit sample."
    if alignment is None or alignment < min_alignment:
        shown = "n/a" if alignment is None else f"{alignment:.0%}"
        return f"Waiting for the audit: AI labeler alignment {shown} is below the required {min_alignment:.0%}."
    return None

"""Holds on a run. The audit gate: a run may be configured to wait before reward-model training until a human
audit of its AI labels is large enough and agrees enough (config ``audit_gate``: ``{"min_n": int,
"min_alignment": float}``). A stage may also hold its run while it runs (:class:`Hold`: the drift guard,
:mod:`runs.drift`). Either way the stage and the run are "waiting" with a message, and an operator releases
the hold (:func:`runs.services.release_gate`) or cancels the run."""
from __future__ import annotations

from runs.models import Run, Stage


class Hold(Exception):
    """Raised by a stage function that must not go on without an operator: the job runner ends the attempt
    with the stage and its run "waiting", the exception's text as the stage's message. A release or a resume
    queues the stage again."""


def audit_alignment(run: Run) -> tuple[int, float | None]:
    """AI labeler alignment on the run's random audit stratum (Lee et al. 2023): among the decisive (A/B)
    human labels on audited comparisons, the share the audited AI verdict agrees with (counted in the
    database by :func:`runs.audit.queries.alignment_counts`).

    Returns:
        ``(n, alignment)``; alignment is None when n is 0.
    """
    from runs.audit.queries import alignment_counts

    agree, n = alignment_counts(run)
    return n, (agree / n if n else None)


def gate_reason(run: Run, stage: str) -> str | None:
    """Why ``stage`` of ``run`` may not start yet, or None when it may.

    Only the reward-model stage is gated. An operator's release (``run.gate_released``) opens the gate.
    """
    config = run.run_config.audit_gate
    if stage != Stage.REWARD_MODEL or config is None or run.gate_released:
        return None
    min_n, min_alignment = config.min_n, config.min_alignment
    n, alignment = audit_alignment(run)
    if n < min_n:
        return f"Waiting for the audit: {n} of {min_n} human labels on the random audit sample."
    if alignment is None or alignment < min_alignment:
        from training.agreement import proportion

        if alignment is None:
            return f"Waiting for the audit: AI labeler alignment n/a is below the required {min_alignment:.0%}."
        estimate = proportion(round(alignment * n), n)
        return (
            f"Waiting for the audit: AI labeler alignment {alignment:.0%} (95% CI {estimate.low:.0%}–"
            f"{estimate.high:.0%}, n={n}) is below the required {min_alignment:.0%}."
        )
    return None


def recheck_gate(run: Run) -> bool:
    """Re-check the audit gate as labels arrive: if ``run`` waits at its audit gate, resume it when the gate is
    now met (returns True), else refresh the waiting stage's message with the current reason (returns False).
    Does nothing for other runs."""
    from runs import services
    from runs.models import RunStatus, StageRun, StageStatus

    run.refresh_from_db(fields=["status", "config", "gate_released"])
    waiting = StageRun.objects.filter(run=run, stage=Stage.REWARD_MODEL, status=StageStatus.WAITING)
    if run.status != RunStatus.WAITING or not waiting.exists():
        return False
    reason = gate_reason(run, Stage.REWARD_MODEL)
    if reason:
        waiting.update(message=reason[:500])
        return False
    services.resume_run(run)
    return True


"""Re-checking the audit gate as labels arrive: a run waiting before reward-model training goes on by
itself once its audit meets the gate, and its waiting message stays current until then."""
from __future__ import annotations

from runs import gate, services
from runs.models import Run, RunStatus, Stage, StageRun, StageStatus


def recheck_gate(run: Run) -> bool:
    """If ``run`` waits at its audit gate: resume it when the gate is now met (returns True), else refresh
    the waiting stage's message with the current reason (returns False). Does nothing for other runs."""
    run.refresh_from_db(fields=["status", "config", "gate_released"])
    waiting = StageRun.objects.filter(run=run, stage=Stage.REWARD_MODEL, status=StageStatus.WAITING)
    if run.status != RunStatus.WAITING or not waiting.exists():
        return False
    reason = gate.gate_reason(run, Stage.REWARD_MODEL)
    if reason:
        waiting.update(message=reason[:500])
        return False
    services.resume_run(run)
    return True

"""Starting, advancing, cancelling and resuming runs: the one place that creates stage rows and enqueues
jobs, shared by views, management commands and tests."""
from __future__ import annotations

import logging
from collections.abc import Sequence

from django.db import transaction
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from rlaif_site.queueing import get_queue
from runs import gate
from runs.models import ACTIVE_STATUSES, Run, RunStatus, StageRun, StageStatus
from runs.stages.registry import STAGES, in_pipeline_order

logger = logging.getLogger(__name__)

#: The RQ job function, by dotted path: RQ imports it in the worker, and this module need not import
#: :mod:`runs.jobs` (which calls back into this one).
RUN_STAGE_JOB = "runs.jobs.run_stage"

def job_id_for(stage_run: StageRun) -> str:
    """Deterministic RQ job id: one job per run stage, so a double enqueue cannot run it twice; the run's
    :attr:`~runs.models.Run.key` keeps runs of different databases on one Redis apart."""
    return f"run-{stage_run.run.key}-{stage_run.stage}"


def queue_name_for(run: Run, stage: str) -> str:
    """The queue a stage goes to: model training may be routed to the ``gpu`` queue by the config."""
    queues = run.config.get("queues") or {}
    return queues.get(stage, "default")


@transaction.atomic
def launch_run(
    *, name: str, owner, constitution_version, prompt_set, config: dict, stages: Sequence[str]
) -> Run:
    """Create a run with one StageRun per requested stage and enqueue the first one (on commit).

    Args:
        stages: stage names; they run in pipeline order (:data:`runs.stages.registry.STAGES`) whatever the order given.

    Raises:
        ValueError: no stage, or an unknown stage name.
    """
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"Unknown stage(s): {', '.join(unknown)}")
    if not stages:
        raise ValueError("A run needs at least one stage.")
    run = Run.objects.create(
        name=name,
        owner=owner,
        constitution_version=constitution_version,
        prompt_set=prompt_set,
        config=config,
        status=RunStatus.QUEUED,
    )
    StageRun.objects.bulk_create(StageRun(run=run, stage=s) for s in in_pipeline_order(stages))
    advance(run)
    return run


def enqueue_stage(stage_run: StageRun) -> None:
    """Mark ``stage_run`` queued and enqueue its job (after the surrounding transaction commits)."""
    run = stage_run.run
    stage_run.mark_queued(job_id_for(stage_run))
    timeout = (run.config.get("timeouts") or {}).get(stage_run.stage, STAGES[stage_run.stage].timeout_s)
    queue = get_queue(queue_name_for(run, stage_run.stage))
    queue.enqueue(
        RUN_STAGE_JOB,
        stage_run.pk,
        job_id=stage_run.job_id,
        job_timeout=int(timeout),
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        description=f"{run} · {stage_run.stage}",
    )


def advance(run: Run) -> StageRun | None:
    """Enqueue the first stage of ``run`` that has not succeeded; finish the run when none is left.

    A stage behind an unmet audit gate (see :mod:`runs.gate`) is not enqueued: the run waits.

    Returns:
        The stage enqueued, or None when the run finished or waits.
    """
    run.refresh_from_db()
    if run.status in (RunStatus.CANCELLED, RunStatus.FAILED):
        return None
    if run.cancel_requested:
        # A cancel that arrived while the last stage finished its last batch: end the run here, or it would
        # stay "running" with nothing queued.
        settle_cancel(run)
        return None
    pending = [s for s in run.ordered_stages() if s.status != StageStatus.SUCCEEDED]
    if not pending:
        run.finish(RunStatus.SUCCEEDED)
        return None
    nxt = pending[0]
    if nxt.status in (StageStatus.QUEUED, StageStatus.RUNNING):
        return nxt
    reason = gate.gate_reason(run, nxt.stage)
    if reason:
        nxt.mark_waiting(reason)
        run.mark_waiting(nxt.stage)
        return None
    run.move_to(nxt.stage)
    enqueue_stage(nxt)
    return nxt


def cancel_run(run: Run) -> None:
    """Ask a run to stop. A running stage stops at its next safe point (it polls the flag) and keeps what
    it finished; queued and waiting stages are cancelled at once. A running stage whose worker RQ reports
    lost is cancelled at once too, and one that does not stop within
    :data:`runs.recovery.CANCEL_GRACE_S` seconds is ended by the recovery monitor: a cancel always ends
    the run."""
    from runs import recovery

    with transaction.atomic():
        run.request_cancel()
        run.refresh_from_db()
        settle_cancel(run)
    recovery.note_cancel_requested(run)
    for stage_run in run.stages.filter(status=StageStatus.RUNNING).select_related("run"):
        # The worker may be dead already: then nothing would ever read the flag.
        recovery.recover_stage(stage_run, lost_after_s=2 * recovery.HEARTBEAT_S,
                               ended_grace_s=2 * recovery.HEARTBEAT_S)


def settle_cancel(run: Run) -> None:
    """For a run whose cancel was requested: cancel its queued and waiting stages, and end the run when no
    stage of it runs any more (cancelled, or succeeded when every stage had already finished)."""
    for stage_run in run.stages.filter(status__in=[StageStatus.QUEUED, StageStatus.WAITING]):
        _cancel_job(stage_run)
        stage_run.cancel()
    if run.stages.filter(status=StageStatus.RUNNING).exists():
        return
    if not run.stages.exclude(status=StageStatus.SUCCEEDED).exists():
        run.finish(RunStatus.SUCCEEDED, only_from=ACTIVE_STATUSES)
    else:
        run.finish(RunStatus.CANCELLED, only_from=ACTIVE_STATUSES)


def _cancel_job(stage_run: StageRun) -> None:
    if not stage_run.job_id:
        return
    queue = get_queue(queue_name_for(stage_run.run, stage_run.stage))
    try:
        job = Job.fetch(stage_run.job_id, connection=queue.connection)
    except NoSuchJobError:
        return
    if job.get_status(refresh=True) in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
        job.cancel()


@transaction.atomic
def resume_run(run: Run, *, from_stage: str | None = None) -> StageRun | None:
    """Continue a cancelled, failed or waiting run from its first unfinished stage (or re-run
    ``from_stage`` and everything after it). Finished work inside a stage is kept: stages are idempotent.

    A run that still says queued or running is checked for lost workers first (see :mod:`runs.recovery`):
    a stage that nothing works on any more is re-queued, and that stage is returned.

    Raises:
        ValueError: the run is still queued or running (and its stages are alive), or ``from_stage`` is
            not one of its stages.
    """
    from runs import recovery

    run.refresh_from_db()
    if run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
        for stage_run in run.stages.filter(status__in=[StageStatus.QUEUED, StageStatus.RUNNING]).select_related("run"):
            result = recovery.recover_stage(stage_run, lost_after_s=2 * recovery.HEARTBEAT_S,
                                            ended_grace_s=2 * recovery.HEARTBEAT_S)
            if result is not None and result.action == "requeued":
                return StageRun.objects.get(pk=stage_run.pk)
        run.refresh_from_db()
    if run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
        raise ValueError(f"{run} is {run.status}; cancel it before resuming.")
    recovery.forget_run_state(run)
    stages = run.ordered_stages()
    if from_stage is not None:
        names = [s.stage for s in stages]
        if from_stage not in names:
            raise ValueError(f"{run} has no stage {from_stage!r}.")
        for stage_run in stages[names.index(from_stage) :]:
            stage_run.reset()
    for stage_run in stages:
        if stage_run.status in (StageStatus.FAILED, StageStatus.CANCELLED, StageStatus.WAITING):
            stage_run.reset()
    run.requeue()
    return advance(run)


def release_gate(run: Run) -> StageRun | None:
    """Let a run that waits at its audit gate, or that its drift guard holds (:mod:`runs.drift`), go on (an
    operator's decision, recorded on the run or on the holding anchor check)."""
    from runs import drift

    run.refresh_from_db()
    if run.status == RunStatus.WAITING and drift.release_hold(run):
        return resume_run(run)  # the label stage again; it skips the released check
    run.release_gate()
    run.refresh_from_db()
    if run.status == RunStatus.WAITING:
        return resume_run(run)
    return None


def recover_interrupted() -> list[StageRun]:
    """Recover stages a stop interrupted, at the start of ``studio`` (one :func:`runs.recovery.recover` pass
    in start-up mode: with the embedded queue every earlier job is gone).

    Returns:
        The stage rows that were re-enqueued.
    """
    from runs import recovery

    return [r.stage_run for r in recovery.recover(startup=True) if r.action == "requeued"]

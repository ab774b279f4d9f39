"""Finding stages whose worker was lost, and ending or re-queueing them.

A stage row says ``queued`` or ``running``; whether anything still works on it is RQ's knowledge. A stage
is **lost** when RQ's own state says its job cannot finish — the job is gone from Redis, the job ended
(failed, stopped, finished) without the job runner recording the stage (a work-horse killed by ``kill -9``
or the out-of-memory killer: RQ marks the job failed), or the job is started but the worker that holds
it is gone from RQ's worker registry, stopped heart-beating, or its entry in the started-job registry
expired (the whole worker was killed) — **and** the stage's own heartbeat (written every
:data:`HEARTBEAT_S` seconds by a thread of the job runner, see :mod:`runs.jobs`, also during slow model
loads) has stopped too. Requiring both keeps a healthy stage from running twice: an orphaned work-horse
that outlived its worker still heart-beats and finishes its stage.

A lost stage is re-queued (stages are idempotent: the new attempt only does the missing work) up to
:data:`MAX_LOST_REQUEUES` times, then failed with a message, so the run page offers Resume. A lost stage
of a run whose cancel was requested is cancelled instead, and a cancelled run whose stage does not stop
within :data:`CANCEL_GRACE_S` seconds is ended anyway (its job is told to stop through RQ's stop-job
command). A run left "running" with no stage queued or running (a cancel that arrived during a stage's
last batch, a database fault between two stages) is settled.

:func:`recover` is one pass; :func:`start_monitor` runs it every :data:`CHECK_EVERY_S` seconds in a
daemon thread of every worker process (``rlaif_site.queueing``'s worker classes) and of ``manage.py
studio``; ``manage.py recover_stages`` runs it from the shell or a timer. Passes of several processes on
one database are serialised by a Redis lock, and each transition is a compare-and-set on the row.

Library: RQ (``Worker``, ``StartedJobRegistry``, ``Job``, ``send_stop_job_command``), https://python-rq.org/.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.worker import Worker

from rlaif_site.queueing import LOCAL_WORKERS, get_queue
from runs.db_retry import reset_connections
from runs.models import Run, RunStatus, StageRun, StageStatus

logger = logging.getLogger(__name__)


#: Seconds between two heartbeats of a running stage (the job runner's heartbeat thread).
HEARTBEAT_S = 5.0
#: A started job whose worker RQ reports lost is lost once the stage has not heart-beaten for this long.
LOST_AFTER_S = 30.0
#: A job that ended or vanished while its stage says queued/running is lost after this many seconds
#: without a heartbeat (time for the job runner to record its own outcome).
ENDED_GRACE_S = 15.0
#: Seconds between two recovery passes of a monitor thread.
CHECK_EVERY_S = 10.0
#: How many times a lost stage is re-queued before it is failed (Resume starts the count again).
MAX_LOST_REQUEUES = 3
#: Seconds a running stage gets to stop after a cancel before it is ended without it.
CANCEL_GRACE_S = 30.0

_ENDED = (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED, JobStatus.FINISHED)


@dataclass
class Recovery:
    """What one pass did to one stage: ``action`` is ``requeued``, ``failed``, ``cancelled`` or ``settled``."""

    stage_run: StageRun
    action: str
    reason: str

    def __str__(self) -> str:
        return f"{self.stage_run} {self.action}: {self.reason}"


def _key(kind: str, name: str) -> str:
    """A Redis key of this database's recovery state (several databases may share one Redis)."""
    db = settings.DATABASES["default"]
    scope = hashlib.sha1(f"{db.get('HOST', '')}:{db.get('PORT', '')}:{db['NAME']}".encode()).hexdigest()[:10]
    return f"rlaif:recovery:{scope}:{kind}:{name}"


def _age_s(moment: datetime | None, now: datetime) -> float:
    if moment is None:
        return float("inf")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (now - moment).total_seconds()


def _stage_heartbeat_age(stage_run: StageRun, now: datetime) -> float:
    return _age_s(stage_run.heartbeat_at or stage_run.started_at, now)


def _queue_of(stage_run: StageRun):
    from runs.services import queue_name_for

    return get_queue(queue_name_for(stage_run.run, stage_run.stage))


def _fetch_job(queue, job_id: str) -> Job | None:
    if not job_id:
        return None
    try:
        return Job.fetch(job_id, connection=queue.connection)
    except NoSuchJobError:
        return None


def worker_lost_reason(job: Job, queue, now: datetime, *, lost_after_s: float | None = None) -> str | None:
    """Why RQ's state says the worker holding started ``job`` is lost, or None while it looks alive.

    Looks at the job's ``worker_name``, that worker's entry in RQ's worker registry and its
    ``last_heartbeat``, and the job's entry in the queue's :class:`rq.registry.StartedJobRegistry`
    (whose score is the time its heartbeat expires).

    Args:
        job: a job whose status is ``started``.
        queue: its RQ queue.
        now: the current time (aware).
        lost_after_s: a worker heartbeat older than this many seconds counts as lost (default
            :data:`LOST_AFTER_S`).
    """
    lost_after_s = LOST_AFTER_S if lost_after_s is None else lost_after_s
    name = job.worker_name
    if not name:
        return "no worker holds its started job"
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=queue.connection)
    if worker is None:
        return f"worker {name} is gone from RQ's worker registry"
    age = _age_s(worker.last_heartbeat, now)
    if age > lost_after_s:
        return f"worker {name} sent no heartbeat for {age:.0f} s"
    registry = StartedJobRegistry(queue.name, connection=queue.connection)
    if job.id in registry.get_expired_job_ids(now.timestamp()):
        return "its entry in RQ's started-job registry expired"
    return None


def lost_reason(stage_run: StageRun, *, now: datetime | None = None, startup: bool = False,
                lost_after_s: float | None = None, ended_grace_s: float | None = None) -> str | None:
    """Why ``stage_run`` (queued or running) has no worker that will finish it, or None.

    Args:
        stage_run: a stage row whose status is ``queued`` or ``running`` (with ``run`` loaded).
        now: the current time (aware); default now.
        startup: this process is starting and the queue is embedded, so no job of an earlier process
            can still exist: a missing job is lost at once.
        lost_after_s: seconds without a stage heartbeat after which a started job RQ reports lost is lost
            (default :data:`LOST_AFTER_S`).
        ended_grace_s: seconds without a stage heartbeat after which a missing or ended job is lost
            (default :data:`ENDED_GRACE_S`).
    """
    now = now or timezone.now()
    lost_after_s = LOST_AFTER_S if lost_after_s is None else lost_after_s
    ended_grace_s = ENDED_GRACE_S if ended_grace_s is None else ended_grace_s
    heartbeat_age = _stage_heartbeat_age(stage_run, now)
    queue = _queue_of(stage_run)
    job = _fetch_job(queue, stage_run.job_id)
    if job is None:
        if startup and settings.EMBEDDED_QUEUE:
            return "the app stopped and its in-memory queue lost the job"
        if startup and stage_run.status == StageStatus.RUNNING:
            return "its job is gone from the queue"
        return "its job is gone from the queue" if heartbeat_age > ended_grace_s else None
    status = job.get_status(refresh=True)
    if stage_run.status == StageStatus.QUEUED:
        if status in _ENDED and heartbeat_age > ended_grace_s:
            return f"its job is {status} but the stage never started"
        if status == JobStatus.STARTED and heartbeat_age > lost_after_s:
            # Dequeued, then the worker died before the job runner claimed the row.
            reason = worker_lost_reason(job, queue, now, lost_after_s=lost_after_s)
            return f"{reason}; the stage was never claimed" if reason else None
        return None
    if status == JobStatus.STARTED:
        if job.worker_name in LOCAL_WORKERS:
            return None  # a worker of this very process holds it (the embedded queue's): it is alive
        reason = worker_lost_reason(job, queue, now, lost_after_s=lost_after_s)
        if reason and heartbeat_age > lost_after_s:
            return f"{reason}; the stage's last heartbeat was {heartbeat_age:.0f} s ago"
        return None
    if heartbeat_age > ended_grace_s:
        if status == JobStatus.FAILED:
            return "its job failed without recording the stage (work-horse killed?)"
        return f"its job is {status} while the stage says running"
    return None


def _discard_job(queue, job_id: str) -> None:
    """Remove a dead job and its started-job registry entries, so that re-enqueueing the same id is clean
    and RQ's later registry cleanup cannot mark the new attempt abandoned."""
    job = _fetch_job(queue, job_id)
    if job is not None:
        try:
            job.delete(remove_from_queue=True)
        except Exception:  # noqa: BLE001 - a half-deleted dead job must not block recovery
            logger.warning("could not delete lost job %s", job_id, exc_info=True)
    registry = StartedJobRegistry(queue.name, connection=queue.connection)
    stale = [m for m in queue.connection.zrange(registry.key, 0, -1)
             if (m.decode() if isinstance(m, bytes) else m).split(":", 1)[0] == job_id]
    if stale:
        queue.connection.zrem(registry.key, *stale)


def note_cancel_requested(run: Run) -> None:
    """Remember when a cancel of ``run`` was requested (for :data:`CANCEL_GRACE_S`)."""
    connection = get_queue().connection
    connection.set(_key("cancel", run.key), str(time.time()), nx=True, ex=7 * 24 * 3600)


def forget_run_state(run: Run) -> None:
    """Forget a run's cancel time and lost-worker counts (a Resume starts afresh)."""
    connection = get_queue().connection
    keys = [_key("cancel", run.key)] + [_key("lost", f"run-{run.key}-{s.stage}") for s in run.stages.all()]
    connection.delete(*keys)


def _cancel_age_s(run: Run) -> float:
    connection = get_queue().connection
    if connection.set(_key("cancel", run.key), str(time.time()), nx=True, ex=7 * 24 * 3600):
        return 0.0  # first seen now (requested before this code ran, or its key expired)
    value = connection.get(_key("cancel", run.key))
    try:
        return time.time() - float(value)
    except (TypeError, ValueError):
        return 0.0


def _end_cancelled(stage_run: StageRun, reason: str) -> bool:
    from runs.services import settle_cancel

    with transaction.atomic():
        ended = stage_run.cancel(message=f"cancelled: {reason}")
        if ended:
            settle_cancel(stage_run.run)
    return bool(ended)


def _requeue_or_fail(stage_run: StageRun, reason: str, now: datetime) -> Recovery | None:
    from runs.services import enqueue_stage

    queue = _queue_of(stage_run)
    # Compare-and-set: only one of several checkers moves this row.
    claimed = StageRun.objects.filter(
        pk=stage_run.pk, status=stage_run.status, heartbeat_at=stage_run.heartbeat_at
    ).update(heartbeat_at=now)
    if not claimed:
        return None
    connection = queue.connection
    lost_key = _key("lost", stage_run.job_id or f"stage-{stage_run.pk}")
    count = connection.incr(lost_key)
    connection.expire(lost_key, 7 * 24 * 3600)
    _discard_job(queue, stage_run.job_id)
    if count > MAX_LOST_REQUEUES:
        error = (f"Worker lost {count} times ({reason}); not re-queued again after {MAX_LOST_REQUEUES} attempts. "
                 "Resume the run to try again.")
        with transaction.atomic():
            stage_run.fail(error, message="worker lost")
            stage_run.run.finish(RunStatus.FAILED, only_from=(RunStatus.QUEUED, RunStatus.RUNNING))
        logger.warning("stage %s failed: %s", stage_run, error)
        return Recovery(stage_run, "failed", reason)
    stage_run.refresh_from_db()
    line = f"{stage_run.stage}: worker lost ({reason}); re-queued (lost {count} of {MAX_LOST_REQUEUES})"
    stage_run.log_tail = "\n".join((stage_run.log_tail.splitlines() + [line])[-60:])
    stage_run.message = f"interrupted: re-queued after a lost worker ({count} of {MAX_LOST_REQUEUES})"
    stage_run.save(update_fields=["log_tail", "message"])
    with transaction.atomic():
        enqueue_stage(stage_run)
    logger.warning("%s", line)
    return Recovery(stage_run, "requeued", reason)


def _force_cancel(stage_run: StageRun, age_s: float) -> bool:
    """End a cancelled run's stage that did not stop by itself, telling its worker to stop the job."""
    if not settings.EMBEDDED_QUEUE and stage_run.job_id:
        queue = _queue_of(stage_run)
        try:
            send_stop_job_command(queue.connection, stage_run.job_id)
        except (NoSuchJobError, InvalidJobOperation):
            pass
    return _end_cancelled(stage_run, f"the stage did not stop within {age_s:.0f} s of the cancel")


def recover_stage(stage_run: StageRun, *, now: datetime | None = None, startup: bool = False,
                  lost_after_s: float | None = None, ended_grace_s: float | None = None) -> Recovery | None:
    """Check one queued or running stage and act on it (see the module docstring).

    Returns:
        What was done, or None when the stage is healthy (or another checker acted first).
    """
    now = now or timezone.now()
    run = stage_run.run
    if run.kind == "external":  # a user's own script, no RQ job: never re-queued; a cancel ends it at once
        if run.cancel_requested and _end_cancelled(stage_run, "cancelled on the site"):
            return Recovery(stage_run, "cancelled", "external run")
        return None
    reason = lost_reason(stage_run, now=now, startup=startup, lost_after_s=lost_after_s,
                         ended_grace_s=ended_grace_s)
    if run.cancel_requested:
        if reason:
            if _end_cancelled(stage_run, f"its worker was lost ({reason})"):
                return Recovery(stage_run, "cancelled", reason)
            return None
        if stage_run.status == StageStatus.RUNNING:
            age = _cancel_age_s(run)
            if age > CANCEL_GRACE_S and _force_cancel(stage_run, age):
                return Recovery(stage_run, "cancelled", f"did not stop within {age:.0f} s of the cancel")
        return None
    if reason is None:
        return None
    return _requeue_or_fail(stage_run, reason, now)


def _settle_idle_runs(now: datetime, grace_s: float) -> list[Recovery]:
    """Runs marked queued/running with no stage queued, running or waiting: a cancel that arrived during a
    stage's last batch, or a fault between two stages. Cancelled ones end; others advance."""
    from runs.services import advance, settle_cancel

    done = []
    busy = [StageStatus.QUEUED, StageStatus.RUNNING, StageStatus.WAITING]
    for run in Run.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exclude(stages__status__in=busy) \
            .exclude(kind="external"):
        last = max((s.finished_at for s in run.stages.all() if s.finished_at), default=None)
        if _age_s(last or run.started_at or run.created_at, now) <= grace_s:
            continue  # the job runner may be about to advance it
        statuses = {s.status for s in run.stages.all()}
        with transaction.atomic():
            if run.cancel_requested:
                settle_cancel(run)
            elif StageStatus.FAILED in statuses or StageStatus.CANCELLED in statuses:
                # The runner recorded the stage's end but not the run's (a database outage in between).
                ended = RunStatus.FAILED if StageStatus.FAILED in statuses else RunStatus.CANCELLED
                run.finish(ended, only_from=(RunStatus.QUEUED, RunStatus.RUNNING))
            else:
                advance(run)
        run.refresh_from_db()
        stage = next(iter(run.ordered_stages()), None)
        if stage is not None:
            done.append(Recovery(stage, "settled", f"run was running with nothing queued; now {run.status}"))
    return done


def recover(*, now: datetime | None = None, startup: bool = False) -> list[Recovery]:
    """One recovery pass over every queued or running stage of this database (see the module docstring).

    Args:
        now: the current time (aware); default now.
        startup: this process starts an embedded queue, so every job of an earlier process is gone.

    Returns:
        What was done, one entry per stage acted on.
    """
    now = now or timezone.now()
    done: list[Recovery] = []
    active = StageRun.objects.filter(
        status__in=[StageStatus.QUEUED, StageStatus.RUNNING], run__status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
    ).exclude(run__kind="external").select_related("run")  # an external run's script is no RQ job
    for stage_run in active:
        try:
            result = recover_stage(stage_run, now=now, startup=startup)
        except Exception:  # noqa: BLE001 - one odd stage must not stop the others' recovery
            logger.exception("recovery of stage %s failed", stage_run)
            continue
        if result:
            done.append(result)
    done.extend(_settle_idle_runs(now, 0.0 if startup else ENDED_GRACE_S))
    return done


_monitor_lock = threading.Lock()
_monitor: threading.Thread | None = None
_monitor_stop = threading.Event()


def _monitor_loop(interval: float) -> None:
    while not _monitor_stop.wait(interval):
        try:
            connection = get_queue().connection
            if not connection.set(_key("lock", "pass"), "1", nx=True, ex=max(1, int(interval) - 1)):
                continue  # another process of this database did this pass
            for result in recover():
                logger.warning("recovery: %s", result)
        except Exception:  # noqa: BLE001 - the monitor outlives database and Redis outages
            logger.warning("recovery pass failed; next in %.0f s", interval, exc_info=True)
            reset_connections()


def start_monitor(interval: float | None = None) -> threading.Thread:
    """Start this process's recovery thread (once; later calls return the running one).

    Args:
        interval: seconds between passes; default :data:`CHECK_EVERY_S`.
    """
    global _monitor
    with _monitor_lock:
        if _monitor is None or not _monitor.is_alive():
            _monitor_stop.clear()
            _monitor = threading.Thread(
                target=_monitor_loop, args=(interval or CHECK_EVERY_S,), name="stage-recovery", daemon=True
            )
            _monitor.start()
        return _monitor


def stop_monitor() -> None:
    """Stop this process's recovery thread (tests; the thread is a daemon otherwise)."""
    _monitor_stop.set()

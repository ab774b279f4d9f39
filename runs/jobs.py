"""RQ entry points. A job loads its row, claims it atomically, calls the stage function, and records the
outcome; on success it enqueues the run's next stage. A stage that raises :class:`runs.gate.Hold` ends its
attempt "waiting", and its run waits for an operator (release or cancel).

While the stage function runs, a heartbeat thread writes ``StageRun.heartbeat_at`` every
:data:`runs.recovery.HEARTBEAT_S` seconds, whatever the stage does (a slow model load reports nothing for
minutes), so :mod:`runs.recovery` never takes a healthy stage for a lost one. A transient database fault (a
locked SQLite file, a PostgreSQL restart) does not fail the stage: the runner reconnects, waits and calls
the stage function again (stages are idempotent, so the batch in flight is redone and nothing is lost or
duplicated), for up to :data:`DB_RETRY_BUDGET_S` seconds.

A job taken from the ``gpu`` queue by a worker without a GPU fails at its start (:func:`runs.devices.require_gpu`).
The stage log's first line names the worker, its host and the queue the job came from.
"""
from __future__ import annotations

import logging
import socket
import threading
import traceback

from django.db import connection, transaction
from django.utils import timezone
from rq import get_current_job

from rlaif_site.queueing import SHUTDOWN
from runs import recovery, services
from runs.db_retry import call_with_db_retry, reset_connections
from runs.devices import require_gpu
from runs.gate import Hold
from runs.models import Run, RunStatus, StageRun, StageStatus
from runs.progress import DbReporter
from runs.stages.registry import stage_function
from runs.worker_output import worker_output
from training.progress import Cancelled
from training.redaction import redact

logger = logging.getLogger(__name__)

TRACEBACK_TAIL_CHARS = 4000
#: Seconds a stage (or the runner's own bookkeeping) keeps retrying through a database outage.
DB_RETRY_BUDGET_S = 300.0


class StageHeartbeat:
    """A daemon thread that marks a running stage alive every ``interval`` seconds (its own database
    connection; errors are logged and the next beat tries again). Use as a context manager."""

    def __init__(self, stage_run_id: int, interval: float | None = None, attempt: int | None = None) -> None:
        self.stage_run_id = stage_run_id
        self.attempt = attempt
        self.interval = interval if interval is not None else recovery.HEARTBEAT_S
        self.beats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{stage_run_id}", daemon=True)

    def __enter__(self) -> StageHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=max(5.0, 2 * self.interval))

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    rows = StageRun.objects.filter(pk=self.stage_run_id, status=StageStatus.RUNNING)
                    if self.attempt is not None:
                        rows = rows.filter(attempt=self.attempt)
                    rows.update(heartbeat_at=timezone.now())
                    self.beats += 1
                except Exception:  # noqa: BLE001 - a missed beat is retried at the next one
                    logger.warning("heartbeat of stage %s failed", self.stage_run_id, exc_info=True)
                    reset_connections()
        finally:
            connection.close()


def _retry(fn, what: str):
    return call_with_db_retry(fn, what=what, budget_s=DB_RETRY_BUDGET_S)


def run_stage(stage_run_id: int) -> str:
    """Run one stage of a run (the RQ job function; job id ``run-<run>-<stage>``).

    Returns:
        The stage's final status.

    Raises:
        Exception: whatever the stage raised, after recording it on the StageRun and Run rows,
            so RQ keeps the traceback too.
    """
    claimed = _retry(lambda: StageRun.claim(stage_run_id), f"claim stage {stage_run_id}")
    if not claimed:
        # Cancelled while queued, or another worker holds it: nothing to do.
        status = StageRun.objects.filter(pk=stage_run_id).values_list("status", flat=True).first()
        logger.info("stage %s not claimed (status %s)", stage_run_id, status)
        return str(status)
    # Its attempt is this attempt's number (the claim counted it): rows moved on to a later attempt are not
    # ours to write.
    stage_run = StageRun.objects.select_related("run").get(pk=stage_run_id)
    run = stage_run.run
    run.mark_running(stage_run.stage, at=stage_run.started_at)
    reporter = DbReporter(stage_run)
    job = get_current_job()  # None outside an RQ worker (a direct call)
    where = f" by worker {job.worker_name} on {socket.gethostname()} (queue {job.origin})" if job else ""
    reporter.log(f"{stage_run.stage}: started (attempt {stage_run.attempt}){where}")
    what = f"stage {stage_run}"

    def on_db_fault(exc: BaseException, attempt: int, wait: float) -> None:
        reporter.log(f"{stage_run.stage}: database unavailable ({type(exc).__name__}: {redact(str(exc))[:200]}); "
                     f"reconnecting and retrying the batch in flight in {wait:.0f} s (retry {attempt})")

    def call_stage() -> None:
        if reporter.should_stop():
            raise Cancelled("cancelled before start")
        require_gpu(stage_run.stage, job.origin if job else None)  # a gpu-queue job on a worker without a GPU
        with worker_output(reporter):  # what the worker prints or logs joins the stage's log tail
            stage_function(stage_run.stage)(stage_run, reporter)

    try:
        with StageHeartbeat(stage_run.pk, attempt=stage_run.attempt):
            call_with_db_retry(call_stage, what=what, budget_s=DB_RETRY_BUDGET_S, on_retry=on_db_fault)
    except Hold as hold:
        reason = redact(str(hold))
        reporter.log(f"{stage_run.stage}: waiting for an operator: {reason}")
        _retry(reporter.flush, what)
        if _retry(lambda: stage_run.finish_attempt(StageStatus.WAITING, message=reason), what):
            _retry(lambda: run.mark_waiting(stage_run.stage), what)
        return StageStatus.WAITING
    except Cancelled:
        if reporter.superseded:
            logger.warning("%s: attempt %s was superseded (re-queued or ended meanwhile); stopping it",
                           what, stage_run.attempt)
            return str(StageRun.objects.filter(pk=stage_run.pk).values_list("status", flat=True).first())
        if SHUTDOWN.is_set():
            # Stopped by the worker's shutdown, not by a user: stay "running" so recovery resumes it.
            reporter.log(f"{stage_run.stage}: interrupted by shutdown; will resume at next start")
            _retry(reporter.flush, what)
            return StageStatus.RUNNING
        reporter.log(f"{stage_run.stage}: cancelled; finished work is kept, resume continues from here")
        _retry(reporter.flush, what)
        _retry(lambda: stage_run.finish_attempt(StageStatus.CANCELLED), what)
        _retry(lambda: _settle_cancelled(run), what)
        return StageStatus.CANCELLED
    except (SystemExit, KeyboardInterrupt):
        # The worker is shutting down (Ctrl-C on `studio`): leave the stage "running" so the next start's
        # recovery re-enqueues it; stages are idempotent, so it continues where it stopped.
        reporter.log(f"{stage_run.stage}: interrupted by shutdown; will resume at next start")
        reporter.flush()
        raise
    except BaseException as exc:  # noqa: BLE001 - record any failure (incl. RQ's timeout), then re-raise
        reporter.log(redact(f"{stage_run.stage}: failed: {exc!r}"))
        _retry(reporter.flush, what)
        tail = traceback.format_exc()[-TRACEBACK_TAIL_CHARS:]
        error = redact(f"{type(exc).__name__}: {exc}\n\n{tail}")  # an endpoint may echo a key in its error
        if _retry(lambda: stage_run.finish_attempt(StageStatus.FAILED, error=error), what):
            _retry(lambda: run.finish(RunStatus.FAILED), what)
        raise
    reporter.log(f"{stage_run.stage}: done")
    _retry(reporter.flush, what)
    if not _retry(lambda: stage_run.finish_attempt(StageStatus.SUCCEEDED), what):
        # Recovery or a forced cancel already ended this attempt: its outcome is not ours to record.
        return str(StageRun.objects.filter(pk=stage_run.pk).values_list("status", flat=True).first())

    def advance() -> None:
        with transaction.atomic():
            services.advance(run)

    _retry(advance, what)
    return StageStatus.SUCCEEDED


def _settle_cancelled(run: Run) -> None:
    with transaction.atomic():
        run.refresh_from_db()
        services.settle_cancel(run)

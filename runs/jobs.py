"""RQ entry points. A job loads its row, claims it atomically, calls the stage function, and records the
outcome; on success it enqueues the run's next stage."""
from __future__ import annotations

import logging
import traceback

from django.db import transaction
from django.utils import timezone

from rlaif_site.queueing import SHUTDOWN
from runs import services
from runs.models import Run, RunStatus, StageRun, StageStatus
from runs.progress import DbReporter
from runs.stages import stage_function
from training.progress import Cancelled

logger = logging.getLogger(__name__)

TRACEBACK_TAIL_CHARS = 4000


def run_stage(stage_run_id: int) -> str:
    """Run one stage of a run (the RQ job function; job id ``run-<run>-<stage>``).

    Returns:
        The stage's final status.

    Raises:
        Exception: whatever the stage raised, after recording it on the StageRun and Run rows,
            so RQ keeps the traceback too.
    """
    now = timezone.now()
    claimed = StageRun.objects.filter(pk=stage_run_id, status=StageStatus.QUEUED).update(
        status=StageStatus.RUNNING, started_at=now, heartbeat_at=now, finished_at=None, error="", message=""
    )
    if not claimed:
        # Cancelled while queued, or another worker holds it: nothing to do.
        status = StageRun.objects.filter(pk=stage_run_id).values_list("status", flat=True).first()
        logger.info("stage %s not claimed (status %s)", stage_run_id, status)
        return str(status)
    stage_run = StageRun.objects.select_related("run").get(pk=stage_run_id)
    StageRun.objects.filter(pk=stage_run_id).update(attempt=stage_run.attempt + 1)
    run = stage_run.run
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, current_stage=stage_run.stage, started_at=run.started_at or now
    )
    reporter = DbReporter(stage_run)
    reporter.log(f"{stage_run.stage}: started (attempt {stage_run.attempt + 1})")
    try:
        if reporter.should_stop():
            raise Cancelled("cancelled before start")
        stage_function(stage_run.stage)(stage_run, reporter)
    except Cancelled:
        if SHUTDOWN.is_set():
            # Stopped by the worker's shutdown, not by a user: stay "running" so recovery resumes it.
            reporter.log(f"{stage_run.stage}: interrupted by shutdown; will resume at next start")
            reporter.flush()
            return StageStatus.RUNNING
        reporter.log(f"{stage_run.stage}: cancelled; finished work is kept, resume continues from here")
        reporter.flush()
        _finish(stage_run, StageStatus.CANCELLED)
        Run.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED, finished_at=timezone.now())
        return StageStatus.CANCELLED
    except (SystemExit, KeyboardInterrupt):
        # The worker is shutting down (Ctrl-C on `studio`): leave the stage "running" so the next start's
        # recovery re-enqueues it; stages are idempotent, so it continues where it stopped.
        reporter.log(f"{stage_run.stage}: interrupted by shutdown; will resume at next start")
        reporter.flush()
        raise
    except BaseException as exc:  # noqa: BLE001 - record any failure (incl. RQ's timeout), then re-raise
        reporter.log(f"{stage_run.stage}: failed: {exc!r}")
        reporter.flush()
        tail = traceback.format_exc()[-TRACEBACK_TAIL_CHARS:]
        _finish(stage_run, StageStatus.FAILED, error=f"{type(exc).__name__}: {exc}\n\n{tail}")
        Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED, finished_at=timezone.now())
        raise
    reporter.log(f"{stage_run.stage}: done")
    reporter.flush()
    _finish(stage_run, StageStatus.SUCCEEDED)
    with transaction.atomic():
        services.advance(run)
    return StageStatus.SUCCEEDED


def _finish(stage_run: StageRun, status: str, error: str = "") -> None:
    fields = {"status": status, "finished_at": timezone.now(), "error": error}
    if status == StageStatus.SUCCEEDED:
        fields["message"] = ""  # "generating…" and the like no longer describe a finished stage
    StageRun.objects.filter(pk=stage_run.pk).update(**fields)

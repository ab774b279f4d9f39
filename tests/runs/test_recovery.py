"""Lost workers and stuck runs (runs/recovery.py, runs/jobs.py, runs/services.py): a stage whose RQ worker
was killed is found from RQ's own state and re-queued (bounded) or failed; cancel always ends a run; a
slow step keeps heart-beating; a cancel during the last batch ends the run; database faults are retried.

The queue is real Redis with REDIS_URL and the embedded one without; a lost worker is simulated the way RQ
records one: the job is marked started by a worker whose registration is gone or whose heartbeat is old,
with its entry in the started-job registry."""
from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.utils import utcformat
from rq.worker import Worker

from rlaif_site.queueing import get_queue
from runs import jobs, recovery, services
from runs.models import MetricPoint, Run, RunStatus, StageRun, StageStatus
from tests import factories
from tests.runs.stage_doubles import use_stage_function

pytestmark = pytest.mark.django_db(transaction=True)

HERE = "tests.runs.test_recovery."
DOUBLES = "tests.runs.stage_doubles."
UNITS = 5


@pytest.fixture
def stages(monkeypatch):
    def use(**mapping):
        for stage, fn in mapping.items():
            use_stage_function(monkeypatch, stage, fn if "." in fn else DOUBLES + fn)

    return use


def _launch(stages=("generate",), config=None):
    return services.launch_run(
        name="t", owner=None, constitution_version=factories.make_version(),
        prompt_set=factories.make_prompt_set(), config=config or {}, stages=list(stages),
    )


def _take_by_worker(stage_run: StageRun, *, alive: bool, worker_heartbeat_age_s: float = 0.0,
                    stage_heartbeat_age_s: float = 300.0) -> Job:
    """What a worker's dequeue does: the job leaves the queue, is marked started by ``worker`` and enters
    the started-job registry; the stage row says running with a heartbeat ``stage_heartbeat_age_s`` old.
    With ``alive`` False the worker's registration is gone (its key expired after a kill -9)."""
    queue = get_queue()
    conn = queue.connection
    job = Job.fetch(stage_run.job_id, connection=conn)
    queue.remove(job.id)
    name = f"w-{uuid.uuid4().hex[:8]}"
    if alive:
        worker = Worker(["default"], name=name, connection=conn)
        worker.register_birth()
        conn.hset(worker.key, "last_heartbeat", utcformat(timezone.now() - timedelta(seconds=worker_heartbeat_age_s)))
    with conn.pipeline() as pipe:
        job.prepare_for_execution(name, pipeline=pipe)
        pipe.zadd(StartedJobRegistry("default", connection=conn).key,
                  {f"{job.id}:{uuid.uuid4().hex}": time.time() + 60})
        pipe.execute()
    beat = timezone.now() - timedelta(seconds=stage_heartbeat_age_s)
    StageRun.objects.filter(pk=stage_run.pk).update(status=StageStatus.RUNNING, started_at=beat, heartbeat_at=beat)
    Run.objects.filter(pk=stage_run.run_id).update(status=RunStatus.RUNNING)
    return job


def _stage(run, name="generate") -> StageRun:
    return StageRun.objects.select_related("run").get(run=run, stage=name)


# --- detecting a lost worker ---------------------------------------------------------------------------


def test_a_stage_whose_worker_is_gone_is_requeued_and_finishes(stages, run_worker, queue_connection):
    stages(generate="counting_stage")
    run = _launch()
    _take_by_worker(_stage(run), alive=False)

    done = recovery.recover()

    assert [(r.stage_run.stage, r.action) for r in done] == [("generate", "requeued")]
    assert "worker" in done[0].reason and "gone" in done[0].reason
    stage = _stage(run)
    assert stage.status == StageStatus.QUEUED
    assert "worker lost" in stage.log_tail and "re-queued (lost 1 of 3)" in stage.log_tail
    assert not StartedJobRegistry("default", connection=queue_connection).get_job_ids(cleanup=False)
    run_worker()
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert _stage(run).progress_done == UNITS


def test_a_worker_that_stopped_heart_beating_is_lost_only_when_the_stage_is_silent_too(stages, queue_connection):
    stages(generate="counting_stage")
    run = _launch()
    # The worker's registration is still there but its last heartbeat is 200 s old; the stage (an
    # orphaned work-horse, say) still heart-beats: it is not lost.
    _take_by_worker(_stage(run), alive=True, worker_heartbeat_age_s=200, stage_heartbeat_age_s=2)
    assert recovery.lost_reason(_stage(run)) is None
    assert recovery.recover() == []
    assert _stage(run).status == StageStatus.RUNNING

    StageRun.objects.filter(run=run).update(heartbeat_at=timezone.now() - timedelta(seconds=45))
    reason = recovery.lost_reason(_stage(run))
    assert reason.startswith("worker w-") and "sent no heartbeat for 200 s" in reason


def test_a_live_worker_keeps_its_stage(stages, queue_connection):
    stages(generate="counting_stage")
    run = _launch()
    _take_by_worker(_stage(run), alive=True, worker_heartbeat_age_s=1, stage_heartbeat_age_s=300)
    assert recovery.lost_reason(_stage(run)) is None
    assert recovery.recover() == []


def test_a_killed_work_horse_leaves_a_failed_job_and_the_stage_is_requeued(stages, run_worker, queue_connection):
    stages(generate="counting_stage")
    run = _launch()
    job = _take_by_worker(_stage(run), alive=True, worker_heartbeat_age_s=1)
    # What RQ's worker does when its work-horse dies by SIGKILL: the job is failed, the stage row is not.
    job.set_status(JobStatus.FAILED)

    [done] = recovery.recover()

    assert done.action == "requeued" and "failed without recording the stage" in done.reason
    run_worker()
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED


def test_requeueing_is_bounded_then_the_stage_fails_and_resume_starts_again(stages, run_worker, queue_connection):
    stages(generate="counting_stage")
    run = _launch()
    for attempt in range(recovery.MAX_LOST_REQUEUES):
        _take_by_worker(_stage(run), alive=False)
        assert [r.action for r in recovery.recover()] == ["requeued"], attempt
    _take_by_worker(_stage(run), alive=False)

    [done] = recovery.recover()

    assert done.action == "failed"
    stage, run = _stage(run), Run.objects.get(pk=run.pk)
    assert stage.status == StageStatus.FAILED and run.status == RunStatus.FAILED
    assert stage.error.startswith("Worker lost 4 times (worker w-") and "Resume the run" in stage.error
    resumed = services.resume_run(run)
    assert resumed.stage == "generate" and _stage(run).status == StageStatus.QUEUED
    _take_by_worker(_stage(run), alive=False)
    assert [r.action for r in recovery.recover()] == ["requeued"]  # the count started again
    run_worker()
    assert Run.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED


def test_a_queued_stage_whose_job_vanished_is_requeued_after_a_grace(stages, run_worker, queue_connection):
    stages(generate="counting_stage")
    run = _launch()
    queue_connection.flushdb()  # the queue lost the job (a Redis restart without persistence)
    assert recovery.recover() == []  # just queued: the enqueue may still be on its way
    StageRun.objects.filter(run=run).update(heartbeat_at=timezone.now() - timedelta(seconds=60))
    assert [r.action for r in recovery.recover()] == ["requeued"]
    run_worker()
    assert Run.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED


def test_the_worker_class_of_each_queue_mode_runs_the_monitor(settings):
    from django_rq.workers import get_worker_class

    from rlaif_site.queueing import StudioForkWorker, StudioWorker

    worker_class = get_worker_class()
    assert worker_class is (StudioWorker if settings.EMBEDDED_QUEUE else StudioForkWorker)
    assert hasattr(worker_class, "work") and "_RecoveryMonitorMixin" in [c.__name__ for c in worker_class.__mro__]
    if not settings.EMBEDDED_QUEUE:
        assert StudioForkWorker(["default"], connection=get_queue().connection).job_monitoring_interval == 5


# --- cancel and resume ---------------------------------------------------------------------------------


def test_cancel_ends_a_run_whose_worker_was_killed(stages, queue_connection):
    stages(generate="counting_stage")
    run = _launch(stages=("generate", "label"))
    _take_by_worker(_stage(run), alive=False)

    services.cancel_run(run)

    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.finished_at is not None
    assert _stage(run).status == StageStatus.CANCELLED
    assert "its worker was lost" in _stage(run).message


def test_cancel_ends_a_stage_that_does_not_stop_within_the_grace(stages, queue_connection):
    stages(generate="counting_stage")
    run = _launch()
    _take_by_worker(_stage(run), alive=True, worker_heartbeat_age_s=1, stage_heartbeat_age_s=1)
    services.cancel_run(run)
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING  # it gets time to stop by itself
    assert recovery.recover() == []
    key = recovery._key("cancel", run.key)
    queue_connection.set(key, str(time.time() - recovery.CANCEL_GRACE_S - 5))

    [done] = recovery.recover()

    assert done.action == "cancelled"
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and _stage(run).status == StageStatus.CANCELLED
    assert "did not stop within" in _stage(run).message


def test_resume_of_a_running_run_whose_worker_was_killed_requeues_it(stages, run_worker, queue_connection):
    stages(generate="counting_stage")
    run = _launch()
    _take_by_worker(_stage(run), alive=False)

    resumed = services.resume_run(run)

    assert resumed.stage == "generate" and resumed.status == StageStatus.QUEUED
    run_worker()
    assert Run.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED


def test_resume_of_a_healthy_running_run_is_still_refused(stages, queue_connection):
    stages(generate="counting_stage")
    run = _launch()
    _take_by_worker(_stage(run), alive=True, worker_heartbeat_age_s=1, stage_heartbeat_age_s=1)
    with pytest.raises(ValueError, match="cancel it before resuming"):
        services.resume_run(run)


def cancel_in_last_batch_stage(stage_run, reporter):
    """Finishes its work; the operator's cancel arrives while the last batch is being written."""
    for i in range(UNITS):
        reporter.progress(i + 1, UNITS)
    services.cancel_run(Run.objects.get(pk=stage_run.run_id))


@pytest.mark.parametrize("later_stage", [True, False])
def test_a_cancel_during_the_last_batch_ends_the_run(stages, run_worker, queue_connection, later_stage):
    stages(generate=HERE + "cancel_in_last_batch_stage", label="counting_stage")
    run = _launch(stages=("generate", "label") if later_stage else ("generate",))

    run_worker()

    run.refresh_from_db()
    assert _stage(run).status == StageStatus.SUCCEEDED and run.finished_at is not None
    if later_stage:
        assert run.status == RunStatus.CANCELLED
        assert _stage(run, "label").status == StageStatus.PENDING  # not queued; Resume continues here
        assert services.resume_run(run).stage == "label"
    else:
        assert run.status == RunStatus.SUCCEEDED  # every stage had finished: nothing was left to cancel


def test_a_run_left_running_with_nothing_queued_is_settled(stages, queue_connection):
    stages(generate="counting_stage")
    run = _launch(stages=("generate", "label"))
    long_ago = timezone.now() - timedelta(seconds=120)
    StageRun.objects.filter(run=run, stage="generate").update(status=StageStatus.SUCCEEDED, finished_at=long_ago)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, cancel_requested=True)

    [done] = recovery.recover()

    assert done.action == "settled"
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED


# --- heartbeats during slow steps ----------------------------------------------------------------------

SEEN: dict = {}


def slow_load_stage(stage_run, reporter):
    """Loads a model for a while without reporting anything, then asks recovery, as a second worker's
    monitor would, whether it looks lost."""
    time.sleep(1.2)
    row = StageRun.objects.select_related("run").get(pk=stage_run.pk)
    SEEN["heartbeat_after_start_s"] = (row.heartbeat_at - row.started_at).total_seconds()
    SEEN["recovered"] = recovery.recover(now=row.started_at + timedelta(seconds=1.2))
    reporter.progress(1, 1)


def test_a_slow_model_load_heart_beats_and_is_not_taken_for_lost(stages, run_worker, queue_connection, monkeypatch):
    monkeypatch.setattr(recovery, "HEARTBEAT_S", 0.2)
    monkeypatch.setattr(recovery, "LOST_AFTER_S", 0.8)
    monkeypatch.setattr(recovery, "ENDED_GRACE_S", 0.8)
    stages(generate=HERE + "slow_load_stage")
    run = _launch()

    run_worker()

    assert SEEN["heartbeat_after_start_s"] >= 0.6  # several beats while the stage reported nothing
    assert SEEN["recovered"] == []
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and _stage(run).attempt == 1


def test_the_heartbeat_thread_beats_until_the_stage_ends(stages, queue_connection):
    run = factories.make_run()
    now = timezone.now() - timedelta(seconds=60)
    StageRun.objects.filter(run=run).update(status=StageStatus.RUNNING, heartbeat_at=now)
    stage_run = _stage(run)
    with jobs.StageHeartbeat(stage_run.pk, interval=0.05) as beat:
        time.sleep(0.4)
    assert beat.beats >= 3
    assert (timezone.now() - _stage(run).heartbeat_at).total_seconds() < 1


# --- database faults -----------------------------------------------------------------------------------


class Outage:
    """Makes this thread's database queries fail like ``message`` for ``seconds`` once armed (Django's
    ``execute_wrapper`` hook, below every ORM call)."""

    def __init__(self, message: str, seconds: float, only: str = "") -> None:
        self.message, self.seconds, self.only = message, seconds, only
        self.until = 0.0
        self.failed = 0

    def arm(self) -> None:
        self.until = time.monotonic() + self.seconds

    def __call__(self, execute, sql, params, many, context):
        if time.monotonic() < self.until and self.only.lower() in sql.lower():
            self.failed += 1
            raise OperationalError(self.message)
        return execute(sql, params, many, context)


OUTAGE: list[Outage] = []


def batches_with_outage_stage(stage_run, reporter):
    """Writes UNITS metric rows one batch at a time (idempotently); during batch 3 the database goes away
    (on PostgreSQL the connection is really terminated by the server, too)."""
    for i in range(UNITS):
        if MetricPoint.objects.filter(run_id=stage_run.run_id, stage=stage_run.stage, name="row", step=i).exists():
            continue
        if i == 2 and not OUTAGE[0].until:
            OUTAGE[0].arm()
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("select pg_terminate_backend(pg_backend_pid())")
        MetricPoint.objects.create(run_id=stage_run.run_id, stage=stage_run.stage, name="row", step=i, value=i)
        reporter.progress(i + 1, UNITS)


@pytest.mark.parametrize("message", [
    "database is locked",  # SQLite: a writer held the lock past the 30 s busy timeout
    "server closed the connection unexpectedly",  # PostgreSQL went away for a while
])
def test_a_stage_retries_its_batch_through_a_database_fault(stages, run_worker, queue_connection, message):
    stages(generate=HERE + "batches_with_outage_stage")
    run = _launch()
    outage = Outage(message, seconds=1.5, only="runs_metricpoint")
    OUTAGE[:] = [outage]
    connection.execute_wrappers.append(outage)
    try:
        run_worker()
    finally:
        connection.execute_wrappers.remove(outage)

    run.refresh_from_db()
    stage = _stage(run)
    assert outage.failed >= 1
    assert (run.status, stage.status) == (RunStatus.SUCCEEDED, StageStatus.SUCCEEDED), stage.error
    rows = list(MetricPoint.objects.filter(run=run, name="row").order_by("step").values_list("step", flat=True))
    assert rows == list(range(UNITS))  # nothing lost, nothing twice
    assert "database unavailable" in stage.log_tail and "retrying the batch in flight" in stage.log_tail


def superseded_midway_stage(stage_run, reporter):
    """Recovery took this attempt's worker for lost and re-queued the stage while it still ran (an
    orphaned work-horse that stalled, say); the old attempt must stop and leave the row alone."""
    from training.progress import check_cancelled

    for i in range(UNITS):
        if i == 2:
            StageRun.objects.filter(pk=stage_run.pk).update(status=StageStatus.QUEUED)
            reporter._last_cancel_check = 0  # let the reporter look now
        check_cancelled(reporter)
        reporter.progress(i + 1, UNITS)


def test_a_superseded_attempt_stops_without_touching_the_stage_row(stages, run_worker, queue_connection):
    stages(generate=HERE + "superseded_midway_stage")
    run = _launch()
    run_worker()
    run.refresh_from_db()
    stage = _stage(run)
    assert stage.status == StageStatus.QUEUED and stage.finished_at is None  # left for the new attempt
    assert run.status == RunStatus.RUNNING and not run.cancel_requested


def test_a_run_whose_stage_failed_but_the_run_was_not_told_is_failed_not_rerun(stages, queue_connection):
    stages(generate="counting_stage")
    run = _launch(stages=("generate", "label"))
    long_ago = timezone.now() - timedelta(seconds=120)
    StageRun.objects.filter(run=run, stage="generate").update(status=StageStatus.FAILED, finished_at=long_ago)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)

    [done] = recovery.recover()

    assert done.action == "settled"
    assert Run.objects.get(pk=run.pk).status == RunStatus.FAILED
    assert _stage(run).status == StageStatus.FAILED  # not re-run behind the operator's back


def test_a_worker_killed_between_dequeue_and_claim_is_lost(stages, run_worker, queue_connection):
    stages(generate="counting_stage")
    run = _launch()
    _take_by_worker(_stage(run), alive=False)
    StageRun.objects.filter(run=run).update(status=StageStatus.QUEUED)  # the row was never claimed
    Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)

    [done] = recovery.recover()

    assert done.action == "requeued" and "never claimed" in done.reason
    run_worker()
    assert Run.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED


def test_the_recover_stages_command_runs_one_pass(stages, queue_connection):
    from io import StringIO

    from django.core.management import call_command

    stages(generate="counting_stage")
    run = _launch()
    out = StringIO()
    call_command("recover_stages", stdout=out)
    assert out.getvalue().strip() == "No lost stage."
    _take_by_worker(_stage(run), alive=False)
    call_command("recover_stages", stdout=out)
    assert f"{run.pk}:generate requeued: worker w-" in out.getvalue()
    assert _stage(run).status == StageStatus.QUEUED


def test_a_job_held_by_a_worker_of_this_process_is_never_lost(stages, queue_connection, monkeypatch):
    from rlaif_site import queueing

    stages(generate="counting_stage")
    run = _launch()
    job = _take_by_worker(_stage(run), alive=False)  # its registration expired during a long job (SimpleWorker)
    monkeypatch.setattr(queueing, "LOCAL_WORKERS", {job.worker_name})
    monkeypatch.setattr(recovery, "LOCAL_WORKERS", queueing.LOCAL_WORKERS)
    assert recovery.lost_reason(_stage(run)) is None

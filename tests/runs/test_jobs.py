"""Jobs go through django-rq and a real RQ worker, on whichever queue the environment configures
(Redis with REDIS_URL, the embedded queue without)."""

import pytest
from django.conf import settings

from runs import services
from runs.models import MetricPoint, RunStatus, StageRun, StageStatus
from tests import factories
from tests.runs.stage_doubles import use_stage_function

pytestmark = pytest.mark.django_db(transaction=True)

DOUBLES = "tests.runs.stage_doubles."


@pytest.fixture
def stages(monkeypatch):
    def use(**mapping):
        for stage, fn in mapping.items():
            use_stage_function(monkeypatch, stage, DOUBLES + fn)

    return use


def _launch(stages=("generate", "label"), config=None, owner=None):
    return services.launch_run(
        name="t",
        owner=owner,
        constitution_version=factories.make_version(),
        prompt_set=factories.make_prompt_set(),
        config=config or {},
        stages=list(stages),
    )


def test_queue_mode_follows_environment(queue_connection):
    assert settings.EMBEDDED_QUEUE == (settings.REDIS_URL is None)
    assert type(queue_connection).__module__.startswith("fakeredis") == settings.EMBEDDED_QUEUE


def test_run_stages_execute_in_order_and_record_progress(stages, run_worker):
    stages(generate="counting_stage", label="counting_stage")
    run = _launch()
    assert StageRun.objects.get(run=run, stage="generate").status == StageStatus.QUEUED
    assert StageRun.objects.get(run=run, stage="label").status == StageStatus.PENDING

    run_worker()

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.finished_at is not None
    for stage_run in run.stages.all():
        assert stage_run.status == StageStatus.SUCCEEDED
        assert (stage_run.progress_done, stage_run.progress_total) == (5, 5)
        assert stage_run.job_id == f"run-{run.pk}-{run.uid.hex[:8]}-{stage_run.stage}"
        assert "counted" in stage_run.log_tail
    losses = list(
        MetricPoint.objects.filter(run=run, stage="label", name="loss").order_by("step").values_list("value", flat=True)
    )
    assert losses == pytest.approx([1.0, 0.5, 1 / 3, 0.25, 0.2])


def test_failed_stage_records_error_and_stops_the_run(stages, run_worker):
    stages(generate="failing_stage", label="counting_stage")
    run = _launch()
    run_worker()
    run.refresh_from_db()
    generate = run.stages.get(stage="generate")
    assert run.status == RunStatus.FAILED
    assert generate.status == StageStatus.FAILED
    assert generate.error.startswith("ValueError: boom: the policy model path does not exist")
    assert "Traceback" in generate.error
    assert run.stages.get(stage="label").status == StageStatus.PENDING


def test_cancel_keeps_finished_work_and_resume_continues(stages, run_worker):
    stages(generate="cancelled_midway_stage", label="counting_stage")
    run = _launch()
    run_worker()
    run.refresh_from_db()
    generate = run.stages.get(stage="generate")
    assert run.status == RunStatus.CANCELLED and generate.status == StageStatus.CANCELLED
    assert generate.progress_done == 2

    stages(generate="counting_stage")
    services.resume_run(run)
    run_worker()
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.stages.get(stage="generate").attempt == 2


def test_cancel_of_a_queued_run_cancels_its_job(stages, run_worker):
    stages(generate="counting_stage")
    run = _launch(stages=("generate",))
    services.cancel_run(run)
    run_worker()
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert run.stages.get().status == StageStatus.CANCELLED and run.stages.get().progress_done == 0


def test_stage_interrupted_by_a_stop_is_recovered(stages, run_worker, queue_connection):
    stages(generate="counting_stage")
    run = _launch(stages=("generate",))
    # The process died while the stage ran: the row says running, the queue lost the job.
    StageRun.objects.filter(run=run).update(status=StageStatus.RUNNING)
    queue_connection.flushdb()
    recovered = services.recover_interrupted()
    assert [s.stage for s in recovered] == ["generate"]
    run_worker()
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED


def test_audit_gate_holds_the_reward_model_until_released(stages, run_worker):
    stages(label="counting_stage", reward_model="counting_stage")
    run = _launch(stages=("label", "reward_model"), config={"audit_gate": {"min_n": 5, "min_alignment": 0.7}})
    run_worker()
    run.refresh_from_db()
    waiting = run.stages.get(stage="reward_model")
    assert run.status == RunStatus.WAITING and waiting.status == StageStatus.WAITING
    assert "0 of 5 human labels" in waiting.message

    services.release_gate(run)
    run_worker()
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED

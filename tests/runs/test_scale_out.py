"""Scale-out: one run, two workers on two queues. A CPU worker listens on ``default`` only, a GPU worker on
``gpu`` only, both on the same queue connection (real Redis with REDIS_URL, the embedded queue without), as two
machines would run them. The stage functions are doubles, so nothing trains."""
from __future__ import annotations

import re
import uuid

import pytest
from rq import SimpleWorker
from rq.job import Job

from rlaif_site.queueing import get_queue
from runs import services
from runs.models import RunStatus, StageStatus
from runs.stages.registry import GPU_STAGES
from tests import factories
from tests.runs.stage_doubles import use_stage_function

pytestmark = pytest.mark.django_db(transaction=True)

PIPELINE = ("generate", "label", "reward_model", "policy", "evaluate")


def test_cpu_stages_run_on_the_default_worker_and_training_on_the_gpu_worker(monkeypatch, settings,
                                                                              queue_connection):
    settings.ALLOW_CPU_ON_GPU_QUEUE = True  # the "gpu" worker of this test has no GPU
    for stage in PIPELINE:
        use_stage_function(monkeypatch, stage, "tests.runs.stage_doubles.counting_stage")
    run = services.launch_run(
        name="scale-out", owner=None, constitution_version=factories.make_version(),
        prompt_set=factories.make_prompt_set(), config={"queues": {s: "gpu" for s in GPU_STAGES}},
        stages=list(PIPELINE),
    )
    tag = uuid.uuid4().hex[:8]
    cpu = SimpleWorker([get_queue("default")], connection=queue_connection, name=f"cpu-{tag}")
    gpu = SimpleWorker([get_queue("gpu")], connection=queue_connection, name=f"gpu-{tag}")

    gpu.work(burst=True)  # the first stage is not the gpu worker's
    assert run.stages.get(stage="generate").status == StageStatus.QUEUED
    for _ in PIPELINE:  # each burst drains one queue; a finished stage enqueues the next on its own queue
        cpu.work(burst=True)
        gpu.work(burst=True)
        run.refresh_from_db()
        if run.status == RunStatus.SUCCEEDED:
            break
    assert run.status == RunStatus.SUCCEEDED

    ran_on = {}
    for stage_run in run.stages.all():
        assert stage_run.status == StageStatus.SUCCEEDED
        job = Job.fetch(stage_run.job_id, connection=queue_connection)
        first_line = stage_run.log_tail.splitlines()[0]
        match = re.fullmatch(rf"{stage_run.stage}: started \(attempt 1\) by worker (\S+) on \S+ \(queue (\w+)\)",
                             first_line)
        assert match, first_line
        assert match.groups() == (job.worker_name, job.origin)
        ran_on[stage_run.stage] = job.worker_name
    assert ran_on == {"generate": cpu.name, "label": cpu.name,
                      "reward_model": gpu.name, "policy": gpu.name, "evaluate": gpu.name}

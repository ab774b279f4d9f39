"""The gpu queue's hygiene (runs.devices): torch threads per worker, a gpu-queue job on a worker without a GPU,
and the launch's warning when no worker listens on the gpu queue. Real RQ workers on the configured queue
(Redis with REDIS_URL, the embedded queue without)."""
from __future__ import annotations

import socket
import uuid

import pytest
from django.urls import reverse
from rq import SimpleWorker

from rlaif_site.queueing import StudioWorker, get_queue
from runs import devices, services
from runs.models import Artifact, RunStatus, StageStatus
from runs.presets import PRESETS
from runs.stages.registry import GPU_STAGES
from tests import factories
from tests.factories import launch_post_data
from tests.runs.stage_doubles import use_stage_function

DOUBLES = "tests.runs.stage_doubles."


def _launch_on_gpu_queue(stages=("reward_model",)):
    return services.launch_run(
        name="gpu", owner=None, constitution_version=factories.make_version(),
        prompt_set=factories.make_prompt_set(), config={"queues": {s: "gpu" for s in GPU_STAGES}},
        stages=list(stages),
    )


@pytest.mark.django_db(transaction=True)
def test_a_gpu_queue_job_on_a_worker_without_a_gpu_fails_at_its_start(monkeypatch, settings, queue_connection):
    settings.ALLOW_CPU_ON_GPU_QUEUE = False
    monkeypatch.setattr(devices, "has_accelerator", lambda: False)
    use_stage_function(monkeypatch, "reward_model", DOUBLES + "counting_stage")
    run = _launch_on_gpu_queue()
    SimpleWorker([get_queue("gpu")], connection=queue_connection).work(burst=True)
    run.refresh_from_db()
    stage = run.stages.get()
    assert run.status == RunStatus.FAILED and stage.status == StageStatus.FAILED
    assert stage.error.startswith(
        f"NoGpu: stage reward_model was routed to the gpu queue but this worker (host {socket.gethostname()}) "
        "has no GPU: start `rqworker gpu` on a GPU machine, or untick 'Training stages on the gpu queue'")
    assert stage.progress_done == 0  # the stage function never ran


@pytest.mark.django_db(transaction=True)
def test_the_setting_lets_a_worker_without_a_gpu_run_gpu_queue_jobs(monkeypatch, settings, queue_connection):
    settings.ALLOW_CPU_ON_GPU_QUEUE = True
    monkeypatch.setattr(devices, "has_accelerator", lambda: False)
    use_stage_function(monkeypatch, "reward_model", DOUBLES + "counting_stage")
    run = _launch_on_gpu_queue()
    SimpleWorker([get_queue("gpu")], connection=queue_connection).work(burst=True)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED


def test_only_gpu_queue_jobs_are_checked(monkeypatch, settings):
    settings.ALLOW_CPU_ON_GPU_QUEUE = False
    monkeypatch.setattr(devices, "has_accelerator", lambda: False)
    assert devices.gpu_queue_problem("generate", "default") is None
    assert devices.gpu_queue_problem("policy", None) is None  # run_stage called outside a worker
    assert "stage policy was routed to the gpu queue" in devices.gpu_queue_problem("policy", "gpu")
    monkeypatch.setattr(devices, "has_accelerator", lambda: True)
    assert devices.gpu_queue_problem("policy", "gpu") is None


def test_torch_threads_are_set_when_a_worker_starts(monkeypatch, settings, queue_connection):
    import torch

    before = torch.get_num_threads()
    settings.TORCH_THREADS = 0
    assert devices.apply_torch_threads() is None and torch.get_num_threads() == before
    settings.TORCH_THREADS = 1
    try:
        StudioWorker([get_queue("default")], connection=queue_connection).work(burst=True)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_no_worker_on_the_gpu_queue_is_a_warning(queue_connection):
    queues = {"reward_model": "gpu", "policy": "gpu"}
    note = devices.gpu_worker_fallback(queues, ["generate", "label", "reward_model", "policy"])
    assert note["queues"].startswith("no worker listens on the gpu queue now: reward_model, policy will wait")
    assert devices.gpu_worker_fallback(queues, ["generate", "label"]) == {}  # nothing routed there
    assert devices.gpu_worker_fallback({}, ["reward_model"]) == {}

    worker = SimpleWorker([get_queue("gpu")], connection=queue_connection, name=f"gpu-{uuid.uuid4().hex[:8]}")
    worker.register_birth()
    try:
        assert [w.name for w in devices.gpu_workers()] == [worker.name]
        assert devices.gpu_worker_fallback(queues, ["reward_model"]) == {}
    finally:
        worker.register_death()
    assert devices.gpu_workers() == []


def test_a_worker_registry_that_cannot_be_read_is_a_warning_too():
    def unreachable():
        raise ConnectionError("Error 111 connecting to redis:6379")

    note = devices.gpu_worker_fallback({"policy": "gpu"}, ["policy"], workers=unreachable)
    assert note["queues"].startswith("could not check for workers on the gpu queue (ConnectionError")


@pytest.mark.django_db
def test_launch_without_a_gpu_worker_goes_ahead_with_a_warning(client, operator, queue_connection):
    config = PRESETS["offline-demo"].full_config()
    data = launch_post_data(config, name="gpu launch", constitution_version=factories.make_version(),
                            prompt_set=factories.make_prompt_set(n=4), stages=["generate", "label", "reward_model"],
                            gpu_queue=True)
    client.force_login(operator)
    response = client.post(reverse("runs:launch"), data, follow=True)
    run = response.context["run"]
    assert run.config["queues"]["reward_model"] == "gpu"
    fallbacks = Artifact.objects.get(run=run, name="pre-flight").metrics["fallbacks"]
    assert "no worker listens on the gpu queue now: reward_model will wait" in fallbacks["queues"]
    messages = [str(m) for m in response.context["messages"]]
    assert any(m.startswith("no worker listens on the gpu queue") for m in messages), messages

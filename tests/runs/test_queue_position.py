"""A queued stage says what it waits behind, on whichever queue the environment configures."""
import pytest
from django.urls import reverse
from rq.executions import Execution
from rq.registry import StartedJobRegistry

from rlaif_site.queueing import get_queue
from runs import services
from runs.import_jobs import run_import
from runs.models import StageRun
from runs.queue_position import waiting_message
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def _launch(name):
    return services.launch_run(name=name, owner=None, constitution_version=factories.make_version(),
                               prompt_set=factories.make_prompt_set(), config={}, stages=["generate"])


def test_queued_stage_names_the_jobs_ahead_and_the_running_one(client, queue_connection):
    from runs.starter import ensure_groups

    ensure_groups()
    viewer = factories.make_user("v")
    first, second = _launch("first"), _launch("second")
    queue = get_queue("default")
    queue.enqueue(run_import, 41, "/tmp/upload/secret.jsonl", {}, job_id="import-x")
    third = _launch("third")
    # the first run's job is taken by the worker
    first_job = queue.fetch_job(StageRun.objects.get(run=first).job_id)
    queue.remove(first_job.id)
    with queue.connection.pipeline() as pipe:  # what a worker records when it starts a job
        Execution.create(first_job, ttl=60, pipeline=pipe)
        pipe.execute()
    assert StartedJobRegistry(queue=queue).get_job_ids() == [first_job.id]

    stage = StageRun.objects.get(run=third)
    message = waiting_message(stage)
    assert message == (f"queued behind 3 jobs: run #{first.pk} first · generate (running), "
                       f"run #{second.pk} second · generate, prompt-set import #41")
    assert "secret" not in message
    assert waiting_message(StageRun.objects.get(run=first)) == ""  # not in the queue any more

    client.force_login(viewer)
    state = client.get(reverse("runs:progress", args=[third.pk])).json()
    assert state["stages"][0]["message"] == message
    assert "queued behind 3 jobs" in client.get(reverse("runs:detail", args=[third.pk])).content.decode()


def test_first_in_line_says_nothing_special(queue_connection):
    run = _launch("only")
    assert waiting_message(StageRun.objects.get(run=run)) == ""

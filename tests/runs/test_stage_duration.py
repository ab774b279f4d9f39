"""A resumed stage's duration counts every attempt, not only the last."""
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from runs import services
from runs.models import StageRun, StageStatus
from tests import factories

pytestmark = pytest.mark.django_db


def test_resume_keeps_the_earlier_attempts_time(client, viewer, queue_connection):
    run = factories.make_run(stages=("generate",), status="cancelled")
    t0 = timezone.now() - timedelta(hours=1)
    StageRun.objects.filter(run=run).update(status=StageStatus.CANCELLED, attempt=1, started_at=t0,
                                            finished_at=t0 + timedelta(minutes=3))
    services.resume_run(run)
    stage = StageRun.objects.get(run=run)
    assert stage.status == StageStatus.QUEUED and stage.earlier_attempts_s == pytest.approx(180)
    # the second attempt ran 30 s
    StageRun.objects.filter(pk=stage.pk).update(status=StageStatus.SUCCEEDED, attempt=2,
                                                started_at=t0 + timedelta(minutes=50),
                                                finished_at=t0 + timedelta(minutes=50, seconds=30))
    client.force_login(viewer)
    (state,) = client.get(reverse("runs:progress", args=[run.pk])).json()["stages"]
    assert state["duration_s"] == pytest.approx(30) and state["total_duration_s"] == pytest.approx(210)
    assert state["duration"] == "30.0s (total 3m 30s over 2 attempts)"


def test_a_lost_worker_attempt_counts_to_its_last_heartbeat():
    t0 = timezone.now() - timedelta(hours=1)
    run = factories.make_run(stages=("generate",))
    stage = StageRun.objects.get(run=run)
    stage.status, stage.started_at, stage.heartbeat_at = StageStatus.FAILED, t0, t0 + timedelta(seconds=45)
    assert stage.attempt_seconds() == pytest.approx(45)

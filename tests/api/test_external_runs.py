"""External runs: created by an operator, written only by their owner, shown on the run pages, and left
alone by the lost-worker recovery (their script is no RQ job)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from runs.models import Artifact, MetricPoint, Run, RunStatus, StageRun
from runs.recovery import recover
from tests import factories
from tests.api.conftest import Api, token_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def external(api_as):
    api = api_as("operator")
    body = api.post("/external-runs/", {"name": "my dpo", "config": {"beta": 0.1}, "stage": "policy",
                                        "total_steps": 4}).json()
    return api, Run.objects.get(pk=body["id"])


def test_metrics_are_upserted_per_step_and_move_the_stage_progress(external):
    api, run = external
    first = api.post(f"/external-runs/{run.pk}/metrics", {"points": [
        {"step": 1, "name": "loss", "value": 2.0}, {"step": 2, "name": "loss", "value": 1.5},
        {"step": 2, "name": "kl", "value": float("inf")}]}).json()
    assert first == {"cancel_requested": False, "stored": 2, "skipped_non_finite": 1, "last_step": 2}
    api.post(f"/external-runs/{run.pk}/metrics", {"points": [{"step": 2, "name": "loss", "value": 1.2}]})
    assert list(MetricPoint.objects.filter(run=run).order_by("step").values_list("step", "value")) == [(1, 2.0),
                                                                                                      (2, 1.2)]
    stage = StageRun.objects.get(run=run)
    assert (stage.stage, stage.progress_done, stage.progress_total) == ("policy", 2, 4)


def test_artifacts_config_and_the_end_are_recorded(external, client):
    api, run = external
    api.post(f"/external-runs/{run.pk}/artifacts", {"artifacts": [{"name": "final", "path": "/data/out/final",
                                                                    "kind": "policy"}]})
    ended = api.patch(f"/external-runs/{run.pk}", {"status": "succeeded", "config": {"beta": 0.2}}).json()
    assert ended["status"] == "succeeded" and ended["config"] == {"beta": 0.2}
    assert ended["progress"]["stages"][0]["status"] == "succeeded"
    assert Artifact.objects.get(run=run).path == "/data/out/final"
    client.force_login(api.user)
    page = client.get(f"/runs/{run.pk}/")
    assert page.status_code == 200 and b"/data/out/final" in page.content and b"External script" in page.content
    other = factories.make_run(status=RunStatus.SUCCEEDED)
    listing = client.get(reverse("runs:list"))
    assert listing.status_code == 200 and b"my dpo" in listing.content and b"external script" in listing.content
    compare = client.get(f"/runs/compare/?runs={run.pk},{other.pk}")
    assert compare.status_code == 200 and b"(external script)" in compare.content
    # the run's other pages answer (empty) instead of failing on the missing constitution version
    for name in ("runs:pairs", "runs:audit_dashboard", "runs:export_preferences"):
        assert client.get(reverse(name, args=[run.pk])).status_code == 200, name


def test_only_the_owner_writes_and_only_into_external_runs(external):
    api, run = external
    stranger = Api(token_for(factories.make_user("other-op", roles=("operators",))))
    refused = stranger.post(f"/external-runs/{run.pk}/metrics", {"points": [{"step": 1, "name": "x", "value": 1}]})
    assert refused.status_code == 403 and not MetricPoint.objects.exists()
    product = factories.make_run(owner=api.user)
    wrong = api.post(f"/external-runs/{product.pk}/metrics", {"points": []})
    assert wrong.status_code == 409


def test_a_cancel_is_told_to_the_script_and_a_resume_is_refused(external):
    api, run = external
    assert api.post(f"/runs/{run.pk}/cancel").json()["status"] == RunStatus.CANCELLED
    answer = api.post(f"/external-runs/{run.pk}/metrics", {"points": [{"step": 3, "name": "loss", "value": 1}]})
    assert answer.json()["cancel_requested"] is True
    assert api.post(f"/runs/{run.pk}/resume").status_code == 409


def test_recovery_leaves_a_running_external_run_alone(external):
    _api, run = external
    StageRun.objects.filter(run=run).update(heartbeat_at=timezone.now() - timedelta(hours=2))
    recover(startup=True)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.stages.get().status == "running"


def test_bad_points_are_422s_with_their_path(external):
    api, run = external
    response = api.post(f"/external-runs/{run.pk}/metrics", {"points": [{"step": "x", "name": "loss", "value": 1}]})
    assert response.status_code == 422 and response.json()["errors"][0]["path"] == "points.0.step"
    assert api.post("/external-runs/", {"name": "s", "stage": "label"}).json()["errors"][0]["path"] == "stage"


def test_the_run_pages_cancel_ends_an_external_run_and_offers_no_resume(external, client):
    api, run = external
    client.force_login(api.user)
    page = client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert 'id="cancel-form"' in page and 'id="resume-form"' not in page
    client.post(reverse("runs:cancel", args=[run.pk]))
    run.refresh_from_db()
    assert run.cancel_requested and run.status == RunStatus.CANCELLED  # no job to wait for: ended at once
    assert run.stages.get().status == "cancelled"
    answer = api.post(f"/external-runs/{run.pk}/metrics", {"points": [{"step": 1, "name": "loss", "value": 1}]})
    assert answer.json()["cancel_requested"] is True  # the script stops at its next batch

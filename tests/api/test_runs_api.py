"""Runs through the API: launch with the launch form's validation (errors by dotted config path), status,
cancel/resume/retry, metric series, judgments with the pair browser's filters and the blind-audit rule, and
the preference export."""
from __future__ import annotations

import json

import pytest

from runs.models import AuditItem, MetricPoint, Run, RunStatus, StageRun, StageStatus
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def pinned():
    return {"constitution_version": factories.make_version().pk, "prompt_set": factories.make_prompt_set(4).pk}


def test_launch_from_a_preset_with_overrides_creates_the_run(api_as, pinned):
    api = api_as("operator")
    response = api.post("/runs/", {"preset": "offline-demo", "name": "from curl", **pinned,
                                   "set": {"generation.max_prompts": 3, "policy.steps": 2}})
    assert response.status_code == 201, response.content
    run = Run.objects.get(pk=response.json()["run"]["id"])
    assert run.name == "from curl" and run.owner == api.user and run.kind == "rlaif"
    assert run.config["generation"]["max_prompts"] == 3 and run.config["policy"]["steps"] == 2
    assert run.constitution_version_id == pinned["constitution_version"]
    assert [s.stage for s in run.ordered_stages()] == ["generate", "label", "reward_model", "policy", "evaluate"]
    assert response.json()["estimate"]["comparisons"] >= 0
    stages = response.json()["run"]["progress"]["stages"]
    assert [s["stage"] for s in stages][:2] == ["generate", "label"]


def test_launch_errors_come_back_with_the_dotted_config_path(api_as, pinned):
    api = api_as("operator")
    response = api.post("/runs/", {"preset": "offline-demo", **pinned, "set": {"policy.beta": -1.0,
                                                                                  "judge.model": ""}})
    assert response.status_code == 400
    errors = {e["path"]: e["message"] for e in response.json()["errors"]}
    assert "judge.model" in errors and "required" in errors["judge.model"].lower()
    assert not Run.objects.exists()

    response = api.post("/runs/", {"preset": "offline-demo", **pinned, "set": {"policy.beta": -1.0}})
    assert response.status_code == 400
    assert [e["path"] for e in response.json()["errors"]] == ["policy.beta"]

    response = api.post("/runs/", {"preset": "nope", **pinned})
    assert response.json()["errors"][0]["path"] == "preset"

    response = api.post("/runs/", {"preset": "offline-demo", "prompt_set": pinned["prompt_set"]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "constitution_version"

    response = api.post("/runs/", {"preset": "offline-demo", **pinned, "prompt_set": 999})
    assert response.status_code == 400 and response.json()["errors"][0]["path"] == "prompt_set"


def test_cancel_resume_and_retry_through_the_services(api_as):
    api = api_as("operator")
    run = factories.make_run(stages=("generate", "label"), status=RunStatus.FAILED)
    StageRun.objects.filter(run=run, stage="generate").update(status=StageStatus.SUCCEEDED)
    StageRun.objects.filter(run=run, stage="label").update(status=StageStatus.FAILED, error="boom")
    assert api.post(f"/runs/{run.pk}/cancel").status_code == 409
    resumed = api.post(f"/runs/{run.pk}/resume").json()
    assert resumed["status"] == RunStatus.QUEUED
    assert {s["stage"]: s["status"] for s in resumed["progress"]["stages"]}["label"] == StageStatus.QUEUED
    cancelled = api.post(f"/runs/{run.pk}/cancel").json()
    assert cancelled["progress"]["cancel_requested"] is True
    Run.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED)
    retried = api.post(f"/runs/{run.pk}/stages/generate/retry").json()
    assert {s["stage"]: s["status"] for s in retried["progress"]["stages"]}["generate"] == StageStatus.QUEUED
    bad = api.post(f"/runs/{run.pk}/stages/fly/retry")
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "stage"
    assert api.get("/runs/999999").status_code == 404


def test_metrics_come_as_one_series_per_stage_and_name(api_as):
    run = factories.make_run()
    MetricPoint.objects.bulk_create([MetricPoint(run=run, stage="policy", step=s, name="kl", value=s / 10)
                                     for s in (3, 1, 2)] + [MetricPoint(run=run, stage="reward_model", step=1,
                                                                        name="loss", value=0.7)])
    data = api_as("viewer").get(f"/runs/{run.pk}/metrics").json()
    assert data["series"] == [
        {"stage": "policy", "name": "kl", "steps": [1, 2, 3], "values": [0.1, 0.2, 0.3]},
        {"stage": "reward_model", "name": "loss", "steps": [1], "values": [0.7]},
    ]
    only = api_as("viewer").get(f"/runs/{run.pk}/metrics", {"name": "loss"}).json()["series"]
    assert [s["name"] for s in only] == ["loss"]


@pytest.fixture
def judged_run():
    version = factories.make_version()
    run = factories.make_run(constitution_version=version, prompt_set=factories.make_prompt_set(6))
    honest, helpful = version.principles.order_by("position")
    made = []
    for i, prompt in enumerate(run.prompt_set.prompts.all()):
        comparison = factories.make_comparison(run, prompt, texts=(f"answer {i} a", f"answer {i} b"))
        made.append(factories.make_judgment(comparison, honest if i % 2 else helpful, p_a=0.9 if i < 3 else 0.1))
    return run, made, honest


def test_judgments_filter_and_page_as_the_pair_browser(api_as, judged_run):
    run, made, honest = judged_run
    api = api_as("viewer")
    page = api.get(f"/runs/{run.pk}/judgments", {"verdict": "A"}).json()
    assert sorted(j["id"] for j in page["items"]) == sorted(j.pk for j in made[:3])
    assert page["applied"] == {"verdict": "A"} and page["next_before"] is None
    assert {j["verdict"] for j in page["items"]} == {"A"}
    by_principle = api.get(f"/runs/{run.pk}/judgments", {"principle": str(honest.pk)}).json()["items"]
    assert {j["principle"] for j in by_principle} == {"Honest"} and len(by_principle) == 3
    first = api.get(f"/runs/{run.pk}/judgments", {"limit": 4}).json()
    assert [j["id"] for j in first["items"]] == [j.pk for j in made[::-1][:4]]
    second = api.get(f"/runs/{run.pk}/judgments", {"limit": 4, "before": first["next_before"]}).json()
    assert [j["id"] for j in second["items"]] == [j.pk for j in made[::-1][4:]]
    assert second["next_before"] is None
    item = first["items"][0]
    assert item["prompt"].startswith("Prompt number") and item["response_a"].endswith(" a")
    assert item["confidence"] == pytest.approx(0.8)


def test_an_auditor_never_gets_the_audit_pairs_they_have_still_to_label(api_as, judged_run):
    run, made, _ = judged_run
    hidden = made[0]
    AuditItem.objects.create(run=run, comparison=hidden.comparison, judgment=hidden, stratum="random")
    auditor = api_as("auditor")
    page = auditor.get(f"/runs/{run.pk}/judgments").json()
    assert hidden.pk not in [j["id"] for j in page["items"]] and page["blind_hidden"] == 1
    assert auditor.get(f"/runs/{run.pk}/judgments", {"verdict": "A"}).json()["items"].__len__() == 2
    exported = auditor.get(f"/runs/{run.pk}/preferences")
    rows = [json.loads(line) for line in b"".join(exported.streaming_content).decode().splitlines()]
    assert len(rows) == 5 and exported["X-Rows"] == "5"
    # a viewer cannot label, so nothing is hidden from them
    assert len(api_as("viewer").get(f"/runs/{run.pk}/judgments").json()["items"]) == 6
    factories.make_label(hidden.comparison, "A", auditor=auditor.user)
    assert hidden.pk in [j["id"] for j in auditor.get(f"/runs/{run.pk}/judgments").json()["items"]]


def test_the_preference_export_downloads_trl_rows_with_the_page_filters(api_as, judged_run):
    run, _made, _ = judged_run
    api = api_as("viewer")
    response = api.get(f"/runs/{run.pk}/preferences")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith(f'attachment; filename="run-{run.pk}-preferences-standard')
    rows = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert len(rows) == 6 and {"prompt", "chosen", "rejected"} <= set(rows[0])
    assert rows[0]["chosen"] != rows[0]["rejected"]
    zipped = api.get(f"/runs/{run.pk}/preferences", {"file_format": "disk"})
    assert zipped["Content-Type"] == "application/zip"
    bad = api.get(f"/runs/{run.pk}/preferences", {"min_confidence": 2})
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "min_confidence"


def test_lists_page_in_the_database_with_a_fixed_number_of_queries(api_as, django_assert_max_num_queries):
    from constitutions.models import Constitution

    api = api_as("viewer")
    version = factories.make_version()
    prompt_set = factories.make_prompt_set(2)
    for i in range(60):
        factories.make_run(owner=api.user, constitution_version=version, prompt_set=prompt_set, name=f"r{i}")
        if i < 55:
            factories.make_version(Constitution.objects.create(name=f"c{i}"))
    api.get("/runs/")  # warm the token's last-used write
    with django_assert_max_num_queries(6):
        page = api.get("/runs/").json()
    assert page["count"] == 60 and len(page["items"]) == 50
    assert page["items"][0]["owner"] == api.user.username and page["items"][0]["url"].startswith("/runs/")
    assert api.get("/runs/", {"page": 2}).json()["items"][-1]["name"] == "r0"
    with django_assert_max_num_queries(6):
        constitutions = api.get("/constitutions/").json()
    assert constitutions["count"] == 56 and constitutions["items"][0]["latest_version"]["number"] == 1
    with django_assert_max_num_queries(6):
        assert api.get("/prompt-sets/").json()["items"][0]["prompts"] == 2


def test_a_launch_records_the_preflight_like_the_page(api_as, pinned):
    from runs.models import Artifact

    response = api_as("operator").post("/runs/", {"preset": "offline-demo", **pinned})
    assert response.status_code == 201
    report = Artifact.objects.get(run_id=response.json()["run"]["id"], name="pre-flight")
    assert report.metrics["fallbacks"] == response.json()["preflight_fallbacks"]

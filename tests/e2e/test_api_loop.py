"""A script drives the whole loop over HTTP with a token only: launch the offline demo through the API,
follow it to the end, read its metrics and judgments, audit a sample and read the agreement, export the
preferences. The site is the live test server; an RQ burst worker runs the stages, as `studio` would."""
from __future__ import annotations

import json
import shutil

import pytest
import requests

from constitutions.models import ConstitutionVersion
from constitutions.starter import STARTER_NAME
from rlaif_site.models import ApiToken
from runs.models import PromptSet
from runs.starter import ensure_starter_data
from tests import factories

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo_models(settings, tmp_path, demo_models_cache):
    settings.MODELS_DIR = tmp_path / "models"
    shutil.copytree(demo_models_cache / "demo", settings.MODELS_DIR / "demo")
    return settings.MODELS_DIR


def test_launch_follow_audit_and_export_with_a_token(live_server, demo_models, run_worker):
    ensure_starter_data()
    operator = factories.make_user("script", roles=("operators", "auditors"))
    outsider = factories.make_user("outsider")
    version = ConstitutionVersion.objects.filter(constitution__name=STARTER_NAME).order_by("-number").first()
    prompt_set = PromptSet.objects.get()
    http = requests.Session()
    http.headers["Authorization"] = "Bearer " + ApiToken.issue(operator, "script")[1]
    api = live_server.url + "/api/v1"

    launch = {"preset": "offline-demo", "name": "api loop", "constitution_version": version.pk,
              "prompt_set": prompt_set.pk,
              "set": {"generation.max_prompts": 12, "evaluation.max_prompts": 4, "policy.steps": 4,
                      "policy.checkpoint_every": 2}}
    denied = requests.post(api + "/runs/", json=launch, headers={
        "Authorization": "Bearer " + ApiToken.issue(outsider, "x")[1]})
    assert denied.status_code == 403
    response = http.post(api + "/runs/", json=launch)
    assert response.status_code == 201, response.text
    run_id = response.json()["run"]["id"]

    run_worker()  # every stage, one after the other

    run = http.get(f"{api}/runs/{run_id}").json()
    stages = run["progress"]["stages"]
    assert run["status"] == "succeeded", [(s["stage"], s["status"], s["error"][:300]) for s in stages]
    assert [s["stage"] for s in stages] == ["generate", "label", "reward_model", "policy", "evaluate"]
    assert all(s["fraction"] == 1.0 for s in stages)

    series = {(s["stage"], s["name"]): s for s in http.get(f"{api}/runs/{run_id}/metrics").json()["series"]}
    assert series[("policy", "kl")]["steps"][-1] == 4
    assert ("evaluate", "win_rate") in series

    judgments = http.get(f"{api}/runs/{run_id}/judgments", params={"purpose": "train", "limit": 500}).json()
    assert judgments["items"] and {j["verdict"] for j in judgments["items"]} <= {"A", "B", "tie", ""}

    drawn = http.post(f"{api}/runs/{run_id}/audit/sample", json={"random_size": 3, "uncertain_size": 0}).json()
    assert drawn["items"] == 3
    for _ in range(3):
        pair = http.get(f"{api}/runs/{run_id}/audit/next").json()
        label = http.post(f"{api}/runs/{run_id}/audit/items/{pair['item_id']}/label",
                          json={"choice": "left", "ticket": pair["ticket"]})
        assert label.status_code == 200, label.text
    assert http.get(f"{api}/runs/{run_id}/audit/next").status_code == 204
    report = http.get(f"{api}/runs/{run_id}/audit/report").json()
    assert report["progress"]["labelled"] == 3 and report["overall"]["figures"]["alignment"]["n"] == 3

    export = http.get(f"{api}/runs/{run_id}/preferences")
    rows = [json.loads(line) for line in export.text.splitlines()]
    assert export.status_code == 200 and len(rows) == int(export.headers["X-Rows"]) > 0
    assert {"prompt", "chosen", "rejected"} <= set(rows[0])

"""Every API endpoint against the persona matrix of the pages (anonymous, no group, author, operator,
auditor): anonymous callers get a 401 JSON body, callers without the role a 403, and the right role succeeds."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from runs.models import AuditItem, RunStatus, StageRun, StageStatus
from tests import factories
from tests.api.conftest import PERSONAS

pytestmark = pytest.mark.django_db

READERS = {"viewer", "author", "operator", "auditor"}
DOCUMENT = "name: From the API\nprinciples:\n  - name: Honest\n    comparison: Which response is more honest?\n"


@pytest.fixture
def world():
    version = factories.make_version()
    prompt_set = factories.make_prompt_set(4)
    run = factories.make_run(constitution_version=version, prompt_set=prompt_set, stages=("generate", "label"),
                             status=RunStatus.FAILED)
    StageRun.objects.filter(run=run, stage="generate").update(status=StageStatus.FAILED)
    comparison = factories.make_comparison(run)
    judgment = factories.make_judgment(comparison, version.principles.first())
    item = AuditItem.objects.create(run=run, comparison=comparison, judgment=judgment, stratum="random")
    active = factories.make_run(constitution_version=version, prompt_set=prompt_set, status=RunStatus.RUNNING)
    return {"c": version.constitution_id, "v": version, "ps": prompt_set.pk, "r": run.pk, "item": item.pk,
            "active": active.pk}


def _launch_body(w):
    return {"preset": "offline-demo", "constitution_version": w["v"].pk, "prompt_set": w["ps"],
            "estimate_only": True}


#: (name, method, path template, body builder or None, roles allowed; None = every logged-in user)
ENDPOINTS = [
    ("list constitutions", "get", "/constitutions/", None, None),
    ("read constitution", "get", "/constitutions/{c}", None, None),
    ("read version", "get", "/constitutions/{c}/versions/1", None, None),
    ("export version", "get", "/constitutions/{c}/versions/1/export", None, None),
    ("diff versions", "get", "/constitutions/{c}/diff?old=1&new=1", None, None),
    ("create constitution", "post", "/constitutions/", lambda w: {"document": DOCUMENT}, {"author"}),
    ("create version", "post", "/constitutions/{c}/versions",
     lambda w: {"document": DOCUMENT.replace("honest?", "truthful?")}, {"author"}),
    ("list prompt sets", "get", "/prompt-sets/", None, None),
    ("read prompt set", "get", "/prompt-sets/{ps}", None, None),
    ("import status", "get", "/prompt-sets/{ps}/import", None, None),
    ("import prompts", "multipart", "/prompt-sets/", None, {"operator"}),
    ("list runs", "get", "/runs/", None, None),
    ("read run", "get", "/runs/{r}", None, None),
    ("launch run", "post", "/runs/", _launch_body, {"operator"}),
    ("cancel run", "post", "/runs/{active}/cancel", lambda w: {}, {"operator"}),
    ("resume run", "post", "/runs/{r}/resume", lambda w: {}, {"operator"}),
    ("retry stage", "post", "/runs/{r}/stages/generate/retry", lambda w: {}, {"operator"}),
    ("metrics", "get", "/runs/{r}/metrics", None, None),
    ("judgments", "get", "/runs/{r}/judgments", None, None),
    ("preferences", "get", "/runs/{r}/preferences", None, None),
    ("audit report", "get", "/runs/{r}/audit/report", None, None),
    ("draw sample", "post", "/runs/{r}/audit/sample", lambda w: {"random_size": 1, "uncertain_size": 0},
     {"auditor", "operator"}),
    ("next pair", "get", "/runs/{r}/audit/next", None, {"auditor"}),
    ("submit label", "label", "/runs/{r}/audit/items/{item}/label", None, {"auditor"}),
    ("export for label studio", "get", "/runs/{r}/audit/export/label-studio", None, {"auditor", "operator"}),
    ("export for argilla", "get", "/runs/{r}/audit/export/argilla", None, {"auditor", "operator"}),
    ("import annotations", "annotations", "/runs/{r}/audit/annotations", None, {"auditor", "operator"}),
    ("create external run", "post", "/external-runs/", lambda w: {"name": "mine"}, {"operator"}),
]


def _call(api, method, path, body, world):
    if method == "multipart":
        upload = SimpleUploadedFile("p.jsonl", b'{"prompt": "Why is the sky blue?"}\n{"prompt": "And the sea?"}\n')
        return api.client.post("/api/v1" + path, {"name": "via API", "file": upload}, headers=api.headers)
    if method == "label":
        from runs.audit.forms import make_ticket

        item = AuditItem.objects.get(pk=world["item"])
        body = {"choice": "left", "ticket": make_ticket(item.comparison_id, False)}
        return api.post(path, body)
    if method == "annotations":
        upload = SimpleUploadedFile("export.json", b"[]")
        return api.client.post("/api/v1" + path, {"file": upload}, headers=api.headers)
    return api.call(method, path, body)


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_endpoint_answers_each_persona_as_the_pages_do(api_as, world, persona, endpoint):
    _name, method, template, make_body, allowed = endpoint
    path = template.format(**world)
    body = make_body(world) if make_body else None
    response = _call(api_as(persona), method, path, body, world)
    if persona == "anonymous":
        assert response.status_code == 401, response.content
        assert response["Content-Type"].startswith("application/json")
        assert "Authentication required" in response.json()["detail"]
    elif (allowed or READERS) and persona in (allowed or READERS):
        assert 200 <= response.status_code < 300, (persona, response.status_code, response.content[:500])
    else:
        assert response.status_code == 403, (persona, response.status_code, response.content[:300])
        assert "role" in response.json()["detail"]


def test_every_api_route_is_in_the_matrix():
    """A new endpoint must be added to :data:`ENDPOINTS` (so its roles are tested)."""
    from rlaif_site.api.main import api

    schema = api.get_openapi_schema()
    routes = {(method, path.removeprefix("/api/v1")) for path, ops in schema["paths"].items() for method in ops}
    tested = set()
    for _name, method, template, _body, _allowed in ENDPOINTS:
        route = template.split("?")[0]
        for key, placeholder in {"{c}": "{constitution_id}", "{ps}": "{prompt_set_id}", "{r}": "{run_id}",
                                 "{active}": "{run_id}", "{item}": "{item_id}"}.items():
            route = route.replace(key, placeholder)
        route = route.replace("/generate/", "/{stage}/").replace("/versions/1", "/versions/{number}")
        tested.add(({"multipart": "post", "label": "post", "annotations": "post"}.get(method, method), route))
    external_writes = {("post", "/external-runs/{run_id}/metrics"), ("post", "/external-runs/{run_id}/artifacts"),
                       ("patch", "/external-runs/{run_id}")}  # owner-only: tests/api/test_external_runs.py
    assert routes - tested == external_writes

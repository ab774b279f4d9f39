"""Constitutions through the API: read, create versions from the file schema (errors by field path), diff,
export."""
from __future__ import annotations

import pytest
import yaml

from constitutions.models import ConstitutionVersion
from tests import factories

pytestmark = pytest.mark.django_db

DOC = """name: API constitution
principles:
  - name: Honest
    comparison: Which response is more honest?
  - name: Kind
    comparison: Which response is kinder?
"""


def test_create_a_constitution_then_a_version_and_diff_them(api_as):
    api = api_as("author")
    created = api.post("/constitutions/", {"document": DOC, "note": "first"})
    assert created.status_code == 201
    body = created.json()
    cid = body["constitution_id"]
    assert body["number"] == 1 and body["author"] == api.user.username and body["created"] is True
    assert [p["name"] for p in body["document"]["principles"]] == ["Honest", "Kind"]

    same = api.post(f"/constitutions/{cid}/versions", {"document": DOC})
    assert same.status_code == 200 and same.json()["created"] is False and same.json()["number"] == 1

    changed = DOC.replace("kinder?", "gentler?")
    v2 = api.post(f"/constitutions/{cid}/versions", {"document": changed, "note": "gentler"})
    assert v2.status_code == 201 and v2.json()["number"] == 2 and v2.json()["note"] == "gentler"

    detail = api.get(f"/constitutions/{cid}").json()
    assert [v["number"] for v in detail["versions"]] == [2, 1] and detail["latest_version"]["number"] == 2

    diff = api.get(f"/constitutions/{cid}/diff", {"old": 1, "new": 2}).json()
    assert diff["changed"] is True
    assert "-   Comparison: Which response is kinder?" in diff["diff"]
    assert "+   Comparison: Which response is gentler?" in diff["diff"]

    exported = api.get(f"/constitutions/{cid}/versions/2/export", {"format": "yaml"})
    assert exported["Content-Disposition"] == 'attachment; filename="api-constitution-v2.yaml"'
    assert yaml.safe_load(exported.content)["principles"][1]["comparison"] == "Which response is gentler?"
    as_json = api.get(f"/constitutions/{cid}/versions/2/export", {"format": "json"}).json()
    assert as_json["source"]["version"] == 2


def test_an_invalid_document_lists_every_problem_by_path_and_saves_nothing(api_as):
    version = factories.make_version()
    bad = "principles:\n  - name: ''\n    comparison: Which?\n    weight: -1\n"
    response = api_as("author").post(f"/constitutions/{version.constitution_id}/versions", {"document": bad})
    assert response.status_code == 400
    paths = [e["path"] for e in response.json()["errors"]]
    assert "principles[0].name" in paths and "principles[0].weight" in paths
    assert ConstitutionVersion.objects.filter(constitution_id=version.constitution_id).count() == 1
    syntax = api_as("author").post("/constitutions/", {"document": "name: [unclosed"})
    assert syntax.status_code == 400 and "invalid YAML" in syntax.json()["errors"][0]["message"]
    nameless = api_as("author").post("/constitutions/", {"document": "principles: []"})
    assert nameless.status_code == 400


def test_lists_are_paginated_and_filtered(api_as):
    for _ in range(3):
        factories.make_version(constitution=None)
    listing = api_as("viewer").get("/constitutions/", {"page": 1}).json()
    assert listing["count"] == 3 and len(listing["items"]) == 3
    assert api_as("viewer").get("/constitutions/", {"q": "zzz"}).json()["count"] == 0
    assert api_as("viewer").get("/constitutions/999/versions/1").status_code == 404

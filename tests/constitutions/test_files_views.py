import json

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from constitutions.models import Constitution, ConstitutionVersion
from tests import factories

pytestmark = pytest.mark.django_db

GOOD = """\
name: Imported rules
description: From a file
principles:
  - name: Honest
    comparison: Which response is more honest?
    weight: 2
    category: honesty
  - name: Brief
    comparison: Which response is shorter?
    enabled: false
"""


def test_export_downloads_yaml_and_json(client, viewer):
    version = factories.make_version(Constitution.objects.create(name="Export me"))
    client.force_login(viewer)
    response = client.get(reverse("constitutions:export", args=[version.constitution_id, 1, "yaml"]))
    assert response.status_code == 200 and response["Content-Type"] == "application/yaml; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="export-me-v1.yaml"'
    data = yaml.safe_load(response.content)
    assert data["name"] == "Export me" and [p["name"] for p in data["principles"]] == ["Honest", "Helpful"]
    response = client.get(reverse("constitutions:export", args=[version.constitution_id, 1, "json"]))
    assert json.loads(response.content)["source"]["content_hash"] == version.content_hash
    assert client.get(reverse("constitutions:export", args=[version.constitution_id, 1, "xml"])).status_code == 404


def test_import_upload_creates_a_constitution(client, author):
    client.force_login(author)
    upload = SimpleUploadedFile("rules.yaml", GOOD.encode(), content_type="application/yaml")
    response = client.post(reverse("constitutions:import"), {"file": upload})
    constitution = Constitution.objects.get(name="Imported rules")
    version = constitution.latest_version
    assert response.status_code == 302 and response["Location"] == version.get_absolute_url()
    assert constitution.description == "From a file" and version.note == "Imported from rules.yaml"
    assert [(p.name, p.weight, p.enabled) for p in version.principles.all()] == [("Honest", 2.0, True),
                                                                                ("Brief", 1.0, False)]


def test_import_pasted_json_as_next_version_of_an_existing_constitution(client, author):
    v1 = factories.make_version(author=author)
    client.force_login(author)
    text = json.dumps(yaml.safe_load(GOOD))
    response = client.post(reverse("constitutions:import"), {"text": text, "into": v1.constitution_id, "note": "sync"})
    v2 = v1.constitution.latest_version
    assert response.status_code == 302 and (v2.number, v2.note, v2.parent) == (2, "sync", v1)
    assert v1.constitution.name != "Imported rules"
    response = client.post(reverse("constitutions:import"), {"text": text, "into": v1.constitution_id}, follow=True)
    assert v1.constitution.versions.count() == 2 and "no new version was created" in response.content.decode()


def test_invalid_import_lists_field_errors_and_saves_nothing(client, author):
    client.force_login(author)
    bad = GOOD.replace("weight: 2", "weight: -2").replace("enabled: false", "enabled: maybe")
    upload = SimpleUploadedFile("bad.yaml", bad.encode())
    response = client.post(reverse("constitutions:import"), {"file": upload})
    page = response.content.decode()
    assert response.status_code == 400 and "nothing was saved" in page
    assert "bad.yaml: principles[0].weight: must be ≥ 0 (line 6)" in page
    assert "bad.yaml: principles[1].enabled: must be true or false (line 10)" in page
    assert not Constitution.objects.exists() and not ConstitutionVersion.objects.exists()


def test_import_needs_exactly_one_source(client, author):
    client.force_login(author)
    response = client.post(reverse("constitutions:import"), {})
    assert response.status_code == 400 and "Upload a file or paste its text." in response.content.decode()
    upload = SimpleUploadedFile("x.yaml", GOOD.encode())
    response = client.post(reverse("constitutions:import"), {"file": upload, "text": GOOD})
    assert "not both" in response.content.decode() and not Constitution.objects.exists()


def test_import_with_a_taken_name_is_refused(client, author):
    factories.make_version(Constitution.objects.create(name="Imported rules"))
    client.force_login(author)
    page = client.post(reverse("constitutions:import"), {"text": GOOD}).content.decode()
    assert "already exists" in page and Constitution.objects.count() == 1
    response = client.post(reverse("constitutions:import"), {"text": GOOD, "name": "Imported rules 2"})
    assert response.status_code == 302 and Constitution.objects.filter(name="Imported rules 2").exists()

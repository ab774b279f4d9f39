"""Prompt sets through the API: upload and import with the command line's options and errors, follow the
import's status."""
from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from runs.models import PromptSet, ReferencePair

pytestmark = pytest.mark.django_db

HH = b"".join(
    json.dumps({"chosen": f"\n\nHuman: Question {i}?\n\nAssistant: A kind answer {i}.",
                "rejected": f"\n\nHuman: Question {i}?\n\nAssistant: Go away {i}."}).encode() + b"\n"
    for i in range(12)
)


def _upload(api, name, content, filename="data.jsonl", **fields):
    data = {"name": name, "file": SimpleUploadedFile(filename, content), **fields}
    return api.client.post("/api/v1/prompt-sets/", data, headers=api.headers)


def test_upload_guesses_the_layout_imports_in_the_background_and_reports(api_as, run_worker,
                                                                          django_capture_on_commit_callbacks):
    api = api_as("operator")
    with django_capture_on_commit_callbacks(execute=True):  # the job is enqueued on commit
        response = _upload(api, "HH via API", HH, options=json.dumps({"limit": 10, "eval_ratio": 0.2}))
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["options"]["layout"] == "hh_rlhf" and body["options"]["limit"] == 10  # guessed + given
    status_url = body["status_url"].removeprefix("/api/v1")
    assert api.get(status_url).json()["status"] == "importing"
    run_worker()
    status = api.get(status_url).json()
    assert status["status"] == "ready" and status["fraction"] == 1.0 and status["error"] == ""
    ps = PromptSet.objects.get(name="HH via API")
    assert ps.prompts.count() == 10 and ps.created_by == api.user
    assert ReferencePair.objects.filter(prompt__prompt_set=ps).count() == 10
    detail = api.get(f"/prompt-sets/{ps.pk}").json()
    assert detail["prompts"] == 10 and detail["import_report"]["prompts"] == 10


def test_bad_options_and_bad_files_are_400s_naming_the_field(api_as):
    api = api_as("operator")
    wrong = _upload(api, "x", HH, options=json.dumps({"layout": "poem"}))
    assert wrong.status_code == 400 and wrong.json()["errors"][0]["path"] == "options.layout"
    unknown = _upload(api, "x", HH, options=json.dumps({"colour": "red"}))
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["path"] == "options.colour"
    not_json = _upload(api, "x", HH, options="{")
    assert not_json.status_code == 400 and not_json.json()["errors"][0]["path"] == "options"
    empty = _upload(api, "x", b"")
    assert empty.status_code == 400 and "empty" in empty.json()["detail"]
    odd = _upload(api, "x", b"hello", filename="data.exe")
    assert odd.status_code == 400
    assert not PromptSet.objects.exists()


def test_a_taken_name_is_refused(api_as):
    PromptSet.objects.create(name="Taken")
    response = _upload(api_as("operator"), "Taken", HH)
    assert response.status_code == 400 and response.json()["errors"][0]["path"] == "name"


def test_a_failed_import_reports_the_row(api_as, run_worker, django_capture_on_commit_callbacks):
    api = api_as("operator")
    bad = HH + b'{"chosen": "", "rejected": "x"}\n'
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(api, "Bad rows", bad, options=json.dumps({"layout": "hh_rlhf"}))
    assert response.status_code == 202
    run_worker()
    status = api.get(response.json()["status_url"].removeprefix("/api/v1")).json()
    assert status["status"] == "failed" and "line 13" in status["error"]

"""Audit interop: the sample out to Label Studio / Argilla (blind) and their annotations back in as human
labels, round trips built as the tools write their exports, without a server."""
from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.urls import reverse

from runs.audit.interop import AnnotationFileError, import_annotations
from runs.models import AuditItem, HumanLabel
from tests import factories

pytestmark = pytest.mark.django_db

RATIONALE = "The first reply cites its sources, zebra-marker-42."
OUTSIDER = "zed@elsewhere.org"


@pytest.fixture
def audrey(auditor):
    auditor.email = "Audrey@Example.com"
    auditor.save(update_fields=["email"])
    return auditor


@pytest.fixture
def audit(audrey):
    """A run with four audited pairs (the AI says A with p_a 0.8123); audrey labelled pair 2 'A' in the browser."""
    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1))
    honest = run.constitution_version.principles.get(name="Honest")
    items = []
    for i in range(4):
        comparison = factories.make_comparison(run, texts=(f"answer alpha {i}", f"answer beta {i}"))
        judgment = factories.make_judgment(comparison, honest, p_a=0.8123, rationale=RATIONALE)
        items.append(AuditItem.objects.create(run=run, comparison=comparison, judgment=judgment, stratum="random"))
    factories.make_label(items[2].comparison, "A", auditor=audrey)
    return run, items


def export_zip(client, run) -> dict[str, bytes]:
    response = client.get(reverse("runs:audit_export_label_studio", args=[run.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def ls_annotation(who, choice: str | None = None, selected: str | None = None, cancelled: bool = False) -> dict:
    """An annotation as a Label Studio export snapshot with ``annotations__completed_by`` expanded writes it
    (``completed_by`` the user's object); a bare int ``who`` as *Export → JSON* writes it."""
    result = []
    if choice:
        result.append({"id": "x1", "from_name": "preference", "to_name": "response_a", "type": "choices",
                       "origin": "manual", "value": {"choices": [choice]}})
    if selected:
        result.append({"id": "x2", "from_name": "comparison", "to_name": "comparison", "type": "pairwise",
                       "value": {"selected": selected}})
    completed_by = who if isinstance(who, int) else {"id": abs(hash(who)) % 100, "email": who,
                                                       "first_name": "", "last_name": ""}
    return {"id": 1000, "result": result, "was_cancelled": cancelled, "ground_truth": False, "lead_time": 12.5,
            "completed_by": completed_by, "task": 1}


def test_label_studio_export_is_a_blind_project(client, audrey, audit):
    run, items = audit
    client.force_login(audrey)
    files = export_zip(client, run)
    assert set(files) == {"tasks.json", "label_config.xml", "README.md"}
    tasks = json.loads(files["tasks.json"])
    assert len(tasks) == 4
    data = tasks[0]["data"]
    assert data["response_a"] == "answer alpha 0" and data["response_b"] == "answer beta 0"
    assert data["prompt"] == "Prompt number 0?"
    assert data["prompt_turns"] == [{"role": "user", "content": "Prompt number 0?"}]
    assert data["comparison_id"] == items[0].comparison_id and data["run_id"] == run.pk and data["pair_uid"]
    assert tasks[0]["meta"]["comparison_id"] == items[0].comparison_id
    config = files["label_config.xml"].decode()
    assert '<Choices name="preference"' in config and "$response_a" in config and "$prompt_turns" in config
    everything = b"".join(files.values()).decode()
    for secret in ("zebra-marker-42", "0.812", "verdict", "random"):
        assert secret not in everything.replace("No AI verdict", "")


def test_chat_prompts_are_exported_as_turns(client, audrey, audit):
    run, items = audit
    prompt = items[0].comparison.prompt
    prompt.messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                       {"role": "user", "content": "Help me?"}]
    prompt.save(update_fields=["messages"])
    client.force_login(audrey)
    tasks = json.loads(export_zip(client, run)["tasks.json"])
    assert tasks[0]["data"]["prompt_turns"][1] == {"role": "assistant", "content": "Hello"}


def test_label_studio_round_trip(client, audrey, audit):
    run, items = audit
    other_run = factories.make_run(prompt_set=run.prompt_set)
    client.force_login(audrey)
    tasks = json.loads(export_zip(client, run)["tasks.json"])
    # as Label Studio exports them: its own task ids and fields around our data, two annotators per task
    exported = []
    answers = [
        [ls_annotation("audrey@example.com", "A"), ls_annotation(OUTSIDER, "B")],
        [ls_annotation("audrey@example.com", selected="right"), ls_annotation(OUTSIDER, "B")],
        [ls_annotation("audrey@example.com", "B"), ls_annotation(OUTSIDER, "tie")],  # audrey said A before
        [ls_annotation("audrey@example.com", "A"), ls_annotation(OUTSIDER, "B", cancelled=True)],
    ]
    for n, (task, given) in enumerate(zip(tasks, answers, strict=True)):
        exported.append({"id": 50 + n, "data": task["data"], "meta": task["meta"], "annotations": given,
                         "predictions": [], "project": 7, "created_at": "2025-01-01T00:00:00Z"})
    bogus = json.loads(json.dumps(exported[0]))
    bogus["data"]["comparison_id"] = 999_999
    foreign = json.loads(json.dumps(exported[1]))
    foreign["data"]["run_id"] = other_run.pk
    exported += [bogus, foreign]
    upload = io.BytesIO(json.dumps(exported).encode())
    upload.name = "project-7-at-2025.json"

    response = client.post(reverse("runs:audit_import", args=[run.pk]), {"file": upload, "tool": "auto"})

    assert response.status_code == 200
    report = response.context["report"]
    assert (report.tool, report.tasks, report.matched, report.created) == ("label_studio", 6, 4, 6)
    assert report.skipped == 1 and report.unchanged == 0
    assert [(c["comparison_id"], c["existing"], c["imported"]) for c in report.conflicts] == [
        (items[2].comparison_id, "A", "B")]
    assert sorted(u["task"] for u in report.unmatched) == [4, 5]
    assert "not in this run's audit sample" in report.unmatched[0]["reason"]
    assert f"a task of run {other_run.pk}" == report.unmatched[1]["reason"]
    assert report.annotators == {"audrey@example.com": "user audrey", OUTSIDER: f"label-studio:{OUTSIDER}"}
    html = response.content.decode()
    assert "New human labels" in html and OUTSIDER in html

    mine = dict(HumanLabel.objects.filter(auditor=audrey).values_list("comparison__audit_items__pk", "choice"))
    assert mine == {items[0].pk: "A", items[1].pk: "B", items[2].pk: "A", items[3].pk: "A"}  # conflict kept A
    theirs = HumanLabel.objects.filter(external_annotator=f"label-studio:{OUTSIDER}")
    assert sorted(theirs.values_list("comparison_id", "choice")) == [
        (items[0].comparison_id, "B"), (items[1].comparison_id, "B"), (items[2].comparison_id, "tie")]

    # the dashboard's agreement counts them: 1 browser label + 6 imported; AI says A everywhere
    dashboard = client.get(reverse("runs:audit_dashboard", args=[run.pk]))
    overall = dashboard.context["report"]["overall"]
    assert overall["n_labels"] == 7 and overall["n_labelled"] == 4
    alignment = overall["figures"]["alignment"]
    assert alignment["n"] == 6 and alignment["value"] == pytest.approx(3 / 6)  # ties are not decisive

    # importing the same file again changes nothing
    upload.seek(0)
    again = client.post(reverse("runs:audit_import", args=[run.pk]), {"file": upload}).context["report"]
    assert (again.created, again.unchanged, len(again.conflicts)) == (0, 6, 1)
    assert HumanLabel.objects.count() == 7


def ls_1_23_annotation(user_id: int, choice: str, cancelled: bool = False) -> dict:
    """An annotation exactly as Label Studio 1.23.2's *Export → JSON* (``GET /api/projects/<id>/export``)
    wrote it in benchmarks/label_studio_roundtrip.py: ``completed_by`` a bare user id, no email anywhere."""
    return {
        "id": 11, "completed_by": user_id,
        "result": [] if cancelled else [
            {"from_name": "preference", "to_name": "response_a", "type": "choices", "value": {"choices": [choice]}},
            {"from_name": "confidence", "to_name": "response_a", "type": "rating", "value": {"rating": 4}},
            {"from_name": "note", "to_name": "response_a", "type": "textarea", "value": {"text": ["because"]}}],
        "was_cancelled": cancelled, "ground_truth": False, "created_at": "2026-12-02T13:10:44.103955Z",
        "updated_at": "2026-12-02T13:10:44.103989Z", "draft_created_at": None, "lead_time": None, "prediction": {},
        "result_count": 1, "unique_id": "20f2e6f6-1125-4dd3-bf5a-5abdb7082a84", "import_id": None,
        "last_action": None, "bulk_created": False, "task": 1, "project": 1, "updated_by": user_id,
        "parent_prediction": None, "parent_annotation": None, "last_created_by": None,
    }


def test_a_plain_label_studio_export_names_annotators_by_id_only(client, audrey, audit):
    """Regression: Label Studio 1.23's Export → JSON gives ``completed_by`` as a bare id, so an auditor's
    answers silently became a second, external annotator next to her own browser label. The report now says
    so, and Label Studio's user list (``label_studio_users``) matches them to the auditor."""
    run, items = audit
    client.force_login(audrey)
    tasks = json.loads(export_zip(client, run)["tasks.json"])
    exported = [
        {"id": n + 1, "annotations": [ls_1_23_annotation(1, "B"), ls_1_23_annotation(2, "tie"),
                                      ls_1_23_annotation(1, "", cancelled=True)],
         "drafts": [], "predictions": [], "data": task["data"], "meta": task["meta"], "inner_id": n + 1,
         "total_annotations": 2, "cancelled_annotations": 1, "project": 1, "comment_authors": []}
        for n, task in enumerate(tasks)]
    upload = io.BytesIO(json.dumps(exported).encode())
    upload.name = "project-1-at-2026-12-02.json"

    page = client.post(reverse("runs:audit_import", args=[run.pk]), {"file": upload})

    report = page.context["report"]
    assert (report.matched, report.created, report.skipped, report.conflicts) == (4, 8, 4, [])
    assert report.annotators == {"user 1": "label-studio:user 1", "user 2": "label-studio:user 2"}
    assert len(report.notes) == 1 and "2 annotators by user id only (user 1, user 2)" in report.notes[0]
    assert "Label Studio named 2 annotators by user id only" in page.content.decode()
    assert HumanLabel.objects.filter(comparison=items[2].comparison).count() == 3  # audrey twice, unknowingly
    assert "annotations__completed_by" in export_zip(client, run)["README.md"].decode()

    HumanLabel.objects.filter(external_annotator__startswith="label-studio:").delete()
    users = [{"id": 1, "email": "audrey@example.com", "username": ""},  # as GET /api/users answers
             {"id": 2, "email": OUTSIDER, "username": "zed"}]
    named = import_annotations(run, "project-1.json", json.dumps(exported), label_studio_users=users)

    assert (named.matched, named.created, named.notes) == (4, 7, [])
    assert named.annotators == {"audrey@example.com": "user audrey", OUTSIDER: f"label-studio:{OUTSIDER}"}
    assert [(c["comparison_id"], c["existing"], c["imported"]) for c in named.conflicts] == [
        (items[2].comparison_id, "A", "B")]
    mine = HumanLabel.objects.filter(auditor=audrey).order_by("comparison_id")
    assert [(label.choice, label.confidence, label.note) for label in mine] == [
        ("B", 4, "because"), ("B", 4, "because"), ("A", None, ""), ("B", 4, "because")]
    with pytest.raises(ValueError, match=r"label_studio_users\[0\]\.id"):
        import_annotations(run, "project-1.json", json.dumps(exported), label_studio_users=[{"email": "x@y.z"}])


def argilla_response(who: str, value: str) -> dict:
    return {"value": value, "user_id": who}


def test_argilla_round_trip(client, audrey, audit):
    run, items = audit
    client.force_login(audrey)
    response = client.get(reverse("runs:audit_export_argilla", args=[run.pk]))
    assert response.status_code == 200
    records = [json.loads(line) for line in response.content.decode().splitlines()]
    assert len(records) == 4
    assert set(records[0]) == {"id", "fields", "metadata", "suggestions", "responses", "vectors", "_server_id"}
    assert records[0]["fields"] == {"prompt": "Prompt number 0?", "response_a": "answer alpha 0",
                                    "response_b": "answer beta 0"}
    assert records[0]["metadata"]["comparison_id"] == items[0].comparison_id
    assert "zebra-marker-42" not in response.content.decode() and "0.812" not in response.content.decode()

    # as Argilla 2.x writes them (Record.to_dict): responses per question, each with the user's id
    outsider = "7a1c3f9e-0000-4000-8000-000000000001"
    answers = [
        [{"value": "A", "user_id": "u1", "username": "audrey"}, argilla_response(outsider, "B")],
        [{"value": "B", "user_id": "u1", "username": "audrey"}, argilla_response(outsider, "B")],
        [{"value": "B", "user_id": "u1", "username": "audrey"}, argilla_response(outsider, "tie")],
        [{"value": "A", "user_id": "u1", "username": "audrey"}],
    ]
    for record, preference in zip(records, answers, strict=True):
        record["responses"] = {"preference": preference}
        record["_server_id"] = "0b7c-server"
    # the 1.x / server shape for one record, and metadata dropped (ids read from the record id)
    records[3]["responses"] = [{"user_id": outsider, "values": {"preference": {"value": "b"}}, "status": "discarded"},
                               {"user_id": "u1", "username": "audrey", "values": {"preference": {"value": "A"}},
                                "status": "submitted"}]
    records[3]["metadata"] = {}
    bogus = json.loads(json.dumps(records[0]))
    bogus["metadata"]["comparison_id"] = 999_999
    records.append(bogus)
    upload = io.BytesIO("".join(json.dumps(r) + "\n" for r in records).encode())
    upload.name = "records.jsonl"

    response = client.post(reverse("runs:audit_import", args=[run.pk]), {"file": upload, "tool": "argilla"})

    report = response.context["report"]
    assert (report.tool, report.tasks, report.matched, report.created, report.skipped) == ("argilla", 5, 4, 6, 1)
    assert [(c["existing"], c["imported"]) for c in report.conflicts] == [("A", "B")]
    assert [u["task"] for u in report.unmatched] == [4]
    assert report.annotators == {"audrey": "user audrey", outsider: f"argilla:{outsider}"}
    assert HumanLabel.objects.filter(auditor=audrey).count() == 4
    assert HumanLabel.objects.filter(external_annotator=f"argilla:{outsider}").count() == 3
    overall = client.get(reverse("runs:audit_dashboard", args=[run.pk])).context["report"]["overall"]
    assert overall["n_labels"] == 7 and overall["figures"]["alignment"]["n"] == 6


def test_a_malformed_file_is_refused_naming_the_task_and_nothing_is_written(client, audrey, audit):
    run, items = audit
    client.force_login(audrey)
    tasks = json.loads(export_zip(client, run)["tasks.json"])
    good = [{"id": n, "data": t["data"], "annotations": [ls_annotation(OUTSIDER, "A")]} for n, t in enumerate(tasks)]
    good[2]["annotations"].append(ls_annotation("audrey@example.com", "maybe"))
    before = HumanLabel.objects.count()

    with pytest.raises(AnnotationFileError) as error:
        import_annotations(run, "export.json", json.dumps(good))
    assert "export.json" in str(error.value) and "task 2" in str(error.value)
    assert "annotations[1].result[0].value.choices" in str(error.value) and "'maybe'" in str(error.value)
    assert HumanLabel.objects.count() == before

    upload = io.BytesIO(json.dumps(good).encode())
    upload.name = "export.json"
    response = client.post(reverse("runs:audit_import", args=[run.pk]), {"file": upload}, follow=True)
    text = response.content.decode()
    assert "Nothing was imported" in text and "task 2" in text
    assert HumanLabel.objects.count() == before

    with pytest.raises(AnnotationFileError, match=r"broken\.json: not JSON"):
        import_annotations(run, "broken.json", b'[{"data": {"comparison_id": 1}')
    with pytest.raises(AnnotationFileError, match=r"task 0, field data.comparison_id"):
        import_annotations(run, "ids.json", json.dumps([{"data": {"comparison_id": "seven"}}]))


def test_export_and_import_need_the_auditor_or_operator_role(client, viewer, operator, audit):
    run, _ = audit
    client.force_login(viewer)
    assert client.get(reverse("runs:audit_export_label_studio", args=[run.pk])).status_code == 403
    assert client.get(reverse("runs:audit_export_argilla", args=[run.pk])).status_code == 403
    assert client.post(reverse("runs:audit_import", args=[run.pk]), {}).status_code == 403
    assert "annotation-tools" not in client.get(reverse("runs:audit_dashboard", args=[run.pk])).content.decode()
    client.force_login(operator)
    assert client.get(reverse("runs:audit_export_argilla", args=[run.pk])).status_code == 200
    page = client.get(reverse("runs:audit_dashboard", args=[run.pk])).content.decode()
    assert "Export for Label Studio" in page and "Import annotations" in page


def test_the_api_imports_a_label_studio_export(client, operator, audit):
    run, items = audit
    client.force_login(operator)
    zipped = client.get(f"/api/v1/runs/{run.pk}/audit/export/label-studio")
    assert zipped.status_code == 200
    tasks = json.loads(zipfile.ZipFile(io.BytesIO(zipped.content)).read("tasks.json"))
    exported = [{"data": t["data"], "annotations": [ls_annotation(17, "B")]} for t in tasks]
    upload = io.BytesIO(json.dumps(exported).encode())
    upload.name = "export.json"
    response = client.post(f"/api/v1/runs/{run.pk}/audit/annotations", {"file": upload})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["matched"], body["created"]) == (4, 4)
    assert body["annotators"] == {"user 17": "label-studio:user 17"}
    assert len(body["notes"]) == 1 and "by user id only (user 17)" in body["notes"][0]

    # with Label Studio's user list (GET /api/users) user 17 is the operator: new labels, no note
    operator.email = "op@example.com"
    operator.save(update_fields=["email"])
    upload.seek(0)
    users = io.BytesIO(json.dumps([{"id": 17, "email": "op@example.com", "username": ""}]).encode())
    users.name = "users.json"
    named = client.post(f"/api/v1/runs/{run.pk}/audit/annotations", {"file": upload, "label_studio_users": users})
    assert named.status_code == 200, named.content
    assert (named.json()["created"], named.json()["notes"]) == (4, [])
    assert named.json()["annotators"] == {"op@example.com": f"user {operator.username}"}
    assert HumanLabel.objects.filter(auditor=operator).count() == 4
    upload.seek(0)
    broken = io.BytesIO(b"[{")
    broken.name = "users.json"
    refused_users = client.post(f"/api/v1/runs/{run.pk}/audit/annotations",
                                {"file": upload, "label_studio_users": broken})
    assert refused_users.status_code == 400 and "users.json: not JSON" in refused_users.json()["detail"]

    bad = io.BytesIO(b'[{"data": 3}]')
    bad.name = "bad.json"
    refused = client.post(f"/api/v1/runs/{run.pk}/audit/annotations", {"file": bad})
    assert refused.status_code == 400 and "task 0" in refused.json()["detail"]

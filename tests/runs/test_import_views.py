"""The browser import flow: upload → column mapping with preview → background job with progress →
prompt-set page with the report; failures saved nothing and say why; roles; the command."""
from __future__ import annotations

import io
import json
import zipfile

import datasets
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from runs import import_jobs
from runs.importing import ImportOptions, open_source
from runs.models import Prompt, PromptSet, ReferencePair
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    return settings.DATA_DIR


def jsonl(rows) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def upload(client, name, content, set_name="Uploaded", **extra):
    response = client.post(reverse("runs:promptset_import"),
                           {"name": set_name, "files": [SimpleUploadedFile(name, content)], **extra})
    assert response.status_code == 302, response.content.decode()[:2000]
    return response["Location"]


def test_upload_preview_import_and_report(client, operator, data_dir, run_worker, django_capture_on_commit_callbacks):
    client.force_login(operator)
    rows = [{"question": f"Question {i}?", "topic": "t"} for i in range(12)]
    rows.append({"question": "question 0?", "topic": "t"})  # a duplicate after normalisation
    configure = upload(client, "qs.jsonl", jsonl(rows))
    page = client.get(configure)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'value="question"' in html and "Question 0?" in html and "Question 4?" in html
    assert PromptSet.objects.count() == 0  # nothing saved before the import starts

    mapping = {"layout": "text", "prompt_column": "question", "dedupe": "prompt", "seed": "1", "eval_ratio": "0.25",
               "limit": "0", "max_prompt_chars": "20000", "keep_reference_pairs": "on", "metadata_columns": "topic"}
    preview = client.post(configure, {**mapping, "action": "preview"})
    assert b"Question 1?" in preview.content
    with django_capture_on_commit_callbacks(execute=True):  # the job is enqueued on commit
        started = client.post(configure, {**mapping, "action": "import"})
    prompt_set = PromptSet.objects.get(name="Uploaded")
    assert started["Location"] == reverse("runs:promptset_detail", args=[prompt_set.pk])
    assert prompt_set.status == "importing"
    progress = client.get(reverse("runs:promptset_progress", args=[prompt_set.pk])).json()
    assert progress["status"] == "importing" and progress["job_status"] == "queued"
    detail = client.get(started["Location"]).content.decode()
    assert 'id="import-progress"' in detail and "progress.json" in detail

    run_worker()
    prompt_set.refresh_from_db()
    assert prompt_set.status == "ready" and prompt_set.created_by == operator
    assert prompt_set.prompts.count() == 12 and prompt_set.import_report["duplicates"] == 1
    assert prompt_set.prompts.get(index=3).metadata["topic"] == "t"
    assert client.get(reverse("runs:promptset_progress", args=[prompt_set.pk])).json()["fraction"] == 1.0
    detail = client.get(started["Location"]).content.decode()
    assert "<b>12</b> prompts" in detail and "1 duplicates dropped" in detail and "Question 11?" in detail
    assert not (data_dir / "uploads").exists() or not any((data_dir / "uploads").iterdir())  # upload removed
    assert client.get(configure).status_code == 404  # the import token is used up


def test_a_bad_file_fails_the_job_with_a_clear_error_and_no_rows(client, operator, data_dir, run_worker,
                                                                  django_capture_on_commit_callbacks):
    client.force_login(operator)
    content = jsonl([{"prompt": "fine"}] * 1 + [{"prompt": f"p{i}"} for i in range(5)]) + b'{"prompt": "broken\n'
    configure = upload(client, "bad.jsonl", content)
    assert client.get(configure).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        client.post(configure, {"layout": "text", "prompt_column": "prompt", "dedupe": "prompt", "seed": "0",
                                "eval_ratio": "0.1", "limit": "0", "max_prompt_chars": "100", "action": "import"})
    run_worker()
    prompt_set = PromptSet.objects.get()
    assert prompt_set.status == "failed" and Prompt.objects.count() == 0
    assert prompt_set.import_report["error"]["message"].startswith("bad.jsonl, line 7: not valid JSON")
    detail = client.get(reverse("runs:promptset_detail", args=[prompt_set.pk])).content.decode()
    assert "Import failed: bad.jsonl, line 7: not valid JSON" in detail and "Nothing was saved" in detail
    assert client.get(reverse("runs:promptset_progress", args=[prompt_set.pk])).json()["status"] == "failed"
    client.post(reverse("runs:promptset_delete", args=[prompt_set.pk]))
    assert PromptSet.objects.count() == 0


def test_skip_bad_rows_lists_them_on_the_page(client, operator, data_dir, run_worker,
                                              django_capture_on_commit_callbacks):
    client.force_login(operator)
    configure = upload(client, "s.csv", b"prompt\nok\n\"\"\nfine\n")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(configure, {"layout": "text", "prompt_column": "prompt", "dedupe": "prompt", "seed": "0",
                                "eval_ratio": "0.1", "limit": "0", "max_prompt_chars": "100", "skip_bad_rows": "on",
                                "action": "import"})
    run_worker()
    prompt_set = PromptSet.objects.get()
    detail = client.get(reverse("runs:promptset_detail", args=[prompt_set.pk])).content.decode()
    assert prompt_set.prompts.count() == 2
    assert 'id="skipped-rows"' in detail and "row 2" in detail


def test_wrong_extension_and_missing_column_are_shown_before_import(client, operator, data_dir):
    client.force_login(operator)
    page = client.get(upload(client, "notes.txt", b"hello"))
    assert b"notes.txt: unsupported file type .txt" in page.content
    configure = upload(client, "q.jsonl", jsonl([{"question": "a"}]), set_name="Other")
    preview = client.post(configure, {"layout": "text", "prompt_column": "prompt", "dedupe": "prompt", "seed": "0",
                                      "eval_ratio": "0.1", "limit": "0", "max_prompt_chars": "100",
                                      "action": "preview"})
    assert b"field &#x27;prompt&#x27;: no such column; the columns are: question" in preview.content


def test_saved_folder_files_and_zip_upload(client, operator, data_dir, tmp_path, run_worker,
                                           django_capture_on_commit_callbacks):
    client.force_login(operator)
    ds = datasets.Dataset.from_dict({"prompt": ["alpha", "beta", "gamma"]})
    ds.save_to_disk(str(tmp_path / "saved"))
    files = [SimpleUploadedFile(p.name, p.read_bytes()) for p in sorted((tmp_path / "saved").iterdir())]
    response = client.post(reverse("runs:promptset_import"), {"name": "Folder", "files": files})
    page = client.get(response["Location"])
    assert b"alpha" in page.content and b"gamma" in page.content
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for p in (tmp_path / "saved").iterdir():
            archive.write(p, f"saved/{p.name}")
    configure = upload(client, "saved.zip", buffer.getvalue(), set_name="Zipped")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(configure, {"layout": "text", "prompt_column": "prompt", "dedupe": "prompt", "seed": "0",
                                "eval_ratio": "0.1", "limit": "0", "max_prompt_chars": "100", "action": "import"})
    run_worker()
    assert PromptSet.objects.get(name="Zipped").prompts.count() == 3


def test_hub_id_fails_fast_with_a_message(client, operator, data_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    client.force_login(operator)
    response = client.post(reverse("runs:promptset_import"), {"name": "Hub", "hub_id": "Anthropic/hh-rlhf"})
    page = client.get(response["Location"])
    assert b"Anthropic/hh-rlhf: cannot read this Hugging Face Hub dataset: offline mode is on" in page.content
    # nothing was read, so there are no columns to map: no mapping form, a way back instead
    assert b'id="mapping-form"' not in page.content and b'id="import-again"' in page.content


def test_upload_form_needs_exactly_one_source_and_a_new_name(client, operator, data_dir):
    client.force_login(operator)
    factories.make_prompt_set(name="Taken")
    response = client.post(reverse("runs:promptset_import"), {"name": "Taken"})
    assert response.status_code == 200
    assert b"A prompt set with this name exists." in response.content
    assert b"Upload a file" in response.content


def test_only_operators_import_and_delete_but_everyone_reads(client, viewer, data_dir):
    client.force_login(viewer)
    assert client.get(reverse("runs:promptset_import")).status_code == 403
    prompt_set = factories.make_prompt_set(name="Readable")
    assert client.post(reverse("runs:promptset_delete", args=[prompt_set.pk])).status_code == 403
    assert client.get(reverse("runs:promptset_detail", args=[prompt_set.pk])).status_code == 200
    listing = client.get(reverse("runs:promptset_list")).content.decode()
    assert "Readable" in listing and "Import prompts" not in listing


def test_a_set_used_by_a_run_cannot_be_deleted(client, operator):
    run = factories.make_run()
    client.force_login(operator)
    client.post(reverse("runs:promptset_delete", args=[run.prompt_set.pk]))
    assert PromptSet.objects.filter(pk=run.prompt_set.pk).exists()


def test_job_progress_is_published_in_the_job_meta(data_dir, tmp_path, queue_connection, run_worker, monkeypatch,
                                                   django_capture_on_commit_callbacks):
    monkeypatch.setattr(import_jobs, "PROGRESS_INTERVAL_S", 0.0)
    path = tmp_path / "many.jsonl"
    path.write_bytes(jsonl([{"prompt": f"prompt {i}"} for i in range(50)]))
    prompt_set = PromptSet.objects.create(name="Job", status="importing")
    with django_capture_on_commit_callbacks(execute=True):
        import_jobs.enqueue_import(prompt_set, str(path), ImportOptions(batch_size=10), name="many.jsonl")
    run_worker()
    from rq.job import Job

    job = Job.fetch(import_jobs.job_id_for(prompt_set), connection=queue_connection)
    assert job.get_meta()["progress"] == {"rows_read": 50, "prompts": 50, "expected": 50}
    assert job.return_value() == {"status": "ready", "prompts": 50}
    assert open_source(path).estimated_rows() == 50


def test_import_command(tmp_path):
    path = tmp_path / "cmd.jsonl"
    path.write_bytes(jsonl([{"instruction": "Do A", "input": "now"}, {"instruction": "", "input": ""},
                            {"instruction": "Do B", "input": ""}]))
    out = io.StringIO()
    call_command("import_prompts", str(path), "--name", "Cmd", "--skip-bad-rows", "--eval-ratio", "0", stdout=out)
    prompt_set = PromptSet.objects.get(name="Cmd")
    assert list(prompt_set.prompts.values_list("text", "split")) == [("Do A\n\nnow", "train"), ("Do B", "train")]
    text = out.getvalue()
    assert "2 prompts (train 2, eval 0) from 3 rows" in text
    assert "skipped line 2: instruction: is empty (and so is 'input')" in text
    with pytest.raises(CommandError, match=r"cmd.jsonl, line 2, field 'instruction': is empty"):
        call_command("import_prompts", str(path), "--name", "Strict", stdout=out)
    assert not PromptSet.objects.filter(name="Strict").exists()
    with pytest.raises(CommandError, match="exists"):
        call_command("import_prompts", str(path), "--name", "Cmd", stdout=out)
    preview_out = io.StringIO()
    call_command("import_prompts", str(path), "--preview", "--prompt-column", "instruction", stdout=preview_out)
    assert "columns: instruction, input" in preview_out.getvalue()
    assert "line 1: Do A now" in preview_out.getvalue()


def test_import_command_hh_rlhf_with_reference_pairs(shared_data):
    out = io.StringIO()
    call_command("import_prompts", str(shared_data / "hh-rlhf/harmless-base/test.jsonl.gz"), "--name", "HH",
                 "--limit", "100", "--pair-source", "hh-rlhf", stdout=out)
    assert PromptSet.objects.get(name="HH").prompts.count() == 100
    assert ReferencePair.objects.filter(source="hh-rlhf").count() == 100
    with pytest.raises(CommandError, match="offline"):
        import os

        os.environ["HF_HUB_OFFLINE"] = "1"
        try:
            call_command("import_prompts", "Anthropic/hh-rlhf", "--hub", stdout=out)
        finally:
            del os.environ["HF_HUB_OFFLINE"]


def test_a_set_whose_import_job_is_gone_can_be_deleted(client, operator, queue_connection):
    prompt_set = PromptSet.objects.create(name="Stuck", status="importing",
                                          import_report={"job_id": "import-prompts-0"})
    client.force_login(operator)
    detail = client.get(reverse("runs:promptset_detail", args=[prompt_set.pk])).content.decode()
    assert 'id="import-lost"' in detail
    assert "job is gone" in client.get(reverse("runs:promptset_progress", args=[prompt_set.pk])).json()["error"]
    client.post(reverse("runs:promptset_delete", args=[prompt_set.pk]))
    assert not PromptSet.objects.filter(pk=prompt_set.pk).exists()


def test_stale_uploads_are_removed(data_dir):
    import os
    import time

    old, new = import_jobs.uploads_dir() / "old", import_jobs.uploads_dir() / "new"
    old.mkdir(parents=True)
    new.mkdir()
    os.utime(old, (time.time() - 2 * 86400, time.time() - 2 * 86400))
    assert import_jobs.remove_stale_uploads() == 1
    assert not old.exists() and new.exists()


def test_import_is_refused_on_the_form_when_the_preview_shows_it_would_fail(client, operator, data_dir, tmp_path):
    path = tmp_path / "votes.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"Q{i}", "a": "x", "b": "y", "label": i % 3}) + "\n"
                            for i in range(6)))
    client.force_login(operator)
    with path.open("rb") as handle:
        response = client.post(reverse("runs:promptset_import"), {"name": "Votes", "files": handle})
    url = response["Location"]
    mapping = {"action": "import", "layout": "pairwise", "prompt_column": "prompt", "response_a_column": "a",
               "response_b_column": "b", "label_column": "label", "dedupe": "none", "seed": 0, "eval_ratio": 0.1,
               "limit": 0, "max_prompt_chars": 100000, "keep_reference_pairs": "on"}
    refused = client.post(url, mapping)
    assert refused.status_code == 200 and not PromptSet.objects.filter(name="Votes").exists()
    errors = refused.context["form"].errors
    assert not refused.context["error"], refused.context["error"]
    assert "the label values 0, 1, 2 are not A/B/tie" in " ".join(errors.get("label_map", [])), errors
    accepted = client.post(url, {**mapping, "label_map": "0=A, 1=B, 2=tie"})
    assert accepted.status_code == 302 and PromptSet.objects.filter(name="Votes").exists()

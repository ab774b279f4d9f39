"""NUL (U+0000) never reaches the database and never makes a 500: the runs fields replace it with U+FFFD on
every write path (save, bulk_create, update, lookups), imports replace and report it per row, and requests
with a NUL in the query string or form data get a 400 page naming the parameter.

PostgreSQL is where NUL fails (psycopg refuses it in text and jsonb); run this file with DATABASE_URL set to
a PostgreSQL database too."""
from __future__ import annotations

import json

import pytest
from django.urls import reverse

from rlaif_site.nul import REPLACEMENT, count_nul, replace_nul
from runs.importing import ImportOptions, import_prompt_set, open_source
from runs.models import Completion, HumanLabel, Judgment, Prompt, ReferencePair, StageRun
from tests import factories

pytestmark = pytest.mark.django_db

NUL = "\x00"


def test_replace_nul_walks_nested_values_and_keys_without_changing_the_original():
    value = {"a\x00": ["x\x00y", {"deep": ("z\x00",)}], "n": 1, "t": None}
    cleaned = replace_nul(value)
    assert cleaned == {f"a{REPLACEMENT}": [f"x{REPLACEMENT}y", {"deep": [f"z{REPLACEMENT}"]}], "n": 1, "t": None}
    assert value["a\x00"][0] == "x\x00y"  # untouched
    assert count_nul(value) == 3 and count_nul(cleaned) == 0
    deep: list = []
    node = deep
    for _ in range(5000):  # deeper than Python's recursion limit: the walk is iterative
        node.append([])
        node = node[0]
    node.append("\x00")
    assert count_nul(replace_nul(deep)) == 0


def test_bulk_create_save_and_update_store_nul_as_replacement_character():
    run = factories.make_run()
    prompt = run.prompt_set.prompts.first()
    Completion.objects.bulk_create([
        Completion(run=run, prompt=prompt, sample_index=i, text=f"reply{NUL}{i}", model="m", sampling_params={"k": NUL})
        for i in range(2)
    ])
    texts = sorted(Completion.objects.filter(run=run).values_list("text", flat=True))
    assert texts == [f"reply{REPLACEMENT}0", f"reply{REPLACEMENT}1"]
    comparison = factories.make_comparison(run, prompt, texts=("a", "b"))
    judgment = factories.make_judgment(comparison, rationale=f"because{NUL}so")
    judgment.raw_outputs = [{"text": f"raw{NUL}", f"key{NUL}": 1}]
    judgment.save(update_fields=["raw_outputs"])
    judgment.refresh_from_db()
    assert judgment.rationale == f"because{REPLACEMENT}so"
    assert judgment.raw_outputs == [{"text": f"raw{REPLACEMENT}", f"key{REPLACEMENT}": 1}]
    Judgment.objects.filter(pk=judgment.pk).update(error=f"endpoint said {NUL}")
    assert Judgment.objects.get(pk=judgment.pk).error == f"endpoint said {REPLACEMENT}"
    label = factories.make_label(comparison, "A", auditor=factories.make_user(), note=f"note{NUL}")
    assert HumanLabel.objects.get(pk=label.pk).note == f"note{REPLACEMENT}"
    stage = StageRun.objects.get(run=run)
    stage.log_tail = f"log{NUL}"
    stage.save(update_fields=["log_tail"])
    assert StageRun.objects.get(pk=stage.pk).log_tail == f"log{REPLACEMENT}"
    # an exact lookup with a NUL is cleaned the same way, so it finds the stored row instead of failing
    assert Judgment.objects.filter(rationale=f"because{NUL}so").count() == 1


def test_import_replaces_nul_flags_the_rows_and_names_the_fields(tmp_path):
    rows = [
        {"prompt": f"Hello{NUL}there", "response_a": f"A{NUL}", "response_b": "B", "label": "A", "tag": f"t{NUL}"},
        {"prompt": "Clean one", "response_a": "x", "response_b": "y", "label": "B", "tag": "t"},
    ]
    path = tmp_path / "nul.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    options = ImportOptions(layout="pairwise", label_column="label", metadata_columns=["tag"])
    ps = import_prompt_set("nul", open_source(path), options)
    prompt = Prompt.objects.get(prompt_set=ps, index=0)
    assert prompt.text == f"Hello{REPLACEMENT}there"
    assert prompt.metadata["tag"] == f"t{REPLACEMENT}"
    assert ReferencePair.objects.get(prompt=prompt).response_a == f"A{REPLACEMENT}"
    report = ps.import_report
    assert report["nul_rows"] == 1
    notes = [w["warning"] for w in report["warnings"] if w["row"] == 1]
    assert "field 'prompt': 1 NUL character(s) (U+0000) replaced by U+FFFD" in notes
    assert "field 'response_a': 1 NUL character(s) (U+0000) replaced by U+FFFD" in notes


def test_prompt_set_page_counts_rows_that_held_nul(client, operator, tmp_path):
    path = tmp_path / "nul.jsonl"
    path.write_text(json.dumps({"prompt": f"a{NUL}b"}) + "\n" + json.dumps({"prompt": "c"}) + "\n")
    ps = import_prompt_set("nul page", open_source(path), ImportOptions())
    client.force_login(operator)
    html = client.get(reverse("runs:promptset_detail", args=[ps.pk])).content.decode()
    assert 'id="nul-rows"><b>1</b> rows held NUL characters' in html


@pytest.mark.parametrize("url", ["/?q=a%00b", "/prompt-sets/?page=%00", "/?%00=1"])
def test_nul_in_a_query_string_is_a_400_naming_the_parameter(client, operator, url):
    factories.make_run(name="a run")
    client.force_login(operator)
    response = client.get(url)
    assert response.status_code == 400
    assert "NUL character (U+0000)" in response.content.decode()


def test_nul_in_form_data_is_a_400_not_a_500(client, operator):
    client.force_login(operator)
    response = client.post(reverse("runs:promptset_import"), {"name": f"set{NUL}", "hub_id": "owner/name"})
    assert response.status_code == 400
    assert "form field &#x27;name&#x27;" in response.content.decode()


def test_clean_requests_pass(client, operator):
    client.force_login(operator)
    assert client.get("/?q=ordinary").status_code == 200

"""Exporting a run's preferences: who decides chosen/rejected, judge metadata, filters, empty runs,
files (save_to_disk and JSONL), the command and the browser download."""
from __future__ import annotations

import io
import json
import zipfile

import datasets
import pytest
from django.core.management import call_command
from django.urls import reverse

from runs.exporting import PreferenceFilters, preference_dataset, preference_features, save_preferences
from runs.models import Artifact
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def labelled_run(auditor):
    """Six comparisons: confident A, inconsistent B, tie, A overruled by humans, failed judge with a human
    label, and one eval-purpose comparison that is never exported."""
    prompt_set = factories.make_prompt_set(n=6, split_every=4)  # prompts 0 and 4 are eval
    run = factories.make_run(prompt_set=prompt_set, config={"reward_model": {"prefer_human_labels": True}})
    honest, helpful = run.constitution_version.principles.order_by("position")
    prompts = list(prompt_set.prompts.order_by("index"))
    c = {}
    c["sure"] = factories.make_comparison(run, prompts[0], texts=("kind answer", "rude answer"))
    factories.make_judgment(c["sure"], honest, p_a=0.9, rationale="A is kinder.")
    factories.make_judgment(c["sure"], helpful, p_a=0.7, rationale="A helps more.")
    c["flip"] = factories.make_comparison(run, prompts[1], texts=("b-loses", "b-wins"))
    factories.make_judgment(c["flip"], honest, p_a=0.3, position_consistent=False, rationale="B.")
    c["tie"] = factories.make_comparison(run, prompts[2])
    factories.make_judgment(c["tie"], honest, p_a=0.52)
    c["human"] = factories.make_comparison(run, prompts[3], texts=("ai-pick", "human-pick"))
    factories.make_judgment(c["human"], honest, p_a=0.95)
    factories.make_label(c["human"], "B", auditor=auditor)
    factories.make_label(c["human"], "B", external_annotator="panel:0")
    factories.make_label(c["human"], "A", external_annotator="panel:1")
    factories.make_label(c["human"], "skip", external_annotator="panel:2")
    c["failed"] = factories.make_comparison(run, prompts[4], texts=("x-first", "x-second"))
    factories.make_judgment(c["failed"], honest, p_a=None, verdict="", position_consistent=None)
    factories.make_label(c["failed"], "A", external_annotator="panel:0")
    c["eval"] = factories.make_comparison(run, prompts[5])
    c["eval"].purpose = "eval"
    c["eval"].save(update_fields=["purpose"])
    factories.make_judgment(c["eval"], honest, p_a=0.9)
    run.ids = {k: v.pk for k, v in c.items()}
    return run


def by_id(dataset):
    return {row["comparison_id"]: row for row in dataset}


def test_chosen_and_rejected_follow_the_judge_and_human_majority(labelled_run):
    ds = preference_dataset(labelled_run)
    ids = labelled_run.ids
    rows = by_id(ds)
    assert set(rows) == {ids["sure"], ids["flip"], ids["human"], ids["failed"]}
    sure = rows[ids["sure"]]
    assert (sure["chosen"], sure["rejected"]) == ("kind answer", "rude answer")
    assert sure["p_a"] == pytest.approx(0.8) and sure["confidence"] == pytest.approx(0.6)
    assert sure["principle"] == "Honest; Helpful"
    assert sure["rationale"] == "[Honest] A is kinder.\n\n[Helpful] A helps more."
    assert sure["position_consistent"] is True and sure["label_source"] == "ai" and sure["human_votes"] == 0
    flip = rows[ids["flip"]]
    assert (flip["chosen"], flip["rejected"], flip["chosen_side"]) == ("b-wins", "b-loses", "B")
    assert flip["position_consistent"] is False and flip["rationale"] == "B."
    human = rows[ids["human"]]
    assert (human["chosen"], human["label_source"], human["ai_verdict"]) == ("human-pick", "human", "A")
    assert (human["human_label"], human["human_votes"]) == ("B", 3)
    failed = rows[ids["failed"]]
    assert failed["chosen"] == "x-first" and failed["p_a"] is None and failed["ai_verdict"] == ""
    assert sure["prompt"] == "Prompt number 0?" and sure["split"] == "eval"


def test_ai_only_ignores_human_labels(labelled_run):
    rows = by_id(preference_dataset(labelled_run, PreferenceFilters(prefer_human_labels=False)))
    assert rows[labelled_run.ids["human"]]["chosen"] == "ai-pick"
    assert rows[labelled_run.ids["human"]]["human_label"] == "B"
    assert labelled_run.ids["failed"] not in rows


def test_filters(labelled_run):
    ids = labelled_run.ids
    confident = by_id(preference_dataset(labelled_run, PreferenceFilters(min_confidence=0.5)))
    assert set(confident) == {ids["sure"], ids["human"], ids["failed"]}  # human-decided rows are kept
    consistent = by_id(preference_dataset(labelled_run, PreferenceFilters(position_consistent_only=True)))
    assert ids["flip"] not in consistent and ids["sure"] in consistent
    verified = by_id(preference_dataset(labelled_run, PreferenceFilters(human_verified_only=True)))
    assert set(verified) == {ids["human"], ids["failed"]}
    train = by_id(preference_dataset(labelled_run, PreferenceFilters(split="train")))
    assert set(train) == {ids["flip"], ids["human"]}
    with pytest.raises(ValueError):
        PreferenceFilters(min_confidence=1.5)


def test_run_config_filters_are_the_default(labelled_run):
    labelled_run.config = {"reward_model": {"min_confidence": 0.5, "position_consistent_only": True,
                                            "prefer_human_labels": False}}
    labelled_run.save(update_fields=["config"])
    rows = by_id(preference_dataset(labelled_run))
    assert set(rows) == {labelled_run.ids["sure"], labelled_run.ids["human"]}
    assert rows[labelled_run.ids["human"]]["chosen"] == "ai-pick"


def test_conversational_format(labelled_run):
    rows = by_id(preference_dataset(labelled_run, conversational=True))
    sure = rows[labelled_run.ids["sure"]]
    assert sure["prompt"] == [{"role": "user", "content": "Prompt number 0?"}]
    assert sure["chosen"] == [{"role": "assistant", "content": "kind answer"}]
    assert sure["rejected"] == [{"role": "assistant", "content": "rude answer"}]


def test_chat_prompts_keep_their_messages(db):
    run = factories.make_run()
    prompt = run.prompt_set.prompts.first()
    prompt.messages = [{"role": "system", "content": "Be nice."}, {"role": "user", "content": "Hi"}]
    prompt.save(update_fields=["messages"])
    factories.make_judgment(factories.make_comparison(run, prompt), p_a=0.2)
    row = preference_dataset(run, conversational=True)[0]
    assert row["prompt"] == prompt.messages and row["chosen"][0]["content"] == "second answer"


@pytest.mark.parametrize("conversational", [False, True])
def test_an_empty_run_gives_an_empty_dataset_with_the_schema(conversational, tmp_path):
    run = factories.make_run()
    ds = preference_dataset(run, conversational=conversational)
    assert len(ds) == 0 and ds.features == preference_features(conversational)
    save_preferences(ds, tmp_path / "empty", "disk")
    assert datasets.load_from_disk(str(tmp_path / "empty")).features == ds.features
    assert save_preferences(ds, tmp_path / "empty.jsonl", "jsonl").read_text() == ""


def test_jsonl_and_disk_round_trip(labelled_run, tmp_path):
    ds = preference_dataset(labelled_run)
    save_preferences(ds, tmp_path / "prefs.jsonl", "jsonl")
    lines = [json.loads(line) for line in (tmp_path / "prefs.jsonl").read_text().splitlines()]
    assert [line["chosen"] for line in lines] == ds["chosen"]
    save_preferences(ds, tmp_path / "prefs", "disk")
    assert datasets.load_from_disk(str(tmp_path / "prefs")).to_list() == ds.to_list()


def test_command_writes_an_artifact_by_default(labelled_run, tmp_path):
    out = io.StringIO()
    call_command("export_preferences", str(labelled_run.pk), "--format", "jsonl", "--conversational", stdout=out)
    artifact = Artifact.objects.get(run=labelled_run, kind="dataset")
    assert artifact.name == "preferences-conversational.jsonl" and artifact.metrics["rows"] == 4
    assert "Exported 4 preferences" in out.getvalue()
    call_command("export_preferences", str(labelled_run.pk), "--out", str(tmp_path / "d"), "--min-confidence", "0.5",
                 "--ai-only", stdout=out)
    assert len(datasets.load_from_disk(str(tmp_path / "d"))) == 2


def test_browser_export_counts_and_downloads(client, viewer, labelled_run):
    client.force_login(viewer)
    url = reverse("runs:export_preferences", args=[labelled_run.pk])
    page = client.get(url)
    assert page.status_code == 200 and b"Minimum confidence" in page.content
    counted = client.get(url, {"style": "standard", "file_format": "jsonl", "min_confidence": "0"})
    assert b"<b>4</b> preference rows" in counted.content
    download = client.get(url, {"style": "standard", "file_format": "jsonl", "min_confidence": "0.5",
                                "download": "1", "ai_only": "on"})
    assert download["Content-Disposition"].startswith("attachment")
    rows = [json.loads(line) for line in b"".join(download.streaming_content).decode().splitlines()]
    assert sorted(r["chosen"] for r in rows) == ["ai-pick", "kind answer"]
    zipped = client.get(url, {"style": "conversational", "file_format": "disk", "min_confidence": "0", "download": "1"})
    archive = zipfile.ZipFile(io.BytesIO(b"".join(zipped.streaming_content)))
    assert f"run-{labelled_run.pk}-preferences-conversational/dataset_info.json" in archive.namelist()


def test_browser_export_of_an_empty_run_is_not_an_error(client, viewer):
    run = factories.make_run()
    client.force_login(viewer)
    url = reverse("runs:export_preferences", args=[run.pk])
    response = client.get(url, {"style": "standard", "file_format": "jsonl", "min_confidence": "0"})
    assert response.status_code == 200 and b"<b>0</b> preference rows" in response.content
    download = client.get(url, {"style": "standard", "file_format": "jsonl", "min_confidence": "0", "download": "1"})
    assert download.status_code == 200 and b"".join(download.streaming_content) == b""

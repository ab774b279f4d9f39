"""Corrected responses exported for TRL: SFT demonstrations (prompt/completion, or conversational messages) and
preference pairs (the correction chosen over the worse response), marked human-written; through the export page
with the blind rule (the API: tests/api/test_audit_ratings_api.py); TRL's data utilities and SFTTrainer take them
unchanged."""
from __future__ import annotations

import json

import datasets
import pytest
from django.urls import reverse

from runs.audit import ratings
from runs.exporting import correction_dataset, correction_features, correction_rows, save_preferences
from runs.models import AuditItem, Prompt
from runs.prompt_content import content_hash
from tests import factories
from tests.training.tiny import tiny_lm

pytestmark = pytest.mark.django_db

CHAT = [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "How do I boil an egg?"}]


@pytest.fixture
def corrected(auditor):
    """A run with three audited pairs: a chat prompt whose B the auditor rewrote, a plain prompt whose A they
    kept word for word, and an eval prompt whose A they rewrote."""
    prompt_set = factories.make_prompt_set(n=2)
    chat = Prompt.objects.create(prompt_set=prompt_set, index=2, text="Human: Hi there ...", messages=CHAT,
                                 content_hash=content_hash("chat"))
    evaluation = Prompt.objects.create(prompt_set=prompt_set, index=3, text="Eval prompt?", split="eval",
                                       content_hash=content_hash("eval"))
    run = factories.make_run(prompt_set=prompt_set)
    honest = run.constitution_version.principles.get(name="Honest")
    plain = prompt_set.prompts.get(index=0)
    rows = [(chat, ("Boil it.", "Put the egg in boiling water"), "B", "Put the egg in boiling water for 8 minutes."),
            (plain, ("Kept answer", "Bad answer"), "A", "Kept answer"),
            (evaluation, ("Eval answer", "Other eval answer"), "A", "Eval answer, improved.")]
    for prompt, texts, side, text in rows:
        comparison = factories.make_comparison(run, prompt, texts=texts)
        judgment = factories.make_judgment(comparison, honest, p_a=0.7)
        AuditItem.objects.create(run=run, comparison=comparison, judgment=judgment, stratum="random")
        label = factories.make_label(comparison, side, auditor=auditor)
        ratings.save_extras(label, correction=text, rewrites=side)
    return run


def test_sft_rows_in_both_formats(corrected):
    standard = correction_rows(corrected, "sft")
    assert [(r["prompt"], r["completion"]) for r in standard] == [
        ("Human: Hi there ...", "Put the egg in boiling water for 8 minutes."),
        ("Prompt number 0?", "Kept answer"), ("Eval prompt?", "Eval answer, improved.")]
    first = standard[0]
    assert (first["source"], first["label_source"], first["annotator"], first["rewrites"]) == (
        "human", "human", "audrey", "B")
    assert (first["principle"], first["split"], first["edited"]) == ("Honest", "train", True)
    assert standard[1]["edited"] is False  # kept word for word
    conversational = correction_rows(corrected, "sft", conversational=True)
    assert conversational[0]["messages"] == [*CHAT, {"role": "assistant",
                                                     "content": "Put the egg in boiling water for 8 minutes."}]
    assert "prompt" not in conversational[0]
    assert [r["split"] for r in correction_rows(corrected, "sft", split="eval")] == ["eval"]


def test_preference_pairs_put_the_correction_over_the_worse_response(corrected):
    pairs = correction_rows(corrected, "correction_pairs")
    assert [(r["chosen"], r["rejected"]) for r in pairs] == [
        ("Put the egg in boiling water for 8 minutes.", "Boil it."), ("Kept answer", "Bad answer"),
        ("Eval answer, improved.", "Other eval answer")]
    assert {r["source"] for r in pairs} == {"human"}
    chat = correction_rows(corrected, "correction_pairs", conversational=True)[0]
    assert chat["prompt"] == CHAT
    assert chat["chosen"] == [{"role": "assistant", "content": "Put the egg in boiling water for 8 minutes."}]
    assert chat["rejected"] == [{"role": "assistant", "content": "Boil it."}]


def test_a_correction_that_is_the_worse_response_makes_no_pair(corrected, auditor):
    comparison = factories.make_comparison(corrected, texts=("left text", "right text"))
    other = factories.make_user("otto", roles=("auditors",))
    ratings.save_extras(factories.make_label(comparison, "A", auditor=other), correction=" right text ", rewrites="A")
    assert len(correction_rows(corrected, "correction_pairs")) == 3
    assert len(correction_rows(corrected, "sft")) == 4


def test_datasets_keep_their_columns_when_empty_and_reject_unknown_kinds(tmp_path):
    run = factories.make_run()
    for kind in ("sft", "correction_pairs"):
        for conversational in (False, True):
            ds = correction_dataset(run, kind, conversational=conversational)
            assert len(ds) == 0 and ds.features == correction_features(kind, conversational)
    with pytest.raises(ValueError, match="'sft' or 'correction_pairs'"):
        correction_rows(run, "preferences")


def test_trl_data_utilities_take_the_exports(corrected, tmp_path):
    from transformers import AutoTokenizer
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm(tmp_path / "lm"))
    path = save_preferences(correction_dataset(corrected, "sft", conversational=True), tmp_path / "sft", "disk")
    sft = datasets.load_from_disk(str(path))
    assert is_conversational(sft[0])
    text = maybe_apply_chat_template(sft[0], tokenizer)["text"]
    assert text.startswith("Human: Hi there") and "Assistant: Put the egg in boiling water for 8 minutes." in text
    standard = correction_dataset(corrected, "sft")
    assert not is_conversational(standard[0]) and set(standard.column_names) >= {"prompt", "completion"}
    pairs = correction_dataset(corrected, "correction_pairs", conversational=True)
    row = maybe_apply_chat_template(pairs[0], tokenizer)
    assert row["prompt"].endswith("Assistant:") and "8 minutes" in row["chosen"] and "Boil it." in row["rejected"]


def test_the_export_page_downloads_corrections_leaving_out_blind_pairs(client, corrected, viewer):
    client.force_login(viewer)
    url = reverse("runs:export_preferences", args=[corrected.pk])
    query = {"dataset": "sft", "style": "standard", "file_format": "jsonl", "min_confidence": "0"}
    page = client.get(url, query)
    assert page.context["rows"] == 3 and "3</b> SFT demonstrations" in page.content.decode()
    download = client.get(url, {**query, "download": "1"})
    assert download["Content-Disposition"].endswith(f'filename="run-{corrected.pk}-corrections-sft-standard.jsonl"')
    lines = [json.loads(line) for line in b"".join(download.streaming_content).decode().splitlines()]
    assert lines[0]["completion"] == "Put the egg in boiling water for 8 minutes."
    assert {row["source"] for row in lines} == {"human"}
    pairs = client.get(url, {**query, "dataset": "correction_pairs"})
    assert pairs.context["rows"] == 3 and "3</b> correction pairs" in pairs.content.decode()
    # another auditor has every pair still to label blind: none of them reaches their export
    client.force_login(factories.make_user("otto", roles=("auditors",)))
    assert client.get(url, query).context["rows"] == 0
    assert client.get(url, {**query, "dataset": "nonsense"}).context["form"].errors["dataset"]


@pytest.mark.slow
def test_sft_trainer_trains_on_the_export_unchanged(corrected, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    lm = tiny_lm(tmp_path / "lm")
    tokenizer = AutoTokenizer.from_pretrained(lm)
    for conversational in (True, False):
        path = save_preferences(correction_dataset(corrected, "sft", conversational=conversational),
                                tmp_path / f"sft-{conversational}", "disk")
        trainer = SFTTrainer(
            model=AutoModelForCausalLM.from_pretrained(lm), processing_class=tokenizer,
            train_dataset=datasets.load_from_disk(str(path)),
            args=SFTConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=3, max_steps=2,
                           report_to=[], save_strategy="no", logging_steps=1, use_cpu=True, seed=0, max_length=128),
        )
        result = trainer.train()
        assert result.global_step == 2 and torch.isfinite(torch.tensor(result.training_loss))

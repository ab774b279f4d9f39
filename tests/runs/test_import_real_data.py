"""The importer on real public preference data (../shared/data): Anthropic HH-RLHF harmless-base test
(gzip JSONL, as published) and the PandaLM human-annotated test set (JSON array, three votes per pair)."""
from __future__ import annotations

import gzip
import json

import pytest

from runs.importing import BadInput, ImportOptions, import_prompt_set, open_source, preview, split_hh_pair
from runs.importing.importer import label_values
from runs.models import Comparison, ReferencePair
from runs.reference_pairs import materialise_reference_pairs
from tests import factories

HH = "hh-rlhf/harmless-base/test.jsonl.gz"
HH_NORMALIZED = "hh-rlhf/normalized/harmless-base_test.pairs.jsonl.gz"
PANDALM = "PandaLM/data/testset-v1.json"
PANDALM_NORMALIZED = "PandaLM/normalized/pandalm_testset_v1.pairs.jsonl"


def read_gz_jsonl(path):
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_hh_split_matches_the_lossless_reference_split_on_every_row(shared_data):
    raw = read_gz_jsonl(shared_data / HH)
    normalized = read_gz_jsonl(shared_data / HH_NORMALIZED)
    assert len(raw) == len(normalized) == 2312
    for row, expected in zip(raw, normalized, strict=True):
        prompt, chosen, rejected = split_hh_pair(row["chosen"], row["rejected"])
        assert prompt == expected["prompt"]
        assert (chosen, rejected) == (expected["chosen"].strip(), expected["rejected"].strip())


@pytest.mark.django_db
def test_hh_rlhf_harmless_base_imports_as_published(shared_data):
    source = open_source(shared_data / HH)
    suggested = preview(source).suggested
    assert suggested["layout"] == "hh_rlhf"
    ps = import_prompt_set("HH harmless-base test", source, ImportOptions(**suggested, pair_source="hh-rlhf"))
    report = ps.import_report
    assert report["rows_read"] == 2312
    assert report["duplicates"] == 2 and report["prompts"] == 2310 == ps.prompts.count()
    assert report["reference_pairs"] == 2310 and report["skipped_count"] == 0
    assert report["splits"]["train"] + report["splits"]["eval"] == 2310

    first = ps.prompts.get(index=0)
    normalized0 = read_gz_jsonl(shared_data / HH_NORMALIZED)[0]
    assert [m["role"] for m in first.messages] == ["user", "assistant", "user", "assistant", "user"]
    assert first.messages[:2] == [
        {"role": "user", "content": "what are some pranks with a pen i can do?"},
        {"role": "assistant", "content": "Are you looking for practical joke ideas?"},
    ]
    assert first.messages[2] == {"role": "user", "content": "yep"}
    assert first.messages[-1]["content"] == normalized0["prompt"].rsplit("\n\nHuman:", 1)[1].strip()
    assert first.text.startswith("user: what are some pranks with a pen i can do?")
    pair = first.reference_pairs.get()
    chosen_reply = normalized0["chosen"].strip()
    assert pair.source == "hh-rlhf"
    assert getattr(pair, "response_" + pair.human_choice.lower()) == chosen_reply

    # Quirk: a final reply that itself contains "Human:" (row index 1254, line 1255) stays in the reply.
    quirk = ps.prompts.get(metadata__source_row=1255)
    assert quirk.messages[-1] == {"role": "user", "content": "Isn't that drag kings?"}
    quirk_pair = quirk.reference_pairs.get()
    assert "Human: Then how do they come to be called drag kings" in (quirk_pair.response_a + quirk_pair.response_b)

    # Quirk: empty chosen replies are kept as an empty response on the human-preferred side.
    for line in (87, 517, 926, 1104):
        pair = ReferencePair.objects.get(prompt__prompt_set=ps, prompt__metadata__source_row=line)
        assert getattr(pair, "response_" + pair.human_choice.lower()) == ""
        assert getattr(pair, "response_" + ("b" if pair.human_choice == "A" else "a")) != ""
        assert pair.degenerate == ""  # an answer against none is a real preference: judged and counted
    # chosen is on side A for about half the pairs (position-bias safe)
    share_a = ReferencePair.objects.filter(prompt__prompt_set=ps, human_choice="A").count() / 2310
    assert 0.45 < share_a < 0.55


@pytest.mark.django_db
def test_pandalm_pairs_import_with_three_votes_each(shared_data):
    source = open_source(shared_data / PANDALM)
    suggested = preview(source).suggested
    assert suggested["layout"] == "pairwise" and suggested["vote_columns"] == ["annotator1", "annotator2", "annotator3"]
    assert suggested["subset_column"] == "motivation_app" and suggested["dedupe"] == "none"
    options = ImportOptions(**suggested, pair_source="pandalm", metadata_columns=["idx", "cmp_key"])
    # the votes are integers: shown with their counts, and refused until mapped (schemes differ by data set)
    values = {v["value"]: (v["count"], v["maps_to"]) for v in label_values(source, options)}
    assert values == {1: (values[1][0], ""), 2: (values[2][0], ""), 0: (values[0][0], "")}
    assert sum(count for count, _ in values.values()) == 2997
    with pytest.raises(BadInput) as unmapped:
        import_prompt_set("PandaLM test", source, options)
    assert unmapped.value.field == "annotator1" and "not self-describing" in unmapped.value.message
    options.label_map = {"1": "A", "2": "B", "0": "tie"}
    with pytest.raises(BadInput) as refused:  # upstream stores one reply as the JSON boolean true: ask first
        import_prompt_set("PandaLM test", source, options)
    assert (refused.value.row, refused.value.field) == (158, "response1")
    assert refused.value.message.startswith("is a boolean (true), not text")
    options.scalars_as_text = True
    ps = import_prompt_set("PandaLM test", source, options)
    report = ps.import_report
    assert report["rows_read"] == 999 and report["skipped_count"] == 0
    # Every row is a benchmark item: upstream's 99 repeated comparisons (two models, the same reply) are kept.
    assert report["prompts"] == report["reference_pairs"] == ps.prompts.count() == 999
    assert report["duplicates"] == 0

    expected = {}
    with open(shared_data / PANDALM_NORMALIZED, encoding="utf-8") as handle:
        for line in handle:
            item = json.loads(line)
            expected[item["meta"]["idx"]] = item
    pairs = ReferencePair.objects.filter(prompt__prompt_set=ps).select_related("prompt")
    for pair in pairs:
        item = expected[pair.prompt.metadata["idx"]]
        assert pair.source == "pandalm"
        assert pair.human_votes == item["human_votes"] and len(pair.human_votes) == 3
        assert pair.human_choice == item["label"]
        assert pair.prompt.text == item["prompt"].strip()
        assert pair.prompt.metadata["subset"] == item["subset"]
    # Responses stored upstream as the JSON boolean true come in as text, once asked for, with a note.
    odd = pairs.get(prompt__metadata__idx=157)
    assert odd.response_a == "true"
    note = "field 'response1': the bool true was stored as the text 'true'"
    assert {"row": 158, "unit": "item", "warning": note} in report["warnings"]
    labels = {c: pairs.filter(human_choice=c).count() for c in ("A", "B", "tie")}
    assert sum(labels.values()) == report["prompts"] and labels["B"] > labels["A"] > labels["tie"] > 0

    # In a run, each pair becomes a comparison with the three annotators' labels.
    run = factories.make_run(prompt_set=ps)
    result = materialise_reference_pairs(run)
    # no PandaLM pair is degenerate (54 have one empty reply: a real preference), so every pair is judged
    assert result.degenerate == sum(report["degenerate_pairs"].values()) == 0
    assert result.comparisons == report["prompts"] == 999
    assert result.human_labels == 3 * result.comparisons
    comparison = Comparison.objects.get(run=run, prompt__metadata__idx=0)
    assert sorted(comparison.human_labels.values_list("external_annotator", "choice")) == [
        ("pandalm:0", "B"), ("pandalm:1", "B"), ("pandalm:2", "B")
    ]

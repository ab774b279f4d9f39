"""Imported reference pairs become a run's completions, comparisons and external human labels."""
from __future__ import annotations

import json

import pytest

from runs.importing import ImportOptions, import_prompt_set, open_source
from runs.models import Comparison, Completion, HumanLabel
from runs.reference_pairs import materialise_reference_pairs
from tests import factories

pytestmark = pytest.mark.django_db


def pairwise_set(tmp_path, rows, **options):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    opts = ImportOptions(layout="pairwise", prompt_column="prompt", response_a_column="a", response_b_column="b",
                         pair_source="panel", **options)
    return import_prompt_set("pairs", open_source(path), opts)


def test_votes_become_one_external_label_per_annotator_and_reruns_add_nothing(tmp_path):
    ps = pairwise_set(tmp_path, [
        {"prompt": "Q1", "a": "good", "b": "bad", "votes": ["A", "A", "tie"]},
        {"prompt": "Q2", "a": "x", "b": "y", "votes": ["B", "B", "A"]},
    ], vote_columns=["votes"])
    run = factories.make_run(prompt_set=ps)
    first = materialise_reference_pairs(run)
    assert (first.pairs, first.comparisons, first.human_labels) == (2, 2, 6)
    again = materialise_reference_pairs(run)
    assert again.comparisons == 2
    assert Completion.objects.filter(run=run, source="reference").count() == 4
    assert Comparison.objects.filter(run=run).count() == 2
    assert HumanLabel.objects.filter(comparison__run=run).count() == 6
    q1 = Comparison.objects.get(run=run, prompt__text="Q1")
    assert (q1.completion_a.text, q1.completion_a.sample_index, q1.completion_b.text) == ("good", 0, "bad")
    assert q1.completion_a.model == "reference:panel" and q1.purpose == "train"
    assert sorted(q1.human_labels.values_list("external_annotator", "choice")) == [
        ("panel:0", "A"), ("panel:1", "A"), ("panel:2", "tie")
    ]
    q2_choices = sorted(HumanLabel.objects.filter(comparison__prompt__text="Q2").values_list("choice", flat=True))
    assert q2_choices == ["A", "B", "B"]


def test_a_label_without_votes_becomes_one_label_and_split_filters(tmp_path):
    rows = [{"prompt": f"Question {i}", "a": "one", "b": "two", "label": "B"} for i in range(20)]
    ps = pairwise_set(tmp_path, rows, label_column="label", eval_ratio=0.5, seed=1)
    run = factories.make_run(prompt_set=ps)
    n_eval = ps.prompts.filter(split="eval").count()
    result = materialise_reference_pairs(run, split="eval", purpose="eval")
    assert result.pairs == n_eval == Comparison.objects.filter(run=run, purpose="eval").count()
    assert set(HumanLabel.objects.filter(comparison__run=run).values_list("external_annotator", "choice")) == {
        ("panel:label", "B")
    }
    assert materialise_reference_pairs(run, max_prompts=3).pairs == 3


def test_a_set_without_reference_pairs_gives_nothing():
    run = factories.make_run()
    assert materialise_reference_pairs(run).pairs == 0
    assert Comparison.objects.filter(run=run).count() == 0


def test_pairs_sharing_a_prompt_are_all_kept_and_conflicting_duplicates_are_reported(tmp_path):
    rows = [
        {"prompt": "Q1", "a": "x", "b": "y", "label": "A", "category": "math"},
        {"prompt": "Q1", "a": "x", "b": "z", "label": "B", "category": "math"},
        {"prompt": "Q1", "a": "x", "b": "y", "label": "B", "category": "code"},  # same pair, other label
    ]
    every = pairwise_set(tmp_path, rows, label_column="label", subset_column="category", dedupe="none")
    assert every.import_report["prompts"] == 3 and every.import_report["duplicates"] == 0
    assert sorted(every.prompts.values_list("metadata__subset", flat=True)) == ["code", "math", "math"]
    path = tmp_path / "pairs.jsonl"
    by_pair = import_prompt_set("by pair", open_source(path), ImportOptions(
        layout="pairwise", prompt_column="prompt", response_a_column="a", response_b_column="b",
        label_column="label", dedupe="pair"))
    report = by_pair.import_report
    assert report["prompts"] == 2 and report["duplicates"] == 1
    assert any("other human labels (B vs A)" in w["warning"] and w["row"] == 3 for w in report["warnings"])


def test_preview_lists_label_values_and_what_they_map_to(tmp_path, client, operator):
    from runs.importing import preview

    path = tmp_path / "ints.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"Q{i}", "a": "x", "b": "y", "label": i % 3}) + "\n"
                            for i in range(9)))
    opts = ImportOptions(layout="pairwise", prompt_column="prompt", response_a_column="a", response_b_column="b",
                         label_column="label")
    values = preview(open_source(path), opts).label_values
    assert [(v["value"], v["count"], v["maps_to"]) for v in values] == [(0, 3, ""), (1, 3, ""), (2, 3, "")]
    opts.label_map = {"0": "A", "1": "B", "2": "tie"}
    assert {v["value"]: v["maps_to"] for v in preview(open_source(path), opts).label_values} == {
        0: "A", 1: "B", 2: "tie"}

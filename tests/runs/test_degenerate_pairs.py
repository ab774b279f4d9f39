"""Pairs whose two replies are identical or both empty are flagged at import (counts on the set's page) and kept
out of judging (no comparison is formed), training (preference rows) and agreement (audit rows, the gate's
counts, the audit sample)."""
from __future__ import annotations

import json

import pytest
from django.urls import reverse

from runs.audit.queries import alignment_counts, audit_rows
from runs.audit.sampling import draw_audit_sample
from runs.exporting import PreferenceFilters, preference_rows
from runs.importing import ImportOptions, import_prompt_set, open_source, preview
from runs.models import AuditItem, Comparison, Completion, ReferencePair
from runs.reference_pairs import materialise_reference_pairs
from runs.stages.generate import form_comparisons
from tests import factories
from training.config import GenerationConfig
from training.pairing import degenerate_reason

pytestmark = pytest.mark.django_db

ROWS = [
    {"prompt": "Q1", "a": "good", "b": "bad", "label": "A"},
    {"prompt": "Q2", "a": "same", "b": "  same\n", "label": "A"},
    {"prompt": "Q3", "a": "", "b": "  ", "label": "B"},
    {"prompt": "Q4", "a": "x", "b": "y", "label": "B"},
    {"prompt": "Q5", "a": "", "b": "an answer against none is a real pair", "label": "B"},
]


def pair_set(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    options = ImportOptions(layout="pairwise", response_a_column="a", response_b_column="b", label_column="label")
    return import_prompt_set("pairs", open_source(path), options), path, options


def test_degenerate_reason():
    assert degenerate_reason("a", "b") == ""
    assert degenerate_reason("same", " same \n") == "identical"
    assert degenerate_reason("", "") == degenerate_reason(" ", "\n") == "empty"
    assert degenerate_reason("", "x") == degenerate_reason("x", "  ") == ""  # an answer against none: a real pair


def test_import_flags_identical_and_empty_pairs_and_counts_them(tmp_path, client, operator):
    ps, path, options = pair_set(tmp_path)
    flags = dict(ReferencePair.objects.filter(prompt__prompt_set=ps).values_list("prompt__text", "degenerate"))
    assert flags == {"Q1": "", "Q2": "identical", "Q3": "empty", "Q4": "", "Q5": ""}
    report = ps.import_report
    assert report["degenerate_pairs"] == {"identical": 1, "empty": 1}
    assert [w["row"] for w in report["warnings"] if "the pair is kept but flagged" in w["warning"]] == [2, 3]
    assert [item["pair"]["degenerate"] for item in preview(open_source(path), options).parsed] == [
        "", "identical", "empty", "", ""
    ]
    client.force_login(operator)
    html = client.get(reverse("runs:promptset_detail", args=[ps.pk])).content.decode()
    assert ('<b>2</b> of them flagged and kept out of judging, training and agreement: 1 with identical replies, '
            "1 with both replies empty") in html


def test_degenerate_reference_pairs_are_never_judged(tmp_path):
    ps, _, _ = pair_set(tmp_path)
    run = factories.make_run(prompt_set=ps)
    result = materialise_reference_pairs(run)
    assert (result.pairs, result.comparisons, result.degenerate) == (3, 3, 2)
    assert sorted(Comparison.objects.filter(run=run).values_list("prompt__text", flat=True)) == ["Q1", "Q4", "Q5"]
    limited = materialise_reference_pairs(factories.make_run(prompt_set=ps), max_prompts=2)
    assert limited.pairs == 2  # the cap counts usable pairs, not flagged ones


def test_policy_pairs_of_identical_or_both_empty_samples_are_not_compared():
    run = factories.make_run()
    prompts = list(run.prompt_set.prompts.all())
    for prompt, texts in zip(prompts, [("one", "two"), ("", " "), ("same", "same")], strict=True):
        for i, text in enumerate(texts):
            Completion.objects.create(run=run, prompt=prompt, sample_index=i, text=text, model="m")
    formed = form_comparisons(run, prompts, GenerationConfig(samples_per_prompt=2))
    assert (formed.created, formed.identical) == (1, 2)
    assert list(Comparison.objects.filter(run=run).values_list("prompt", flat=True)) == [prompts[0].pk]


def legacy_run():
    """A run whose older generate stage formed degenerate comparisons, judged and labelled."""
    run = factories.make_run()
    prompt = run.prompt_set.prompts.first()
    good = factories.make_comparison(run, prompt, texts=("helpful", "rude"))
    same = factories.make_comparison(run, prompt, texts=("same", "same"))
    empty = factories.make_comparison(run, prompt, texts=("", " "))
    for comparison in (good, same, empty):
        factories.make_judgment(comparison, p_a=0.9)
        factories.make_label(comparison, "A", external_annotator="panel:0")
    return run, good


def test_degenerate_comparisons_do_not_count_in_agreement_or_the_audit_sample():
    run, good = legacy_run()
    assert [row.comparison_id for row in audit_rows(run, "labelled")] == [good.pk]
    drawn = draw_audit_sample(run, random_size=10)
    assert list(AuditItem.objects.filter(run=run).values_list("comparison_id", flat=True)) == [good.pk]
    assert drawn is not None
    assert alignment_counts(run) == (1, 1)


def test_degenerate_comparisons_are_not_trained_on():
    run, good = legacy_run()
    rows = preference_rows(run, PreferenceFilters())
    assert [row["comparison_id"] for row in rows] == [good.pk]

"""Adjudication: which pairs go to review, and the reviewer's decision as the final human label in the gate,
the figures, the preference export and the human majority; every decision and label is kept."""
from __future__ import annotations

import pytest

from runs import gate
from runs.audit import alignment_counts, build_report, human_majority
from runs.audit.adjudication import adjudicate, review_counts, review_rows
from runs.exporting import PreferenceFilters, preference_rows
from runs.models import Adjudication, AuditItem, AuditPlan, Comparison, HumanLabel
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def team_audit():
    """Three random-stratum pairs judged A (p_a 0.9), labelled by two auditors with overlap 2:
    pair 0 both A (agree with AI), pair 1 A vs B (auditors disagree), pair 2 both B (majority differs from AI);
    plus pair 3 with one label (B) only, short of its overlap."""
    ann = factories.make_user("ann", roles=("auditors",))
    bob = factories.make_user("bob", roles=("auditors",))
    reviewer = factories.make_user("rita", roles=("reviewers",))
    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1),
                             config={"audit_gate": {"min_n": 3, "min_alignment": 0.7}})
    AuditPlan.objects.create(run=run, mode=AuditPlan.Mode.POOLED, overlap=2)
    honest = run.constitution_version.principles.get(name="Honest")
    items = []
    for i, labels in enumerate([("A", "A"), ("A", "B"), ("B", "B"), ("B", None)]):
        comparison = factories.make_comparison(run, texts=(f"first reply {i}", f"second reply {i}"))
        judgment = factories.make_judgment(comparison, honest, p_a=0.9)
        items.append(AuditItem.objects.create(run=run, comparison=comparison, judgment=judgment, stratum="random"))
        for user, choice in zip((ann, bob), labels, strict=True):
            if choice:
                factories.make_label(comparison, choice, auditor=user)
    return run, items, reviewer


def test_review_queue_holds_complete_pairs_that_disagree(team_audit):
    run, items, _ = team_audit
    rows = {r.item_id: r for r in review_rows(run)}
    assert [rows[i.pk].reason for i in items] == ["", "auditors", "ai", "ai"]
    assert [rows[i.pk].pending for i in items] == [False, True, True, False]  # pair 3 has 1 of 2 labels
    assert review_counts(list(rows.values())) == {"pending": 2, "adjudicated": 0, "incomplete_disagreeing": 1}
    plan = AuditPlan.objects.get(run=run)
    plan.review_ai_disagreements = False
    plan.save()
    assert [r.pending for r in review_rows(run, plan)] == [False, True, False, False]


def test_decision_becomes_the_final_label_in_the_gate(team_audit):
    run, items, reviewer = team_audit
    # before: pair 0 two agreeing labels, pair 1 one of two, pair 2 none of two, pair 3 none of one -> 3 of 7
    assert alignment_counts(run) == (3, 7)
    adjudicate(items[1], reviewer, "A", note="A cites its source")
    adjudicate(items[2], reviewer, "B")
    # settled pairs count once with the decision: pair 0 2/2, pair 1 1/1, pair 2 0/1, pair 3 0/1 -> 3 of 5
    assert alignment_counts(run) == (3, 5)
    assert gate.audit_alignment(run) == (5, 0.6)
    assert "alignment 60%" in gate.gate_reason(run, "reward_model")
    overall = build_report(run, "random")["overall"]
    assert overall["figures"]["alignment"]["n"] == 5 and overall["figures"]["alignment"]["value"] == 0.6
    assert overall["n_adjudicated"] == 2
    assert overall["figures"]["alpha"]["n"] == 3  # inter-human agreement keeps the auditors' own labels


def test_adjudicated_pairs_are_their_own_scope(team_audit):
    run, items, reviewer = team_audit
    adjudicate(items[1], reviewer, "B")
    report = build_report(run, "adjudicated")
    assert report["overall"]["n_items"] == 1
    assert report["overall"]["figures"]["alignment"]["n"] == 1
    assert report["overall"]["figures"]["alignment"]["value"] == 0.0


def test_latest_decision_counts_and_history_is_kept(team_audit):
    run, items, reviewer = team_audit
    first = adjudicate(items[1], reviewer, "A")
    second = adjudicate(items[1], reviewer, "tie", note="looked again")
    comparison = items[1].comparison
    assert human_majority(Comparison.objects.filter(pk=comparison.pk)) == {comparison.pk: "tie"}
    assert list(Adjudication.objects.filter(comparison=comparison)) == [second, first]
    assert first.reason == "auditors"
    assert [(lb["annotator"], lb["choice"]) for lb in first.labels] == [("ann", "A"), ("bob", "B")]
    assert sorted(HumanLabel.objects.filter(comparison=comparison).values_list("choice", flat=True)) == ["A", "B"]


def test_preference_export_uses_the_decision(team_audit):
    run, items, reviewer = team_audit
    filters = PreferenceFilters(prefer_human_labels=True)
    before = {r["comparison_id"]: r for r in preference_rows(run, filters)}
    assert items[1].comparison_id not in before  # an even A/B split decides nothing
    adjudicate(items[1], reviewer, "B")
    after = {r["comparison_id"]: r for r in preference_rows(run, filters)}
    row = after[items[1].comparison_id]
    assert (row["chosen"], row["rejected"]) == ("second reply 1", "first reply 1")
    assert (row["human_label"], row["adjudicated"], row["label_source"], row["human_votes"]) == ("B", True, "human", 2)
    assert after[items[0].comparison_id]["adjudicated"] is False


def test_an_adjudication_is_a_b_or_tie(team_audit):
    _, items, reviewer = team_audit
    with pytest.raises(ValueError, match="A, B or tie"):
        adjudicate(items[1], reviewer, "skip")

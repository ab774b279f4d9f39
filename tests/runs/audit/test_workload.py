"""Who labels what: assigned and pooled plans, the next-pair queue, claims, progress and per-auditor counts."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from runs.audit import workload
from runs.models import AuditAssignment, AuditItem, AuditPlan
from tests import factories

pytestmark = pytest.mark.django_db


def make_audit(n: int = 6):
    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1))
    honest = run.constitution_version.principles.get(name="Honest")
    items = []
    for i in range(n):
        comparison = factories.make_comparison(run, texts=(f"reply one {i}", f"reply two {i}"))
        judgment = factories.make_judgment(comparison, honest, p_a=0.8)
        items.append(AuditItem.objects.create(run=run, comparison=comparison, judgment=judgment, stratum="random"))
    return run, items


def auditors(*names):
    return [factories.make_user(name, roles=("auditors",)) for name in names]


def make_plan(run, mode, overlap=1, team=()):
    plan = AuditPlan.objects.create(run=run, mode=mode, overlap=overlap)
    plan.auditors.set(team)
    return plan


def label_all(run, user, choice="A"):
    """Label every pair the queue serves ``user``; returns the items in the order served."""
    served = []
    while (item := workload.next_item_for(run, user)) is not None:
        assert item not in served, "the queue served a pair twice"
        served.append(item)
        factories.make_label(item.comparison, choice, auditor=user)
    return served


def test_assigned_plan_gives_each_pair_to_overlap_named_auditors_balanced():
    run, items = make_audit(6)
    ann, bob, cy, outsider = auditors("ann", "bob", "cy", "out")
    plan = make_plan(run, AuditPlan.Mode.ASSIGNED, overlap=2, team=[ann, bob, cy])
    assert workload.assign_items(plan) == 12
    per_item = Counter(AuditAssignment.objects.values_list("item_id", flat=True))
    assert set(per_item.values()) == {2} and len(per_item) == 6
    per_auditor = Counter(AuditAssignment.objects.values_list("auditor__username", flat=True))
    assert per_auditor == {"ann": 4, "bob": 4, "cy": 4}
    assert workload.assign_items(plan) == 0  # idempotent
    # each named auditor is served exactly their four pairs, never one of another's, never twice
    for user in (ann, bob, cy):
        mine = set(AuditAssignment.objects.filter(auditor=user).values_list("item_id", flat=True))
        assert {item.pk for item in label_all(run, user)} == mine
    assert workload.next_item_for(run, outsider) is None
    assert "assigned to other auditors" in workload.may_label(items[0], outsider, plan)


def test_changing_the_team_keeps_labelled_work_and_moves_the_rest():
    run, items = make_audit(4)
    ann, bob, cy = auditors("ann", "bob", "cy")
    plan = make_plan(run, AuditPlan.Mode.ASSIGNED, overlap=1, team=[ann, bob])
    workload.assign_items(plan)
    bobs = list(AuditItem.objects.filter(assignments__auditor=bob).order_by("pk"))
    factories.make_label(bobs[0].comparison, "A", auditor=bob)
    plan.auditors.set([ann, cy])  # bob leaves after one label
    workload.assign_items(plan)
    assert list(AuditAssignment.objects.filter(auditor=bob).values_list("item_id", flat=True)) == [bobs[0].pk]
    assert AuditAssignment.objects.filter(item=bobs[0]).count() == 1  # his label fills the place
    for item in bobs[1:]:
        assert list(AuditAssignment.objects.filter(item=item).values_list("auditor__username", flat=True)) == ["cy"]


def test_pooled_plan_stops_serving_a_pair_once_it_has_its_overlap():
    run, items = make_audit(3)
    ann, bob, cy = auditors("ann", "bob", "cy")
    plan = make_plan(run, AuditPlan.Mode.POOLED, overlap=2)
    assert len(label_all(run, ann)) == 3
    assert len(label_all(run, bob)) == 3
    assert workload.next_item_for(run, cy) is None  # every pair has its two labels
    assert "already has the 2 labels" in workload.may_label(items[0], cy, plan)
    assert workload.may_label(items[0], ann, plan) is None  # her own pair: she may edit her label


def test_a_pooled_claim_holds_the_place_until_it_lapses():
    run, (item,) = make_audit(1)
    ann, bob, cy = auditors("ann", "bob", "cy")
    make_plan(run, AuditPlan.Mode.POOLED, overlap=1)
    assert workload.next_item_for(run, ann) == item  # claimed
    assert workload.next_item_for(run, bob) is None
    assert workload.next_item_for(run, ann) == item  # hers until she labels it
    AuditAssignment.objects.filter(auditor=ann).update(
        assigned_at=timezone.now() - timedelta(minutes=workload.CLAIM_MINUTES + 1))
    assert workload.next_item_for(run, bob) == item  # her claim lapsed
    factories.make_label(item.comparison, "B", auditor=bob)
    assert workload.next_item_for(run, cy) is None
    assert workload.may_label(item, ann) is None  # a lapsed claim still lets her label what she was served


def test_a_skip_ends_the_auditors_turn_but_does_not_fill_the_pair():
    run, (item,) = make_audit(1)
    ann, bob = auditors("ann", "bob")
    make_plan(run, AuditPlan.Mode.POOLED, overlap=1)
    assert label_all(run, ann, choice="skip") == [item]
    assert workload.next_item_for(run, ann) is None
    assert workload.next_item_for(run, bob) == item


def test_without_a_plan_everyone_labels_every_pair():
    run, items = make_audit(3)
    ann, bob = auditors("ann", "bob")
    assert workload.plan_for(run).mode == AuditPlan.Mode.EVERYONE and workload.plan_for(run).pk is None
    assert len(label_all(run, ann)) == 3 and len(label_all(run, bob)) == 3


def test_progress_reads_pair_12_of_70_style():
    run, items = make_audit(5)
    (ann,) = auditors("ann")
    make_plan(run, AuditPlan.Mode.POOLED, overlap=1)
    first = workload.next_item_for(run, ann)
    assert workload.auditor_progress(run, ann, first) == {"done": 0, "left": 4, "total": 5, "position": 1}
    factories.make_label(first.comparison, "A", auditor=ann)
    assert workload.auditor_progress(run, ann, first) == {"done": 1, "left": 4, "total": 5, "position": 1}
    second = workload.next_item_for(run, ann)
    assert workload.auditor_progress(run, ann, second) == {"done": 1, "left": 3, "total": 5, "position": 2}


def test_team_counts_per_auditor_aggregated():
    run, items = make_audit(4)
    ann, bob = auditors("ann", "bob")
    make_plan(run, AuditPlan.Mode.ASSIGNED, overlap=2, team=[ann, bob])
    workload.assign_items(AuditPlan.objects.get(run=run))
    factories.make_label(items[0].comparison, "A", auditor=ann, seconds_spent=3.0)
    factories.make_label(items[1].comparison, "skip", auditor=ann, seconds_spent=5.0)
    factories.make_label(items[0].comparison, "B", external_annotator="label-studio:x@y")
    rows = {row["name"]: row for row in workload.team_counts(run)}
    assert rows["ann"] == {"key": f"user:{ann.pk}", "name": "ann", "assigned": 4, "labelled": 1, "skipped": 1,
                           "left": 2, "mean_seconds": 4.0}
    assert rows["bob"]["assigned"] == 4 and rows["bob"]["labelled"] == 0 and rows["bob"]["left"] == 4
    assert rows["label-studio:x@y"]["labelled"] == 1 and rows["label-studio:x@y"]["left"] is None


def test_blindness_follows_the_plan():
    from runs.audit.blind import blinded_comparison_ids

    run, items = make_audit(2)
    ann, bob = auditors("ann", "bob")
    plan = make_plan(run, AuditPlan.Mode.ASSIGNED, overlap=1, team=[ann, bob])
    workload.assign_items(plan)
    anns = set(AuditItem.objects.filter(assignments__auditor=ann).values_list("comparison_id", flat=True))
    assert set(blinded_comparison_ids(run, ann).values_list("comparison_id", flat=True)) == anns

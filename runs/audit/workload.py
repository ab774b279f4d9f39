"""Who labels what in a run's audit: the plan's modes (:class:`runs.models.AuditPlan`), the next-pair queue,
assignments to named auditors, pooled claims, and each auditor's progress and counts.

* **everyone** (no plan): every auditor labels every pair of the sample.
* **pooled**: any auditor takes pairs until each has ``overlap`` counted (A/B/tie) labels. Serving a pair
  claims it (:class:`~runs.models.AuditAssignment`) so that others are not served it meanwhile; a claim lapses
  after :data:`CLAIM_MINUTES` unless labelled. Two auditors served the last open place at the same moment may
  both label it: a pair can end with one label more than asked, never fewer.
* **assigned**: each pair goes to ``overlap`` of the named auditors, balanced (least loaded first), the pairs
  visited in the queue's shuffled order so each auditor's share mixes strata and principles.

The queue never serves an auditor a pair they labelled (a skip included), and serves pairs in a fixed shuffled
order (:func:`order_key`), the pairs an auditor already claimed first.
"""
from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Avg, Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from runs.audit.queries import COUNTED
from runs.models import AuditAssignment, AuditItem, AuditPlan, HumanChoice, HumanLabel, Run

#: Minutes a pooled claim holds a pair for the auditor it was served to.
CLAIM_MINUTES = 30


def plan_for(run: Run) -> AuditPlan:
    """The run's audit plan, or an unsaved default (everyone labels every pair, no guidelines)."""
    try:
        return run.audit_plan
    except AuditPlan.DoesNotExist:
        return AuditPlan(run=run)


def order_key(run_id: int, item_id: int) -> str:
    """The queue's fixed shuffled order of a run's audit items (mixes strata and principles)."""
    return hashlib.sha256(f"{run_id}:{item_id}".encode()).hexdigest()


def _counted_labels():
    """Subquery: counted (A/B/tie) labels of the outer audit item's comparison."""
    return Coalesce(Subquery(
        HumanLabel.objects.filter(comparison=OuterRef("comparison"), choice__in=COUNTED).order_by()
        .values("comparison").annotate(n=Count("pk")).values("n")[:1],
        output_field=IntegerField(),
    ), Value(0))


def _labelled_by(user) -> Exists:
    return Exists(HumanLabel.objects.filter(comparison=OuterRef("comparison"), auditor=user))


def open_items(run: Run, user, plan: AuditPlan | None = None, *, claims: bool = True) -> QuerySet[AuditItem]:
    """The audit items of ``run`` that ``user`` is still to label under the plan: theirs and not done.

    Args:
        plan: the run's plan (default :func:`plan_for`).
        claims: pooled mode: leave out pairs whose open places other auditors hold (the queue); False keeps
            every pair short of its labels (what a user may still come to label: :mod:`runs.audit.blind`).

    Returns:
        A queryset of :class:`~runs.models.AuditItem` (unordered).
    """
    plan = plan or plan_for(run)
    items = AuditItem.objects.filter(run=run).filter(~_labelled_by(user))
    if plan.mode == AuditPlan.Mode.ASSIGNED:
        return items.filter(Exists(AuditAssignment.objects.filter(item=OuterRef("pk"), auditor=user)))
    if plan.mode == AuditPlan.Mode.POOLED:
        cutoff = timezone.now() - timedelta(minutes=CLAIM_MINUTES)
        claimant_labelled = HumanLabel.objects.filter(comparison=OuterRef("item__comparison"),
                                                      auditor=OuterRef("auditor"))
        others_claims = Coalesce(Subquery(
            AuditAssignment.objects.filter(item=OuterRef("pk"), assigned_at__gte=cutoff).exclude(auditor=user)
            .filter(~Exists(claimant_labelled)).order_by().values("item").annotate(n=Count("pk")).values("n")[:1],
            output_field=IntegerField(),
        ), Value(0))
        mine = Exists(AuditAssignment.objects.filter(item=OuterRef("pk"), auditor=user))
        taken = _counted_labels() + others_claims if claims else _counted_labels()
        return items.annotate(taken=taken).filter(Q(mine) | Q(taken__lt=plan.overlap))
    return items


def may_label(item: AuditItem, user, plan: AuditPlan | None = None) -> str | None:
    """Why ``user`` may not label ``item`` under the plan, or None when they may (always once they labelled it).

    Returns:
        A sentence for the auditor, or None.
    """
    plan = plan or plan_for(item.run)
    if plan.mode == AuditPlan.Mode.EVERYONE:
        return None
    if HumanLabel.objects.filter(comparison_id=item.comparison_id, auditor=user).exists():
        return None
    if open_items(item.run, user, plan).filter(pk=item.pk).exists():
        return None
    if plan.mode == AuditPlan.Mode.ASSIGNED:
        return f"Pair {item.pk} is assigned to other auditors of this audit; the queue serves you yours."
    return (f"Pair {item.pk} already has the {plan.overlap} label{'s' if plan.overlap != 1 else ''} this audit "
            "asks for (or other auditors hold it); the queue serves you an open one.")


def next_item_for(run: Run, user) -> AuditItem | None:
    """The next audit item for ``user`` (their open items in the queue's order, those they hold first), claimed
    for them in pooled mode; None when nothing is left for them."""
    plan = plan_for(run)
    if plan.mode == AuditPlan.Mode.ASSIGNED and plan.pk and AuditItem.objects.filter(
            run=run, assignments__isnull=True).exists():
        assign_items(plan)  # pairs drawn since the plan was saved
    held = Exists(AuditAssignment.objects.filter(item=OuterRef("pk"), auditor=user))
    candidates = list(open_items(run, user, plan).annotate(held=held).values_list("pk", "held"))
    if not candidates:
        return None
    pk, _ = min(candidates, key=lambda c: (not c[1], order_key(run.pk, c[0])))
    item = AuditItem.objects.get(pk=pk)
    if plan.mode == AuditPlan.Mode.POOLED:
        AuditAssignment.objects.update_or_create(item=item, auditor=user, defaults={"assigned_at": timezone.now()})
    return item


@transaction.atomic
def assign_items(plan: AuditPlan) -> int:
    """Share the run's audit items among the plan's named auditors, ``overlap`` per item (assigned mode).

    Idempotent and incremental: an item keeps the team members it has; unlabelled assignments of auditors who
    left the team, or beyond the overlap, are removed; missing places go to the least loaded members (ties
    broken by a hash, so shares mix). Assignments whose auditor labelled the pair always stay and fill a place,
    whether or not the auditor is still on the team.

    Returns:
        How many assignments were added.

    Raises:
        ValueError: the plan is not in assigned mode.
    """
    if plan.mode != AuditPlan.Mode.ASSIGNED:
        raise ValueError(f"assign_items: the plan is in {plan.mode!r} mode, not 'assigned'")
    AuditPlan.objects.select_for_update().filter(pk=plan.pk).first()  # one assigner at a time (PostgreSQL)
    run = plan.run
    team = sorted(plan.auditors.values_list("pk", flat=True))
    k = min(plan.overlap, len(team))
    items = sorted(AuditItem.objects.filter(run=run).values_list("pk", "comparison_id"),
                   key=lambda row: order_key(run.pk, row[0]))
    assigned: dict[int, set[int]] = defaultdict(set)
    for item_id, auditor_id in AuditAssignment.objects.filter(item__run=run).values_list("item_id", "auditor_id"):
        assigned[item_id].add(auditor_id)
    labelled: dict[int, set[int]] = defaultdict(set)
    for comparison_id, auditor_id in HumanLabel.objects.filter(
            comparison__audit_items__run=run, auditor__isnull=False).values_list("comparison_id", "auditor_id"):
        labelled[comparison_id].add(auditor_id)
    load = Counter(a for holders in assigned.values() for a in holders if a in team)
    removed: list[tuple[int, int]] = []
    added: list[AuditAssignment] = []
    for item_id, comparison_id in items:
        done = labelled[comparison_id]
        holders = assigned[item_id]
        for auditor_id in sorted(holders - set(team) - done):  # left the team before labelling
            removed.append((item_id, auditor_id))
            holders.discard(auditor_id)
        members = [a for a in holders if a in team or a in done]  # a label of one who left still counts
        spare = sorted((a for a in members if a not in done), key=lambda a: -load[a])
        while len(members) > k and spare:
            auditor_id = spare.pop(0)
            removed.append((item_id, auditor_id))
            members.remove(auditor_id)
            load[auditor_id] -= 1
        free = [a for a in team if a not in holders]
        free.sort(key=lambda a: (load[a], order_key(item_id, a)))
        for auditor_id in free[: max(0, k - len(members))]:
            added.append(AuditAssignment(item_id=item_id, auditor_id=auditor_id))
            load[auditor_id] += 1
    for item_id, auditor_id in removed:
        AuditAssignment.objects.filter(item_id=item_id, auditor_id=auditor_id).delete()
    AuditAssignment.objects.bulk_create(added, ignore_conflicts=True)
    return len(added)


def apply_plan(plan: AuditPlan) -> int:
    """Bring the assignments in line with a saved plan: assigned mode shares the items out
    (:func:`assign_items`); the other modes drop the unlabelled assignments (pooled claims start afresh).

    Returns:
        Assignments added.
    """
    if plan.mode == AuditPlan.Mode.ASSIGNED:
        return assign_items(plan)
    AuditAssignment.objects.filter(item__run=plan.run).filter(
        ~Exists(HumanLabel.objects.filter(comparison=OuterRef("item__comparison"), auditor=OuterRef("auditor")))
    ).delete()
    return 0


def auditor_progress(run: Run, user, item: AuditItem | None = None, plan: AuditPlan | None = None) -> dict:
    """Where ``user`` stands in the audit: ``{"done", "left", "total", "position"}``.

    ``done`` counts the pairs they labelled (skips included; in assigned mode those assigned to them), ``total``
    is done plus their open pairs, and ``position`` is the pair ``item`` is for them ("pair 12 of 70"): done + 1
    while they have still to label it. ``left`` is what remains after it.
    """
    plan = plan or plan_for(run)
    labelled = AuditItem.objects.filter(run=run).filter(_labelled_by(user))
    if plan.mode == AuditPlan.Mode.ASSIGNED:
        labelled = labelled.filter(assignments__auditor=user)
    done = labelled.count()
    open_count = open_items(run, user, plan).count()
    total = done + open_count
    current_open = item is not None and not HumanLabel.objects.filter(
        comparison_id=item.comparison_id, auditor=user).exists()
    position = done + 1 if current_open else done
    total = max(total, position)
    return {"done": done, "left": total - position, "total": total, "position": position}


def _display_name(user) -> str:
    return user.get_full_name() or user.get_username()


def team_counts(run: Run, plan: AuditPlan | None = None) -> list[dict]:
    """Per-auditor counts of the audit, aggregated in the database: one row per auditor who is on the plan's
    team, holds an assignment or labelled a pair of the sample, and per external annotator with labels.

    Returns:
        ``[{"key" ("user:<id>" or the annotator's name), "name", "assigned" (None unless assigned mode),
        "labelled" (A/B/tie), "skipped", "left" (None for external annotators), "mean_seconds"}]`` sorted by name.
    """
    plan = plan or plan_for(run)
    labels = (
        HumanLabel.objects.filter(comparison__in=AuditItem.objects.filter(run=run).values("comparison_id"))
        .values("auditor_id", "external_annotator").order_by()
        .annotate(labelled=Count("pk", filter=Q(choice__in=COUNTED)),
                  skipped=Count("pk", filter=Q(choice=HumanChoice.SKIP)),
                  mean_seconds=Avg("seconds_spent"))
    )
    by_key = {}
    for row in labels:
        key = f"user:{row['auditor_id']}" if row["auditor_id"] else row["external_annotator"]
        by_key[key] = row
    assigned = dict(
        AuditAssignment.objects.filter(item__run=run).values("auditor_id").order_by()
        .annotate(n=Count("pk")).values_list("auditor_id", "n")
    )
    user_ids = set(assigned) | {row["auditor_id"] for row in by_key.values() if row["auditor_id"]}
    if plan.pk:
        user_ids |= set(plan.auditors.values_list("pk", flat=True))
    rows = []
    for user in get_user_model().objects.filter(pk__in=user_ids):
        row = by_key.get(f"user:{user.pk}", {})
        rows.append({
            "key": f"user:{user.pk}", "name": _display_name(user),
            "assigned": assigned.get(user.pk, 0) if plan.mode == AuditPlan.Mode.ASSIGNED else None,
            "labelled": row.get("labelled", 0), "skipped": row.get("skipped", 0),
            "left": open_items(run, user, plan).count(), "mean_seconds": row.get("mean_seconds"),
        })
    for key, row in by_key.items():
        if not row["auditor_id"]:
            rows.append({"key": key, "name": key, "assigned": None, "labelled": row["labelled"],
                         "skipped": row["skipped"], "left": None, "mean_seconds": row["mean_seconds"]})
    return sorted(rows, key=lambda r: r["name"].lower())


def annotator_names(keys) -> dict[str, str]:
    """Display names of annotator keys as :class:`runs.audit.queries.AuditRow` writes them: ``"user:<id>"`` →
    the user's full name or username; an external annotator's name stays as it is."""
    ids = {int(key[5:]) for key in keys if key.startswith("user:") and key[5:].isdigit()}
    names = {f"user:{u.pk}": _display_name(u) for u in get_user_model().objects.filter(pk__in=ids)}
    return {key: names.get(key, key) for key in keys}

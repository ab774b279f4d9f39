"""What the pair browser does with a filtered list of judged pairs besides showing it: bulk actions on every
matching pair (add them to the run's audit sample, flag or unflag them) and saved views (a user's named query
of the browser on a run).

Bulk actions work on pairs (comparisons), not judgments: a pair judged under several principles counts once.
They take at most :data:`MAX_BULK` pairs at a time, so that one click cannot touch a whole run by mistake; the
pages ask for a confirmation with the count first (:mod:`runs.views.pairs`).
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Min, QuerySet
from django.utils.http import urlencode

from runs.audit import workload
from runs.audit.queries import without_degenerate_pairs
from runs.models import AuditItem, AuditPlan, Judgment, PairFlag, Run, SavedPairView

#: The most pairs one bulk action takes.
MAX_BULK = 500
#: The most saved views a user keeps on one run.
MAX_SAVED_VIEWS = 50
#: The pair browser's display toggles kept with a saved view (besides its filters).
DISPLAY_PARAMS = {"render": ("markdown",), "prompt": ("turns",)}


def matching_comparisons(judgments: QuerySet[Judgment]) -> QuerySet:
    """The distinct comparison ids of ``judgments`` (a filtered pair-browser queryset), as a subquery."""
    return judgments.order_by().values("comparison_id").distinct()


@dataclass(frozen=True)
class AddPlan:
    """What adding the matching pairs to the audit sample does: ``new`` pairs join it, ``already`` are in it,
    ``unusable`` cannot join (every judgment of the pair failed, or its two replies are the same)."""

    new: int
    already: int
    unusable: int


def _addable(run: Run, judgments: QuerySet[Judgment]) -> tuple[dict[int, int], int, int]:
    """``({comparison id: judgment id to audit}, already in the sample, unusable)`` of the matching pairs."""
    matching = set(matching_comparisons(judgments).values_list("comparison_id", flat=True))
    in_sample = set(AuditItem.objects.filter(run=run, comparison_id__in=matching)
                    .values_list("comparison_id", flat=True))
    # the audited judgment: the first matching, successful one of the pair (as the sampler, one per pair)
    usable = dict(
        without_degenerate_pairs(judgments.exclude(verdict="")).exclude(comparison_id__in=in_sample).order_by()
        .values("comparison_id").annotate(first=Min("pk")).values_list("comparison_id", "first")
    )
    return usable, len(in_sample), len(matching) - len(in_sample) - len(usable)


def plan_add_to_audit(run: Run, judgments: QuerySet[Judgment]) -> AddPlan:
    """What :func:`add_to_audit_sample` would do with ``judgments``, without doing it (for the confirmation)."""
    usable, already, unusable = _addable(run, judgments)
    return AddPlan(new=len(usable), already=already, unusable=unusable)


@transaction.atomic
def add_to_audit_sample(run: Run, judgments: QuerySet[Judgment]) -> AddPlan:
    """Add the pairs of ``judgments`` (a filtered pair-browser queryset of ``run``) to the run's audit sample, in
    the ``chosen`` stratum: hand-picked pairs, labelled like the others but shown as their own scope, never
    counted in the random stratum's unbiased estimates. A pair drawn at random later moves to the random
    stratum (:func:`runs.audit.sampling.draw_audit_sample`). An assigned audit plan shares the new pairs out.

    Returns:
        :class:`AddPlan`: how many pairs joined, were in the sample already, or could not join.
    """
    usable, already, unusable = _addable(run, judgments)
    AuditItem.objects.bulk_create(
        [AuditItem(run=run, comparison_id=comparison_id, judgment_id=judgment_id, stratum=AuditItem.Stratum.CHOSEN)
         for comparison_id, judgment_id in sorted(usable.items())],
        ignore_conflicts=True,
    )
    plan = workload.plan_for(run)
    if usable and plan.pk and plan.mode == AuditPlan.Mode.ASSIGNED:
        workload.assign_items(plan)
    return AddPlan(new=len(usable), already=already, unusable=unusable)


def flag_pairs(user, judgments: QuerySet[Judgment], note: str = "") -> int:
    """Flag every pair of ``judgments`` for ``user`` (a pair they flagged already keeps its flag and note).

    Returns:
        How many pairs were newly flagged.
    """
    ids = list(matching_comparisons(judgments).values_list("comparison_id", flat=True))
    before = PairFlag.objects.filter(flagged_by=user, comparison_id__in=ids).count()
    PairFlag.objects.bulk_create([PairFlag(comparison_id=i, flagged_by=user, note=note) for i in ids],
                                 ignore_conflicts=True)
    return PairFlag.objects.filter(flagged_by=user, comparison_id__in=ids).count() - before


def unflag_pairs(user, judgments: QuerySet[Judgment]) -> int:
    """Remove ``user``'s flags from the pairs of ``judgments``; others' flags stay.

    Returns:
        How many flags were removed.
    """
    removed, _ = PairFlag.objects.filter(flagged_by=user,
                                         comparison_id__in=matching_comparisons(judgments)).delete()
    return removed


def display_options(params) -> dict[str, str]:
    """The pair browser's display toggles in ``params`` (``render=markdown``, ``prompt=turns``) that are set."""
    return {key: params.get(key) for key, allowed in DISPLAY_PARAMS.items() if params.get(key) in allowed}


def view_query(applied: dict[str, str], display: dict[str, str]) -> str:
    """The query string of a saved view: the filters the browser applied (already validated by
    :func:`runs.views.pairs.filter_judgments`) and its display toggles, never a page cursor."""
    return urlencode({**applied, **display})


def save_view(user, run: Run, name: str, query: str) -> tuple[SavedPairView, bool]:
    """Save (or, under a name the user already uses on this run, replace) a view of the pair browser.

    Returns:
        ``(view, created)``.

    Raises:
        ValueError: the user already keeps :data:`MAX_SAVED_VIEWS` views on the run (and the name is new).
    """
    views = SavedPairView.objects.filter(user=user, run=run)
    if not views.filter(name=name).exists() and views.count() >= MAX_SAVED_VIEWS:
        raise ValueError(f"you keep {MAX_SAVED_VIEWS} saved views on this run already; delete one first")
    return SavedPairView.objects.update_or_create(user=user, run=run, name=name, defaults={"query": query})

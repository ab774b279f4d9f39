"""Blind labeling, enforced on every page: what an auditor may not see before labelling a pair.

An auditor labels an audit-sample pair blind: the AI judge's verdict, probabilities and rationale, and other
auditors' choices and notes, must not reach them before their own label exists. The audit item page does this
for its pair; every other place that shows per-pair AI or human decisions (the pair browser and its filters,
the disagreement list and its downloads, the preference export) leaves out the comparisons returned by
:func:`blinded_comparison_ids` for the requesting user. Leaving them out, rather than masking fields, also
closes the side channel of filtering by verdict or confidence.
"""
from __future__ import annotations

from rlaif_site.roles import AUDITORS, has_role
from runs.models import AuditItem


def blinded_comparison_ids(run, user):
    """Ids of ``run``'s audit-sample comparisons that ``user`` may still label and has not labelled, as a
    subquery (``values("comparison_id")``) usable in ``comparison_id__in``: the pairs the audit plan still
    may still give them (:func:`runs.audit.workload.open_items`: every unlabelled pair without a plan, every
    pair short of its labels when pooled, whoever holds it, only their own when assigned). Empty for users who
    cannot label (they cannot be biased by what they see)."""
    from runs.audit.workload import open_items

    if not has_role(user, AUDITORS):
        return AuditItem.objects.none().values("comparison_id")
    return open_items(run, user, claims=False).values("comparison_id")

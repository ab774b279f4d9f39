"""Blind labeling, enforced on every page: what an auditor may not see before labelling a pair.

An auditor labels an audit-sample pair blind: the AI judge's verdict, probabilities and rationale, and other
auditors' choices and notes, must not reach them before their own label exists. The audit item page does this
for its pair; every other place that shows per-pair AI or human decisions (the pair browser and its filters,
the disagreement list and its downloads, the preference export) leaves out the comparisons returned by
:func:`blinded_comparison_ids` for the requesting user. Leaving them out, rather than masking fields, also
closes the side channel of filtering by verdict or confidence.
"""
from __future__ import annotations

from django.db.models import Exists, OuterRef

from rlaif_site.roles import AUDITORS, has_role
from runs.models import AuditItem, HumanLabel


def blinded_comparison_ids(run, user):
    """Ids of ``run``'s audit-sample comparisons that ``user`` may still label and has not labelled, as a
    subquery (``values("comparison_id")``) usable in ``comparison_id__in``. Empty for users who cannot label
    (they cannot be biased by what they see) and once the user has labelled a pair."""
    items = AuditItem.objects.filter(run=run)
    if not has_role(user, AUDITORS):
        return items.none().values("comparison_id")
    own_label = HumanLabel.objects.filter(comparison_id=OuterRef("comparison_id"), auditor=user)
    return items.filter(~Exists(own_label)).values("comparison_id")

"""Per-auditor agreement over a report's rows: each auditor against the AI judge and against the other
auditors (the pairwise matrix of :func:`training.agreement.pairwise_agreement`), so that a careless or
adversarial labeller stands out."""
from __future__ import annotations

from collections.abc import Sequence

from runs.audit.queries import AuditRow
from training import agreement

#: An auditor needs this many label pairs with the others before the "stands out" test is made.
MIN_SHARED = 5


def _estimate(e: agreement.ProportionEstimate) -> dict:
    return e.as_dict()


def auditor_agreement(rows: Sequence[AuditRow], names: dict[str, str], *, seed: int = 0) -> dict:
    """How each annotator of ``rows`` agrees with the AI judge and with the other annotators.

    Against the AI, one unit per (judgment, the auditor's label), as the report's figures: AI labeler alignment
    (decisive labels, Wilson) and Cohen's kappa (A/B/tie, bootstrap), over successfully judged rows; the
    auditor's own labels are used even where a reviewer settled the pair. Against the others, one unit per
    comparison both labelled (:func:`training.agreement.pairwise_agreement`); ``with_others`` pools the
    auditor's label pairs with every other auditor (Wilson, over label pairs).

    An auditor *stands out* when, with at least :data:`MIN_SHARED` label pairs, the upper bound of their
    agreement with the others lies below the agreement the others reach among themselves, or the upper bound
    of their alignment with the AI lies below the others' pooled alignment.

    Args:
        rows: :func:`runs.audit.queries.audit_rows` of one scope.
        names: display names of the annotator keys (:func:`runs.audit.workload.annotator_names`).

    Returns:
        ``{"auditors": [{"key", "name", "n_labels", "vs_ai", "kappa_ai", "with_others", "stands_out",
        "why"}], "matrix": {"keys", "names", "rows": [{"key", "name", "cells": [None | {"agree", "n",
        "value", "low", "high", "kappa"}]}]}}``; auditors sorted by name, the matrix in the same order.
    """
    ai: dict[str, list[str]] = {}
    human: dict[str, list[str]] = {}
    ratings: dict[str, dict[int, str]] = {}
    for row in rows:
        for key, choice in row.labels:
            ratings.setdefault(key, {})[row.comparison_id] = choice
            if row.verdict:
                ai.setdefault(key, []).append(row.verdict)
                human.setdefault(key, []).append(choice)
    keys = sorted(ratings, key=lambda k: (names.get(k, k).lower(), k))
    pairs = agreement.pairwise_agreement(ratings, seed=seed)
    by_pair = {(p.first, p.second): p for p in pairs}
    matrix_rows = []
    for first in keys:
        line = []
        for second in keys:
            pair = by_pair.get((first, second)) or by_pair.get((second, first))
            if pair is None or first == second:
                line.append(None)
                continue
            line.append({"agree": pair.agree, "n": pair.agreement.n, "value": pair.agreement.value,
                         "low": pair.agreement.low, "high": pair.agreement.high, "kappa": pair.kappa.value})
        matrix_rows.append({"key": first, "name": names.get(first, first), "cells": line})
    auditors = []
    for key in keys:
        mine = [p for p in pairs if key in (p.first, p.second)]
        rest = [p for p in pairs if key not in (p.first, p.second)]
        with_others = agreement.proportion(sum(p.agree for p in mine), sum(p.agreement.n for p in mine))
        others_rate = agreement.proportion(sum(p.agree for p in rest), sum(p.agreement.n for p in rest))
        vs_ai = agreement.alignment(ai.get(key, []), human.get(key, []))
        other_ai = [a for k in keys if k != key for a in ai.get(k, [])]
        other_human = [h for k in keys if k != key for h in human.get(k, [])]
        others_ai = agreement.alignment(other_ai, other_human)
        why = []
        if with_others.n >= MIN_SHARED and others_rate.value is not None and with_others.high < others_rate.value:
            why.append(f"agrees with the others {with_others.value:.0%} (95% CI up to {with_others.high:.0%}); "
                       f"they agree among themselves {others_rate.value:.0%}")
        if vs_ai.n >= MIN_SHARED and others_ai.value is not None and vs_ai.high < others_ai.value:
            why.append(f"agrees with the AI {vs_ai.value:.0%} (95% CI up to {vs_ai.high:.0%}); "
                       f"the others {others_ai.value:.0%}")
        auditors.append({
            "key": key, "name": names.get(key, key), "n_labels": len(ratings[key]),
            "vs_ai": _estimate(vs_ai), "kappa_ai": _estimate(agreement.cohen_kappa(ai.get(key, []),
                                                                                 human.get(key, []), seed=seed)),
            "with_others": _estimate(with_others), "stands_out": bool(why), "why": "; ".join(why),
        })
    return {"auditors": auditors,
            "matrix": {"keys": keys, "names": [names.get(k, k) for k in keys], "rows": matrix_rows}}

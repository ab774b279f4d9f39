"""The agreement report of a run's audit: every figure of :mod:`training.agreement` computed over the
audit rows, for the whole scope and per principle; for the whole scope also the length-controlled alignment
(:func:`training.human_calibrated.length_controlled_agreement`)."""
from __future__ import annotations

from collections.abc import Sequence

from runs.audit.queries import AuditRow, audit_rows
from runs.models import Run
from training import agreement, judge_conventions
from training.human_calibrated import length_controlled_agreement
from training.judge_conventions import PairUnit
from training.labeling import verdict_for

#: The figures of a report section, in display order, with their meaning.
FIGURES = {
    "alignment": "AI labeler alignment: share of decisive human labels the AI verdict agrees with (Lee et al. 2023)",
    "alignment_length_controlled": "AI labeler alignment, length-controlled: the same agreement read at zero length "
    "difference between the response the human preferred and the other (logistic model, Dubois et al. 2024)",
    "kappa": "Cohen's kappa, AI verdict vs human label (A/B/tie)",
    "alpha": "Inter-human agreement, Krippendorff's alpha (nominal), pairs with 2+ labels",
    "ece": "Expected calibration error of the judge's P(A) against decisive human labels (lower is better)",
    "position_consistency": "Position consistency: share of judgments whose two orders agreed",
    "ai_prefers_longer": "Length bias, judge: share of decisive verdicts that picked the longer response",
    "human_prefers_longer": "Length bias, humans: share of decisive labels that picked the longer response",
}


def pair_units(rows: Sequence[AuditRow], *, tie_margin: float, both_orders: bool) -> list[PairUnit]:
    """The rows as :class:`~training.judge_conventions.PairUnit`: each order's verdict from its P(A) with the
    run's tie margin (:func:`training.labeling.verdict_for`, the rule the label stage uses), ``""`` where the
    judgment failed, and the human votes (a reviewer's decision alone where the pair was adjudicated)."""
    units = []
    for row in rows:
        if row.p_a_ab is None and row.p_a_ba is None and row.verdict:
            # A verdict recorded without per-order probabilities (e.g. imported): both orders said it.
            ab, ba = row.verdict, (row.verdict if both_orders else None)
        else:  # an order that failed has no probability: "" (a judgment fails when either order does)
            ab = verdict_for(row.p_a_ab, tie_margin)
            ba = verdict_for(row.p_a_ba, tie_margin) if both_orders else None
        units.append(PairUnit(ab, ba, tuple(row.final_choices), row.length_a, row.length_b,
                              row.subset, row.principle))
    return units


def section(rows: Sequence[AuditRow], *, seed: int = 0, tie_margin: float = 0.05, both_orders: bool = True,
            length_controlled: bool = False) -> dict:
    """All figures over ``rows``; with ``length_controlled`` also ``alignment_length_controlled``, the
    alignment's units read at zero length difference (:func:`training.human_calibrated.length_controlled_agreement`,
    Dubois et al. 2024; bootstrap interval; ``raw`` is the plain alignment, ``length_coefficient`` the fitted
    weight of the length difference). It costs a few hundred logistic fits, so the report asks for it overall only.

    Rows whose judgment failed (verdict "") count only for inter-human agreement.
    Units: alignment, kappa, calibration and the human length preference count one unit per (judgment,
    human label), a pair a reviewer settled counting once with the decision as its label
    (:attr:`AuditRow.final_choices`); alpha one unit per comparison, over the auditors' own labels; position
    consistency and the judge's length preference one unit per judgment.

    Returns:
        ``{"n_items" (judged), "n_failed", "n_labelled", "n_labels", "n_adjudicated",
        "figures": {name: ProportionEstimate dict},
        "confusion": 3×3 (rows human, columns AI), "calibration_bins": [...]}``.
    """
    ai, human, p_a, human_lengths, human_choices = [], [], [], [], []
    units: dict[int, list[str]] = {}
    for row in rows:
        units.setdefault(row.comparison_id, [choice for _, choice in row.labels])
    judged = [row for row in rows if row.verdict]  # a failed judgment counts for inter-human agreement only
    for row in judged:
        for choice in row.final_choices:
            ai.append(row.verdict)
            human.append(choice)
            human_choices.append(choice)
            human_lengths.append((row.length_a, row.length_b))
            if row.p_a is not None:
                p_a.append((row.p_a, choice))
    calibration = agreement.calibration([p for p, _ in p_a], [h for _, h in p_a], seed=seed)
    figures = {
        "alignment": agreement.alignment(ai, human),
        "kappa": agreement.cohen_kappa(ai, human, seed=seed),
        "alpha": agreement.krippendorff_alpha(list(units.values()), seed=seed),
        "ece": calibration.ece,
        "position_consistency": agreement.position_consistency([r.position_consistent for r in judged]),
        "ai_prefers_longer": agreement.length_preference(
            [r.verdict for r in judged], [(r.length_a, r.length_b) for r in judged]
        ),
        "human_prefers_longer": agreement.length_preference(human_choices, human_lengths),
    }
    figures = {name: estimate.as_dict() for name, estimate in figures.items()}
    if length_controlled:
        lc = length_controlled_agreement(ai, human, [a for a, _ in human_lengths], [b for _, b in human_lengths],
                                         seed=seed)
        figures["alignment_length_controlled"] = {
            "value": lc.value, "low": lc.low, "high": lc.high, "n": lc.n, "method": "bootstrap",
            "raw": lc.raw, "length_coefficient": lc.length_coefficient,
        }
    return {
        "n_items": len(judged),
        "n_failed": len(rows) - len(judged),
        "n_labelled": sum(1 for r in judged if r.labels),
        "n_labels": len(human),
        "n_adjudicated": sum(1 for r in judged if r.adjudicated),
        "figures": figures,
        "confusion": agreement.confusion(ai, human),
        "calibration_bins": calibration.bins,
        "conventions": judge_conventions.convention_table(
            pair_units(rows, tie_margin=tie_margin, both_orders=both_orders), seed=seed
        ),
    }


def build_report(run: Run, scope: str = "random", *, seed: int = 0) -> dict:
    """The report of ``run`` over ``scope`` (see :data:`runs.audit.queries.SCOPES`): ``{"scope", "overall":
    section (with the length-controlled alignment), "principles": {name: section}, "subsets": {name: section},
    "auditors": per-auditor agreement (:func:`runs.audit.auditors.auditor_agreement`)}``, JSON-serialisable."""
    rows = audit_rows(run, scope)
    judge = run.run_config.judge
    options = {"seed": seed, "tie_margin": judge.tie_margin, "both_orders": judge.both_orders}
    by_principle: dict[str, list[AuditRow]] = {}
    by_subset: dict[str, list[AuditRow]] = {}
    for row in rows:
        by_principle.setdefault(row.principle, []).append(row)
        if row.subset:
            by_subset.setdefault(row.subset, []).append(row)
    from runs.audit.auditors import auditor_agreement
    from runs.audit.workload import annotator_names

    names = annotator_names({key for row in rows for key, _ in row.labels})
    return {
        "scope": scope,
        "overall": section(rows, **options, length_controlled=True),
        "principles": {name: section(group, **options) for name, group in sorted(by_principle.items())},
        "subsets": {name: section(group, **options) for name, group in sorted(by_subset.items())},
        "auditors": auditor_agreement(rows, names, seed=seed),
    }


def disagreements(rows: Sequence[AuditRow]) -> list[dict]:
    """Successfully judged rows where the final human label (a reviewer's decision, else the plurality of A/B/tie
    labels; a shared top count is a tie) differs from the AI verdict, or an auditor flagged the rationale, as
    plain dicts for the list and the exports."""
    result = []
    for row in rows:
        choices = [choice for _, choice in row.labels]
        if not row.verdict or (not choices and not row.adjudicated and not row.flags):
            continue
        majority = row.human_verdict
        if majority == row.verdict and not row.flags:
            continue
        result.append(
            {
                "comparison_id": row.comparison_id,
                "judgment_id": row.judgment_id,
                "principle": row.principle,
                "stratum": row.stratum,
                "ai_verdict": row.verdict,
                "p_a": row.p_a,
                "ai_confidence": None if row.p_a is None else round(abs(row.p_a - 0.5) * 2, 4),
                "position_consistent": row.position_consistent,
                "human_majority": majority,
                "human_labels": choices,
                "adjudicated": row.adjudicated,
                "n_labels": len(choices),
                "flags": sorted(set(row.flags)),
                "rationale": row.rationale,
            }
        )
    return result


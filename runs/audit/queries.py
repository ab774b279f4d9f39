"""Database reads of the audit: the rows a report is computed from, human-majority labels, and the
alignment counts the gate needs, aggregated in the database."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Length, Trim
from django.db.models.lookups import Exact

from runs.models import Adjudication, AuditItem, Comparison, HumanChoice, HumanLabel, Judgment, Run
from training.judge_conventions import human_majority as majority_vote

#: What the dashboard and the disagreement list can be computed over.
SCOPES = {
    "random": "Random audit stratum (unbiased estimates)",
    "uncertain": "Uncertain audit stratum (near 0.5, or orders disagreed)",
    "disagree": "Judges-disagree audit stratum (a panel's judges gave different verdicts)",
    "chosen": "Pairs chosen from the pair browser (hand-picked, so not unbiased)",
    "labelled": "Every judged pair with a human label (incl. imported reference pairs)",
    "adjudicated": "Audit pairs a reviewer settled (both strata; selected for disagreement, so not unbiased)",
}
DECISIVE = (HumanChoice.A, HumanChoice.B)
COUNTED = (HumanChoice.A, HumanChoice.B, HumanChoice.TIE)


def latest_decision(comparison_ref: str = "comparison") -> Subquery:
    """Subquery: the choice of the latest :class:`~runs.models.Adjudication` of the outer row's comparison
    (``comparison_ref`` names the outer field holding the comparison id), or NULL when none."""
    return Subquery(
        Adjudication.objects.filter(comparison=OuterRef(comparison_ref))
        .order_by("-created_at", "-pk").values("choice")[:1]
    )


def without_degenerate_pairs(queryset: QuerySet, path: str = "comparison__") -> QuerySet:
    """``queryset`` without rows whose comparison is degenerate: its two replies are identical, both empty
    included (:func:`training.pairing.degenerate_reason`, compared here after trimming spaces in the database).
    Such a pair says nothing about a principle, so it never counts in agreement or the audit sample. New runs
    never form such comparisons; this keeps those of older runs out too.

    Args:
        queryset: of a model related to :class:`~runs.models.Comparison`.
        path: the lookup path from that model to the comparison (``""`` for comparisons themselves).
    """
    reply_a, reply_b = Trim(f"{path}completion_a__text"), Trim(f"{path}completion_b__text")
    return queryset.exclude(Exact(reply_a, reply_b))


@dataclass
class AuditRow:
    """One AI judgment under audit, with the human labels of its comparison (skips left out).

    Attributes:
        labels: ``(annotator, choice)`` pairs; annotator is ``"user:<id>"`` or the external annotator's name.
        adjudicated: a reviewer's latest decision on the pair (its final human label), "" when none.
        flags: the rationale flags auditors set ("reason_wrong", "verdict_wrong").
        length_a, length_b: response lengths in characters.
        p_a_ab, p_a_ba: each presentation order's P(A) (B/A mapped back to A); None where not asked or failed.
        subset: the prompt's ``metadata["subset"]`` (a benchmark's scenario or category), "" when none.
    """

    comparison_id: int
    judgment_id: int
    principle: str
    verdict: str
    p_a: float | None
    position_consistent: bool | None
    length_a: int
    length_b: int
    rationale: str = ""
    stratum: str = ""
    p_a_ab: float | None = None
    p_a_ba: float | None = None
    subset: str = ""
    labels: list[tuple[str, str]] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    confidences: list[int] = field(default_factory=list)
    adjudicated: str = ""

    @property
    def final_choices(self) -> list[str]:
        """The human side of the pair as the AI is measured against it: the adjudicated decision alone where a
        reviewer settled the pair, else every counted label."""
        return [self.adjudicated] if self.adjudicated else [choice for _, choice in self.labels]

    @property
    def human_verdict(self) -> str:
        """The pair's final human label: the adjudicated decision, else the majority of the labels (a shared top
        count is a tie), "" without labels."""
        return self.adjudicated or (majority_vote([choice for _, choice in self.labels]) if self.labels else "")


def scoped_judgments(run: Run, scope: str) -> QuerySet[Judgment]:
    """Judgments in ``scope`` (see :data:`SCOPES`) of ``run``, failed ones included (their verdict is "";
    they count for inter-human agreement only).

    Raises:
        ValueError: an unknown scope.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown audit scope {scope!r}; expected one of {', '.join(SCOPES)}")
    judgments = without_degenerate_pairs(Judgment.objects.filter(comparison__run=run))
    if scope == "adjudicated":
        return judgments.filter(Exists(AuditItem.objects.filter(run=run, judgment=OuterRef("pk"))),
                                Exists(Adjudication.objects.filter(comparison=OuterRef("comparison"))))
    if scope == "labelled":
        labelled = HumanLabel.objects.filter(comparison=OuterRef("comparison"), choice__in=COUNTED)
        return judgments.filter(Exists(labelled))
    return judgments.filter(audit_items__run=run, audit_items__stratum=scope)


def audit_rows(run: Run, scope: str = "random") -> list[AuditRow]:
    """The rows of ``scope``: judgment, principle, response lengths (computed in the database) and human labels."""
    judgments = (
        scoped_judgments(run, scope)
        .annotate(
            principle_name=F("principle__name"),
            length_a=Length("comparison__completion_a__text"),
            length_b=Length("comparison__completion_b__text"),
            stratum=Subquery(
                AuditItem.objects.filter(run=run, comparison=OuterRef("comparison")).values("stratum")[:1]
            ),
            # KT() reads only a field of the model itself: across relations it keys into comparison_id on
            # PostgreSQL ("bigint #>> unknown"); KeyTextTransform takes the related path as its source
            subset=KeyTextTransform("subset", "comparison__prompt__metadata"),
            adjudicated=latest_decision(),
        )
        .values(
            "id", "comparison_id", "principle_name", "verdict", "p_a", "position_consistent",
            "length_a", "length_b", "rationale", "stratum", "p_a_ab", "p_a_ba", "subset", "adjudicated",
        )
        .order_by("comparison_id", "id")
    )
    rows = [
        AuditRow(
            comparison_id=j["comparison_id"], judgment_id=j["id"], principle=j["principle_name"] or "(no principle)",
            verdict=j["verdict"], p_a=j["p_a"], position_consistent=j["position_consistent"],
            length_a=j["length_a"] or 0, length_b=j["length_b"] or 0, rationale=j["rationale"],
            stratum=j["stratum"] or "", p_a_ab=j["p_a_ab"], p_a_ba=j["p_a_ba"], subset=j["subset"] or "",
            adjudicated=j["adjudicated"] or "",
        )
        for j in judgments
    ]
    by_comparison: dict[int, list[AuditRow]] = {}
    for row in rows:
        by_comparison.setdefault(row.comparison_id, []).append(row)
    labels = (
        HumanLabel.objects.filter(comparison_id__in=list(by_comparison))
        .values_list("comparison_id", "auditor_id", "external_annotator", "choice", "rationale_flag", "confidence")
        .order_by("comparison_id", "pk")
    )
    for comparison_id, auditor_id, external, choice, flag, confidence in labels:
        for row in by_comparison[comparison_id]:
            if flag:
                row.flags.append(flag)
            if choice in COUNTED:
                row.labels.append((f"user:{auditor_id}" if auditor_id else external, choice))
                if confidence:
                    row.confidences.append(confidence)
    return rows


def human_majority(comparisons: QuerySet[Comparison]) -> dict[int, str]:
    """The final human verdict of each comparison that has human labels: a reviewer's latest adjudication where
    there is one (:mod:`runs.audit.adjudication`), else the majority vote of its A/B/tie labels (skips excluded;
    :func:`training.judge_conventions.human_majority`, so a shared top count such as 1 A vs 1 B is ``"tie"``),
    counted in the database.

    Used by the drift guard's human anchor, the linter and the human-calibrated evaluation estimate.

    Args:
        comparisons: a queryset of :class:`runs.models.Comparison`.

    Returns:
        ``{comparison_id: "A" | "B" | "tie"}``; comparisons without a counted label are absent.
    """
    counts = (
        HumanLabel.objects.filter(comparison__in=comparisons.values("pk"), choice__in=COUNTED)
        .values("comparison_id")
        .annotate(
            a=Count("pk", filter=Q(choice=HumanChoice.A)),
            b=Count("pk", filter=Q(choice=HumanChoice.B)),
            t=Count("pk", filter=Q(choice=HumanChoice.TIE)),
        )
    )
    result = {}
    for row in counts:
        result[row["comparison_id"]] = majority_vote({"A": row["a"], "B": row["b"], "tie": row["t"]})
    decided = (
        Adjudication.objects.filter(comparison__in=comparisons.values("pk"))
        .order_by("comparison_id", "created_at", "pk").values_list("comparison_id", "choice")
    )
    result.update(decided)  # ascending: each comparison's latest decision is written last
    return result


def alignment_counts(run: Run, stratum: str = AuditItem.Stratum.RANDOM) -> tuple[int, int]:
    """AI labeler alignment counts on one audit stratum, in the database: ``(agreeing, n)`` where n counts
    the decisive (A/B) human labels on audited comparisons whose audited AI judgment succeeded, and
    agreeing those whose AI verdict is the same (an AI tie counts as a disagreement).

    A pair a reviewer settled counts once, with the latest decision as its label, in place of its auditors'
    labels (:mod:`runs.audit.adjudication`); the dashboard's alignment figure counts the same way."""
    verdict = AuditItem.objects.filter(run=run, stratum=stratum, comparison=OuterRef("comparison")).values(
        "judgment__verdict"
    )[:1]
    settled = Exists(Adjudication.objects.filter(comparison=OuterRef("comparison")))
    labels = without_degenerate_pairs(HumanLabel.objects.all())
    totals = (
        labels.filter(comparison__audit_items__run=run, comparison__audit_items__stratum=stratum)
        .filter(~settled)
        .filter(choice__in=DECISIVE)
        .annotate(ai=Subquery(verdict))
        .filter(ai__in=COUNTED)
        .aggregate(n=Count("pk"), agree=Count("pk", filter=Q(choice=F("ai"))))
    )
    decisions = (
        without_degenerate_pairs(AuditItem.objects.filter(run=run, stratum=stratum))
        .annotate(decision=latest_decision())
        .filter(decision__in=DECISIVE, judgment__verdict__in=COUNTED)
        .aggregate(n=Count("pk"), agree=Count("pk", filter=Q(decision=F("judgment__verdict"))))
    )
    return totals["agree"] + decisions["agree"], totals["n"] + decisions["n"]


def labelling_progress(run: Run, user) -> dict:
    """Audit size per stratum, items with at least one label, and items the user labelled."""
    items = AuditItem.objects.filter(run=run)
    mine = HumanLabel.objects.filter(comparison=OuterRef("comparison"), auditor=user)
    any_label = HumanLabel.objects.filter(comparison=OuterRef("comparison"), choice__in=COUNTED)
    return items.aggregate(
        total=Count("pk"),
        random=Count("pk", filter=Q(stratum=AuditItem.Stratum.RANDOM)),
        uncertain=Count("pk", filter=Q(stratum=AuditItem.Stratum.UNCERTAIN)),
        disagree=Count("pk", filter=Q(stratum=AuditItem.Stratum.DISAGREE)),
        chosen=Count("pk", filter=Q(stratum=AuditItem.Stratum.CHOSEN)),
        labelled=Count("pk", filter=Q(Exists(any_label))),
        mine=Count("pk", filter=Q(Exists(mine))),
    )

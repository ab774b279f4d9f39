"""Labels beyond A/B: a rating of each response under every enabled principle (1-5), and a corrected response
(the auditor rewrites the better answer), both optional, asked for when the run's audit plan collects them
(:attr:`runs.models.AuditPlan.collect_ratings`, :attr:`~runs.models.AuditPlan.collect_corrections`).

Both belong to the auditor's :class:`~runs.models.HumanLabel` (:class:`~runs.models.ResponseRating`,
:class:`~runs.models.CorrectedResponse`) and are stored in the comparison's terms (A, B), whatever order the
auditor saw. Pointwise ratings per aspect beside a pairwise choice follow HelpSteer (Wang et al. 2023) and
UltraFeedback (Cui et al. 2023); a human rewrite of the preferred answer is a demonstration for supervised
fine-tuning and, against the worse answer, a preference pair (:func:`runs.exporting.correction_rows`).
"""
from __future__ import annotations

from django.db import transaction
from django.db.models import Avg, Count, F, Q

from constitutions.models import Principle
from runs.models import CorrectedResponse, HumanLabel, ResponseRating, Run, Side

#: The rating scale.
SCORES = (1, 2, 3, 4, 5)


def rated_principles(run: Run) -> list[Principle]:
    """The principles a response is rated under: the enabled principles of the run's constitution version, in
    their order (none for an external run, which pins no constitution)."""
    if not run.constitution_version_id:
        return []
    return list(run.constitution_version.principles.filter(enabled=True).order_by("position"))


@transaction.atomic
def save_extras(label: HumanLabel, *, ratings: dict[tuple[int, str], int] | None = None,
                correction: str | None = None, rewrites: str = "") -> None:
    """Store the ratings and the correction given with ``label``, replacing what it had.

    Args:
        ratings: ``{(principle id, "A" | "B"): score 1-5}``: the label's ratings become exactly these (an empty
            dict removes them); None leaves them as they are (the plan does not collect ratings).
        correction: the rewritten answer; "" (or only spaces) removes the label's correction; None leaves it.
        rewrites: the side the correction rewrites, "A" or "B" (the side the auditor preferred).

    Raises:
        ValueError: a score outside 1-5, a side other than A/B, or a correction without the side it rewrites.
    """
    if ratings is not None:
        for (_, side), score in ratings.items():
            if side not in Side.values or score not in SCORES:
                raise ValueError(f"a rating is a side (A or B) and a score from 1 to 5; got {side!r}: {score!r}")
        ResponseRating.objects.filter(label=label).delete()
        ResponseRating.objects.bulk_create(
            ResponseRating(label=label, principle_id=principle_id, side=side, score=score)
            for (principle_id, side), score in sorted(ratings.items())
        )
    if correction is not None:
        if not correction.strip():
            CorrectedResponse.objects.filter(label=label).delete()
        elif rewrites not in Side.values:
            raise ValueError(f"a correction rewrites response A or B; got {rewrites!r}")
        else:
            CorrectedResponse.objects.update_or_create(label=label, defaults={"text": correction,
                                                                              "rewrites": rewrites})


def stored_extras(label: HumanLabel | None) -> tuple[dict[tuple[int, str], int], CorrectedResponse | None]:
    """A label's ratings ``{(principle id, "A" | "B"): score}`` and its correction (or None)."""
    if label is None:
        return {}, None
    ratings = {(r.principle_id, r.side): r.score for r in ResponseRating.objects.filter(label=label)}
    return ratings, CorrectedResponse.objects.filter(label=label).first()


def rating_summary(run: Run) -> list[dict]:
    """The mean rating of each side of the run's rated pairs, per principle, aggregated in the database.

    Returns:
        One dict per rated principle in the constitution's order: ``principle``, ``mean_a``/``n_a`` and
        ``mean_b``/``n_b`` (response A and B as the comparison holds them), ``mean_preferred``/``n_preferred``
        (the response the rater preferred, where they chose A or B) and ``mean_other``/``n_other`` (the
        response they found worse). A mean is None without ratings.
    """
    decisive = Q(label__choice__in=Side.values)
    preferred = decisive & Q(side=F("label__choice"))
    other = decisive & ~Q(side=F("label__choice"))
    rows = (
        ResponseRating.objects.filter(label__comparison__run=run)
        .values("principle_id", "principle__name", "principle__position").order_by("principle__position")
        .annotate(mean_a=Avg("score", filter=Q(side=Side.A)), n_a=Count("pk", filter=Q(side=Side.A)),
                  mean_b=Avg("score", filter=Q(side=Side.B)), n_b=Count("pk", filter=Q(side=Side.B)),
                  mean_preferred=Avg("score", filter=preferred), n_preferred=Count("pk", filter=preferred),
                  mean_other=Avg("score", filter=other), n_other=Count("pk", filter=other))
    )
    return [{**row, "principle": row.pop("principle__name")} for row in rows]


def correction_counts(run: Run) -> dict:
    """How many corrected responses the run's pairs have: ``{"corrections", "pairs", "auditors"}``, counted in
    the database."""
    return CorrectedResponse.objects.filter(label__comparison__run=run).aggregate(
        corrections=Count("pk"), pairs=Count("label__comparison", distinct=True),
        auditors=Count("label__auditor", distinct=True),
    )

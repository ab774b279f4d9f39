"""Human-calibrated figures of a run, read from the database: prediction-powered estimates of AI labeler
alignment and of the evaluation win rate (the audited pairs are the labelled set), and the evaluation's
length-controlled win rate. The statistics live in :mod:`training.human_calibrated`."""
from __future__ import annotations

from django.db.models.functions import Length

from runs.audit.queries import audit_rows, human_majority
from runs.models import Comparison, Judgment, Run
from training.human_calibrated import length_controlled_win_rate, ppi_mean

#: Human label -> the tuned policy's score in an evaluation pair (A = tuned, B = reference; a tie is half).
EVAL_SCORE = {"A": 1.0, "B": 0.0, "tie": 0.5}


def alignment_estimate(run: Run) -> dict:
    """PPI estimate of the share of the run's judged training pairs on which humans agree with the judge.

    Labelled set: the random audit stratum's decisive final human labels (a reviewer's decision, else the
    majority; Y = 1 when the judge's verdict equals it). Predictor: the judge's own probability of its verdict,
    ``max(P(A), 1 - P(A))``. Unlabelled set: every other successfully judged training pair. Valid whatever the
    judge's calibration.
    """
    rows = [r for r in audit_rows(run, "random") if r.verdict and r.p_a is not None]
    labelled, y, yhat = set(), [], []
    for row in rows:
        human = row.human_verdict
        if human not in ("A", "B"):
            continue
        labelled.add(row.judgment_id)
        y.append(1.0 if row.verdict == human else 0.0)
        yhat.append(max(row.p_a, 1 - row.p_a))
    others = (
        Judgment.objects.filter(comparison__run=run, comparison__purpose="train", p_a__isnull=False)
        .exclude(verdict="").exclude(pk__in=labelled).values_list("p_a", flat=True)
    )
    return ppi_mean(y, yhat, [max(p, 1 - p) for p in others]).as_dict()


def evaluation_estimates(run: Run) -> dict | None:
    """The evaluation's win rate three ways (AI only, human only, PPI) and length-controlled; None when the
    run has no evaluation judgments."""
    judgments = list(
        Judgment.objects.filter(comparison__run=run, comparison__purpose="eval").exclude(verdict="")
        .annotate(length_tuned=Length("comparison__completion_a__text"),
                  length_reference=Length("comparison__completion_b__text"))
        .order_by("comparison_id", "pk").values("comparison_id", "verdict", "length_tuned", "length_reference")
    )
    if not judgments:
        return None
    first = {}
    for j in judgments:  # one judgment per evaluation pair
        first.setdefault(j["comparison_id"], j)
    humans = human_majority(Comparison.objects.filter(pk__in=list(first)))  # adjudicated where settled
    y, yhat, unlabelled = [], [], []
    for comparison_id, j in first.items():
        ai = EVAL_SCORE.get(j["verdict"])
        if ai is None:
            continue
        human = humans.get(comparison_id, "")
        if human in EVAL_SCORE:
            y.append(EVAL_SCORE[human])
            yhat.append(ai)
        else:
            unlabelled.append(ai)
    rows = list(first.values())
    lc = length_controlled_win_rate([r["verdict"] for r in rows], [r["length_tuned"] or 0 for r in rows],
                                    [r["length_reference"] or 0 for r in rows], seed=run.pk)
    return {"ppi": ppi_mean(y, yhat, unlabelled).as_dict(), "length_controlled": lc.as_dict()}

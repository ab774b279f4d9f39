"""Human-calibrated figures of a run, read from the database: prediction-powered estimates of AI labeler
alignment and of the evaluation win rate (the audited pairs are the labelled set), and the evaluation's
length-controlled win rate. The statistics live in :mod:`training.human_calibrated`."""
from __future__ import annotations

from runs.audit.queries import audit_rows, human_majority, without_degenerate_pairs
from runs.models import Comparison, Judgment, Run
from training.human_calibrated import ppi_mean

#: Human label -> the tuned policy's score in an evaluation pair (A = tuned, B = reference; a tie is half).
EVAL_SCORE = {"A": 1.0, "B": 0.0, "tie": 0.5}


def alignment_estimate(run: Run) -> dict:
    """PPI estimate of the share of the run's judged training pairs on which humans agree with the judge.

    Labelled set: the random audit stratum's training pairs with a decisive final human label (a reviewer's
    decision, else the majority; Y = 1 when the judge's verdict equals it). Predictor: the judge's own
    probability of its verdict, ``max(P(A), 1 - P(A))``. Unlabelled set: every other successfully judged
    training pair, degenerate pairs (identical replies) left out as the audit leaves them out. Valid whatever the
    judge's calibration.
    """
    rows = [r for r in audit_rows(run, "random") if r.verdict and r.p_a is not None]
    # the random stratum is drawn from every judged pair, evaluation pairs included: keep the training ones
    train = set(Comparison.objects.filter(run=run, purpose="train", pk__in={r.comparison_id for r in rows})
                .values_list("pk", flat=True))
    rows = [r for r in rows if r.comparison_id in train]
    labelled, y, yhat = set(), [], []
    for row in rows:
        human = row.human_verdict
        if human not in ("A", "B"):
            continue
        labelled.add(row.judgment_id)
        y.append(1.0 if row.verdict == human else 0.0)
        yhat.append(max(row.p_a, 1 - row.p_a))
    others = (
        without_degenerate_pairs(Judgment.objects.filter(comparison__run=run, comparison__purpose="train",
                                                         p_a__isnull=False))
        .exclude(verdict="").exclude(pk__in=labelled).values_list("p_a", flat=True)
    )
    return ppi_mean(y, yhat, [max(p, 1 - p) for p in others]).as_dict()


def evaluation_estimates(run: Run) -> dict | None:
    """The evaluation's win rate three ways (AI only, human only, PPI) and length-controlled; None when the
    run has no successfully judged evaluation pair.

    The AI's verdict on a pair is the one the evaluate stage's win rate counts
    (:func:`runs.stages.evaluate.eval_verdicts`: the mean P(A) over the principles judged, under the run's
    tie margin), so the plain AI figure here and the run page's win rate are the same number.
    """
    from runs.stages.evaluate import eval_verdicts, length_controlled

    comparisons = Comparison.objects.filter(run=run, purpose="eval")
    verdicts = {cid: verdict for cid, (_, verdict) in eval_verdicts(run, comparisons).items()
                if verdict in EVAL_SCORE}
    if not verdicts:
        return None
    humans = human_majority(comparisons.filter(pk__in=list(verdicts)))  # adjudicated where settled
    y, yhat, unlabelled = [], [], []
    for comparison_id, verdict in verdicts.items():
        human = humans.get(comparison_id, "")
        if human in EVAL_SCORE:
            y.append(EVAL_SCORE[human])
            yhat.append(EVAL_SCORE[verdict])
        else:
            unlabelled.append(EVAL_SCORE[verdict])
    lc = length_controlled(run, comparisons, verdicts)  # the figure the run page shows, the same verdicts
    return {"ppi": ppi_mean(y, yhat, unlabelled).as_dict(), "length_controlled": lc.as_dict()}

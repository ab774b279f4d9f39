"""A panel of judges: several AI judges label the same comparisons and their verdicts are pooled (Verga et al.
2024, "Replacing Judges with Juries: Evaluating LLM Generations with a Panel of Diverse Models", PoLL: a panel
of smaller, diverse judges agrees with humans better than one large judge, with less intra-model bias).

A run's panel is its judge plus the entries of ``judge.panel`` (:meth:`training.config.JudgeConfig.members`).
Each judge labels every (comparison, principle) unit under the labeling protocol (:mod:`training.labeling`:
both orders, averaged), and its judgments are kept under its own judge id. The panel's verdict on a unit,
:func:`aggregate`, is stored as one more judgment under :func:`panel_judge_id`: the judgment the reward model
trains on, the audit compares with humans and the pages show, so a panel run reads like a one-judge run.

Two aggregations, as PoLL pools its judges:

* ``majority`` ("max voting"): the plurality of the judges' verdicts, a shared top count a tie (the one rule
  for a majority, :func:`training.judge_conventions.human_majority`); P(A) is the panel's vote share for A
  (a tie vote counts half), so the confidence filters read how united the panel was;
* ``mean`` ("average pooling"): the mean of the judges' P(A) (each already averaged over both orders), the
  verdict from it with ``judge.tie_margin`` (:func:`training.labeling.verdict_for`).

How far the judges agree with one another: Krippendorff's alpha (nominal, ``krippendorff``, with a bootstrap
interval; :func:`training.agreement.krippendorff_alpha`) and Fleiss' kappa (``statsmodels.stats.inter_rater.
fleiss_kappa``, over the units every judge decided; :func:`fleiss_kappa`).

Plain Python, no Django.
"""
from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from training.agreement import (
    BOOTSTRAP_RESAMPLES,
    CHOICES,
    ProportionEstimate,
    _bootstrap,
    _with_percentiles,
    krippendorff_alpha,
)
from training.config import JudgeConfig
from training.judge_conventions import human_majority
from training.judges import JudgedPair, judge_id_for
from training.labeling import orders_agree, verdict_for

#: Judge ids of panel verdicts start with this.
PANEL_PREFIX = "panel:"
#: The aggregations ``judge.panel_aggregation`` names.
AGGREGATIONS = ("majority", "mean")


def member_ids(config: JudgeConfig) -> list[str]:
    """The judge ids of the panel's judges, the run's judge first (``[judge id]`` without a panel)."""
    return [judge_id_for(member) for member in config.members()]


def panel_judge_id(config: JudgeConfig) -> str:
    """The judge id the panel's verdicts are stored under: ``panel:<aggregation>:<n judges>:<digest>``, the
    digest (12 hex digits of SHA-256) naming the judges, so that another panel never shares its rows.
    Computable without loading anything."""
    ids = member_ids(config)
    digest = hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()[:12]
    return f"{PANEL_PREFIX}{config.panel_aggregation}:{len(ids)}:{digest}"


def verdict_judge_id(config: JudgeConfig) -> str:
    """The judge id of a run's verdicts (the judgments the reward model trains on): the panel's id
    (:func:`panel_judge_id`) when ``judge.panel`` names more judges, else the judge's own
    (:func:`training.judges.judge_id_for`)."""
    return panel_judge_id(config) if config.panel else judge_id_for(config)


def is_panel_id(judge_id: str) -> bool:
    """Whether ``judge_id`` names a panel's verdicts."""
    return judge_id.startswith(PANEL_PREFIX)


def vote_share(verdicts: Sequence[str]) -> float | None:
    """The share of ``verdicts`` preferring A, a ``"tie"`` counting half; None without an A/B/tie verdict."""
    counted = [v for v in verdicts if v in CHOICES]
    if not counted:
        return None
    return (sum(v == "A" for v in counted) + 0.5 * sum(v == "tie" for v in counted)) / len(counted)


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


@dataclass(frozen=True)
class Vote:
    """One judge's judgment of one unit, as the panel sees it.

    Attributes:
        judge_id: the judge.
        pair: its :class:`~training.judges.JudgedPair` (a failed one has verdict ``""``).
    """

    judge_id: str
    pair: JudgedPair


def aggregate(key: Hashable, votes: Sequence[Vote], *, method: str, tie_margin: float) -> JudgedPair:
    """The panel's judgment of one unit from its judges' votes.

    Args:
        key: the unit's key, returned on the result.
        votes: one per judge of the panel, in panel order.
        method: ``majority`` or ``mean`` (see the module docstring).
        tie_margin: ``judge.tie_margin``: the ``mean`` verdict's tie rule, and each order's verdict of a judge
            for the ``majority`` panel's per-order vote shares.

    Returns:
        A :class:`~training.judges.JudgedPair`: ``p_a_ab`` / ``p_a_ba`` the panel's figure for each order
        (``mean``: the judges' mean P(A) in that order; ``majority``: the vote share of the judges' verdicts in
        that order), ``p_a`` and ``verdict`` as the module docstring says, ``position_consistent`` whether the
        two orders' panel figures favour the same response (:func:`training.labeling.orders_agree`); tokens,
        latency, attempts and cost summed over the judges; ``raw_outputs`` one entry per judge (``judge``,
        ``verdict``, ``p_a``, ``p_a_ab``, ``p_a_ba``, ``position_consistent``, ``cost``); ``rationale`` each
        judge's, headed by its id and verdict. When a judge's vote failed (or is missing), the panel's judgment
        fails too (verdict ``""``, the failing judges named in ``error``): every unit is decided by the whole
        panel, and a resume judges the failed votes again.

    Raises:
        ValueError: an unknown ``method`` or no votes.
    """
    if method not in AGGREGATIONS:
        raise ValueError(f"panel aggregation: unknown method {method!r} ({', '.join(AGGREGATIONS)})")
    if not votes:
        raise ValueError("a panel verdict needs at least one vote")
    pairs = [v.pair for v in votes]
    raw = [
        {"judge": v.judge_id, "verdict": v.pair.verdict, "p_a": v.pair.p_a, "p_a_ab": v.pair.p_a_ab,
         "p_a_ba": v.pair.p_a_ba, "position_consistent": v.pair.position_consistent, "cost": v.pair.cost}
        for v in votes
    ]
    failed = [v for v in votes if not v.pair.verdict]
    rationale = "\n\n".join(
        f"[{v.judge_id}: {v.pair.verdict or 'failed'}] {v.pair.rationale}".rstrip() for v in votes
    )
    totals = {
        "latency_ms": sum(p.latency_ms for p in pairs),
        "prompt_tokens": sum(p.prompt_tokens for p in pairs),
        "completion_tokens": sum(p.completion_tokens for p in pairs),
        "cost": sum(p.cost for p in pairs),
        "attempts": sum(p.attempts for p in pairs),
    }
    if failed:
        error = "; ".join(f"{v.judge_id}: {v.pair.error or 'failed'}" for v in failed)
        return JudgedPair(key=key, p_a_ab=None, p_a_ba=None, p_a=None, verdict="", position_consistent=None,
                          rationale=rationale, raw_outputs=raw, error=f"{len(failed)} of {len(votes)} judges "
                          f"failed: {error}", **totals)
    if method == "mean":
        p_a_ab = _mean([p.p_a_ab for p in pairs])
        p_a_ba = _mean([p.p_a_ba for p in pairs])
        p_a = _mean([p.p_a for p in pairs])
        verdict = verdict_for(p_a, tie_margin)
    else:
        p_a_ab = vote_share([verdict_for(p.p_a_ab, tie_margin) for p in pairs])
        p_a_ba = vote_share([verdict_for(p.p_a_ba, tie_margin) for p in pairs if p.p_a_ba is not None])
        p_a = vote_share([p.verdict for p in pairs])
        verdict = human_majority([p.verdict for p in pairs])
    return JudgedPair(key=key, p_a_ab=p_a_ab, p_a_ba=p_a_ba, p_a=p_a, verdict=verdict,
                      position_consistent=orders_agree(p_a_ab, p_a_ba), rationale=rationale, raw_outputs=raw,
                      **totals)


def judges_agree(votes: Sequence[Vote]) -> bool | None:
    """Whether every judge gave the same verdict (ties included); None when a vote failed."""
    verdicts = [v.pair.verdict for v in votes]
    if not verdicts or "" in verdicts:
        return None
    return len(set(verdicts)) == 1


# --- agreement among the judges ------------------------------------------------------------------------


def _unit_counts(units: Sequence[Sequence[str | None]]) -> np.ndarray:
    """Per-unit category counts (U × 3) of the units every rater decided (no None)."""
    index = {label: i for i, label in enumerate(CHOICES)}
    rows = []
    for unit in units:
        if unit and all(v in index for v in unit):
            row = np.zeros(len(CHOICES))
            for v in unit:
                row[index[v]] += 1
            rows.append(row)
    return np.array(rows).reshape(-1, len(CHOICES))


def _fleiss_from_counts(counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Fleiss' kappa for each row of ``weights`` (B × U) over ``counts`` (U × k, m raters per unit):
    (P̄ - P̄e) / (1 - P̄e) with the units weighted (Fleiss 1971)."""
    m = counts.sum(axis=1)[0]
    per_unit = ((counts**2).sum(axis=1) - m) / (m * (m - 1))  # U: agreeing rater pairs
    total = weights.sum(axis=1)  # B
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = (weights @ per_unit) / total
        shares = (weights @ counts) / (m * total)[:, None]  # B × k
        expected = (shares**2).sum(axis=1)
        return (observed - expected) / (1 - expected)


def fleiss_kappa(
    units: Sequence[Sequence[str | None]], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> ProportionEstimate:
    """Fleiss' kappa (Fleiss 1971, ``statsmodels.stats.inter_rater.fleiss_kappa``) of the judges' verdicts, with
    a percentile bootstrap interval over units.

    Args:
        units: one sequence per unit of the verdicts its judges gave (``"A"``, ``"B"``, ``"tie"``, or None for
            a failed or missing one), every unit with the same judges in the same order; Fleiss' kappa needs
            the same number of raters per unit, so only units every judge decided count.

    Returns:
        ``n`` is the number of units counted; ``value`` None with fewer than 2 judges, no unit, or one verdict
        used throughout (kappa is undefined).
    """
    from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

    counts = _unit_counts(units)
    n_units = len(counts)
    if n_units == 0 or counts.sum(axis=1)[0] < 2:
        return ProportionEstimate(None, None, None, n_units, "bootstrap")
    shares = counts.sum(axis=0)
    if (shares > 0).sum() < 2:
        return ProportionEstimate(None, None, None, n_units, "bootstrap")
    value = float(statsmodels_fleiss(counts, method="fleiss"))
    boot = _bootstrap(n_units, resamples, seed, lambda weights: _fleiss_from_counts(counts, weights))
    return _with_percentiles(value, boot, n_units)


def judges_agreement(units: Sequence[Sequence[str | None]], *, seed: int = 0) -> dict[str, ProportionEstimate]:
    """How far a panel's judges agree with one another, beyond chance: ``{"alpha": Krippendorff's alpha
    (nominal; units with 2+ verdicts), "kappa": Fleiss' kappa (units every judge decided)}``, each with its
    bootstrap interval and n. ``units`` as :func:`fleiss_kappa` takes them."""
    return {"alpha": krippendorff_alpha(units, seed=seed), "kappa": fleiss_kappa(units, seed=seed)}

"""Human-calibrated estimates: prediction-powered inference (PPI) and length-controlled win rates.

**Prediction-powered inference** (Angelopoulos et al. 2023, "Prediction-powered inference", Science; PPI++,
Angelopoulos, Duchi & Zrnic 2023), through the ``ppi-python`` package. A run has many AI labels and a small
human audit. PPI estimates what humans would say over *all* items from the AI labels, corrected by the
AI-vs-human differences seen on the audited items, with a confidence interval that is valid whatever the
AI's quality: ``theta = mean(f(unlabelled)) + mean(y - f(labelled))`` (with PPI++'s power tuning). The gain
is reported as an effective sample size: how many human labels a human-only interval of the same width needs.

**Length-controlled win rate** (Dubois et al. 2024, "Length-Controlled AlpacaEval"): judges prefer longer
answers, so a policy can win by writing more. A logistic model of the judge's preference on the normalised
length difference ``tanh((len_tuned - len_ref) / sd)`` is fitted, and the win rate is read at zero length
difference: ``sigmoid(intercept)``. A tie counts half a win (two half-weight observations). The interval is a
percentile bootstrap over comparisons.

**Length-controlled agreement**: the same control on AI labeler alignment. Where humans also prefer longer
answers, a judge that sides with the longer answer agrees with them more often than its reading of the content
earns. A logistic model of "the AI's verdict is the human's" on ``tanh(delta / sd)``, ``delta`` the length of the
response the human preferred minus the other's, is read at zero difference: the agreement on pairs of equal
length (:func:`length_controlled_agreement`).

Plain Python over plain inputs; no Django.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 400


@dataclass(frozen=True)
class PPIEstimate:
    """A prediction-powered estimate of a mean, next to the human-only and AI-only figures.

    Attributes:
        value, low, high: PPI point estimate and 95% interval.
        human_value, human_low, human_high: the classical estimate from the human labels alone.
        ai_value: the plain mean of the AI labels over every item (no interval: it is biased by the AI's errors).
        n_labelled, n_unlabelled: items with a human label, and AI-only items.
        effective_n: human labels a human-only interval as narrow as PPI's would need.
    """

    value: float | None
    low: float | None
    high: float | None
    human_value: float | None
    human_low: float | None
    human_high: float | None
    ai_value: float | None
    n_labelled: int
    n_unlabelled: int
    effective_n: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def ppi_mean(y: Sequence[float], yhat: Sequence[float], yhat_unlabelled: Sequence[float],
             alpha: float = ALPHA, bounds: tuple[float, float] | None = (0.0, 1.0)) -> PPIEstimate:
    """Prediction-powered estimate of the mean of the human label ``y`` over all items.

    Args:
        y: human labels of the audited items (numbers, e.g. 1 = tuned policy wins, 0.5 tie, 0 loses).
        yhat: the AI's prediction of the same quantity for those items.
        yhat_unlabelled: the AI's predictions for the items without a human label.
        alpha: 1 - confidence level.
        bounds: the range the mean can take (a share: 0 to 1); the estimates and intervals, normal
            approximations that can run past it on few labels, are clipped to it (the effective sample size is
            read from the unclipped widths). None: no clipping.

    Returns:
        :class:`PPIEstimate`; None figures where there are fewer than 2 labelled items. When every item is
        labelled, or every prediction is the same (the predictions say nothing), the PPI figures are the
        human-only estimate (``lam = 0``).
    """
    from ppi_py import classical_mean_ci, ppi_mean_ci, ppi_mean_pointestimate

    y_arr, f_arr, u_arr = (np.asarray(v, dtype=float) for v in (y, yhat, yhat_unlabelled))
    n, n_u = len(y_arr), len(u_arr)
    ai_all = np.concatenate([f_arr, u_arr])
    ai_value = float(ai_all.mean()) if ai_all.size else None
    if n < 2:
        return PPIEstimate(None, None, None, None, None, None, ai_value, n, n_u, None)
    if n_u == 0:  # every item has a human label: nothing to predict, the humans' figure is the estimate
        human = _clip(_classical(y_arr, alpha), bounds)
        return PPIEstimate(*human, *human, ai_value, n, 0, float(n))
    # PPI++'s power tuning divides by the predictions' variance: predictions all alike (a judge that gave every
    # pair the same verdict) carry no information, and lam = 0 is the human-only estimate (not NaN)
    lam = 0.0 if np.ptp(ai_all) == 0 else None
    value = float(np.ravel(ppi_mean_pointestimate(y_arr, f_arr, u_arr, lam=lam))[0])
    low, high = (float(np.ravel(b)[0]) for b in ppi_mean_ci(y_arr, f_arr, u_arr, alpha=alpha, lam=lam))
    c_low, c_high = (float(np.ravel(b)[0]) for b in classical_mean_ci(y_arr, alpha=alpha))
    human_width, ppi_width = c_high - c_low, high - low
    effective = n * (human_width / ppi_width) ** 2 if ppi_width > 0 and human_width > 0 else None
    return PPIEstimate(*_clip((value, low, high), bounds), *_clip((float(y_arr.mean()), c_low, c_high), bounds),
                       ai_value, n, n_u, effective)


def _clip(figures: tuple[float, float, float], bounds: tuple[float, float] | None) -> tuple[float, float, float]:
    if bounds is None:
        return figures
    return tuple(min(bounds[1], max(bounds[0], f)) for f in figures)


def _classical(y: np.ndarray, alpha: float) -> tuple[float, float, float]:
    from ppi_py import classical_mean_ci

    low, high = (float(np.ravel(b)[0]) for b in classical_mean_ci(y, alpha=alpha))
    return float(y.mean()), low, high


@dataclass(frozen=True)
class LengthControlled:
    """A share (a win rate, an agreement) read at zero length difference.

    Attributes:
        value, low, high: the length-controlled share and its bootstrap 95% interval.
        raw: the plain share over the same units (a win rate: ties half; an agreement: the AI labeler alignment).
        length_coefficient: the fitted weight of the normalised length difference (> 0: the longer side wins, or
            the judge agrees more often where the human picked the longer response).
        n: units used (comparisons; for agreement, decisive human labels).
    """

    value: float | None
    low: float | None
    high: float | None
    raw: float | None
    length_coefficient: float | None
    n: int

    def as_dict(self) -> dict:
        return asdict(self)


def _fit(outcome: np.ndarray, x: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """Weighted logistic regression ``logit P(success) = a + b x`` by Newton's method (ridge 1e-6 for
    separable data); returns ``(a, b)``."""
    design = np.column_stack([np.ones_like(x), x])
    beta = np.zeros(2)
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        gradient = design.T @ (weights * (outcome - p)) - 1e-6 * beta
        hessian = (design * (weights * p * (1 - p))[:, None]).T @ design + 1e-6 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        beta += step
        if np.max(np.abs(step)) < 1e-9:
            break
    return float(beta[0]), float(beta[1])


def length_controlled_win_rate(
    verdicts: Sequence[str], length_tuned: Sequence[int], length_reference: Sequence[int], *,
    tuned: str = "A", seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES,
) -> LengthControlled:
    """The tuned policy's win rate at zero length difference (Dubois et al. 2024).

    Args:
        verdicts: per comparison, ``tuned``, the other label, or ``"tie"``; anything else (a failure) is skipped.
        length_tuned, length_reference: the two responses' lengths (characters or tokens), aligned.
        tuned: the label of the tuned policy's response.

    Returns:
        :class:`LengthControlled` (None figures without comparisons).
    """
    rows = [(v, lt, lr) for v, lt, lr in zip(verdicts, length_tuned, length_reference, strict=True)
            if v in ("A", "B", "tie")]
    outcome_of = {tuned: 1.0, "tie": 0.5}
    score = np.array([outcome_of.get(v, 0.0) for v, _, _ in rows])
    diff = np.array([lt - lr for _, lt, lr in rows], dtype=float)
    return _read_at_zero_length(score, diff, seed=seed, resamples=resamples)


def length_controlled_agreement(
    ai: Sequence[str], human: Sequence[str], length_a: Sequence[int], length_b: Sequence[int], *,
    seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES,
) -> LengthControlled:
    """AI labeler alignment at zero length difference: the length control of Dubois et al. (2024,
    "Length-Controlled AlpacaEval") applied to AI-vs-human agreement.

    Units are those of :func:`training.agreement.alignment` (Lee et al. 2023): every human label that is A or B,
    with the AI verdict on its pair; the outcome is 1 when the AI verdict is the human's (an AI tie disagrees).
    The model is ``logit P(agree) = a + b * tanh(delta / sd)`` with ``delta = len(response the human preferred)
    - len(the other)`` and ``sd`` the standard deviation of ``delta`` over the units; the figure is
    ``sigmoid(a)``, the agreement on pairs of equal length, with a percentile bootstrap interval over units.
    ``raw`` is the plain alignment. A judge that agrees with humans partly because both side with the longer
    answer has ``b > 0`` and, where humans mostly picked the longer answer, a raw alignment above the
    length-controlled one; without a length effect the two coincide.

    The length difference is taken on the human's side, not the AI's: it is fixed before the judge speaks (as
    AlpacaEval's tuned-minus-baseline difference is), it exists where the AI called a tie, and the model is
    AlpacaEval's GLM of the judge's choice with the human label in the place of the model term:
    ``logit P(AI picks A) = a * h + b * tanh(delta_AB / sd)``, ``h = +1`` when the human picked A, -1 for B.

    Args:
        ai: the AI verdict of each unit (``"A"``, ``"B"`` or ``"tie"``).
        human: the human label of each unit; units whose label is not A or B are skipped.
        length_a, length_b: the lengths (characters or tokens) of the pair's two responses, aligned.
        seed, resamples: the bootstrap's.

    Returns:
        :class:`LengthControlled` (None figures without a decisive human label).

    Raises:
        ValueError: the four sequences differ in length.
    """
    if not len(ai) == len(human) == len(length_a) == len(length_b):
        raise ValueError(f"inputs differ in length: {len(ai)}, {len(human)}, {len(length_a)}, {len(length_b)}")
    rows = [(a == h, (la - lb) if h == "A" else (lb - la))
            for a, h, la, lb in zip(ai, human, length_a, length_b, strict=True) if h in ("A", "B")]
    score = np.array([float(agree) for agree, _ in rows])
    diff = np.array([delta for _, delta in rows], dtype=float)
    return _read_at_zero_length(score, diff, seed=seed, resamples=resamples)


def _read_at_zero_length(score: np.ndarray, diff: np.ndarray, *, seed: int, resamples: int) -> LengthControlled:
    """The logistic model of ``score`` (1 success, 0 failure, 0.5 half of each) on ``tanh(diff / sd)``, read at
    ``diff = 0``, with a percentile bootstrap over units: the one fit behind both length-controlled figures."""
    n = len(score)
    if n == 0:
        return LengthControlled(None, None, None, None, None, 0)
    scale = diff.std() or 1.0
    x = np.tanh(diff / scale)
    # a tie is half a win: two observations of weight 1/2 each
    outcome = np.concatenate([np.ones(n), np.zeros(n)])
    xs = np.concatenate([x, x])
    base_weights = np.concatenate([score, 1.0 - score])

    def fitted(weights: np.ndarray) -> tuple[float, float]:
        return _fit(outcome, xs, np.concatenate([weights, weights]) * base_weights)

    a, b = fitted(np.ones(n))
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(resamples):
        counts = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
        boot.append(_sigmoid(fitted(counts)[0]))
    low, high = np.percentile(boot, [2.5, 97.5])
    value = _sigmoid(a)
    return LengthControlled(value, float(min(low, value)), float(max(high, value)), float(score.mean()), b, n)


def _sigmoid(z: float) -> float:
    """The logistic function, without overflow for a separable bootstrap resample's huge |z| (scipy's expit)."""
    from scipy.special import expit

    return float(expit(z))

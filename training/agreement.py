"""Agreement between an AI judge and humans, and among humans, each figure with a 95% confidence interval.

Plain Python over plain inputs (no Django). Point estimates come from the libraries the field uses:
scikit-learn (``cohen_kappa_score``, ``confusion_matrix``), statsmodels (``proportion_confint``, Wilson score
interval) and ``krippendorff`` (``alpha``). Where no closed-form interval exists (Cohen's kappa,
Krippendorff's alpha, expected calibration error) a percentile bootstrap over units gives it: each resample
draws units with replacement (multinomial weights), and the statistic is recomputed from the weighted
counts, so a thousand resamples cost a few matrix products.

scikit-learn, statsmodels and krippendorff are imported where used: the web process loads this module at
start-up and pays for them on the first dashboard instead.

Labels are ``"A"``, ``"B"`` or ``"tie"``; a human "skip" and a failed AI verdict (``""``) are dropped by
the callers before they reach these functions.

References: Lee et al. 2023 (RLAIF, "AI labeler alignment"); Cohen 1960 (kappa); Krippendorff 2004
(alpha, nominal level); Guo et al. 2017 and Naeini et al. 2015 (expected calibration error).
"""
from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

CHOICES = ("A", "B", "tie")
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 1000


@dataclass(frozen=True)
class ProportionEstimate:
    """A figure with its 95% interval and sample size.

    Attributes:
        value: the point estimate, or None when it is undefined (n = 0, or no variation for kappa/alpha).
        low, high: the interval bounds (None with ``value``).
        n: units the figure rests on (labels, pairs, judgments: see the function that made it).
        method: how the interval was made: ``wilson`` or ``bootstrap``.
    """

    value: float | None
    low: float | None
    high: float | None
    n: int
    method: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


EMPTY = ProportionEstimate(None, None, None, 0)


def proportion(successes: int, n: int) -> ProportionEstimate:
    """Share ``successes / n`` with the Wilson score interval (statsmodels ``proportion_confint``)."""
    from statsmodels.stats.proportion import proportion_confint

    if n <= 0:
        return ProportionEstimate(None, None, None, 0, "wilson")
    low, high = proportion_confint(successes, n, alpha=1 - CONFIDENCE, method="wilson")
    value = successes / n
    # at 0 or n the bound equals the estimate up to rounding: keep value inside [low, high] within [0, 1]
    return ProportionEstimate(value, float(max(0.0, min(low, value))), float(min(1.0, max(high, value))), n, "wilson")


def alignment(ai: Sequence[str], human: Sequence[str]) -> ProportionEstimate:
    """AI labeler alignment (Lee et al. 2023): among the pairs whose human label is A or B, the share whose
    AI verdict is the same. An AI "tie" on a decisive human label counts as a disagreement.

    Args:
        ai, human: verdicts aligned by position, each ``"A"``, ``"B"`` or ``"tie"``.

    Returns:
        The share with its Wilson interval; ``n`` is the number of decisive human labels.
    """
    _same_length(ai, human)
    decisive = [(a, h) for a, h in zip(ai, human, strict=True) if h in ("A", "B")]
    return proportion(sum(a == h for a, h in decisive), len(decisive))


def confusion(ai: Sequence[str], human: Sequence[str]) -> list[list[int]]:
    """3×3 counts, rows = human label, columns = AI verdict, both in :data:`CHOICES` order (scikit-learn)."""
    from sklearn.metrics import confusion_matrix

    _same_length(ai, human)
    if not ai:
        return [[0] * len(CHOICES) for _ in CHOICES]
    return confusion_matrix(list(human), list(ai), labels=list(CHOICES)).tolist()


def _kappa_from_counts(counts: np.ndarray) -> np.ndarray:
    """Cohen's kappa for a batch of k×k confusion matrices (shape ``(..., k, k)``); NaN where undefined."""
    total = counts.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = np.trace(counts, axis1=-2, axis2=-1) / total
        expected = (counts.sum(axis=-1) * counts.sum(axis=-2)).sum(axis=-1) / total**2
        return (observed - expected) / (1 - expected)


def cohen_kappa(
    ai: Sequence[str], human: Sequence[str], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> ProportionEstimate:
    """Cohen's kappa between AI verdicts and human labels over A/B/tie (scikit-learn ``cohen_kappa_score``),
    with a percentile bootstrap interval over the labelled pairs.

    Returns:
        ``value`` None when fewer than 2 pairs, or when chance agreement is 1 (a single category used by both).
    """
    from sklearn.metrics import cohen_kappa_score

    _same_length(ai, human)
    n = len(ai)
    if n < 2:
        return ProportionEstimate(None, None, None, n, "bootstrap")
    counts = np.array(confusion(ai, human), dtype=float)
    if np.isnan(_kappa_from_counts(counts)):
        return ProportionEstimate(None, None, None, n, "bootstrap")
    value = float(cohen_kappa_score(list(human), list(ai), labels=list(CHOICES)))
    index = {label: i for i, label in enumerate(CHOICES)}
    cells = np.array([index[h] * len(CHOICES) + index[a] for a, h in zip(ai, human, strict=True)])
    one_hot = np.eye(len(CHOICES) ** 2)[cells]  # n × 9
    k = len(CHOICES)
    boot = _bootstrap(n, resamples, seed, lambda weights: _kappa_from_counts((weights @ one_hot).reshape(-1, k, k)))
    return _with_percentiles(value, boot, n)


def _reliability_units(units: Sequence[Sequence[str | None]]) -> np.ndarray:
    """Per-unit category counts (U × 3) of the units with 2 or more labels."""
    index = {label: i for i, label in enumerate(CHOICES)}
    rows = []
    for unit in units:
        values = [v for v in unit if v is not None]
        if len(values) >= 2:
            row = np.zeros(len(CHOICES))
            for v in values:
                row[index[v]] += 1
            rows.append(row)
    return np.array(rows).reshape(-1, len(CHOICES))


def _alpha_from_unit_counts(unit_counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Nominal Krippendorff's alpha for each row of ``weights`` (B × U) over ``unit_counts`` (U × k):
    1 - D_o / D_e from the weighted coincidence matrix (Krippendorff 2004, ch. 11)."""
    m = unit_counts.sum(axis=1)
    # per unit: its off-diagonal coincidences Σ_{c≠k} n_uc n_uk / (m_u - 1)
    disagree_u = (m**2 - (unit_counts**2).sum(axis=1)) / (m - 1)
    disagreement = weights @ disagree_u  # B
    totals = weights @ unit_counts  # B × k: n_c
    n = totals.sum(axis=1)
    expected = n**2 - (totals**2).sum(axis=1)  # Σ_{c≠k} n_c n_k
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1 - (n - 1) * disagreement / expected


def krippendorff_alpha(
    units: Sequence[Sequence[str | None]], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> ProportionEstimate:
    """Inter-annotator agreement, Krippendorff's alpha at the nominal level (``krippendorff.alpha``), with a
    percentile bootstrap interval over units.

    Args:
        units: one sequence per item of the labels its annotators gave (``"A"``, ``"B"``, ``"tie"``, or
            None for "did not label"); units with fewer than 2 labels do not count.

    Returns:
        ``n`` is the number of units with 2+ labels; ``value`` None when there are none or no variation.
    """
    import krippendorff

    unit_counts = _reliability_units(units)
    n_units = len(unit_counts)
    if n_units == 0:
        return ProportionEstimate(None, None, None, 0, "bootstrap")
    totals = unit_counts.sum(axis=0)
    if (totals > 0).sum() < 2:  # a single value used throughout: alpha is undefined
        return ProportionEstimate(None, None, None, n_units, "bootstrap")
    width = int(unit_counts.sum(axis=1).max())
    matrix = np.full((width, n_units), np.nan)  # annotator slots × units, as the library expects
    for u, row in enumerate(unit_counts):
        values = np.repeat(np.arange(len(CHOICES)), row.astype(int))
        matrix[: len(values), u] = values
    value = float(
        krippendorff.alpha(
            reliability_data=matrix, level_of_measurement="nominal", value_domain=list(range(len(CHOICES)))
        )
    )
    boot = _bootstrap(n_units, resamples, seed, lambda weights: _alpha_from_unit_counts(unit_counts, weights))
    return _with_percentiles(value, boot, n_units)


@dataclass(frozen=True)
class Calibration:
    """A reliability diagram and the expected calibration error of P(A preferred) against human choices.

    Attributes:
        ece: expected calibration error Σ_b (n_b / N) · |mean p_b − share of A in b|, with a bootstrap interval.
        bins: one dict per non-empty bin: ``low``, ``high`` (edges), ``n``, ``mean_p``, ``share_a``.
    """

    ece: ProportionEstimate
    bins: list[dict]

    def as_dict(self) -> dict:
        return {"ece": self.ece.as_dict(), "bins": self.bins}


def _bin_index(p: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bins over [0, 1]; 1.0 goes to the last bin."""
    return np.minimum((p * n_bins).astype(int), n_bins - 1)


def calibration(
    p_a: Sequence[float], human: Sequence[str], *, n_bins: int = 10, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> Calibration:
    """Reliability of the judge's averaged P(A preferred) against decisive human labels (ties dropped).

    Args:
        p_a: the judge's probability that A is preferred, in [0, 1], one per label.
        human: the human label for the same pair ("A", "B" or "tie"; ties are left out).
        n_bins: equal-width probability bins.

    Returns:
        :class:`Calibration`; ``ece.n`` is the number of decisive labels.
    """
    _same_length(p_a, human)
    kept = [(float(p), 1.0 if h == "A" else 0.0) for p, h in zip(p_a, human, strict=True) if h in ("A", "B")]
    if not kept:
        return Calibration(ProportionEstimate(None, None, None, 0, "bootstrap"), [])
    p = np.array([k[0] for k in kept])
    y = np.array([k[1] for k in kept])
    if np.any((p < 0) | (p > 1)):
        raise ValueError("calibration: every p_a must lie in [0, 1]")
    one_hot = np.eye(n_bins)[_bin_index(p, n_bins)]  # n × bins
    stacked = np.concatenate([one_hot, one_hot * p[:, None], one_hot * y[:, None]], axis=1)

    def ece_of(sums: np.ndarray) -> np.ndarray:
        counts, p_sum, y_sum = sums[..., :n_bins], sums[..., n_bins : 2 * n_bins], sums[..., 2 * n_bins :]
        return np.abs(p_sum - y_sum).sum(axis=-1) / counts.sum(axis=-1)

    totals = stacked.sum(axis=0)
    value = float(ece_of(totals))
    boot = _bootstrap(len(p), resamples, seed, lambda weights: ece_of(weights @ stacked))
    bins = [
        {
            "low": b / n_bins,
            "high": (b + 1) / n_bins,
            "n": int(totals[b]),
            "mean_p": float(totals[n_bins + b] / totals[b]),
            "share_a": float(totals[2 * n_bins + b] / totals[b]),
        }
        for b in range(n_bins)
        if totals[b] > 0
    ]
    return Calibration(_with_percentiles(value, boot, len(p)), bins)


def prefers_longer(choice: str, length_a: int, length_b: int) -> bool | None:
    """Whether a decisive ``choice`` picked the longer response; None for a tie, skip or equal lengths."""
    if choice not in ("A", "B") or length_a == length_b:
        return None
    return (choice == "A") == (length_a > length_b)


def length_preference(choices: Sequence[str], lengths: Sequence[tuple[int, int]]) -> ProportionEstimate:
    """Length bias: share of decisive choices (A or B) on pairs of unequal length that picked the longer
    response, with its Wilson interval. Compute it for the judge and for humans and compare the two.

    Args:
        choices: "A", "B" or "tie" per pair (or per label).
        lengths: ``(len(response_a), len(response_b))`` in characters, aligned with ``choices``.
    """
    _same_length(choices, lengths)
    flags = [prefers_longer(c, la, lb) for c, (la, lb) in zip(choices, lengths, strict=True)]
    decided = [f for f in flags if f is not None]
    return proportion(sum(decided), len(decided))


def position_consistency(flags: Sequence[bool | None]) -> ProportionEstimate:
    """Share of judgments whose two orders (A/B and B/A) picked the same response; unknowns (one order
    asked, or a failure) are left out. Wilson interval."""
    known = [bool(f) for f in flags if f is not None]
    return proportion(sum(known), len(known))



@dataclass(frozen=True)
class RaterPair:
    """How two raters agree on the units both labelled.

    Attributes:
        first, second: the raters (``first`` < ``second``).
        agreement: share of shared units given the same label (A/B/tie), with its Wilson interval; ``n`` is
            the number of shared units.
        kappa: Cohen's kappa on the shared units (chance-corrected), with a bootstrap interval.
    """

    first: str
    second: str
    agreement: ProportionEstimate
    kappa: ProportionEstimate

    @property
    def agree(self) -> int:
        """Shared units given the same label."""
        return round((self.agreement.value or 0.0) * self.agreement.n)


def pairwise_agreement(ratings: Mapping[str, Mapping[Hashable, str]], *, seed: int = 0) -> list[RaterPair]:
    """Agreement of every two raters, each pair on the units both labelled: observed agreement (Wilson interval,
    statsmodels) and Cohen's kappa (scikit-learn, bootstrap interval: :func:`cohen_kappa`). The pairwise matrix
    of an annotation team, in which a careless or adversarial rater shows as a row of low values.

    Args:
        ratings: ``{rater: {unit: label}}``, labels ``"A"``, ``"B"`` or ``"tie"`` (a rater's skips left out).

    Returns:
        One :class:`RaterPair` per two raters with at least one shared unit, ordered by (first, second).

    Raises:
        ValueError: a label outside :data:`CHOICES`.
    """
    for rater, labels in ratings.items():
        unknown = sorted({str(v) for v in labels.values()} - set(CHOICES))
        if unknown:
            raise ValueError(f"rater {rater!r}: labels must be one of {', '.join(CHOICES)}; got {', '.join(unknown)}")
    raters = sorted(ratings)
    pairs = []
    for i, first in enumerate(raters):
        for second in raters[i + 1:]:
            shared = sorted(set(ratings[first]) & set(ratings[second]), key=repr)
            if not shared:
                continue
            a = [ratings[first][unit] for unit in shared]
            b = [ratings[second][unit] for unit in shared]
            same = sum(x == y for x, y in zip(a, b, strict=True))
            pairs.append(RaterPair(first, second, proportion(same, len(shared)), cohen_kappa(a, b, seed=seed)))
    return pairs

#: Bootstrap weights are made in blocks of at most this many cells (resamples × units), bounding memory.
BLOCK_CELLS = 4_000_000


def _bootstrap(n: int, resamples: int, seed: int, statistic) -> np.ndarray:
    """Apply ``statistic`` (B × n weights → B values) to ``resamples`` bootstrap resamples of n units,
    in blocks of at most :data:`BLOCK_CELLS` weights; the same seed gives the same resamples."""
    block = max(1, BLOCK_CELLS // max(n, 1))
    if resamples <= block:  # one block: shared (cached) by the statistics of one report
        return statistic(_resample_weights(n, resamples, seed, 0))
    return np.concatenate(
        [
            statistic(_resample_weights(n, min(block, resamples - start), seed, start))
            for start in range(0, resamples, block)
        ]
    )


@lru_cache(maxsize=4)
def _resample_weights(n: int, resamples: int, seed: int, block: int) -> np.ndarray:
    """``resamples`` × n bootstrap weights: how often each unit is drawn in each resample of size n (drawn
    with replacement), for block number ``block`` of a seeded bootstrap. Read-only."""
    rng = np.random.default_rng([seed, block])
    draws = rng.integers(0, n, size=(resamples, n))
    if n <= 256:  # one bincount over offset indices is fastest for small n, a row loop for large n
        flat = (draws + (np.arange(resamples) * n)[:, None]).ravel()
        weights = np.bincount(flat, minlength=n * resamples).reshape(resamples, n).astype(np.float32)
    else:
        weights = np.empty((resamples, n), dtype=np.float32)
        for b in range(resamples):
            weights[b] = np.bincount(draws[b], minlength=n)
    weights.flags.writeable = False
    return weights


def _with_percentiles(value: float, boot: np.ndarray, n: int) -> ProportionEstimate:
    finite = boot[np.isfinite(boot)]
    if finite.size == 0:
        return ProportionEstimate(value, value, value, n, "bootstrap")
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    # percentile intervals of a bounded statistic can miss a point estimate at the edge of its range
    return ProportionEstimate(value, float(min(low, value)), float(max(high, value)), n, "bootstrap")


def _same_length(a: Sequence, b: Sequence) -> None:
    if len(a) != len(b):
        raise ValueError(f"inputs differ in length: {len(a)} vs {len(b)}")

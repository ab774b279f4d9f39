"""Drawing a run's audit sample: a uniform random stratum (for unbiased estimates), an "uncertain" stratum
(averaged preference near 0.5, or the two orders disagreed) and, for a run judged by a panel of judges
(``judge.panel``, :mod:`training.panel`), a "judges disagree" stratum (pairs whose judges gave different
verdicts), each stratified by principle with proportional allocation. Deterministic for a given seed and set of
judgments."""
from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

from django.db import transaction

from runs.audit.queries import without_degenerate_pairs
from runs.models import AuditItem, Judgment, Run

DEFAULT_MARGIN = 0.1


@dataclass(frozen=True)
class SampleResult:
    """What one draw added: new random items, new uncertain items, uncertain (or judges-disagree) items promoted
    to the random stratum (they were drawn at random as well, so the random estimate must count them), and new
    judges-disagree items."""

    random: int
    uncertain: int
    promoted: int
    disagree: int = 0


def is_uncertain(p_a: float | None, position_consistent: bool | None, margin: float = DEFAULT_MARGIN) -> bool:
    """A judgment is uncertain when |P(A) - 0.5| <= ``margin`` or its two orders picked different responses."""
    return position_consistent is False or (p_a is not None and abs(p_a - 0.5) <= margin)


def allocate(sizes: dict, total: int) -> dict:
    """Proportional allocation of ``total`` draws over strata of the given sizes (largest remainder),
    never more than a stratum holds. Keys are visited in sorted order for determinism."""
    available = sum(sizes.values())
    total = min(total, available)
    if total <= 0:
        return {key: 0 for key in sizes}
    exact = {key: total * size / available for key, size in sizes.items()}
    quota = {key: int(value) for key, value in exact.items()}
    order = sorted(sizes, key=lambda key: (-(exact[key] - quota[key]), str(key)))
    short = total - sum(quota.values())
    while short > 0:
        for key in order:
            if short and quota[key] < sizes[key]:
                quota[key] += 1
                short -= 1
    return quota


def _draw(pool: list[dict], size: int, rng: random.Random) -> list[dict]:
    by_principle: dict = defaultdict(list)
    for candidate in pool:
        by_principle[candidate["principle_id"] or 0].append(candidate)
    quota = allocate({key: len(items) for key, items in by_principle.items()}, size)
    chosen = []
    for key in sorted(by_principle):
        chosen += rng.sample(by_principle[key], quota[key])
    return chosen


@transaction.atomic
def draw_audit_sample(
    run: Run, *, random_size: int, uncertain_size: int = 0, seed: int = 0, margin: float = DEFAULT_MARGIN,
    disagree_size: int = 0,
) -> SampleResult:
    """Add up to ``random_size`` uniformly drawn, ``uncertain_size`` uncertain and ``disagree_size`` comparisons
    whose panel of judges disagreed to ``run``'s audit sample, each stratified by principle. Only successfully
    judged comparisons are drawn; one judgment per comparison (chosen at random where a comparison was judged
    under several principles). A comparison is in at most one stratum: random first, then uncertain, then
    judges-disagree.

    Drawing again tops the sample up: the random stratum is drawn from everything not yet in it, so it
    stays a uniform sample; an already-sampled uncertain item drawn at random moves to the random stratum.

    Args:
        random_size, uncertain_size, disagree_size: how many comparisons to add to each stratum (>= 0); the
            judges-disagree stratum draws from the verdicts whose panel's judges did not all agree
            (``Judgment.judges_agree`` false; none without a panel).
        seed: random seed; the same seed on the same judgments draws the same sample.
        margin: |P(A) - 0.5| at or below which a judgment counts as uncertain.

    Raises:
        ValueError: a negative size or a margin outside [0, 0.5].
    """
    if random_size < 0 or uncertain_size < 0 or disagree_size < 0:
        raise ValueError("audit sample sizes must be >= 0")
    if not 0 <= margin <= 0.5:
        raise ValueError("the uncertainty margin must lie in [0, 0.5]")
    rng = random.Random(f"audit:{run.pk}:{seed}")
    candidates = list(
        without_degenerate_pairs(Judgment.objects.filter(comparison__run=run))
        .exclude(verdict="")
        .values("id", "comparison_id", "principle_id", "p_a", "position_consistent", "judges_agree")
        .order_by("id")
    )
    rng.shuffle(candidates)
    one_per_comparison: dict[int, dict] = {}
    for candidate in candidates:
        one_per_comparison.setdefault(candidate["comparison_id"], candidate)
    existing = dict(AuditItem.objects.filter(run=run).values_list("comparison_id", "stratum"))
    pool = sorted(one_per_comparison.values(), key=lambda c: c["id"])

    random_pool = [c for c in pool if existing.get(c["comparison_id"]) != AuditItem.Stratum.RANDOM]
    drawn = _draw(random_pool, random_size, rng)
    promote = [c["comparison_id"] for c in drawn if c["comparison_id"] in existing]
    AuditItem.objects.filter(run=run, comparison_id__in=promote).update(stratum=AuditItem.Stratum.RANDOM)
    new_random = [c for c in drawn if c["comparison_id"] not in existing]
    taken = set(existing) | {c["comparison_id"] for c in drawn}

    uncertain_pool = [
        c for c in pool if c["comparison_id"] not in taken and is_uncertain(c["p_a"], c["position_consistent"], margin)
    ]
    new_uncertain = _draw(uncertain_pool, uncertain_size, rng)
    taken |= {c["comparison_id"] for c in new_uncertain}
    disagree_pool = [c for c in pool if c["comparison_id"] not in taken and c["judges_agree"] is False]
    new_disagree = _draw(disagree_pool, disagree_size, rng)
    strata = ((AuditItem.Stratum.RANDOM, new_random), (AuditItem.Stratum.UNCERTAIN, new_uncertain),
              (AuditItem.Stratum.DISAGREE, new_disagree))
    AuditItem.objects.bulk_create(
        [
            AuditItem(run=run, comparison_id=c["comparison_id"], judgment_id=c["id"], stratum=stratum)
            for stratum, chosen in strata
            for c in chosen
        ],
        ignore_conflicts=True,
    )
    return SampleResult(random=len(new_random), uncertain=len(new_uncertain), promoted=len(promote),
                        disagree=len(new_disagree))

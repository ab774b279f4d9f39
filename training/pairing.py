"""Which of a prompt's K samples are compared: the first pair, all pairs, or M random pairs.

RLAIF labels pairs of policy samples (Lee et al. 2023 use two per prompt); more pairs per prompt give the
reward model more preferences from the same generations at the cost of more judge calls.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Hashable


def pair_indices(
    num_samples: int, rule: str = "first", *, pairs_per_prompt: int = 1, seed: int = 0, key: Hashable = 0
) -> list[tuple[int, int]]:
    """Pairs of sample indices ``(i, j)``, ``i < j``, to compare for one prompt.

    Args:
        num_samples: K, the number of samples of the prompt (>= 2).
        rule: ``first`` (samples 0 and 1), ``all`` (every one of the K·(K−1)/2 pairs) or ``random``
            (``pairs_per_prompt`` distinct pairs drawn without replacement; all pairs when M is at least
            their number).
        pairs_per_prompt: M for ``random``.
        seed, key: the random draw depends only on ``(seed, key)`` (use the prompt's id as key), so a
            resumed stage forms the same pairs.

    Returns:
        Pairs in ascending order.

    Raises:
        ValueError: fewer than two samples, M < 1, or an unknown rule.
    """
    if num_samples < 2:
        raise ValueError(f"pairing needs at least 2 samples per prompt; got {num_samples}")
    if rule == "first":
        return [(0, 1)]
    every = list(itertools.combinations(range(num_samples), 2))
    if rule == "all":
        return every
    if rule == "random":
        if pairs_per_prompt < 1:
            raise ValueError(f"pairs_per_prompt must be at least 1; got {pairs_per_prompt}")
        if pairs_per_prompt >= len(every):
            return every
        rng = random.Random(f"{seed}\x1f{key}")
        return sorted(rng.sample(every, pairs_per_prompt))
    raise ValueError(f"pairing: unknown rule {rule!r} (first, all, random)")


#: Why a pair of replies carries no preference: both the same text, or both empty.
DEGENERATE_REASONS = ("identical", "empty")


def degenerate_reason(reply_a: str, reply_b: str) -> str:
    """Why two replies to one prompt make a useless comparison, or "" when they make a real one.

    A pair is degenerate when both replies are empty (after stripping whitespace) → ``"empty"``, or both are
    the same text up to surrounding whitespace → ``"identical"``. Such a pair says nothing about a principle:
    a judge's verdict on it is noise (or a position bias), a reward model learns nothing from it, and a human
    label on it measures nothing, so it is kept out of judging, training and agreement.

    A pair with *one* empty reply is a real comparison: an answer against no answer is a preference humans
    label (54 of PandaLM's 999 pairs, 4 HH-RLHF harmless-base pairs) and published judge figures count, and a
    reward model that learns it penalises empty output.

    Args:
        reply_a, reply_b: the two replies (text).

    Returns:
        ``"empty"``, ``"identical"`` or ``""``.
    """
    a, b = (reply_a or "").strip(), (reply_b or "").strip()
    if not a and not b:
        return "empty"
    if a == b:
        return "identical"
    return ""

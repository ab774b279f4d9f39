"""Which samples of a prompt become comparisons."""

from __future__ import annotations

import pytest

from training.pairing import pair_indices


def test_first_pair():
    assert pair_indices(4, "first") == [(0, 1)]


def test_all_pairs():
    assert pair_indices(4, "all") == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert pair_indices(2, "all") == [(0, 1)]


def test_random_pairs_are_distinct_deterministic_and_vary_by_prompt():
    draws = [pair_indices(6, "random", pairs_per_prompt=3, seed=1, key=k) for k in range(20)]
    for pairs in draws:
        assert len(pairs) == 3 == len(set(pairs))
        assert all(0 <= i < j < 6 for i, j in pairs)
    assert draws == [pair_indices(6, "random", pairs_per_prompt=3, seed=1, key=k) for k in range(20)]
    assert len({tuple(p) for p in draws}) > 5
    assert draws != [pair_indices(6, "random", pairs_per_prompt=3, seed=2, key=k) for k in range(20)]


def test_random_with_more_pairs_than_exist_gives_all():
    assert pair_indices(3, "random", pairs_per_prompt=10) == [(0, 1), (0, 2), (1, 2)]


@pytest.mark.parametrize(
    ("k", "rule", "m", "message"),
    [(1, "first", 1, "at least 2"), (3, "best", 1, "unknown rule"), (3, "random", 0, "at least 1")],
)
def test_bad_arguments(k, rule, m, message):
    with pytest.raises(ValueError, match=message):
        pair_indices(k, rule, pairs_per_prompt=m)

"""Constitution lint on planted principles: a noisy one, a duplicate one, one that never decides."""
from __future__ import annotations

import random

from training.constitution_lint import LintRow, lint


def planted_rows(n=80, seed=0):
    rng = random.Random(seed)
    rows = []
    for c in range(n):
        human = rng.choice("AB")
        good = human if rng.random() < 0.85 else ("B" if human == "A" else "A")
        rows.append(LintRow(1, c, good, 0.9 if good == "A" else 0.1, rng.random() < 0.9, human))  # sound
        rows.append(LintRow(2, c, good, 0.85 if good == "A" else 0.15, rng.random() < 0.9, human))  # copy of 1
        noisy = rng.choice("AB")
        rows.append(LintRow(3, c, noisy, 0.55 if noisy == "A" else 0.45, rng.random() < 0.5, human))  # noise
        rows.append(LintRow(4, c, "tie" if rng.random() < 0.8 else good, 0.5, True, human))  # mostly ties
    return rows


def test_planted_noise_duplicate_and_indecision_are_flagged():
    result = lint(planted_rows(), [1, 2, 3, 4])
    kinds = {pid: {f["kind"] for f in item.flags} for pid, item in result.items()}
    assert kinds[3] == {"noise"}
    assert "duplicate" in kinds[1] and "duplicate" in kinds[2]
    assert {f["other"] for f in result[1].flags if f["kind"] == "duplicate"} == {2}
    assert "never_decides" in kinds[4]
    assert "noise" not in kinds[1] and "never_decides" not in kinds[1]
    assert result[1].agreement["value"] > 0.75 and result[3].position_consistency["value"] < 0.65


def test_small_samples_raise_no_flags():
    result = lint(planted_rows(n=10), [1, 2, 3, 4])
    assert all(not item.flags for item in result.values())
    assert lint([], [7])[7].n == 0


def test_duplicate_flag_names_the_other_principle():
    result = lint(planted_rows(), [1, 2, 3, 4], names={1: "Sound", 2: "Copy"})
    details = [f["detail"] for f in result[2].flags if f["kind"] == "duplicate"]
    assert details == ["same verdict as “Sound” on 100% of 80 pairs"]
    unnamed = lint(planted_rows(), [1, 2])[1].flags
    assert [f["detail"] for f in unnamed] == ["same verdict as principle #2 on 100% of 80 pairs"]

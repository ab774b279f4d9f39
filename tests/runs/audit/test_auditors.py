"""Per-auditor agreement: against the AI and the pairwise matrix; an adversarial labeller stands out."""
from __future__ import annotations

import pytest

from runs.audit.auditors import auditor_agreement
from runs.audit.queries import AuditRow


def rows(n: int = 12) -> list[AuditRow]:
    """n pairs judged A (odd ones B); ann and bob label as the AI, cy the opposite of the AI."""
    result = []
    for i in range(n):
        verdict = "A" if i % 2 == 0 else "B"
        other = "B" if verdict == "A" else "A"
        result.append(AuditRow(
            comparison_id=i, judgment_id=100 + i, principle="Honest", verdict=verdict, p_a=0.8,
            position_consistent=True, length_a=10, length_b=10,
            labels=[("user:1", verdict), ("user:2", verdict), ("user:3", other)],
        ))
    return result


def test_an_adversarial_auditor_stands_out():
    names = {"user:1": "ann", "user:2": "bob", "user:3": "cy"}
    result = auditor_agreement(rows(), names)
    by_name = {a["name"]: a for a in result["auditors"]}
    assert [a["name"] for a in result["auditors"]] == ["ann", "bob", "cy"]
    assert by_name["ann"]["vs_ai"]["value"] == 1.0 and by_name["ann"]["vs_ai"]["n"] == 12
    assert by_name["cy"]["vs_ai"]["value"] == 0.0 and by_name["cy"]["kappa_ai"]["value"] == pytest.approx(-1.0)
    # ann agrees with bob on 12 and with cy on none: 12 of 24 label pairs
    assert by_name["ann"]["with_others"]["n"] == 24 and by_name["ann"]["with_others"]["value"] == 0.5
    assert by_name["cy"]["with_others"]["value"] == 0.0
    assert [a["stands_out"] for a in result["auditors"]] == [False, False, True]
    assert "agrees with the others 0%" in by_name["cy"]["why"] and "the others 100%" in by_name["cy"]["why"]
    matrix = result["matrix"]
    assert matrix["names"] == ["ann", "bob", "cy"]
    ann_row = matrix["rows"][0]["cells"]
    assert ann_row[0] is None
    assert (ann_row[1]["agree"], ann_row[1]["n"], ann_row[1]["value"]) == (12, 12, 1.0)
    assert (ann_row[2]["agree"], ann_row[2]["n"], ann_row[2]["value"]) == (0, 12, 0.0)
    assert matrix["rows"][2]["cells"][0] == ann_row[2]  # symmetric


def test_too_few_shared_pairs_flag_nobody():
    names = {"user:1": "ann", "user:2": "bob", "user:3": "cy"}
    result = auditor_agreement(rows(2), names)
    assert not any(a["stands_out"] for a in result["auditors"])

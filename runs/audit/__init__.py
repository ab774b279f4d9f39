"""Auditing the AI judge: blind human spot checks of a run's AI labels, and agreement statistics with
confidence intervals.

Public API:

* :func:`human_majority` ``(comparisons_qs) -> {comparison_id: "A" | "B" | "tie"}`` — the human verdict
  per comparison (skips excluded), for the preference export and reward-model training when
  ``reward_model.prefer_human_labels`` is on.
* :func:`draw_audit_sample` — add random and uncertain strata to a run's audit sample.
* :func:`build_report` — every agreement figure with its 95% interval, overall and per principle.
* :func:`alignment_counts` — AI labeler alignment counts on the random stratum (the audit gate uses it).
"""
from __future__ import annotations

from runs.audit.queries import SCOPES, alignment_counts, audit_rows, human_majority
from runs.audit.report import build_report, disagreements
from runs.audit.sampling import draw_audit_sample

__all__ = [
    "SCOPES", "alignment_counts", "audit_rows", "build_report", "disagreements", "draw_audit_sample", "human_majority",
]

"""Auditing the AI judge: blind human spot checks of a run's AI labels, and agreement statistics with
confidence intervals.

Public API:

* :func:`human_majority` ``(comparisons_qs) -> {comparison_id: "A" | "B" | "tie"}`` — the final human
  verdict per comparison (a reviewer's decision, else the majority; skips excluded).
* :func:`draw_audit_sample` — add random and uncertain strata to a run's audit sample.
* :func:`build_report` — every agreement figure with its 95% interval, overall and per principle.
* :func:`alignment_counts` — AI labeler alignment counts on the random stratum (the audit gate uses it).

Auditing as a team: :mod:`runs.audit.workload` (who labels what: plans, the next-pair queue, progress and
counts), :mod:`runs.audit.adjudication` (the review queue; a reviewer's decision is a pair's final human label)
and :mod:`runs.audit.auditors` (per-auditor agreement with the AI and with each other). Labels beyond A/B (a
rating per principle of each response, a corrected response): :mod:`runs.audit.ratings`.
"""
from __future__ import annotations

from runs.audit.queries import SCOPES, alignment_counts, audit_rows, human_majority
from runs.audit.report import build_report, disagreements
from runs.audit.sampling import draw_audit_sample

__all__ = [
    "SCOPES", "alignment_counts", "audit_rows", "build_report", "disagreements", "draw_audit_sample", "human_majority",
]

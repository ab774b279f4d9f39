"""A run's panel of judges on its pages (``judge.panel``; :mod:`training.panel`, Verga et al. 2024): per judge its
verdicts, cost, position consistency, agreement with the humans and with the panel's verdict; across judges
their agreement beyond chance (Krippendorff's alpha, Fleiss' kappa) and how many verdicts they disagreed on.

The figures are over the run's train comparisons (degenerate pairs left out), one unit per (comparison,
principle). Agreement with humans is AI labeler alignment (Lee et al. 2023; :func:`training.agreement.alignment`)
against each labelled pair's final human label (:func:`runs.audit.queries.human_majority`: a reviewer's decision,
else the majority), over every labelled pair: the audit strata included, so it is a description, not an unbiased
estimate (the audit dashboard's random stratum is).
"""
from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Count, Max, Sum
from django.urls import reverse

from runs.models import Adjudication, Comparison, HumanLabel, JudgeCharge, Judgment, Run
from training import agreement
from training.config import ConfigError
from training.panel import judges_agreement, member_ids, panel_judge_id

#: Verdict columns of the per-judge table, in order.
VERDICT_COLUMNS = ("A", "B", "tie", "")


@dataclass(frozen=True)
class JudgeFigures:
    """One row of the panel table: a judge of the panel, or the panel's verdict itself.

    Attributes:
        judge_id: the judge (``panel:…`` for the panel's row).
        role: ``judge`` (the run's own judge), ``panel judge`` (an entry of ``judge.panel``) or ``panel``.
        verdicts: how many of its judgments were A, B, tie, or failed ("").
        cost: what it cost (its cost ledger, or its judgments' costs where larger; the panel's: the judges' sum).
        consistency: share of judgments whose two orders agreed (Wilson interval).
        humans: AI labeler alignment with the final human label, over units with a decisive one.
        with_panel: share of units its verdict equals the panel's (both decided); None for the panel's row.
    """

    judge_id: str
    role: str
    verdicts: dict[str, int]
    cost: float
    consistency: agreement.ProportionEstimate
    humans: agreement.ProportionEstimate
    with_panel: agreement.ProportionEstimate | None

    @property
    def verdict_cells(self) -> list[int]:
        return [self.verdicts.get(v, 0) for v in VERDICT_COLUMNS]


def panel_judge_ids(run: Run) -> tuple[list[str], str] | None:
    """``(the judges' ids, the panel's verdict id)`` of ``run``, or None when it has no panel (or its config does
    not read)."""
    try:
        config = run.run_config.judge
    except ConfigError:
        return None
    if not config.panel:
        return None
    return member_ids(config), panel_judge_id(config)


def report(run: Run, *, seed: int = 0) -> dict | None:
    """The panel's figures for ``run`` (see the module docstring), or None without a panel.

    Cached under the run's data version (:func:`runs.charts.data_version`: it changes when a judging stage
    writes), as :func:`runs.views.runs.run_counts` is, and its human labels' and adjudications' (count, latest
    change), so a new label shows at once.

    Returns:
        ``{"panel_id", "judges" (how many), "aggregation", "rows": [JudgeFigures: each judge, then the
        panel], "alpha", "kappa" (:class:`~training.agreement.ProportionEstimate`), "best_judge" (the row of the
        judge agreeing most with the humans, None before any label), "units", "decided" (verdicts with every vote
        decided), "disagree" (of those, the judges did not all agree), "human_pairs" (units with a human
        label), "pairs_url" (the pair browser on the disagreeing pairs)}``.
    """
    from runs.charts import CACHE_SECONDS, data_version
    from runs.stages.registry import JUDGING_STAGES

    ids = panel_judge_ids(run)
    if ids is None:
        return None
    labels = HumanLabel.objects.filter(comparison__run=run).aggregate(n=Count("pk"), at=Max("updated_at"))
    decided = Adjudication.objects.filter(comparison__run=run).aggregate(n=Count("pk"), at=Max("created_at"))
    version = hashlib.sha1(repr((seed, data_version([run], JUDGING_STAGES), labels, decided)).encode()).hexdigest()
    key = f"runs:panel:{version}"
    figures = cache.get(key)
    if figures is None:
        figures = _report(run, *ids, seed=seed)
        cache.set(key, figures, CACHE_SECONDS)
    return figures


def _report(run: Run, ids: list[str], panel_id: str, *, seed: int) -> dict:
    from runs.audit.queries import human_majority, without_degenerate_pairs

    comparisons = without_degenerate_pairs(Comparison.objects.filter(run=run, purpose="train"), "")
    in_run = {"comparison__in": comparisons.values("pk")}
    votes: dict[tuple, dict[str, str]] = defaultdict(dict)
    consistency: dict[str, list] = defaultdict(list)
    counts: dict[str, Counter] = defaultdict(Counter)
    cost: Counter = Counter()
    for cid, pid, judge_id, verdict, consistent, spent in Judgment.votes.filter(
        judge_id__in=ids, **in_run
    ).values_list("comparison_id", "principle_id", "judge_id", "verdict", "position_consistent", "cost"):
        votes[(cid, pid)][judge_id] = verdict
        consistency[judge_id].append(consistent)
        counts[judge_id][verdict] += 1
        cost[judge_id] += spent
    charged = dict(JudgeCharge.objects.filter(run=run, judge_id__in=ids).values("judge_id")
                   .annotate(s=Sum("cost")).values_list("judge_id", "s"))
    panel: dict[tuple, str] = {}
    disagree = decided = 0
    for cid, pid, verdict, consistent, agree in Judgment.objects.filter(judge_id=panel_id, **in_run).values_list(
        "comparison_id", "principle_id", "verdict", "position_consistent", "judges_agree"
    ):
        panel[(cid, pid)] = verdict
        consistency[panel_id].append(consistent)
        counts[panel_id][verdict] += 1
        decided += agree is not None
        disagree += agree is False
    humans = human_majority(comparisons)

    def figures(judge_id: str, verdict_of, role: str) -> JudgeFigures:
        units = votes.keys() | panel.keys()
        labelled = [(verdict_of(k), humans[k[0]]) for k in units if k[0] in humans and verdict_of(k)]
        both = [(verdict_of(k), panel.get(k, "")) for k in units if verdict_of(k) and panel.get(k)]
        spent = max(charged.get(judge_id) or 0.0, cost[judge_id]) if role != "panel" else sum(
            max(charged.get(i) or 0.0, cost[i]) for i in ids)
        return JudgeFigures(
            judge_id=judge_id, role=role, verdicts=dict(counts[judge_id]), cost=spent,
            consistency=agreement.position_consistency(consistency[judge_id]),
            humans=agreement.alignment([a for a, _ in labelled], [h for _, h in labelled]),
            with_panel=None if role == "panel" else agreement.proportion(sum(a == p for a, p in both), len(both)),
        )

    rows = [figures(judge_id, lambda k, j=judge_id: votes.get(k, {}).get(j, ""), "judge" if i == 0 else
                    "panel judge") for i, judge_id in enumerate(ids)]
    rows.append(figures(panel_id, lambda k: panel.get(k, ""), "panel"))
    among = judges_agreement([[votes[k].get(j) or None for j in ids] for k in sorted(votes)], seed=seed)
    rated = [r for r in rows[:-1] if r.humans.value is not None]
    return {
        "panel_id": panel_id,
        "judges": len(ids),
        "aggregation": panel_id.split(":")[1],
        "rows": rows,
        "alpha": among["alpha"],
        "kappa": among["kappa"],
        "units": len(votes.keys() | panel.keys()),
        "decided": decided,
        "disagree": disagree,
        "human_pairs": sum(1 for k in votes.keys() | panel.keys() if k[0] in humans),
        "best_judge": max(rated, key=lambda r: r.humans.value) if rated else None,
        "pairs_url": reverse("runs:pairs", args=[run.pk]) + "?judges=disagree",
    }


#: Runs listed in the Judges page's panel table.
RECENT_PANELS = 20


def recent_panels(limit: int = RECENT_PANELS) -> list[tuple[Run, dict]]:
    """The latest runs judged by a panel (``judge.panel`` not empty), newest first, each with its
    :func:`report`: the Judges page's table."""
    runs = Run.objects.filter(config__judge__panel__0__isnull=False).order_by("-created_at")[:limit]
    return [(run, figures) for run in runs if (figures := report(run)) is not None]

"""The label stage: the run's AI judge labels its train comparisons under its pinned constitution version.

With a panel of judges (``judge.panel``) every judge labels the comparisons and the panel's verdicts are
stored beside their votes (:func:`runs.stages.judging.judge_panel`); the failure share counts the verdicts.

A run that names an anchor (``judge.anchor_run``) first has its judge re-judge a sample of it (the drift guard,
:mod:`runs.drift`); when the judge no longer agrees with the anchor the stage and the run wait for an operator.

Thin: :func:`runs.stages.judging.judge_comparisons` does the judging (what is stored is skipped, failed
judgments are judged again, a paid judge's spend is reserved against ``judge.budget`` and persisted as it
arrives). The stage fails when every judgment failed or when more than ``judge.max_failed_share`` of them
failed, and otherwise says how many did.
"""

from __future__ import annotations

from runs import drift
from runs.models import Comparison, Judgment
from runs.stages.judging import JudgeUnavailable, judge_comparisons
from training.panel import verdict_judge_id


class TooManyFailed(RuntimeError):
    """More than ``judge.max_failed_share`` of the judgments failed (stored; resume judges them again)."""


def run(stage_run, reporter) -> None:
    """The label stage: judge the run's ``purpose="train"`` comparisons.

    Raises:
        ValueError: the run has no train comparisons (run the generate stage first), or its anchor run has no
            anchor pairs.
        runs.gate.Hold: the judge disagrees with the run's anchor (the drift guard); the run waits.
        JudgeUnavailable: every judgment failed (they are stored; resuming judges them again).
        TooManyFailed: more than ``judge.max_failed_share`` of the stored judgments failed.
    """
    run_row = stage_run.run
    comparisons = Comparison.objects.filter(run=run_row, purpose="train")
    if not comparisons.exists():
        raise ValueError(f"run {run_row.pk} has no comparisons to label; run the generate stage first")
    drift.guard(run_row, reporter)
    counts = judge_comparisons(run_row, comparisons, reporter)
    if counts["done"] and counts["failed"] == counts["done"] and not counts["skipped"]:
        raise JudgeUnavailable(
            f"every one of the {counts['done']} judgments failed; see their errors in the pair browser"
        )
    reporter.log(
        f"label: {counts['done']} judged ({counts['failed']} failed), {counts['skipped']} already stored"
        + ("; stopped at the budget cap" if counts.get("budget_exhausted") else "")
        + (f"; asked without {', '.join(counts['dropped'])} (refused by the endpoint)" if counts.get("dropped") else "")
    )
    config = run_row.run_config.judge
    stored = Judgment.objects.filter(comparison__in=comparisons.values("pk"), judge_id=verdict_judge_id(config))
    total, failed = stored.count(), stored.filter(verdict="").count()
    if total and failed / total > config.max_failed_share:
        raise TooManyFailed(
            f"{failed} of {total} judgments failed ({failed / total:.0%}, above judge.max_failed_share "
            f"{config.max_failed_share:.0%}); see their errors in the pair browser, then resume to judge them again"
        )

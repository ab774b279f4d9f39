"""The evaluate stage: the tuned policy against the reference policy on the eval split.

Both policies answer each eval prompt (stored as ``eval_tuned`` / ``eval_reference`` completions); each
pair becomes an ``eval`` comparison (A = tuned, B = reference) labelled by the run's AI judge under the
constitution (both orders when ``judge.both_orders``). Reported: the win rate with a 95% Wilson interval, the
length-controlled win rate with its bootstrap interval (Dubois et al. 2024), the mean reward-model score of both
policies and their paired difference, and a side-by-side sample table (an ``evaluation`` report artifact).
Every step skips what is stored, so a re-run only does what is missing.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models.functions import Length

from runs.models import Artifact, Comparison, Completion, CompletionSource, Judgment, Split
from runs.stages import stage_io as support
from runs.stages.judging import judge_comparisons
from training.config import GenerationConfig, JudgeConfig, RunConfig
from training.progress import check_cancelled

if TYPE_CHECKING:
    from training.human_calibrated import LengthControlled

#: Rows of the side-by-side sample table in the report.
SAMPLE_ROWS = 20


def eval_prompts(run, config: RunConfig) -> list:
    """The eval split of the run's prompt set in index order (``evaluation.max_prompts``); when the set
    has no eval split, its last prompts (at most ``max_prompts``, default 20) so a demo still evaluates."""
    limit = config.evaluation.max_prompts or None
    prompts = run.prompt_set.prompts.filter(split=Split.EVAL).order_by("index")
    if prompts.exists():
        return list(prompts[:limit] if limit else prompts)
    return list(run.prompt_set.prompts.order_by("-index")[: limit or 20])[::-1]


def run(stage_run, reporter) -> None:
    """Evaluate the run's tuned policy.

    Raises:
        ValueError: the run has no tuned policy (run the policy stage first).
        training.progress.Cancelled: the user cancelled (stored completions and judgments are kept).
    """
    run_row = stage_run.run
    config = run_row.run_config
    tuned_path = support.artifact_path(run_row, Artifact.Kind.POLICY)
    if tuned_path is None:
        raise ValueError(f"run {run_row.pk}: no tuned policy to evaluate (run the policy stage first)")
    reference_path = support.reference_policy(run_row, config, reporter)
    support.ensure_models(config, reporter, [config.judge.model])
    prompts = eval_prompts(run_row, config)
    if not prompts:
        raise ValueError(f"run {run_row.pk}: the prompt set has no prompts to evaluate on")
    reporter.log(f"evaluate: {len(prompts)} eval prompts; tuned {tuned_path} vs reference {reference_path}")

    _generate_missing(run_row, prompts, CompletionSource.EVAL_REFERENCE, reference_path, config, reporter)
    _generate_missing(run_row, prompts, CompletionSource.EVAL_TUNED, tuned_path, config, reporter)
    comparisons = _form_comparisons(run_row, prompts)
    check_cancelled(reporter)
    judge_comparisons(run_row, comparisons, reporter)
    report = build_report(run_row, config, comparisons)
    _store(run_row, report, reporter)


def _sampling(config: RunConfig) -> GenerationConfig:
    # The default (local) backend: the tuned and reference policies are checkpoints on this machine.
    ev = config.evaluation
    return GenerationConfig(
        model=config.generation.model,
        max_new_tokens=ev.max_new_tokens,
        temperature=ev.temperature,
        top_p=config.generation.top_p,
        seed=ev.seed,
        batch_size=config.generation.batch_size,
    )


def _generate_missing(run, prompts, source: str, model_path: str, config: RunConfig, reporter) -> None:
    from training.generation_backends import load_sampler

    have = set(
        Completion.objects.filter(run=run, source=source, sample_index=0, prompt__in=prompts).values_list(
            "prompt_id", flat=True
        )
    )
    missing = [p for p in prompts if p.pk not in have]
    if not missing:
        return
    sampling = _sampling(config)
    sampler = load_sampler(sampling, model_path, settings.MODELS_DIR, reporter)
    rendered = sampler.prompt_format
    for start in range(0, len(missing), sampling.batch_size):
        check_cancelled(reporter)
        chunk = missing[start : start + sampling.batch_size]
        samples = sampler([p.conversation for p in chunk], num_samples=1)
        Completion.objects.bulk_create(
            [
                Completion(
                    run=run,
                    prompt=chunk[s.prompt_index],
                    source=source,
                    sample_index=0,
                    text=s.text,
                    model=model_path[-300:],
                    sampling_params={"temperature": sampling.temperature, "max_new_tokens": sampling.max_new_tokens,
                                     "seed": sampling.seed, "prompt_format": rendered},
                    token_count=s.token_count,
                )
                for s in samples
            ],
            ignore_conflicts=True,
        )
        reporter.progress(start + len(chunk), len(missing), f"evaluate: sampling {source}")


def _form_comparisons(run, prompts):
    completions = Completion.objects.filter(
        run=run, prompt__in=prompts, sample_index=0,
        source__in=[CompletionSource.EVAL_TUNED, CompletionSource.EVAL_REFERENCE],
    )
    by_prompt: dict[int, dict[str, int]] = {}
    for pk, prompt_id, source in completions.values_list("pk", "prompt_id", "source"):
        by_prompt.setdefault(prompt_id, {})[source] = pk
    Comparison.objects.bulk_create(
        [
            Comparison(
                run=run,
                prompt_id=prompt_id,
                completion_a_id=pair[CompletionSource.EVAL_TUNED],
                completion_b_id=pair[CompletionSource.EVAL_REFERENCE],
                purpose="eval",
            )
            for prompt_id, pair in by_prompt.items()
            if len(pair) == 2
        ],
        ignore_conflicts=True,
    )
    return Comparison.objects.filter(run=run, purpose="eval", prompt__in=prompts)


def eval_verdicts(run, comparisons, judge: JudgeConfig | None = None) -> dict[int, tuple[float, str]]:
    """The evaluation's verdict on each judged comparison of ``comparisons`` (A = tuned, B = reference).

    The mean P(A) of the run's verdicts on the pair (one per principle judged, ``judge.principle_sampling``; the
    panel's verdicts with ``judge.panel``), turned into a verdict by :func:`training.labeling.verdict_for` under
    ``judge.tie_margin``. The one reading of the evaluation's judgments: the win rate, the sample table and the
    audit dashboard's human-calibrated and length-controlled figures (:mod:`runs.audit.calibrated`) count
    these same verdicts.

    Args:
        run: the run (its judge config).
        comparisons: a queryset of its ``eval`` comparisons.
        judge: the judge config to read them under; None = the run's.

    Returns:
        ``{comparison id: (P(tuned preferred), verdict)}``; pairs without a successful judgment are absent.
    """
    from training.labeling import verdict_for
    from training.panel import verdict_judge_id

    judge = judge or run.run_config.judge
    p_by_comparison: dict[int, list[float]] = {}
    judged = Judgment.objects.filter(comparison__in=comparisons, judge_id=verdict_judge_id(judge), p_a__isnull=False)
    for cid, p_a in judged.exclude(verdict="").values_list("comparison_id", "p_a"):
        p_by_comparison.setdefault(cid, []).append(p_a)
    result = {}
    for cid, ps in p_by_comparison.items():
        p_mean = sum(ps) / len(ps)
        result[cid] = (p_mean, verdict_for(p_mean, judge.tie_margin))
    return result


def length_controlled(run, comparisons, verdicts: Mapping[int, str]) -> LengthControlled:
    """The evaluation's length-controlled win rate (Dubois et al. 2024,
    :func:`training.human_calibrated.length_controlled_win_rate`): the tuned policy's win rate read at zero length
    difference, with a bootstrap interval.

    Args:
        run: the run (its id seeds the bootstrap, so every page shows the same interval).
        comparisons: a queryset of its ``eval`` comparisons (A = tuned, B = reference).
        verdicts: ``{comparison id: "A" | "B" | "tie"}``, the verdicts the raw win rate counts
            (:func:`eval_verdicts`); other comparisons and other verdicts are left out.

    Returns:
        :class:`~training.human_calibrated.LengthControlled` over the responses' lengths in characters, in
        comparison-id order: the figure the run page stores and the audit dashboard shows.
    """
    from training.human_calibrated import length_controlled_win_rate

    counted = {pk: verdict for pk, verdict in verdicts.items() if verdict in ("A", "B", "tie")}
    rows = list(
        comparisons.filter(pk__in=list(counted))
        .annotate(length_tuned=Length("completion_a__text"), length_reference=Length("completion_b__text"))
        .order_by("pk").values_list("pk", "length_tuned", "length_reference")
    )
    return length_controlled_win_rate([counted[pk] for pk, _, _ in rows], [t or 0 for _, t, _ in rows],
                                      [r or 0 for _, _, r in rows], seed=run.pk)


def build_report(run, config: RunConfig, comparisons) -> dict:
    """Win rate (raw and length-controlled), reward-model scores and the sample table of the run's eval
    comparisons (plain JSON)."""
    from training.degeneracy import N as REPETITION_N
    from training.degeneracy import mean_rep_n
    from training.evaluation import paired_score_difference, summarize_scores, win_rate
    from training.panel import verdict_judge_id

    judge_id = verdict_judge_id(config.judge)  # the panel's verdicts with a panel
    judged = eval_verdicts(run, comparisons, config.judge)
    rows = list(comparisons.select_related("prompt", "completion_a", "completion_b").order_by("prompt__index"))
    p_mean = {cid: p for cid, (p, _) in judged.items()}
    verdicts = {c.pk: judged[c.pk][1] if c.pk in judged else "" for c in rows}
    rate = win_rate(verdicts.values())

    lc = length_controlled(run, comparisons, {cid: verdict for cid, (_, verdict) in judged.items()})
    report: dict = {"judge": judge_id, "win_rate": rate.as_dict(), "length_controlled": lc.as_dict(),
                    "comparisons": len(rows)}
    if rows:  # a check of the win rate that does not ask the judge: did the policy learn to repeat itself?
        report["repetition"] = {
            "n": REPETITION_N,
            "tuned": mean_rep_n((c.completion_a.text for c in rows), REPETITION_N),
            "reference": mean_rep_n((c.completion_b.text for c in rows), REPETITION_N),
        }
    tuned_scores = reference_scores = None
    reward_path = support.artifact_path(run, Artifact.Kind.REWARD_MODEL)
    if reward_path and rows:
        from training.reward_model import RewardScorer

        scorer = RewardScorer(reward_path)
        conversations = [c.prompt.conversation for c in rows]
        tuned_scores = scorer.score(conversations, [c.completion_a.text for c in rows])
        reference_scores = scorer.score(conversations, [c.completion_b.text for c in rows])
        report["reward"] = {
            "tuned": vars(summarize_scores(tuned_scores)),
            "reference": vars(summarize_scores(reference_scores)),
            "difference": paired_score_difference(tuned_scores, reference_scores),
        }
    report["samples"] = [
        {
            "prompt": c.prompt.text,
            "tuned": c.completion_a.text,
            "reference": c.completion_b.text,
            "p_tuned": p_mean.get(c.pk),
            "verdict": {"A": "tuned", "B": "reference", "tie": "tie"}.get(verdicts[c.pk], "failed"),
            "reward_tuned": tuned_scores[i] if tuned_scores else None,
            "reward_reference": reference_scores[i] if reference_scores else None,
        }
        for i, c in enumerate(rows[:SAMPLE_ROWS])
    ]
    return report


def _store(run, report: dict, reporter) -> None:
    rate = report["win_rate"]
    values = {
        "win_rate": rate["rate"],
        "win_rate_low": rate["low"],
        "win_rate_high": rate["high"],
        "eval_comparisons": rate["n"],
        "wins": rate["wins"],
        "losses": rate["losses"],
        "ties": rate["ties"],
    }
    lc = report.get("length_controlled") or {}
    values.update({"lc_win_rate": lc.get("value"), "lc_win_rate_low": lc.get("low"),
                   "lc_win_rate_high": lc.get("high")})
    if "repetition" in report:
        values.update({"rep_tuned": report["repetition"]["tuned"], "rep_reference": report["repetition"]["reference"]})
    if "reward" in report:
        values.update(
            {
                "reward_tuned_mean": report["reward"]["tuned"]["mean"],
                "reward_reference_mean": report["reward"]["reference"]["mean"],
                "reward_difference": report["reward"]["difference"]["mean_diff"],
            }
        )
    reporter.metric(0, {k: v for k, v in values.items() if v is not None and math.isfinite(v)})
    path = run.artifacts_dir / "evaluation" / "report.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    support.record_artifact(run, Artifact.Kind.REPORT, "evaluation", path, values)
    if rate["n"]:
        reporter.log(
            f"evaluate: tuned wins {rate['rate']:.1%} of {rate['n']} (95% CI {rate['low']:.1%}–{rate['high']:.1%})"
        )
        if lc.get("value") is not None:
            reporter.log(f"evaluate: length-controlled win rate {lc['value']:.1%} "
                         f"(95% CI {lc['low']:.1%}–{lc['high']:.1%}, Dubois et al. 2024)")
    else:
        reporter.log("evaluate: no eval comparison could be judged")

"""The evaluate stage: both policies answer the eval split, the run's judge labels tuned-vs-reference
comparisons, and the win rate (raw and length-controlled), reward scores and a sample table are stored; a re-run
adds nothing."""
import json

import pytest
from django.urls import reverse

from runs.jobs import run_stage
from runs.models import Artifact, Comparison, Completion, Judgment, MetricPoint, StageRun, StageStatus
from tests import factories
from tests.training.tiny import tiny_lm

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(reference policy, judge, reward model): tiny models; the reward model is the reference policy with a
    saved (random) scalar head, so it scores the same text the same way every time it is loaded."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    root = tmp_path_factory.mktemp("models")
    reference = str(tiny_lm(root / "reference", n_positions=256))
    reward = root / "reward"
    AutoModelForSequenceClassification.from_pretrained(reference, num_labels=1).save_pretrained(reward)
    AutoTokenizer.from_pretrained(reference).save_pretrained(reward)
    return reference, str(tiny_lm(root / "judge", n_positions=512)), str(reward)


def evaluate_run(models, **evaluation):
    reference, judge, reward = models
    config = {
        "generation": {"model": reference, "batch_size": 4},
        "judge": {"backend": "transformers", "model": judge},
        "evaluation": {"max_prompts": 3, "max_new_tokens": 8, **evaluation},
    }
    prompt_set = factories.make_prompt_set(8, split_every=2)
    run = factories.make_run(stages=("evaluate",), config=config, prompt_set=prompt_set)
    Artifact.objects.create(run=run, kind="policy", name="policy", path=reference)
    Artifact.objects.create(run=run, kind="reward_model", name="reward_model", path=reward)
    return run


def run_evaluate(run):
    stage_run = StageRun.objects.get(run=run, stage="evaluate")
    StageRun.objects.filter(pk=stage_run.pk).update(status=StageStatus.QUEUED)
    return run_stage(stage_run.pk)


@pytest.mark.slow
def test_evaluate_stores_win_rate_rewards_and_samples_and_reruns_idempotently(models):
    run = evaluate_run(models)
    assert run_evaluate(run) == StageStatus.SUCCEEDED

    eval_prompts = run.prompt_set.prompts.filter(split="eval").order_by("index")
    eval_prompt_ids = set(eval_prompts.values_list("pk", flat=True)[:3])
    for source in ("eval_tuned", "eval_reference"):
        rows = Completion.objects.filter(run=run, source=source)
        assert set(rows.values_list("prompt_id", flat=True)) == eval_prompt_ids
    comparisons = Comparison.objects.filter(run=run, purpose="eval")
    assert comparisons.count() == 3
    assert all(c.completion_a.source == "eval_tuned" and c.completion_b.source == "eval_reference" for c in comparisons)
    judgments = Judgment.objects.filter(comparison__in=comparisons)
    assert judgments.count() == 3 and all(j.p_a_ab is not None and j.p_a_ba is not None for j in judgments)

    metrics = dict(MetricPoint.objects.filter(run=run, stage="evaluate").values_list("name", "value"))
    assert metrics["eval_comparisons"] == 3 == metrics["wins"] + metrics["losses"] + metrics["ties"]
    assert metrics["win_rate_low"] <= metrics["win_rate"] <= metrics["win_rate_high"]
    assert metrics["lc_win_rate_low"] <= metrics["lc_win_rate"] <= metrics["lc_win_rate_high"]
    difference = metrics["reward_tuned_mean"] - metrics["reward_reference_mean"]
    assert metrics["reward_difference"] == pytest.approx(difference)
    report_artifact = Artifact.objects.get(run=run, kind="report", name="evaluation")
    report = json.loads(open(report_artifact.path).read())
    assert report["win_rate"]["n"] == 3 and len(report["samples"]) == 3 and report["length_controlled"]["n"] == 3
    sample = report["samples"][0]
    assert set(sample) == {"prompt", "tuned", "reference", "p_tuned", "verdict", "reward_tuned", "reward_reference"}
    assert report["reward"]["tuned"]["n"] == report["reward"]["reference"]["n"] == 3

    counts = (Completion.objects.filter(run=run).count(), comparisons.count(), judgments.count())
    assert run_evaluate(run) == StageStatus.SUCCEEDED
    assert (Completion.objects.filter(run=run).count(), comparisons.count(), judgments.count()) == counts
    again = dict(MetricPoint.objects.filter(run=run, stage="evaluate").values_list("name", "value"))
    assert again == metrics


def test_evaluate_needs_a_tuned_policy(models):
    run = evaluate_run(models)
    Artifact.objects.filter(run=run, kind="policy").delete()
    with pytest.raises(ValueError, match="no tuned policy"):
        run_evaluate(run)


#: (tuned answer's length minus the reference's, pairs, of which the judge calls the tuned answer better): 50%
#: at equal length, 80% when 60 characters longer, 20% when shorter; raw win rate 62%.
LENGTH_BIASED = [(0, 20, 10), (60, 60, 48), (-60, 20, 4)]


def test_evaluate_stores_the_length_controlled_win_rate_over_the_win_rates_verdicts(client, viewer):
    """A length-biased judge: the stage stores the raw 62% and the length-controlled 50% (Dubois et al. 2024) as
    metrics and in the report, the figure the audit dashboard shows, and the run page puts it beside the raw rate."""
    from runs.audit.calibrated import evaluation_estimates
    from runs.progress import DbReporter
    from runs.stages import evaluate
    from training.panel import verdict_judge_id

    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1), stages=("evaluate",))
    judge_id = verdict_judge_id(run.run_config.judge)
    i = 0
    for difference, pairs, wins in LENGTH_BIASED:
        for k in range(pairs):
            texts = (f"t{i} ".ljust(100 + difference, "x"), f"r{i} ".ljust(100, "y"))
            comparison = factories.make_comparison(run, texts=texts)
            Comparison.objects.filter(pk=comparison.pk).update(purpose="eval")
            factories.make_judgment(comparison, p_a=0.9 if k < wins else 0.1, judge_id=judge_id)
            i += 1
    # a judgment by another judge is no verdict of the run's: neither rate counts it
    factories.make_judgment(comparison, p_a=0.9, judge_id="openai:someone-else@http://x")
    comparisons = Comparison.objects.filter(run=run, purpose="eval")
    stage_run = StageRun.objects.get(run=run, stage="evaluate")
    reporter = DbReporter(stage_run)
    report = evaluate.build_report(run, run.run_config, comparisons)
    evaluate._store(run, report, reporter)
    reporter.flush()

    metrics = dict(MetricPoint.objects.filter(run=run, stage="evaluate").values_list("name", "value"))
    assert metrics["win_rate"] == pytest.approx(0.62) and metrics["eval_comparisons"] == 100
    assert metrics["lc_win_rate"] == pytest.approx(0.5, abs=1e-6)
    assert metrics["lc_win_rate_low"] < 0.5 < metrics["lc_win_rate_high"]
    lc = report["length_controlled"]
    assert (lc["n"], lc["raw"]) == (100, pytest.approx(0.62))
    assert (lc["low"], lc["high"]) == (metrics["lc_win_rate_low"], metrics["lc_win_rate_high"])
    assert evaluation_estimates(run)["length_controlled"] == lc  # the dashboard's figure is the stored one
    assert Artifact.objects.get(run=run, kind="report", name="evaluation").metrics["lc_win_rate"] == lc["value"]
    assert "length-controlled win rate 50.0%" in StageRun.objects.get(pk=stage_run.pk).log_tail

    client.force_login(viewer)
    html = client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    low, high = (f"{metrics[k] * 100:.0f}%" for k in ("lc_win_rate_low", "lc_win_rate_high"))
    assert '<b data-eval="lc_win_rate">50%</b>' in html and f"95% CI {low}–{high}" in html
    assert '<b data-eval="win_rate">62%</b>' in html
    live = client.get(reverse("runs:progress", args=[run.pk]), {"counts": 1}).json()["evaluation"]
    assert live["lc_win_rate"] == pytest.approx(0.5, abs=1e-6) and live["lc_win_rate_low"] == metrics["lc_win_rate_low"]

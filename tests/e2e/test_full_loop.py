"""The whole RLAIF loop on real prompts, headless: HH-RLHF imported as it is, the starter constitution, the
offline demo preset scaled down to tens of prompts, launched with `manage.py launch_run` and run by an RQ
worker through every stage (generate → label → reward model → policy → evaluate)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db.models import Count

from constitutions.starter import STARTER_NAME
from runs.exporting import preference_dataset
from runs.models import Artifact, Comparison, Completion, Judgment, MetricPoint, Run, RunStatus, StageStatus
from runs.starter import ensure_starter_data

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PROMPTS = 24
EVAL_PROMPTS = 6
RL_STEPS = 6


@pytest.fixture
def demo_models(settings, tmp_path, demo_models_cache):
    """The demo models in this test's data directory, as a first demo run leaves them."""
    settings.MODELS_DIR = tmp_path / "models"
    shutil.copytree(demo_models_cache / "demo", settings.MODELS_DIR / "demo")
    return settings.MODELS_DIR


def _finite(values) -> bool:
    return all(math.isfinite(v) for v in values)


def test_demo_loop_on_hh_rlhf_prompts(shared_data, demo_models, run_worker, capsys):
    ensure_starter_data()
    call_command(
        "import_prompts",
        str(shared_data / "hh-rlhf" / "harmless-base" / "test.jsonl.gz"),
        name="HH-RLHF harmless-base test",
        layout="hh_rlhf",
    )
    call_command(
        "launch_run",
        preset="offline-demo",
        name="e2e",
        constitution=STARTER_NAME,
        prompt_set="HH-RLHF harmless-base test",
        set=[
            f"generation.max_prompts={PROMPTS}",
            f"evaluation.max_prompts={EVAL_PROMPTS}",
            f"policy.steps={RL_STEPS}",
            "policy.checkpoint_every=3",
        ],
    )
    run = Run.objects.get(name="e2e")
    assert run.status == RunStatus.QUEUED

    run_worker()

    run.refresh_from_db()
    stages = run.ordered_stages()
    assert [s.stage for s in stages] == ["generate", "label", "reward_model", "policy", "evaluate"]
    assert run.status == RunStatus.SUCCEEDED, [(s.stage, s.status, s.error[:300]) for s in stages]
    for stage in stages:
        assert stage.status == StageStatus.SUCCEEDED
        assert stage.progress_total and stage.progress_done == stage.progress_total, stage.stage

    # generate: K=2 samples for each of the first PROMPTS train prompts, one comparison per prompt unless
    # its two samples are the same text (the tiny demo policy sometimes says the same thing twice)
    policy_samples = Completion.objects.filter(run=run, source="policy")
    assert policy_samples.count() == 2 * PROMPTS
    assert policy_samples.values("prompt").distinct().count() == PROMPTS
    assert set(policy_samples.values_list("prompt__split", flat=True)) == {"train"}
    texts: dict[int, list[str]] = {}
    for prompt_id, text in policy_samples.order_by("sample_index").values_list("prompt_id", "text"):
        texts.setdefault(prompt_id, []).append(text.strip())
    distinct_pairs = sum(a != b for a, b in texts.values())
    assert distinct_pairs > PROMPTS // 2
    train = Comparison.objects.filter(run=run, purpose="train")
    assert train.count() == distinct_pairs

    # label: exactly one judgment per comparison and sampled principle, both orders averaged
    judgments = Judgment.objects.filter(comparison__in=train)
    assert judgments.count() == distinct_pairs
    assert not judgments.values("comparison", "principle").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert set(judgments.values_list("principle__version", flat=True)) == {run.constitution_version_id}
    for p_ab, p_ba, p_a, verdict in judgments.values_list("p_a_ab", "p_a_ba", "p_a", "verdict"):
        assert 0 <= p_ab <= 1 and 0 <= p_ba <= 1
        assert p_a == pytest.approx((p_ab + p_ba) / 2)
        assert verdict in ("A", "B", "tie")

    # reward model: trained, saved, accuracy logged
    rm = Artifact.objects.get(run=run, kind="reward_model", name="reward_model")
    assert (Path(rm.path) / "config.json").exists()
    rm_metrics = MetricPoint.objects.filter(run=run, stage="reward_model")
    assert _finite(rm_metrics.filter(name="loss").values_list("value", flat=True))
    assert rm_metrics.filter(name="accuracy").exists()

    # policy: RLOO steps with finite reward and KL, a saved policy and checkpoints
    policy = MetricPoint.objects.filter(run=run, stage="policy")
    rewards = list(policy.filter(name="reward").order_by("step").values_list("value", flat=True))
    kls = list(policy.filter(name="kl").order_by("step").values_list("value", flat=True))
    assert len(rewards) == RL_STEPS and len(kls) == RL_STEPS
    assert _finite(rewards) and _finite(kls)
    assert (Path(Artifact.objects.get(run=run, kind="policy").path) / "config.json").exists()

    # evaluate: tuned vs reference on the eval split, win rate with its interval
    evaluation = dict(MetricPoint.objects.filter(run=run, stage="evaluate").values_list("name", "value"))
    assert 0 <= evaluation["win_rate_low"] <= evaluation["win_rate"] <= evaluation["win_rate_high"] <= 1
    assert evaluation["eval_comparisons"] == EVAL_PROMPTS
    assert set(Completion.objects.filter(run=run, source="eval_tuned").values_list("prompt__split", flat=True)) == {
        "eval"
    }
    report = json.loads(Path(Artifact.objects.get(run=run, kind="report", name="evaluation").path).read_text())
    assert report["win_rate"]["rate"] == pytest.approx(evaluation["win_rate"])

    # the preference dataset holds exactly the decisive AI labels
    dataset = preference_dataset(run)
    decisive = judgments.filter(verdict__in=["A", "B"]).count()
    assert len(dataset) == decisive
    assert {"prompt", "chosen", "rejected"} <= set(dataset.column_names)

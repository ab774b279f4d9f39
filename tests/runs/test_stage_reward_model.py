"""The reward_model stage: pairs from the run's judgments, filters, training, artifact and metrics."""
import json

import pytest

from runs.jobs import run_stage
from runs.models import Artifact, Comparison, MetricPoint, StageRun, StageStatus
from runs.stages.stage_io import preference_datasets
from tests import factories
from tests.runs.training_runs import labelled_run
from tests.training.tiny import tiny_lm
from training.config import RunConfig

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return str(tiny_lm(tmp_path_factory.mktemp("lm") / "lm", n_positions=128))


def test_pairs_are_split_by_prompt_and_filtered(lm):
    run = labelled_run(lm, n=20, config={"reward_model": {"eval_ratio": 0.25}})
    config = RunConfig.from_dict(run.config)
    train, eval_, human, counts = preference_datasets(run, config)
    assert (len(train), len(eval_), len(human)) == (15, 5, 0)
    assert not set(train["comparison_id"]) & set(eval_["comparison_id"])
    assert all("kindly" in c and "rudely" in r for c, r in zip(train["chosen"], train["rejected"], strict=True))
    assert train[0]["prompt"] == [{"role": "user", "content": train[0]["prompt"][0]["content"]}]
    assert train[0]["margin"] == pytest.approx(2.197, abs=1e-3)  # log(0.9 / 0.1)

    strict = RunConfig.from_dict({**run.config, "reward_model": {"min_confidence": 0.9}})
    assert len(preference_datasets(run, strict)[0]) == 0  # confidence |0.9 - 0.5| * 2 = 0.8 < 0.9


def test_human_labels_replace_the_ai_in_training_and_are_scored_on_eval(lm):
    run = labelled_run(lm, n=8, config={"reward_model": {"eval_ratio": 0.5}})
    for comparison in Comparison.objects.filter(run=run):
        good_is_a = "kindly" in comparison.completion_a.text
        factories.make_label(comparison, "B" if good_is_a else "A", external_annotator="contrarian")
    config = RunConfig.from_dict(run.config)
    train, eval_, human, counts = preference_datasets(run, config)
    assert counts["human_decided"] == 8
    assert all("rudely" in c for c in train["chosen"])  # the human choice wins in training
    assert all("kindly" in c for c in eval_["chosen"])  # eval keeps the AI's verdict
    assert len(human) == len(eval_) and all("rudely" in c for c in human["chosen"])


@pytest.mark.slow
def test_stage_trains_records_the_model_and_streams_metrics(lm):
    run = labelled_run(
        lm, n=32, config={
            "reward_model": {"base_model": lm, "learning_rate": 3e-3, "epochs": 4, "batch_size": 8, "max_length": 64,
                             "eval_ratio": 0.25},
            "policy": {"checkpoint_every": 3},
        },
    )
    stage_run = StageRun.objects.get(run=run, stage="reward_model")
    StageRun.objects.filter(pk=stage_run.pk).update(status=StageStatus.QUEUED)
    assert run_stage(stage_run.pk) == StageStatus.SUCCEEDED

    artifact = Artifact.objects.get(run=run, kind="reward_model", name="reward_model")
    assert artifact.metrics["train_pairs"] == 24 and artifact.metrics["eval_pairs"] == 8
    assert artifact.metrics["eval_accuracy"] >= 0.75
    assert artifact.metrics["config"]["learning_rate"] == 3e-3
    saved = json.loads((run.artifacts_dir / "reward_model" / "model" / "rlaif_reward_model.json").read_text())
    assert saved["metrics"]["eval_accuracy"] == artifact.metrics["eval_accuracy"]
    losses = MetricPoint.objects.filter(run=run, stage="reward_model", name="loss").order_by("step")
    assert [p.step for p in losses] == list(range(1, 13))
    assert losses.last().value < losses.first().value
    checkpoint = Artifact.objects.get(run=run, kind="checkpoint", name="reward_model")
    assert checkpoint.metrics["step"] == 12 and checkpoint.path.endswith("checkpoint-12")


def test_stage_without_preferences_fails_with_a_clear_error(lm):
    run = factories.make_run(stages=("reward_model",), config={"reward_model": {"base_model": lm}})
    stage_run = StageRun.objects.get(run=run, stage="reward_model")
    StageRun.objects.filter(pk=stage_run.pk).update(status=StageStatus.QUEUED)
    with pytest.raises(ValueError, match="no preference pairs"):
        run_stage(stage_run.pk)
    stage_run.refresh_from_db()
    assert stage_run.status == StageStatus.FAILED and "label stage" in stage_run.error


@pytest.mark.slow
def test_max_length_beyond_the_model_positions_is_clamped_and_shown_on_the_run(lm):
    run = labelled_run(lm, n=8, config={
        "reward_model": {"base_model": lm, "epochs": 1, "batch_size": 4, "max_length": 4096, "eval_ratio": 0.25},
    })
    stage_run = StageRun.objects.get(run=run, stage="reward_model")
    StageRun.objects.filter(pk=stage_run.pk).update(status=StageStatus.QUEUED)
    assert run_stage(stage_run.pk) == StageStatus.SUCCEEDED  # 4096 positions would index past the 128 it has

    artifact = Artifact.objects.get(run=run, kind="reward_model", name="reward_model")
    assert (artifact.metrics["max_length"], artifact.metrics["max_length_clamped_from"]) == (128, 4096)
    assert artifact.metrics["truncated_train_pairs"] == 0 and "truncated_eval_pairs" in artifact.metrics
    log = StageRun.objects.get(pk=stage_run.pk).log_tail
    assert "reward_model.max_length 4096 exceeds the 128 positions of the base model: clamped to 128" in log
    assert "0 of 6 train pairs truncated to max_length 128 (clamped from 4096)" in log

"""The sft stage: demonstrations from the prompt set, or Constitutional AI critique-and-revise data kept
across re-runs; the SFT model becomes the run's reference policy."""
import json

import pytest

from runs.jobs import run_stage
from runs.models import Artifact, MetricPoint, Prompt, StageRun, StageStatus
from runs.stages.stage_io import reference_policy
from tests import factories
from tests.training.tiny import tiny_lm
from training.config import RunConfig

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return str(tiny_lm(tmp_path_factory.mktemp("lm") / "lm", n_positions=256))


def sft_run(lm, **sft):
    config = {"generation": {"model": lm, "batch_size": 4}, "sft": {"batch_size": 4, "max_new_tokens": 6, **sft}}
    version = factories.make_version(
        principles=[factories.principle("Honest", critique_request="Is it honest?", revision_request="Fix it.")]
    )
    return factories.make_run(stages=("sft",), config=config, constitution_version=version,
                              prompt_set=factories.make_prompt_set(6))


def run_sft(run):
    stage_run = StageRun.objects.get(run=run, stage="sft")
    StageRun.objects.filter(pk=stage_run.pk).update(status=StageStatus.QUEUED)
    return run_stage(stage_run.pk)


@pytest.mark.slow
def test_demonstrations_train_the_reference_policy(lm):
    run = sft_run(lm, source="demonstrations", learning_rate=5e-3, epochs=2.0)
    for prompt in Prompt.objects.filter(prompt_set=run.prompt_set):
        prompt.metadata = {"response": "Sure, kindly here is an answer."}
        prompt.save(update_fields=["metadata"])
    assert run_sft(run) == StageStatus.SUCCEEDED
    artifact = Artifact.objects.get(run=run, kind="sft_model", name="sft_model")
    assert artifact.metrics["examples"] == 6 and artifact.metrics["steps"] == 4
    points = MetricPoint.objects.filter(run=run, stage="sft", name="loss").order_by("step")
    losses = list(points.values_list("value", flat=True))
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert reference_policy(run, RunConfig.from_dict(run.config)) == artifact.path


def test_demonstrations_missing_is_a_clear_error(lm):
    run = sft_run(lm, source="demonstrations")
    with pytest.raises(ValueError, match="no prompt has a response"):
        run_sft(run)


@pytest.mark.slow
def test_critique_revise_data_is_kept_and_reused(lm):
    run = sft_run(lm, source="critique_revise", max_prompts=3, epochs=1.0)
    assert run_sft(run) == StageStatus.SUCCEEDED
    path = run.artifacts_dir / "sft" / "revisions.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["prompt_index"] for r in records] == [0, 1, 2]
    assert {r["principle"] for r in records} == {"Honest"}
    assert Artifact.objects.get(run=run, kind="dataset", name="critique_revise").metrics == {"records": 3}
    assert Artifact.objects.filter(run=run, kind="sft_model").count() == 1

    assert run_sft(run) == StageStatus.SUCCEEDED  # a re-run generates nothing new
    assert [json.loads(line) for line in path.read_text().splitlines()] == records

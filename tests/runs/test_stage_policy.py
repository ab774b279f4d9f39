"""The policy stage: RLOO against the run's reward model (or DPO on its preferences), metrics in the
database, a checkpoint on cancel, and a resume that continues the step count."""
import pytest

from runs.jobs import run_stage
from runs.models import Artifact, MetricPoint, StageRun, StageStatus
from runs.progress import DbReporter
from runs.stages import policy as policy_stage
from tests.runs.training_runs import labelled_run
from tests.training.tiny import tiny_lm
from training.config import JudgeConfig
from training.judges import judge_id_for
from training.progress import Cancelled

pytestmark = pytest.mark.django_db

POLICY = {"steps": 4, "batch_size": 4, "num_generations": 2, "max_new_tokens": 6, "checkpoint_every": 100}


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return str(tiny_lm(tmp_path_factory.mktemp("lm") / "lm", n_positions=128))


class StopAtStep(DbReporter):
    """A database reporter whose user presses cancel once ``step`` training steps are done."""

    def __init__(self, stage_run, step: int) -> None:
        super().__init__(stage_run, interval=0)
        self.step = step

    def should_stop(self) -> bool:
        return self.stage_run.progress_done >= self.step


def queued(run, stage):
    stage_run = StageRun.objects.get(run=run, stage=stage)
    StageRun.objects.filter(pk=stage_run.pk).update(status=StageStatus.QUEUED)
    return stage_run


@pytest.mark.slow
def test_rloo_stage_cancels_with_a_checkpoint_and_resumes_from_it(lm):
    run = labelled_run(lm, n=8, stages=("policy",), config={"policy": POLICY})
    Artifact.objects.create(run=run, kind="reward_model", name="reward_model", path=lm)  # a (random) scorer
    stage_run = StageRun.objects.get(run=run, stage="policy")

    with pytest.raises(Cancelled):
        policy_stage.run(stage_run, StopAtStep(stage_run, 2))
    checkpoint = Artifact.objects.get(run=run, kind="checkpoint", name="policy")
    assert checkpoint.metrics == {"step": 2} and checkpoint.path.endswith("checkpoint-2")
    assert not Artifact.objects.filter(run=run, kind="policy").exists()

    assert run_stage(queued(run, "policy").pk) == StageStatus.SUCCEEDED
    tuned = Artifact.objects.get(run=run, kind="policy", name="policy")
    assert tuned.metrics["steps"] == 4 and tuned.metrics["resumed_from_step"] == 2
    assert tuned.metrics["reference"] == lm and "kl" in tuned.metrics
    for name in ("reward", "reward_std", "kl", "entropy", "loss", "completions/mean_length"):
        steps = list(MetricPoint.objects.filter(run=run, stage="policy", name=name).values_list("step", flat=True))
        assert sorted(steps) == [1, 2, 3, 4], name
    assert Artifact.objects.get(run=run, kind="checkpoint", name="policy").metrics == {"step": 4}
    # lineage: the reward model it optimised; the sample table: fixed eval prompts at start, cancel save, end
    assert tuned.metrics["reward_model"] == lm
    from training.callbacks import read_samples

    samples = read_samples(Artifact.objects.get(run=run, kind="report", name="policy_samples").path)
    assert [(r["step"], r["when"]) for r in samples] == [(0, "start"), (2, "checkpoint"), (4, "end")]
    assert [len(r["samples"]) for r in samples] == [len(policy_stage.sample_prompts(run))] * 3


def test_rloo_without_a_reward_model_fails_clearly(lm):
    run = labelled_run(lm, n=4, stages=("policy",), config={"policy": POLICY})
    with pytest.raises(ValueError, match="needs a trained reward model"):
        run_stage(queued(run, "policy").pk)


@pytest.mark.slow
def test_dpo_stage_trains_on_the_ai_preferences(lm):
    dpo = {"algorithm": "dpo", "steps": 3, "batch_size": 4}
    run = labelled_run(lm, n=12, stages=("policy",), config={"policy": dpo})
    assert run_stage(queued(run, "policy").pk) == StageStatus.SUCCEEDED
    assert Artifact.objects.get(run=run, kind="policy").metrics["steps"] == 3
    assert MetricPoint.objects.filter(run=run, stage="policy", name="rewards/margins").count() == 3


@pytest.mark.slow
def test_rloo_with_the_judge_as_the_reward_needs_no_reward_model(lm):
    run = labelled_run(lm, n=8, stages=("policy",), config={"policy": {**POLICY, "reward_source": "judge"}})
    assert not Artifact.objects.filter(run=run, kind="reward_model").exists()
    assert run_stage(queued(run, "policy").pk) == StageStatus.SUCCEEDED

    tuned = Artifact.objects.get(run=run, kind="policy", name="policy")
    judge_id = judge_id_for(JudgeConfig(backend="transformers", model=lm))
    assert tuned.metrics["judge"] == judge_id and "reward_model" not in tuned.metrics
    # 4 steps of 2 groups of 2 rollouts: one comparison per group and step
    assert tuned.metrics["judgments"] == 8 and tuned.metrics["judgments_failed"] == 0
    for name in ("judge_reward", "judge_failed", "reward", "kl"):
        steps = list(MetricPoint.objects.filter(run=run, stage="policy", name=name).values_list("step", flat=True))
        assert sorted(steps) == [1, 2, 3, 4], name
    rewards = MetricPoint.objects.filter(run=run, stage="policy", name="judge_reward").values_list("value", flat=True)
    assert all(v == pytest.approx(0.5) for v in rewards)  # pairwise: each group's rewards average 0.5
    failed = MetricPoint.objects.filter(run=run, stage="policy", name="judge_failed").values_list("value", flat=True)
    assert set(failed) == {0.0}
    assert MetricPoint.objects.filter(run=run, stage="policy", name="judge_margin").exists()
    from runs.artifact_files import lineage

    assert any("direct RLAIF" in item["text"] for item in lineage(run, [tuned])[tuned.pk])


@pytest.mark.slow
def test_rloo_stage_launched_on_two_processes_records_what_an_in_process_stage_does(lm, tmp_path, monkeypatch):
    """policy.launcher accelerate: two gloo processes on this CPU, through the job runner and the database."""
    from tests.training.test_launcher import MULTI_CPU

    monkeypatch.setenv("STUDIO_TORCH_THREADS", "1")
    accelerate_config = tmp_path / "multi_cpu.yaml"
    accelerate_config.write_text(MULTI_CPU)
    launched = {**POLICY, "launcher": "accelerate", "num_processes": 2, "accelerate_config": str(accelerate_config)}
    run = labelled_run(lm, n=8, stages=("policy",), config={"policy": launched})
    Artifact.objects.create(run=run, kind="reward_model", name="reward_model", path=lm)  # loaded in each process

    assert run_stage(queued(run, "policy").pk) == StageStatus.SUCCEEDED
    tuned = Artifact.objects.get(run=run, kind="policy", name="policy")
    assert tuned.metrics["steps"] == 4 and tuned.metrics["resumed_from_step"] == 0 and "kl" in tuned.metrics
    for name in ("reward", "kl", "loss", "rewards/reward_model/mean"):
        steps = list(MetricPoint.objects.filter(run=run, stage="policy", name=name).values_list("step", flat=True))
        assert sorted(steps) == [1, 2, 3, 4], name
    assert "accelerate launch, 2 process(es), MULTI_CPU" in StageRun.objects.get(run=run, stage="policy").log_tail
    import json

    from training.callbacks import read_samples

    samples_file = Artifact.objects.get(run=run, kind="report", name="policy_samples").path
    lines = open(samples_file, encoding="utf-8").read().splitlines()
    assert [(r["step"], r["when"]) for r in read_samples(samples_file)] == [(0, "start"), (4, "end")]
    # the main process samples (start, the save at the last step, end); the other one writes no second copy
    assert [json.loads(line)["when"] for line in lines] == ["start", "checkpoint", "end"]

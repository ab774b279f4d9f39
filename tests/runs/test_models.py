import uuid

import pytest
from django.db import IntegrityError, transaction

from runs import models as m
from tests import factories

pytestmark = pytest.mark.django_db


def _raises_integrity(fn):
    with pytest.raises(IntegrityError), transaction.atomic():
        fn()


def test_one_completion_per_prompt_and_sample_index():
    run = factories.make_run()
    prompt = run.prompt_set.prompts.first()
    m.Completion.objects.create(run=run, prompt=prompt, sample_index=0, text="x", model="tiny")
    _raises_integrity(
        lambda: m.Completion.objects.create(run=run, prompt=prompt, sample_index=0, text="y", model="tiny")
    )


def test_one_judgment_per_comparison_principle_and_judge():
    run = factories.make_run()
    comparison = factories.make_comparison(run)
    principle = run.constitution_version.principles.first()
    m.Judgment.objects.create(comparison=comparison, principle=principle, judge_id="judge-1", verdict="A")
    _raises_integrity(
        lambda: m.Judgment.objects.create(comparison=comparison, principle=principle, judge_id="judge-1", verdict="B")
    )
    # another judge, or a principle-free judgment, is a different row
    m.Judgment.objects.create(comparison=comparison, principle=principle, judge_id="judge-2", verdict="B")
    m.Judgment.objects.create(comparison=comparison, principle=None, judge_id="judge-1", verdict="B")
    _raises_integrity(lambda: m.Judgment.objects.create(comparison=comparison, principle=None, judge_id="judge-1"))


def test_one_label_per_auditor_and_per_external_annotator(auditor):
    comparison = factories.make_comparison(factories.make_run())
    m.HumanLabel.objects.create(comparison=comparison, auditor=auditor, choice="A")
    _raises_integrity(lambda: m.HumanLabel.objects.create(comparison=comparison, auditor=auditor, choice="B"))
    m.HumanLabel.objects.create(comparison=comparison, external_annotator="pandalm:0", choice="A")
    m.HumanLabel.objects.create(comparison=comparison, external_annotator="pandalm:1", choice="B")
    _raises_integrity(
        lambda: m.HumanLabel.objects.create(comparison=comparison, external_annotator="pandalm:1", choice="A")
    )
    _raises_integrity(lambda: m.HumanLabel.objects.create(comparison=comparison, choice="A"))


def test_prompt_content_hash_unique_per_set_not_across_sets():
    a, b = factories.make_prompt_set(2), factories.make_prompt_set(0)
    first = a.prompts.first()
    m.Prompt.objects.create(prompt_set=b, index=10, text=first.text, content_hash=first.content_hash)
    assert m.Prompt.objects.filter(content_hash=first.content_hash).count() == 2
    _raises_integrity(
        lambda: m.Prompt.objects.create(prompt_set=a, index=11, text=first.text, content_hash=first.content_hash)
    )


def test_one_stage_row_per_run_and_metric_per_step():
    run = factories.make_run(stages=("generate",))
    _raises_integrity(lambda: m.StageRun.objects.create(run=run, stage="generate"))
    m.MetricPoint.objects.create(run=run, stage="policy", step=1, name="kl", value=0.1)
    _raises_integrity(lambda: m.MetricPoint.objects.create(run=run, stage="policy", step=1, name="kl", value=0.2))


def test_prompt_set_in_use_cannot_be_deleted():
    run = factories.make_run()
    with pytest.raises(Exception, match="protected"):
        run.prompt_set.delete()


def test_runs_of_two_databases_with_the_same_pk_get_their_own_folders_and_jobs(settings):
    """Run #1 of a SQLite database and run #1 of a PostgreSQL one may share STUDIO_DATA_DIR and Redis."""
    from runs import import_jobs, services

    run = factories.make_run()
    stage_run = run.stages.get()
    folder, job_id = run.artifacts_dir, services.job_id_for(stage_run)
    assert folder == settings.ARTIFACTS_DIR / f"run-{run.pk}-{run.uid.hex[:8]}"
    assert job_id == f"run-{run.pk}-{run.uid.hex[:8]}-generate"

    m.Run.objects.filter(pk=run.pk).update(uid=uuid.uuid4())  # the same pk, as in the other database
    other = m.Run.objects.get(pk=run.pk)
    assert other.artifacts_dir != folder and services.job_id_for(other.stages.get()) != job_id

    prompt_set = run.prompt_set
    first = import_jobs.job_id_for(prompt_set)
    m.PromptSet.objects.filter(pk=prompt_set.pk).update(uid=uuid.uuid4())
    assert import_jobs.job_id_for(m.PromptSet.objects.get(pk=prompt_set.pk)) != first


def test_every_run_and_prompt_set_has_its_own_uid():
    runs = [factories.make_run() for _ in range(3)]
    assert len({r.uid for r in runs}) == 3
    assert len({r.prompt_set.uid for r in runs}) == 3
    _raises_integrity(lambda: m.Run.objects.filter(pk=runs[1].pk).update(uid=runs[0].uid))


def test_a_run_stored_before_schema_versions_reads_upgraded_and_an_external_run_reads_the_defaults():
    from tests.training.test_config import STORED_SCHEMA_1

    old = factories.make_run(config=STORED_SCHEMA_1)
    old.refresh_from_db()
    assert "schema_version" not in old.config  # the stored row stays as it was written
    config = old.run_config
    assert config.schema_version == 2
    assert (config.sft.checkpoint_every, config.reward_model.checkpoint_every) == (10, 10)
    external = factories.make_run(kind="external", config={"training_arguments": {"learning_rate": 0.001}})
    assert external.run_config.policy.beta == 0.05  # the studio's defaults, not a validation error

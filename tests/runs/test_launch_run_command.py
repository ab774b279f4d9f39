"""`manage.py launch_run`: same options and validation as the launch form."""
import json

import pytest
from django.core.management import CommandError, call_command

from runs.models import Run, StageStatus
from tests import factories
from tests.runs.stage_doubles import use_stage_function

pytestmark = pytest.mark.django_db


@pytest.fixture
def inputs():
    version = factories.make_version(principles=[factories.principle("Honest"), factories.principle("Helpful")])
    prompt_set = factories.make_prompt_set(n=6, name="cli prompts")
    return version, prompt_set


def launch(*args):
    from io import StringIO

    out = StringIO()
    call_command("launch_run", *args, stdout=out)
    return out.getvalue()


def test_preset_file_and_overrides_are_merged_and_validated(inputs, tmp_path, queue_connection):
    version, prompt_set = inputs
    config_file = tmp_path / "run.yaml"
    config_file.write_text("judge:\n  concurrency: 2\n  tie_margin: 0.1\ntimeouts:\n  label: 600\n")
    out = launch(
        "--preset", "offline-demo", "--name", "cli run", "--constitution", version.constitution.name,
        "--prompt-set", "cli prompts", "--config", str(config_file), "--set", "judge.concurrency=3",
        "--set", "judge.both_orders=false", "--set", "policy.learning_rate=1e-4",
        "--stages", "generate,label", "--json",
    )
    result = json.loads(out)
    run = Run.objects.get(pk=result["run"])
    assert run.name == "cli run" and run.constitution_version == version and run.prompt_set == prompt_set
    assert run.config["judge"]["concurrency"] == 3 and run.config["judge"]["both_orders"] is False
    assert run.config["policy"]["learning_rate"] == 1e-4  # YAML 1.1 reads "1e-4" as text
    assert run.config["judge"]["tie_margin"] == 0.1 and run.config["timeouts"] == {"label": 600}
    assert run.config["generation"]["model"] == "demo://policy"
    assert result["stages"] == {"generate": {"status": "queued", "done": 0, "total": None},
                                "label": {"status": "pending", "done": 0, "total": None}}
    assert result["estimate"]["comparisons"] == 6 and result["estimate"]["judge_calls"] == 6


def test_errors_name_the_field_and_launch_nothing(inputs):
    version, _ = inputs
    with pytest.raises(CommandError, match=r"judge\.concurrency: must be at least 1; got 0"):
        launch("--constitution", str(version.pk), "--prompt-set", "cli prompts", "--set", "judge.concurrency=0")
    with pytest.raises(CommandError, match=r"policy\.algorithm: must be one of 'rloo', 'grpo', 'online_dpo', 'dpo'; got 'ppo'"):
        launch("--constitution", str(version.pk), "--prompt-set", "cli prompts", "--set", "policy.algorithm=ppo")
    with pytest.raises(CommandError, match=r"policy\.batch_size: must be a multiple of policy\.num_generations"):
        launch("--constitution", str(version.pk), "--prompt-set", "cli prompts", "--set", "policy.batch_size=5")
    with pytest.raises(CommandError, match=r"--set judge\.concurrency\.x: concurrency is not a section"):
        launch("--constitution", str(version.pk), "--prompt-set", "cli prompts", "--set", "judge.concurrency.x=1")
    with pytest.raises(CommandError, match=r"stages: Select a valid choice. train"):
        launch("--constitution", str(version.pk), "--prompt-set", "cli prompts", "--stages", "generate,train")
    with pytest.raises(CommandError, match=r"timeouts.label: must be a positive number of seconds"):
        launch("--constitution", str(version.pk), "--prompt-set", "cli prompts", "--set", "timeouts.label=-1")
    with pytest.raises(CommandError, match="no such prompt set"):
        launch("--constitution", str(version.pk), "--prompt-set", "missing")
    with pytest.raises(CommandError, match="no such constitution version"):
        launch("--constitution", f"{version.constitution.name}@v9", "--prompt-set", "cli prompts")
    with pytest.raises(CommandError, match="expected PATH=VALUE"):
        launch("--constitution", str(version.pk), "--prompt-set", "cli prompts", "--set", "judge.concurrency")
    assert not Run.objects.exists()


def test_estimate_only(inputs):
    version, _ = inputs
    out = launch("--constitution", f"{version.constitution.name}@v1", "--prompt-set", "cli prompts",
                 "--set", "judge.principle_sampling=all", "--set", "judge.self_consistency=2", "--estimate-only")
    assert "judge calls: 48" in out  # 6 comparisons x 2 principles x 2 orders x 2 samples
    assert not Run.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_wait_runs_the_stages_here(inputs, monkeypatch, queue_connection):
    use_stage_function(monkeypatch, "generate", "tests.runs.stage_doubles.counting_stage")
    use_stage_function(monkeypatch, "label", "tests.runs.stage_doubles.counting_stage")
    version, _ = inputs
    out = launch("--constitution", str(version.pk), "--prompt-set", "cli prompts", "--stages", "generate,label",
                 "--wait")
    run = Run.objects.get()
    assert run.status == "succeeded" and "succeeded" in out
    assert {s.status for s in run.stages.all()} == {StageStatus.SUCCEEDED}

    use_stage_function(monkeypatch, "generate", "tests.runs.stage_doubles.failing_stage")
    with pytest.raises(CommandError, match="failed in generate: ValueError: boom"):
        launch("--constitution", str(version.pk), "--prompt-set", "cli prompts", "--stages", "generate", "--wait")


def test_help_lists_every_config_field_with_its_default_and_help():
    from runs.management.commands.launch_run import config_fields_help

    text = config_fields_help()
    assert "  policy.beta (float, default 0.05): KL coefficient to the reference policy" in text
    assert "  judge.backend (openai|transformers|reward_model|likelihood, default 'transformers'):" in text

"""Launch pre-flight through the form and launch_run: every problem at once, on its field, in seconds, and the
fallbacks the run takes recorded on it."""
from __future__ import annotations

import json
import shutil
import socket
import time

import pytest
from django.urls import reverse

from runs.forms import LaunchForm
from runs.models import Artifact, Run
from runs.presets import PRESETS
from tests import factories
from tests.factories import launch_post_data
from tests.training.tiny import tiny_lm

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def form_for(config_update: dict, stages) -> LaunchForm:
    config = PRESETS["offline-demo"].full_config()
    for section, values in config_update.items():
        config[section].update(values)
    data = launch_post_data(config, name="preflight", constitution_version=factories.make_version(),
                                 prompt_set=factories.make_prompt_set(n=4), stages=list(stages))
    return LaunchForm({k: v for k, v in data.items() if v is not None})


def test_every_problem_is_listed_in_one_submit(tmp_path, monkeypatch):
    monkeypatch.delenv("STUDIO_KEY_LAUNCHTEST", raising=False)
    started = time.monotonic()
    form = form_for({
        "generation": {"model": str(tmp_path / "missing-model")},
        "judge": {"backend": "openai", "model": "m", "base_url": f"http://127.0.0.1:{closed_port()}/v1",
                  "api_key_env": "STUDIO_KEY_LAUNCHTEST"},
        "reward_model": {"max_length": 4096},
    }, ["generate", "label", "reward_model", "policy", "evaluate"])
    assert not form.is_valid()
    assert time.monotonic() - started < 10
    errors = {name: " ".join(messages) for name, messages in form.errors.items()}
    assert "does not exist" in errors["generation__model"]
    assert "STUDIO_KEY_LAUNCHTEST is not set" in errors["judge__api_key_env"]
    assert "has 512 positions" in errors["reward_model__max_length"]  # MiniLM
    assert not Run.objects.exists()


def test_stage_combinations_are_checked(client, operator):
    form = form_for({}, ["generate", "label", "policy"])
    assert not form.is_valid()
    assert "needs a reward model" in " ".join(form.errors["stages"])


def test_fallbacks_are_recorded_on_the_run(tmp_path, client, operator, queue_connection):
    plain = tmp_path / "plain-lm"
    shutil.copytree(tiny_lm(tmp_path / "lm"), plain)
    tok = json.loads((plain / "tokenizer_config.json").read_text())
    tok.pop("chat_template", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(tok))
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    form = form_for({"generation": {"model": str(plain), "max_new_tokens": 16}}, ["generate"])
    assert form.is_valid(), form.errors
    run = form.launch(operator)
    report = Artifact.objects.get(run=run, name="pre-flight")
    assert "Human/Assistant transcript" in report.metrics["fallbacks"]["generation.model.prompt_format"]
    client.force_login(operator)
    assert "Human/Assistant transcript" in client.get(reverse("runs:detail", args=[run.pk])).content.decode()


def test_a_reference_pairs_run_needs_reference_pairs():
    form = form_for({"generation": {"source": "reference_pairs"}}, ["generate", "label"])
    assert not form.is_valid()
    assert "has no reference pairs to judge" in " ".join(form.errors["generation__source"])


def test_field_and_config_problems_come_together(tmp_path):
    config = PRESETS["offline-demo"].full_config()
    config["generation"]["model"] = str(tmp_path / "missing")
    data = launch_post_data(config, name="", constitution_version=factories.make_version(),
                                 prompt_set=factories.make_prompt_set(n=2), stages=["generate"])
    form = LaunchForm({k: v for k, v in data.items() if v is not None})
    assert not form.is_valid()
    assert "name" in form.errors and "does not exist" in " ".join(form.errors["generation__model"])

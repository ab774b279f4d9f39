"""Launch probes the OpenAI-compatible endpoints a run will call (GET /models, the model served) and says what
is wrong on the form and in `manage.py launch_run`, before anything is queued."""
from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from benchmarks.fake_openai_server import FakeChatServer
from runs.forms import LaunchForm
from runs.models import Run
from runs.presets import PRESETS
from tests import factories
from tests.factories import launch_post_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def server():
    with FakeChatServer(served_models=["judge-model"]) as running:
        yield running


def launch_form(judge: dict, stages=("generate", "label")) -> LaunchForm:
    config = PRESETS["offline-demo"].full_config()
    config["judge"].update(judge)
    data = launch_post_data(config, name="probe", constitution_version=factories.make_version(),
                                 prompt_set=factories.make_prompt_set(n=4), stages=list(stages))
    return LaunchForm({k: v for k, v in data.items() if v is not None})


def test_an_endpoint_that_serves_the_model_launches(server):
    form = launch_form({"backend": "openai", "base_url": server.url, "model": "judge-model"})
    assert form.is_valid(), form.errors
    assert server.paths["GET /v1/models"] == 1


def test_a_model_the_endpoint_does_not_serve_is_named_on_the_base_url_field(server):
    form = launch_form({"backend": "openai", "base_url": server.url, "model": "judge-modle"})
    assert not form.is_valid()
    assert form.errors["judge__base_url"] == [
        f"the endpoint {server.url} does not serve the model 'judge-modle'; it serves: judge-model"
    ]


def test_a_dead_endpoint_is_refused_at_launch():
    with FakeChatServer() as stopped:
        url = stopped.url
    form = launch_form({"backend": "openai", "base_url": url, "model": "m"})
    assert not form.is_valid()
    assert form.errors["judge__base_url"][0].startswith(f"the endpoint {url} is unreachable (")


def test_no_probe_when_no_chosen_stage_calls_the_endpoint(server):
    form = launch_form({"backend": "openai", "base_url": server.url, "model": "other"}, stages=("generate",))
    assert form.is_valid(), form.errors
    assert server.paths["GET /v1/models"] == 0


def test_launch_run_says_what_is_wrong_and_launches_nothing(server):
    version = factories.make_version()
    factories.make_prompt_set(n=4, name="probe prompts")
    with pytest.raises(CommandError, match=r"judge.base_url: the endpoint .* does not serve the model 'nope'"):
        call_command(
            "launch_run", "--constitution", str(version.pk), "--prompt-set", "probe prompts",
            "--set", "judge.backend=openai", "--set", f"judge.base_url={server.url}", "--set", "judge.model=nope",
        )
    assert not Run.objects.exists()

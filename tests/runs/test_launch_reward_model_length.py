"""Launch refuses a reward_model.max_length beyond the base model's positions (read from its config on disk),
naming the field and the limit."""
from __future__ import annotations

import pytest

from runs.forms import LaunchForm
from runs.presets import PRESETS
from tests import factories
from tests.factories import launch_post_data

pytestmark = pytest.mark.django_db


def launch_form(max_length: int, stages=("generate", "label", "reward_model")) -> LaunchForm:
    config = PRESETS["offline-demo"].full_config()
    config["reward_model"]["base_model"] = "minilm"  # all-MiniLM-L6-v2: 512 positions
    config["reward_model"]["max_length"] = max_length
    data = launch_post_data(config, name="rm", constitution_version=factories.make_version(),
                                 prompt_set=factories.make_prompt_set(n=4), stages=list(stages))
    return LaunchForm({k: v for k, v in data.items() if v is not None})


def test_max_length_beyond_the_base_model_positions_is_refused_at_launch():
    form = launch_form(4096)
    assert not form.is_valid()
    assert form.errors["reward_model__max_length"] == [
        "is 4096, but the base model minilm has 512 positions; at most 512"
    ]


def test_max_length_within_the_positions_or_without_a_reward_model_stage_launches():
    assert launch_form(512).is_valid(), launch_form(512).errors
    assert launch_form(4096, stages=("generate", "label")).is_valid()

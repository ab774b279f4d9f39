"""The judge and generation backend registries: names, unknown-backend errors, declared capabilities, and
the config's ``backend`` choices kept equal to the registries."""
from __future__ import annotations

import subprocess
import sys
import typing

import pytest

from training.config import ConfigError, GenerationConfig, JudgeConfig, RunConfig
from training.generation_backends import GENERATION_BACKENDS, generation_backend, load_sampler
from training.judges import JUDGE_BACKENDS, Judge, UnknownBackend, build_judge, judge_backend, judge_id_for


def _choices(cls, name: str) -> tuple[str, ...]:
    return typing.get_args(typing.get_type_hints(cls)[name])


def test_config_backend_choices_are_the_registered_backends():
    assert set(_choices(JudgeConfig, "backend")) == set(JUDGE_BACKENDS.names)
    assert set(_choices(GenerationConfig, "backend")) == set(GENERATION_BACKENDS.names)


@pytest.mark.parametrize("name", JUDGE_BACKENDS.names)
def test_every_judge_backend_is_a_judge_with_a_builder(name):
    cls = judge_backend(name)
    assert Judge in cls.__mro__  # inherits the protocol's defaults
    assert callable(cls.from_config) and callable(cls.close) and callable(cls.stop)
    assert cls.needs_endpoint != cls.local_model  # a judge is either called over HTTP or loaded here


def test_unknown_judge_backend_is_a_value_error_that_lists_the_known_ones():
    with pytest.raises(UnknownBackend, match=r"judge\.backend: unknown backend 'nope' \(openai, transformers"):
        judge_backend("nope")
    assert issubclass(UnknownBackend, ValueError)
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        build_judge(JudgeConfig(backend="nope"))  # type: ignore[arg-type]


def test_unknown_generation_backend_is_a_value_error():
    with pytest.raises(UnknownBackend, match=r"generation\.backend: unknown backend 'vllm' \(transformers, openai\)"):
        generation_backend("vllm")
    with pytest.raises(ValueError, match="unknown backend 'vllm'"):
        load_sampler(GenerationConfig(backend="vllm"))  # type: ignore[arg-type]


def test_unknown_backend_in_a_stored_config_names_the_field():
    with pytest.raises(ConfigError, match=r"judge\.backend: must be one of"):
        RunConfig.from_dict({"judge": {"backend": "nope"}})


def test_judge_capabilities():
    openai, transformers = judge_backend("openai"), judge_backend("transformers")
    reward_model, likelihood = judge_backend("reward_model"), judge_backend("likelihood")
    assert openai.needs_endpoint and openai.paid and openai.generates_rationale and not openai.order_invariant
    assert not openai.local_model
    for local in (transformers, reward_model, likelihood):
        assert local.local_model and not local.needs_endpoint and not local.paid
    assert reward_model.order_invariant and likelihood.order_invariant and not transformers.order_invariant
    assert reward_model.needs_padding and not transformers.needs_padding and not likelihood.needs_padding
    # transformers writes a rationale only with chain_of_thought: decided per instance, not per backend
    assert not transformers.generates_rationale


def test_generation_capabilities():
    local, endpoint = generation_backend("transformers"), generation_backend("openai")
    assert local.local_model and not local.needs_endpoint
    assert endpoint.needs_endpoint and not endpoint.local_model
    assert local.prompt_format == endpoint.prompt_format == ""  # until a local model is loaded


def test_judge_id_names_the_endpoint_only_for_endpoint_backends():
    assert judge_id_for(JudgeConfig(backend="openai", model="m", base_url="http://h:1/v1/")) == "openai:m@http://h:1/v1"
    assert judge_id_for(JudgeConfig(backend="likelihood", model="m", base_url="http://h:1/v1")) == "likelihood:m"


def test_endpoint_backends_require_a_base_url_and_local_ones_do_not():
    with pytest.raises(ConfigError, match=r"judge\.base_url: is required with the openai backend"):
        RunConfig.from_dict({"judge": {"backend": "openai", "model": "m"}})
    with pytest.raises(ConfigError, match=r"generation\.base_url: is required with the openai backend"):
        RunConfig.from_dict({"generation": {"backend": "openai", "model": "m"}})
    RunConfig.from_dict({"judge": {"backend": "reward_model", "model": "m"}})


class _Minimal(Judge):
    def __init__(self, config, models_dir=None):
        self.judge_id = "minimal"

    def score(self, requests):
        return []


def test_judge_protocol_defaults_need_no_getattr():
    judge = _Minimal.from_config(JudgeConfig())
    assert not judge.order_invariant and not judge.generates_rationale and not judge.sampled
    assert dict(judge.params) == {} and dict(judge.dropped) == {}
    assert judge.breaker is None and judge.ledger is None
    judge.stop()
    judge.close()


def test_asking_the_registries_loads_no_heavy_library():
    code = (
        "import sys; from training.judges import JUDGE_BACKENDS, judge_backend;"
        "from training.generation_backends import GENERATION_BACKENDS, generation_backend;"
        "[judge_backend(n).order_invariant for n in JUDGE_BACKENDS.names];"
        "[generation_backend(n).local_model for n in GENERATION_BACKENDS.names];"
        "print(sorted(m for m in ('torch', 'transformers', 'openai') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"

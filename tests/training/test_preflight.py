"""The launch pre-flight (training.preflight): every problem at once, with its config path, within seconds."""
from __future__ import annotations

import json
import shutil
import socket
import time

import pytest

from tests.training.tiny import tiny_lm
from training.config import RunConfig
from training.preflight import model_uses, preflight, stage_problems

ALL = ["generate", "label", "reward_model", "policy", "evaluate"]


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return tiny_lm(tmp_path_factory.mktemp("preflight-lm") / "lm", n_positions=64)


def config(**sections):
    return RunConfig.from_dict(sections)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_sound_local_run_passes(lm, tmp_path):
    cfg = config(generation={"model": str(lm), "max_new_tokens": 16}, judge={"model": str(lm)},
                 reward_model={"base_model": str(lm), "max_length": 48},
                 policy={"max_new_tokens": 16}, evaluation={"max_new_tokens": 16})
    result = preflight(cfg, ALL, tmp_path, hub_reason=lambda: "")
    assert result.ok, result.problems
    assert result.seconds < 8


def test_every_problem_is_reported_at_once_with_its_path(lm, tmp_path, monkeypatch):
    monkeypatch.delenv("STUDIO_KEY_PREFLIGHT", raising=False)
    cfg = config(
        generation={"model": "no-such-org/no-such-model", "max_new_tokens": 16},
        judge={"backend": "openai", "model": "m", "base_url": f"http://127.0.0.1:{closed_port()}/v1",
               "api_key_env": "STUDIO_KEY_PREFLIGHT"},
        reward_model={"base_model": str(lm), "max_length": 500},
    )
    started = time.monotonic()
    result = preflight(cfg, ALL, tmp_path, hub_reason=lambda: "offline mode is on")
    assert time.monotonic() - started < 10
    paths = dict(result.problems)
    assert "hub cannot be reached: offline mode is on" in paths["generation.model"]
    assert "STUDIO_KEY_PREFLIGHT is not set" in paths["judge.api_key_env"]
    assert "has 64 positions; at most 64" in paths["reward_model.max_length"]


def test_an_endpoint_that_is_down_is_named(tmp_path):
    cfg = config(judge={"backend": "openai", "model": "m", "base_url": f"http://127.0.0.1:{closed_port()}/v1"})
    result = preflight(cfg, ["label"], tmp_path, hub_reason=lambda: "")
    problems = dict(result.problems)
    assert "judge.base_url" in problems and "unreachable" in problems["judge.base_url"]


def test_a_missing_local_path_and_a_tokenizer_without_pad_or_eos(lm, tmp_path):
    broken = tmp_path / "no-pad-no-eos"
    shutil.copytree(lm, broken)
    special = json.loads((broken / "tokenizer_config.json").read_text())
    for key in ("pad_token", "eos_token", "bos_token", "unk_token"):
        special.pop(key, None)
    (broken / "tokenizer_config.json").write_text(json.dumps(special))
    (broken / "special_tokens_map.json").unlink(missing_ok=True)
    cfg = config(generation={"model": str(tmp_path / "missing")}, reward_model={"base_model": str(broken)})
    problems = dict(preflight(cfg, ALL, tmp_path, hub_reason=lambda: "").problems)
    assert "does not exist" in problems["generation.model"]
    assert "neither a padding nor an end-of-sequence token" in problems["reward_model.base_model"]


def test_fallbacks_are_reported(lm, tmp_path):
    plain = tmp_path / "plain"
    shutil.copytree(lm, plain)
    tok = json.loads((plain / "tokenizer_config.json").read_text())
    tok.pop("chat_template", None)
    tok.pop("pad_token", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(tok))
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    special = plain / "special_tokens_map.json"
    if special.exists():
        data = json.loads(special.read_text())
        data.pop("pad_token", None)
        special.write_text(json.dumps(data))
    cfg = config(generation={"model": str(plain), "max_new_tokens": 16})
    result = preflight(cfg, ["generate"], tmp_path, hub_reason=lambda: "")
    assert result.ok, result.problems
    assert "Human/Assistant transcript" in result.fallbacks["generation.model.prompt_format"]
    assert "pad token = EOS" in result.fallbacks["generation.model.pad_token"]


def test_stage_combinations():
    rloo = RunConfig.from_dict({})
    assert stage_problems(rloo, ALL) == []
    assert any("needs a reward model" in m for _, m in stage_problems(rloo, ["generate", "label", "policy"]))
    assert any("label needs the output of generate" in m for _, m in stage_problems(rloo, ["label"]))
    dpo = RunConfig.from_dict({"policy": {"algorithm": "dpo"}})
    assert stage_problems(dpo, ["generate", "label", "policy", "evaluate"]) == []


def test_the_judge_as_the_reward_needs_no_reward_model_stage_but_its_judge():
    direct = RunConfig.from_dict({"policy": {"reward_source": "judge"}})
    assert stage_problems(direct, ["generate", "label", "policy", "evaluate"]) == []
    assert stage_problems(direct, ["policy"]) == []  # RL on the train prompts: nothing to label first
    grpo = RunConfig.from_dict({"policy": {"algorithm": "grpo", "reward_source": "judge"}})
    assert stage_problems(grpo, ["policy"]) == []
    assert any("reward_source judge" in m for _, m in stage_problems(RunConfig.from_dict({}), ["policy"]))
    # the policy stage loads the judge, not a reward-model backbone
    paths = [use.path for use in model_uses(direct, ["policy"])]
    assert "judge.model" in paths and "reward_model.base_model" not in paths
    paths = [use.path for use in model_uses(RunConfig.from_dict({}), ["policy"])]
    assert "reward_model.base_model" in paths and "judge.model" not in paths


def test_the_judge_endpoint_is_checked_when_it_is_the_policy_reward(tmp_path):
    judge = {"backend": "openai", "base_url": f"http://127.0.0.1:{closed_port()}/v1", "model": "m"}
    result = preflight(config(judge=judge, policy={"reward_source": "judge"}, generation={"model": "demo://policy"}),
                       ["policy"], tmp_path, hub_reason=lambda: "")
    assert any(path == "judge.base_url" for path, _ in result.problems), result.problems

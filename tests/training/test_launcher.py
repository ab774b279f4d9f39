"""Training launched as ``accelerate launch`` with N processes (training.launcher): the launch fields' checks,
and real two-process runs on this CPU (gloo) of the reward model and RLOO on tiny models: each step's metrics
arrive once, a cancel saves a checkpoint and a killed worker leaves no training behind, the rerun continues from
the last checkpoint, and the result has the shape of a single-process run's."""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from tests.training.test_reward_model import separable
from tests.training.tiny import tiny_lm
from training.checkpoints import checkpoint_step, last_checkpoint
from training.config import ConfigError, PolicyConfig, RewardModelConfig, RunConfig, field_help
from training.launcher import (
    CONFIG_ENV,
    LaunchError,
    RewardModelRef,
    TrainingProcessError,
    launch_plan,
    run_training,
)
from training.progress import Cancelled, NullReporter, RecordingReporter

#: Two processes on the CPU: accelerate starts them through torchrun, and they pick gloo.
MULTI_CPU = """compute_environment: LOCAL_MACHINE
distributed_type: MULTI_CPU
num_machines: 1
num_processes: 2
mixed_precision: 'no'
use_cpu: true
"""
PROMPTS = [f"Question {i} about the sea?" for i in range(16)]
TARGETS = set(range(100, 200))


def target_fraction(prompts, completions, completion_ids, **kwargs):
    """A known reward (module level, so the launched processes import it by name)."""
    return [sum(t in TARGETS for t in ids) / max(1, len(ids)) for ids in completion_ids]


@pytest.fixture
def cpu_config(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("STUDIO_TORCH_THREADS", "1")  # --num_cpu_threads_per_process 1: the two share the cores
    path = tmp_path / "multi_cpu.yaml"
    path.write_text(MULTI_CPU)
    return path


def accelerate_yaml(tmp_path: Path, **changes) -> Path:
    lines = dict(line.split(": ", 1) for line in MULTI_CPU.strip().splitlines())
    lines.update({k: str(v) for k, v in changes.items()})
    path = tmp_path / "accelerate.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in lines.items()))
    return path


def steps_of(reporter: RecordingReporter, name: str) -> list[int]:
    return [step for step, values in reporter.metrics if name in values]


# --- the launch fields ------------------------------------------------------------------------------------------


def test_launch_fields_are_validated_with_the_config():
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({"reward_model": {"num_processes": 2}})
    assert caught.value.path == "reward_model.num_processes" and "launcher 'accelerate'" in caught.value.message
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({"policy": {"launcher": "accelerate", "reward_source": "judge"}})
    assert caught.value.path == "policy.launcher"
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({"sft": {"launcher": "accelerate", "num_processes": -1}})
    assert caught.value.path == "sft.num_processes"
    config = RunConfig.from_dict({"policy": {"launcher": "accelerate", "num_processes": 8}})
    assert (config.policy.launcher, config.policy.num_processes, config.sft.launcher) == ("accelerate", 8, "in_process")
    assert field_help(RewardModelConfig)["accelerate_config"].startswith("accelerate config file on the worker")


def test_launch_plan_reads_the_named_config_file(tmp_path, monkeypatch):
    path = accelerate_yaml(tmp_path)
    plan = launch_plan(RewardModelConfig(launcher="accelerate", accelerate_config=str(path)), "reward_model",
                       environ={})
    assert (plan.config_file, plan.num_processes, plan.distributed_type) == (str(path.resolve()), 2, "MULTI_CPU")
    options = list(plan.options)
    assert options[:4] == ["--config_file", str(path.resolve()), "--num_processes", "2"]
    assert "--multi_gpu" in options  # accelerate starts MULTI_CPU through MPI only; torchrun starts the two here
    assert int(options[options.index("--main_process_port") + 1]) > 0
    # the section's number wins over the file's; the deployment's variable names the file when the section does not
    plan = launch_plan(PolicyConfig(launcher="accelerate", num_processes=3), "policy", environ={CONFIG_ENV: str(path)})
    assert plan.num_processes == 3 and plan.config_file == str(path.resolve())
    threads = launch_plan(PolicyConfig(launcher="accelerate"), "policy",
                          environ={CONFIG_ENV: str(path), "STUDIO_TORCH_THREADS": "1"}).options
    assert list(threads[-2:]) == ["--num_cpu_threads_per_process", "1"]


@pytest.mark.parametrize(
    ("changes", "section", "path", "message"),
    [
        ({}, {"accelerate_config": "/nowhere/accelerate.yaml"}, "policy.accelerate_config",
         "/nowhere/accelerate.yaml (policy.accelerate_config) does not exist"),
        ({"num_processes": -1}, {}, "policy.num_processes", "must be at least 1"),
        ({"num_machines": 2}, {}, "policy.accelerate_config", "asks for 2 machines"),
        ({"distributed_type": "DEEPSPEED", "use_cpu": "false"}, {}, "policy.num_processes",
         "2 processes of DEEPSPEED need as many GPUs"),
        ({"distributed_type": "NOT_A_TYPE"}, {}, "policy.accelerate_config", "cannot be read"),
    ],
)
def test_launch_plan_fails_early_naming_what_is_wrong(tmp_path, monkeypatch, changes, section, path, message):
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    config_file = accelerate_yaml(tmp_path, **changes)
    policy = PolicyConfig(launcher="accelerate", **{"accelerate_config": str(config_file), **section})
    with pytest.raises(LaunchError) as caught:
        launch_plan(policy, "policy", environ={})
    assert caught.value.path == path and message in str(caught.value)


def test_launch_refuses_a_missing_accelerate_config_before_anything_is_queued(tmp_path, monkeypatch):
    from training.launcher import launch_problems
    from training.preflight import preflight

    monkeypatch.delenv(CONFIG_ENV, raising=False)
    config = RunConfig.from_dict({
        "reward_model": {"launcher": "accelerate", "accelerate_config": str(tmp_path / "missing.yaml")},
        "sft": {"launcher": "accelerate", "accelerate_config": str(accelerate_yaml(tmp_path, num_machines=3))},
    })
    problems = launch_problems(config, ["label", "reward_model", "sft"])
    assert [path for path, _ in problems] == ["sft.accelerate_config", "reward_model.accelerate_config"]
    assert "asks for 3 machines" in problems[0][1] and "missing.yaml" in problems[1][1]
    assert launch_problems(config, ["label"]) == []  # only the stages the run executes
    result = preflight(config, ["reward_model"], tmp_path, hub_reason=lambda: "offline in this test")
    assert ("reward_model.accelerate_config", problems[1][1]) in result.problems


def test_a_reward_function_the_processes_cannot_import_is_refused(tmp_path):
    config = PolicyConfig(launcher="accelerate", accelerate_config=str(accelerate_yaml(tmp_path)))
    with pytest.raises(ValueError, match="cannot be sent to the training processes"):
        run_training("policy", config=config, policy_model="unused", output_dir=tmp_path / "out", prompts=PROMPTS,
                     reward_fn=lambda prompts, completions, **kw: [0.0] * len(completions), reporter=NullReporter())


def test_a_failing_launch_names_the_error_and_the_output_tail(tmp_path, cpu_config):
    from datasets import Dataset

    config = RewardModelConfig(launcher="accelerate", num_processes=1, accelerate_config=str(cpu_config))
    empty = Dataset.from_dict({"prompt": [], "chosen": [], "rejected": []})
    with pytest.raises(TrainingProcessError) as caught:
        run_training("reward_model", train_dataset=empty, base_model=str(tiny_lm(tmp_path / "lm")), config=config,
                     output_dir=tmp_path / "rm", reporter=RecordingReporter())
    error = caught.value
    assert error.returncode != 0 and error.error["type"] == "ValueError"
    assert "no preference pairs to train the reward model on" in str(error)
    assert "Traceback" in error.output_tail and "exited with code" in str(error)
    assert (tmp_path / "rm" / "launch" / "output.log").read_text().count("ValueError") >= 1


# --- two processes on the CPU -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_reward_model_on_two_processes_reports_each_step_once_and_resumes_after_a_cancel(tmp_path, cpu_config):
    from training.reward_model import train_reward_model

    base = str(tiny_lm(tmp_path / "lm"))
    train, held_out = separable(32, 0), separable(16, 1)
    fields = {"learning_rate": 3e-3, "epochs": 3, "batch_size": 4, "max_length": 64}
    single = train_reward_model(train, base, RewardModelConfig(**fields), tmp_path / "single",
                                eval_dataset=held_out, checkpoint_every=100)
    config = RewardModelConfig(**fields, launcher="accelerate", num_processes=2, accelerate_config=str(cpu_config))
    inputs = {"train_dataset": train, "base_model": base, "config": config, "output_dir": tmp_path / "rm",
              "eval_dataset": held_out, "checkpoint_every": 100}
    total = 12  # 32 pairs x 3 epochs / (4 per process x 2 processes)

    stopper = RecordingReporter(stop_after=2)
    with pytest.raises(Cancelled):
        run_training("reward_model", reporter=stopper, **inputs)
    stopped = stopper.progress_calls[-1][0]
    assert 2 <= stopped < total, stopped
    assert [c[0] for c in stopper.progress_calls] == list(range(1, stopped + 1))  # once each, not once per process
    assert steps_of(stopper, "loss") == list(range(1, stopped + 1))
    assert checkpoint_step(last_checkpoint(tmp_path / "rm" / "checkpoints")) == stopped  # saved at the stop
    assert not (tmp_path / "rm" / "model").exists()

    reporter = RecordingReporter()
    result = run_training("reward_model", reporter=reporter, **inputs)
    assert result.resumed_from.endswith(f"checkpoint-{stopped}")
    assert [c[0] for c in reporter.progress_calls] == list(range(stopped + 1, total + 1))
    assert steps_of(reporter, "loss") == list(range(stopped + 1, total + 1))
    assert steps_of(reporter, "train_pairs") == [total]  # the final metrics, once
    # the shape of a single-process run: the same metrics and files, half the steps (each sees two batches)
    assert result.metrics["steps"] == total and single.metrics["steps"] == 2 * total
    assert set(result.metrics) == set(single.metrics)
    assert result.metrics["train_pairs"] == 32 and result.metrics["eval_pairs"] == 16
    assert 0.0 <= result.metrics["eval_accuracy"] <= 1.0
    assert sorted(p.name for p in result.path.iterdir()) == sorted(p.name for p in single.path.iterdir())
    assert json.loads((result.path / "rlaif_reward_model.json").read_text())["config"]["launcher"] == "accelerate"
    scores = RewardModelRef(str(result.path))(prompts=["Question 1?"], completions=["kindly sea"])
    assert len(scores) == 1


def _launch_policy(config: PolicyConfig, model: str, out: Path) -> None:
    """The worker's side of a launch, in a process the test then kills."""
    run_training("policy", config=config, policy_model=model, output_dir=out, prompts=PROMPTS,
                 reward_fn=target_fraction, reporter=NullReporter())


def _live_in_group(pgid: int) -> list[int]:
    """Processes of process group ``pgid`` that still run (zombies waiting to be reaped are gone)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            live.append(int(stat.parent.name))
    return live


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.mark.slow
def test_rloo_on_two_processes_resumes_after_the_worker_is_killed(tmp_path, cpu_config):
    from training.policy import train_policy

    model = str(tiny_lm(tmp_path / "lm", n_positions=128))
    fields = {"beta": 0.05, "learning_rate": 1e-3, "steps": 6, "batch_size": 4, "num_generations": 2,
              "max_new_tokens": 6, "checkpoint_every": 1}
    config = PolicyConfig(**fields, launcher="accelerate", num_processes=2, accelerate_config=str(cpu_config))
    out = tmp_path / "policy"
    events = out / "launch" / "events.jsonl"

    def progressed() -> bool:
        lines = events.read_text().splitlines() if events.exists() else []
        return any(e["kind"] == "progress" and e["done"] >= 2 for e in map(json.loads, lines))

    worker = multiprocessing.get_context("fork").Process(target=_launch_policy, args=(config, model, out))
    worker.start()
    try:
        _wait_for(progressed, 180, "step 2 of the launched RLOO")
        group = int((out / "launch" / "launcher.pid").read_text())
        os.kill(worker.pid, signal.SIGKILL)  # the worker dies as under `kill -9`: no cleanup of its own
        worker.join()
        _wait_for(lambda: not _live_in_group(group), 60, "the launched processes to end with their worker")
    finally:
        if worker.is_alive():
            worker.kill()
    killed_at = checkpoint_step(last_checkpoint(out / "checkpoints"))
    assert 1 <= killed_at < 6, killed_at

    reporter = RecordingReporter()
    result = run_training("policy", config=config, policy_model=model, output_dir=out, prompts=PROMPTS,
                          reward_fn=target_fraction, reporter=reporter)
    assert (result.resumed_from_step, result.steps) == (killed_at, 6)
    assert [c[0] for c in reporter.progress_calls] == list(range(killed_at + 1, 7))
    for name in ("reward", "kl", "loss", "entropy"):
        assert steps_of(reporter, name) == list(range(killed_at + 1, 7)), name  # once per step
    assert [step for step, _ in result.history if "reward" in _] == list(range(killed_at + 1, 7))

    single_reporter = RecordingReporter()
    single = train_policy(PolicyConfig(**{**fields, "steps": 2}), model, tmp_path / "single", prompts=PROMPTS,
                          reward_fn=target_fraction, reporter=single_reporter)
    names = {name for _, values in reporter.metrics for name in values}
    assert names == {name for _, values in single_reporter.metrics for name in values}
    assert sorted(p.name for p in result.path.iterdir()) == sorted(p.name for p in single.path.iterdir())

"""Policy optimisation on a tiny model: RLOO against a known reward really raises it with a bounded KL,
a cancelled run resumes from its checkpoint with the step count continuing, GRPO and DPO run and log."""
import math

import pytest
from datasets import Dataset
from transformers import AutoTokenizer

from tests.training.tiny import tiny_lm
from training.chat import as_messages
from training.config import PolicyConfig
from training.policy import dpo_dataset, prompt_dataset, train_policy
from training.progress import Cancelled, RecordingReporter

PROMPTS = [f"Question {i} about the sea?" for i in range(16)]
TARGETS = set(range(100, 200))  # a third of the 300 token ids


def target_fraction(prompts, completions, completion_ids, **kwargs):
    """A known reward: the share of completion tokens that fall in TARGETS."""
    return [sum(t in TARGETS for t in ids) / max(1, len(ids)) for ids in completion_ids]


@pytest.fixture(scope="module")
def policy_path(tmp_path_factory):
    return str(tiny_lm(tmp_path_factory.mktemp("policy") / "lm", n_positions=128))


def metric_series(reporter, name):
    return [(step, values[name]) for step, values in reporter.metrics if name in values]


def test_datasets_use_chat_messages_when_the_tokenizer_has_a_template(policy_path):
    tokenizer = AutoTokenizer.from_pretrained(policy_path)
    assert prompt_dataset(["Hi"], tokenizer)[0]["prompt"] == [{"role": "user", "content": "Hi"}]
    prefs = Dataset.from_list([{"prompt": as_messages("Hi"), "chosen": "yes", "rejected": "no"}])
    row = dpo_dataset(prefs, tokenizer)[0]
    assert row["chosen"] == [{"role": "assistant", "content": "yes"}]


@pytest.mark.slow
def test_rloo_raises_a_known_reward_with_bounded_kl(policy_path, tmp_path):
    reporter = RecordingReporter()
    config = PolicyConfig(
        algorithm="rloo", beta=0.05, learning_rate=3e-2, steps=24, batch_size=8, num_generations=4,
        max_new_tokens=4, checkpoint_every=100,
    )
    result = train_policy(
        config, policy_path, tmp_path / "out", prompts=PROMPTS, reward_fn=target_fraction, reporter=reporter
    )
    rewards = [v for _, v in metric_series(reporter, "reward")]
    kls = [v for _, v in metric_series(reporter, "kl")]
    assert len(rewards) == 24 and result.steps == 24
    first, last = sum(rewards[:6]) / 6, sum(rewards[-6:]) / 6
    assert last > first + 0.15, (first, last)  # measured: 0.28 -> 0.68
    assert len(kls) == 24 and all(math.isfinite(k) and abs(k) < 5.0 for k in kls)
    for name in ("reward_std", "entropy", "loss", "completions/mean_length"):
        assert metric_series(reporter, name), name
    assert (result.path / "config.json").exists() and (result.path / "tokenizer.json").exists()


@pytest.mark.slow
def test_cancelled_rloo_resumes_from_its_checkpoint(policy_path, tmp_path):
    config = PolicyConfig(
        beta=0.05, learning_rate=1e-3, steps=6, batch_size=4, num_generations=2, max_new_tokens=6, checkpoint_every=100
    )
    stopper = RecordingReporter(stop_after=4)
    with pytest.raises(Cancelled):
        train_policy(
            config, policy_path, tmp_path / "out", prompts=PROMPTS, reward_fn=target_fraction, reporter=stopper
        )
    assert (tmp_path / "out" / "checkpoints" / "checkpoint-4").is_dir()
    assert not (tmp_path / "out" / "model").exists()

    reporter = RecordingReporter()
    result = train_policy(
        config, policy_path, tmp_path / "out", prompts=PROMPTS, reward_fn=target_fraction, reporter=reporter
    )
    assert result.resumed_from_step == 4 and result.steps == 6
    assert [c[0] for c in reporter.progress_calls] == [5, 6]
    assert [s for s, _ in metric_series(reporter, "reward")] == [5, 6]


@pytest.mark.slow
def test_grpo_runs_with_a_kl_term(policy_path, tmp_path):
    reporter = RecordingReporter()
    config = PolicyConfig(algorithm="grpo", beta=0.1, steps=3, batch_size=4, num_generations=2, max_new_tokens=6)
    result = train_policy(
        config, policy_path, tmp_path / "out", prompts=PROMPTS, reward_fn=target_fraction, reporter=reporter
    )
    assert result.steps == 3
    assert len(metric_series(reporter, "kl")) == 3 and len(metric_series(reporter, "reward")) == 3


@pytest.mark.slow
def test_dpo_widens_the_margin_between_chosen_and_rejected(policy_path, tmp_path):
    prefs = Dataset.from_list(
        [
            {"prompt": as_messages(f"Question {i} about the sea?"), "chosen": "Sure, kindly here is an answer.",
             "rejected": "No, go away."}
            for i in range(16)
        ]
    )
    reporter = RecordingReporter()
    config = PolicyConfig(algorithm="dpo", beta=0.1, learning_rate=5e-3, steps=8, batch_size=4)
    result = train_policy(config, policy_path, tmp_path / "out", preferences=prefs, reporter=reporter)
    margins = [v for _, v in metric_series(reporter, "rewards/margins")]
    assert result.steps == 8 and len(margins) == 8
    assert margins[-1] > margins[0] and margins[-1] > 0


def test_online_algorithms_need_a_reward_and_matching_batch(policy_path, tmp_path):
    with pytest.raises(ValueError, match="reward function"):
        train_policy(PolicyConfig(), policy_path, tmp_path, prompts=PROMPTS)
    with pytest.raises(ValueError, match="multiple of policy.num_generations"):
        train_policy(
            PolicyConfig(batch_size=3, num_generations=2), policy_path, tmp_path, prompts=PROMPTS,
            reward_fn=target_fraction,
        )
    with pytest.raises(ValueError, match="no preference pairs"):
        train_policy(PolicyConfig(algorithm="dpo"), policy_path, tmp_path)


def test_repetition_penalty_is_subtracted_from_the_reward_in_training(policy_path, tmp_path, monkeypatch):
    monkeypatch.setattr("training.degeneracy.rep_n", lambda text, n=3: 0.4)  # the tiny model rarely repeats
    reporter = RecordingReporter()
    config = PolicyConfig(
        algorithm="rloo", beta=0.05, learning_rate=1e-3, steps=2, batch_size=4, num_generations=2,
        max_new_tokens=8, checkpoint_every=100, repetition_penalty=0.5,
    )
    train_policy(config, policy_path, tmp_path / "out", prompts=PROMPTS, reward_fn=target_fraction,
                 reporter=reporter)
    logged = [values for _, values in reporter.metrics if "reward" in values]
    assert len(logged) == 2
    for values in logged:  # TRL sums the weighted rewards: target share − 0.5 × rep-3
        assert values["rewards/repetition/mean"] == pytest.approx(0.4)
        assert values["reward"] == pytest.approx(values["rewards/target_fraction/mean"] - 0.2, abs=1e-5)


def test_online_dpo_trains_on_pairs_the_judge_ranks_and_logs_the_shared_curves(policy_path, tmp_path):
    """Online DPO (TRL's experimental OnlineDPOTrainer) with direct pairwise AI feedback: the judge compares
    the two rollouts of each prompt; its curves arrive under the names RLOO's use."""
    from tests.training.test_direct_reward import PRINCIPLES, LongerWinsJudge
    from training.config import JudgeConfig
    from training.direct_reward import JudgeReward

    judge = LongerWinsJudge(bias=0.0)
    reward = JudgeReward(judge, JudgeConfig(), PRINCIPLES, reporter=RecordingReporter())
    reporter = RecordingReporter()
    config = PolicyConfig(algorithm="online_dpo", beta=0.1, learning_rate=1e-3, steps=3, batch_size=4,
                          max_new_tokens=6, checkpoint_every=100)
    result = train_policy(config, policy_path, tmp_path / "out", prompts=PROMPTS, reward_fn=reward,
                          reporter=reporter)
    assert result.steps == 3
    for name in ("kl", "reward", "entropy", "loss"):
        assert [step for step, _ in metric_series(reporter, name)] == [1, 2, 3], name
    assert all(0.0 <= v <= 1.0 for _, v in metric_series(reporter, "reward"))  # mean win probability
    # each step: 4 prompts × 2 rollouts, one pairwise comparison per prompt, both orders
    assert reward.judged == 3 * 4 and len(judge.requests) == 3 * 4 * 2

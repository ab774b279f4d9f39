"""Launch estimates: comparisons and judge calls follow the labeling protocol."""
import pytest

from runs.estimate import estimate, pairs_per_prompt
from training.config import RunConfig


@pytest.mark.parametrize("pairing,k,m,expected", [("first", 4, 1, 1), ("all", 4, 1, 6), ("random", 4, 2, 2),
                                                  ("random", 3, 9, 3)])
def test_pairs_per_prompt(pairing, k, m, expected):
    assert pairs_per_prompt(pairing, k, m) == expected


def config(**sections):
    return RunConfig.from_dict(sections)


def test_judge_calls_multiply_principles_orders_and_self_consistency():
    cfg = config(generation={"samples_per_prompt": 3, "pairing": "all", "max_prompts": 10},
                 judge={"principle_sampling": "all", "both_orders": True, "self_consistency": 3},
                 evaluation={"max_prompts": 4})
    est = estimate(cfg, train_prompts=50, eval_prompts=7, enabled_principles=5,
                   stages=("generate", "label", "evaluate"))
    assert (est.prompts, est.responses, est.comparisons) == (10, 30, 30)
    assert est.judge_calls == 30 * 5 * 2 * 3
    assert est.eval_judge_calls == 4 * 5 * 2 * 3
    single = estimate(config(judge={"both_orders": False}), train_prompts=8, eval_prompts=0, enabled_principles=5)
    assert (single.comparisons, single.judge_calls, single.eval_judge_calls) == (8, 8, 0)


def test_tokens_cost_and_budget():
    cfg = config(generation={"max_new_tokens": 50}, judge={
        "backend": "openai", "base_url": "http://x", "max_new_tokens": 100,
        "price_per_1k_prompt_tokens": 1.0, "price_per_1k_completion_tokens": 2.0, "budget": 1.0})
    est = estimate(cfg, train_prompts=10, eval_prompts=0, enabled_principles=1, avg_prompt_chars=200,
                   template_chars=800)
    per_call_prompt = round((800 + 200) / 4 + 2 * 50)  # 350 tokens
    assert est.judge_calls == 20
    assert est.prompt_tokens == 20 * per_call_prompt and est.completion_tokens == 20 * 100
    assert est.cost == pytest.approx(20 * (0.35 * 1.0 + 0.1 * 2.0))
    assert est.calls_within_budget == 1  # 1.0 / 0.55 per call
    assert "pays for about 1 of 20 judge calls (5%)" in est.warnings[0]


def test_warnings_for_empty_inputs():
    est = estimate(config(), train_prompts=0, eval_prompts=0, enabled_principles=0,
                   stages=("generate", "label", "evaluate"))
    assert any("no enabled principle" in w for w in est.warnings)
    assert any("no eval split" in w for w in est.warnings)
    assert any("no train prompts" in w for w in est.warnings)


def test_the_gemma_preset_shows_about_half_an_hour_and_models_without_figures_none():
    from runs.presets import PRESETS

    preset = PRESETS["gemma-cpu"]
    cfg = RunConfig.from_dict(preset.full_config())
    est = estimate(cfg, train_prompts=180, eval_prompts=20, enabled_principles=6, stages=preset.stages)
    assert 20 <= est.minutes <= 35
    assert est.judge_calls == 180  # the likelihood judge is order-invariant: asked once per comparison
    fewer = estimate(cfg, train_prompts=180, eval_prompts=20, enabled_principles=6, stages=("generate",))
    assert fewer.minutes < est.minutes / 3
    hub = estimate(config(generation={"model": "Qwen/Qwen2.5-1.5B-Instruct"}), train_prompts=10, eval_prompts=0,
                   enabled_principles=1)
    assert hub.minutes is None


def test_the_judge_as_the_policy_reward_counts_its_calls_and_cost():
    judge = {"backend": "openai", "base_url": "http://x", "price_per_1k_prompt_tokens": 1.0}
    direct = config(judge=judge, policy={"reward_source": "judge", "steps": 10, "batch_size": 8,
                                         "num_generations": 4})
    est = estimate(direct, train_prompts=10, eval_prompts=0, enabled_principles=1, stages=("policy",))
    assert est.policy_judge_calls == 10 * 2 * 6 * 2  # steps x groups x pairs per group x both orders
    assert est.judge_calls == 0 and est.cost > 0
    distilled = estimate(config(judge=judge, policy={"steps": 10}), train_prompts=10, eval_prompts=0,
                         enabled_principles=1, stages=("policy",))
    assert distilled.policy_judge_calls == 0 and distilled.cost == 0
    gemma = {"model": "gemma-3-270m"}
    judged = estimate(config(generation=gemma, policy={"reward_source": "judge"}), train_prompts=10,
                      eval_prompts=0, enabled_principles=1, stages=("policy",))
    scored = estimate(config(generation=gemma), train_prompts=10, eval_prompts=0, enabled_principles=1,
                      stages=("policy",))
    assert judged.minutes > scored.minutes  # the judge's time on the rollouts


def test_the_gemma_direct_preset_judges_rollouts_and_needs_no_reward_model():
    from runs.presets import PRESETS

    preset = PRESETS["gemma-cpu-direct"]
    cfg = RunConfig.from_dict(preset.full_config())
    assert preset.stages == ("policy", "evaluate") and cfg.policy.learns_from == "judge"
    assert cfg.policy.repetition_penalty == 1.0
    est = estimate(cfg, train_prompts=96, eval_prompts=60, enabled_principles=6, stages=preset.stages)
    # 16 steps x 2 groups of 4 rollouts x 6 pairs per group, asked once (the likelihood judge is order-invariant)
    assert est.policy_judge_calls == 16 * 2 * 6
    assert est.minutes is not None and est.minutes > 0

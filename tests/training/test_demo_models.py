"""The offline demo models: built by `manage.py build_demo_models` (or on first use) without network, the
policy answers in the right shape and the judge prefers real answers to evasive ones in both orders."""
import pytest
from django.core.management import call_command

from training.config import GenerationConfig, JudgeConfig
from training.demo_models import DEMO_MODELS, ensure_demo_models, missing_demo_models
from training.generation import generate, load_causal_lm
from training.judge_prompt import DEFAULT_TEMPLATE, render_both_orders
from training.modeling import demo_path
from training.progress import RecordingReporter


@pytest.mark.slow
def test_build_demo_models_command_then_nothing_left_to_build(settings, tmp_path, capsys):
    settings.MODELS_DIR = tmp_path / "models"
    assert missing_demo_models(settings.MODELS_DIR) == list(DEMO_MODELS)
    call_command("build_demo_models")
    out = capsys.readouterr().out
    assert "demo://policy: built" in out and "demo://judge: built" in out
    for name in DEMO_MODELS:
        folder = demo_path(name, settings.MODELS_DIR)
        assert (folder / "config.json").exists() and (folder / "tokenizer.json").exists()
        assert not folder.with_name(folder.name + ".building").exists()
    reporter = RecordingReporter()
    assert ensure_demo_models(settings.MODELS_DIR, reporter) == [] and reporter.progress_calls == []

    model, tokenizer = load_causal_lm("demo://policy", settings.MODELS_DIR)
    samples = generate(
        model, tokenizer, ["Why is the sky blue?", "Write a haiku about autumn rain."],
        GenerationConfig(max_new_tokens=40, temperature=0.7, seed=1), num_samples=2,
    )
    assert len(samples) == 4 and sum(bool(s.text) for s in samples) >= 3
    assert all(s.token_count <= 40 for s in samples)

    from training.judges.transformers_judge import TransformersJudge

    judge = TransformersJudge(JudgeConfig(model="demo://judge"), settings.MODELS_DIR)
    good = "Sunlight scatters off air molecules, and blue light scatters the most, so the sky looks blue."
    requests = render_both_orders(
        DEFAULT_TEMPLATE, "Which is more helpful?", "Why is the sky blue?", good, "I am not sure, sorry."
    )
    first, swapped = judge.score(list(requests))
    assert first.error == "" and swapped.error == ""
    assert first.raw.endswith(("A", "B"))
    # the demo judge learned to prefer a real answer over an evasive one (this reply was not in its data),
    # in both orders: position-debiased P(real answer) > 0.5
    assert (first.p_first + (1 - swapped.p_first)) / 2 > 0.55


def test_ensure_demo_models_rebuilds_only_what_is_missing(settings, tmp_path):
    models_dir = tmp_path / "models"
    for name in DEMO_MODELS:
        demo_path(name, models_dir).mkdir(parents=True)
        (demo_path(name, models_dir) / "config.json").write_text("{}")
    assert missing_demo_models(models_dir) == []
    (demo_path("demo://judge", models_dir) / "config.json").unlink()
    assert missing_demo_models(models_dir) == ["demo://judge"]


def test_building_on_first_use_keeps_build_metrics_out_of_the_callers_reporter(tmp_path, monkeypatch):
    import training.demo_models as demo

    def fake_build(out_dir, reporter):
        reporter.progress(5, 10, "sft step")
        reporter.metric(5, {"loss": 1.0})
        reporter.log("built")
        out_dir.mkdir(parents=True)
        (out_dir / "config.json").write_text("{}")
        return out_dir

    monkeypatch.setattr(demo, "build_demo_policy", fake_build)
    monkeypatch.setattr(demo, "build_demo_judge", fake_build)
    reporter = RecordingReporter()
    assert ensure_demo_models(tmp_path, reporter) == list(DEMO_MODELS)
    assert reporter.metrics == []
    assert [c[:2] for c in reporter.progress_calls] == [(0, 2), (1, 2), (2, 2)]
    assert reporter.lines.count("built") == 2

"""The generate stage: K samples per train prompt from a tiny policy, comparisons by the pairing rule,
resume after a cancel without duplicates, and the reference-pairs route."""

from __future__ import annotations

import sys
import types

import pytest

from runs.models import Comparison, Completion, StageRun
from runs.stages import generate
from tests import factories
from training.progress import Cancelled, NullReporter, RecordingReporter

pytestmark = pytest.mark.django_db


def _run(config: dict, prompt_set=None):
    run = factories.make_run(stages=("generate",), config={"generation": config}, prompt_set=prompt_set)
    return run, StageRun.objects.get(run=run, stage="generate")


def _texts(run):
    return list(
        Completion.objects.filter(run=run)
        .order_by("prompt__index", "sample_index")
        .values_list("prompt__index", "sample_index", "text")
    )


@pytest.mark.slow
def test_samples_k_per_train_prompt_and_pairs_them(tiny_lm_dir):
    prompt_set = factories.make_prompt_set(5, split_every=5)  # prompt 0 is in the eval split
    config = {
        "model": str(tiny_lm_dir),
        "samples_per_prompt": 3,
        "pairing": "all",
        "max_new_tokens": 6,
        "batch_size": 2,
    }
    run, stage_run = _run(config, prompt_set)
    reporter = RecordingReporter()
    generate.run(stage_run, reporter)

    completions = Completion.objects.filter(run=run)
    assert completions.count() == 12
    assert sorted(set(completions.values_list("prompt__index", flat=True))) == [1, 2, 3, 4]
    first = completions.first()
    assert first.source == "policy" and first.model == str(tiny_lm_dir) and first.token_count >= 1
    assert first.sampling_params["max_new_tokens"] == 6
    assert first.sampling_params["prompt_format"] == "chat_template"
    assert "generate: prompts rendered with the chat_template format" in reporter.lines
    comparisons = Comparison.objects.filter(run=run, purpose="train")
    assert comparisons.count() == 4 * 3
    for comparison in comparisons:
        assert comparison.completion_a.prompt_id == comparison.completion_b.prompt_id == comparison.prompt_id
        assert comparison.completion_a.sample_index < comparison.completion_b.sample_index
    assert reporter.progress_calls[-1][:2] == (4, 4)
    assert reporter.lines[-1] == "generate: 4 prompts sampled; 12 comparisons (all pairs)"

    generate.run(stage_run, NullReporter())  # nothing missing: nothing new
    assert Completion.objects.filter(run=run).count() == 12 and comparisons.count() == 12


@pytest.mark.slow
def test_cancelled_generation_resumes_to_the_same_result(tiny_lm_dir):
    prompt_set = factories.make_prompt_set(6)
    config = {"model": str(tiny_lm_dir), "samples_per_prompt": 2, "max_new_tokens": 5, "batch_size": 2, "seed": 3}
    straight, straight_stage = _run(config, prompt_set)
    generate.run(straight_stage, NullReporter())

    resumed, resumed_stage = _run(config, prompt_set)
    with pytest.raises(Cancelled):
        generate.run(resumed_stage, RecordingReporter(stop_after=2))
    assert Completion.objects.filter(run=resumed).count() == 4  # the first batch (2 prompts x 2 samples)
    assert Comparison.objects.filter(run=resumed).count() == 2
    generate.run(resumed_stage, NullReporter())

    assert Completion.objects.filter(run=resumed).count() == 12
    assert Comparison.objects.filter(run=resumed).count() == 6
    assert _texts(resumed) == _texts(straight)  # seeded by prompt position: resume changes nothing


@pytest.mark.slow
def test_max_prompts_and_first_pair(tiny_lm_dir):
    config = {"model": str(tiny_lm_dir), "samples_per_prompt": 3, "max_new_tokens": 4, "max_prompts": 2}
    run, stage_run = _run(config, factories.make_prompt_set(5))
    generate.run(stage_run, NullReporter())
    assert sorted(set(Completion.objects.filter(run=run).values_list("prompt__index", flat=True))) == [0, 1]
    pairs = Comparison.objects.filter(run=run).values_list("completion_a__sample_index", "completion_b__sample_index")
    assert sorted(pairs) == [(0, 1), (0, 1)]


def test_openai_backend_generates_through_the_endpoint(chat_server):
    config = {
        "backend": "openai",
        "base_url": chat_server.url,
        "model": "served",
        "samples_per_prompt": 2,
        "pairing": "random",
        "pairs_per_prompt": 1,
    }
    run, stage_run = _run(config, factories.make_prompt_set(3))
    generate.run(stage_run, NullReporter())
    assert _texts(run)[:2] == [(0, 0, "sample 0 of Prompt number 0?"), (0, 1, "sample 1 of Prompt number 0?")]
    assert Comparison.objects.filter(run=run).count() == 3
    assert len(chat_server.requests) == 3


def test_no_train_prompts_is_a_clear_error():
    run, stage_run = _run({}, factories.make_prompt_set(2, split_every=1))
    with pytest.raises(ValueError, match="no train prompts"):
        generate.run(stage_run, NullReporter())


def test_reference_pairs_source_hands_over(monkeypatch):
    called = []
    module = types.ModuleType("runs.reference_pairs")
    module.materialise_reference_pairs = lambda run, **kwargs: called.append((run.pk, kwargs)) or {"comparisons": 0}
    monkeypatch.setitem(sys.modules, "runs.reference_pairs", module)
    run, stage_run = _run({"source": "reference_pairs", "max_prompts": 7})
    reporter = RecordingReporter()
    generate.run(stage_run, reporter)
    assert called == [(run.pk, {"max_prompts": 7})]
    assert Completion.objects.filter(run=run).count() == 0
    assert "reference pairs" in reporter.lines[-1]


def test_reference_pairs_become_train_comparisons():
    from runs.models import ReferencePair

    run, stage_run = _run({"source": "reference_pairs"}, factories.make_prompt_set(3))
    for prompt in run.prompt_set.prompts.all():
        ReferencePair.objects.create(
            prompt=prompt, response_a=f"good {prompt.index}", response_b="bad", human_choice="A"
        )
    generate.run(stage_run, NullReporter())
    generate.run(stage_run, NullReporter())  # idempotent
    comparisons = Comparison.objects.filter(run=run, purpose="train")
    assert comparisons.count() == 3
    assert sorted(comparisons.values_list("completion_a__text", flat=True)) == ["good 0", "good 1", "good 2"]


def test_the_policy_is_the_sft_model_when_one_was_saved(tmp_path):
    from runs.models import Artifact
    from training.config import GenerationConfig

    run, _ = _run({})
    local = GenerationConfig(model="demo://policy")
    assert generate.policy_model_name(run, local) == "demo://policy"
    Artifact.objects.create(run=run, kind=Artifact.Kind.SFT_MODEL, name="gone", path=str(tmp_path / "gone"))
    assert generate.policy_model_name(run, local) == "demo://policy"  # not on disk any more
    Artifact.objects.create(run=run, kind=Artifact.Kind.SFT_MODEL, name="sft", path=str(tmp_path))
    assert generate.policy_model_name(run, local) == str(tmp_path)
    served = GenerationConfig(backend="openai", base_url="http://127.0.0.1:1/v1", model="served")
    assert generate.policy_model_name(run, served) == "served"


def test_pairs_of_identical_samples_are_not_compared():
    """Two samples with the same text carry no preference: no comparison, no judge call for them."""
    from training.config import GenerationConfig

    run, _ = _run({"samples_per_prompt": 3, "pairing": "all"}, factories.make_prompt_set(2))
    first, second = run.prompt_set.prompts.order_by("index")
    for prompt, texts in ((first, ("Paris.", "Paris. ", "Lyon.")), (second, ("yes", "no", "maybe"))):
        for i, text in enumerate(texts):
            Completion.objects.create(run=run, prompt=prompt, sample_index=i, text=text, model="tiny")
    config = GenerationConfig(samples_per_prompt=3, pairing="all")
    formed = generate.form_comparisons(run, [first, second], config)
    assert formed == generate.FormedPairs(created=2 + 3, identical=1)
    pairs = Comparison.objects.filter(run=run, prompt=first).values_list(
        "completion_a__sample_index", "completion_b__sample_index")
    assert sorted(pairs) == [(0, 2), (1, 2)]  # "Paris." vs "Paris. " is left out
    assert generate.form_comparisons(run, [first, second], config) == generate.FormedPairs(0, 1)  # idempotent


@pytest.mark.slow
def test_a_base_model_gets_transcript_prompts_recorded_on_the_run(tiny_lm_dir, tmp_path):
    import shutil

    base = tmp_path / "base-lm"
    shutil.copytree(tiny_lm_dir, base)
    for name in ("chat_template.jinja", "chat_template.json"):
        (base / name).unlink(missing_ok=True)
    config = base / "tokenizer_config.json"
    import json

    data = json.loads(config.read_text())
    data.pop("chat_template", None)
    config.write_text(json.dumps(data))
    run, stage_run = _run({"model": str(base), "samples_per_prompt": 2, "max_new_tokens": 8, "batch_size": 2},
                          factories.make_prompt_set(2))
    reporter = RecordingReporter()
    generate.run(stage_run, reporter)
    assert "generate: prompts rendered with the transcript format" in reporter.lines
    completions = Completion.objects.filter(run=run)
    assert completions.count() == 4
    for completion in completions:
        assert completion.sampling_params["prompt_format"] == "transcript"
        assert "Human:" not in completion.text and "Assistant:" not in completion.text

"""The sft stage (optional, first): supervised fine-tuning that makes the run's reference policy.

``sft.source``:

* ``critique_revise``: Constitutional AI's supervised phase (Bai et al. 2022) — the starting policy answers
  each train prompt, critiques its answer against a principle of the run's constitution version (sampled by
  weight) and revises it; the revisions are the SFT targets. Records are appended to
  ``revisions.jsonl`` batch by batch, so a resumed stage only does the prompts that are missing.
* ``demonstrations``: the prompt set's own responses: ``metadata["response"]`` (or ``completion`` /
  ``demonstration``) of a prompt, else the human-preferred response of its imported reference pair.

The training runs in the worker's job, or with ``sft.launcher: accelerate`` in N processes started by ``accelerate
launch`` (:mod:`training.launcher`). The model is saved as the run's ``sft_model`` artifact; the generate, policy
and evaluate stages then use it as the policy and the reference model.
"""
from __future__ import annotations

import json
from dataclasses import asdict

from django.conf import settings

from runs.models import Artifact, ReferencePair, Split, Stage
from runs.stages import stage_io as support
from training.config import GenerationConfig, RunConfig
from training.modeling import resolve
from training.progress import Cancelled, check_cancelled

DEMONSTRATION_KEYS = ("response", "completion", "demonstration")


def sft_prompts(run, config: RunConfig) -> list:
    """The train split of the run's prompt set in index order, capped by ``sft.max_prompts``."""
    query = run.prompt_set.prompts.filter(split=Split.TRAIN).order_by("index")
    return list(query[: config.sft.max_prompts] if config.sft.max_prompts else query)


def demonstrations(run, prompts) -> list:
    """Prompt/response pairs from the prompts' metadata or their reference pairs' preferred response."""
    from training.sft import Demonstration

    preferred = {}
    for pair in ReferencePair.objects.filter(prompt__in=prompts, human_choice__in=["A", "B"]):
        preferred[pair.prompt_id] = pair.response_a if pair.human_choice == "A" else pair.response_b
    examples = []
    for prompt in prompts:
        meta = prompt.metadata or {}
        response = next((meta[k] for k in DEMONSTRATION_KEYS if isinstance(meta.get(k), str) and meta[k]), None)
        response = response or preferred.get(prompt.pk)
        if response:
            examples.append(Demonstration(prompt.conversation, response))
    return examples


def critique_revise_examples(run, prompts, config: RunConfig, base: str, reporter) -> list:
    """Run critique-and-revise for the prompts not yet in ``revisions.jsonl``; return all revisions as SFT
    examples (prompt order)."""
    from training.critique_revise import critique_and_revise
    from training.generation import load_causal_lm
    from training.sft import Demonstration

    path = run.artifacts_dir / "sft" / "revisions.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                done[record["prompt_index"]] = record
    missing = [p for p in prompts if p.index not in done]
    principles = run.constitution_version.principle_dicts()
    generation = config.generation
    sampling = GenerationConfig(
        model=generation.model,
        max_new_tokens=config.sft.max_new_tokens,
        temperature=generation.temperature,
        top_p=generation.top_p,
        seed=generation.seed,
        batch_size=generation.batch_size,
    )
    if missing:
        model, tokenizer = load_causal_lm(base, settings.MODELS_DIR)
        reporter.log(f"sft: critique-and-revise on {len(missing)} prompts ({len(done)} already done)")
        for start in range(0, len(missing), sampling.batch_size):
            check_cancelled(reporter)
            chunk = missing[start : start + sampling.batch_size]
            revisions = critique_and_revise(
                model, tokenizer, [p.conversation for p in chunk], [p.index for p in chunk], principles,
                sampling, seed=generation.seed, reporter=reporter,
            )
            with path.open("a", encoding="utf-8") as handle:
                for revision in revisions:
                    handle.write(json.dumps(asdict(revision), ensure_ascii=False) + "\n")
                    done[revision.prompt_index] = asdict(revision)
            reporter.progress(len(done), len(prompts), "sft: critique and revise")
    support.record_artifact(run, Artifact.Kind.DATASET, "critique_revise", path, {"records": len(done)})
    return [Demonstration(p.conversation, done[p.index]["revision"]) for p in prompts if p.index in done]


def run(stage_run, reporter) -> None:
    """Build SFT data and fine-tune the starting policy into the run's reference policy.

    Raises:
        ValueError: no demonstrations found, or no train prompts.
        training.progress.Cancelled: the user cancelled (revisions and checkpoints are kept).
    """
    from training.launcher import run_training

    run_row = stage_run.run
    config = run_row.run_config
    support.ensure_models(config, reporter, [config.generation.model])
    base = resolve(config.generation.model, settings.MODELS_DIR)
    prompts = sft_prompts(run_row, config)
    if not prompts:
        raise ValueError(f"run {run_row.pk}: the prompt set has no train prompts for SFT")
    if config.sft.source == "demonstrations":
        examples = demonstrations(run_row, prompts)
        if not examples:
            raise ValueError(
                f"run {run_row.pk}: sft.source is 'demonstrations' but no prompt has a response "
                f"(metadata keys {', '.join(DEMONSTRATION_KEYS)}, or a reference pair with a human choice)"
            )
    else:
        examples = critique_revise_examples(run_row, prompts, config, base, reporter)
    out = run_row.artifacts_dir / "sft"
    stamp = support.fingerprint(config.to_dict()["sft"], base, [(str(e.prompt), e.response) for e in examples])
    support.start_over_if_changed(out, stamp, reporter, "sft")
    reporter.log(f"sft: training on {len(examples)} examples ({config.sft.source})")
    try:
        result = run_training(  # in this process, or launched with N processes (sft.launcher)
            "sft", examples=examples, base_model=base, config=config.sft, output_dir=out, reporter=reporter,
            checkpoint_every=config.sft.checkpoint_every,
        )
    except Cancelled:
        support.record_checkpoint(run_row, Stage.SFT, out / "checkpoints")
        raise
    support.record_checkpoint(run_row, Stage.SFT, out / "checkpoints")
    final_loss = next((m["train_loss"] for _, m in reversed(result.history) if "train_loss" in m), None)
    support.record_artifact(
        run_row,
        Artifact.Kind.SFT_MODEL,
        "sft_model",
        result.path,
        {"examples": len(examples), "steps": result.steps, "source": config.sft.source, "train_loss": final_loss,
         "base_model": config.generation.model},
    )
    reporter.log(f"sft: {result.steps} steps; reference policy saved to {result.path}")

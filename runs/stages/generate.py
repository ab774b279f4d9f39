"""The generate stage: K policy samples per train prompt, then comparisons by the pairing rule.

Thin: prompts come from the run's prompt set (train split, by index, at most ``generation.max_prompts``);
prompts that already have their K samples are skipped, so a resumed stage generates only what is missing.
Each batch's completions and comparisons are written in one transaction. The policy is the run's SFT model
when an SFT stage produced one, else ``generation.model``. With ``generation.source == "reference_pairs"``
the prompt set's imported response pairs are compared instead (:mod:`runs.reference_pairs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import Count

from runs.models import Artifact, Comparison, Completion, CompletionSource, Prompt, Run, Split
from training.config import GenerationConfig
from training.generation import Sample
from training.generation_backends import generation_backend, load_sampler
from training.pairing import degenerate_reason, pair_indices
from training.progress import check_cancelled


def run(stage_run, reporter) -> None:
    """The generate stage (see the module docstring).

    Raises:
        ValueError: the prompt set has no train prompts.
        training.modeling.ModelNotFound: the policy model does not exist.
        training.progress.Cancelled: the reporter asked to stop (finished batches are stored).
    """
    run_row = stage_run.run
    config = run_row.run_config.generation
    if config.source == "reference_pairs":
        from runs.reference_pairs import materialise_reference_pairs

        result = materialise_reference_pairs(run_row, max_prompts=config.max_prompts)
        reporter.log(f"generate: reference pairs materialised ({result})")
        return
    prompts = train_prompts(run_row, config)
    if not prompts:
        raise ValueError(f"prompt set {run_row.prompt_set.name!r} has no train prompts to generate for")
    k = config.samples_per_prompt
    have = dict(
        Completion.objects.filter(
            run=run_row, source=CompletionSource.POLICY, sample_index__lt=k, prompt__in=[p.pk for p in prompts]
        )
        .values("prompt")
        .annotate(n=Count("pk"))
        .values_list("prompt", "n")
    )
    position = {p.pk: i for i, p in enumerate(prompts)}
    missing = [p for p in prompts if have.get(p.pk, 0) < k]
    done = len(prompts) - len(missing)
    reporter.progress(done, len(prompts), "generating")
    model_name = policy_model_name(run_row, config)
    if missing:
        reporter.log(f"generate: {len(missing)} of {len(prompts)} prompts to sample with {model_name} (K={k})")
        if generation_backend(config.backend).local_model:
            from runs.stages import stage_io

            stage_io.ensure_models(run_row.run_config, reporter, [model_name])
        # The local model is loaded here, inside the job (never in the web process).
        sampler = load_sampler(config, model_name, settings.MODELS_DIR, reporter)
        if sampler.prompt_format:
            reporter.log(f"generate: prompts rendered with the {sampler.prompt_format} format")
        for start in range(0, len(missing), config.batch_size):
            check_cancelled(reporter)
            chunk = missing[start : start + config.batch_size]
            samples = sampler(
                [p.conversation for p in chunk],
                reporter=reporter,
                progress_offset=position[chunk[0].pk],
                progress_total=len(prompts),
            )
            _write(run_row, config, model_name, chunk, samples, sampler.prompt_format)
            done += len(chunk)
            reporter.progress(done, len(prompts), "generating")
    formed = form_comparisons(run_row, prompts, config)  # normally forms none: each batch formed its own
    total = Comparison.objects.filter(run=run_row, purpose="train").count()
    same = f"; {formed.identical} pairs of identical or empty samples not compared" if formed.identical else ""
    reporter.log(f"generate: {len(prompts)} prompts sampled; {total} comparisons ({config.pairing} pairs){same}")


class FormedPairs(NamedTuple):
    created: int  # comparisons that did not exist before
    identical: int  # pairs not compared: both samples the same text, or both empty (degenerate_reason)


def train_prompts(run: Run, config: GenerationConfig) -> list[Prompt]:
    """The prompts a run generates for: its prompt set's train split in index order, capped by max_prompts."""
    query = run.prompt_set.prompts.filter(split=Split.TRAIN).order_by("index")
    if config.max_prompts:
        query = query[: config.max_prompts]
    return list(query)


def policy_model_name(run: Run, config: GenerationConfig) -> str:
    """The run's SFT model when its SFT stage saved one (still on disk), else ``config.model``; with a
    backend that loads no local model (an endpoint) always ``config.model`` (the name the endpoint serves)."""
    if not generation_backend(config.backend).local_model:
        return config.model
    for sft in run.artifacts.filter(kind=Artifact.Kind.SFT_MODEL).order_by("-created_at"):
        if Path(sft.path).exists():
            return sft.path
    return config.model


def _write(
    run: Run, config: GenerationConfig, model_name: str, chunk: list[Prompt], samples: list[Sample], prompt_format=""
) -> None:
    params = {
        "temperature": config.temperature,
        "top_p": config.top_p,
        "max_new_tokens": config.max_new_tokens,
        "seed": config.seed,
        "backend": config.backend,
    }
    if prompt_format:
        params["prompt_format"] = prompt_format
    rows = [
        Completion(
            run=run,
            prompt=chunk[s.prompt_index],
            source=CompletionSource.POLICY,
            sample_index=s.sample_index,
            text=s.text,
            model=model_name[:300],
            sampling_params=params,
            token_count=s.token_count,
        )
        for s in samples
    ]
    with transaction.atomic():
        Completion.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
        form_comparisons(run, chunk, config)


def form_comparisons(run: Run, prompts: Sequence[Prompt], config: GenerationConfig) -> FormedPairs:
    """Create the train comparisons of ``prompts`` that have all K samples (idempotent). A pair whose two
    samples are the same text is not compared: it carries no preference, and a judge call costs.
    Works through the prompts 500 at a time, so memory holds one chunk's sample texts.

    Returns:
        How many comparisons did not exist before, and how many pairs were identical.
    """
    k = config.samples_per_prompt
    before = Comparison.objects.filter(run=run, purpose="train").count()
    identical = 0
    for start in range(0, len(prompts), 500):
        chunk = {p.pk: p.content_hash for p in prompts[start : start + 500]}
        by_prompt: dict[int, dict[int, tuple[int, str]]] = {}
        rows = Completion.objects.filter(
            run=run, source=CompletionSource.POLICY, sample_index__lt=k, prompt_id__in=list(chunk)
        ).values_list("prompt_id", "sample_index", "pk", "text")
        for prompt_id, index, pk, text in rows:
            by_prompt.setdefault(prompt_id, {})[index] = (pk, text.strip())
        comparisons = []
        for prompt_id, completions in by_prompt.items():
            if len(completions) < k:
                continue
            for i, j in pair_indices(
                k, config.pairing, pairs_per_prompt=config.pairs_per_prompt, seed=config.seed, key=chunk[prompt_id]
            ):
                (a, text_a), (b, text_b) = completions[i], completions[j]
                if degenerate_reason(text_a, text_b):  # identical or empty: no preference to judge
                    identical += 1
                    continue
                comparisons.append(
                    Comparison(run=run, prompt_id=prompt_id, completion_a_id=a, completion_b_id=b, purpose="train")
                )
        Comparison.objects.bulk_create(comparisons, batch_size=500, ignore_conflicts=True)
    return FormedPairs(Comparison.objects.filter(run=run, purpose="train").count() - before, identical)

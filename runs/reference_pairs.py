"""Turning a prompt set's imported reference pairs (HH-RLHF chosen/rejected, PandaLM pairs with votes)
into a run's completions, comparisons and human labels, so the AI judge labels them like sampled pairs and
judge-vs-human agreement can be measured on real human preferences.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from runs.models import Comparison, Completion, CompletionSource, HumanLabel, ReferencePair, Run
from training.pairing import degenerate_reason

CHUNK = 1000


@dataclass
class ReferencePairResult:
    """What :func:`materialise_reference_pairs` found and stored (counts include rows already there)."""

    pairs: int = 0
    comparisons: int = 0
    human_labels: int = 0
    degenerate: int = 0  # pairs left out: identical or empty replies (never judged, trained on or counted)


def materialise_reference_pairs(
    run: Run, *, purpose: str = "train", split: str | None = None, max_prompts: int = 0
) -> ReferencePairResult:
    """Create, for every reference pair of ``run.prompt_set``: two ``Completion`` rows (source
    ``reference``, sample_index 0 = response A and 1 = response B), one ``Comparison`` (A vs B) and the
    human labels: one ``HumanLabel`` per annotator vote (``external_annotator="<pair source>:<i>"``), or,
    without votes, one for the recorded human choice (``"<pair source>:label"``).

    Degenerate pairs (identical or empty replies, flagged at import; :func:`training.pairing.degenerate_reason`)
    are left out and counted in ``degenerate``: they carry no preference to judge, learn or agree on.

    Idempotent: re-running after a crash inserts only what is missing (``bulk_create(ignore_conflicts=True)``
    on the natural-key constraints), so it can be called at the start of every generate attempt.

    Args:
        run: the run; its prompt set must hold reference pairs (see ``runs.importing``).
        purpose: the comparisons' purpose (``train`` or ``eval``).
        split: only prompts of this split (``train``/``eval``); None = all.
        max_prompts: at most this many pairs, in prompt order (0 = all).

    Returns:
        A :class:`ReferencePairResult`.
    """
    pairs = ReferencePair.objects.filter(prompt__prompt_set=run.prompt_set_id).order_by("prompt__index")
    if split:
        pairs = pairs.filter(prompt__split=split)
    result = ReferencePairResult(degenerate=pairs.exclude(degenerate="").count())
    pairs = pairs.filter(degenerate="")
    if max_prompts:
        pairs = pairs[:max_prompts]
    rows = []
    for row in pairs.values("prompt_id", "response_a", "response_b", "human_choice", "human_votes", "source"):
        if degenerate_reason(row["response_a"], row["response_b"]):  # belt and braces: flagged at import
            result.degenerate += 1
            continue
        rows.append(row)
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        with transaction.atomic():
            _store_chunk(run, chunk, purpose, result)
    return result


def _store_chunk(run: Run, chunk: list[dict], purpose: str, result: ReferencePairResult) -> None:
    completions = []
    for pair in chunk:
        model = f"reference:{pair['source'] or 'imported'}"
        for index, text in enumerate((pair["response_a"], pair["response_b"])):
            completions.append(
                Completion(run=run, prompt_id=pair["prompt_id"], source=CompletionSource.REFERENCE,
                           sample_index=index, text=text, model=model)
            )
    Completion.objects.bulk_create(completions, ignore_conflicts=True)
    ids = {
        (c["prompt_id"], c["sample_index"]): c["id"]
        for c in Completion.objects.filter(
            run=run, source=CompletionSource.REFERENCE, prompt_id__in=[p["prompt_id"] for p in chunk]
        ).values("id", "prompt_id", "sample_index")
    }
    Comparison.objects.bulk_create(
        [
            Comparison(run=run, prompt_id=p["prompt_id"], completion_a_id=ids[(p["prompt_id"], 0)],
                       completion_b_id=ids[(p["prompt_id"], 1)], purpose=purpose)
            for p in chunk
        ],
        ignore_conflicts=True,
    )
    comparison_ids = dict(
        Comparison.objects.filter(
            run=run, completion_a_id__in=[ids[(p["prompt_id"], 0)] for p in chunk]
        ).values_list("completion_a_id", "id")
    )
    labels = []
    for pair in chunk:
        comparison_id = comparison_ids[ids[(pair["prompt_id"], 0)]]
        source = pair["source"] or "reference"
        votes = [v for v in (pair["human_votes"] or []) if v in ("A", "B", "tie")]
        if votes:
            labels += [
                HumanLabel(comparison_id=comparison_id, external_annotator=f"{source}:{i}", choice=vote)
                for i, vote in enumerate(votes)
            ]
        elif pair["human_choice"] in ("A", "B", "tie"):
            labels.append(
                HumanLabel(comparison_id=comparison_id, external_annotator=f"{source}:label",
                           choice=pair["human_choice"])
            )
    HumanLabel.objects.bulk_create(labels, ignore_conflicts=True)
    result.pairs += len(chunk)
    result.comparisons += len(comparison_ids)
    result.human_labels += len(labels)

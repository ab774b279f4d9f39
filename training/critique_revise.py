"""The supervised phase of Constitutional AI (Bai et al. 2022, section 3.1): the model answers a prompt,
critiques its answer against a sampled principle's critique request, and revises it following the
principle's revision request. The revisions become SFT targets (:mod:`training.sft`).

Each prompt's principle is drawn by weight with the labeling stage's draw
(:func:`training.labeling.select_principles`, keyed by the prompt's index), so a resumed run draws the same
principles whatever prompts were already done.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from training.chat import Conversation, as_messages
from training.config import GenerationConfig
from training.generation import generate
from training.labeling import select_principles
from training.progress import NullReporter, Reporter, check_cancelled

DEFAULT_CRITIQUE = "Identify specific ways in which your last response falls short of this principle: {comparison}"
DEFAULT_REVISION = (
    "Rewrite your response so that it better satisfies this principle: {comparison} Give only the new response."
)


@dataclass(frozen=True)
class Revision:
    """One critique-and-revise record.

    Attributes:
        prompt_index: the caller's index of the prompt (passed in ``indices``).
        principle: the principle's name.
        initial, critique, revision: the model's first answer, its critique and its revised answer.
    """

    prompt_index: int
    principle: str
    initial: str
    critique: str
    revision: str


def critique_and_revise(
    model,
    tokenizer,
    prompts: Sequence[Conversation],
    indices: Sequence[int],
    principles: Sequence[Mapping],
    config: GenerationConfig,
    *,
    seed: int = 0,
    reporter: Reporter | None = None,
) -> list[Revision]:
    """Answer, critique and revise each prompt (three generation passes over the batch).

    Args:
        model, tokenizer: the policy (from :func:`training.generation.load_causal_lm`).
        prompts: the prompts; ``indices``: their stable ids (same length), used for principle sampling.
        principles: dicts with ``name``, ``comparison``, ``critique_request``, ``revision_request``,
            ``weight``, ``enabled`` (empty requests fall back to :data:`DEFAULT_CRITIQUE` /
            :data:`DEFAULT_REVISION` built from the comparison question).
        config: sampling settings (one sample per step, whatever ``samples_per_prompt`` says).

    Returns:
        One :class:`Revision` per prompt, in order.

    Raises:
        training.progress.Cancelled: the reporter asked to stop.
    """
    reporter = reporter or NullReporter()
    if len(prompts) != len(indices):
        raise ValueError(f"{len(prompts)} prompts but {len(indices)} indices")
    if not prompts:
        return []
    chosen = [select_principles(principles, i, mode="sample", seed=seed)[0] for i in indices]
    conversations = [as_messages(p) for p in prompts]

    def step(convs):
        check_cancelled(reporter)
        samples = generate(model, tokenizer, convs, config, num_samples=1)
        return [s.text for s in samples]

    initial = step(conversations)
    critique_convs = [
        [*c, {"role": "assistant", "content": a}, {"role": "user", "content": _request(p, "critique")}]
        for c, a, p in zip(conversations, initial, chosen, strict=True)
    ]
    critiques = step(critique_convs)
    revision_convs = [
        [*c, {"role": "assistant", "content": k}, {"role": "user", "content": _request(p, "revision")}]
        for c, k, p in zip(critique_convs, critiques, chosen, strict=True)
    ]
    revisions = step(revision_convs)
    return [
        Revision(i, p["name"], a, k, r or a)
        for i, p, a, k, r in zip(indices, chosen, initial, critiques, revisions, strict=True)
    ]


def _request(principle: Mapping, kind: str) -> str:
    text = (principle.get(f"{kind}_request") or "").strip()
    if text:
        return text
    template = DEFAULT_CRITIQUE if kind == "critique" else DEFAULT_REVISION
    return template.format(comparison=principle.get("comparison", principle.get("name", "")))

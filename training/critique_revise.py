"""The supervised phase of Constitutional AI (Bai et al. 2022, section 3.1): the model answers a prompt,
critiques its answer against a sampled principle's critique request, and revises it following the
principle's revision request. The revisions become SFT targets (:mod:`training.sft`).

Each prompt's principle is drawn by weight with a seed derived from the prompt's index, so a resumed run
draws the same principles whatever prompts were already done.
"""
from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from training.config import GenerationConfig
from training.generation import generate
from training.progress import NullReporter, Reporter, check_cancelled

Conversation = str | Sequence[Mapping[str, str]]

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


def sample_principle(principles: Sequence[Mapping], prompt_index: int, seed: int = 0) -> Mapping:
    """Draw one enabled principle by weight for a prompt (deterministic in ``seed`` and ``prompt_index``).

    Raises:
        ValueError: no enabled principle with a positive weight.
    """
    pool = [p for p in principles if p.get("enabled", True) and float(p.get("weight", 1.0)) > 0]
    if not pool:
        raise ValueError("the constitution has no enabled principle with a positive weight")
    rng = random.Random(seed * 1_000_003 + prompt_index)
    return rng.choices(pool, weights=[float(p.get("weight", 1.0)) for p in pool], k=1)[0]


def _messages(conversation: Conversation) -> list[dict[str, str]]:
    if isinstance(conversation, str):
        return [{"role": "user", "content": conversation}]
    return [dict(role=m["role"], content=m["content"]) for m in conversation]


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
    chosen = [sample_principle(principles, i, seed) for i in indices]
    conversations = [_messages(p) for p in prompts]

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

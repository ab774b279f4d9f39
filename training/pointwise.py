"""Pointwise AI feedback: the judge scores one response from 1 to 10, read as an expectation over the score
tokens' probabilities.

Lee et al. 2023 ("RLAIF vs. RLHF", arXiv 2309.00267, section 2.3, direct RLAIF) ask the LLM to rate a
generation from 1 to 10, take the likelihood of each score token, normalise them to a distribution, and use the
expected score, rescaled to [-1, 1], as the RL reward. No sampled text is parsed: the score is read from one
forward pass, so it is smooth in the model's belief and never fails to parse.

:func:`render_score_prompt` builds the scoring prompt (the principle's comparison text, the conversation, the one
response, then :data:`SCORE_PREFIX`); :func:`score_distribution` turns the next-token log-probabilities after that
prefix into P(score = k) for k = 1..10; :func:`normalised_score` maps the expectation to [-1, 1].

Tokenisers that split numbers into digits (Gemma, Llama) have no "10" token: its probability is
P("1") · P("0" | "1"), and P(1) is P("1") · (1 − P("0" | "1")). A backend supplies these with one extra forward
pass over the prompt followed by "1" (see :class:`training.judges.transformers_judge.TransformersJudge`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from training.chat import Conversation
from training.judge_prompt import format_conversation

#: The scores the judge chooses from.
SCORES = tuple(range(1, 11))
#: What the judge's answer starts with; the score token follows it.
SCORE_PREFIX = "Score:"

SCORE_TEMPLATE = """You are a careful evaluator rating one response from an AI assistant.

Rate it against this principle:
{principle}

Conversation:
{conversation}

Response:
{response}

Rate the response from 1 (worst) to 10 (best) against the principle. Answer with the number only."""


def render_score_prompt(conversation: Conversation, response: str, principle: str) -> list[dict[str, str]]:
    """The scoring prompt as chat messages (one user turn): the principle, the conversation (chat turns rendered
    as ``Human:``/``Assistant:``), the response and the instruction. The backend appends
    :data:`SCORE_PREFIX` after its generation prompt."""
    text = SCORE_TEMPLATE.format(
        principle=principle.strip(), conversation=format_conversation(conversation), response=response.strip()
    )
    return [{"role": "user", "content": text}]


def score_distribution(first: Mapping[str, float], after_one: Mapping[str, float] | None = None) -> list[float]:
    """P(score = k) for k in :data:`SCORES`, normalised over the ten scores.

    Args:
        first: log-probability (nats) of each candidate first token, keyed by its text with surrounding spaces
            stripped ("1" … "9", and "10" where the tokeniser has it as one token); several tokens with the same
            text (" 7" and "7") should be combined by the caller with log-sum-exp. Missing scores count 0.
        after_one: log-probabilities of the token after a "1" (only its "0" entry is read), for a tokeniser
            without a "10" token; None when "10" is in ``first`` or unknown (then a "1" counts as 1).

    Raises:
        ValueError: no score has any probability (none of the candidate tokens was scored).
    """
    mass = {k: math.exp(first[str(k)]) if str(k) in first else 0.0 for k in SCORES}
    if "10" not in first and after_one is not None and "0" in after_one:
        p_zero = math.exp(after_one["0"])
        mass[10] = mass[1] * p_zero
        mass[1] *= 1.0 - p_zero
    total = sum(mass.values())
    if total <= 0.0:
        raise ValueError("no score token (1-10) has any probability after the score prompt")
    return [mass[k] / total for k in SCORES]


def expected_score(distribution: Sequence[float]) -> float:
    """The expected score, in [1, 10], of a distribution over :data:`SCORES`."""
    return sum(k * p for k, p in zip(SCORES, distribution, strict=True))


def normalised_score(distribution: Sequence[float]) -> float:
    """The expected score rescaled to [-1, 1] (Lee et al. 2023: 1 → -1, 10 → 1)."""
    return 2.0 * (expected_score(distribution) - 1.0) / 9.0 - 1.0

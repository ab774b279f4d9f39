"""Degenerate text: repetition measured, and penalised as an extra RL reward.

A policy optimised against a weak reward (a small reward model, the offline likelihood judge) finds outputs the
reward likes and no reader would: a run of ``<em>`` tags, a phrase repeated to the end of the budget. The
measure is Welleck et al. 2020's **rep-n** ("Neural Text Degeneration with Unlikelihood Training", ICLR 2020,
section 6): the share of a text's n-grams that repeat an earlier n-gram of the same text,

    rep_n(text) = 1 − |distinct n-grams| / |n-grams|,

on word and punctuation tokens (``\\w+`` runs and single other characters, so that markup such as ``<em><em>``
counts as the repeated n-gram ``< em >``). 0 is no repetition; a text made of one n-gram repeated tends to 1.
A text with fewer than ``n`` tokens has no n-gram and scores 0, except an empty text, which scores 1 (an empty
answer is degenerate too).

As a reward (``policy.repetition_penalty`` > 0) it is handed to TRL next to the main reward, with weight
``−repetition_penalty`` (TRL sums weighted reward functions, ``reward_weights``): the n-gram repetition
penalty of Yeo et al. 2025 ("Demystifying Long Chain-of-Thought Reasoning in LLMs", section 4), there used
against repetition under a length reward. The evaluation reports the mean rep-n of the tuned and the reference
answers, a check of the win rate that does not depend on the judge.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

#: Word runs and single non-space characters.
TOKEN = re.compile(r"\w+|[^\w\s]")
#: The n of rep-n used by the penalty and the evaluation report.
N = 3
#: The name TRL logs the penalty's reward under (``rewards/repetition/mean``).
REWARD_NAME = "repetition"


def rep_n(text: str, n: int = N) -> float:
    """Welleck et al.'s rep-n of one text (see the module docstring): a share in [0, 1].

    Args:
        text: any string; n: the n-gram length (≥ 1).

    Raises:
        ValueError: ``n`` below 1.
    """
    if n < 1:
        raise ValueError(f"rep_n: n must be at least 1, got {n}")
    tokens = TOKEN.findall(text.lower())
    if not tokens:
        return 1.0
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def mean_rep_n(texts: Iterable[str], n: int = N) -> float:
    """The mean rep-n over texts (0.0 for none)."""
    values = [rep_n(t, n) for t in texts]
    return sum(values) / len(values) if values else 0.0


def _text(completion) -> str:
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content") or "" for m in completion)


def repetition_reward(prompts=None, completions=None, **kwargs) -> list[float]:
    """A TRL reward function: each completion's rep-n (text, or conversational assistant messages). It is a
    penalty through its negative weight in ``reward_weights`` (see :func:`training.policy.reward_functions`)."""
    return [rep_n(_text(c)) for c in completions]


repetition_reward.__name__ = REWARD_NAME

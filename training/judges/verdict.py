"""Reading a judge's answer: the verdict line of :data:`training.judge_prompt.ANSWER_FORMAT` and, where the
endpoint returned them, the verdict token's log-probabilities (the soft preference of Lee et al. 2023)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from training.judge_prompt import VERDICT_PREFIX

#: ``Preferred: A`` (case-insensitive), tolerating markdown emphasis, "Response A" and brackets. The last
#: match in the answer wins, so a rationale that quotes the format does not confuse it.
VERDICT_RE = re.compile(
    re.escape(VERDICT_PREFIX.rstrip(":")) + r"\s*\**\s*:\s*\**\s*(?:response\s+)?[\(\[]?\s*([AB])\b", re.IGNORECASE
)


@dataclass(frozen=True)
class ParsedVerdict:
    """A verdict found in an answer.

    Attributes:
        label: "A" or "B" (the response shown first or second).
        rationale: the text before the verdict line, stripped.
        label_offset: character offset of the label in the answer (to find its token's log-probs).
    """

    label: str
    rationale: str
    label_offset: int


def parse_verdict(text: str) -> ParsedVerdict | None:
    """Find the last ``Preferred: A|B`` in ``text``; None when there is none."""
    matches = list(VERDICT_RE.finditer(text or ""))
    if not matches:
        return None
    last = matches[-1]
    rationale = text[: last.start()].rstrip().rstrip("*_#").strip()
    return ParsedVerdict(label=last.group(1).upper(), rationale=rationale, label_offset=last.start(1))


def _get(obj, name):
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def label_probability(tokens: Sequence, label_offset: int) -> float | None:
    """P(first response preferred) from the log-probs of the token holding the verdict label.

    Args:
        tokens: the chat-completions ``choices[0].logprobs.content`` list; each item has ``token``,
            ``logprob`` and ``top_logprobs`` (a list of ``{token, logprob}``), objects or dicts.
        label_offset: the label's character offset in the answer text (see :class:`ParsedVerdict`).

    Returns:
        ``P(A) / (P(A) + P(B))`` summed over the alternatives whose stripped text is "A" or "B" (" A", "A",
        "**A"); None when no token sits at ``label_offset`` or its alternatives hold neither label.
    """
    position = 0
    for item in tokens or ():
        text = _get(item, "token") or ""
        start, position = position, position + len(text)
        if not start <= label_offset < position:
            continue
        mass = {"A": 0.0, "B": 0.0}
        alternatives = list(_get(item, "top_logprobs") or [])
        alternatives.append({"token": text, "logprob": _get(item, "logprob")})
        seen = set()
        for alt in alternatives:
            token, logprob = _get(alt, "token"), _get(alt, "logprob")
            if token is None or logprob is None or token in seen:
                continue
            seen.add(token)
            key = token.strip().strip("*([").upper()
            if key in mass:
                mass[key] += math.exp(float(logprob))
        total = mass["A"] + mass["B"]
        return mass["A"] / total if total > 0 else None
    return None

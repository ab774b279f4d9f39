"""Reading a judge's answer: the verdict line of :data:`training.judge_prompt.ANSWER_FORMAT` and, where the
endpoint returned them, the verdict token's log-probabilities (the soft preference of Lee et al. 2023).

The verdict policy, for every answer:

1. **Reasoning is kept, never read for the verdict.** Reasoning models put their thinking in a separate field
   (``reasoning_content``, as vLLM, DeepSeek and llama.cpp name it) or inside ``<think>…</think>`` in the
   content (:func:`split_reasoning`). The verdict comes only from the *final answer*, the content outside
   the thinking; a ``<think>`` block that was never closed is all reasoning. The reasoning text is stored with
   the raw output.
2. **A truncated answer is truncation.** When the final answer has no verdict and the endpoint says it stopped
   at its token limit (``finish_reason: length``), the judgment fails as truncated (raise ``max_new_tokens``),
   not as an unparseable answer, even when the cut-off reasoning names a verdict.
3. **Verdict lines win over prose.** Lines that begin with ``Preferred:`` (after markdown) are the verdict
   lines; only where there is none is a ``Preferred: X`` inside the prose read. The last one gives the label.
4. **Two verdicts are no verdict.** An answer whose verdict lines name both A and B, or whose last verdict line
   names both ("Preferred: A or B"), is *ambiguous*: it counts as no preference (P = 0.5) and is flagged.
5. **The text's label wins over the log-probs' side.** When the verdict token's log-probabilities favour the
   other label than the text, the answer counts as no preference (P = 0.5) and is flagged; a confident verdict
   is never turned into its opposite.
6. **A tie is a tie.** ``Preferred: tie`` (offered when the constitution allows ties) is P = 0.5 in that order,
   whatever the log-probs say; with the run's tie margin it makes that order's verdict a tie.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from training.judge_prompt import VERDICT_PREFIX

#: ``Preferred: A`` (case-insensitive), tolerating markdown emphasis, "Response A" and brackets. The last
#: match in the answer wins, so a rationale that quotes the format does not confuse it.
VERDICT_RE = re.compile(
    re.escape(VERDICT_PREFIX.rstrip(":")) + r"\s*\**\s*:\s*\**\s*(?:response\s+)?[\(\[]?\s*([AB]|tie)\b", re.IGNORECASE
)


@dataclass(frozen=True)
class ParsedVerdict:
    """A verdict found in an answer.

    Attributes:
        label: "A" or "B" (the response shown first or second), or "tie" (neither: P = 0.5, policy point 6).
        rationale: the text before the verdict line, stripped.
        label_offset: character offset of the label in the answer (to find its token's log-probs).
        ambiguous: the answer names both labels as its verdict (policy point 4 of the module docstring).
    """

    label: str
    rationale: str
    label_offset: int
    ambiguous: bool = False


#: What may precede ``Preferred`` at the start of a verdict line: markdown emphasis, headings, quotes, bullets.
_LINE_START = re.compile(r"^[\s*_#>\-]*")
#: A second label right after the first on the same line: "A or B", "A/B", "A and B", "(A), B".
_SECOND_LABEL = re.compile(
    r"^[\s)\]*_.]*(?:or|and|/|,|&|vs\.?)\s*(?:response\s+)?[\(\[]?\s*(?:[AB]|tie)\b", re.IGNORECASE
)


def parse_verdict(text: str) -> ParsedVerdict | None:
    """The verdict in a final answer, by the module's policy (points 3 and 4); None when there is none."""
    text = text or ""
    matches = list(VERDICT_RE.finditer(text))
    if not matches:
        return None
    line_starts = [m for m in matches if _starts_line(text, m.start())]
    considered = line_starts or matches
    last = considered[-1]
    labels = {_label(m.group(1)) for m in considered}
    ambiguous = len(labels) > 1 or bool(_SECOND_LABEL.match(text[last.end(1) :]))
    rationale = text[: last.start()].rstrip().rstrip("*_#").strip()
    return ParsedVerdict(
        label=_label(last.group(1)), rationale=rationale, label_offset=last.start(1), ambiguous=ambiguous
    )


def _label(text: str) -> str:
    return "tie" if text.lower() == "tie" else text.upper()


def _starts_line(text: str, start: int) -> bool:
    line_start = text.rfind("\n", 0, start) + 1
    return _LINE_START.fullmatch(text[line_start:start]) is not None


_THINK_OPEN = re.compile(r"<think(?:ing)?>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think(?:ing)?>", re.IGNORECASE)


def split_reasoning(content: str | None, reasoning: str | None = None) -> tuple[str, str, bool]:
    """Separate a reasoning model's thinking from its final answer (policy point 1).

    Args:
        content: the message content (may be None, may hold ``<think>…</think>`` blocks).
        reasoning: a separate reasoning field (``reasoning_content`` / ``reasoning``), if any.

    Returns:
        ``(final_answer, reasoning_text, unfinished)``: the content outside thinking blocks (stripped), all the
        reasoning text, and whether a ``<think>`` block was left open (the answer never got past thinking).
    """
    content = content or ""
    parts = [reasoning.strip()] if reasoning and reasoning.strip() else []
    final: list[str] = []
    unfinished = False
    position = 0
    while True:
        opening = _THINK_OPEN.search(content, position)
        if opening is None:
            final.append(content[position:])
            break
        final.append(content[position : opening.start()])
        closing = _THINK_CLOSE.search(content, opening.end())
        if closing is None:
            parts.append(content[opening.end() :].strip())
            unfinished = True
            break
        parts.append(content[opening.end() : closing.start()].strip())
        position = closing.end()
    # A lone "</think>" (the opening was in the prompt, as some chat templates do) ends the reasoning.
    answer = "".join(final)
    lone = _THINK_CLOSE.search(answer)
    if lone is not None:
        parts.append(answer[: lone.start()].strip())
        answer = answer[lone.end() :]
    return answer.strip(), "\n\n".join(p for p in parts if p), unfinished


def label_side(p_first: float | None) -> str:
    """"A", "B" or "" (no side) for a probability that the first-shown response is preferred."""
    if p_first is None or p_first == 0.5:
        return ""
    return "A" if p_first > 0.5 else "B"


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

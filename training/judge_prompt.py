"""The judge prompt: a constitution's instructions template filled for one comparison, in both orders.

The template is plain text with named placeholders (``str.format`` syntax):

==================  ========  ===========================================================================
placeholder         required  filled with
==================  ========  ===========================================================================
``{principle}``     yes       the sampled principle's comparison text ("Which response is more honest?")
``{conversation}``  yes       the prompt: plain text, or chat turns rendered as ``Human:``/``Assistant:``
``{response_a}``    yes       the response shown first (label A)
``{response_b}``    yes       the response shown second (label B)
``{answer_format}`` yes       :data:`ANSWER_FORMAT`, how the judge must state its verdict
``{examples}``      no        the rendered few-shot examples (empty when there are none)
==================  ========  ===========================================================================

Literal braces are written ``{{`` and ``}}``. Asking in both orders and averaging cancels position bias
(Lee et al. 2023, "RLAIF vs. RLHF", section 2.1); :func:`render_both_orders` builds the two prompts.
"""
from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from training import transcript
from training.chat import as_messages

REQUIRED_PLACEHOLDERS = ("principle", "conversation", "response_a", "response_b", "answer_format")
OPTIONAL_PLACEHOLDERS = ("examples",)
VERDICT_LABELS = ("A", "B")

ANSWER_FORMAT = (
    "First explain your reasoning in a few sentences. Then, on the last line, write exactly "
    '"Preferred: A" or "Preferred: B" and nothing else.'
)
#: The answer format of a constitution that allows ties (off by default, as in Lee et al. 2023).
ANSWER_FORMAT_WITH_TIES = (
    "First explain your reasoning in a few sentences. Then, on the last line, write exactly "
    '"Preferred: A", "Preferred: B" or, only if neither response is better, "Preferred: tie", and nothing else.'
)
VERDICT_PREFIX = "Preferred:"

DEFAULT_TEMPLATE = """You are a careful evaluator comparing two responses from an AI assistant.

Judge them against this principle:
{principle}
{examples}
Conversation:
{conversation}

Response A:
{response_a}

Response B:
{response_b}

{answer_format}"""


class TemplateError(ValueError):
    """The judge template has unknown, missing or malformed placeholders.

    Attributes:
        unknown: placeholder names the template uses that are not supported.
        missing: required placeholder names the template lacks.
    """

    def __init__(self, message: str, unknown: Sequence[str] = (), missing: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.unknown = list(unknown)
        self.missing = list(missing)


def template_placeholders(template: str) -> list[str]:
    """Return the placeholder names used in ``template``, in order of first use.

    Raises:
        TemplateError: braces do not balance, or a placeholder uses indexing, attributes or conversions.
    """
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(f"Template braces do not balance ({exc}); write literal braces as {{{{ and }}}}.") from exc
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if field == "" or not field.isidentifier():
            raise TemplateError(f"Placeholder {{{field}}} is not a plain name; use e.g. {{principle}}.")
        if spec or conversion:
            raise TemplateError(f"Placeholder {{{field}}} must not carry a format spec or conversion.")
        if field not in names:
            names.append(field)
    return names


def validate_template(template: str) -> None:
    """Check that ``template`` uses only known placeholders and every required one.

    Raises:
        TemplateError: naming the unknown and the missing placeholders.
    """
    used = template_placeholders(template)
    known = set(REQUIRED_PLACEHOLDERS) | set(OPTIONAL_PLACEHOLDERS)
    unknown = [name for name in used if name not in known]
    missing = [name for name in REQUIRED_PLACEHOLDERS if name not in used]
    if unknown or missing:
        parts = []
        if unknown:
            parts.append("unknown placeholder(s): " + ", ".join("{" + n + "}" for n in unknown))
        if missing:
            parts.append("missing placeholder(s): " + ", ".join("{" + n + "}" for n in missing))
        raise TemplateError("; ".join(parts).capitalize() + ".", unknown=unknown, missing=missing)


def format_conversation(prompt: str | Sequence[Mapping[str, str]]) -> str:
    """Render a prompt for the judge: plain text as is, chat messages as ``Human:``/``Assistant:`` turns
    (:func:`training.transcript.render_turns`).

    Args:
        prompt: a string, or a list of ``{"role": "system"|"user"|"assistant", "content": str}``.

    Raises:
        ValueError: a message with another role.
    """
    if isinstance(prompt, str):
        return prompt
    return transcript.render_turns(prompt)


def format_examples(examples: Sequence[Mapping[str, str]]) -> str:
    """Render few-shot examples (keys: prompt, response_a, response_b, preferred "A"/"B", rationale)."""
    if not examples:
        return ""
    blocks = []
    for number, ex in enumerate(examples, start=1):
        blocks.append(
            f"Example {number}\nConversation:\n{ex['prompt']}\n\nResponse A:\n{ex['response_a']}\n\n"
            f"Response B:\n{ex['response_b']}\n\n{ex.get('rationale', '').strip()}\n"
            f"{VERDICT_PREFIX} {ex['preferred']}"
        )
    return "\nHere are solved examples:\n\n" + "\n\n".join(blocks) + "\n"


@dataclass(frozen=True)
class JudgeRequest:
    """One judge prompt, ready for a backend.

    Attributes:
        messages: chat messages (``[{"role": "user", "content": ...}]``) the judge receives.
        swapped: False when the first response of the comparison is shown as A, True for the B/A order.
        conversation, shown_a, shown_b: the raw inputs behind ``messages`` (the prompt and the responses
            shown as A and B), for backends that score responses directly (a reward model).
        sample: index of the sample with self-consistency (0..n-1); distinct samples are sampled, and cached,
            separately.
        principle: the principle's comparison text (for backends that condition on it directly).
    """

    messages: tuple[Mapping[str, str], ...]
    swapped: bool
    conversation: str | Sequence[Mapping[str, str]] | None = None
    shown_a: str = ""
    shown_b: str = ""
    sample: int = 0
    principle: str = ""

    @property
    def text(self) -> str:
        """The prompt as one string (the content of the single user message)."""
        return "\n\n".join(m["content"] for m in self.messages)


def render(
    template: str,
    principle: str,
    prompt: str | Sequence[Mapping[str, str]],
    response_a: str,
    response_b: str,
    examples: Sequence[Mapping[str, str]] = (),
    swapped: bool = False,
    allow_ties: bool = False,
) -> JudgeRequest:
    """Fill ``template`` for one order of one comparison.

    Args:
        template: a template that passes :func:`validate_template`.
        principle: the principle's comparison text.
        prompt: the conversation being answered (text or chat messages).
        response_a, response_b: the comparison's first and second responses, in the comparison's order.
        examples: few-shot examples, see :func:`format_examples`.
        swapped: show ``response_b`` as A and ``response_a`` as B.
        allow_ties: offer "Preferred: tie" in the answer format (:data:`ANSWER_FORMAT_WITH_TIES`).

    Raises:
        TemplateError: the template is invalid.
    """
    validate_template(template)
    first, second = (response_b, response_a) if swapped else (response_a, response_b)
    content = template.format(
        principle=principle,
        conversation=format_conversation(prompt),
        response_a=first,
        response_b=second,
        answer_format=ANSWER_FORMAT_WITH_TIES if allow_ties else ANSWER_FORMAT,
        examples=format_examples(examples),
    )
    return JudgeRequest(
        messages=tuple(as_messages(content)),
        swapped=swapped,
        conversation=prompt,
        shown_a=first,
        shown_b=second,
        principle=principle,
    )


def render_both_orders(
    template: str,
    principle: str,
    prompt: str | Sequence[Mapping[str, str]],
    response_a: str,
    response_b: str,
    examples: Sequence[Mapping[str, str]] = (),
    allow_ties: bool = False,
) -> tuple[JudgeRequest, JudgeRequest]:
    """Return the (A/B, B/A) pair of judge requests for one comparison (position debiasing)."""
    return (
        render(template, principle, prompt, response_a, response_b, examples, swapped=False, allow_ties=allow_ties),
        render(template, principle, prompt, response_a, response_b, examples, swapped=True, allow_ties=allow_ties),
    )

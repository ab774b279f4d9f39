"""The transcript format for base models: how a prompt is rendered for a model without a chat template, and
where its answer ends.

A tokenizer with a chat template renders prompts with it. A base model (e.g. Gemma 3 270M from a GGUF file)
has none; it is given Anthropic's HH-RLHF transcript format instead::

    Human: <first user turn>

    Assistant: <assistant turn>

    Human: <last user turn>

    Assistant:

and its answer is the text it writes after the final ``Assistant:``. A base model does not stop there: given
such a transcript, Gemma 3 270M went on to write the next ``Human:`` turn in 52 of 64 samples and ended with
EOS in none. So generation stops at the next turn marker (:data:`STOP_STRINGS`, transformers' ``stop_strings``)
and the answer is cut there (:func:`trim`), so that no judge or reward model ever scores an invented turn.
"""
from __future__ import annotations

import re

from training.chat import Conversation, as_messages

#: The name recorded on a run (stage log and artifact metrics) when prompts are rendered as a transcript.
FORMAT = "transcript"
#: The name recorded when the tokenizer's own chat template renders prompts.
CHAT_TEMPLATE = "chat_template"
ROLE_NAMES = {"user": "Human", "assistant": "Assistant", "system": "System"}
#: Text that starts the next turn: generation stops at any of them and answers are cut before them.
STOP_STRINGS = ("\nHuman:", "\nAssistant:", "\nSystem:")
#: The first token of a turn marker as it is tokenized at the start of a line (see :func:`turn_token_ids`).
MARKER_WORDS = ("Human", "Assistant")


def uses_transcript(tokenizer) -> bool:
    """True when ``tokenizer`` has no chat template (prompts are rendered as a transcript)."""
    return not getattr(tokenizer, "chat_template", None)


def prompt_format(tokenizer) -> str:
    """:data:`FORMAT` or :data:`CHAT_TEMPLATE`: how prompts are rendered for this tokenizer."""
    return FORMAT if uses_transcript(tokenizer) else CHAT_TEMPLATE


def prefix(tokenizer) -> str:
    """The text to put before a transcript: the tokenizer's BOS token when the tokenizer itself adds one
    (Gemma: without it, samples are markedly less fluent and less varied), else ``""`` (GPT-2-style)."""
    bos = getattr(tokenizer, "bos_token", None)
    if not bos or tokenizer.bos_token_id is None:
        return ""
    ids = tokenizer("x", add_special_tokens=True)["input_ids"]
    return bos if ids and ids[0] == tokenizer.bos_token_id else ""


def render_turns(conversation: Conversation) -> str:
    """A prompt as transcript turns, ``Human: …\\n\\nAssistant: …``, without a final marker: the one rendering of
    a conversation as text (the judge prompt's ``{conversation}``, the reward model's input, :func:`render`).
    Plain text is one user turn (:func:`training.chat.as_messages`).

    Each turn is ``<Role>: <content>`` with the content as given (not stripped: what the policy, the judge and
    the reward model read is exactly the text stored), turns separated by a blank line.

    Raises:
        ValueError: a message whose role is not user, assistant or system (imported prompts never have one).
    """
    turns = []
    for index, message in enumerate(as_messages(conversation)):
        role = ROLE_NAMES.get(message["role"])
        if role is None:
            raise ValueError(f"message {index}: unknown role {message['role']!r} (user, assistant, system)")
        turns.append(f"{role}: {message['content']}")
    return "\n\n".join(turns)


def render(conversation: Conversation) -> str:
    """A prompt (plain text or chat messages) as a transcript ending in ``\\n\\nAssistant:`` (the answer follows
    after a space): :func:`render_turns` plus the marker where the response starts.

    Raises:
        ValueError: a message whose role is not user, assistant or system.
    """
    return render_turns(conversation) + "\n\nAssistant:"


_MARKER = re.compile(r"(?:^|\n)[ \t]*(?:Human|Assistant|System)(?::|[ \t]*$)")


def trim(text: str) -> str:
    """The answer in a generated ``text``: everything before the first turn marker (``Human:``,
    ``Assistant:``, ``System:`` at the start of a line, or a bare ``Human`` ending the text, as an RL rollout
    stopped by :func:`turn_token_ids` ends), stripped."""
    found = _MARKER.search(text)
    return (text[: found.start()] if found else text).strip()


def turn_token_ids(tokenizer) -> list[int]:
    """Ids of the tokens that begin a turn marker at the start of a line (``Human`` in ``\\n\\nHuman:``).

    TRL's RLOO/GRPO trainers generate without a tokenizer, so they cannot use ``stop_strings``; treating
    these tokens as end-of-sequence ends a rollout where the model starts the next turn instead, and the
    trainers mask everything after it. Only the line-initial spelling is used (``"Human rights"`` in the
    middle of a sentence tokenizes differently with SentencePiece and BPE tokenizers alike).
    """
    ids: list[int] = []
    for word in MARKER_WORDS:
        base = tokenizer.encode("\n\n", add_special_tokens=False)
        full = tokenizer.encode(f"\n\n{word}:", add_special_tokens=False)
        if full[: len(base)] != base or len(full) <= len(base):
            continue
        token = full[len(base)]
        if tokenizer.decode([token]).strip() == word and token not in ids:
            ids.append(token)
    return ids

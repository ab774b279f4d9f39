"""Prompts as chat messages: the one conversion of a prompt (plain text or a conversation) into the
``[{"role": ..., "content": ...}]`` list that chat templates, TRL's conversational datasets and chat endpoints
take."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

#: A prompt: plain text (one user turn) or chat messages (``{"role": "system"|"user"|"assistant", "content"}``).
Conversation = str | Sequence[Mapping[str, str]]


def as_messages(conversation: Conversation) -> list[dict[str, str]]:
    """A prompt as chat messages (TRL's conversational format).

    Plain text becomes one user turn, ``[{"role": "user", "content": text}]``. A conversation is copied into
    new dicts holding only ``role`` and ``content``, so extra keys (a message's ``name``, an importer's ids)
    never reach a chat template or an endpoint, and callers may append to or edit the result without
    touching the caller's messages.
    """
    if isinstance(conversation, str):
        return [{"role": "user", "content": conversation}]
    return [{"role": m["role"], "content": m["content"]} for m in conversation]

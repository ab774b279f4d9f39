"""Prompt identity and splitting: a normalised content hash (for de-duplication within a set) and a
deterministic train/eval assignment."""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence

_WS = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """NFKC, collapse runs of whitespace, strip, lower-case: the form two prompts are compared in."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip().lower()


def content_hash(prompt: str | Sequence[Mapping[str, str]]) -> str:
    """SHA-256 hex digest of a prompt's normalised content.

    Args:
        prompt: plain text, or chat messages ``[{"role": ..., "content": ...}]`` (roles are part of the
            identity: the same words from a different speaker are a different conversation).
    """
    if isinstance(prompt, str):
        canonical = normalise_text(prompt)
    else:
        canonical = json.dumps([[m["role"], normalise_text(m["content"])] for m in prompt], ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def split_for(digest: str, *, seed: int, eval_ratio: float) -> str:
    """``"eval"`` or ``"train"`` for a prompt, decided by its hash and a seed: stable across re-imports
    and independent of row order.

    Raises:
        ValueError: ``eval_ratio`` outside [0, 1].
    """
    if not 0.0 <= eval_ratio <= 1.0:
        raise ValueError(f"eval_ratio must be between 0 and 1; got {eval_ratio}")
    bucket = int(hashlib.sha256(f"{seed}:{digest}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "eval" if bucket < eval_ratio else "train"


def render_messages(messages: Sequence[Mapping[str, str]]) -> str:
    """Display text of chat messages: ``role: content`` blocks."""
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)

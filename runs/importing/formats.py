"""Row parsers: one raw row (a dict from ``datasets``) → a prompt, its chat messages, metadata and an
optional reference pair. Each raises :class:`~runs.importing.errors.RowError` naming the field.

* text / messages: a prompt column or a chat column (list of ``{role, content}``; ShareGPT's
  ``{from, value}`` with ``human``/``gpt`` is accepted too). A conversation that ends with an assistant turn
  keeps that turn as the prompt's ``metadata["response"]`` (a demonstration).
* hh_rlhf: Anthropic HH-RLHF (Bai et al. 2022) ``chosen``/``rejected`` transcripts of
  ``\\n\\nHuman: …`` / ``\\n\\nAssistant: …`` turns. The prompt is the shared conversation up to the final
  Assistant turn: the longest common prefix of the two transcripts, cut back to the last
  ``\\n\\nAssistant:`` inside it (splitting each transcript at its own last marker is wrong where the model's
  reply itself contains "Human:" turns). The two final replies become a reference pair.
* pairwise: a prompt, two responses and a human label or annotators' votes (PandaLM, Wang et al. 2024), or
  TRL's standard preference format ``prompt``/``chosen``/``rejected`` (``a_is_chosen``: column A always holds
  the preferred reply).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from rlaif_site.nul import count_nul, replace_nul
from runs.importing.errors import RowError
from runs.importing.options import ImportOptions
from runs.importing.textfiles import loads as json_loads
from runs.prompt_content import content_hash, render_messages
from training.judge_conventions import human_majority

ROLES = ("system", "user", "assistant")
ROLE_ALIASES = {"human": "user", "gpt": "assistant", "model": "assistant"}
HH_ASSISTANT = "\n\nAssistant:"
_HH_TURN = re.compile(r"\n\n(Human|Assistant):")
ASK_SCALARS = " (to store such values as text, tick 'Numbers and true/false as text')"
#: The self-describing label values; anything else (integers above all) needs the import's label_map.
_VOTES = {"a": "A", "b": "B", "tie": "tie"}
LABEL_MAP_HINT = ("map the values explicitly (label_map, e.g. --label-map 1=A,2=B,0=tie as in PandaLM, or "
                  "0=A,1=B,2=tie as in other sets)")


@dataclass
class ParsedRow:
    """One prompt ready to store. ``pair`` holds ReferencePair fields (response_a, response_b,
    human_choice, human_votes) or None. ``warnings`` are notes for the report (e.g. coerced values)."""

    text: str
    messages: list[dict] | None = None
    metadata: dict = field(default_factory=dict)
    pair: dict | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def content_hash(self) -> str:
        """Hash of the prompt alone (what de-duplication and the train/eval split use by default)."""
        return content_hash(self.messages if self.messages else self.text)

    def pair_hash(self) -> str:
        """Hash of the prompt and both responses: de-duplication key where one prompt has several pairs."""
        if not self.pair:
            return self.content_hash
        return content_hash(
            [
                {"role": "prompt", "content": self.content_hash},
                {"role": "response_a", "content": self.pair["response_a"]},
                {"role": "response_b", "content": self.pair["response_b"]},
            ]
        )


def parse_row(row: dict, options: ImportOptions) -> ParsedRow:
    """Parse one row by ``options.layout``; checks the prompt's length against ``options.max_prompt_chars``.

    NUL characters (U+0000, which PostgreSQL cannot store) are replaced by U+FFFD before parsing and noted
    in the row's warnings, per field.

    Raises:
        RowError: the row is not usable (field and reason).
    """
    nul_notes = []
    for name, value in row.items():
        found = count_nul(value)
        if found:
            nul_notes.append(f"field '{name}': {found} NUL character(s) (U+0000) replaced by U+FFFD")
    if nul_notes:
        row = replace_nul(row)
    if options.layout == "text":
        parsed = _parse_text(row, options)
    elif options.layout == "messages":
        parsed = _parse_messages(row, options)
    elif options.layout == "hh_rlhf":
        parsed = _parse_hh(row, options)
    else:
        parsed = _parse_pairwise(row, options)
    if len(parsed.text) > options.max_prompt_chars:
        column = options.messages_column if options.layout == "messages" else (
            options.chosen_column if options.layout == "hh_rlhf" else options.prompt_column
        )
        raise RowError(
            column, f"the prompt has {len(parsed.text):,} characters; the limit is {options.max_prompt_chars:,}"
        )
    for name in options.metadata_columns:
        parsed.metadata[name] = _jsonable(row.get(name))
    if options.subset_column and row.get(options.subset_column) not in (None, ""):
        parsed.metadata["subset"] = str(row.get(options.subset_column)).strip()
    parsed.warnings[:0] = nul_notes
    return parsed


def _text(row: dict, column: str, warnings: list[str], *, allow_empty: bool = False, scalars: bool = False) -> str:
    """The text in ``row[column]``. A typed number or boolean (JSON, Parquet; CSV cells are read as text) is
    refused unless ``scalars`` (the ``scalars_as_text`` option, which the user ticks after being asked):
    an id column is not a prompt, and a JSON ``true`` is not a reply."""
    value = row.get(column)
    if value is None:
        if allow_empty:
            return ""
        raise RowError(column, "is missing (null)")
    if isinstance(value, bool | int | float) and scalars:
        text = json.dumps(value) if isinstance(value, bool) else str(value)
        warnings.append(f"field '{column}': the {type(value).__name__} {text} was stored as the text {text!r}")
        return text
    if isinstance(value, bool):
        raise RowError(column, f"is a boolean ({str(value).lower()}), not text{ASK_SCALARS}")
    if isinstance(value, int | float):
        raise RowError(column, f"is a number ({value!r}), not text; is this the right column?{ASK_SCALARS}")
    if not isinstance(value, str):
        raise RowError(column, f"is {_a(type(value).__name__)}, not text")
    if not allow_empty and not value.strip():
        raise RowError(column, "is empty")
    return value


def _parse_text(row: dict, options: ImportOptions) -> ParsedRow:
    warnings: list[str] = []
    if not options.input_column:
        text = _text(row, options.prompt_column, warnings, scalars=options.scalars_as_text)
        return ParsedRow(text=text.strip(), warnings=warnings)
    text = _text(row, options.prompt_column, warnings, allow_empty=True, scalars=options.scalars_as_text).strip()
    extra = _text(row, options.input_column, warnings, allow_empty=True, scalars=options.scalars_as_text).strip()
    text = "\n\n".join(part for part in (text, extra) if part)
    if not text:
        raise RowError(options.prompt_column, f"is empty (and so is '{options.input_column}')")
    return ParsedRow(text=text, warnings=warnings)


def normalise_messages(value: Any, column: str) -> list[dict]:
    """Check chat messages and return them as ``[{"role", "content"}]`` with roles system/user/assistant.

    Accepts a list (or its JSON text, as CSV cells hold it) of ``{role, content}`` or ``{from, value}``.

    Raises:
        RowError: naming the message index and key (``messages[2].role``).
    """
    if isinstance(value, str):
        problem, value = json_loads(value)
        if problem:
            raise RowError(column, f"is text, not a list of messages ({problem})")
    if not isinstance(value, list):
        raise RowError(column, f"is a {type(value).__name__}, not a list of messages")
    if not value:
        raise RowError(column, "has no messages")
    messages = []
    for i, message in enumerate(value):
        where = f"{column}[{i}]"
        if not isinstance(message, dict):
            raise RowError(where, f"is a {type(message).__name__}, not a {{role, content}} object")
        role_key, content_key = ("role", "content") if "role" in message or "from" not in message else ("from", "value")
        role = message.get(role_key)
        if not isinstance(role, str) or not role.strip():
            raise RowError(f"{where}.{role_key}", "is missing")
        role = ROLE_ALIASES.get(role.strip().lower(), role.strip().lower())
        if role not in ROLES:
            raise RowError(
                f"{where}.{role_key}", f"unknown role {message.get(role_key)!r}; expected system, user or assistant"
            )
        content = message.get(content_key)
        if not isinstance(content, str):
            raise RowError(f"{where}.{content_key}", "is missing or not text")
        if not content.strip():
            raise RowError(f"{where}.{content_key}", "is empty")
        messages.append({"role": role, "content": content})
    return messages


def _parse_messages(row: dict, options: ImportOptions) -> ParsedRow:
    column = options.messages_column
    messages = normalise_messages(row.get(column), column)
    metadata = {}
    if messages[-1]["role"] == "assistant":
        metadata["response"] = messages.pop()["content"]
    if not messages or messages[-1]["role"] != "user":
        raise RowError(column, "the conversation does not end with a user turn to answer")
    return ParsedRow(text=render_messages(messages), messages=messages, metadata=metadata)


def hh_turns(transcript: str) -> list[dict]:
    """Split an HH-RLHF transcript (``\\n\\nHuman: …\\n\\nAssistant: …``) into chat messages."""
    parts = _HH_TURN.split(transcript)
    messages = []
    for speaker, content in zip(parts[1::2], parts[2::2], strict=True):
        messages.append({"role": "user" if speaker == "Human" else "assistant", "content": content.strip()})
    return messages


def split_hh_pair(chosen: str, rejected: str) -> tuple[str, str, str]:
    """``(prompt transcript, chosen reply, rejected reply)`` of an HH-RLHF row; replies are stripped.

    The prompt is the longest common prefix cut back to the last ``"\\n\\nAssistant:"`` that lies wholly
    inside it, so ``prompt + "\\n\\nAssistant:" + raw_reply`` rebuilds each transcript exactly.

    Raises:
        RowError: no shared Assistant turn.
    """
    common = len(os.path.commonprefix([chosen, rejected]))
    cut = chosen.rfind(HH_ASSISTANT, 0, common)
    if cut < 0:
        raise RowError("chosen", "chosen and rejected share no conversation ending in '\\n\\nAssistant:'")
    start = cut + len(HH_ASSISTANT)
    return chosen[:cut], chosen[start:].strip(), rejected[start:].strip()


def _parse_hh(row: dict, options: ImportOptions) -> ParsedRow:
    warnings: list[str] = []
    chosen = _text(row, options.chosen_column, warnings, scalars=options.scalars_as_text)
    rejected = _text(row, options.rejected_column, warnings, scalars=options.scalars_as_text)
    for column, value in ((options.chosen_column, chosen), (options.rejected_column, rejected)):
        if not value.lstrip().startswith("Human:"):
            raise RowError(column, "is not an HH-RLHF transcript (it must start with '\\n\\nHuman:')")
    prompt, reply_chosen, reply_rejected = split_hh_pair(chosen, rejected)
    messages = hh_turns(prompt)
    if not messages or messages[-1]["role"] != "user":
        raise RowError(options.chosen_column, "the conversation before the final reply does not end with a Human turn")
    parsed = ParsedRow(text=render_messages(messages), messages=messages, warnings=warnings)
    if options.keep_reference_pairs:
        parsed.pair = _pair(reply_chosen, reply_rejected, "A", None, parsed.content_hash, options.seed)
    return parsed


def label_key(value: Any) -> str | None:
    """The text a label value is looked up by: lower-case, integers without ``.0``; None for null/booleans."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().lower()


def vote_value(value: Any, label_map: dict[str, str] | None = None) -> str | None:
    """``A``/``B``/``tie`` for a label or vote: through ``label_map`` when one is given, else only the
    self-describing values (``A``, ``b``, ``Tie``); None if unknown. Integers are never guessed: PandaLM's
    1/2/0 and other sets' 0/1/2 mean different things."""
    key = label_key(value)
    if key is None:
        return None
    if label_map:
        return label_map.get(key)
    return _VOTES.get(key)


def _parse_pairwise(row: dict, options: ImportOptions) -> ParsedRow:
    parsed = _parse_text(row, options)
    warnings = parsed.warnings
    response_a = _text(row, options.response_a_column, warnings, allow_empty=True, scalars=options.scalars_as_text)
    response_b = _text(row, options.response_b_column, warnings, allow_empty=True, scalars=options.scalars_as_text)
    votes: list[str] = []
    for column in options.vote_columns:
        raw = row.get(column)
        for i, item in enumerate(raw if isinstance(raw, list) else [raw]):
            vote = vote_value(item, options.label_map)
            if vote is None:
                where = f"{column}[{i}]" if isinstance(raw, list) else column
                raise RowError(where, _unknown("vote", item, options))
            votes.append(vote)
    choice = ""
    if options.label_column:
        raw = row.get(options.label_column)
        choice = vote_value(raw, options.label_map) or ""
        if raw not in (None, "") and not choice:
            raise RowError(options.label_column, _unknown("label", raw, options))
    choice = choice or human_majority(votes)  # an even split is a tie
    if options.keep_reference_pairs and options.a_is_chosen and not (choice or votes):
        # TRL's prompt/chosen/rejected: A is always the chosen reply; shown swapped for about half the pairs
        parsed.pair = _pair(response_a.strip(), response_b.strip(), "A", None, parsed.content_hash, options.seed)
    elif options.keep_reference_pairs:
        parsed.pair = {
            "response_a": response_a.strip(),
            "response_b": response_b.strip(),
            "human_choice": choice,
            "human_votes": votes or None,
        }
    return parsed


def _unknown(kind: str, value: Any, options: ImportOptions) -> str:
    if options.label_map:
        listed = ", ".join(f"{k}={v}" for k, v in options.label_map.items())
        return f"the {kind} {value!r} is not in the label map ({listed})"
    return f"the {kind} {value!r} is not self-describing (A, B or tie): {LABEL_MAP_HINT}"


def _pair(chosen: str, rejected: str, choice: str, votes, digest: str, seed: int) -> dict:
    """A reference pair with chosen as A, swapped for about half the prompts (by hash and seed), so that a
    judge's position bias does not show up as agreement with the humans."""
    swap = int(hashlib.sha256(f"{seed}:pair:{digest}".encode()).hexdigest()[:8], 16) % 2 == 1
    if swap:
        return {"response_a": rejected, "response_b": chosen, "human_choice": "B", "human_votes": votes}
    return {"response_a": chosen, "response_b": rejected, "human_choice": choice, "human_votes": votes}


def _a(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError, RecursionError):
        return str(value)

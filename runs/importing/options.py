"""What an import does with a file: the layout of its rows, the column mapping, de-duplication, splitting,
limits and how bad rows are handled."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from runs.importing.errors import BadInput

#: Row layouts the importer understands.
#: ``text``: one prompt column (plus an optional ``input`` column appended after a blank line, as in
#: Alpaca/self-instruct data). ``messages``: a chat column, a list of ``{role, content}``. ``hh_rlhf``:
#: Anthropic HH-RLHF ``chosen``/``rejected`` transcripts. ``pairwise``: a prompt with two responses and a
#: human label or annotators' votes (PandaLM, MT-Bench human judgments, normalised pair files).
LAYOUTS = ("text", "messages", "hh_rlhf", "pairwise")

DEFAULT_MAX_PROMPT_CHARS = 20_000
DEFAULT_BATCH_SIZE = 1_000


@dataclass
class ImportOptions:
    """Options of one import (the form's fields, the command's flags).

    Parameters:
        layout: one of :data:`LAYOUTS`.
        prompt_column, input_column: text layout and pairwise layout: the prompt and an optional second
            column appended to it after a blank line (empty name = none).
        messages_column: messages layout.
        chosen_column, rejected_column: hh_rlhf layout.
        response_a_column, response_b_column, label_column, vote_columns: pairwise layout. Labels and votes
            are ``A``/``B``/``tie`` (any case); any other values (integers above all: PandaLM writes 1/2/0 for
            A/B/tie, other sets 0/1/2) need ``label_map``. ``vote_columns`` names one column per annotator, or
            one column holding a list. Without a label the votes' majority is used.
        label_map: raw label or vote value -> ``A``/``B``/``tie`` (keys compared as lower-case text, so
            ``{"1": "A"}`` maps the integer 1 too); see :func:`parse_label_map`.
        subset_column: a column kept as the pair's subset (a benchmark's scenario or category), stored as the
            prompt's ``metadata["subset"]``; the audit breaks its figures down by it.
        a_is_chosen: pairwise layout without label or votes: the response A column always holds the
            human-preferred reply (TRL's ``prompt``/``chosen``/``rejected`` format); stored with A and B swapped
            for about half the prompts, so a judge's position bias does not pass for agreement.
        dedupe: ``prompt`` (default: one prompt per normalised content), ``pair`` (one row per prompt and
            pair of responses, for pairwise data that compares several response pairs on one prompt; the
            prompt's text may then repeat within the set) or ``none`` (every row is an item, the default for
            labelled pairwise data: judge benchmarks hold identical pairs as separate items). A duplicate
            dropped with other human labels than the row kept is reported, never dropped silently.
        pair_source: the name stored with reference pairs (annotators become ``<pair_source>:<i>``);
            "" = the file's stem.
        keep_reference_pairs: store hh_rlhf/pairwise responses as reference pairs with the human label.
        metadata_columns: further columns kept in each prompt's metadata.
        seed, eval_ratio: deterministic train/eval split (:func:`runs.prompt_content.split_for`).
        limit: keep at most this many prompts (0 = all).
        shuffle: read rows in a seeded shuffled order (``datasets`` buffer shuffle), e.g. to take a random
            ``limit`` prompts.
        skip_bad_rows: skip rows that fail validation and list them in the report, instead of failing
            the whole import.
        scalars_as_text: store a number or true/false found where text belongs (e.g. a JSON ``true`` as a
            reply) as its text, with a note per row; off by default, so such a value is a bad row.
        max_prompt_chars: longer prompts are bad rows.
        dataset_split, dataset_config: which split of a ``DatasetDict`` folder or hub dataset, and the hub
            config name.
        batch_size: rows per read batch and per bulk insert.
    """

    layout: str = "text"
    prompt_column: str = "prompt"
    input_column: str = ""
    messages_column: str = "messages"
    chosen_column: str = "chosen"
    rejected_column: str = "rejected"
    response_a_column: str = "response_a"
    response_b_column: str = "response_b"
    label_column: str = ""
    vote_columns: list[str] = field(default_factory=list)
    label_map: dict[str, str] = field(default_factory=dict)
    subset_column: str = ""
    a_is_chosen: bool = False
    dedupe: str = "prompt"
    pair_source: str = ""
    keep_reference_pairs: bool = True
    metadata_columns: list[str] = field(default_factory=list)
    seed: int = 0
    eval_ratio: float = 0.1
    limit: int = 0
    shuffle: bool = False
    skip_bad_rows: bool = False
    scalars_as_text: bool = False
    max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS
    dataset_split: str = ""
    dataset_config: str = ""
    batch_size: int = DEFAULT_BATCH_SIZE

    def validate(self) -> ImportOptions:
        """Check the values; returns self.

        Raises:
            BadInput: naming the option (``field``) that is wrong.
        """
        if self.layout not in LAYOUTS:
            raise BadInput(f"unknown layout {self.layout!r}; expected one of {', '.join(LAYOUTS)}", field="layout")
        for raw, choice in self.label_map.items():
            if choice not in ("A", "B", "tie"):
                raise BadInput(f"value {raw!r} maps to {choice!r}; map each value to A, B or tie", field="label_map")
        if self.dedupe not in ("prompt", "pair", "none"):
            raise BadInput(f"must be 'prompt', 'pair' or 'none'; got {self.dedupe!r}", field="dedupe")
        if not 0.0 <= self.eval_ratio <= 1.0:
            raise BadInput(f"must be between 0 and 1; got {self.eval_ratio}", field="eval_ratio")
        if self.limit < 0:
            raise BadInput(f"must be 0 (no limit) or more; got {self.limit}", field="limit")
        if self.max_prompt_chars < 1:
            raise BadInput(f"must be at least 1; got {self.max_prompt_chars}", field="max_prompt_chars")
        if not 1 <= self.batch_size <= 100_000:
            raise BadInput(f"must be between 1 and 100000; got {self.batch_size}", field="batch_size")
        for name in self.required_columns():
            if not name:
                raise BadInput(f"a column name is required for the {self.layout} layout", field="columns")
        return self

    def required_columns(self) -> list[str]:
        """Columns every row must have for this layout."""
        if self.layout == "text":
            return [self.prompt_column]
        if self.layout == "messages":
            return [self.messages_column]
        if self.layout == "hh_rlhf":
            return [self.chosen_column, self.rejected_column]
        return [self.prompt_column, self.response_a_column, self.response_b_column]

    def optional_columns(self) -> list[str]:
        """Columns that must exist when named (input, label, votes, metadata)."""
        names = list(self.metadata_columns) + ([self.subset_column] if self.subset_column else [])
        if self.layout in ("text", "pairwise") and self.input_column:
            names.append(self.input_column)
        if self.layout == "pairwise":
            names += [c for c in [self.label_column, *self.vote_columns] if c]
        return names

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ImportOptions:
        """Build from a plain dict (unknown keys are an error naming the key)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise BadInput(f"unknown import option(s): {', '.join(unknown)}", field=unknown[0])
        return cls(**data)


def parse_label_map(text: str) -> dict[str, str]:
    """``"1=A, 2=B, 0=tie"`` -> ``{"1": "A", "2": "B", "0": "tie"}`` (the command line's ``--label-map`` and the
    import form's field).

    Raises:
        BadInput: an item without ``=``, a target other than A/B/tie, or a value mapped twice.
    """
    mapping: dict[str, str] = {}
    for item in (part.strip() for part in (text or "").split(",")):
        if not item:
            continue
        raw, sep, choice = item.partition("=")
        key, target = raw.strip().lower(), {"a": "A", "b": "B", "tie": "tie"}.get(choice.strip().lower())
        if not sep or not key:
            raise BadInput(f"{item!r} is not VALUE=A|B|tie", field="label_map")
        if target is None:
            raise BadInput(f"{item!r}: map each value to A, B or tie", field="label_map")
        if key in mapping:
            raise BadInput(f"the value {raw.strip()!r} is mapped twice", field="label_map")
        mapping[key] = target
    return mapping


def suggest_options(columns: list[str], first_row: dict | None = None) -> dict:
    """Guess a layout and column mapping from a file's columns (and first row), for the preview form.

    Returns:
        A dict of :class:`ImportOptions` field values (only the ones it could guess).
    """
    lower = {c.lower(): c for c in columns}

    def pick(*candidates: str) -> str:
        for name in candidates:
            if name in lower:
                return lower[name]
        return ""

    chosen, rejected = pick("chosen"), pick("rejected")
    if chosen and rejected:
        value = (first_row or {}).get(chosen)
        if isinstance(value, str) and value.lstrip().startswith("Human:"):
            return {"layout": "hh_rlhf", "chosen_column": chosen, "rejected_column": rejected}
        prompt = pick("prompt", "instruction", "question", "query", "input")
        if prompt and isinstance(value, str) and isinstance((first_row or {}).get(prompt), str):
            # TRL's standard preference format: plain-text replies, the chosen one preferred
            return {"layout": "pairwise", "prompt_column": prompt, "response_a_column": chosen,
                    "response_b_column": rejected, "a_is_chosen": True, "dedupe": "pair"}
    response_a = pick("response_a", "response1", "response_1", "response 1", "output_1", "output_a", "answer_a",
                      "completion_a", "model_a_response", "answer1")
    response_b = pick("response_b", "response2", "response_2", "response 2", "output_2", "output_b", "answer_b",
                      "completion_b", "model_b_response", "answer2")
    prompt = pick("prompt", "instruction", "question", "query", "text", "input")
    if response_a and response_b and prompt:
        votes = sorted(c for c in columns if c.lower().startswith("annotator"))
        if not votes and pick("human_votes", "votes"):
            votes = [pick("human_votes", "votes")]
        input_col = pick("input") if prompt != pick("input") else ""
        return {
            "layout": "pairwise",
            "prompt_column": prompt,
            "input_column": input_col,
            "response_a_column": response_a,
            "response_b_column": response_b,
            "label_column": pick("label", "winner", "preference", "choice", "human_preference", "preferred"),
            "subset_column": pick("subset", "category", "scenario", "motivation_app"),
            "vote_columns": votes,
            "dedupe": "none",
        }
    messages = pick("messages", "conversation", "conversations", "chat")
    if messages and not prompt:
        return {"layout": "messages", "messages_column": messages}
    if prompt:
        input_col = pick("input") if prompt.lower() == "instruction" else ""
        return {"layout": "text", "prompt_column": prompt, "input_column": input_col}
    if messages:
        return {"layout": "messages", "messages_column": messages}
    strings = [c for c in columns if isinstance((first_row or {}).get(c), str)]
    # never guess a column that does not hold text (ids would become prompts): the preview asks instead
    return {"layout": "text", "prompt_column": strings[0] if strings else ""}

"""Importing prompt sets: files and datasets in, prompts (and reference pairs) out.

Public API::

    from runs.importing import open_source, ImportOptions, import_prompt_set, import_into, preview, BadInput

    source = open_source("prompts.jsonl")                       # or open_source("owner/name", hub=True)
    prompt_set = import_prompt_set("My prompts", source, ImportOptions(layout="text", prompt_column="prompt"))

Readers (:mod:`.readers`) parse JSON with Python's parser (:mod:`.textfiles`, which also checks CSV headers)
and the rest with the ``datasets`` library; zips are extracted within limits (:mod:`.archives`); row layouts
(:mod:`.formats`) cover plain prompts, chat messages, Anthropic HH-RLHF transcripts and pairwise data with
human votes (PandaLM).
"""
from runs.importing.errors import BadInput, RowError
from runs.importing.formats import ParsedRow, hh_turns, parse_row, split_hh_pair
from runs.importing.importer import Preview, fill_prompt_set, import_into, import_prompt_set, preview
from runs.importing.options import LAYOUTS, ImportOptions, suggest_options
from runs.importing.readers import DataSource, hub_offline_reason, open_source

__all__ = [
    "BadInput", "RowError", "ParsedRow", "hh_turns", "parse_row", "split_hh_pair", "Preview", "fill_prompt_set",
    "import_into", "import_prompt_set", "preview", "LAYOUTS", "ImportOptions", "suggest_options", "DataSource",
    "hub_offline_reason", "open_source",
]

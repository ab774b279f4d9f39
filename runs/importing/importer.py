"""The import loop: read batches, parse and validate rows, de-duplicate, split, bulk insert.

Atomic: every row of one import is written in one transaction, so a bad row (without "skip bad rows")
leaves nothing behind. Memory is bounded by one batch plus the set of content hashes seen so far
(32 bytes per prompt) used for de-duplication.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from runs.importing.errors import BadInput, RowError
from runs.importing.formats import ParsedRow, parse_row
from runs.importing.options import ImportOptions, suggest_options
from runs.importing.readers import DataSource
from runs.models import Prompt, PromptSet, ReferencePair
from runs.prompt_content import split_for
from training.pairing import DEGENERATE_REASONS, degenerate_reason

#: At most this many skipped rows and warnings are listed in a report (the counts are always exact).
MAX_LISTED = 10_000

#: progress(rows_read, prompts_kept, rows_expected_or_None)
ProgressFn = Callable[[int, int, "int | None"], None]


@dataclass
class Preview:
    """The first rows of a source, raw and as the options would parse them."""

    columns: list[str]
    raw: list[dict]
    parsed: list[dict]
    suggested: dict = field(default_factory=dict)
    #: what the import would pass over without a word otherwise (columns it does not read)
    notes: list[str] = field(default_factory=list)
    #: the distinct label/vote values of the first rows: ``{"value", "count", "row", "maps_to"}`` each
    label_values: list[dict] = field(default_factory=list)


def preview(source: DataSource, options: ImportOptions | None = None, n: int = 5) -> Preview:
    """Read the first ``n`` rows; parse them with ``options`` (default: the suggested mapping).

    Returns:
        A :class:`Preview`; ``parsed`` items are ``{"row", "text", "messages", "pair", "error", "warnings"}``
        (a degenerate reference pair has ``pair["degenerate"]`` set).

    Raises:
        BadInput: the source cannot be read or has no rows, or no column is chosen for a field the layout
            needs and none could be guessed (no column holds text).
    """
    rows = source.head(n, options or ImportOptions())
    if not rows:
        raise source.error("has no rows")
    columns = list(rows[0][1])
    suggested = suggest_options(columns, rows[0][1])
    options = options or ImportOptions(**suggested)
    if not all(options.required_columns()):
        kinds = ", ".join(f"{name} ({_kind(value)})" for name, value in rows[0][1].items())
        raise source.error(
            f"no column holds text, so none was chosen for the {options.layout} layout; the columns are: {kinds}",
            field="prompt_column" if options.layout in ("text", "pairwise") else "columns",
        )
    lines = source.line_numbers({r for r, _ in rows})
    parsed = []
    missing = _missing_columns(columns, options)
    for row, record in rows:
        item = {"row": lines[row], "text": "", "messages": None, "pair": None, "error": "", "warnings": []}
        try:
            if missing:
                raise RowError(missing[0], f"no such column; the columns are: {', '.join(columns)}")
            result = parse_row(record, options)
            if result.pair is not None:
                result.pair["degenerate"] = degenerate_reason(result.pair["response_a"], result.pair["response_b"])
            item.update(text=result.text, messages=result.messages, pair=result.pair, warnings=result.warnings)
        except RowError as exc:
            item["error"] = f"field '{exc.field}': {exc.message}"
        parsed.append(item)
    raw = [{k: _short(v) for k, v in record.items()} for _, record in rows]
    return Preview(columns=columns, raw=raw, parsed=parsed, suggested=suggested, notes=_unused_note(columns, options),
                   label_values=label_values(source, options) if not missing else [])


#: Rows the preview reads to list the label values.
LABEL_SCAN_ROWS = 2000


def label_values(source: DataSource, options: ImportOptions, n: int = LABEL_SCAN_ROWS) -> list[dict]:
    """The distinct values of the label and vote columns among the first ``n`` rows, with their count, the
    line of an example row, and what each maps to (``A``/``B``/``tie``, or "" when it needs a label map), so
    the user sees what the labels are before choosing a mapping (issue: integer schemes differ by data set)."""
    from runs.importing.formats import label_key, vote_value

    columns = [c for c in [options.label_column, *options.vote_columns] if c] if options.layout == "pairwise" else []
    if not columns:
        return []
    seen: dict[str, dict] = {}
    rows = source.head(n, options)
    for row, record in rows:
        for column in columns:
            raw = record.get(column)
            for item in raw if isinstance(raw, list) else [raw]:
                key = label_key(item)
                if key is None or key == "":
                    continue
                entry = seen.setdefault(key, {"value": item, "count": 0, "row": row, "column": column,
                                               "maps_to": vote_value(item, options.label_map) or ""})
                entry["count"] += 1
    lines = source.line_numbers({entry["row"] for entry in seen.values()})
    for entry in seen.values():
        entry["row"] = lines.get(entry["row"], entry["row"])
    return sorted(seen.values(), key=lambda e: -e["count"])


def import_prompt_set(
    name: str,
    source: DataSource,
    options: ImportOptions,
    *,
    description: str = "",
    created_by=None,
    progress: ProgressFn | None = None,
) -> PromptSet:
    """Create a prompt set named ``name`` from ``source``, all or nothing (the command and tests).

    Raises:
        BadInput: the first bad row (or file problem); nothing is saved.
    """
    options.validate()
    with transaction.atomic():
        prompt_set = PromptSet.objects.create(
            name=name, description=description, source=source.name[:500], created_by=created_by,
            status=PromptSet.Status.IMPORTING,
        )
        report = fill_prompt_set(prompt_set, source, options, progress=progress)
        _finish(prompt_set, report)
    return prompt_set


def import_into(prompt_set: PromptSet, source: DataSource, options: ImportOptions, *, progress=None) -> dict:
    """Fill an existing (``importing``) prompt set: the browser's background job.

    On success the set becomes ``ready``; on bad input its rows are rolled back, it becomes ``failed`` and
    ``import_report["error"]`` holds the message.

    Returns:
        The import report.

    Raises:
        BadInput: after recording it on the prompt set.
    """
    try:
        options.validate()
        with transaction.atomic():
            report = fill_prompt_set(prompt_set, source, options, progress=progress)
            _finish(prompt_set, report)
        return report
    except BadInput as exc:
        prompt_set.status = PromptSet.Status.FAILED
        prompt_set.import_report = {**(prompt_set.import_report or {}), "error": exc.as_dict()}
        prompt_set.save(update_fields=["status", "import_report"])
        raise


def _finish(prompt_set: PromptSet, report: dict) -> None:
    prompt_set.status = PromptSet.Status.READY
    prompt_set.import_report = {**(prompt_set.import_report or {}), **report}
    prompt_set.save(update_fields=["status", "import_report"])


def fill_prompt_set(
    prompt_set: PromptSet, source: DataSource, options: ImportOptions, *, progress: ProgressFn | None = None
) -> dict:
    """Insert the prompts (and reference pairs) of ``source`` into ``prompt_set``; call inside a transaction.

    Rows are parsed by layout, de-duplicated on the normalised content hash (first occurrence kept), given
    a deterministic split (:func:`runs.prompt_content.split_for`) and bulk inserted per batch.

    Returns:
        The report: ``rows_read``, ``prompts``, ``duplicates``, ``reference_pairs``, ``splits``,
        ``skipped`` (``[{"row", "unit", "field", "error"}]``), ``skipped_count``, ``warnings``,
        ``warning_count``, ``seconds``, ``source``, ``format``, ``options``.

    Raises:
        BadInput: a file problem, or a bad row unless ``options.skip_bad_rows``.
    """
    started = time.monotonic()
    try:
        with transaction.atomic():  # a savepoint: a damaged file's partial rows roll back before the re-read
            return _fill(prompt_set, source, options, progress, tolerant=False, started=started)
    except BadInput as exc:
        if not (options.skip_bad_rows and getattr(exc, "damaged", False)):
            raise
    # A damaged JSON-lines file with "skip bad rows": start again, reading line by line.
    return _fill(prompt_set, source, options, progress, tolerant=True, started=started)


def _fill(prompt_set, source, options, progress, *, tolerant: bool, started: float) -> dict:
    expected = source.estimated_rows() if progress else None
    pair_source = (options.pair_source or Path(source.name).name.split(".")[0])[:100]
    seen: dict[bytes, tuple[int, object]] = {}  # de-duplication key -> (first row, its human labels)
    skipped: list[dict] = []
    warnings: list[dict] = []
    counts = {"rows_read": 0, "duplicates": 0, "reference_pairs": 0, "skipped_count": 0, "warning_count": 0,
              "nul_rows": 0}
    degenerate = dict.fromkeys(DEGENERATE_REASONS, 0)
    splits = {"train": 0, "eval": 0}
    index = 0
    checked_columns = False
    for batch in source.batches(options, tolerant=tolerant):
        if not checked_columns and batch:
            missing = _missing_columns(list(batch[0][1]), options)
            if missing:
                raise source.error(
                    f"no such column; the columns are: {', '.join(batch[0][1])}", field=missing[0]
                )
            for note in _unused_note(list(batch[0][1]), options):
                counts["warning_count"] += 1
                warnings.append({"row": batch[0][0], "unit": source.unit, "warning": note})
            checked_columns = True
        prompts: list[Prompt] = []
        pairs: list[tuple[int, dict]] = []
        for row, record in batch:
            counts["rows_read"] += 1
            try:
                parsed: ParsedRow = parse_row(record, options)
            except RowError as exc:
                if not options.skip_bad_rows:
                    line = source.line_numbers({row})[row]
                    raise BadInput(exc.message, file=source.name, row=line, unit=source.unit, field=exc.field) from None
                counts["skipped_count"] += 1
                if len(skipped) < MAX_LISTED:
                    skipped.append({"row": row, "unit": source.unit, "field": exc.field, "error": exc.message})
                continue
            if any("NUL character" in note for note in parsed.warnings):
                counts["nul_rows"] += 1
            for note in parsed.warnings:
                counts["warning_count"] += 1
                if len(warnings) < MAX_LISTED:
                    warnings.append({"row": row, "unit": source.unit, "warning": note})
            digest = parsed.content_hash
            if options.dedupe == "none":  # every row is an item (judge benchmarks repeat identical pairs)
                stored_hash = hashlib.sha256(f"{parsed.pair_hash()}:row:{row}".encode()).hexdigest()
            else:
                stored_hash = parsed.pair_hash() if options.dedupe == "pair" else digest
            key = bytes.fromhex(stored_hash)
            labels = (parsed.pair or {}).get("human_choice"), (parsed.pair or {}).get("human_votes")
            if key in seen:
                counts["duplicates"] += 1
                first_row, first_labels = seen[key]
                if parsed.pair is not None and labels != first_labels:
                    counts["warning_count"] += 1
                    if len(warnings) < MAX_LISTED:
                        warnings.append({"row": row, "unit": source.unit, "warning": (
                            f"same {'prompt and replies' if options.dedupe == 'pair' else 'prompt'} as "
                            f"{source.unit} {first_row} but other human labels ({labels[0] or labels[1]} vs "
                            f"{first_labels[0] or first_labels[1]}); dropped as a duplicate. Import with "
                            "de-duplication 'every row' to keep both")})
                continue
            seen[key] = (row, labels)
            if parsed.pair is not None:
                reason = degenerate_reason(parsed.pair["response_a"], parsed.pair["response_b"])
                parsed.pair["degenerate"] = reason
                if reason:
                    degenerate[reason] += 1
                    counts["warning_count"] += 1
                    what = "identical" if reason == "identical" else "both empty"
                    if len(warnings) < MAX_LISTED:
                        warnings.append({"row": row, "unit": source.unit, "warning": (
                            f"the two replies are {what}: the pair is kept but flagged, and never judged, "
                            "trained on or counted in agreement")})
            split = split_for(digest, seed=options.seed, eval_ratio=options.eval_ratio)
            splits[split] += 1
            parsed.metadata.setdefault("source_row", row)
            prompts.append(
                Prompt(
                    prompt_set=prompt_set, index=index, text=parsed.text, messages=parsed.messages,
                    metadata=parsed.metadata, split=split, content_hash=stored_hash,
                )
            )
            if parsed.pair is not None:
                pairs.append((len(prompts) - 1, parsed.pair))
            index += 1
            if options.limit and index >= options.limit:
                break
        created = Prompt.objects.bulk_create(prompts, batch_size=options.batch_size)
        if pairs:
            ReferencePair.objects.bulk_create(
                [ReferencePair(prompt=created[i], source=pair_source, **pair) for i, pair in pairs],
                batch_size=options.batch_size,
            )
            counts["reference_pairs"] += len(pairs)
        if progress:
            progress(counts["rows_read"], index, expected)
        if options.limit and index >= options.limit:
            break
    if tolerant:
        for line, reason in source.bad_lines:
            counts["skipped_count"] += 1
            if len(skipped) < MAX_LISTED:
                skipped.append({"row": line, "unit": "line", "field": "", "error": reason})
        skipped.sort(key=lambda s: s["row"])
    if index == 0 and counts["rows_read"] == 0 and not skipped:
        raise source.error("has no rows")
    if index == 0:
        raise source.error(f"no usable prompts: {counts['skipped_count']} bad rows, {counts['duplicates']} duplicates")
    _rows_to_lines(source, skipped, warnings)
    return {
        "source": source.name,
        "format": source.kind,
        "layout": options.layout,
        **counts,
        "prompts": index,
        "splits": splits,
        "degenerate_pairs": degenerate,
        "skipped": skipped,
        "warnings": warnings,
        "pair_source": pair_source if counts["reference_pairs"] else "",
        "seconds": round(time.monotonic() - started, 3),
        "options": options.to_dict(),
    }


def _rows_to_lines(source: DataSource, *lists: list[dict]) -> None:
    wanted = {item["row"] for items in lists for item in items if item["unit"] == "line"}
    mapping = source.line_numbers(wanted)
    for items in lists:
        for item in items:
            if item["unit"] == "line":
                item["row"] = mapping.get(item["row"], item["row"])


def _missing_columns(columns: list[str], options: ImportOptions) -> list[str]:
    present = set(columns)
    return [c for c in [*options.required_columns(), *options.optional_columns()] if c and c not in present]


def _unused_note(columns: list[str], options: ImportOptions) -> list[str]:
    """A note naming the columns this layout does not read (so that, e.g., chosen/rejected columns that are
    not HH-RLHF transcripts are not dropped without a word); [] when every column is read."""
    used = {c for c in [*options.required_columns(), *options.optional_columns()] if c}
    unused = [c for c in columns if c not in used]
    if not unused:
        return []
    return [
        f"not imported with the {options.layout} layout: column(s) {', '.join(repr(c) for c in unused)} "
        "(choose another layout, map them, or keep them as metadata columns)"
    ]


def _kind(value) -> str:
    """What a raw value is, in words for messages: text, boolean, number, list, object, null."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return {str: "text", list: "list", dict: "object"}.get(type(value), type(value).__name__)


def _short(value, limit: int = 300):
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "…"

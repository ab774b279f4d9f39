"""Reading JSON and checking CSV headers with Python's own parsers, so every refusal names the line.

JSON (lines and arrays) is parsed with :mod:`json`, not pyarrow: pyarrow's reader crashes the process
(segmentation fault) on deeply nested values and its pandas fallback reports "Trailing data" or "Value is
too big!" without a line. Here a value nested deeper than :data:`MAX_DEPTH` levels, a line that is not a
JSON object, or trailing text is refused with its line number; numbers of any size are kept as they are.

CSV headers are checked before ``datasets``/pandas read the file, because pandas silently renames
duplicate names (``prompt``, ``prompt.1``), names empty ones ``Unnamed: 1``, and reads a ``;``- or
tab-separated file as one column whose cells hold the whole line.
"""
from __future__ import annotations

import csv
import io
import json
import random
import re
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

#: Deepest nesting of lists/objects accepted in a JSON record (a chat column is 3 levels deep).
MAX_DEPTH = 100

#: Separators that, found in a one-column CSV header, show the file is not comma-separated.
OTHER_SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def depth_of(value: Any) -> int:
    """Nesting depth of lists and dicts in ``value`` (a scalar is 0, ``[]`` is 1); iterative, so it cannot
    recurse too deeply itself."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def loads(text: str) -> tuple[str, Any]:
    """Parse JSON text: ``("", value)``, or ``(reason, None)`` naming what is wrong (invalid JSON with its
    column, or nesting deeper than :data:`MAX_DEPTH`). Never raises ``RecursionError``."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}" if exc.lineno > 1 else f"column {exc.colno}"
        return f"not valid JSON: {exc.msg} ({where})", None
    except RecursionError:
        return f"JSON nested deeper than this importer accepts ({MAX_DEPTH} levels)", None
    if depth_of(value) > MAX_DEPTH:
        return f"JSON nested {depth_of(value)} levels deep; the limit is {MAX_DEPTH}", None
    return "", value


def decode_json_line(raw: bytes) -> tuple[str, dict | None, str]:
    """One line of a JSON-lines file: ``("", record, "")``, ``("blank", None, "")`` or ``(reason, None,
    field)`` where ``field`` is the top-level key whose value nests too deeply ("" otherwise)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})", None, ""
    if not text.strip():
        return "blank", None, ""
    problem, record = loads(text)
    if problem:
        return problem, None, (deep_spot(text, key_depth=1)[1] if "nested" in problem else "")
    if not isinstance(record, dict):
        return f"expected a JSON object per line, got {_kind(record)}", None, ""
    return "", record, ""


def json_lines(open_bytes: Callable[[], IO[bytes]], *, tolerant: bool,
               bad_lines: list[tuple[int, str]]) -> Iterator[tuple[int, dict]]:
    """``(line number, record)`` of a JSON-lines file; blank lines are passed over.

    Args:
        open_bytes: opens the file for binary reading (gzip-aware).
        tolerant: record bad lines in ``bad_lines`` and go on, instead of raising.

    Raises:
        BadLine: the first bad line, when not ``tolerant``.
    """
    with open_bytes() as handle:
        for number, raw in enumerate(handle, start=1):
            problem, record, field = decode_json_line(raw)
            if problem == "blank":
                continue
            if problem:
                if not tolerant:
                    raise BadLine(number, problem, field=field)
                bad_lines.append((number, problem))
                continue
            yield number, record


def json_array(open_bytes: Callable[[], IO[bytes]]) -> Iterator[tuple[int, dict]]:
    """``(item number, record)`` of a file holding one JSON array of objects (read whole, as ``datasets``
    does for arrays).

    Raises:
        BadLine: not UTF-8, not valid JSON (with its line), too deeply nested, not an array, or an item
            that is not an object (``line`` is then None and ``item`` the 1-based item).
    """
    with open_bytes() as handle:
        data = handle.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BadLine(line, f"not valid UTF-8 text (byte 0x{data[exc.start]:02x})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadLine(exc.lineno, f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        reason = f"JSON nested deeper than this importer accepts ({MAX_DEPTH} levels)"
        line, field = deep_spot(text, key_depth=2)
        raise BadLine(line, reason, field=field) from None
    if not isinstance(value, list):
        raise BadLine(1, f"expected a JSON array of objects (or one object per line), got {_kind(value)}")
    for number, item in enumerate(value, start=1):
        if not isinstance(item, dict):
            raise BadLine(None, f"expected a JSON object, got {_kind(item)}", item=number)
        if depth_of(item) > MAX_DEPTH:
            field = next((k for k, v in item.items() if depth_of(v) >= MAX_DEPTH), "")
            reason = f"JSON nested {depth_of(item)} levels deep; the limit is {MAX_DEPTH}"
            raise BadLine(None, reason, item=number, field=field)
        yield number, item


_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def deep_spot(text: str, *, key_depth: int, limit: int = MAX_DEPTH) -> tuple[int | None, str]:
    """Where JSON ``text`` first nests deeper than ``limit`` (strings skipped): ``(line, key)``, the key
    being the last object key seen at nesting level ``key_depth`` (1 = a top-level object's keys, 2 = the keys
    of objects inside a top-level array); ``(None, "")`` when it does not."""
    depth, key = 0, ""
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                return text.count("\n", 0, match.start()) + 1, key
        elif token in "]}":
            depth -= 1
        elif depth == key_depth and text[match.end() : match.end() + 20].lstrip().startswith(":"):
            key = json.loads(token)
    return None, ""


class BadLine(ValueError):
    """A JSON or CSV problem at a line (1-based; None when unknown) or at a JSON array's item."""

    def __init__(self, line: int | None, reason: str, *, item: int | None = None, field: str = ""):
        self.line, self.reason, self.item, self.field = line, reason, item, field
        super().__init__(f"line {line}: {reason}" if line else reason)


def buffer_shuffle(rows: Iterable, *, seed: int, buffer_size: int) -> Iterator:
    """Shuffle a stream with a fixed-size buffer (as ``datasets.IterableDataset.shuffle`` does): each item
    read replaces a random item of the buffer, which is emitted. Deterministic for a seed; memory is one
    buffer."""
    rng = random.Random(seed)
    buffer: list = []
    for row in rows:
        if len(buffer) < buffer_size:
            buffer.append(row)
            continue
        i = rng.randrange(buffer_size)
        buffer[i], row = row, buffer[i]
        yield row
    rng.shuffle(buffer)
    yield from buffer


def csv_header(open_bytes: Callable[[], IO[bytes]], *, check_rows: int | None = None) -> list[str]:
    """The header of a comma-separated file, checked, and the number of fields of its records.

    Args:
        check_rows: check only this many records (the preview); None = every record (the import).

    Returns:
        The column names, in order.

    Raises:
        BadLine: (line 1) a one-column header holding ``;``, a tab or ``|`` (the file is separated by
            something else), a name used twice, or an empty name; (line n) a record with more or fewer
            fields than the header.
    """
    with open_bytes() as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8", errors="replace", newline="")
        reader = csv.reader(text)
        try:
            header = next(reader)
        except StopIteration:
            return []
        except csv.Error as exc:
            raise BadLine(1, f"the header is not valid CSV: {exc}") from None
        _check_header(header)
        start, checked = reader.line_num + 1, 0
        try:
            for record in reader:
                if record and len(record) != len(header):
                    raise BadLine(
                        start,
                        f"has {len(record)} fields but the header has {len(header)}; quote cells that hold commas",
                    )
                start, checked = reader.line_num + 1, checked + 1
                if check_rows is not None and checked >= check_rows:
                    break
        except csv.Error as exc:
            raise BadLine(start, f"is not valid CSV: {exc}") from None
    return header


def _check_header(header: list[str]) -> None:
    if len(header) == 1:
        for separator, name in OTHER_SEPARATORS.items():
            if separator in header[0]:
                raise BadLine(
                    1,
                    f"the header is one column, {header[0]!r}, holding {name}: the file seems to be separated "
                    f"by {name}, not commas. Save it comma-separated (or as JSON lines) and import it again",
                )
    seen: set[str] = set()
    for position, column in enumerate(header, start=1):
        if not column.strip():
            raise BadLine(1, f"column {position} of the header has no name; name every column")
        if column in seen:
            raise BadLine(1, f"the header names column {column!r} twice; give every column its own name")
        seen.add(column)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({json.dumps(value)})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if value is None:
        return "null"
    return {str: "text", list: "a list", dict: "an object"}.get(type(value), type(value).__name__)

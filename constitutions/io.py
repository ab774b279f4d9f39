"""Constitution files: export a version as YAML or JSON, and import such a file as a constitution or a new
version of one.

Schema (one schema for both formats; YAML is the same tree written as YAML)::

    schema_version: 1                # optional; when present it must be 1
    name: My constitution            # text, ≤ 200 characters; required when importing as a new constitution
    description: ...                 # optional text
    principles:                      # required, ordered, at least one; the order is the editor's order
      - name: Honest                 # required text, ≤ 120 characters, unique (case-insensitive)
        comparison: Which response is more honest?   # required text: the question the judge answers
        critique_request: ...        # optional text (Constitutional AI critique), default ""
        revision_request: ...        # optional text (Constitutional AI revision), default ""
        weight: 1.0                  # optional number ≥ 0, default 1.0: sampling weight per comparison
        category: honesty            # optional: helpfulness | harmlessness | honesty | style | custom (default)
        enabled: true                # optional bool, default true
    judge_template: "...{principle}...{conversation}...{response_a}...{response_b}...{answer_format}..."
                                     # optional, default training.judge_prompt.DEFAULT_TEMPLATE; {examples} optional
    few_shot_examples:               # optional list
      - prompt: ...                  # required text
        response_a: ...              # required text
        response_b: ...              # required text
        preferred: A                 # required: "A" or "B"
        rationale: ...               # optional text, default ""
    allow_ties: false                # optional bool: the judge may answer "Preferred: tie" (default false)
    source: {...}                    # written by export (constitution, version, content_hash, author, note,
                                     # created_at); informational, ignored on import

Unknown keys are errors (a typo such as ``wieght`` would otherwise be dropped silently). Exporting a
version and importing the file gives the same content hash, name and description: the round trip is
lossless. Errors name the field by path with 0-based indexes, e.g. ``principles[2].weight: must be ≥ 0
(line 14)``; an invalid file saves nothing.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml
from django.db import transaction

from constitutions import validation
from constitutions.models import PRINCIPLE_FIELDS, Category, Constitution, ConstitutionVersion
from rlaif_site.untrusted import bidi_control_error
from training.judge_prompt import DEFAULT_TEMPLATE

SCHEMA_VERSION = 1
FORMATS = ("yaml", "json")
CONTENT_TYPES = {"yaml": "application/yaml; charset=utf-8", "json": "application/json; charset=utf-8"}
TOP_LEVEL_KEYS = (
    "schema_version", "name", "description", "principles", "judge_template", "few_shot_examples", "allow_ties",
    "source",
)
MAX_FILE_BYTES = 2 * 1024 * 1024
# libyaml's C parser and emitter when PyYAML was built with it (about 10x faster), else the pure-Python ones.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class ConstitutionFileError(ValueError):
    """A constitution file could not be read or does not follow the schema.

    Attributes:
        errors: one message per problem, each naming the field path and, when known, the line.
    """

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = list(errors)


@dataclass
class ConstitutionFile:
    """The validated content of a constitution file, with defaults filled in."""

    name: str | None
    description: str
    principles: list[dict]
    judge_template: str = DEFAULT_TEMPLATE
    few_shot_examples: list[dict] = field(default_factory=list)
    allow_ties: bool = False


# --- export -----------------------------------------------------------------------------------------


def export_data(version: ConstitutionVersion) -> dict:
    """The schema's tree for ``version`` (plain dicts, lists, str, float, bool)."""
    constitution = version.constitution
    return {
        "schema_version": SCHEMA_VERSION,
        "name": constitution.name,
        "description": constitution.description,
        "principles": [
            {f: (float(p[f]) if f == "weight" else p[f]) for f in PRINCIPLE_FIELDS} for p in version.principle_dicts()
        ],
        "judge_template": version.judge_template,
        "few_shot_examples": [dict(ex) for ex in version.few_shot_examples],
        "allow_ties": version.allow_ties,
        "source": {
            "constitution": constitution.name,
            "version": version.number,
            "content_hash": version.content_hash,
            "author": version.author.get_username() if version.author else None,
            "note": version.note,
            "created_at": version.created_at.isoformat(),
        },
    }


class _Dumper(_SafeDumper):
    """Writes multi-line text as YAML literal blocks (``|``) so templates stay readable; PyYAML falls back to
    a quoted style by itself where a block cannot hold the text exactly (e.g. trailing spaces)."""


def _represent_str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dumps(version: ConstitutionVersion, fmt: str) -> str:
    """``version`` as a YAML or JSON document.

    Raises:
        ValueError: ``fmt`` is not one of :data:`FORMATS`.
    """
    data = export_data(version)
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if fmt == "yaml":
        return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    raise ValueError(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")


# --- import -----------------------------------------------------------------------------------------


def detect_format(filename: str = "", text: str = "") -> str:
    """``"json"`` for a ``.json`` file (or text starting with ``{``), else ``"yaml"``."""
    lowered = filename.lower()
    if lowered.endswith(".json"):
        return "json"
    if lowered.endswith((".yaml", ".yml")):
        return "yaml"
    return "json" if text.lstrip().startswith("{") else "yaml"


def _line_map(text: str) -> dict[tuple, int]:
    """Best effort: the 1-based line of every value in the document, keyed by its path."""
    lines: dict[tuple, int] = {}

    def walk(node, path: tuple) -> None:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    lines[path + (key.value,)] = key.start_mark.line + 1
                    walk_children(value, path + (key.value,))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, path + (index,))

    def walk_children(node, path: tuple) -> None:
        line = lines[path]
        walk(node, path)
        lines[path] = line  # a key's own line beats the line its block value starts on

    try:
        root = yaml.compose(text, Loader=_SafeLoader)
    except yaml.YAMLError:
        return {}
    if root is not None:
        walk(root, ())
    return lines


def _path_text(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


class _Collector:
    """Errors as (path, message); lines are looked up only when there are errors to report."""

    def __init__(self) -> None:
        self.errors: list[tuple[tuple, str]] = []

    def add(self, path: tuple, message: str) -> None:
        self.errors.append((path, message))

    def messages(self, text: str) -> list[str]:
        lines = _line_map(text)
        out = []
        for path, message in self.errors:
            line = None
            for cut in range(len(path), -1, -1):  # nearest ancestor with a known line
                line = lines.get(path[:cut])
                if line is not None:
                    break
            suffix = f" (line {line})" if line is not None else ""
            out.append(f"{_path_text(path)}: {message}{suffix}")
        return out


def _check_keys(item: Mapping, allowed: tuple, path: tuple, out: _Collector) -> None:
    for key in item:
        if key not in allowed:
            out.add(path + (str(key),), f"unknown field; expected one of {', '.join(allowed)}")


def _optional_text(data: Mapping, key: str, out: _Collector, default: str = "") -> str:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        out.add((key,), "must be text")
        return default
    return value


def _principles(raw, out: _Collector) -> list[dict]:
    if not isinstance(raw, list):
        out.add(("principles",), "is required and must be a list of principles")
        return []
    principles = []
    for index, item in enumerate(raw):
        path = ("principles", index)
        if not isinstance(item, Mapping):
            out.add(path, "must be a mapping with name, comparison, ...")
            continue
        _check_keys(item, PRINCIPLE_FIELDS, path, out)
        for fname, message in validation.principle_errors(item).items():
            out.add(path + (fname,), message)
        weight = item.get("weight")
        principles.append({
            "name": item.get("name"),
            "comparison": item.get("comparison"),
            "critique_request": item.get("critique_request") or "",
            "revision_request": item.get("revision_request") or "",
            "weight": 1.0 if weight is None or isinstance(weight, bool) else weight,
            "category": item.get("category") or Category.CUSTOM.value,
            "enabled": True if item.get("enabled") is None else item.get("enabled"),
        })
    if not out.errors:
        for index, fname, message in validation.principle_set_errors(principles):
            out.add(("principles",) if index is None else ("principles", index, fname), message)
    return principles


def _examples(raw, out: _Collector) -> list[dict]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        out.add(("few_shot_examples",), "must be a list of examples")
        return []
    examples = []
    for index, item in enumerate(raw):
        path = ("few_shot_examples", index)
        if not isinstance(item, Mapping):
            out.add(path, "must be a mapping with prompt, response_a, response_b, preferred, rationale")
            continue
        _check_keys(item, validation.EXAMPLE_FIELDS, path, out)
        for fname, message in validation.example_errors(item).items():
            out.add(path + (fname,), message)
        examples.append({f: item.get(f) or "" for f in validation.EXAMPLE_FIELDS})
    return examples


def loads(text: str | bytes, fmt: str | None = None, filename: str = "") -> ConstitutionFile:
    """Parse and validate a constitution file.

    Args:
        text: the document (bytes are decoded as UTF-8).
        fmt: ``"yaml"`` or ``"json"``; None detects it with :func:`detect_format`.
        filename: used to detect the format and in messages.

    Raises:
        ConstitutionFileError: with every problem found (syntax with line and column, or field paths).
    """
    where = f"{filename}: " if filename else ""
    if isinstance(text, bytes):
        if len(text) > MAX_FILE_BYTES:
            raise ConstitutionFileError([f"{where}file is larger than {MAX_FILE_BYTES // 1024} KiB"])
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ConstitutionFileError([f"{where}not UTF-8 text (byte {exc.start})"]) from exc
    fmt = fmt or detect_format(filename, text)
    try:
        if fmt == "json":
            data = json.loads(text)
        elif fmt == "yaml":
            data = yaml.load(text, Loader=_SafeLoader)  # noqa: S506 (a safe loader)
        else:
            raise ConstitutionFileError([f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}"])
    except json.JSONDecodeError as exc:
        message = f"{where}invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        raise ConstitutionFileError([message]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConstitutionFileError([f"{where}invalid YAML{at}: {problem}"]) from exc
    if not isinstance(data, Mapping):
        raise ConstitutionFileError([f"{where}the document must be a mapping with name, principles, ..."])

    out = _Collector()
    _check_keys(data, TOP_LEVEL_KEYS, (), out)
    if "schema_version" in data and data["schema_version"] != SCHEMA_VERSION:
        out.add(("schema_version",), f"must be {SCHEMA_VERSION} (got {data['schema_version']!r})")
    name = data.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        out.add(("name",), "must be non-empty text")
        name = None
    elif name is not None and len(name) > validation.CONSTITUTION_NAME_MAX:
        out.add(("name",), f"must be at most {validation.CONSTITUTION_NAME_MAX} characters")
    description = _optional_text(data, "description", out)
    template = _optional_text(data, "judge_template", out, default=DEFAULT_TEMPLATE)
    if "judge_template" in data and isinstance(data["judge_template"], str):
        problem = validation.template_error(template)
        if problem:
            out.add(("judge_template",), problem)
    examples = _examples(data.get("few_shot_examples"), out)
    principles = _principles(data.get("principles"), out)
    allow_ties = data.get("allow_ties", False)
    if not isinstance(allow_ties, bool):
        out.add(("allow_ties",), "must be true or false")
        allow_ties = False
    if out.errors:
        raise ConstitutionFileError([where + e for e in out.messages(text)])
    return ConstitutionFile(
        name=name.strip() if name else None, description=description, principles=principles,
        judge_template=template, few_shot_examples=examples, allow_ties=allow_ties,
    )


def import_file(
    parsed: ConstitutionFile, *, author, into: Constitution | None = None, name: str = "", note: str = ""
) -> tuple[ConstitutionVersion, bool]:
    """Save a parsed file: as a new constitution (version 1), or as the next version of ``into``.

    Args:
        name: overrides the file's name for a new constitution.
        note: the version note (default: "Imported from a file").

    Returns:
        ``(version, created)``; ``created`` is False when ``into``'s latest version already has this content.

    Raises:
        ConstitutionFileError: a new constitution without a name, or with the name of an existing one.
    """
    note = note or "Imported from a file"
    with transaction.atomic():
        if into is None:
            final_name = (name or parsed.name or "").strip()
            if not final_name:
                raise ConstitutionFileError(["name: is required to import as a new constitution"])
            if bidi_control_error(final_name):
                raise ConstitutionFileError([f"name: {bidi_control_error(final_name)}"])
            if Constitution.objects.filter(name=final_name).exists():
                raise ConstitutionFileError([
                    f"name: a constitution named {final_name!r} already exists; give another name or import the "
                    "file as a new version of it"
                ])
            into = Constitution.objects.create(name=final_name, description=parsed.description, created_by=author)
        return ConstitutionVersion.objects.create_version(
            into, author=author, principles=parsed.principles, judge_template=parsed.judge_template,
            few_shot_examples=parsed.few_shot_examples, note=note, allow_ties=parsed.allow_ties,
        )

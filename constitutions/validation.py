"""Rules a constitution's content must satisfy, shared by the editor form and the file importer.

Each check takes plain Python values (as parsed from a form or a YAML/JSON file) and returns error
messages keyed by field, so callers can place them next to the field (form) or prefix them with a path
(``principles[2].weight``, file import). Nothing here touches the database.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from constitutions.models import Category, Constitution, ConstitutionVersion, Principle
from rlaif_site.untrusted import bidi_control_error
from training import judge_prompt

PRINCIPLE_NAME_MAX = Principle._meta.get_field("name").max_length
CONSTITUTION_NAME_MAX = Constitution._meta.get_field("name").max_length
NOTE_MAX = ConstitutionVersion._meta.get_field("note").max_length
CATEGORIES = tuple(Category.values)
PREFERRED_CHOICES = judge_prompt.VERDICT_LABELS  # ("A", "B")
EXAMPLE_FIELDS = ("prompt", "response_a", "response_b", "preferred", "rationale")


def template_error(template: str) -> str | None:
    """The problem with a judge template as one sentence naming the bad placeholders, or None when valid."""
    try:
        judge_prompt.validate_template(template)
    except judge_prompt.TemplateError as exc:
        return str(exc)
    return None


def principle_errors(principle: Mapping) -> dict[str, str]:
    """Field errors of one principle given as plain values.

    Args:
        principle: keys of :data:`constitutions.models.PRINCIPLE_FIELDS`; ``name`` and ``comparison`` are
            required strings, ``critique_request``/``revision_request`` optional strings, ``weight`` a number
            ≥ 0 (not a bool), ``category`` one of :data:`CATEGORIES`, ``enabled`` a bool.

    Returns:
        ``{field: message}``, empty when the principle is valid.
    """
    errors: dict[str, str] = {}
    for field in ("name", "comparison"):
        value = principle.get(field)
        if not isinstance(value, str) or not value.strip():
            errors[field] = "is required and must be non-empty text"
    name = principle.get("name")
    if "name" not in errors and len(name) > PRINCIPLE_NAME_MAX:
        errors["name"] = f"must be at most {PRINCIPLE_NAME_MAX} characters (it has {len(name)})"
    if "name" not in errors and bidi_control_error(name):
        errors["name"] = bidi_control_error(name)
    for field in ("critique_request", "revision_request"):
        value = principle.get(field)
        if value is not None and not isinstance(value, str):
            errors[field] = "must be text"
    weight = principle.get("weight")
    if weight is not None:
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            errors["weight"] = "must be a number"
        elif weight != weight or weight in (float("inf"), float("-inf")):
            errors["weight"] = "must be a finite number"
        elif weight < 0:
            errors["weight"] = "must be ≥ 0"
    category = principle.get("category")
    if category is not None and category not in CATEGORIES:
        errors["category"] = f"must be one of {', '.join(CATEGORIES)} (got {category!r})"
    enabled = principle.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        errors["enabled"] = "must be true or false"
    return errors


def principle_set_errors(principles: Sequence[Mapping]) -> list[tuple[int | None, str | None, str]]:
    """Errors of the ordered principle list as a whole (assumes each principle passed :func:`principle_errors`).

    A run samples one enabled principle per comparison with probability proportional to its weight, so at
    least one enabled principle with a weight above 0 is needed; names must be unique (case-insensitive)
    so that judgments and reports name principles unambiguously.

    Returns:
        ``(index, field, message)`` triples: ``index`` is the 0-based position of the offending principle
        and ``field`` its field, both None for an error of the whole list.
    """
    if not principles:
        return [(None, None, "at least one principle is needed")]
    errors: list[tuple[int | None, str | None, str]] = []
    seen: dict[str, int] = {}
    for index, p in enumerate(principles):
        key = str(p.get("name", "")).strip().casefold()
        if key in seen:
            errors.append((index, "name", f"{p['name']!r} is already the name of principle {seen[key] + 1}; "
                           "names must be unique"))
        else:
            seen[key] = index
    if not any(
        (p.get("enabled") is None or p.get("enabled")) and (p.get("weight") is None or p.get("weight") > 0)
        for p in principles
    ):
        errors.append((None, None, "at least one principle must be enabled and have a weight above 0"))
    return errors


def example_errors(example: Mapping) -> dict[str, str]:
    """Field errors of one few-shot example (keys of :data:`EXAMPLE_FIELDS`; ``rationale`` optional)."""
    errors: dict[str, str] = {}
    for field in ("prompt", "response_a", "response_b"):
        value = example.get(field)
        if not isinstance(value, str) or not value.strip():
            errors[field] = "is required and must be non-empty text"
    if example.get("preferred") not in PREFERRED_CHOICES:
        errors["preferred"] = f"must be \"A\" or \"B\" (got {example.get('preferred')!r})"
    rationale = example.get("rationale")
    if rationale is not None and not isinstance(rationale, str):
        errors["rationale"] = "must be text"
    return errors

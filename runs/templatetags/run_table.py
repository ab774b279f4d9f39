"""Template helpers of the run table (:mod:`runs.summary`): cell formatting and sort links."""
from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def table_cell(value, fmt: str) -> str:
    """A run-table cell as text: ``pct`` a share as ``62.5%``, ``money`` two decimals, ``num`` up to four
    significant digits, ``text`` as is; ``—`` when there is no value."""
    if value is None or value == "":
        return "—"
    if fmt == "text":
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if fmt == "pct":
        return f"{number:.1%}"
    if fmt == "money":
        return f"{number:.2f}"
    return f"{number:.4g}"


@register.simple_tag
def sort_link(sort_query: str, current: str, key: str) -> str:
    """The query string that sorts the table by ``key``: descending first for metrics (best on top), and
    the other direction when the table is already sorted by it."""
    target = key if current == f"-{key}" else f"-{key}"
    prefix = f"{sort_query}&" if sort_query else ""
    return f"?{prefix}sort={target}"


@register.filter
def sort_mark(current: str, key: str) -> str:
    """``▼``/``▲`` when the table is sorted by ``key`` (descending/ascending), else empty."""
    if current == f"-{key}":
        return "▼"
    if current == key:
        return "▲"
    return ""

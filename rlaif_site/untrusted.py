"""Untrusted text (model outputs, imported data, names people typed) in sinks that are not escaped HTML.

Django templates escape HTML, but three other sinks interpret text:

* **plotly** renders a subset of HTML in every label (``<a href>``, ``<b>``, ``<br>``): a principle named
  ``<a href="…">`` becomes a live link inside a chart. :func:`plotly_safe` escapes every string of a figure
  (plotly shows ``&lt;`` as ``<``), so chart text is always shown as typed.
* **spreadsheets** run a CSV cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return as a
  formula (OWASP "CSV injection"). :func:`csv_cell` prefixes such a cell with ``'``, as OWASP recommends.
* **bidirectional controls** (U+202A–U+202E, U+2066–U+2069, U+200E/U+200F, U+061C) reorder the text around
  them, so a name can be made to read as another (``admin\u202egnp.exe``). :func:`strip_bidi_controls`
  removes them from names and labels; pages also isolate untrusted text with ``unicode-bidi: isolate``.
"""
from __future__ import annotations

import html
import re

BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def strip_bidi_controls(text):
    """``text`` without bidirectional control characters (non-strings are returned unchanged)."""
    return BIDI_CONTROLS.sub("", text) if isinstance(text, str) else text


def plotly_safe(figure):
    """A copy of a plotly figure (plain dicts/lists) whose every string is HTML-escaped and free of bidi
    controls, so plotly draws user text literally. Keys are left alone; numbers and booleans pass through."""
    if isinstance(figure, str):
        return html.escape(strip_bidi_controls(figure), quote=False)
    if isinstance(figure, list | tuple):
        return [plotly_safe(item) for item in figure]
    if isinstance(figure, dict):
        return {key: plotly_safe(value) for key, value in figure.items()}
    return figure


def csv_cell(value):
    """A CSV cell that no spreadsheet runs as a formula: text starting with ``= + - @``, tab or CR gets a
    leading ``'`` (OWASP); other values are returned unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_row(row: dict) -> dict:
    """:func:`csv_cell` applied to every value of a ``csv.DictWriter`` row."""
    return {key: csv_cell(value) for key, value in row.items()}


def bidi_control_error(text) -> str | None:
    """Why a name cannot be used, when it holds a bidirectional control character; else None."""
    if not isinstance(text, str):
        return None
    match = BIDI_CONTROLS.search(text)
    if not match:
        return None
    return (f"contains the invisible direction control U+{ord(match.group()):04X} at character {match.start() + 1}, "
            "which can make a name read as another; remove it")


def validate_no_bidi_controls(value) -> None:
    """Django validator for names: refuses bidirectional control characters (see :func:`bidi_control_error`)."""
    from django.core.exceptions import ValidationError

    error = bidi_control_error(value)
    if error:
        raise ValidationError(f"This name {error}.", code="bidi_control")

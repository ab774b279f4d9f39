"""NUL characters (U+0000) in text: PostgreSQL cannot store them in ``text`` or ``jsonb`` (psycopg raises
``DataError``/``ValueError``), so a NUL from an imported file, a model's completion, a judge's rationale, a form
or a query string would fail the write or the query with a 500.

One rule everywhere: a NUL is replaced by U+FFFD (the Unicode replacement character, which marks "something
that could not be represented was here" in the stored text itself). The database fields of ``runs``
(:mod:`runs.fields`) apply it to every value they write or look up; :class:`NulRequestMiddleware` refuses
requests whose query string or form data hold one, with a 400 page naming the parameter; the importer counts
replacements per row and lists them in the import report.
"""
from __future__ import annotations

from typing import Any

from django.http import HttpResponseBadRequest
from django.utils.html import escape

NUL = "\x00"
REPLACEMENT = "\ufffd"


def replace_nul(value: Any) -> Any:
    """``value`` with every NUL in its strings replaced by U+FFFD; dicts (keys too), lists and tuples are
    walked. Other values are returned unchanged; the original is never modified.

    Iterative (an explicit stack), so a deeply nested value cannot raise ``RecursionError`` here.
    """
    if isinstance(value, str):
        return value.replace(NUL, REPLACEMENT) if NUL in value else value
    if not isinstance(value, dict | list | tuple) or not has_nul(value):
        return value
    root: list = [value]
    stack: list[tuple[Any, Any, Any]] = [(root, 0, value)]  # (parent container, key, original child)
    while stack:
        parent, key, item = stack.pop()
        if isinstance(item, str):
            parent[key] = item.replace(NUL, REPLACEMENT)
        elif isinstance(item, dict):
            copy = {}
            for k, v in item.items():
                copy[k.replace(NUL, REPLACEMENT) if isinstance(k, str) else k] = v
            parent[key] = copy
            stack.extend((copy, k, v) for k, v in copy.items())
        elif isinstance(item, list | tuple):
            copy_list = list(item)
            parent[key] = copy_list
            stack.extend((copy_list, i, v) for i, v in enumerate(copy_list))
    return root[0]


def count_nul(value: Any) -> int:
    """How many NUL characters the strings (and dict keys) inside ``value`` hold; iterative."""
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            count += item.count(NUL)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return count


def has_nul(value: Any) -> bool:
    """True when a string inside ``value`` holds a NUL."""
    return count_nul(value) > 0


class NulRequestMiddleware:
    """Refuse a request whose query string or form data hold a NUL, with a 400 page naming the parameter,
    before any view passes it to the database (where PostgreSQL would raise and the user would get a 500).

    File uploads are not refused here: their content is checked by whoever reads them (the importer replaces
    and counts NULs).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        problem = self.find_nul(request)
        if problem:
            return HttpResponseBadRequest(
                f"<h1>Bad request</h1><p>{escape(problem)}: it holds a NUL character (U+0000), which this "
                "application does not accept. Remove it and try again.</p>",
                content_type="text/html; charset=utf-8",
            )
        return self.get_response(request)

    @staticmethod
    def find_nul(request) -> str:
        """"" when clean, else what holds the NUL (``query parameter 'q'``, ``form field 'note'``)."""
        if NUL in request.path:
            return "the address"
        if "%00" in request.META.get("QUERY_STRING", "") or NUL in request.META.get("QUERY_STRING", ""):
            for key, values in request.GET.lists():
                if NUL in key or any(NUL in v for v in values):
                    return f"query parameter {key.replace(NUL, REPLACEMENT)!r}"
            return "the query string"
        if request.method in ("POST", "PUT", "PATCH"):
            try:
                form = request.POST
            except Exception:  # noqa: BLE001 - a malformed body is the view's (and Django's) business
                return ""
            for key, values in form.lists():
                if NUL in key or any(isinstance(v, str) and NUL in v for v in values):
                    return f"form field {key.replace(NUL, REPLACEMENT)!r}"
        return ""

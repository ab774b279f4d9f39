"""Text search over a run's judged pairs: the prompt, both responses and the judge's rationale.

On PostgreSQL it is full-text search (``django.contrib.postgres.search``: a ``SearchVector`` over the four texts
with the ``english`` configuration, queried in web-search syntax, so "refund policy" finds "refunds" and
``"exact phrase"``, ``-word`` and ``or`` work). On other databases (SQLite) every word of the query must occur
somewhere in the four texts, case-insensitively (``icontains``): no stemming, no operators.
"""
from __future__ import annotations

from django.db import connection
from django.db.models import Q, QuerySet

#: The most characters of a query that are used.
MAX_QUERY = 200
#: The most words the portable fallback matches (each adds four LIKE clauses).
MAX_WORDS = 8
#: The texts searched, as lookups from a judgment.
FIELDS = ("comparison__prompt__text", "comparison__completion_a__text", "comparison__completion_b__text",
          "rationale")


def full_text_available() -> bool:
    """Whether the database does full-text search (PostgreSQL)."""
    return connection.vendor == "postgresql"


def search_judgments(judgments: QuerySet, query: str) -> QuerySet:
    """``judgments`` (of :class:`runs.models.Judgment`) whose prompt, responses or rationale match ``query``.

    Args:
        query: what the user typed; blank returns ``judgments`` unchanged; cut at :data:`MAX_QUERY` characters.

    Returns:
        A filtered queryset (combine it with the pair browser's other filters).
    """
    query = " ".join(query.split())[:MAX_QUERY]
    if not query:
        return judgments
    if full_text_available():
        from django.contrib.postgres.search import SearchQuery, SearchVector

        vector = SearchVector(*FIELDS, config="english")
        return judgments.annotate(search_text=vector).filter(
            search_text=SearchQuery(query, search_type="websearch", config="english"))
    for word in query.split()[:MAX_WORDS]:
        any_field = Q()
        for name in FIELDS:
            any_field |= Q(**{f"{name}__icontains": word})
        judgments = judgments.filter(any_field)
    return judgments

"""Where the judge-prompt preview finds prompts to pick from, through a registered source.

Prompt sets live in another app. So that constitutions know nothing of runs, that app registers its source here
(``runs.apps.RunsConfig.ready``); without a source the preview offers only a typed prompt.

A source is a :class:`PromptSource`: ``prompt_sets()`` returns a queryset of the sets to offer (each with ``pk``
and ``name``); ``prompts(prompt_set_id)`` returns a queryset of that set's prompts in order (each with ``pk``,
``index``, ``text`` and ``conversation``), an empty one for ``None``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import QuerySet


@dataclass(frozen=True)
class PromptSource:
    """The two queries the preview asks of the app that owns prompt sets."""

    prompt_sets: Callable[[], QuerySet]
    prompts: Callable[[int | None], QuerySet]


_SOURCE: list[PromptSource] = []


def register(source: PromptSource) -> PromptSource:
    """Make ``source`` the preview's source of prompts (at most one: a later registration replaces it)."""
    _SOURCE[:] = [source]
    return source


def prompt_source() -> PromptSource | None:
    """The registered source of prompts, or None."""
    return _SOURCE[0] if _SOURCE else None

"""Principle lint shown on a constitution version's page and in the editor, from registered providers.

The figures behind the lint come from the judgments runs made under a version's principles, which live in
another app. So that constitutions know nothing of runs, that app registers a provider here
(``runs.apps.RunsConfig.ready``); this module only merges what providers return.

A provider takes a :class:`~constitutions.models.ConstitutionVersion` and returns ``{principle id: {"figures":
{...}, "flags": [{"kind", "detail", "url"}]}}`` (see :mod:`training.constitution_lint`).
"""
from __future__ import annotations

from collections.abc import Callable

PROVIDERS: list[Callable] = []

#: Flag kind -> the short label shown beside a principle.
FLAG_LABELS = {"noise": "behaves like noise", "never_decides": "never decides", "duplicate": "duplicates another"}


def register(provider: Callable) -> Callable:
    """Add a lint provider (idempotent); returns it, so it can be used as a decorator."""
    if provider not in PROVIDERS:
        PROVIDERS.append(provider)
    return provider


def principle_lint(version) -> dict[int, dict]:
    """Every provider's lint for ``version``'s principles, merged per principle id."""
    merged: dict[int, dict] = {}
    for provider in PROVIDERS:
        for principle_id, entry in provider(version).items():
            target = merged.setdefault(principle_id, {"figures": {}, "flags": []})
            target["figures"].update(entry.get("figures", {}))
            target["flags"].extend(
                {**flag, "label": FLAG_LABELS.get(flag["kind"], flag["kind"])} for flag in entry.get("flags", [])
            )
    return merged

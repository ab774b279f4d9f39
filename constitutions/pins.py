"""What pins a constitution version (so that it can never be deleted), from registered providers.

Runs pin the version they use, and they live in another app. So that constitutions know nothing of runs, that
app registers a provider here (``runs.apps.RunsConfig.ready``); this module only adds up what providers return.

A provider is a :class:`PinProvider`: ``counts(version_ids)`` returns ``{version id: number of pins}`` (versions
without pins may be left out); ``latest(version, limit)`` returns the newest pins of ``version`` as
:class:`Pin` items, at most ``limit``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Pin:
    """One thing that pins a version, as the version's page lists it: its name and its page (or "")."""

    label: str
    url: str = ""


@dataclass(frozen=True)
class PinProvider:
    """The two queries constitutions ask of an app whose objects pin versions."""

    counts: Callable[[list[int]], dict[int, int]]
    latest: Callable[..., list[Pin]]


PROVIDERS: list[PinProvider] = []


def register(provider: PinProvider) -> PinProvider:
    """Add a pin provider (idempotent); returns it."""
    if provider not in PROVIDERS:
        PROVIDERS.append(provider)
    return provider


def pin_counts(version_ids: Iterable[int]) -> dict[int, int]:
    """``{version id: number of pins}`` over every provider, 0 for an unpinned version."""
    ids = list(version_ids)
    counts = dict.fromkeys(ids, 0)
    for provider in PROVIDERS:
        for version_id, n in provider.counts(ids).items():
            counts[version_id] = counts.get(version_id, 0) + n
    return counts


def is_pinned(version) -> bool:
    """Whether anything pins ``version``."""
    return pin_counts([version.pk])[version.pk] > 0


def latest_pins(version, limit: int = 50) -> list[Pin]:
    """The newest pins of ``version`` from every provider, at most ``limit`` from each."""
    return [pin for provider in PROVIDERS for pin in provider.latest(version, limit)]

"""A registry of pluggable backends: one table maps a config's ``backend`` name to the class that implements
it, and every other layer asks the table (and the class's declared capabilities) instead of comparing names.

The table holds ``"module:Class"`` paths, imported on first use, so that asking a question loads nothing
heavy (the backend modules import torch, transformers and openai only inside their functions).
:data:`training.judges.JUDGE_BACKENDS` and :data:`training.generation_backends.GENERATION_BACKENDS` are the
two registries.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownBackend(ValueError):
    """A config names a backend no registry entry has (a :class:`ValueError`, as config errors are)."""


class BackendRegistry(Generic[T]):
    """Backend names mapped to their implementing classes.

    Args:
        field: the config field that names the backend (``judge.backend``), used in error messages.
        entries: ``name -> "module:Class"``, in the order choices are listed.
    """

    def __init__(self, field: str, entries: Mapping[str, str]) -> None:
        self.field = field
        self._entries = dict(entries)
        self._loaded: dict[str, type[T]] = {}

    @property
    def names(self) -> tuple[str, ...]:
        """The registered backend names, in registration order."""
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> type[T]:
        """The class registered under ``name`` (imported on first use).

        Raises:
            UnknownBackend: no backend of that name is registered.
        """
        if name not in self._entries:
            raise UnknownBackend(f"{self.field}: unknown backend {name!r} ({', '.join(self._entries)})")
        if name not in self._loaded:
            module, _, attribute = self._entries[name].partition(":")
            self._loaded[name] = getattr(importlib.import_module(module), attribute)
        return self._loaded[name]

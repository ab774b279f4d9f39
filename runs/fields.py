"""Text and JSON model fields that never send a NUL (U+0000) to the database.

PostgreSQL refuses NUL in ``text`` and ``jsonb`` values; these fields replace it with U+FFFD in
``get_prep_value``, which Django calls for every write (``save``, ``bulk_create``, ``update``,
``bulk_update``) and for lookups (``filter(text__contains=...)``), so no write path or query can fail on it.
See :mod:`rlaif_site.nul` for the rule and the request middleware.
"""
from __future__ import annotations

from django.db import models

from rlaif_site.nul import replace_nul


class NulFreeTextField(models.TextField):
    """A ``TextField`` whose values have NUL replaced by U+FFFD before they reach the database."""

    def get_prep_value(self, value):
        return replace_nul(super().get_prep_value(value))


class NulFreeCharField(models.CharField):
    """A ``CharField`` whose values have NUL replaced by U+FFFD before they reach the database."""

    def get_prep_value(self, value):
        return replace_nul(super().get_prep_value(value))


class NulFreeJSONField(models.JSONField):
    """A ``JSONField`` whose strings (keys included, at any depth) have NUL replaced by U+FFFD before they
    reach the database (PostgreSQL's ``jsonb`` refuses the ``\\u0000`` escape)."""

    def get_prep_value(self, value):
        return replace_nul(super().get_prep_value(value))

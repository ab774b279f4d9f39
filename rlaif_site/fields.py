"""Model fields that hold untrusted text, shared by every app.

* **NUL-free** fields: PostgreSQL refuses NUL (U+0000) in ``text`` and ``jsonb`` values; these fields replace it
  with U+FFFD in ``get_prep_value``, which Django calls for every write (``save``, ``bulk_create``, ``update``,
  ``bulk_update``) and for lookups (``filter(text=...)``), so no write path or query can fail on it. See
  :mod:`rlaif_site.nul` for the rule and the request middleware.
* **Redacted** fields (NUL-free too): text that may quote a secret — an endpoint's error echoing the API key, a
  traceback holding a database URL, a model's raw output — has every secret value replaced by
  ``[redacted:NAME]`` (:func:`training.redaction.redact`) before it is stored, whatever wrote it.
"""
from __future__ import annotations

from django.db import models

from rlaif_site.nul import replace_nul
from training.redaction import redact, redact_json


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


class RedactedTextField(NulFreeTextField):
    """A NUL-free ``TextField`` that never stores a secret value (errors, logs, rationales, model text)."""

    def get_prep_value(self, value):
        return super().get_prep_value(redact(value))


class RedactedCharField(NulFreeCharField):
    """A NUL-free ``CharField`` that never stores a secret value (progress messages)."""

    def get_prep_value(self, value):
        return super().get_prep_value(redact(value))


class RedactedJSONField(NulFreeJSONField):
    """A NUL-free ``JSONField`` whose strings never hold a secret value (raw judge outputs)."""

    def get_prep_value(self, value):
        return super().get_prep_value(redact_json(value))

"""Django's error reports (the DEBUG page, the 500 e-mail/log report) without secret values.

Django hides settings whose *names* look secret (``PASSWORD``, ``SECRET_KEY``), but not a password inside
``REDIS_URL`` or ``RQ_QUEUES``, nor ``DATABASE_URL`` in the request's environment under ``runserver``, nor a
secret quoted in an exception's message or a local variable. These classes remove every secret *value*
(:func:`training.redaction.secret_values`) wherever it appears: settings, request metadata, frame variables,
and finally the rendered page itself.
"""
from __future__ import annotations

import html

from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from training.redaction import redact, secret_values


def redact_page(text: str) -> str:
    """``text`` with each secret value replaced, in its plain and its HTML-escaped spelling."""
    text = redact(text)
    for value, name in secret_values().items():
        escaped = html.escape(value)
        if escaped != value and escaped in text:
            text = text.replace(escaped, f"[redacted:{name}]")
    return text


class RedactingExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, plus redaction of secret values inside any string it lets through."""

    def cleanse_setting(self, key, value):
        value = super().cleanse_setting(key, value)
        return redact(value) if isinstance(value, str) else value

    def get_safe_request_meta(self, request):
        return {key: redact(value) if isinstance(value, str) else value
                for key, value in super().get_safe_request_meta(request).items()}

    def get_traceback_frame_variables(self, request, tb_frame):
        return [(name, redact(value) if isinstance(value, str) else value)
                for name, value in super().get_traceback_frame_variables(request, tb_frame)]


class RedactingExceptionReporter(ExceptionReporter):
    """Renders Django's report as usual, then removes any secret value left on it (repr'd values included)."""

    def get_traceback_html(self):
        return redact_page(str(super().get_traceback_html()))

    def get_traceback_text(self):
        return redact_page(str(super().get_traceback_text()))

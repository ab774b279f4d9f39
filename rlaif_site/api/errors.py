"""API errors as JSON with the field path, as the forms give them:
``{"detail": "summary", "errors": [{"path": "judge.model", "message": "may not be empty"}]}``."""
from __future__ import annotations

from typing import Any

from ninja import Schema


class FieldError(Schema):
    path: str = ""
    message: str


class ErrorOut(Schema):
    detail: str
    errors: list[FieldError] = []


class ApiError(Exception):
    """Raised by an endpoint: answered with ``status`` and :class:`ErrorOut`'s body."""

    def __init__(self, status: int, detail: str, errors: list[dict[str, str]] | None = None, *,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "errors": self.errors}


def split_path(message: str) -> dict[str, str]:
    """``"principles[2].name: is empty (line 7)"`` → ``{"path": "principles[2].name", "message": ...}``;
    a message without a leading path keeps an empty path."""
    head, sep, rest = message.partition(": ")
    if sep and head and " " not in head:
        return {"path": head, "message": rest}
    return {"path": "", "message": message}


def form_errors(form, path_of=None) -> list[dict[str, str]]:
    """A Django form's errors as ``[{"path", "message"}]``; ``path_of(field name)`` maps a field to its
    path (e.g. ``judge__model`` → ``judge.model``); non-field errors get an empty path."""
    out = []
    for name, messages in form.errors.items():
        path = "" if name == "__all__" else (path_of(name) if path_of else name)
        for message in messages:
            out.append({"path": path, "message": str(message)})
    return out

"""Which environment variables a run may read as API keys, and redaction of secret values from text.

A run's config names the *environment variable* that holds an endpoint's key (``judge.api_key_env``,
``generation.api_key_env``); the worker reads it and sends it as a bearer token to the run's ``base_url``.
An operator chooses both, so an unrestricted name would let an operator send any secret of the deployment
(``SECRET_KEY``, ``DATABASE_URL``) to any URL. Only names the deployment allows may be used:

* names that start with :data:`KEY_PREFIX` (``STUDIO_KEY_``), e.g. ``STUDIO_KEY_OPENAI``;
* names listed, comma-separated, in ``STUDIO_ALLOWED_KEY_ENVS`` (for keys a deployment already has under
  another name, e.g. ``OPENAI_API_KEY``).

Secret values never leave the worker in anything stored or shown: :func:`redact` replaces every occurrence
of a secret's value (the allowed key variables' values, ``SECRET_KEY``, and the passwords inside
``DATABASE_URL`` / ``REDIS_URL``) with ``[redacted:NAME]``. It is applied where text is stored (errors, raw
model outputs), logged (a logging filter) and shown (Django's error pages).
"""
from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Mapping
from urllib.parse import unquote, urlparse

#: Key variables must start with this prefix unless listed in ``STUDIO_ALLOWED_KEY_ENVS``.
KEY_PREFIX = "STUDIO_KEY_"
#: Comma-separated extra names a deployment allows as key variables.
ALLOW_LIST_ENV = "STUDIO_ALLOWED_KEY_ENVS"
#: Variables whose values are secret as a whole.
SECRET_VALUE_ENVS = ("SECRET_KEY", "STUDIO_ADMIN_PASSWORD")
#: Variables holding URLs whose password part is secret.
SECRET_URL_ENVS = ("DATABASE_URL", "REDIS_URL")
#: Shorter values are not redacted (they would match ordinary words and numbers).
MIN_SECRET_LEN = 6

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NEVER_ALLOWED = frozenset((*SECRET_VALUE_ENVS, *SECRET_URL_ENVS, ALLOW_LIST_ENV))


class KeyNameError(ValueError):
    """An API-key variable name that the deployment does not allow."""


def allowed_key_names(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The names listed in ``STUDIO_ALLOWED_KEY_ENVS`` (the deployment's explicit allow-list)."""
    env = os.environ if environ is None else environ
    names = (name.strip() for name in env.get(ALLOW_LIST_ENV, "").split(","))
    return frozenset(name for name in names if name and name not in _NEVER_ALLOWED)


def check_key_name(name: str, environ: Mapping[str, str] | None = None) -> None:
    """Refuse an API-key variable name the deployment does not allow.

    Args:
        name: the variable name from a run config; empty means "no key" and is always fine.
        environ: the environment to read the allow-list from (default ``os.environ``).

    Raises:
        KeyNameError: the name is malformed, names one of the deployment's own secrets, or neither starts
            with ``STUDIO_KEY_`` nor is listed in ``STUDIO_ALLOWED_KEY_ENVS``.
    """
    if not name:
        return
    if not _NAME.match(name):
        raise KeyNameError(f"{name!r} is not an environment variable name (letters, digits and _ only)")
    if name in _NEVER_ALLOWED:
        raise KeyNameError(
            f"{name} holds a secret of the deployment itself and can never be sent as an API key: "
            f"use a variable whose name starts with {KEY_PREFIX} (e.g. {KEY_PREFIX}JUDGE)"
        )
    if name.startswith(KEY_PREFIX) and len(name) > len(KEY_PREFIX):
        return
    if name in allowed_key_names(environ):
        return
    raise KeyNameError(
        f"{name} is not an allowed API-key variable: use a name that starts with {KEY_PREFIX} "
        f"(e.g. {KEY_PREFIX}JUDGE), or have the deployment list it in {ALLOW_LIST_ENV}"
    )


def read_key(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of an allowed API-key variable, or ``None`` when ``name`` is empty.

    Raises:
        KeyNameError: the name is not allowed (see :func:`check_key_name`).
        ValueError: the variable is not set.
    """
    if not name:
        return None
    env = os.environ if environ is None else environ
    check_key_name(name, env)
    value = env.get(name)
    if not value:
        raise ValueError(f"environment variable {name} (the endpoint's API key) is not set")
    return value


_PREFIX_BYTES = KEY_PREFIX.encode()


def _prefixed(env: Mapping[str, str]) -> tuple[str, ...]:
    """The ``STUDIO_KEY_*`` names of ``env``. For ``os.environ`` the raw (bytes) keys are scanned, which is a
    few microseconds, since redaction runs on every stored text and the environment can change at any time."""
    raw = getattr(env, "_data", None) if env is os.environ else None
    if isinstance(raw, dict):
        return tuple(key.decode() for key in raw if isinstance(key, bytes) and key.startswith(_PREFIX_BYTES))
    return tuple(name for name in env if name.startswith(KEY_PREFIX))


@functools.lru_cache(maxsize=32)
def _url_passwords(url: str) -> tuple[str, ...]:
    try:
        password = urlparse(url).password
    except ValueError:
        return ()
    return (password, unquote(password)) if password else ()


def secret_values(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every secret value of this process's environment, keyed by the value, naming its variable.

    Covers allowed key variables (``STUDIO_KEY_*`` and the allow-list), ``SECRET_KEY``, the admin password,
    and the passwords in ``DATABASE_URL`` / ``REDIS_URL`` (also percent-decoded, as a driver would send them).
    """
    env = os.environ if environ is None else environ
    found: dict[str, str] = {}
    for name in (*_prefixed(env), *allowed_key_names(env), *SECRET_VALUE_ENVS):
        value = env.get(name)
        if value:
            found[value] = name
    for name in SECRET_URL_ENVS:
        url = env.get(name)
        for password in _url_passwords(url) if url else ():
            found[password] = name
    return {value: name for value, name in found.items() if len(value) >= MIN_SECRET_LEN}


def redact(text, environ: Mapping[str, str] | None = None):
    """``text`` with every secret value (see :func:`secret_values`) replaced by ``[redacted:NAME]``.

    Non-string input is returned unchanged, so it can wrap optional fields. The longest secrets are replaced
    first, so a secret that contains another is removed whole.
    """
    if not isinstance(text, str) or not text:
        return text
    secrets = secret_values(environ)
    for value in sorted(secrets, key=len, reverse=True):
        if value in text:
            text = text.replace(value, f"[redacted:{secrets[value]}]")
    return text


def redact_json(data, environ: Mapping[str, str] | None = None):
    """:func:`redact` applied to every string inside plain JSON data (dicts, lists, strings)."""
    if isinstance(data, str):
        return redact(data, environ)
    if isinstance(data, list):
        return [redact_json(item, environ) for item in data]
    if isinstance(data, dict):
        return {key: redact_json(value, environ) for key, value in data.items()}
    return data


class RedactingFilter(logging.Filter):
    """A logging filter that removes secret values from a record's message and traceback.

    The message is formatted once (``msg % args``) and redacted; a traceback is formatted into
    ``exc_text`` and redacted, so every handler that uses this filter prints no secret.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is the logging module's to report
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True

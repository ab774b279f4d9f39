"""Parsing of the environment variables that configure RLAIF Studio.

Every function raises :class:`ConfigError` with a one-line message that names the variable, so
``manage.py`` can print it without a traceback.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


class ConfigError(ImproperlyConfigured):
    """An environment variable holds a value RLAIF Studio cannot use."""


_DATABASE_SCHEMES = ("sqlite", "postgres", "postgresql", "pgsql")
_REDIS_SCHEMES = ("redis", "rediss", "unix")


def database_config(url: str | None, default_sqlite: Path) -> dict:
    """Return a Django ``DATABASES['default']`` dict for ``DATABASE_URL``.

    Args:
        url: the value of ``DATABASE_URL``; empty or ``None`` selects SQLite at ``default_sqlite``.
        default_sqlite: path of the SQLite file used when no URL is set.

    Raises:
        ConfigError: the URL is malformed or names an unsupported database.
    """
    if not url:
        default_sqlite.parent.mkdir(parents=True, exist_ok=True)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(default_sqlite),
            # Workers and the web server write concurrently: wait for the lock instead of failing.
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
        }
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in _DATABASE_SCHEMES:
        raise ConfigError(
            f"DATABASE_URL must start with one of {', '.join(s + '://' for s in _DATABASE_SCHEMES)}; got {url!r}"
        )
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except Exception as exc:  # dj-database-url raises ValueError and friends with long texts
        raise ConfigError(f"DATABASE_URL is malformed ({exc}): {url!r}") from exc
    if scheme != "sqlite" and not config.get("NAME"):
        raise ConfigError(f"DATABASE_URL names no database (add /<name> at the end): {url!r}")
    if scheme == "sqlite":
        config.setdefault("OPTIONS", {}).update({"timeout": 30, "transaction_mode": "IMMEDIATE"})
    return config


def redis_url(url: str | None) -> str | None:
    """Validate ``REDIS_URL``; return it, or ``None`` for the embedded queue.

    Raises:
        ConfigError: the URL does not parse as ``redis://host[:port][/db]``, ``rediss://`` or ``unix://``.
    """
    if not url:
        return None
    parsed = urlparse(url)
    if parsed.scheme not in _REDIS_SCHEMES:
        raise ConfigError(f"REDIS_URL must start with redis://, rediss:// or unix://; got {url!r}")
    try:
        parsed.port  # noqa: B018 - raises ValueError on a non-numeric port
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL has a bad port: {url!r}") from exc
    if parsed.scheme != "unix" and not parsed.hostname:
        raise ConfigError(f"REDIS_URL names no host: {url!r}")
    db = parsed.path.lstrip("/")
    if parsed.scheme != "unix" and db and not db.isdigit():
        raise ConfigError(f"REDIS_URL database must be a number (redis://host:6379/0): {url!r}")
    return url


def boolean(name: str, default: bool) -> bool:
    """Read a yes/no variable; accepts 1/0, true/false, yes/no, on/off.

    Raises:
        ConfigError: any other value.
    """
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false; got {raw!r}")


def csv_list(name: str, default: list[str]) -> list[str]:
    """Read a comma-separated variable into a list of stripped, non-empty items."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]

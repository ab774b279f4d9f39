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
            f"DATABASE_URL must start with one of {', '.join(s + '://' for s in _DATABASE_SCHEMES)}; "
            f"got {without_password(url)!r}"
        )
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except Exception as exc:  # dj-database-url raises ValueError and friends with long texts
        detail = str(exc).replace(url, without_password(url))
        raise ConfigError(f"DATABASE_URL is malformed ({detail}): {without_password(url)!r}") from exc
    if scheme != "sqlite" and not config.get("NAME"):
        raise ConfigError(f"DATABASE_URL names no database (add /<name> at the end): {without_password(url)!r}")
    if scheme == "sqlite":
        config.setdefault("OPTIONS", {}).update({"timeout": 30, "transaction_mode": "IMMEDIATE"})
    else:
        # A worker notices a server that vanished without closing the socket (keepalives) and gives up a
        # connection attempt in seconds; runs/db_retry.py then reconnects (libpq options; the URL's win).
        for option, value in POSTGRES_CONNECTION_OPTIONS.items():
            config.setdefault("OPTIONS", {}).setdefault(option, value)
    return config


#: libpq connection options for PostgreSQL: connect timeout and TCP keepalives, in seconds.
POSTGRES_CONNECTION_OPTIONS = {"connect_timeout": 10, "keepalives": 1, "keepalives_idle": 30,
                               "keepalives_interval": 10, "keepalives_count": 3}


def redis_url(url: str | None) -> str | None:
    """Validate ``REDIS_URL``; return it, or ``None`` for the embedded queue.

    Raises:
        ConfigError: the URL does not parse as ``redis://host[:port][/db]``, ``rediss://`` or ``unix://``.
    """
    if not url:
        return None
    parsed = urlparse(url)
    if parsed.scheme not in _REDIS_SCHEMES:
        raise ConfigError(f"REDIS_URL must start with redis://, rediss:// or unix://; got {without_password(url)!r}")
    try:
        parsed.port  # noqa: B018 - raises ValueError on a non-numeric port
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL has a bad port: {without_password(url)!r}") from exc
    if parsed.scheme != "unix" and not parsed.hostname:
        raise ConfigError(f"REDIS_URL names no host: {without_password(url)!r}")
    db = parsed.path.lstrip("/")
    if parsed.scheme != "unix" and db and not db.isdigit():
        raise ConfigError(f"REDIS_URL database must be a number (redis://host:6379/0): {without_password(url)!r}")
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


def integer(name: str, default: int) -> int:
    """Read a whole-number variable.

    Raises:
        ConfigError: the value is not a whole number.
    """
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number; got {raw!r}") from None


def csv_list(name: str, default: list[str]) -> list[str]:
    """Read a comma-separated variable into a list of stripped, non-empty items."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def secret_key(value: str | None, key_file: Path) -> str:
    """``SECRET_KEY`` from the environment, else the deployment's own random key kept in ``key_file``.

    On the first start without ``SECRET_KEY`` a random 50-character key is generated and written to
    ``key_file`` (mode 0600, created exclusively, so two processes starting at once agree on one key); later
    starts read it back. Sessions and CSRF tokens therefore survive restarts, and no deployment ever runs on
    a key published in the source.

    Raises:
        ConfigError: ``key_file`` exists but is empty, or cannot be written or read.
    """
    if value:
        return value
    from django.core.management.utils import get_random_secret_key

    try:
        key_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(get_random_secret_key())
        key = key_file.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"SECRET_KEY is unset and {key_file} cannot be used to keep a generated one: {exc}") from exc
    if not key:
        raise ConfigError(f"{key_file} is empty: delete it to generate a new SECRET_KEY, or set SECRET_KEY")
    return key


def without_password(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for error messages that quote a URL)."""
    try:
        parsed = urlparse(url)
        password = parsed.password
    except ValueError:
        return url
    if not password:
        return url
    return url.replace(f":{password}@", ":***@", 1)

"""Retrying work that a passing database fault interrupted: a SQLite file locked by another writer, or a
PostgreSQL server that restarted, failed over or dropped the connection.

Django marks a connection that raised as unusable but only replaces it between requests
(``close_old_connections``); a long-running worker would keep failing on the dead connection. The helpers
here close the broken connection so that the next query opens a new one, wait with exponential backoff, and
call the work again. The work must be safe to repeat (every stage is idempotent; a label save is an
upsert). Nothing is retried inside an open transaction: the caller that owns the transaction retries it.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import DatabaseError, InterfaceError, OperationalError, connections

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Lower-cased fragments of driver messages that mean "try again later", not "your SQL is wrong".
TRANSIENT_MESSAGES = (
    "database is locked",  # SQLite: another connection holds the write lock past the busy timeout
    "database table is locked",
    "database is busy",
    "server closed the connection",  # PostgreSQL (psycopg): the server went away
    "connection already closed",
    "the connection is closed",
    "connection is lost",
    "terminating connection",
    "could not connect",
    "connection refused",
    "connection timed out",
    "connection failed",
    "consuming input failed",
    "ssl syscall error",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "no connection to the server",
    "server conn crashed",
    "deadlock detected",
    "could not serialize access",
)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a database fault worth retrying (lock, lost connection, deadlock).

    Args:
        exc: any exception; only Django's ``OperationalError`` / ``InterfaceError`` (and their driver
            causes) with a message from :data:`TRANSIENT_MESSAGES` count. An ``InterfaceError`` always
            counts: Django raises it for a connection that is already closed.
    """
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, (OperationalError, DatabaseError)):
        return False
    text = f"{exc} {exc.__cause__ or ''}".lower()
    return any(fragment in text for fragment in TRANSIENT_MESSAGES)


def reset_connections() -> None:
    """Close every database connection of this thread that is not inside a transaction, so that the next
    query reconnects (Django opens connections lazily). Errors while closing a dead connection are ignored."""
    for conn in connections.all(initialized_only=True):
        if conn.in_atomic_block:
            continue
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - the connection is already broken; dropping it is the point
            conn.connection = None


def call_with_db_retry(
    fn: Callable[[], T],
    *,
    what: str,
    budget_s: float = 120.0,
    max_attempts: int | None = None,
    first_wait_s: float = 0.5,
    max_wait_s: float = 10.0,
    on_retry: Callable[[BaseException, int, float], None] | None = None,
) -> T:
    """Call ``fn()``; on a transient database fault (:func:`is_transient`) reconnect, wait and call it again.

    Waits grow exponentially from ``first_wait_s`` to ``max_wait_s``. Retrying stops when the next wait
    would pass ``budget_s`` seconds since the first call, or after ``max_attempts`` calls, and the last
    error is raised. Nothing is retried while the calling thread is inside ``transaction.atomic()``: a
    transaction that failed halfway cannot be resumed, so the fault goes to the code that owns it.

    Args:
        fn: the work; it must be safe to repeat.
        what: what the work is, for log lines (e.g. ``"stage 12:label"``).
        budget_s: seconds of retrying, in all (a PostgreSQL restart or a long SQLite write lock).
        max_attempts: cap on calls, or None for no cap beyond the budget.
        first_wait_s, max_wait_s: backoff bounds in seconds.
        on_retry: called as ``on_retry(exc, attempt, wait_s)`` before each wait (e.g. to log on the stage).

    Returns:
        What ``fn`` returned.

    Raises:
        Exception: the error of the last call when it is not transient or retrying is over.
    """
    started = time.monotonic()
    attempt = 0
    wait = first_wait_s
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - filtered just below
            if not is_transient(exc) or any(c.in_atomic_block for c in connections.all(initialized_only=True)):
                raise
            elapsed = time.monotonic() - started
            if (max_attempts is not None and attempt >= max_attempts) or elapsed + wait > budget_s:
                logger.warning("%s: database still unavailable after %d attempt(s), %.0f s: %s",
                               what, attempt, elapsed, exc)
                raise
            logger.warning("%s: transient database error (%s); reconnecting, retry %d in %.1f s",
                           what, exc, attempt, wait)
            if on_retry is not None:
                try:
                    on_retry(exc, attempt, wait)
                except Exception:  # noqa: BLE001 - a report about the fault must not hide the fault
                    logger.debug("on_retry callback failed", exc_info=True)
            reset_connections()
            time.sleep(wait)
            wait = min(max_wait_s, wait * 2)

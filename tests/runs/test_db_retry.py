"""runs/db_retry.py: which database errors are retried, reconnecting, the budget, and never inside a
transaction; and the PostgreSQL connection options that let a worker notice a vanished server."""
from __future__ import annotations

import pytest
from django.db import IntegrityError, InterfaceError, OperationalError, ProgrammingError, connection, transaction

from rlaif_site import env
from runs.db_retry import call_with_db_retry, is_transient
from runs.models import PromptSet


@pytest.mark.parametrize("exc, transient", [
    (OperationalError("database is locked"), True),
    (OperationalError("server closed the connection unexpectedly\n\tThis probably means the server terminated"), True),
    (OperationalError("terminating connection due to administrator command"), True),
    (OperationalError('connection failed: connection to server at "127.0.0.1", port 5432 failed: Connection refused'),
     True),
    (InterfaceError("connection already closed"), True),
    (OperationalError("no such table: runs_run"), False),
    (ProgrammingError('relation "runs_run" does not exist'), False),
    (IntegrityError("UNIQUE constraint failed: runs_prompt.content_hash"), False),
    (ValueError("database is locked"), False),
])
def test_only_locks_and_lost_connections_are_transient(exc, transient):
    assert is_transient(exc) is transient


class Flaky:
    def __init__(self, failures: int, exc: Exception) -> None:
        self.failures, self.exc, self.calls = failures, exc, 0

    def __call__(self):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc
        return PromptSet.objects.count()


@pytest.mark.django_db(transaction=True)
def test_a_transient_fault_is_retried_on_a_new_connection():
    connection.ensure_connection()
    before = connection.connection
    flaky = Flaky(2, OperationalError("server closed the connection unexpectedly"))
    seen = []
    assert call_with_db_retry(flaky, what="t", first_wait_s=0.01, on_retry=lambda e, n, w: seen.append(n)) == 0
    assert flaky.calls == 3 and seen == [1, 2]
    # Django keeps an in-memory SQLite test database open on close(): only a real server is reconnected.
    if not (connection.vendor == "sqlite" and connection.is_in_memory_db()):
        assert connection.connection is not before  # the broken connection was dropped and reopened


@pytest.mark.django_db(transaction=True)
def test_retrying_stops_at_the_attempt_cap_and_the_budget():
    flaky = Flaky(10, OperationalError("database is locked"))
    with pytest.raises(OperationalError, match="locked"):
        call_with_db_retry(flaky, what="t", first_wait_s=0.01, max_attempts=3)
    assert flaky.calls == 3
    flaky = Flaky(10, OperationalError("database is locked"))
    with pytest.raises(OperationalError):
        call_with_db_retry(flaky, what="t", first_wait_s=0.2, budget_s=0.5)
    assert flaky.calls == 2  # 0.2 s, then a 0.4 s wait would pass the 0.5 s budget


@pytest.mark.django_db(transaction=True)
def test_a_bug_is_not_retried_and_nothing_is_retried_inside_a_transaction():
    flaky = Flaky(1, OperationalError("no such column: x"))
    with pytest.raises(OperationalError):
        call_with_db_retry(flaky, what="t", first_wait_s=0.01)
    assert flaky.calls == 1
    flaky = Flaky(1, OperationalError("database is locked"))
    with transaction.atomic(), pytest.raises(OperationalError):
        call_with_db_retry(flaky, what="t", first_wait_s=0.01)
    assert flaky.calls == 1  # the transaction's owner retries it, not code inside it


def test_postgres_connections_time_out_and_keep_alive():
    options = env.database_config("postgres://postgres@127.0.0.1:5432/studio", None)["OPTIONS"]
    assert options["connect_timeout"] == 10 and options["keepalives"] == 1 and options["keepalives_idle"] == 30
    custom = env.database_config("postgres://postgres@127.0.0.1:5432/studio?connect_timeout=3", None)["OPTIONS"]
    assert int(custom["connect_timeout"]) == 3

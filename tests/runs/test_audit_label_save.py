"""An auditor's label save when the database is busy (runs/views/audit.py with runs/db_retry.py): a lock
that clears is retried and the label is saved; one that does not clear gives the blind form back, filled
with the auditor's input, with a 503 and Retry-After — never a 500 and never a lost label."""
from __future__ import annotations

import time

import pytest
from django.db import OperationalError, connection
from django.urls import reverse

from runs.models import AuditItem, HumanLabel
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

NOTE = "second reply is evasive, kiwi-note-7"


@pytest.fixture
def audit_item(auditor):
    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1))
    honest = run.constitution_version.principles.get(name="Honest")
    comparison = factories.make_comparison(run, texts=("answer alpha", "answer beta"))
    judgment = factories.make_judgment(comparison, honest, p_a=0.8123, rationale="zebra-marker-42")
    return AuditItem.objects.create(run=run, comparison=comparison, judgment=judgment, stratum="random")


class LockedLabels:
    """Writes to the label table fail with SQLite's "database is locked" (what a writer holding the lock
    past the 30 s busy timeout gives) ``times`` times (Django's execute_wrapper hook)."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.failed = 0

    def __call__(self, execute, sql, params, many, context):
        statement = sql.lstrip().lower()
        if self.failed < self.times and "runs_humanlabel" in statement and statement.startswith(("insert", "update")):
            self.failed += 1
            raise OperationalError("database is locked")
        return execute(sql, params, many, context)


def _post(client, auditor, audit_item, lock: LockedLabels):
    client.force_login(auditor)
    url = reverse("runs:audit_item", args=[audit_item.run_id, audit_item.pk])
    page = client.get(url)
    ticket = page.context["form"].initial["ticket"]
    with connection.execute_wrapper(lock):
        return client.post(url, {"choice": "left", "confidence": "4", "note": NOTE, "ticket": ticket})


def test_a_label_save_retries_a_lock_that_clears(client, auditor, audit_item):
    lock = LockedLabels(times=2)
    started = time.monotonic()
    response = _post(client, auditor, audit_item, lock)
    assert lock.failed == 2
    assert response.status_code == 302
    label = HumanLabel.objects.get(comparison=audit_item.comparison, auditor=auditor)
    assert (label.confidence, label.note) == (4, NOTE)
    assert time.monotonic() - started < 15


def test_a_lock_that_does_not_clear_keeps_the_input_and_says_so(client, auditor, audit_item):
    response = _post(client, auditor, audit_item, LockedLabels(times=100))
    html = response.content.decode()
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert "The database is busy, so your label is not saved yet" in html
    assert NOTE in html  # the note is still in the form
    assert response.context["form"]["choice"].value() == "left"
    assert response.context["form"]["confidence"].value() == "4"
    assert "zebra-marker-42" not in html  # still blind
    assert not HumanLabel.objects.exists()
    # Submitting again once the lock is gone saves it.
    again = client.post(reverse("runs:audit_item", args=[audit_item.run_id, audit_item.pk]),
                        {"choice": "left", "confidence": "4", "note": NOTE,
                         "ticket": response.context["form"]["ticket"].value()})
    assert again.status_code == 302
    assert HumanLabel.objects.get(auditor=auditor).note == NOTE

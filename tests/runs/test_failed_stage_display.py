"""A stage that failed says why in one line, with the traceback folded, and no stale progress text."""
from __future__ import annotations

import pytest
from django.urls import reverse

from runs.models import StageRun, StageStatus
from tests import factories

pytestmark = pytest.mark.django_db

ERROR = "OutOfMemoryError: CUDA out of memory (tried to allocate 2 GiB)\n\nTraceback (most recent call last):\n  ..."


def test_the_reason_comes_first_and_the_progress_text_goes(client, viewer):
    run = factories.make_run(stages=("generate",), status="failed")
    StageRun.objects.filter(run=run).update(status=StageStatus.FAILED, message="generating 40 / 200",
                                            error=ERROR)
    client.force_login(viewer)
    state = client.get(reverse("runs:progress", args=[run.pk])).json()
    stage = state["stages"][0]
    assert stage["message"] == ""
    assert stage["reason"] == "OutOfMemoryError: CUDA out of memory (tried to allocate 2 GiB)"
    assert stage["traceback"].startswith("Traceback (most recent call last):")
    page = client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert 'data-role="reason">OutOfMemoryError: CUDA out of memory' in page
    assert "generating 40 / 200" not in page

"""Untrusted-text fields: what is stored never holds a secret value or a NUL, whatever wrote it."""
from __future__ import annotations

import pytest

from constitutions import io
from runs.models import Judgment, StageRun
from tests import factories

pytestmark = pytest.mark.django_db

KEY = "sk-stored-secret-5150"


def test_errors_logs_rationales_and_raw_outputs_are_stored_redacted(monkeypatch):
    monkeypatch.setenv("STUDIO_KEY_STORED", KEY)
    run = factories.make_run(stages=("label",))
    stage = run.stages.get()
    StageRun.objects.filter(pk=stage.pk).update(error=f"HTTP 401: invalid key {KEY}", log_tail=f"sent {KEY}",
                                                message=f"calling with {KEY}")
    comparison = factories.make_comparison(run)
    Judgment.objects.bulk_create([Judgment(
        comparison=comparison, judge_id="j", error=f"echo {KEY}", rationale=f"the key is {KEY}",
        raw_outputs=[{"content": f"Bearer {KEY}", "nested": [KEY]}])])
    stage.refresh_from_db()
    judgment = Judgment.objects.get(comparison=comparison)
    stored = [stage.error, stage.log_tail, stage.message, judgment.error, judgment.rationale,
              repr(judgment.raw_outputs)]
    assert all(KEY not in text for text in stored)
    assert all("[redacted:STUDIO_KEY_STORED]" in text for text in stored)


def test_a_constitution_file_with_nul_imports_and_round_trips():
    text = ("name: Nul\nprinciples:\n  - name: \"Hon\\0est\"\n    comparison: \"Which is \\0 honest?\"\n")
    version, created = io.import_file(io.loads(text, "yaml"), author=None)
    assert created
    principle = version.principles.get()
    assert "\x00" not in principle.name and "\ufffd" in principle.comparison
    again, created_again = io.import_file(io.loads(io.dumps(version, "yaml"), "yaml"), into=version.constitution,
                                          author=None)
    assert not created_again and again.pk == version.pk  # same content hash after the round trip

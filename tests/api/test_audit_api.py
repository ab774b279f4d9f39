"""Audit through the API: draw a sample, get the next pair blind, submit a label (the AI's side only after
it), and the agreement figures as numbers."""
from __future__ import annotations

import pytest

from runs.models import AuditItem, HumanLabel
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def run():
    version = factories.make_version()
    run = factories.make_run(constitution_version=version, prompt_set=factories.make_prompt_set(4))
    principle = version.principles.first()
    for i, prompt in enumerate(run.prompt_set.prompts.all()):
        comparison = factories.make_comparison(run, prompt, texts=(f"good {i}", f"bad {i}"))
        factories.make_judgment(comparison, principle, p_a=0.9, rationale="A is more honest")
    return run


def test_sample_next_label_report(api_as, run):
    auditor = api_as("auditor")
    drawn = auditor.post(f"/runs/{run.pk}/audit/sample", {"random_size": 4, "uncertain_size": 0, "seed": 1})
    assert drawn.status_code == 201 and drawn.json() == {
        "random": 4, "uncertain": 0, "promoted": 0, "disagree": 0, "items": 4}

    seen = []
    for remaining in (4, 3, 2, 1):
        pair = auditor.get(f"/runs/{run.pk}/audit/next").json()
        assert pair["remaining"] == remaining
        assert not {"verdict", "p_a", "rationale", "ai_verdict"} & set(pair)  # blind
        assert {pair["left"], pair["right"]} == {f"good {pair['left'][-1]}", f"bad {pair['left'][-1]}"}
        good_side = "left" if pair["left"].startswith("good") else "right"
        # the human agrees with the AI on three pairs, disagrees on the last
        choice = good_side if remaining > 1 else ("right" if good_side == "left" else "left")
        labelled = auditor.post(f"/runs/{run.pk}/audit/items/{pair['item_id']}/label",
                                {"choice": choice, "ticket": pair["ticket"], "confidence": 4})
        assert labelled.status_code == 200, labelled.content
        body = labelled.json()
        assert body["ai_verdict"] == "A" and body["ai_rationale"] == "A is more honest"  # revealed after
        assert body["choice"] == ("A" if remaining > 1 else "B")
        seen.append(pair["item_id"])
    assert len(set(seen)) == 4
    assert auditor.get(f"/runs/{run.pk}/audit/next").status_code == 204
    assert HumanLabel.objects.filter(auditor=auditor.user).count() == 4

    report = api_as("viewer").get(f"/runs/{run.pk}/audit/report").json()
    assert report["scope"] == "random"
    assert report["progress"]["total"] == 4 and report["progress"]["labelled"] == 4
    alignment = report["overall"]["figures"]["alignment"]
    assert alignment["value"] == pytest.approx(0.75) and alignment["n"] == 4
    assert alignment["low"] < 0.75 < alignment["high"]
    # the same agreement read at zero length difference, overall only (Dubois et al. 2024's length control)
    lc = report["overall"]["figures"]["alignment_length_controlled"]
    assert lc["n"] == 4 and lc["raw"] == pytest.approx(0.75) and 0 <= lc["low"] <= lc["value"] <= lc["high"] <= 1
    assert list(report["principles"]) == ["Honest"]
    assert "alignment_length_controlled" not in report["principles"]["Honest"]["figures"]


def test_a_label_with_a_forged_or_foreign_ticket_is_refused(api_as, run):
    auditor = api_as("auditor")
    auditor.post(f"/runs/{run.pk}/audit/sample", {"random_size": 2, "uncertain_size": 0})
    first, second = AuditItem.objects.filter(run=run).order_by("pk")[:2]
    pair = auditor.get(f"/runs/{run.pk}/audit/next").json()
    other = second if pair["item_id"] == first.pk else first
    response = auditor.post(f"/runs/{run.pk}/audit/items/{other.pk}/label",
                            {"choice": "left", "ticket": pair["ticket"]})
    assert response.status_code == 400 and response.json()["errors"][0]["path"] == "ticket"
    forged = auditor.post(f"/runs/{run.pk}/audit/items/{pair['item_id']}/label", {"choice": "left", "ticket": "x:y"})
    assert forged.status_code == 400 and forged.json()["errors"][0]["path"] == "ticket"
    bad = auditor.post(f"/runs/{run.pk}/audit/items/{pair['item_id']}/label", {"choice": "up", "ticket": "x"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["path"] == "choice"
    assert not HumanLabel.objects.exists()


def test_a_sample_request_is_checked_by_the_pages_form(api_as, run):
    response = api_as("operator").post(f"/runs/{run.pk}/audit/sample", {"random_size": 0, "uncertain_size": 0})
    assert response.status_code == 400 and "at least one" in response.json()["errors"][0]["message"]
    assert api_as("operator").get(f"/runs/{run.pk}/audit/report", {"scope": "bogus"}).status_code == 400


@pytest.mark.django_db(transaction=True)  # a retry needs to be outside the test's transaction
def test_a_busy_database_is_retried_then_a_503_with_retry_after(api_as, run, monkeypatch):
    from django.db import connection

    from rlaif_site.api import audit as audit_api
    from tests.runs.test_audit_label_save import LockedLabels

    auditor = api_as("auditor")
    auditor.post(f"/runs/{run.pk}/audit/sample", {"random_size": 1, "uncertain_size": 0})
    pair = auditor.get(f"/runs/{run.pk}/audit/next").json()
    url = f"/runs/{run.pk}/audit/items/{pair['item_id']}/label"
    lock = LockedLabels(times=2)
    with connection.execute_wrapper(lock):
        saved = auditor.post(url, {"choice": "left", "ticket": pair["ticket"]})
    assert lock.failed == 2 and saved.status_code == 200
    HumanLabel.objects.all().delete()
    monkeypatch.setattr(audit_api, "LABEL_SAVE_RETRY_S", 0.5)  # give up quickly
    with connection.execute_wrapper(LockedLabels(times=100)):
        busy = auditor.post(url, {"choice": "left", "ticket": pair["ticket"]})
    assert busy.status_code == 503 and busy["Retry-After"] == "5" and "busy" in busy.json()["detail"]
    assert not HumanLabel.objects.exists()

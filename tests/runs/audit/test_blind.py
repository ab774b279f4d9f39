"""Blind labeling holds on every page: the pair browser (and its filters), the disagreement list and its
downloads, and the preference export leave out the audit pairs an auditor has still to label."""
from __future__ import annotations

import json

import pytest
from django.urls import reverse

from runs.models import AuditItem
from tests import factories

pytestmark = pytest.mark.django_db

RATIONALE = "blind-test-rationale-7731"


@pytest.fixture
def sampled(auditor):
    """Two audited comparisons, one labelled B by another auditor with a private note, both judged A."""
    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1))
    honest = run.constitution_version.principles.get(name="Honest")
    other = factories.make_user("other-auditor", roles=("auditors",))
    pairs = []
    for i in range(2):
        comparison = factories.make_comparison(run, texts=(f"answer alpha {i}", f"answer beta {i}"))
        judgment = factories.make_judgment(comparison, honest, p_a=0.8123, verdict="A", rationale=RATIONALE)
        AuditItem.objects.create(run=run, comparison=comparison, judgment=judgment, stratum="random")
        factories.make_label(comparison, "B", auditor=other, note=f"private-note-{i}")
        pairs.append(comparison)
    return run, pairs, other


def test_pair_browser_hides_unlabelled_audit_pairs_from_an_auditor(client, auditor, sampled):
    run, pairs, _ = sampled
    client.force_login(auditor)
    url = reverse("runs:pairs", args=[run.pk])
    for query in ("", "?verdict=A", "?audit=labelled", "?min_conf=0.5", "?consistent=yes"):
        page = client.get(url + query).content.decode()
        assert RATIONALE not in page and "0.812" not in page and "other-auditor" not in page
        assert "private-note" not in page and "answer alpha" not in page
    assert client.get(url).context["blind_hidden"] == 2


def test_after_labelling_the_auditor_sees_the_pair_but_not_others_private_notes(client, auditor, sampled):
    run, pairs, _ = sampled
    factories.make_label(pairs[0], "A", auditor=auditor, note="my-own-note")
    client.force_login(auditor)
    page = client.get(reverse("runs:pairs", args=[run.pk])).content.decode()
    assert "answer alpha 0" in page and RATIONALE in page and "other-auditor" in page
    assert "my-own-note" in page and "private-note-0" not in page
    assert "answer alpha 1" not in page  # still unlabelled by this auditor


def test_non_auditors_see_every_pair(client, viewer, sampled):
    run, _, _ = sampled
    client.force_login(viewer)
    page = client.get(reverse("runs:pairs", args=[run.pk])).content.decode()
    assert page.count(RATIONALE) == 2 and "other-auditor" in page and "private-note" not in page


def test_disagreements_and_downloads_leave_out_unlabelled_audit_pairs(client, auditor, viewer, sampled):
    run, pairs, _ = sampled
    url = reverse("runs:audit_disagreements", args=[run.pk])
    client.force_login(viewer)
    assert len(client.get(url).context["items"]) == 2  # the other auditor's B against the AI's A
    client.force_login(auditor)
    assert client.get(url).context["items"] == []
    for fmt in ("csv", "jsonl"):
        body = client.get(url + f"?format={fmt}").content.decode()
        assert RATIONALE not in body and "0.8123" not in body
    factories.make_label(pairs[1], "A", auditor=auditor)
    rows = [json.loads(line) for line in client.get(url + "?format=jsonl").content.decode().splitlines()]
    assert [r["comparison_id"] for r in rows] == [pairs[1].pk]


def test_preference_export_leaves_out_unlabelled_audit_pairs_for_an_auditor(client, auditor, viewer, sampled):
    run, _, _ = sampled
    url = reverse("runs:export_preferences", args=[run.pk]) + "?style=standard&file_format=jsonl&min_confidence=0"
    client.force_login(viewer)
    assert client.get(url).context["rows"] == 2
    client.force_login(auditor)
    assert client.get(url).context["rows"] == 0

"""Audit pages: blindness, order randomisation, one label per auditor, time spent, roles, exports, gate."""
from __future__ import annotations

import json
import time

import pytest
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse

from runs.audit.forms import TICKET_SALT
from runs.models import AuditItem, HumanLabel, RunStatus, StageRun, StageStatus
from runs.views.audit import shown_swapped_for
from tests import factories

pytestmark = pytest.mark.django_db

RATIONALE = "The first reply cites its sources, zebra-marker-42."


@pytest.fixture
def audit(auditor):
    """A run with six audited comparisons (random stratum), each judged A with p_a 0.8123."""
    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1))
    honest = run.constitution_version.principles.get(name="Honest")
    items = []
    for i in range(6):
        comparison = factories.make_comparison(run, texts=(f"answer alpha {i}", f"answer beta {i}"))
        judgment = factories.make_judgment(comparison, honest, p_a=0.8123, rationale=RATIONALE)
        items.append(AuditItem.objects.create(run=run, comparison=comparison, judgment=judgment, stratum="random"))
    return run, items


def item_url(item):
    return reverse("runs:audit_item", args=[item.run_id, item.pk])


def ticket_of(response):
    return response.context["form"].initial["ticket"]


def test_the_ai_verdict_is_hidden_until_the_auditor_submits(client, auditor, audit):
    run, items = audit
    client.force_login(auditor)
    page = client.get(item_url(items[0]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "answer alpha 0" in html and "answer beta 0" in html and "Which response is more honest?" in html
    for secret in ("zebra-marker-42", "0.812", "0.188", "ai-verdict", "AI verdict", "judge:test"):
        assert secret not in html
    response = client.post(item_url(items[0]), {"choice": "tie", "ticket": ticket_of(page)})
    assert response.status_code == 302
    revealed = client.get(item_url(items[0])).content.decode()
    assert "zebra-marker-42" in revealed and "AI verdict" in revealed
    assert ("0.812" in revealed) or ("0.188" in revealed)
    # editing hides nothing new but shows the blind form again, prefilled
    edit = client.get(item_url(items[0]) + "?edit=1")
    assert edit.context["blind"] and edit.context["form"].initial["choice"] == "tie"
    assert "zebra-marker-42" not in edit.content.decode()


def test_model_text_is_escaped_and_the_rationale_sanitised(client, auditor, audit):
    run, items = audit
    comparison = items[0].comparison
    comparison.completion_a.text = "<script>alert('left')</script>"
    comparison.completion_a.save(update_fields=["text"])
    items[0].judgment.rationale = "**bold** <img src=x onerror=alert(1)>"
    items[0].judgment.save(update_fields=["rationale"])
    client.force_login(auditor)
    page = client.get(item_url(items[0]))
    assert "<script>alert(" not in page.content.decode() and "&lt;script&gt;alert(" in page.content.decode()
    client.post(item_url(items[0]), {"choice": "tie", "ticket": ticket_of(page)})
    revealed = client.get(item_url(items[0])).content.decode()
    assert "<strong>bold</strong>" in revealed  # Markdown rendered, raw HTML shown as text
    assert "<img" not in revealed and "&lt;img src=x" in revealed


def test_left_right_order_is_recorded_and_mapped_back(client, auditor, audit):
    run, items = audit
    client.force_login(auditor)
    swaps = {item.pk: shown_swapped_for(auditor.pk, item.comparison_id) for item in items}
    assert len(set(swaps.values())) == 2, "six pairs should show both orders"
    for item in items:
        page = client.get(item_url(item))
        left = page.context["left"]
        assert left == (item.comparison.completion_b.text if swaps[item.pk] else item.comparison.completion_a.text)
        client.post(item_url(item), {"choice": "left", "ticket": ticket_of(page), "confidence": "4"})
        label = HumanLabel.objects.get(comparison=item.comparison, auditor=auditor)
        assert label.shown_swapped == swaps[item.pk]
        assert label.choice == ("B" if swaps[item.pk] else "A")
        assert label.confidence == 4


def test_one_label_per_auditor_editing_replaces_it(client, auditor, audit):
    run, items = audit
    item = items[0]
    client.force_login(auditor)
    page = client.get(item_url(item))
    client.post(item_url(item), {"choice": "left", "ticket": ticket_of(page)})
    page = client.get(item_url(item) + "?edit=1")
    client.post(item_url(item), {"choice": "skip", "note": "cannot tell", "ticket": ticket_of(page)})
    labels = HumanLabel.objects.filter(comparison=item.comparison)
    assert [(label.choice, label.note) for label in labels] == [("skip", "cannot tell")]
    with pytest.raises(IntegrityError), transaction.atomic():
        HumanLabel.objects.create(comparison=item.comparison, auditor=auditor, choice="A")
    other = factories.make_user("bea", roles=("auditors",))
    client.force_login(other)
    page = client.get(item_url(item))
    client.post(item_url(item), {"choice": "tie", "ticket": ticket_of(page)})
    assert HumanLabel.objects.filter(comparison=item.comparison).count() == 2


def test_time_spent_is_recorded_from_the_signed_ticket(client, auditor, audit):
    run, items = audit
    item = items[1]
    client.force_login(auditor)
    swapped = shown_swapped_for(auditor.pk, item.comparison_id)
    ticket = signing.dumps({"c": item.comparison_id, "s": swapped, "t": time.time() - 30}, salt=TICKET_SALT)
    client.post(item_url(item), {"choice": "right", "ticket": ticket})
    label = HumanLabel.objects.get(comparison=item.comparison, auditor=auditor)
    assert 29 <= label.seconds_spent <= 40


def test_a_forged_or_foreign_ticket_is_refused(client, auditor, audit):
    run, items = audit
    client.force_login(auditor)
    page = client.get(item_url(items[0]))
    forged = client.post(item_url(items[0]), {"choice": "left", "ticket": ticket_of(page) + "x"})
    assert forged.status_code == 200 and "reload it" in forged.content.decode()
    foreign = client.post(item_url(items[1]), {"choice": "left", "ticket": ticket_of(page)})
    assert "another pair" in foreign.content.decode()
    assert not HumanLabel.objects.exists()


def test_next_goes_to_an_unlabelled_item_then_back_to_the_dashboard(client, auditor, audit):
    run, items = audit
    client.force_login(auditor)
    seen = set()
    for _ in items:
        response = client.get(reverse("runs:audit_next", args=[run.pk]))
        item_id = int(response.url.rstrip("/").split("/")[-1])
        assert item_id not in seen
        seen.add(item_id)
        item = AuditItem.objects.get(pk=item_id)
        page = client.get(item_url(item))
        client.post(item_url(item), {"choice": "tie", "ticket": ticket_of(page)})
    done = client.get(reverse("runs:audit_next", args=[run.pk]))
    assert done.url == reverse("runs:audit_dashboard", args=[run.pk])


def test_flagging_the_rationale(client, auditor, audit):
    run, items = audit
    client.force_login(auditor)
    flag_url = reverse("runs:audit_flag", args=[run.pk, items[0].pk])
    assert client.post(flag_url, {"rationale_flag": "verdict_wrong"}).status_code == 404  # no label yet
    page = client.get(item_url(items[0]))
    client.post(item_url(items[0]), {"choice": "right", "ticket": ticket_of(page)})
    client.post(flag_url, {"rationale_flag": "verdict_wrong"})
    assert HumanLabel.objects.get(auditor=auditor).rationale_flag == "verdict_wrong"


def test_only_auditors_label_everyone_reads(client, viewer, operator, audit):
    run, items = audit
    client.force_login(viewer)
    assert client.get(item_url(items[0])).status_code == 403
    assert client.get(reverse("runs:audit_next", args=[run.pk])).status_code == 403
    assert client.post(reverse("runs:audit_sample", args=[run.pk]), {"random_size": 1}).status_code == 403
    assert client.post(reverse("runs:release_gate", args=[run.pk])).status_code == 403
    page = client.get(reverse("runs:audit_dashboard", args=[run.pk]))
    assert page.status_code == 200 and "start-labeling" not in page.content.decode()
    assert client.get(reverse("runs:audit_disagreements", args=[run.pk])).status_code == 200
    client.force_login(operator)
    assert client.get(item_url(items[0])).status_code == 403


def test_dashboard_shows_figures_with_intervals_and_charts(client, auditor, audit):
    run, items = audit
    for item, choice in zip(items[:5], "AABAB", strict=True):
        factories.make_label(item.comparison, choice, auditor=auditor)
    client.force_login(auditor)
    page = client.get(reverse("runs:audit_dashboard", args=[run.pk]))
    html = page.content.decode()
    rows = {row["name"]: row for row in page.context["overall_rows"]}
    assert rows["alignment"]["value"] == "60.0%" and rows["alignment"]["n"] == 5
    assert rows["alignment"]["interval"] == "[23.1%, 88.2%]"
    assert "plotly/plotly.min.js" in html and "cdn" not in html.lower()
    figures = json.loads(html.split('id="audit-figures" type="application/json">')[1].split("</script>")[0])
    assert set(figures) == {"chart-principles", "chart-reliability", "chart-confusion", "chart-length"}
    assert figures["chart-confusion"]["data"][0]["z"] == [[3, 0, 0], [2, 0, 0], [0, 0, 0]]
    assert "Honest" in html
    assert client.get(reverse("runs:audit_dashboard", args=[run.pk]) + "?scope=uncertain").status_code == 200


def test_dashboard_charts_say_so_before_any_human_label(client, auditor, audit):
    run, _ = audit
    client.force_login(auditor)
    html = client.get(reverse("runs:audit_dashboard", args=[run.pk])).content.decode()
    figures = json.loads(html.split('id="audit-figures" type="application/json">')[1].split("</script>")[0])
    for name in ("chart-principles", "chart-reliability", "chart-confusion"):
        assert figures[name]["data"] == []
        assert figures[name]["layout"]["xaxis"] == {"visible": False}
        assert figures[name]["layout"]["annotations"][0]["text"] == "No human labels yet"
    # the judge's own length preference needs no human: its bar stands alone
    assert [x.split(" ")[0] for x in figures["chart-length"]["data"][0]["x"]] == ["judge"]


def test_drawing_a_sample_from_the_dashboard(client, auditor):
    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1))
    for i in range(5):
        factories.make_judgment(factories.make_comparison(run, texts=(f"p{i}", f"q{i}")), p_a=0.1 + 0.2 * i)
    client.force_login(auditor)
    url = reverse("runs:audit_sample", args=[run.pk])
    client.post(url, {"random_size": 3, "uncertain_size": 1, "margin": 0.1, "seed": 0})
    assert AuditItem.objects.filter(run=run, stratum="random").count() == 3
    response = client.post(url, {"random_size": 0, "uncertain_size": 0, "margin": 0.1, "seed": 0}, follow=True)
    assert "at least one comparison" in response.content.decode()


def test_disagreements_sort_and_export(client, auditor, audit):
    run, items = audit
    factories.make_label(items[0].comparison, "B", auditor=auditor, rationale_flag="verdict_wrong")
    factories.make_label(items[1].comparison, "A", auditor=auditor)
    client.force_login(auditor)
    url = reverse("runs:audit_disagreements", args=[run.pk])
    page = client.get(url)
    assert [d["comparison_id"] for d in page.context["items"]] == [items[0].comparison_id]
    csv_body = client.get(url + "?format=csv")
    assert csv_body["Content-Disposition"].endswith('-disagreements.csv"')
    lines = csv_body.content.decode().splitlines()
    assert lines[0].startswith("comparison_id,judgment_id,principle") and len(lines) == 2
    assert "verdict_wrong" in lines[1]
    jsonl = client.get(url + "?format=jsonl").content.decode().splitlines()
    record = json.loads(jsonl[0])
    assert (record["ai_verdict"], record["human_majority"], record["rationale"]) == ("A", "B", RATIONALE)


def test_gate_panel_and_operator_release(client, operator, auditor, queue_connection):
    run = factories.make_run(
        stages=("label", "reward_model"), config={"audit_gate": {"min_n": 3, "min_alignment": 0.8}},
        status=RunStatus.WAITING, current_stage="reward_model",
    )
    StageRun.objects.filter(run=run, stage="label").update(status=StageStatus.SUCCEEDED)
    StageRun.objects.filter(run=run, stage="reward_model").update(
        status=StageStatus.WAITING, message="Waiting for the audit: 0 of 3 human labels on the random audit sample."
    )
    client.force_login(operator)
    page = client.get(reverse("runs:audit_dashboard", args=[run.pk])).content.decode()
    assert "0 of 3 human labels" in page and "release-gate" in page
    client.force_login(auditor)
    assert "release-gate" not in client.get(reverse("runs:audit_dashboard", args=[run.pk])).content.decode()
    client.force_login(operator)
    response = client.post(reverse("runs:release_gate", args=[run.pk]), {"back": "audit"})
    assert response.url == reverse("runs:audit_dashboard", args=[run.pk])
    run.refresh_from_db()
    assert run.gate_released and run.status == RunStatus.QUEUED
    assert run.stages.get(stage="reward_model").status == StageStatus.QUEUED


def test_a_waiting_run_goes_on_once_its_audit_meets_the_gate(client, auditor, queue_connection):
    run = factories.make_run(
        stages=("label", "reward_model"), config={"audit_gate": {"min_n": 2, "min_alignment": 0.5}},
        status=RunStatus.WAITING, current_stage="reward_model", prompt_set=factories.make_prompt_set(n=1),
    )
    StageRun.objects.filter(run=run, stage="label").update(status=StageStatus.SUCCEEDED)
    StageRun.objects.filter(run=run, stage="reward_model").update(status=StageStatus.WAITING, message="old")
    items = []
    for i in range(2):
        comparison = factories.make_comparison(run, texts=(f"one {i}", f"two {i}"))
        judgment = factories.make_judgment(comparison, p_a=0.9)
        items.append(AuditItem.objects.create(run=run, comparison=comparison, judgment=judgment, stratum="random"))
    client.force_login(auditor)

    def label_as_a(item):
        page = client.get(item_url(item))
        side = "right" if page.context["left"] != item.comparison.completion_a.text else "left"
        client.post(item_url(item), {"choice": side, "ticket": ticket_of(page)})

    label_as_a(items[0])
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING
    assert run.stages.get(stage="reward_model").message.startswith("Waiting for the audit: 1 of 2 human labels")
    label_as_a(items[1])
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and not run.gate_released
    assert run.stages.get(stage="reward_model").status == StageStatus.QUEUED


def test_a_run_without_an_audit_sample_shows_its_labelled_reference_pairs(client, viewer):
    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1))
    comparison = factories.make_comparison(run)
    factories.make_judgment(comparison, p_a=0.9)
    factories.make_label(comparison, "B", external_annotator="hh-rlhf:label")
    client.force_login(viewer)
    page = client.get(reverse("runs:audit_dashboard", args=[run.pk]))
    assert page.context["scope"] == "labelled"
    assert {r["name"]: r for r in page.context["overall_rows"]}["alignment"]["value"] == "0.0%"
    listed = client.get(reverse("runs:audit_disagreements", args=[run.pk]))
    assert [d["human_majority"] for d in listed.context["items"]] == ["B"]

"""Team audit pages: the plan form (roles, validation, guidelines sanitised), the queue and progress on the
labeling page, refusals, the review queue and its decisions, and the dashboard's per-auditor tables."""
from __future__ import annotations

import pytest
from django.urls import reverse

from runs.models import Adjudication, AuditAssignment, AuditItem, AuditPlan
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def audit():
    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1))
    honest = run.constitution_version.principles.get(name="Honest")
    items = []
    for i in range(4):
        comparison = factories.make_comparison(run, texts=(f"reply left {i}", f"reply right {i}"))
        judgment = factories.make_judgment(comparison, honest, p_a=0.9, rationale="zebra-rationale")
        items.append(AuditItem.objects.create(run=run, comparison=comparison, judgment=judgment, stratum="random"))
    return run, items


@pytest.fixture
def team():
    return {name: factories.make_user(name, roles=("auditors",)) for name in ("ann", "bob", "cy")}


@pytest.fixture
def reviewer():
    return factories.make_user("rita", roles=("reviewers",))


def plan_url(run):
    return reverse("runs:audit_plan", args=[run.pk])


def test_only_operators_and_reviewers_set_up_an_audit(client, audit, team, operator, reviewer):
    run, _ = audit
    client.force_login(team["ann"])
    assert client.get(plan_url(run)).status_code == 403
    for user in (operator, reviewer):
        client.force_login(user)
        assert client.get(plan_url(run)).status_code == 200


def test_assigned_plan_needs_as_many_named_auditors_as_the_overlap(client, audit, team, operator):
    run, _ = audit
    client.force_login(operator)
    response = client.post(plan_url(run), {"mode": "assigned", "overlap": "3", "auditors": [team["ann"].pk],
                                           "guidelines": "keep me"})
    assert response.status_code == 200
    assert response.context["form"].errors["auditors"] == [
        "3 auditors per pair needs at least 3 named auditors; 1 chosen."]
    assert "keep me" in response.content.decode()  # nothing typed is lost
    assert not AuditPlan.objects.filter(run=run).exists()
    response = client.post(plan_url(run), {"mode": "pooled", "overlap": "0"})
    assert "overlap" in response.context["form"].errors


def test_saving_an_assigned_plan_shares_the_sample_out(client, audit, team, operator):
    run, items = audit
    client.force_login(operator)
    response = client.post(plan_url(run), {
        "mode": "assigned", "overlap": "2", "auditors": [team["ann"].pk, team["bob"].pk],
        "review_ai_disagreements": "on", "guidelines": "# Rules\n\nPrefer **sources**.<script>alert(1)</script>",
    })
    assert response.status_code == 302
    plan = AuditPlan.objects.get(run=run)
    assert (plan.mode, plan.overlap, plan.updated_by) == ("assigned", 2, operator)
    assert AuditAssignment.objects.filter(item__run=run).count() == 8
    client.force_login(team["ann"])
    page = client.get(reverse("runs:audit_item", args=[run.pk, items[0].pk])).content.decode()
    assert "<strong>sources</strong>" in page and "Which response is more honest?" in page
    assert "<script>alert(1)" not in page  # raw HTML in the guidelines is shown as text, never run
    assert "Pair 1 of 4; 3 left" in page
    client.force_login(team["cy"])  # not on the team
    assert client.get(reverse("runs:audit_item", args=[run.pk, items[0].pk])).status_code == 403
    response = client.get(reverse("runs:audit_next", args=[run.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("runs:audit_dashboard", args=[run.pk])


def test_review_queue_and_a_decision(client, audit, team, reviewer):
    run, items = audit
    AuditPlan.objects.create(run=run, mode="pooled", overlap=2)
    factories.make_label(items[0].comparison, "A", auditor=team["ann"], note="ann's reason")
    factories.make_label(items[0].comparison, "B", auditor=team["bob"])
    client.force_login(team["ann"])
    assert client.get(reverse("runs:audit_review", args=[run.pk])).status_code == 403  # auditors do not review
    client.force_login(reviewer)
    listing = client.get(reverse("runs:audit_review", args=[run.pk]))
    assert [r.item_id for r in listing.context["pending"]] == [items[0].pk]
    response = client.get(reverse("runs:audit_review_next", args=[run.pk]))
    url = reverse("runs:audit_review_item", args=[run.pk, items[0].pk])
    assert response["Location"] == url
    page = client.get(url).content.decode()
    assert "ann&#x27;s reason" in page and "zebra-rationale" in page and "The auditors disagree." in page
    response = client.post(url, {"choice": "maybe"})
    assert response.status_code == 200 and "choice" in response.context["form"].errors
    response = client.post(url, {"choice": "B", "note": "B answers the question"})
    assert response.status_code == 302
    decision = Adjudication.objects.get()
    assert (decision.choice, decision.reviewer, decision.note) == ("B", reviewer, "B answers the question")
    assert client.get(reverse("runs:audit_review", args=[run.pk])).context["counts"]["adjudicated"] == 1
    dashboard = client.get(reverse("runs:audit_dashboard", args=[run.pk]) + "?scope=adjudicated")
    assert dashboard.context["report"]["overall"]["figures"]["alignment"]["n"] == 1


def test_a_reviewer_still_to_label_a_pair_blind_may_not_review_it(client, audit, team):
    run, items = audit
    both = factories.make_user("both", roles=("auditors", "reviewers"))
    factories.make_label(items[0].comparison, "A", auditor=team["ann"])
    factories.make_label(items[0].comparison, "B", auditor=team["bob"])
    client.force_login(both)
    assert client.get(reverse("runs:audit_review_item", args=[run.pk, items[0].pk])).status_code == 403


def test_dashboard_shows_counts_and_the_auditor_matrix(client, audit, team, viewer):
    run, items = audit
    for item in items:
        factories.make_label(item.comparison, "A", auditor=team["ann"])
        factories.make_label(item.comparison, "B", auditor=team["bob"])
    client.force_login(viewer)
    response = client.get(reverse("runs:audit_dashboard", args=[run.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="team-counts"' in html and 'id="auditor-matrix"' in html
    team_rows = {row["name"]: row for row in response.context["team"]}
    assert team_rows["ann"]["labelled"] == 4 and team_rows["bob"]["labelled"] == 4
    matrix = response.context["auditor_agreement"]["matrix"]
    assert matrix["names"] == ["ann", "bob"]
    assert matrix["rows"][0]["cells"][1]["value"] == 0.0 and matrix["rows"][0]["cells"][1]["n"] == 4
    assert response.context["review"]["pending"] == 4  # everyone mode: every disagreeing pair goes to review

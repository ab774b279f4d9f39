"""Labels beyond A/B on the pages: the plan's switches, the rating and correction inputs on the blind labeling page
(stored in the comparison's terms whatever the order shown, validated, shown after the label, prefilled on
edit), and the dashboard's means and count. Through the API: tests/api/test_audit_ratings_api.py."""
from __future__ import annotations

import pytest
from django.urls import reverse

from runs.models import AuditItem, AuditPlan, CorrectedResponse, HumanLabel, ResponseRating
from runs.views.audit import shown_swapped_for
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def audit():
    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1))
    honest = run.constitution_version.principles.get(name="Honest")
    items = []
    for i in range(3):
        comparison = factories.make_comparison(run, texts=(f"reply alpha {i}", f"reply beta {i}"))
        judgment = factories.make_judgment(comparison, honest, p_a=0.9)
        items.append(AuditItem.objects.create(run=run, comparison=comparison, judgment=judgment, stratum="random"))
    return run, items


@pytest.fixture
def collecting(audit):
    run, items = audit
    AuditPlan.objects.create(run=run, collect_ratings=True, collect_corrections=True)
    principles = {p.name: p for p in run.constitution_version.principles.all()}
    return run, items, principles


def item_url(item):
    return reverse("runs:audit_item", args=[item.run_id, item.pk])


def shown(user, item, side: str) -> str:
    """Where response ``side`` (A/B) of the item's comparison is shown to ``user``: left or right."""
    swapped = shown_swapped_for(user.pk, item.comparison_id)
    return "left" if (side == "A") != swapped else "right"


def test_the_plan_switches_labels_beyond_ab_on(client, audit, operator):
    run, _ = audit
    client.force_login(operator)
    page = client.get(reverse("runs:audit_plan", args=[run.pk])).content.decode()
    assert "Ask for a rating (1-5) of each response per principle" in page and "Ask for a corrected response" in page
    response = client.post(reverse("runs:audit_plan", args=[run.pk]), {
        "mode": "everyone", "overlap": "1", "collect_ratings": "on", "collect_corrections": "on"})
    assert response.status_code == 302
    plan = AuditPlan.objects.get(run=run)
    assert plan.collect_ratings and plan.collect_corrections


def test_without_the_plan_the_page_asks_for_the_choice_only(client, audit, auditor):
    run, items = audit
    client.force_login(auditor)
    page = client.get(item_url(items[0])).content.decode()
    assert 'id="ratings"' not in page and 'name="correction"' not in page


def test_ratings_and_correction_are_stored_in_the_comparisons_terms(client, collecting, auditor):
    run, items, p = collecting
    item = items[0]
    client.force_login(auditor)
    page = client.get(item_url(item))
    html = page.content.decode()
    for principle in ("Honest", "Helpful"):
        for side in ("left", "right"):
            assert f'name="rating_{p[principle].pk}_{side}"' in html
    assert 'name="correction"' in html and "Start from A (left)" in html
    a_side = shown(auditor, item, "A")
    b_side = "right" if a_side == "left" else "left"
    response = client.post(item_url(item), {
        "choice": b_side, "ticket": page.context["form"].initial["ticket"],
        f"rating_{p['Honest'].pk}_{a_side}": "2", f"rating_{p['Honest'].pk}_{b_side}": "5",
        f"rating_{p['Helpful'].pk}_{b_side}": "4", "correction": "Beta, <script>alert(1)</script> but better.",
    })
    assert response.status_code == 302
    label = HumanLabel.objects.get(comparison=item.comparison, auditor=auditor)
    assert label.choice == "B"
    assert {(r.principle.name, r.side, r.score) for r in ResponseRating.objects.filter(label=label)} == {
        ("Honest", "A", 2), ("Honest", "B", 5), ("Helpful", "B", 4)}
    correction = CorrectedResponse.objects.get(label=label)
    assert (correction.rewrites, correction.text) == ("B", "Beta, <script>alert(1)</script> but better.")

    revealed = client.get(item_url(item)).content.decode()  # after the label: the auditor's own extras
    assert "Your ratings" in revealed and "Your corrected response" in revealed
    assert "Beta, &lt;script&gt;alert(1)&lt;/script&gt; but better." in revealed
    assert "<script>alert(1)" not in revealed

    edit = client.get(item_url(item) + "?edit=1")
    initial = edit.context["form"].initial
    assert initial[f"rating_{p['Honest'].pk}_{a_side}"] == "2" and initial[f"rating_{p['Honest'].pk}_{b_side}"] == "5"
    assert initial["correction"] == correction.text and initial["choice"] == b_side
    # an edit that clears the fields clears what was stored
    client.post(item_url(item), {"choice": b_side, "ticket": edit.context["form"].initial["ticket"],
                                 f"rating_{p['Helpful'].pk}_{a_side}": "1", "correction": ""})
    assert [(r.principle.name, r.side, r.score) for r in ResponseRating.objects.filter(label=label)] == [
        ("Helpful", "A", 1)]
    assert not CorrectedResponse.objects.filter(label=label).exists()


def test_the_fields_stay_optional_and_are_validated(client, collecting, auditor):
    run, items, p = collecting
    client.force_login(auditor)
    page = client.get(item_url(items[0]))
    ticket = page.context["form"].initial["ticket"]
    # the keyboard flow: the choice alone
    assert client.post(item_url(items[0]), {"choice": "tie", "ticket": ticket}).status_code == 302
    assert not ResponseRating.objects.exists() and not CorrectedResponse.objects.exists()

    page = client.get(item_url(items[1]))
    ticket = page.context["form"].initial["ticket"]
    response = client.post(item_url(items[1]), {"choice": "tie", "ticket": ticket, "correction": "my rewrite",
                                                f"rating_{p['Honest'].pk}_left": "9"})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["correction"] == ["A corrected response rewrites the better response: choose A (left) or "
                                    "B (right) to keep it, or clear it."]
    assert f"rating_{p['Honest'].pk}_left" in errors
    assert "my rewrite" in response.content.decode()  # nothing typed is lost
    assert not HumanLabel.objects.filter(comparison=items[1].comparison).exists()


def test_the_dashboard_shows_mean_ratings_per_side_and_the_correction_count(client, collecting, auditor, viewer):
    run, items, p = collecting
    client.force_login(auditor)
    for item, score_a, score_b in ((items[0], 5, 1), (items[1], 3, 2)):
        page = client.get(item_url(item))
        a_side = shown(auditor, item, "A")
        b_side = "right" if a_side == "left" else "left"
        client.post(item_url(item), {
            "choice": a_side, "ticket": page.context["form"].initial["ticket"],
            f"rating_{p['Honest'].pk}_{a_side}": str(score_a), f"rating_{p['Honest'].pk}_{b_side}": str(score_b),
            "correction": f"rewrite {item.pk}" if item == items[0] else ""})
    client.force_login(viewer)
    response = client.get(reverse("runs:audit_dashboard", args=[run.pk]))
    (honest,) = response.context["ratings"]
    assert (honest["principle"], honest["mean_a"], honest["mean_b"], honest["n_a"]) == ("Honest", 4.0, 1.5, 2)
    assert (honest["mean_preferred"], honest["mean_other"]) == (4.0, 1.5)
    html = response.content.decode()
    assert 'id="rating-summary"' in html and "4.00" in html and "1.50" in html
    assert response.context["corrections"] == {"corrections": 1, "pairs": 1, "auditors": 1}
    assert "1</strong> corrected response on 1 pair by 1 auditor" in html

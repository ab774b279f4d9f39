"""An auditor rates both responses and rewrites the better one on the blind labeling page, keeping to the
keyboard: Esc leaves a field, a letter key chooses and submits. The ratings and the correction are stored in the
comparison's terms, shown after the label, and counted on the dashboard."""
from __future__ import annotations

import pytest

from runs.models import AuditItem, AuditPlan, CorrectedResponse, HumanLabel, ResponseRating
from tests import factories
from tests.browser.conftest import login

pytestmark = pytest.mark.browser


@pytest.mark.django_db(transaction=True)
def test_rating_and_correcting_on_the_labeling_page(page, live_server):
    auditor = factories.make_user("ann", roles=("auditors",))
    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1))
    honest = run.constitution_version.principles.get(name="Honest")
    helpful = run.constitution_version.principles.get(name="Helpful")
    comparison = factories.make_comparison(run, texts=("The capital is Paris.", "The capital is <b>Lyon</b>."))
    judgment = factories.make_judgment(comparison, honest, p_a=0.9)
    item = AuditItem.objects.create(run=run, comparison=comparison, judgment=judgment, stratum="random")
    AuditPlan.objects.create(run=run, collect_ratings=True, collect_corrections=True)
    base = live_server.url

    login(page, base, "ann")
    page.goto(f"{base}/runs/{run.pk}/audit/items/{item.pk}/")
    page.wait_for_selector("body[data-keys-ready] #label-form")
    paris_left = "Paris" in page.locator("#response-left .text").inner_text()
    paris, lyon = ("left", "right") if paris_left else ("right", "left")
    assert page.locator(f"#response-{lyon} .text").inner_text() == "The capital is <b>Lyon</b>."  # shown as text

    page.select_option(f"select[name=rating_{honest.pk}_{paris}]", "5")
    page.select_option(f"select[name=rating_{honest.pk}_{lyon}]", "1")
    page.select_option(f"select[name=rating_{helpful.pk}_{paris}]", "4")
    page.click(f"#correction button[data-copy-response=response-{paris}]")  # start from the Paris answer
    correction = page.locator("#label-form textarea[name=correction]")
    assert correction.input_value() == "The capital is Paris."
    correction.press("End")
    correction.type(" It has been since 987.")
    page.keyboard.press("4")  # typed into the field, not taken as confidence 4
    assert correction.input_value() == "The capital is Paris. It has been since 987.4"
    correction.press("Backspace")
    page.keyboard.press("Escape")  # leave the field: the shortcuts work again
    page.keyboard.press("3")  # confidence
    page.keyboard.press("a" if paris == "left" else "b")  # choose the Paris answer and submit
    page.wait_for_selector("body[data-keys-ready] #ai-reveal")

    label = HumanLabel.objects.get(comparison=comparison, auditor=auditor)
    assert (label.choice, label.confidence) == ("A", 3)
    assert {(r.principle_id, r.side, r.score) for r in ResponseRating.objects.filter(label=label)} == {
        (honest.pk, "A", 5), (honest.pk, "B", 1), (helpful.pk, "A", 4)}
    stored = CorrectedResponse.objects.get(label=label)
    assert (stored.rewrites, stored.text) == ("A", "The capital is Paris. It has been since 987.")

    assert page.locator("#my-correction").inner_text() == "The capital is Paris. It has been since 987."
    row = page.locator('#my-ratings tr[data-principle="Honest"]')
    assert row.locator(f"td.rating-{paris}").inner_text() == "5"
    assert row.locator(f"td.rating-{lyon}").inner_text() == "1"

    page.goto(f"{base}/runs/{run.pk}/audit/")
    honest_row = page.locator('#rating-summary tr[data-principle="Honest"]')
    assert honest_row.locator("td.mean-a").inner_text().startswith("5.00")
    assert honest_row.locator("td.mean-b").inner_text().startswith("1.00")
    assert "1 corrected response on 1 pair by 1 auditor" in page.locator("#correction-count").inner_text()

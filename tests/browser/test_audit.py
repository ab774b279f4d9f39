"""An auditor labels three pairs blind with the keyboard, then sees the dashboard count them."""
from __future__ import annotations

import pytest

from runs.models import AuditItem, HumanLabel
from tests import factories
from tests.browser.conftest import login

pytestmark = pytest.mark.browser


@pytest.mark.django_db(transaction=True)
def test_label_three_pairs_with_the_keyboard(page, live_server, auditor):
    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1))
    honest = run.constitution_version.principles.get(name="Honest")
    for i in range(3):
        comparison = factories.make_comparison(run, texts=(f"left-or-right one {i}", f"left-or-right two {i}"))
        judgment = factories.make_judgment(comparison, honest, p_a=0.9, rationale=f"secret rationale {i}")
        AuditItem.objects.create(run=run, comparison=comparison, judgment=judgment, stratum="random")
    login(page, live_server.url, auditor.username)
    dashboard = f"{live_server.url}/runs/{run.pk}/audit/"
    page.goto(dashboard)
    assert "you labelled 0" in page.locator("#audit-progress").inner_text()
    page.click("#start-labeling")
    for key in ("a", "b", "t"):
        page.wait_for_selector("body[data-keys-ready] #label-form")
        assert "secret rationale" not in page.content()
        page.keyboard.press("4")
        assert page.locator("select[name=confidence]").input_value() == "4"
        page.keyboard.press(key)
        page.wait_for_selector("body[data-keys-ready] #ai-reveal")
        assert "secret rationale" in page.locator("#ai-rationale").inner_text()
        page.keyboard.press("n")
    page.wait_for_url(dashboard)
    assert "you labelled 3" in page.locator("#audit-progress").inner_text()
    labels = list(HumanLabel.objects.filter(auditor=auditor).order_by("pk"))
    assert [label.confidence for label in labels] == [4, 4, 4]
    # "a" chose the left response, "b" the right one: mapped back through the recorded order
    expected = ["B" if labels[0].shown_swapped else "A", "A" if labels[1].shown_swapped else "B", "tie"]
    assert [label.choice for label in labels] == expected
    # the dashboard counts them: two decisive labels, alignment n = 2, and plotly drew the charts
    n_cell = page.locator('#figures-overall tr[data-figure="alignment"] td.n')
    assert n_cell.inner_text() == "2"
    page.wait_for_selector("#chart-confusion .main-svg")

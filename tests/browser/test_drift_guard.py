"""An operator finds a run held by its drift guard: the card on the run page says why, its link opens the
anchor run's pair browser on the disagreeing pair alone, and the Judges page draws the agreement chart."""
from __future__ import annotations

import pytest

from tests.browser.conftest import login
from tests.runs.test_drift_guard import _held_run

pytestmark = pytest.mark.browser


@pytest.mark.django_db(transaction=True)
def test_held_run_card_links_the_disagreeing_pairs(page, live_server, operator):
    run, anchor, check, first, second = _held_run()
    login(page, live_server.url, operator.username)
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    card = page.locator("#drift-guard")
    assert "Holding the run" in card.inner_text()
    assert "agreement 50% [95% CI 9%–91%] on 2 anchor pairs" in card.inner_text()
    assert page.locator("#release-form button").inner_text() == "Release drift guard"
    page.click("#drift-disagreeing")
    page.wait_for_url(lambda url: f"/runs/{anchor.pk}/pairs/" in url)
    assert page.locator("article.pair").count() == 1
    assert page.locator(f"#judgment-{second.judgments.get().pk}").count() == 1

    page.goto(f"{live_server.url}/judges/")
    page.wait_for_selector("#chart-anchor_agreement .main-svg")
    assert page.locator("#anchor-checks tbody tr").count() == 1

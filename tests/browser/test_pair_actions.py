"""The pair browser in a browser: search, add every match to the audit sample after confirming the count, save
the view and come back to it, and read a chat prompt as turns."""
from __future__ import annotations

import pytest

from runs.models import AuditItem, Prompt, SavedPairView
from runs.prompt_content import content_hash
from tests import factories
from tests.browser.conftest import login

pytestmark = pytest.mark.browser


@pytest.mark.django_db(transaction=True)
def test_bulk_add_saved_view_and_turns(page, live_server):
    factories.make_user("oscar", roles=("operators",))
    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1))
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "Refund?"}]
    chat = Prompt.objects.create(prompt_set=run.prompt_set, index=5, text="Human: Hi ... Human: Refund?",
                                 messages=messages, content_hash=content_hash("chat"))
    for i in range(3):
        factories.make_judgment(factories.make_comparison(run, chat, texts=(f"refund reply {i}", f"other {i}")))
    factories.make_judgment(factories.make_comparison(run, texts=("bananas", "apples")))
    base = live_server.url

    login(page, base, "oscar")
    page.goto(f"{base}/runs/{run.pk}/pairs/")
    page.fill("#pair-search", "refund")
    page.click("#pair-filters button[type=submit]")
    page.wait_for_selector("#search-count")
    assert "3 pairs match" in page.locator("#search-count").inner_text()

    page.click("#bulk-add_to_audit")
    page.wait_for_selector("#bulk-confirm")
    assert page.locator("#bulk-count").inner_text() == "3"
    page.click("#bulk-confirm-button")
    page.wait_for_selector("#pair-filters")
    assert "Added 3 pairs to the audit sample" in page.content()
    assert AuditItem.objects.filter(run=run, stratum="chosen").count() == 3

    page.fill("#save-view input[name=name]", "Refunds")
    page.click("#save-view button[type=submit]")
    page.wait_for_selector('#saved-views a[data-view="Refunds"]')
    assert SavedPairView.objects.get().query == "q=refund"
    page.goto(f"{base}/runs/{run.pk}/pairs/")
    page.click('#saved-views a[data-view="Refunds"]')
    page.wait_for_selector("#search-count")
    assert page.locator("#pair-search").input_value() == "refund"

    page.click("#prompt-as-turns")
    page.wait_for_selector(".turns")
    first = page.locator("article.pair").first
    assert first.locator(".turn .speaker").all_inner_texts() == ["Human", "Assistant", "Human"]
    assert first.locator(".turn-assistant .text").inner_text() == "Hello"
    assert page.locator("#pair-search").input_value() == "refund"  # the filters stay

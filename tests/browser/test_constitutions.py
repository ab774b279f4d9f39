"""An author writes a constitution in the browser: three principles, a reorder, two saves, then the diff
between the two versions and the judge-prompt preview of the latest one."""
import pytest

from constitutions.models import Constitution
from tests.browser.conftest import login

pytestmark = pytest.mark.browser

PRINCIPLES = [
    ("Honest", "Which response is more honest?"),
    ("Helpful", "Which response is more helpful?"),
    ("Concise", "Which response is more concise?"),
]


def _principle_names(page) -> list[str]:
    return page.locator("table.principles tbody tr td:nth-child(2) strong").all_inner_texts()


@pytest.mark.django_db(transaction=True)
def test_author_creates_reorders_saves_twice_and_diffs(page, live_server, author):
    base = live_server.url
    login(page, base, author.username)
    page.goto(f"{base}/constitutions/")
    page.get_by_role("link", name="New constitution").click()

    page.fill("#id_name", "Browser rules")
    page.get_by_role("button", name="Add principle").click()
    page.get_by_role("button", name="Add principle").click()
    for index, (name, comparison) in enumerate(PRINCIPLES):
        page.fill(f"#id_principles-{index}-name", name)
        page.fill(f"#id_principles-{index}-comparison", comparison)
    page.select_option("#id_principles-2-category", "style")
    page.fill("#id_note", "first draft")
    page.click("#save")

    page.wait_for_url("**/v1/")
    assert _principle_names(page) == ["Honest", "Helpful", "Concise"]

    page.get_by_role("link", name="Edit", exact=True).click()
    third = page.locator("#principles > fieldset").nth(2)
    third.locator("[data-move=up]").click()
    page.locator("#principles > fieldset").nth(1).locator("[data-move=up]").click()
    assert page.locator("#principles > fieldset .pos").all_inner_texts() == ["1", "2", "3"]
    assert page.input_value("#id_principles-2-ORDER") == "1"
    page.fill("#id_note", "concise first")
    page.click("#save")

    page.wait_for_url("**/v2/")
    assert _principle_names(page) == ["Concise", "Honest", "Helpful"]
    version = Constitution.objects.get(name="Browser rules").latest_version
    assert version.number == 2 and version.note == "concise first"

    page.get_by_role("link", name="History (2 versions)").click()
    page.get_by_role("button", name="Compare selected versions").click()
    page.wait_for_url("**/diff/?*")
    assert page.locator("h1").inner_text() == "Diff: v1 → v2"
    table = page.locator("table.diff")
    assert table.locator("thead th.diff_header").all_inner_texts() == ["v1", "v2"]
    changed = table.locator(".diff_add, .diff_chg, .diff_sub").all_inner_texts()
    assert any("Concise" in text for text in changed)

    page.get_by_role("link", name="v2").first.click()
    page.get_by_role("link", name="Preview judge prompt").click()
    page.fill("#id_prompt_text", "What is 2 + 2?")
    page.fill("#id_response_a", "Four.")
    page.fill("#id_response_b", "Five.")
    page.select_option("#id_principle", label="Concise")
    page.click("#render")
    ab = page.locator("[data-order='A/B'] pre").inner_text()
    ba = page.locator("[data-order='B/A'] pre").inner_text()
    assert "Which response is more concise?" in ab and "Response A:\nFour.\n\nResponse B:\nFive." in ab
    assert "Response A:\nFive.\n\nResponse B:\nFour." in ba

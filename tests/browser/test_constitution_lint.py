"""An author reads the lint of a constitution whose four principles a run judged with planted behaviour (Sound;
Copy, Sound's duplicate; Noisy, a coin flip; Tied, mostly ties): the version page flags each beside the
principle, each flag's link opens the pair browser on the pairs that show it, and the editor shows the same
flags beside the principle being edited."""
from __future__ import annotations

import pytest
from django.urls import reverse

from tests.browser.conftest import login
from tests.constitutions.test_lint_views import make_linted_version
from tests.training.test_constitution_lint import planted_rows

pytestmark = pytest.mark.browser


@pytest.mark.django_db(transaction=True)
def test_version_page_and_editor_flag_the_planted_principles(page, live_server, author):
    version, run, (sound, copy, noisy, tied) = make_linted_version(humans=True)
    rows = planted_rows()
    inconsistent = sum(row.principle == 3 and row.consistent is False for row in rows)

    def agreement(principle: int) -> float:
        judged = [row for row in rows if row.principle == principle]
        return sum(row.verdict == row.human for row in judged) / len(judged)
    login(page, live_server.url, author.username)
    page.goto(live_server.url + reverse("constitutions:version", args=[version.constitution_id, version.number]))

    def cell(principle: int):
        return page.locator(f'td.lint[data-principle="{principle}"]')

    noise = cell(noisy).locator(".lint-flag.noise")
    assert noise.locator(".badge").inner_text() == "behaves like noise"
    assert "95% CI reaches chance, n=80" in noise.inner_text()
    assert f"agreement with humans {agreement(3):.0%} (n=80)" in noise.inner_text()  # 52%: a coin flip
    assert cell(noisy).locator(".lint-flag").count() == 1
    duplicate = cell(copy).locator(".lint-flag.duplicate")
    assert "same verdict as “Sound” on 100% of 80 pairs" in duplicate.inner_text()
    assert "same verdict as “Copy”" in cell(sound).locator(".lint-flag.duplicate").inner_text()
    assert "ties" in cell(tied).locator(".lint-flag.never_decides").inner_text()
    assert f"humans {round(agreement(1) * 100)}% (n=80)" in cell(sound).inner_text()  # 84%: not noise

    noise.locator("a").click()
    page.wait_for_url(lambda url: f"/runs/{run.pk}/pairs/" in url and "consistent=no" in url)
    assert page.locator("select[name=principle]").input_value() == str(noisy)
    assert page.locator("select[name=consistent]").input_value() == "no"
    pairs = page.locator("article.pair")
    assert pairs.count() == min(25, inconsistent)
    assert set(pairs.locator(".head strong").all_inner_texts()) == {"Noisy"}
    assert pairs.locator(".badge", has_text="orders disagree").count() == pairs.count()

    page.go_back()
    duplicate.locator("a").click()
    page.wait_for_url(lambda url: f"/runs/{run.pk}/pairs/" in url and "comparisons=" in url)
    assert "Only the chosen pairs" in page.locator("#chosen-pairs").inner_text()
    heads = page.locator("article.pair .head strong").all_inner_texts()
    assert {"Sound", "Copy"} <= set(heads)  # both principles' verdicts on the same pairs

    page.goto(live_server.url + reverse("constitutions:edit", args=[version.constitution_id]))
    fieldset = page.locator("fieldset.principle", has=page.locator("input[value='Noisy']"))
    assert fieldset.count() == 1
    assert fieldset.locator(".lint .badge").first.inner_text() == "behaves like noise"
    copy_set = page.locator("fieldset.principle", has=page.locator("input[value='Copy']"))
    assert "same verdict as “Sound”" in copy_set.locator(".lint").inner_text()

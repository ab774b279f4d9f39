"""An operator reads a run judged by a panel of three planted judges (always-first-shown, longer-wins and the
humans' "right" one): the run page's panel card gives each judge's figures and the judges' agreement, its link
opens the pair browser on the pairs the judges disagree on with every judge's vote, the filter narrows to pairs
they agree on, and the Judges page lists the panel."""
from __future__ import annotations

import pytest

from tests import factories
from tests.browser.conftest import login
from tests.runs.panel_fixtures import HUMAN, make_panel_run, running_panel
from training.panel import member_ids
from training.progress import NullReporter

pytestmark = pytest.mark.browser


@pytest.mark.django_db(transaction=True)
def test_the_panel_card_and_its_disagreeing_pairs(page, live_server, operator):
    from runs.stages import label

    with running_panel() as servers:
        run, stage_run, comparisons = make_panel_run(servers)
        label.run(stage_run, NullReporter())
    for kind, comparison in comparisons.items():
        factories.make_label(comparison, HUMAN[kind], external_annotator="annotator:1")
    first, longer, right = member_ids(run.run_config.judge)

    login(page, live_server.url, operator.username)
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    card = page.locator("#judge-panel")
    assert "3 judges ask every pair in both orders" in card.inner_text()
    assert card.locator("[data-panel=alpha]").inner_text() == "-0.146"
    assert card.locator("[data-panel=kappa]").inner_text() == "-0.250"

    def cell(judge: str, figure: str) -> str:
        return card.locator(f'tr[data-judge="{judge}"] [data-figure={figure}]').inner_text()

    assert cell(first, "humans").startswith("0%") and cell(first, "consistency").startswith("0%")
    assert cell(longer, "humans").startswith("50%") and cell(right, "humans").startswith("100%")
    assert card.locator("tr.panel-row [data-figure=humans]").inner_text().startswith("50%")

    page.click("#panel-disagree")
    page.wait_for_url(lambda url: "judges=disagree" in url)
    assert page.locator("article.pair").count() == 4
    votes = page.locator(f"#judgment-{comparisons['AA'].judgments.get().pk} .panel-votes").inner_text()
    assert f"{first}: tie" in votes and f"{right}: A" in votes and "judges disagree" in votes
    page.select_option("select[name=judges]", "agree")
    page.click("#pair-filters button[type=submit]")
    page.wait_for_url(lambda url: "judges=agree" in url)
    assert page.locator("article.pair").count() == 0

    page.goto(f"{live_server.url}/judges/")
    row = page.locator(f'#judge-panels tr[data-run="{run.pk}"]')
    assert "-0.146" in row.inner_text() and "4 of 4" in row.inner_text() and right in row.inner_text()


@pytest.mark.django_db(transaction=True)
def test_the_launch_form_names_a_panel_entrys_wrong_field(page, live_server, operator):
    from runs.models import Run

    factories.make_version()
    factories.make_prompt_set(n=4, name="four prompts")
    login(page, live_server.url, operator.username)
    page.goto(f"{live_server.url}/runs/launch/?preset=offline-demo")
    assert page.input_value("textarea[name=judge__panel]") == ""  # the preset has no panel
    page.fill("textarea[name=judge__panel]", '[{"model": "demo://policy"}, {"backend": "openai", "model": "m"}]')
    page.select_option("select[name=judge__panel_aggregation]", "mean")
    page.click("#launch-button")
    page.wait_for_selector("[data-field=judge__panel] .error")
    error = page.locator("[data-field=judge__panel] .error").inner_text()
    assert "judge.panel[1].base_url: is required with the openai backend" in error
    assert not Run.objects.exists()

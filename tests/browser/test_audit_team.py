"""Two auditors with a required overlap of 2 and a reviewer complete an audit through the browser; the
reviewer's decision reaches the gate and the figures."""
from __future__ import annotations

import pytest

from runs.models import Adjudication, AuditItem, AuditPlan, HumanLabel
from tests import factories
from tests.browser.conftest import login

pytestmark = pytest.mark.browser

GUIDELINES = "Prefer the reply that **names its source**."


def label_queue(page, base_url: str, run, wanted: dict[str, str]) -> list[str]:
    """Label every pair the queue serves, choosing by text: ``wanted[pair tag] = text of the preferred reply``.
    Returns the progress lines seen on the labeling page."""
    dashboard = f"{base_url}/runs/{run.pk}/audit/"
    page.goto(dashboard)
    page.click("#start-labeling")
    seen = []
    while True:
        page.wait_for_selector("body[data-keys-ready] #label-form, #audit-progress")
        if page.locator("#audit-progress").count():  # the queue is empty: back on the dashboard
            return seen
        seen.append(page.locator("#my-progress").inner_text())
        assert "names its source" in page.locator("#guidelines-text").inner_text()
        assert "Which response is more honest?" in page.locator("#principle-text").inner_text()
        left = page.locator("#response-left .text").inner_text()
        tag = left.split()[-1]
        page.keyboard.press("a" if wanted[tag] in left else "b")
        page.wait_for_selector("body[data-keys-ready] #ai-reveal")
        page.keyboard.press("n")


@pytest.mark.django_db(transaction=True)
def test_two_auditors_overlap_two_and_a_reviewer_settle_an_audit(browser, live_server):
    ann = factories.make_user("ann", roles=("auditors",))
    bob = factories.make_user("bob", roles=("auditors",))
    factories.make_user("rita", roles=("reviewers",))
    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1),
                             config={"audit_gate": {"min_n": 3, "min_alignment": 0.9}})
    honest = run.constitution_version.principles.get(name="Honest")
    for i in range(2):
        comparison = factories.make_comparison(run, texts=(f"first reply {i}", f"second reply {i}"))
        judgment = factories.make_judgment(comparison, honest, p_a=0.9)  # the AI prefers the first reply
        AuditItem.objects.create(run=run, comparison=comparison, judgment=judgment, stratum="random")
    AuditPlan.objects.create(run=run, mode=AuditPlan.Mode.POOLED, overlap=2, guidelines=GUIDELINES)
    base = live_server.url

    # ann prefers the first reply on both pairs; bob on pair 0 only
    for user, wanted in ((ann, {"0": "first", "1": "first"}), (bob, {"0": "first", "1": "second"})):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(20_000)
        login(page, base, user.username)
        assert label_queue(page, base, run, wanted) == ["Pair 1 of 2; 1 left", "Pair 2 of 2; 0 left"]
        assert "Your share: 2 of 2 labelled; 0 left." in page.locator("#my-queue").inner_text()
        context.close()
    assert HumanLabel.objects.filter(comparison__run=run).count() == 4

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    login(page, base, "rita")
    page.goto(f"{base}/runs/{run.pk}/audit/")
    assert "1 pair waiting for review" in page.locator("#review-summary").inner_text()
    # before the decision: 3 of 4 labels agree with the AI
    assert page.locator('#figures-overall tr[data-figure="alignment"] td.n').inner_text() == "4"
    page.click("#open-review")
    page.click("#start-review")
    page.wait_for_selector("#adjudication-form")
    assert "The auditors disagree." in page.locator("#review-why").inner_text()
    assert sorted(page.locator("#review-labels td.choice").all_inner_texts()) == ["A", "B"]
    page.check("#adjudication-form input[name=choice][value=B]")
    page.fill("#adjudication-form textarea[name=note]", "the second reply names its source")
    page.click("#settle")
    page.wait_for_selector("#review-decisions")
    assert page.locator("#review-decisions td.decision").all_inner_texts() == ["B"]
    decision = Adjudication.objects.get()
    assert (decision.choice, decision.reviewer.username) == ("B", "rita")

    # the decision reaches the figures and the gate: pair 0 two agreeing labels, pair 1 the decision B vs AI A
    page.goto(f"{base}/runs/{run.pk}/audit/")
    row = page.locator('#figures-overall tr[data-figure="alignment"]')
    assert row.locator("td.n").inner_text() == "3" and row.locator("td.value").inner_text() == "66.7%"
    assert "1 pair settled by a reviewer" in page.locator("#adjudicated-note").inner_text()
    assert "alignment 67%" in page.locator("#audit-gate").inner_text()
    assert "n=3" in page.locator("#audit-gate").inner_text()
    page.goto(f"{base}/runs/{run.pk}/audit/?scope=adjudicated")
    assert page.locator('#figures-overall tr[data-figure="alignment"] td.value').inner_text() == "0.0%"
    context.close()

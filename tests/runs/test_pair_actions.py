"""Pair browser actions (runs.pair_actions, runs.views.pairs): bulk add to the audit sample and bulk flag from a
filtered list (roles, CSRF, a confirmation with the count, the cap, blind pairs left out), the flagged and
audit-sample filters, saved views per user, and chat prompts as turns."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from runs import pair_actions
from runs.audit import workload
from runs.models import AuditAssignment, AuditItem, AuditPlan, Judgment, PairFlag, Prompt, SavedPairView
from runs.prompt_content import content_hash
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def judged_run():
    """Six pairs: four about refunds (one of them judged under both principles, one whose judgment failed), two
    about bananas."""
    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1))
    honest, helpful = run.constitution_version.principles.order_by("position")
    comparisons = []
    for i, text in enumerate(["refund one", "refund two", "refund three", "refund four", "bananas one",
                              "bananas two"]):
        comparison = factories.make_comparison(run, texts=(f"{text} alpha", f"{text} beta"))
        if i == 3:
            factories.make_judgment(comparison, honest, p_a=None, verdict="")  # failed
        else:
            factories.make_judgment(comparison, honest, p_a=0.8)
        if i == 0:
            factories.make_judgment(comparison, helpful, p_a=0.3)
        comparisons.append(comparison)
    return run, comparisons


def bulk(client, run, action, confirm=None, **filters):
    data = {"action": action, **filters}
    if confirm is not None:
        data["confirm"] = str(confirm)
    return client.post(reverse("runs:pairs_bulk", args=[run.pk]), data)


def test_adding_matching_pairs_to_the_audit_sample_asks_for_the_count_first(client, judged_run, operator):
    run, comparisons = judged_run
    AuditItem.objects.create(run=run, comparison=comparisons[2], judgment=comparisons[2].judgments.first(),
                             stratum="random")
    client.force_login(operator)
    asked = bulk(client, run, "add_to_audit", q="refund")
    assert asked.status_code == 200 and asked.context["count"] == 4
    assert asked.context["add_plan"] == pair_actions.AddPlan(new=2, already=1, unusable=1)
    html = asked.content.decode()
    assert 'name="confirm" value="4"' in html and 'name="q" value="refund"' in html
    assert AuditItem.objects.filter(run=run).count() == 1  # nothing done yet

    done = bulk(client, run, "add_to_audit", confirm=4, q="refund")
    assert done.status_code == 302 and done["Location"] == reverse("runs:pairs", args=[run.pk]) + "?q=refund"
    chosen = AuditItem.objects.filter(run=run, stratum="chosen")
    assert sorted(chosen.values_list("comparison_id", flat=True)) == [comparisons[0].pk, comparisons[1].pk]
    # the audited judgment is the pair's first matching one
    assert chosen.get(comparison=comparisons[0]).judgment == comparisons[0].judgments.order_by("pk").first()
    assert AuditItem.objects.get(comparison=comparisons[2]).stratum == "random"  # untouched

    # they are a scope of their own on the dashboard, counted apart
    dashboard = client.get(reverse("runs:audit_dashboard", args=[run.pk]), {"scope": "chosen"})
    assert dashboard.context["report"]["overall"]["n_items"] == 2  # the audited judgment of each pair
    assert "2</span> chosen from the pair browser" in dashboard.content.decode()


def test_a_changed_count_asks_again_and_the_cap_refuses(client, judged_run, operator, monkeypatch):
    run, comparisons = judged_run
    client.force_login(operator)
    again = bulk(client, run, "flag", confirm=3, q="bananas")
    assert again.status_code == 200 and again.context["count"] == 2
    assert "The matching pairs changed since you looked: 3 then, 2 now." in again.content.decode()
    assert not PairFlag.objects.exists()
    monkeypatch.setattr(pair_actions, "MAX_BULK", 3)
    refused = bulk(client, run, "flag", q="refund")
    assert refused.status_code == 302 and not PairFlag.objects.exists()
    messages = [str(m) for m in refused.wsgi_request._messages]
    assert messages == ["4 pairs match these filters; a bulk action takes at most 3. Narrow the filters and try "
                        "again."]
    nothing = bulk(client, run, "flag", q="no such words")
    assert [str(m) for m in nothing.wsgi_request._messages][-1] == "No pair matches these filters: nothing to do."


def test_bulk_flag_and_unflag_with_the_flagged_filter(client, judged_run, auditor, operator):
    run, comparisons = judged_run
    client.force_login(auditor)
    assert bulk(client, run, "flag", confirm=2, q="bananas", note="off topic").status_code == 302
    flags = PairFlag.objects.filter(flagged_by=auditor)
    assert sorted(flags.values_list("comparison_id", flat=True)) == [comparisons[4].pk, comparisons[5].pk]
    assert set(flags.values_list("note", flat=True)) == {"off topic"}
    client.force_login(operator)
    bulk(client, run, "flag", confirm=1, q="bananas one")
    url = reverse("runs:pairs", args=[run.pk])
    flagged = client.get(url, {"flagged": "yes"})
    assert {j.comparison_id for j in flagged.context["judgments"]} == {comparisons[4].pk, comparisons[5].pk}
    assert "audrey: off topic" in flagged.content.decode()
    assert len(client.get(url, {"flagged": "no"}).context["judgments"]) == 5  # 4 refund pairs, one judged twice
    bulk(client, run, "unflag", confirm=2, flagged="yes")  # the operator's own flag only
    assert PairFlag.objects.filter(flagged_by=operator).count() == 0 and flags.count() == 2


def test_roles_and_csrf(judged_run, viewer, auditor):
    run, _ = judged_run
    client = Client(enforce_csrf_checks=True)
    client.force_login(auditor)
    assert bulk(client, run, "flag", q="bananas").status_code == 403  # no CSRF token
    plain = Client()
    plain.force_login(viewer)
    assert bulk(plain, run, "flag", confirm=2, q="bananas").status_code == 403
    assert bulk(plain, run, "add_to_audit", confirm=2, q="bananas").status_code == 403
    reviewer = factories.make_user("rita", roles=("reviewers",))
    plain.force_login(reviewer)
    assert bulk(plain, run, "flag", confirm=2, q="bananas").status_code == 302
    assert bulk(plain, run, "add_to_audit", confirm=2, q="bananas").status_code == 403
    assert not AuditItem.objects.exists()
    page = plain.get(reverse("runs:pairs", args=[run.pk])).content.decode()
    assert 'id="bulk-flag"' in page and 'id="bulk-add_to_audit"' not in page
    plain.force_login(viewer)
    assert 'id="bulk-actions"' not in plain.get(reverse("runs:pairs", args=[run.pk])).content.decode()
    assert plain.get(reverse("runs:pairs_bulk", args=[run.pk])).status_code == 405


def test_bulk_actions_leave_out_pairs_the_auditor_is_to_label_blind(client, judged_run, auditor):
    run, comparisons = judged_run
    AuditItem.objects.create(run=run, comparison=comparisons[4], judgment=comparisons[4].judgments.first(),
                             stratum="random")
    client.force_login(auditor)
    asked = bulk(client, run, "flag", q="bananas")
    assert asked.context["count"] == 1
    bulk(client, run, "flag", confirm=1, q="bananas")
    assert list(PairFlag.objects.values_list("comparison_id", flat=True)) == [comparisons[5].pk]


def test_pairs_added_under_an_assigned_plan_are_shared_out(judged_run):
    run, comparisons = judged_run
    ann, bob = (factories.make_user(n, roles=("auditors",)) for n in ("ann", "bob"))
    plan = AuditPlan.objects.create(run=run, mode=AuditPlan.Mode.ASSIGNED, overlap=1)
    plan.auditors.set([ann, bob])
    result = pair_actions.add_to_audit_sample(run, Judgment.objects.filter(comparison__run=run,
                                                                           comparison__in=comparisons[4:]))
    assert result == pair_actions.AddPlan(new=2, already=0, unusable=0)
    assert AuditAssignment.objects.filter(item__run=run).count() == 2
    assert {workload.next_item_for(run, u).comparison_id for u in (ann, bob)} == {c.pk for c in comparisons[4:]}


def test_the_audit_sample_filter(client, judged_run, viewer):
    run, comparisons = judged_run
    AuditItem.objects.create(run=run, comparison=comparisons[1], judgment=comparisons[1].judgments.first(),
                             stratum="chosen")
    client.force_login(viewer)
    url = reverse("runs:pairs", args=[run.pk])
    assert [j.comparison_id for j in client.get(url, {"audit": "sampled"}).context["judgments"]] == [
        comparisons[1].pk]
    assert len(client.get(url, {"audit": "unsampled"}).context["judgments"]) == 6


def test_saved_views_are_per_user_and_keep_filters_and_toggles(client, judged_run, viewer, auditor):
    run, _ = judged_run
    client.force_login(viewer)
    save = reverse("runs:pairs_view_save", args=[run.pk])
    response = client.post(save, {"name": " Bananas  only ", "q": "bananas", "verdict": "A", "render": "markdown",
                                  "prompt": "turns", "before": "99", "bogus": "x", "consistent": "maybe"})
    assert response.status_code == 302
    view = SavedPairView.objects.get(user=viewer, run=run)
    assert view.name == "Bananas only"
    assert view.query == "q=bananas&verdict=A&render=markdown&prompt=turns"  # no cursor, nothing unknown or invalid
    page = client.get(reverse("runs:pairs", args=[run.pk])).content.decode()
    assert 'href="?q=bananas&amp;verdict=A&amp;render=markdown&amp;prompt=turns" data-view="Bananas only"' in page
    client.post(save, {"name": "Bananas only", "q": "refund"})  # the same name replaces it
    assert SavedPairView.objects.get(user=viewer, run=run).query == "q=refund"
    blank = client.post(save, {"name": "   "})
    assert [str(m) for m in blank.wsgi_request._messages][-1] == "View not saved: Give the view a name."

    client.force_login(auditor)  # another user neither sees nor deletes it
    assert list(client.get(reverse("runs:pairs", args=[run.pk])).context["saved_views"]) == []
    delete = reverse("runs:pairs_view_delete", args=[run.pk, view.pk])
    assert client.post(delete).status_code == 404
    client.force_login(viewer)
    assert client.post(delete).status_code == 302 and not SavedPairView.objects.exists()


def test_saved_views_are_capped(judged_run, viewer, monkeypatch):
    run, _ = judged_run
    monkeypatch.setattr(pair_actions, "MAX_SAVED_VIEWS", 2)
    pair_actions.save_view(viewer, run, "one", "q=a")
    pair_actions.save_view(viewer, run, "two", "q=b")
    pair_actions.save_view(viewer, run, "two", "q=c")  # replacing is always allowed
    with pytest.raises(ValueError, match="you keep 2 saved views on this run already"):
        pair_actions.save_view(viewer, run, "three", "q=d")


def test_chat_prompts_as_turns_with_a_toggle(client, judged_run, viewer):
    run, _ = judged_run
    chat = Prompt.objects.create(
        prompt_set=run.prompt_set, index=9, text="Human: Hi\n\nAssistant: Hello\n\nHuman: <b>Tea</b> or coffee?",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                  {"role": "assistant", "content": "Hello **there**"},
                  {"role": "user", "content": "<b>Tea</b> or coffee?"}],
        content_hash=content_hash("chat"))
    factories.make_judgment(factories.make_comparison(run, chat, texts=("Tea.", "Coffee.")), p_a=0.7)
    client.force_login(viewer)
    url = reverse("runs:pairs", args=[run.pk])
    text = client.get(url, {"q": "coffee"})
    assert not text.context["turns"] and 'class="turns"' not in text.content.decode()
    assert text.context["prompt_turns_url"] == "?q=coffee&prompt=turns"
    turns = client.get(url, {"q": "coffee", "prompt": "turns"})
    html = turns.content.decode()
    speakers = [chunk.split("</div>")[0] for chunk in html.split('<div class="speaker">')[1:]]
    assert speakers == ["System", "Human", "Assistant", "Human"]
    assert 'class="turn turn-assistant"' in html and "&lt;b&gt;Tea&lt;/b&gt; or coffee?" in html
    assert "<b>Tea</b>" not in html
    assert 'name="prompt" value="turns"' in html  # the toggle survives the next search
    assert turns.context["prompt_text_url"] == "?q=coffee"
    both = client.get(url, {"q": "coffee", "prompt": "turns", "render": "markdown"}).content.decode()
    assert "Hello <strong>there</strong>" in both and "<b>Tea</b>" not in both
    plain_prompt = client.get(url, {"q": "refund one", "prompt": "turns"}).content.decode()
    assert plain_prompt.count('<div class="speaker">Human</div>') == 2  # one Human turn per judgment shown

"""Text search in the pair browser (PostgreSQL full-text, substring words elsewhere) with the count of matching
pairs, combined with the other filters and blind labeling; responses as plain text or sanitised Markdown."""
from __future__ import annotations

import re

import pytest
from django.urls import reverse

from runs.models import AuditItem, Judgment
from runs.pair_search import full_text_available, search_judgments
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def judged_run():
    run = factories.make_run(prompt_set=factories.make_prompt_set(n=1))
    honest, helpful = run.constitution_version.principles.order_by("position")
    texts = [
        ("Our refunds arrive within five days.", "No idea, sorry."),
        ("The **capital** of France is Paris.", "Paris is the capital city of France.<script>alert(1)</script>"),
        ("Bananas are yellow.", "Bananas are berries."),
    ]
    comparisons = []
    for i, pair in enumerate(texts):
        comparison = factories.make_comparison(run, texts=pair)
        factories.make_judgment(comparison, honest, p_a=0.9, rationale="A states the refund period." if i == 0 else "")
        factories.make_judgment(comparison, helpful, p_a=0.2, rationale="B is botanically right." if i == 2 else "")
        comparisons.append(comparison)
    return run, comparisons


def matching(run, query):
    return set(search_judgments(Judgment.objects.filter(comparison__run=run), query)
               .values_list("comparison_id", flat=True))


def test_search_finds_prompt_responses_and_rationales(judged_run):
    run, (refund, paris, bananas) = judged_run
    assert matching(run, "Paris") == {paris.pk}
    assert matching(run, "botanically") == {bananas.pk}  # a rationale
    assert matching(run, "bananas berries") == {bananas.pk}  # every word must occur
    assert matching(run, "bananas paris") == set()
    assert matching(run, "") == {refund.pk, paris.pk, bananas.pk}
    if full_text_available():  # PostgreSQL: English stemming, web-search syntax
        assert matching(run, "refund") == {refund.pk}
        assert matching(run, "bananas -berries") == set()
        assert matching(run, '"capital city"') == {paris.pk}
    else:  # SQLite: case-insensitive substrings
        assert matching(run, "REFUN") == {refund.pk}
        assert matching(run, "capital city") == {paris.pk}


def test_pair_browser_counts_matching_pairs_with_the_other_filters(client, judged_run, viewer):
    run, (refund, paris, bananas) = judged_run
    client.force_login(viewer)
    url = reverse("runs:pairs", args=[run.pk])
    response = client.get(url, {"q": "  bananas  "})
    assert response.context["matches"] == 1 and response.context["applied"]["q"] == "bananas"
    assert len(response.context["judgments"]) == 2  # the pair judged under two principles
    assert "1 pair matches “bananas”" in " ".join(re.sub(r"<[^>]+>", "", response.content.decode()).split())
    response = client.get(url, {"q": "bananas", "verdict": "A"})
    assert [j.principle.name for j in response.context["judgments"]] == ["Honest"]
    assert response.context["matches"] == 1
    assert client.get(url, {"q": "paris", "verdict": "tie"}).context["matches"] == 0
    assert client.get(url).context["matches"] is None


def test_search_leaves_out_pairs_the_auditor_is_to_label_blind(client, judged_run, auditor):
    run, (refund, paris, bananas) = judged_run
    AuditItem.objects.create(run=run, comparison=paris, judgment=paris.judgments.first(), stratum="random")
    client.force_login(auditor)
    response = client.get(reverse("runs:pairs", args=[run.pk]), {"q": "Paris"})
    assert response.context["matches"] == 0 and response.context["judgments"] == []


def test_responses_read_as_plain_text_or_sanitised_markdown(client, judged_run, viewer):
    run, _ = judged_run
    client.force_login(viewer)
    url = reverse("runs:pairs", args=[run.pk])
    plain = client.get(url, {"q": "capital"}).content.decode()
    assert "The **capital** of France" in plain and "&lt;script&gt;" in plain
    rendered = client.get(url, {"q": "capital", "render": "markdown"})
    html = rendered.content.decode()
    assert "The <strong>capital</strong> of France" in html
    assert "<script>alert(1)" not in html
    assert 'name="render" value="markdown"' in html  # the toggle survives the next search
    assert rendered.context["plain_url"] == "?q=capital"

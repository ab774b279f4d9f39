"""The pair browser: content, filters, keyset pages, query count, and sanitising model text."""
from pathlib import Path

import pytest
from django.urls import reverse

from runs.templatetags.runs_extras import render_markdown
from tests import factories
from tests.runs.run_page_data import judged_pair, label

pytestmark = pytest.mark.django_db


@pytest.fixture
def version():
    return factories.make_version(principles=[factories.principle("Honest"), factories.principle("Helpful")])


@pytest.fixture
def principles(version):
    return list(version.principles.order_by("position"))


@pytest.fixture
def run(version):
    return factories.make_run(constitution_version=version, stages=("label",))


def ids_on_page(response):
    return [j.pk for j in response.context["judgments"]]


def test_pair_shows_prompt_responses_probabilities_rationale_and_labels(client, viewer, auditor, run, principles):
    comparison, judgment = judged_pair(
        run, principles[0], p_a_ab=0.8, p_a_ba=0.6, verdict="A", texts=("Paris is the capital.", "Lyon."),
        rationale="Response **A** is *correct*.",
    )
    label(comparison, auditor, "B")
    client.force_login(viewer)
    page = client.get(reverse("runs:pairs", args=[run.pk])).content.decode()
    assert "Prompt number 0?" in page and "Paris is the capital." in page and "Lyon." in page
    assert "P(A) 0.700" in page and "A/B order: 0.800" in page and "B/A order: 0.600" in page
    assert "confidence 0.40" in page and "orders agree" in page and "Honest" in page
    assert "Response <strong>A</strong> is <em>correct</em>." in page
    assert "audrey: B" in page


def test_model_text_with_script_or_event_handlers_is_shown_as_text(client, viewer, run, principles):
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    judged_pair(run, principles[0], p_a_ab=0.9, p_a_ba=0.9, verdict="A", texts=(attack, "fine"),
                rationale=f"I prefer A. {attack} [click](javascript:alert(2))")
    client.force_login(viewer)
    page = client.get(reverse("runs:pairs", args=[run.pk])).content.decode()
    assert "<script>alert" not in page and "<img src=x" not in page and "javascript:" not in page
    # The response is escaped text; the rationale's raw HTML is escaped by Markdown and cleaned by nh3.
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(\"x\")&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert '<a rel="noopener noreferrer nofollow">click</a>' in page


def test_markdown_safe_allow_list():
    html = render_markdown("# Title\n\n- one\n- two\n\n`code` <b onclick=x>bold</b> [ok](https://example.org)")
    assert "<li>one</li>" in html and "<code>code</code>" in html
    assert "&lt;b onclick=x&gt;bold&lt;/b&gt;" in html
    assert '<a href="https://example.org" rel="noopener noreferrer nofollow">ok</a>' in html
    assert "<h1>" not in html  # headings above h3 are not in the allow-list
    assert render_markdown(None) == ""


def test_fenced_code_is_highlighted_on_the_server_and_stays_escaped():
    from django.conf import settings

    from runs.templatetags.runs_extras import CODEHILITE_CSS, codehilite_css

    html = render_markdown('```python\ndef f(x):\n    return "<script>"\n```\n\n<span onclick=x class=k>hi</span>')
    assert '<div class="codehilite"><pre>' in html
    assert '<span class="k">def</span>' in html and '<span class="nf">f</span>' in html
    assert '<span class="s2">"&lt;script&gt;"</span>' in html
    assert "&lt;span onclick=x class=k&gt;hi&lt;/span&gt;" in html  # raw HTML in the text stays text
    unnamed = render_markdown("```\nplain <b>text</b>\n```")  # no language named: not guessed
    assert '<span class="k">' not in unnamed and "plain &lt;b&gt;text&lt;/b&gt;" in unnamed
    # the stylesheet the pages link is what Pygments generates for these classes
    css = (Path(settings.BASE_DIR) / "runs" / "static" / CODEHILITE_CSS).read_text()
    assert css == codehilite_css() and ".codehilite .k {" in css


def test_filters(client, viewer, auditor, run, principles):
    honest, helpful = principles
    _, sure_a = judged_pair(run, honest, p_a_ab=0.95, p_a_ba=0.85, verdict="A")  # confidence 0.8, consistent
    _, unsure = judged_pair(run, honest, p_a_ab=0.7, p_a_ba=0.4, verdict="A")  # confidence 0.1, inconsistent
    comparison, sure_b = judged_pair(run, helpful, p_a_ab=0.1, p_a_ba=0.1, verdict="B")  # confidence 0.8
    _, tie = judged_pair(run, helpful, p_a_ab=0.5, p_a_ba=0.5, verdict="tie", consistent=True)
    _, failed = judged_pair(run, helpful, p_a_ab=None, p_a_ba=None, verdict="")
    label(comparison, auditor)
    other_run = factories.make_run(constitution_version=run.constitution_version)
    judged_pair(other_run, honest, p_a_ab=0.9, p_a_ba=0.9, verdict="A")
    client.force_login(viewer)
    url = reverse("runs:pairs", args=[run.pk])

    def ids(**params):
        return set(ids_on_page(client.get(url, params)))

    assert ids() == {sure_a.pk, unsure.pk, sure_b.pk, tie.pk, failed.pk}
    assert ids(principle=honest.pk) == {sure_a.pk, unsure.pk}
    assert ids(verdict="B") == {sure_b.pk}
    assert ids(verdict="tie") == {tie.pk}
    assert ids(verdict="failed") == {failed.pk}
    assert ids(min_conf="0.5") == {sure_a.pk, sure_b.pk}
    assert ids(max_conf="0.2") == {unsure.pk, tie.pk}
    assert ids(consistent="no") == {unsure.pk}
    assert ids(consistent="yes") == {sure_a.pk, sure_b.pk, tie.pk}
    assert ids(consistent="unknown") == {failed.pk}
    assert ids(audit="labelled") == {sure_b.pk}
    assert ids(audit="unlabelled") == {sure_a.pk, unsure.pk, tie.pk, failed.pk}
    assert ids(principle=helpful.pk, min_conf="0.5", audit="labelled") == {sure_b.pk}
    assert ids(min_conf="oops", verdict="nonsense") == ids()
    empty = client.get(url, {"verdict": "A", "principle": helpful.pk}).content.decode()
    assert "No judged pairs match these filters." in empty


def test_keyset_pages_cover_every_pair_once_with_a_fixed_number_of_queries(
    client, viewer, run, principles, django_assert_max_num_queries
):
    from runs.views.pairs import PAGE_SIZE

    made = [judged_pair(run, principles[i % 2], p_a_ab=0.8, p_a_ba=0.7, verdict="A")[1].pk
            for i in range(PAGE_SIZE * 2 + 3)]
    client.force_login(viewer)
    url = reverse("runs:pairs", args=[run.pk])
    seen, response = [], client.get(url)
    pages = 0
    while True:
        pages += 1
        seen += ids_on_page(response)
        older = response.context["older_url"]
        if not older:
            break
        with django_assert_max_num_queries(10):  # session, user, run, principles, judgments, labels, flags, views…
            response = client.get(url + older)
    assert pages == 3 and seen == sorted(made, reverse=True)
    newer = response.context["newer_url"]
    back = client.get(url + newer)
    assert ids_on_page(back) == sorted(made, reverse=True)[PAGE_SIZE : 2 * PAGE_SIZE]
    assert back.context["older_url"] and back.context["newer_url"]

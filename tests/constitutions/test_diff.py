import pytest

from constitutions.diff import version_diff, version_lines
from constitutions.models import Constitution, ConstitutionVersion
from tests import factories

pytestmark = pytest.mark.django_db


def test_version_lines_render_every_field_in_order():
    version = factories.make_version(
        Constitution.objects.create(name="C"),
        principles=[factories.principle("Honest", critique_request="Find\nlies", weight=0.5),
                    factories.principle("Quiet", enabled=False)],
        few_shot_examples=[{"prompt": "p", "response_a": "a", "response_b": "b", "preferred": "B", "rationale": "r"}],
    )
    lines = version_lines(version)
    assert lines[:4] == ["Principles (2)", "* Honest  [honesty, weight 0.5, enabled]",
                         "   Comparison: Which response is more honest?", "   Critique request: Find"]
    assert lines[4] == "      lies" and lines[5] == "* Quiet  [honesty, weight 1, disabled]"
    assert "Judge template" in lines and "   {principle}" in lines
    assert lines[-6:] == ["Few-shot examples (1)", "1. preferred B", "   prompt: p", "   response_a: a",
                          "   response_b: b", "   rationale: r"]


def test_diff_escapes_text_and_marks_changes():
    v1 = factories.make_version(principles=[factories.principle("A", comparison="<b>bold</b> & co")])
    v2, _ = ConstitutionVersion.objects.create_version(
        v1.constitution, author=None, principles=[factories.principle("A", comparison="<b>bold</b> & co"),
                                                  factories.principle("B")])
    table = version_diff(v1, v2)
    assert "<b>" not in table and "&lt;b&gt;bold&lt;/b&gt;&nbsp;&amp;&nbsp;co" in table
    assert '<span class="diff_add">*&nbsp;B&nbsp;' in table
    only_changes = version_diff(v1, v2, context=True)
    assert "{answer_format}" not in only_changes and "{answer_format}" in table
